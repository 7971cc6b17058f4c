//! Queues of the embedded store: creation, metadata, deletion, listing and counts.

use std::ops::Bound;

use async_trait::async_trait;
use redb::ReadableTable;

use zaqar_core::error::{Error, Result};
use zaqar_core::model::{Metadata, QueueFilter, QueueInfo, QueueRef};
use zaqar_core::store::QueueStore;

use super::records::{decode, encode, QueueRecord, COUNTERS, QUEUES};
use super::txn::{purge_in, queue_info};
use super::{bytes, se, EmbeddedStore};

#[async_trait]
impl QueueStore for EmbeddedStore {
    async fn create_queue(&self, q: QueueRef<'_>, metadata: Metadata) -> Result<bool> {
        let (p, n) = (q.project.to_string(), q.name.to_string());
        let clock = self.clock.clone();
        let text = serde_json::to_string(&metadata).map_err(se)?;
        self.shard(q)
            .write(move |txn| {
                let mut t = txn.open_table(QUEUES).map_err(se)?;
                if t.get((p.as_str(), n.as_str())).map_err(se)?.is_some() {
                    return Ok(false);
                }
                let rec = QueueRecord {
                    created: clock.now(),
                    version: 1,
                    metadata: text,
                };
                t.insert((p.as_str(), n.as_str()), encode(&rec)?.as_slice())
                    .map_err(se)?;
                Ok(true)
            })
            .await
    }

    async fn get_queue(&self, q: QueueRef<'_>) -> Result<Option<QueueInfo>> {
        let rtx = self.shard(q).read()?;
        let t = rtx.open_table(QUEUES).map_err(se)?;
        match t.get((q.project, q.name)).map_err(se)? {
            Some(g) => Ok(Some(queue_info(q.name, &decode(g.value())?)?)),
            None => Ok(None),
        }
    }

    async fn replace_queue_metadata(
        &self,
        q: QueueRef<'_>,
        expected_version: u64,
        metadata: Metadata,
    ) -> Result<bool> {
        let (p, n) = (q.project.to_string(), q.name.to_string());
        let text = serde_json::to_string(&metadata).map_err(se)?;
        self.shard(q)
            .write(move |txn| {
                let mut t = txn.open_table(QUEUES).map_err(se)?;
                let key = (p.as_str(), n.as_str());
                let mut rec: QueueRecord = match t.get(key).map_err(se)? {
                    Some(g) => decode(g.value())?,
                    None => {
                        return Err(Error::not_found(format!(
                            "Queue {n} does not exist for project {p}"
                        )))
                    }
                };
                if rec.version != expected_version {
                    return Ok(false);
                }
                rec.version += 1;
                rec.metadata = text;
                t.insert(key, encode(&rec)?.as_slice()).map_err(se)?;
                Ok(true)
            })
            .await
    }

    async fn delete_queue(&self, q: QueueRef<'_>) -> Result<()> {
        let (p, n) = (q.project.to_string(), q.name.to_string());
        self.shard(q)
            .write(move |txn| {
                let key = (p.as_str(), n.as_str());
                txn.open_table(QUEUES)
                    .map_err(se)?
                    .remove(key)
                    .map_err(se)?;
                txn.open_table(COUNTERS)
                    .map_err(se)?
                    .remove(key)
                    .map_err(se)?;
                purge_in(txn, &p, &n)
            })
            .await
    }

    async fn list_queues(
        &self,
        project: &str,
        marker: Option<&str>,
        limit: usize,
        filter: &QueueFilter,
    ) -> Result<Vec<QueueInfo>> {
        let mut all = Vec::new();
        for shard in &self.shards {
            let rtx = shard.read()?;
            let t = rtx.open_table(QUEUES).map_err(se)?;
            let lower = match marker {
                Some(m) => Bound::Excluded((project, m)),
                None => Bound::Included((project, "")),
            };
            let mut taken = 0;
            for e in t
                .range::<(&str, &str)>((lower, Bound::Unbounded))
                .map_err(se)?
            {
                let (k, v) = e.map_err(se)?;
                let (p, name) = k.value();
                if p != project {
                    break;
                }
                let info = queue_info(name, &decode(v.value())?)?;
                if filter.matches(&info.name, &info.metadata) {
                    all.push(info);
                    taken += 1;
                    if taken >= limit {
                        break;
                    }
                }
            }
        }
        all.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        all.truncate(limit);
        Ok(all)
    }

    async fn count_queues(&self, project: &str) -> Result<u64> {
        let mut n = 0;
        for shard in &self.shards {
            let rtx = shard.read()?;
            let t = rtx.open_table(QUEUES).map_err(se)?;
            for e in t
                .range::<(&str, &str)>((Bound::Included((project, "")), Bound::Unbounded))
                .map_err(se)?
            {
                let (k, _) = e.map_err(se)?;
                if k.value().0 != project {
                    break;
                }
                n += 1;
            }
        }
        Ok(n)
    }

    async fn project_bytes(&self, project: &str) -> Result<u64> {
        let now = self.clock.now();
        let mut sum: u64 = 0;
        for shard in &self.shards {
            sum = sum.saturating_add(bytes::project_bytes(&shard.read()?, project, now)?);
        }
        Ok(sum)
    }
}
