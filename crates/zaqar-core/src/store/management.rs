//! The management store's contract (pools, flavors, the catalog, per-project limits) and the
//! administration of pools the service layer asks of a pooled store ([`PoolAdmin`]).
//!
//! Catalog entries are sticky: a queue keeps its pool after it is deleted and re-created, so a
//! node may cache them. The entry `(project, "")` (an invalid queue name) binds a whole project
//! when placement is per project. Entries are removed only when their pool is removed (which is
//! refused while any of its queues exists).

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::DataStore;
use crate::error::Result;

/// A registered pool: a storage backend that holds queues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pool {
    pub name: String,
    pub uri: String,
    pub weight: i64,
    pub flavor: Option<String>,
    pub options: Map<String, Value>,
}

/// A flavor of a project; its pools are the pools whose `flavor` names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flavor {
    pub project: String,
    pub name: String,
    pub capabilities: Vec<String>,
}

/// A project's limits as kept in the management store: `None` is "not set here" (the overrides
/// file or `[quotas]` decides), 0 is unlimited. Values fit in an `i64`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ProjectQuota {
    pub max_queues: Option<u64>,
    pub max_messages_per_queue: Option<u64>,
    pub max_bytes: Option<u64>,
    pub requests_per_second: Option<f64>,
    pub burst: Option<f64>,
}

#[async_trait]
pub trait ManagementStore: Send + Sync {
    async fn ping(&self) -> Result<()>;
    /// Pools with names after `marker`, in name order, at most `limit`.
    async fn list_pools(&self, marker: Option<&str>, limit: usize) -> Result<Vec<Pool>>;
    async fn get_pool(&self, name: &str) -> Result<Option<Pool>>;
    /// Creates or replaces the pool. `Conflict` when another pool has the same URI.
    async fn put_pool(&self, pool: &Pool) -> Result<()>;
    /// Deletes the pool and its catalog entries.
    async fn delete_pool(&self, name: &str) -> Result<()>;
    async fn list_flavors(
        &self,
        project: &str,
        marker: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Flavor>>;
    async fn get_flavor(&self, project: &str, name: &str) -> Result<Option<Flavor>>;
    /// Whether a flavor of this name exists in any project.
    async fn flavor_exists_anywhere(&self, name: &str) -> Result<bool>;
    /// Stores the flavor and makes `pools` exactly its pools (their `flavor` is set; other pools
    /// that named it are cleared), atomically.
    async fn put_flavor(&self, flavor: &Flavor, pools: &[String]) -> Result<()>;
    /// Deletes the flavor and clears `flavor` on its pools.
    async fn delete_flavor(&self, project: &str, name: &str) -> Result<()>;
    async fn catalog_get(&self, project: &str, queue: &str) -> Result<Option<String>>;
    /// Binds the queue to `pool` unless it is bound already; returns the pool it is bound to.
    async fn catalog_bind(&self, project: &str, queue: &str, pool: &str) -> Result<String>;
    /// Every `(project, queue)` bound to the pool.
    async fn catalog_of_pool(&self, pool: &str) -> Result<Vec<(String, String)>>;
    /// Projects with limits, after `marker` in byte order, at most `limit`.
    async fn list_quotas(
        &self,
        marker: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, ProjectQuota)>>;
    async fn get_quota(&self, project: &str) -> Result<Option<ProjectQuota>>;
    /// Creates or replaces the project's limits.
    async fn put_quota(&self, project: &str, quota: &ProjectQuota) -> Result<()>;
    /// Removes the project's limits (missing ones are not an error).
    async fn delete_quota(&self, project: &str) -> Result<()>;
    async fn close(&self) {}
}

/// What the service layer asks of a pooled store to administer pools and flavors.
#[async_trait]
pub trait PoolAdmin: Send + Sync {
    /// The management store (pools, flavors, catalog, per-project limits).
    fn management(&self) -> &Arc<dyn ManagementStore>;

    /// Capability names of the driver a pool URI selects (spec §1.11); 400 for an unknown
    /// scheme.
    fn capabilities(&self, uri: &str) -> Result<Vec<&'static str>>;

    /// Registers or replaces a pool after checking that its backend answers.
    async fn put_pool(&self, pool: Pool) -> Result<()>;

    /// Removes a pool that holds no queue.
    async fn delete_pool(&self, name: &str) -> Result<()>;

    /// Re-reads pools and flavors from the management store.
    async fn reload(&self) -> Result<()>;

    /// The pool a queue is bound to, if any.
    async fn pool_of_queue(&self, project: &str, queue: &str) -> Result<Option<String>>;

    /// Every pool's driver, or why it could not be opened.
    async fn pool_drivers(&self) -> Result<Vec<(String, Result<Arc<dyn DataStore>>)>>;
}
