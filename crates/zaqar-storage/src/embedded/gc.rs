//! The expired-data sweep of the embedded store: expired messages, claims, subscriptions and
//! stale transfer done-markers.

use std::sync::Arc;
use std::time::Duration;

use redb::{ReadableTable, ReadableTableMetadata};

use zaqar_core::clock::secs;
use zaqar_core::error::Result;

use super::records::{decode, ClaimRecord, MsgRecord, BODIES, CLAIMS, MSGS, XFER_DONE};
use super::{bytes, se, subs, EmbeddedStore};

/// Most expired entries removed per shard per sweep (keeps one GC transaction short).
const GC_BATCH: usize = 20_000;

impl EmbeddedStore {
    /// Starts the background sweep that reclaims expired messages and claims.
    pub fn start_gc(self: &Arc<Self>, interval: Duration) {
        let store = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(store) = store.upgrade() else { return };
                store.drain_all_outboxes().await;
                if let Err(e) = store.collect_garbage().await {
                    tracing::warn!(error = %e, "expired-data sweep failed");
                }
            }
        });
        *self.gc_task.lock().unwrap() = Some(task);
    }

    /// One sweep over every shard; returns how many expired entries were removed.
    pub async fn collect_garbage(&self) -> Result<usize> {
        let mut removed = 0;
        for shard in &self.shards {
            let clock = self.clock.clone();
            removed += shard
                .write(move |txn| subs::sweep_subscriptions(txn, clock.now()))
                .await?;
        }
        for (i, shard) in self.shards.iter().enumerate() {
            let now = self.clock.now();
            let snapshot = shard.read()?;
            let (msgs, claims, markers) = tokio::task::spawn_blocking(move || -> Result<_> {
                let mut msgs = Vec::new();
                let table = snapshot.open_table(MSGS).map_err(se)?;
                for e in table.iter().map_err(se)? {
                    let (k, v) = e.map_err(se)?;
                    let rec: MsgRecord = decode(v.value())?;
                    if rec.expires <= now {
                        let (p, n, m) = k.value();
                        msgs.push((p.to_string(), n.to_string(), m));
                        if msgs.len() >= GC_BATCH {
                            break;
                        }
                    }
                }
                let mut claims = Vec::new();
                let table = snapshot.open_table(CLAIMS).map_err(se)?;
                for e in table.iter().map_err(se)? {
                    let (k, v) = e.map_err(se)?;
                    let rec: ClaimRecord = decode(v.value())?;
                    if rec.expires <= now {
                        let (p, n, c) = k.value();
                        claims.push((p.to_string(), n.to_string(), c.to_string()));
                        if claims.len() >= GC_BATCH {
                            break;
                        }
                    }
                }
                // Done-markers outlive their outbox entry only after a crash between the two
                // removals; an hour later no drain can still need them.
                let mut markers = Vec::new();
                let table = snapshot.open_table(XFER_DONE).map_err(se)?;
                for e in table.iter().map_err(se)? {
                    let (k, v) = e.map_err(se)?;
                    if v.value() < now - secs(3600) {
                        markers.push(k.value().to_string());
                    }
                }
                Ok((msgs, claims, markers))
            })
            .await
            .map_err(se)??;
            if msgs.is_empty() && claims.is_empty() && markers.is_empty() {
                continue;
            }
            let clock = self.clock.clone();
            removed += shard
                .write(move |txn| {
                    // Re-check under the write transaction: a claim may have extended a message.
                    let now = clock.now();
                    let mut count = 0;
                    let mut expired_messages = 0u64;
                    let mut mt = txn.open_table(MSGS).map_err(se)?;
                    let mut bt = txn.open_table(BODIES).map_err(se)?;
                    let mut ledger = bytes::Ledger::default();
                    for (p, n, m) in &msgs {
                        let key = (p.as_str(), n.as_str(), *m);
                        let expired = match mt.get(key).map_err(se)? {
                            Some(g) => {
                                Some(decode::<MsgRecord>(g.value())?.expires).filter(|e| *e <= now)
                            }
                            None => None,
                        };
                        if let Some(expires) = expired {
                            mt.remove(key).map_err(se)?;
                            if let Some(b) = bt.remove(key).map_err(se)? {
                                ledger.queue(p, n).remove(expires, b.value().len());
                            }
                            count += 1;
                            expired_messages += 1;
                        }
                    }
                    drop((mt, bt));
                    ledger.apply(txn)?;
                    let mut done = txn.open_table(XFER_DONE).map_err(se)?;
                    for id in &markers {
                        done.remove(id.as_str()).map_err(se)?;
                    }
                    let mut ct = txn.open_table(CLAIMS).map_err(se)?;
                    for (p, n, c) in &claims {
                        let key = (p.as_str(), n.as_str(), c.as_str());
                        let expired = match ct.get(key).map_err(se)? {
                            Some(g) => decode::<ClaimRecord>(g.value())?.expires <= now,
                            None => false,
                        };
                        if expired {
                            ct.remove(key).map_err(se)?;
                            count += 1;
                        }
                    }
                    zaqar_core::metrics::messages_expired(expired_messages);
                    Ok(count)
                })
                .await?;
            tracing::debug!(shard = i, removed, "expired-data sweep");
        }
        Ok(removed)
    }

    /// Number of message records physically present (expired-but-uncollected included), for
    /// tests of the sweep.
    pub fn stored_message_records(&self) -> Result<u64> {
        let mut n = 0;
        for s in &self.shards {
            n += s.read()?.open_table(MSGS).map_err(se)?.len().map_err(se)?;
        }
        Ok(n)
    }
}
