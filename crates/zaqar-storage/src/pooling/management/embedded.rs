//! The management store in one redb file (`management.redb` of the data directory; a single
//! node).

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;

use zaqar_core::error::{Error, Result};

use zaqar_core::store::management::{Flavor, ManagementStore, Pool, ProjectQuota};

use super::uri_conflict;

fn se(e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("management store: {e}"))
}

const POOLS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("pools");
const FLAVORS: TableDefinition<'static, (&str, &str), &[u8]> = TableDefinition::new("flavors");
const CATALOG: TableDefinition<'static, (&str, &str), &str> = TableDefinition::new("catalog");
/// project → [`ProjectQuota`] (JSON).
const QUOTAS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("quotas");

/// The management store in one redb file (`management.redb` of the data directory).
pub struct EmbeddedManagement {
    db: Arc<redb::Database>,
}

impl EmbeddedManagement {
    pub fn open(dir: &Path) -> Result<Arc<EmbeddedManagement>> {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Unavailable(format!(
                "cannot create the data directory {}: {e}",
                dir.display()
            ))
        })?;
        let path = dir.join("management.redb");
        let db = redb::Database::create(&path).map_err(|e| {
            Error::Unavailable(format!(
                "cannot open the management store {}: {e}",
                path.display()
            ))
        })?;
        let txn = db.begin_write().map_err(se)?;
        txn.open_table(POOLS).map_err(se)?;
        txn.open_table(FLAVORS).map_err(se)?;
        txn.open_table(CATALOG).map_err(se)?;
        txn.open_table(QUOTAS).map_err(se)?;
        txn.commit().map_err(se)?;
        Ok(Arc::new(EmbeddedManagement { db: Arc::new(db) }))
    }

    async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&redb::ReadTransaction) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_read().map_err(se)?;
            f(&txn)
        })
        .await
        .map_err(|e| Error::Internal(format!("management store task failed: {e}")))?
    }

    async fn write<R: Send + 'static>(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_write().map_err(se)?;
            let r = f(&txn)?;
            txn.commit().map_err(se)?;
            Ok(r)
        })
        .await
        .map_err(|e| Error::Internal(format!("management store task failed: {e}")))?
    }
}

