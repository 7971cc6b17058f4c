//! Claims of the embedded store, with dead-lettering of messages claimed too often.

use async_trait::async_trait;
use redb::ReadableTable;

use zaqar_core::clock::secs;
use zaqar_core::error::Result;
use zaqar_core::model::{Claim, ClaimParams, QueueRef};
use zaqar_core::store::{extend_for_claim, ClaimStore};

use super::records::{decode, encode, ClaimRecord, MsgRecord, OutboxRecord, BODIES, CLAIMS, MSGS};
use super::txn::{queue_transfers, read_body, select_free, take_for_move, to_message};
use super::{bytes, se, EmbeddedStore};

#[async_trait]
impl ClaimStore for EmbeddedStore {
    async fn create_claim(&self, q: QueueRef<'_>, params: ClaimParams) -> Result<Option<Claim>> {
        let (p, n) = (q.project.to_string(), q.name.to_string());
        let clock = self.clock.clone();
        let shard = self.shard_index(q);
        let (claim, moved) = self.shards[shard]
            .write(move |txn| {
                let now = clock.now();
                let mut picked = {
                    let mt = txn.open_table(MSGS).map_err(se)?;
                    select_free(&mt, &p, &n, now, params.limit)?
                };
                // Dead-lettering: messages already claimed the maximum number of times move.
                let mut moved = Vec::new();
                let mut delta = bytes::Delta::default();
                if let Some(dl) = &params.dead_letter {
                    let (exhausted, keep): (Vec<_>, Vec<_>) = picked
                        .into_iter()
                        .partition(|(_, rec)| rec.claim_count >= dl.max_claim_count);
                    picked = keep;
                    for (marker, mut rec) in exhausted {
                        let stored_expires = rec.expires;
                        rec.claim = None;
                        rec.claim_count = 0;
                        rec.moved_from = Some(n.clone());
                        if let Some(ttl) = dl.ttl {
                            rec.ttl = ttl;
                            rec.expires = now + secs(ttl);
                        }
                        moved.push(take_for_move(
                            txn,
                            &p,
                            &n,
                            marker,
                            stored_expires,
                            rec,
                            &mut delta,
                        )?);
                    }
                }
                let any_moved = !moved.is_empty();
                zaqar_core::metrics::messages_dead_lettered(moved.len() as u64);
                if let (Some(dl), true) = (&params.dead_letter, any_moved) {
                    queue_transfers(
                        txn,
                        vec![OutboxRecord {
                            project: p.clone(),
                            target: dl.queue.clone(),
                            messages: moved,
                        }],
                    )?;
                }
                if picked.is_empty() {
                    delta.apply(txn, &p, &n)?;
                    return Ok((None, any_moved));
                }
                let cid = uuid::Uuid::new_v4().simple().to_string();
                let expires = now + secs(params.ttl);
                let mut mt = txn.open_table(MSGS).map_err(se)?;
                let bt = txn.open_table(BODIES).map_err(se)?;
                let mut messages = Vec::with_capacity(picked.len());
                let mut markers = Vec::with_capacity(picked.len());
                for (marker, mut rec) in picked {
                    rec.claim = Some((cid.clone(), expires));
                    rec.claim_count += 1;
                    let stored_expires = rec.expires;
                    (rec.ttl, rec.expires) =
                        extend_for_claim(rec.ttl, rec.expires, params.ttl, expires, params.grace);
                    let key = (p.as_str(), n.as_str(), marker);
                    mt.insert(key, encode(&rec)?.as_slice()).map_err(se)?;
                    let body = read_body(&bt, &p, &n, marker)?;
                    if rec.expires != stored_expires && bt.get(key).map_err(se)?.is_some() {
                        delta.reschedule(stored_expires, rec.expires, body.len());
                    }
                    messages.push(to_message(marker, rec, &body)?);
                    markers.push(marker);
                }
                drop((mt, bt));
                delta.apply(txn, &p, &n)?;
                let rec = ClaimRecord {
                    ttl: params.ttl,
                    updated: now,
                    expires,
                    markers,
                };
                txn.open_table(CLAIMS)
                    .map_err(se)?
                    .insert(
                        (p.as_str(), n.as_str(), cid.as_str()),
                        encode(&rec)?.as_slice(),
                    )
                    .map_err(se)?;
                let claim = Claim {
                    id: cid,
                    ttl: params.ttl,
                    updated: now,
                    expires,
                    messages,
                };
                Ok((Some(claim), any_moved))
            })
            .await?;
        if moved {
            self.drain_outbox_logged(shard).await;
        }
        Ok(claim)
    }

