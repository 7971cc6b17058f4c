//! Messages of the embedded store: post, list, get, delete, pop, stats and redrive.

use std::collections::HashSet;

use async_trait::async_trait;
use redb::ReadableTable;
use serde_json::value::RawValue;

use zaqar_core::clock::secs;
use zaqar_core::error::Result;
use zaqar_core::model::{
    ListQuery, Message, MessageStamp, NewMessage, QueueRef, QueueStats, RedriveOutcome,
};
use zaqar_core::store::{
    check_bulk_delete_claim, decide_single_delete, DeleteTarget, MessageId, MessageStore,
};

use super::records::{
    decode, message_id, MovedMessage, MsgRecord, NotifyMsg, OutboxRecord, BODIES, CLAIMS, MSGS,
};
use super::txn::{
    append_in, claim_is_live, purge_in, queue_transfers, read_body, select_free, take_for_move,
    to_message,
};
use super::{bytes, se, sub_cache, EmbeddedStore};

#[async_trait]
impl MessageStore for EmbeddedStore {
    async fn post_messages(
        &self,
        q: QueueRef<'_>,
        client_id: &str,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<String>> {
        let (p, n, client) = (
            q.project.to_string(),
            q.name.to_string(),
            client_id.to_string(),
        );
        let clock = self.clock.clone();
        let mut messages = messages;
        let (cache, aborts) = (self.sub_cache.clone(), self.shard(q).aborts());
        self.shard(q)
            .write(move |txn| {
                let now = clock.now();
                // Bodies are written from the request's buffers; they are copied only for a
                // notification, i.e. when the queue has subscribers.
                let items = messages.iter_mut().map(|m| {
                    let NewMessage { body, checksum, .. } = m;
                    let body: &RawValue = body;
                    let rec = MsgRecord {
                        suffix: 0,
                        ttl: m.ttl,
                        created: now,
                        expires: now + secs(m.ttl),
                        client_id: client.clone(),
                        claim: None,
                        claim_count: 0,
                        delay_expires: now + secs(m.delay),
                        checksum: checksum.take(),
                        encrypted: m.encrypted,
                        moved_from: None,
                    };
                    (rec, body.get().as_bytes())
                });
                let ids = append_in(txn, &p, &n, now, items)?;
                sub_cache::queue_notification(txn, (&cache, &aborts), &p, &n, now, || {
                    ids.iter()
                        .zip(&messages)
                        .map(|(id, m)| NotifyMsg {
                            id: id.clone(),
                            body: m.body.get().as_bytes().to_vec(),
                            ttl: m.ttl,
                            delay: m.delay,
                            encrypted: m.encrypted,
                        })
                        .collect()
                })?;
                Ok(ids)
            })
            .await
    }

    async fn list_messages(&self, q: QueueRef<'_>, query: &ListQuery) -> Result<Vec<Message>> {
        let now = self.clock.now();
        let (p, n) = (q.project, q.name);
        let start = match query.marker {
            Some(u64::MAX) => return Ok(Vec::new()),
            Some(m) => m + 1,
            None => 0,
        };
        let rtx = self.shard(q).read()?;
        let mt = rtx.open_table(MSGS).map_err(se)?;
        let bt = rtx.open_table(BODIES).map_err(se)?;
        let mut out = Vec::new();
        if query.limit == 0 {
            return Ok(out);
        }
        for e in mt.range((p, n, start)..=(p, n, u64::MAX)).map_err(se)? {
            let (k, v) = e.map_err(se)?;
            let marker = k.value().2;
            let rec: MsgRecord = decode(v.value())?;
            if rec.expires <= now
                || (!query.include_claimed && rec.active_claim(now).is_some())
                || (!query.include_delayed && rec.delay_expires > now)
                || query.exclude_client.as_deref() == Some(rec.client_id.as_str())
            {
                continue;
            }
            let body = read_body(&bt, p, n, marker)?;
            out.push(to_message(marker, rec, &body)?);
            if out.len() >= query.limit {
                break;
            }
        }
        Ok(out)
    }

    async fn get_messages(&self, q: QueueRef<'_>, ids: &[String]) -> Result<Vec<Message>> {
        let now = self.clock.now();
        let (p, n) = (q.project, q.name);
        let rtx = self.shard(q).read()?;
        let mt = rtx.open_table(MSGS).map_err(se)?;
        let bt = rtx.open_table(BODIES).map_err(se)?;
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for id in ids {
            let Some(MessageId { marker, suffix }) = MessageId::parse(id) else {
                continue;
            };
            if !seen.insert(marker) {
                continue;
            }
            let Some(g) = mt.get((p, n, marker)).map_err(se)? else {
                continue;
            };
            let rec: MsgRecord = decode(g.value())?;
            if rec.suffix != suffix || rec.expires <= now {
                continue;
            }
            let body = read_body(&bt, p, n, marker)?;
            out.push(to_message(marker, rec, &body)?);
        }
        Ok(out)
    }

    async fn delete_messages(
        &self,
        q: QueueRef<'_>,
        ids: &[String],
        claim_ids: Option<&[String]>,
    ) -> Result<()> {
        let (p, n) = (q.project.to_string(), q.name.to_string());
        let ids = ids.to_vec();
        let claim_ids = claim_ids.map(|c| c.to_vec());
        let clock = self.clock.clone();
        self.shard(q)
            .write(move |txn| {
                let now = clock.now();
                let mut mt = txn.open_table(MSGS).map_err(se)?;
                let mut targets = Vec::new();
                for id in &ids {
                    let Some(MessageId { marker, suffix }) = MessageId::parse(id) else {
                        continue;
                    };
                    let key = (p.as_str(), n.as_str(), marker);
                    let Some(g) = mt.get(key).map_err(se)? else {
                        continue;
                    };
                    let rec: MsgRecord = decode(g.value())?;
                    if rec.suffix != suffix || rec.expires <= now {
                        continue;
                    }
                    if let Some(cids) = &claim_ids {
                        check_bulk_delete_claim(id, rec.active_claim(now), cids)?;
                    }
                    targets.push((marker, rec.expires));
                }
                let mut bt = txn.open_table(BODIES).map_err(se)?;
                let mut delta = bytes::Delta::default();
                for (marker, expires) in targets {
                    let key = (p.as_str(), n.as_str(), marker);
                    if mt.remove(key).map_err(se)?.is_none() {
                        continue; // the same id twice
                    }
                    if let Some(b) = bt.remove(key).map_err(se)? {
                        delta.remove(expires, b.value().len());
                    }
                }
                delta.apply(txn, &p, &n)
            })
            .await
    }

    async fn pop_messages(&self, q: QueueRef<'_>, limit: usize) -> Result<Vec<Message>> {
        let (p, n) = (q.project.to_string(), q.name.to_string());
        let clock = self.clock.clone();
        self.shard(q)
            .write(move |txn| {
                let now = clock.now();
                let mut mt = txn.open_table(MSGS).map_err(se)?;
                let picked = select_free(&mt, &p, &n, now, limit)?;
                let mut bt = txn.open_table(BODIES).map_err(se)?;
                let mut out = Vec::with_capacity(picked.len());
                let mut delta = bytes::Delta::default();
                for (marker, rec) in picked {
                    let key = (p.as_str(), n.as_str(), marker);
                    let body = read_body(&bt, &p, &n, marker)?;
                    mt.remove(key).map_err(se)?;
                    if bt.remove(key).map_err(se)?.is_some() {
                        delta.remove(rec.expires, body.len());
                    }
                    out.push(to_message(marker, rec, &body)?);
                }
                delta.apply(txn, &p, &n)?;
                Ok(out)
            })
            .await
    }

    async fn delete_message(
        &self,
        q: QueueRef<'_>,
        id: &str,
        claim_id: Option<&str>,
    ) -> Result<()> {
        let (p, n) = (q.project.to_string(), q.name.to_string());
        let id = id.to_string();
        let claim_id = claim_id.map(str::to_string);
        let clock = self.clock.clone();
        self.shard(q)
            .write(move |txn| {
                let now = clock.now();
                let Some(MessageId { marker, suffix }) = MessageId::parse(&id) else {
                    return Ok(());
                };
                let key = (p.as_str(), n.as_str(), marker);
                let mut mt = txn.open_table(MSGS).map_err(se)?;
                let rec: Option<MsgRecord> = match mt.get(key).map_err(se)? {
                    Some(g) => Some(decode(g.value())?),
                    None => None,
                };
                let rec = rec.filter(|r| r.suffix == suffix && r.expires > now);
                let target = rec.as_ref().map(|r| DeleteTarget {
                    active_claim: r.active_claim(now),
                });
                let claims = txn.open_table(CLAIMS).map_err(se)?;
                let delete = decide_single_delete(target, claim_id.as_deref(), |cid| {
                    claim_is_live(&claims, &p, &n, cid, now)
                })?;
                if let (true, Some(rec)) = (delete, rec) {
                    mt.remove(key).map_err(se)?;
                    let size = txn
                        .open_table(BODIES)
                        .map_err(se)?
                        .remove(key)
                        .map_err(se)?
                        .map(|b| b.value().len());
                    if let Some(size) = size {
                        let mut delta = bytes::Delta::default();
                        delta.remove(rec.expires, size);
                        delta.apply(txn, &p, &n)?;
                    }
                }
                Ok(())
            })
            .await
    }

    async fn queue_stats(&self, q: QueueRef<'_>) -> Result<QueueStats> {
        let now = self.clock.now();
        let (p, n) = (q.project, q.name);
        let rtx = self.shard(q).read()?;
        let mt = rtx.open_table(MSGS).map_err(se)?;
        let mut stats = QueueStats::default();
        for e in mt.range((p, n, 0u64)..=(p, n, u64::MAX)).map_err(se)? {
            let (k, v) = e.map_err(se)?;
            let rec: MsgRecord = decode(v.value())?;
            if rec.expires <= now {
                continue;
            }
            stats.total += 1;
            if rec.active_claim(now).is_some() {
                stats.claimed += 1;
            }
            if rec.delay_expires > now {
                stats.delayed += 1;
            }
            let stamp = MessageStamp {
                id: message_id(k.value().2, rec.suffix),
                created: rec.created,
            };
            if stats.oldest.is_none() {
                stats.oldest = Some(stamp.clone());
            }
            stats.newest = Some(stamp);
        }
        Ok(stats)
    }

    async fn redrive_messages(
        &self,
        q: QueueRef<'_>,
        target: Option<&str>,
        limit: Option<usize>,
    ) -> Result<RedriveOutcome> {
        let (p, n) = (q.project.to_string(), q.name.to_string());
        let target = target.map(str::to_string);
        let clock = self.clock.clone();
        let shard = self.shard_index(q);
        let outcome = self.shards[shard]
            .write(move |txn| {
                let now = clock.now();
                let limit = limit.unwrap_or(usize::MAX);
                let mut picked = Vec::new();
                let mut skipped = 0;
                {
                    let mt = txn.open_table(MSGS).map_err(se)?;
                    for e in mt
                        .range((p.as_str(), n.as_str(), 0u64)..=(p.as_str(), n.as_str(), u64::MAX))
                        .map_err(se)?
                    {
                        if picked.len() >= limit {
                            break;
                        }
                        let (k, v) = e.map_err(se)?;
                        let rec: MsgRecord = decode(v.value())?;
                        if rec.expires <= now || rec.active_claim(now).is_some() {
                            continue;
                        }
                        match target.clone().or_else(|| rec.moved_from.clone()) {
                            Some(dest) if dest != n => picked.push((k.value().2, rec, dest)),
                            _ => skipped += 1,
                        }
                    }
                }
                let moved = picked.len() as u64;
                let mut by_target: std::collections::BTreeMap<String, Vec<MovedMessage>> =
                    Default::default();
                let mut delta = bytes::Delta::default();
                for (marker, mut rec, dest) in picked {
                    rec.claim = None;
                    rec.claim_count = 0;
                    rec.moved_from = None;
                    let expires = rec.expires;
                    by_target.entry(dest).or_default().push(take_for_move(
                        txn, &p, &n, marker, expires, rec, &mut delta,
                    )?);
                }
                delta.apply(txn, &p, &n)?;
                let targets: Vec<String> = by_target.keys().cloned().collect();
                let transfers = by_target
                    .into_iter()
                    .map(|(target, messages)| OutboxRecord {
                        project: p.clone(),
                        target,
                        messages,
                    })
                    .collect();
                queue_transfers(txn, transfers)?;
                Ok(RedriveOutcome {
                    moved,
                    skipped,
                    targets,
                })
            })
            .await?;
        if outcome.moved > 0 {
            self.drain_outbox_logged(shard).await;
        }
        Ok(outcome)
    }

    async fn purge_messages(&self, q: QueueRef<'_>) -> Result<()> {
        let (p, n) = (q.project.to_string(), q.name.to_string());
        self.shard(q).write(move |txn| purge_in(txn, &p, &n)).await
    }
}