fn decode<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T> {
    serde_json::from_slice(b)
        .map_err(|e| Error::Internal(format!("corrupt management record: {e}")))
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// Up to `limit` records of a name-keyed table with keys after `marker`, in key order.
fn page_after<T: serde::de::DeserializeOwned>(
    txn: &redb::ReadTransaction,
    def: TableDefinition<'_, &str, &[u8]>,
    marker: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, T)>> {
    let t = txn.open_table(def).map_err(se)?;
    let range = match marker {
        Some(m) => t.range::<&str>((std::ops::Bound::Excluded(m), std::ops::Bound::Unbounded)),
        None => t.range::<&str>(..),
    }
    .map_err(se)?;
    let mut out = Vec::new();
    for row in range.take(limit) {
        let (k, v) = row.map_err(se)?;
        out.push((k.value().to_string(), decode(v.value())?));
    }
    Ok(out)
}

/// The record of a name-keyed table under `key`.
fn get_decoded<T: serde::de::DeserializeOwned>(
    txn: &redb::ReadTransaction,
    def: TableDefinition<'_, &str, &[u8]>,
    key: &str,
) -> Result<Option<T>> {
    let t = txn.open_table(def).map_err(se)?;
    let v = t.get(key).map_err(se)?;
    v.map(|v| decode(v.value())).transpose()
}

fn all_pools_in(t: &impl ReadableTable<&'static str, &'static [u8]>) -> Result<Vec<Pool>> {
    let mut out = Vec::new();
    for row in t.iter().map_err(se)? {
        let (_, v) = row.map_err(se)?;
        out.push(decode::<Pool>(v.value())?);
    }
    Ok(out)
}

#[async_trait]
impl ManagementStore for EmbeddedManagement {
    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn list_pools(&self, marker: Option<&str>, limit: usize) -> Result<Vec<Pool>> {
        let marker = marker.map(str::to_string);
        self.read(move |txn| {
            let page = page_after::<Pool>(txn, POOLS, marker.as_deref(), limit)?;
            Ok(page.into_iter().map(|(_, p)| p).collect())
        })
        .await
    }

    async fn get_pool(&self, name: &str) -> Result<Option<Pool>> {
        let name = name.to_string();
        self.read(move |txn| get_decoded(txn, POOLS, &name)).await
    }

    async fn put_pool(&self, pool: &Pool) -> Result<()> {
        let pool = pool.clone();
        self.write(move |txn| {
            let mut t = txn.open_table(POOLS).map_err(se)?;
            if let Some(other) = all_pools_in(&t)?
                .into_iter()
                .find(|p| p.uri == pool.uri && p.name != pool.name)
            {
                return Err(uri_conflict(&other.name));
            }
            t.insert(pool.name.as_str(), encode(&pool).as_slice())
                .map_err(se)?;
            Ok(())
        })
        .await
    }

    async fn delete_pool(&self, name: &str) -> Result<()> {
        let name = name.to_string();
        self.write(move |txn| {
            txn.open_table(POOLS)
                .map_err(se)?
                .remove(name.as_str())
                .map_err(se)?;
            let mut c = txn.open_table(CATALOG).map_err(se)?;
            c.retain(|_, v| v != name).map_err(se)?;
            Ok(())
        })
        .await
    }

    async fn list_flavors(
        &self,
        project: &str,
        marker: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Flavor>> {
        let project = project.to_string();
        let marker = marker.unwrap_or("").to_string();
        self.read(move |txn| {
            let t = txn.open_table(FLAVORS).map_err(se)?;
            let mut out = Vec::new();
            for row in t.range((project.as_str(), marker.as_str())..).map_err(se)? {
                let (k, v) = row.map_err(se)?;
                let (p, n) = k.value();
                if p != project || out.len() >= limit {
                    break;
                }
                if n == marker {
                    continue;
                }
                out.push(decode::<Flavor>(v.value())?);
            }
            Ok(out)
        })
        .await
    }

    async fn get_flavor(&self, project: &str, name: &str) -> Result<Option<Flavor>> {
        let (project, name) = (project.to_string(), name.to_string());
        self.read(move |txn| {
            let t = txn.open_table(FLAVORS).map_err(se)?;
            match t.get((project.as_str(), name.as_str())).map_err(se)? {
                Some(v) => Ok(Some(decode(v.value())?)),
                None => Ok(None),
            }
        })
        .await
    }

    async fn flavor_exists_anywhere(&self, name: &str) -> Result<bool> {
        let name = name.to_string();
        self.read(move |txn| {
            let t = txn.open_table(FLAVORS).map_err(se)?;
            for row in t.iter().map_err(se)? {
                let (k, _) = row.map_err(se)?;
                if k.value().1 == name {
                    return Ok(true);
                }
            }
            Ok(false)
        })
        .await
    }

    async fn put_flavor(&self, flavor: &Flavor, pools: &[String]) -> Result<()> {
        let flavor = flavor.clone();
        let pools = pools.to_vec();
        self.write(move |txn| {
            let mut t = txn.open_table(POOLS).map_err(se)?;
            for mut p in all_pools_in(&t)? {
                let member = pools.contains(&p.name);
                let had = p.flavor.as_deref() == Some(flavor.name.as_str());
                if member != had {
                    p.flavor = member.then(|| flavor.name.clone());
                    t.insert(p.name.as_str(), encode(&p).as_slice())
                        .map_err(se)?;
                }
            }
            txn.open_table(FLAVORS)
                .map_err(se)?
                .insert(
                    (flavor.project.as_str(), flavor.name.as_str()),
                    encode(&flavor).as_slice(),
                )
                .map_err(se)?;
            Ok(())
        })
        .await
    }

    async fn delete_flavor(&self, project: &str, name: &str) -> Result<()> {
        let (project, name) = (project.to_string(), name.to_string());
        self.write(move |txn| {
            let existed = txn
                .open_table(FLAVORS)
                .map_err(se)?
                .remove((project.as_str(), name.as_str()))
                .map_err(se)?
                .is_some();
            if existed {
                let mut t = txn.open_table(POOLS).map_err(se)?;
                for mut p in all_pools_in(&t)? {
                    if p.flavor.as_deref() == Some(name.as_str()) {
                        p.flavor = None;
                        t.insert(p.name.as_str(), encode(&p).as_slice())
                            .map_err(se)?;
                    }
                }
            }
            Ok(())
        })
        .await
    }

    async fn catalog_get(&self, project: &str, queue: &str) -> Result<Option<String>> {
        let (project, queue) = (project.to_string(), queue.to_string());
        self.read(move |txn| {
            let t = txn.open_table(CATALOG).map_err(se)?;
            Ok(t.get((project.as_str(), queue.as_str()))
                .map_err(se)?
                .map(|v| v.value().to_string()))
        })
        .await
    }

    async fn catalog_bind(&self, project: &str, queue: &str, pool: &str) -> Result<String> {
        let (project, queue, pool) = (project.to_string(), queue.to_string(), pool.to_string());
        self.write(move |txn| {
            let mut t = txn.open_table(CATALOG).map_err(se)?;
            let existing = t
                .get((project.as_str(), queue.as_str()))
                .map_err(se)?
                .map(|v| v.value().to_string());
            match existing {
                Some(p) => Ok(p),
                None => {
                    t.insert((project.as_str(), queue.as_str()), pool.as_str())
                        .map_err(se)?;
                    Ok(pool)
                }
            }
        })
        .await
    }

    async fn catalog_of_pool(&self, pool: &str) -> Result<Vec<(String, String)>> {
        let pool = pool.to_string();
        self.read(move |txn| {
            let t = txn.open_table(CATALOG).map_err(se)?;
            let mut out = Vec::new();
            for row in t.iter().map_err(se)? {
                let (k, v) = row.map_err(se)?;
                if v.value() == pool {
                    let (p, q) = k.value();
                    out.push((p.to_string(), q.to_string()));
                }
            }
            Ok(out)
        })
        .await
    }

    async fn list_quotas(
        &self,
        marker: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, ProjectQuota)>> {
        let marker = marker.map(str::to_string);
        self.read(move |txn| page_after(txn, QUOTAS, marker.as_deref(), limit))
            .await
    }

    async fn get_quota(&self, project: &str) -> Result<Option<ProjectQuota>> {
        let project = project.to_string();
        self.read(move |txn| get_decoded(txn, QUOTAS, &project))
            .await
    }

    async fn put_quota(&self, project: &str, quota: &ProjectQuota) -> Result<()> {
        let (project, quota) = (project.to_string(), *quota);
        self.write(move |txn| {
            txn.open_table(QUOTAS)
                .map_err(se)?
                .insert(project.as_str(), encode(&quota).as_slice())
                .map_err(se)?;
            Ok(())
        })
        .await
    }

    async fn delete_quota(&self, project: &str) -> Result<()> {
        let project = project.to_string();
        self.write(move |txn| {
            txn.open_table(QUOTAS)
                .map_err(se)?
                .remove(project.as_str())
                .map_err(se)?;
            Ok(())
        })
        .await
    }
}
