//! The health check (spec §3.2.3): the store's ping, and the probe that runs each storage
//! operation once on a throwaway queue and reports how each step went.

use std::sync::Arc;
use std::time::Instant;

use serde_json::value::RawValue;
use serde_json::Map;

use super::{Ctx, Service};
use crate::error::{Error, Result};
use crate::model::{ClaimParams, ListQuery, NewMessage, QueueRef};
use crate::store::DataStore;

/// Result of one step of the health probe.
#[derive(Debug, Clone)]
pub struct ProbeStep {
    pub name: &'static str,
    pub succeeded: bool,
    pub seconds: f64,
    pub reference: Option<String>,
}

/// What the health check found.
#[derive(Debug, Clone)]
pub enum Health {
    /// The store's probe steps.
    Store(Vec<ProbeStep>),
    /// With pooling: each pool's reachability and probe (the catalog answered).
    Pooled(Vec<PoolHealth>),
}

/// One pool's part of the pooled health check.
#[derive(Debug, Clone)]
pub struct PoolHealth {
    pub name: String,
    pub reachable: bool,
    pub steps: Vec<ProbeStep>,
}

impl Service {
    pub async fn ping(&self) -> bool {
        self.store.ping().await.is_ok()
    }

    /// The health check (spec §3.2.3): 503 when the storage (with pooling: the catalog) is
    /// unreachable, else the probe's steps (with pooling: each pool's reachability and probe,
    /// run on the pool's driver directly, so no catalog entry is left behind).
    pub async fn health(&self) -> Result<Health> {
        let unreadable = || Error::unavailable("Health status could not be read.");
        let Some(pooled) = self.options.pools.as_ref() else {
            if !self.ping().await {
                return Err(unreadable());
            }
            return Ok(Health::Store(self.probe_store(&self.store).await));
        };
        let pools = async {
            pooled.management().ping().await?;
            let mut out = Vec::new();
            for (name, driver) in pooled.pool_drivers().await? {
                let (reachable, steps) = match driver {
                    Ok(d) if d.ping().await.is_ok() => (true, self.probe_store(&d).await),
                    _ => (false, Vec::new()),
                };
                out.push(PoolHealth {
                    name,
                    reachable,
                    steps,
                });
            }
            Ok::<_, Error>(out)
        }
        .await
        .map_err(|_| unreadable())?;
        Ok(Health::Pooled(pools))
    }

    async fn probe_store(&self, store: &Arc<dyn DataStore>) -> Vec<ProbeStep> {
        let project = format!("zaqar-health-{}", uuid::Uuid::new_v4().simple());
        let client = uuid::Uuid::new_v4().hyphenated().to_string();
        let ctx = Ctx {
            project: &project,
            client_id: &client,
            user: None,
        };
        let q = QueueRef::new(&project, "health-probe");
        let mut steps = Vec::new();
        async fn step<T>(
            steps: &mut Vec<ProbeStep>,
            name: &'static str,
            fut: impl std::future::Future<Output = Result<T>>,
        ) -> Option<T> {
            let start = Instant::now();
            let r = fut.await;
            let seconds = start.elapsed().as_secs_f64();
            let (succeeded, reference, out) = match r {
                Ok(v) => (true, None, Some(v)),
                Err(e) => {
                    let reference = uuid::Uuid::new_v4().to_string();
                    tracing::warn!(step = name, reference = %reference, error = %e, "health probe step failed");
                    (false, Some(reference), None)
                }
            };
            steps.push(ProbeStep {
                name,
                succeeded,
                seconds,
                reference,
            });
            out
        }
        step(
            &mut steps,
            "create_queue",
            store.create_queue(q, Map::new()),
        )
        .await;
        let body = RawValue::from_string("{\"probe\": true}".into()).expect("valid JSON");
        let msgs = (0..100)
            .map(|_| NewMessage {
                body: body.clone(),
                ttl: 600,
                delay: 0,
                checksum: None,
                encrypted: false,
            })
            .collect();
        step(
            &mut steps,
            "post_messages",
            store.post_messages(q, ctx.client_id, msgs),
        )
        .await;
        let params = ClaimParams {
            ttl: 60,
            grace: 300,
            limit: self.limits.max_messages_per_claim_or_pop as usize,
            dead_letter: None,
        };
        let claim = step(&mut steps, "claim_messages", store.create_claim(q, params))
            .await
            .flatten();
        let query = ListQuery {
            marker: None,
            limit: self.limits.max_messages_per_page as usize,
            exclude_client: None,
            include_claimed: true,
            include_delayed: true,
        };
        step(&mut steps, "list_messages", store.list_messages(q, &query)).await;
        if let Some(c) = &claim {
            step(&mut steps, "delete_messages", async {
                for m in &c.messages {
                    store.delete_message(q, &m.id, Some(&c.id)).await?;
                }
                Ok(())
            })
            .await;
            step(&mut steps, "delete_claim", store.release_claim(q, &c.id)).await;
        }
        let ids: Vec<String> = store
            .list_messages(q, &query)
            .await
            .map(|ms| ms.into_iter().map(|m| m.id).collect())
            .unwrap_or_default();
        step(
            &mut steps,
            "bulk_delete_messages",
            store.delete_messages(q, &ids, None),
        )
        .await;
        step(&mut steps, "delete_queue", store.delete_queue(q)).await;
        steps
    }
}