    async fn get_claim(&self, q: QueueRef<'_>, claim_id: &str) -> Result<Option<Claim>> {
        let now = self.clock.now();
        let (p, n) = (q.project, q.name);
        let rtx = self.shard(q).read()?;
        let ct = rtx.open_table(CLAIMS).map_err(se)?;
        let Some(g) = ct.get((p, n, claim_id)).map_err(se)? else {
            return Ok(None);
        };
        let rec: ClaimRecord = decode(g.value())?;
        if rec.expires <= now {
            return Ok(None);
        }
        let mt = rtx.open_table(MSGS).map_err(se)?;
        let bt = rtx.open_table(BODIES).map_err(se)?;
        let mut messages = Vec::new();
        for marker in &rec.markers {
            let Some(g) = mt.get((p, n, *marker)).map_err(se)? else {
                continue;
            };
            let m: MsgRecord = decode(g.value())?;
            if m.expires <= now || m.active_claim(now) != Some(claim_id) {
                continue;
            }
            let body = read_body(&bt, p, n, *marker)?;
            messages.push(to_message(*marker, m, &body)?);
        }
        Ok(Some(Claim {
            id: claim_id.to_string(),
            ttl: rec.ttl,
            updated: rec.updated,
            expires: rec.expires,
            messages,
        }))
    }

    async fn renew_claim(
        &self,
        q: QueueRef<'_>,
        claim_id: &str,
        ttl: i64,
        grace: i64,
    ) -> Result<bool> {
        let (p, n, cid) = (
            q.project.to_string(),
            q.name.to_string(),
            claim_id.to_string(),
        );
        let clock = self.clock.clone();
        self.shard(q)
            .write(move |txn| {
                let now = clock.now();
                let mut ct = txn.open_table(CLAIMS).map_err(se)?;
                let ckey = (p.as_str(), n.as_str(), cid.as_str());
                let mut rec: ClaimRecord = match ct.get(ckey).map_err(se)? {
                    Some(g) => decode(g.value())?,
                    None => return Ok(false),
                };
                if rec.expires <= now {
                    return Ok(false);
                }
                let expires = now + secs(ttl);
                let mut mt = txn.open_table(MSGS).map_err(se)?;
                let bt = txn.open_table(BODIES).map_err(se)?;
                let mut delta = bytes::Delta::default();
                let mut kept = Vec::with_capacity(rec.markers.len());
                for marker in &rec.markers {
                    let key = (p.as_str(), n.as_str(), *marker);
                    let Some(g) = mt.get(key).map_err(se)? else {
                        continue;
                    };
                    let mut m: MsgRecord = decode(g.value())?;
                    drop(g);
                    if m.expires <= now || m.active_claim(now) != Some(cid.as_str()) {
                        continue;
                    }
                    m.claim = Some((cid.clone(), expires));
                    let stored_expires = m.expires;
                    (m.ttl, m.expires) = extend_for_claim(m.ttl, m.expires, ttl, expires, grace);
                    if m.expires != stored_expires {
                        if let Some(b) = bt.get(key).map_err(se)? {
                            delta.reschedule(stored_expires, m.expires, b.value().len());
                        }
                    }
                    mt.insert(key, encode(&m)?.as_slice()).map_err(se)?;
                    kept.push(*marker);
                }
                drop((mt, bt));
                delta.apply(txn, &p, &n)?;
                rec.ttl = ttl;
                rec.updated = now;
                rec.expires = expires;
                rec.markers = kept;
                ct.insert(ckey, encode(&rec)?.as_slice()).map_err(se)?;
                Ok(true)
            })
            .await
    }

    async fn release_claim(&self, q: QueueRef<'_>, claim_id: &str) -> Result<()> {
        let (p, n, cid) = (
            q.project.to_string(),
            q.name.to_string(),
            claim_id.to_string(),
        );
        let clock = self.clock.clone();
        self.shard(q)
            .write(move |txn| {
                let now = clock.now();
                let mut ct = txn.open_table(CLAIMS).map_err(se)?;
                let ckey = (p.as_str(), n.as_str(), cid.as_str());
                let rec: ClaimRecord = match ct.remove(ckey).map_err(se)? {
                    Some(g) => decode(g.value())?,
                    None => return Ok(()),
                };
                let mut mt = txn.open_table(MSGS).map_err(se)?;
                for marker in rec.markers {
                    let key = (p.as_str(), n.as_str(), marker);
                    let Some(g) = mt.get(key).map_err(se)? else {
                        continue;
                    };
                    let mut m: MsgRecord = decode(g.value())?;
                    drop(g);
                    if m.active_claim(now) == Some(cid.as_str()) {
                        // Keep the id (pop shows the stale claim), end the lease now.
                        m.claim = Some((cid.clone(), now));
                        mt.insert(key, encode(&m)?.as_slice()).map_err(se)?;
                    }
                }
                Ok(())
            })
            .await
    }
}
