//! Moves between queues of the embedded store: each shard's outbox of pending transfers and
//! the drain that applies them exactly once, whichever shard holds the target.

use redb::ReadableTable;

use zaqar_core::error::Result;
use zaqar_core::model::QueueRef;

use super::records::{decode, OutboxRecord, OUTBOX, XFER_DONE};
use super::txn::append_in;
use super::{se, DrainStop, EmbeddedStore};

impl EmbeddedStore {
    /// Applies the pending transfers of shard `i`: each is appended to its target queue (in
    /// whichever shard holds it) together with a done-marker, then removed from the outbox, then
    /// the marker is dropped. A crash at any point leaves a state from which the next drain
    /// neither loses nor duplicates the messages.
    pub async fn drain_outbox(&self, i: usize) -> Result<usize> {
        let _serial = self.drain_locks[i].lock().await;
        let pending: Vec<(String, OutboxRecord)> = {
            let rtx = self.shards[i].read()?;
            let t = rtx.open_table(OUTBOX).map_err(se)?;
            let mut out = Vec::new();
            for e in t.iter().map_err(se)? {
                let (k, v) = e.map_err(se)?;
                out.push((k.value().to_string(), decode(v.value())?));
            }
            out
        };
        let count = pending.len();
        let stop = *self.drain_stop.lock().unwrap();
        for (id, transfer) in pending {
            if stop == DrainStop::BeforeApply {
                return Ok(0);
            }
            let target = self.shard_index(QueueRef::new(&transfer.project, &transfer.target));
            let clock = self.clock.clone();
            let tid = id.clone();
            self.shards[target]
                .write(move |txn| {
                    let mut done = txn.open_table(XFER_DONE).map_err(se)?;
                    if done.get(tid.as_str()).map_err(se)?.is_some() {
                        return Ok(());
                    }
                    let now = clock.now();
                    done.insert(tid.as_str(), now).map_err(se)?;
                    drop(done);
                    let items = transfer.messages.into_iter().map(|m| (m.rec, m.body));
                    append_in(txn, &transfer.project, &transfer.target, now, items)?;
                    Ok(())
                })
                .await?;
            if stop == DrainStop::AfterApply {
                return Ok(0);
            }
            let tid = id.clone();
            self.shards[i]
                .write(move |txn| {
                    txn.open_table(OUTBOX)
                        .map_err(se)?
                        .remove(tid.as_str())
                        .map_err(se)?;
                    Ok(())
                })
                .await?;
            if stop == DrainStop::AfterOutboxRemoval {
                return Ok(0);
            }
            self.shards[target]
                .write(move |txn| {
                    txn.open_table(XFER_DONE)
                        .map_err(se)?
                        .remove(id.as_str())
                        .map_err(se)?;
                    Ok(())
                })
                .await?;
        }
        Ok(count)
    }

    /// Makes drains stop at `stop`, as if the process died there (recovery tests only).
    #[doc(hidden)]
    pub fn simulate_drain_crash(&self, stop: DrainStop) {
        *self.drain_stop.lock().unwrap() = stop;
    }

    pub(super) async fn drain_outbox_logged(&self, i: usize) {
        if let Err(e) = self.drain_outbox(i).await {
            tracing::warn!(shard = i, error = %e, "pending message moves will be retried");
        }
    }

    /// Applies every shard's pending transfers (at start-up and on each sweep).
    pub async fn drain_all_outboxes(&self) {
        for i in 0..self.shards.len() {
            self.drain_outbox_logged(i).await;
        }
    }
}
