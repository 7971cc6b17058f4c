//! The default driver: a durable embedded store on redb (see `docs/adr/0001-embedded-store.md`).
//!
//! Queues are spread over N independent shards (one redb file and one writer thread each) by a
//! stable hash of (project, queue). All of one queue's data lives in one shard, so every
//! multi-step operation on a queue is one transaction of one shard; different shards commit in
//! parallel, and no lock spans all queues. Reads use MVCC snapshots and never wait for writers.

mod bytes;
mod records;
mod shard;
mod subs;

use std::collections::HashSet;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use redb::{ReadableTable, ReadableTableMetadata, WriteTransaction};
use serde_json::value::RawValue;

use zaqar_core::clock::{secs, Millis, SharedClock};
use zaqar_core::error::{Error, Result};
use zaqar_core::model::{
    Claim, ClaimParams, ListQuery, Message, MessageClaim, MessageStamp, Metadata, NewMessage,
    QueueFilter, QueueInfo, QueueRef, QueueStats, RedriveOutcome,
};
use zaqar_core::store::{
    check_bulk_delete_claim, decide_single_delete, extend_for_claim, ClaimStore, DataStore,
    DeleteTarget, MessageId, MessageStore, QueueStore,
};

use records::{
    decode, encode, encode_into, message_id, ClaimRecord, MovedMessage, MsgRecord, NotifyMsg,
    OutboxRecord, QueueRecord, BODIES, CLAIMS, COUNTERS, META, MSGS, NOTIFY, OUTBOX, QBYTES,
    QBYTES_BY_EXPIRY, QUEUES, SUBS, SUB_URIS, XFER_DONE,
};
use shard::{storage_error, Shard};

/// Settings of the embedded store (`[drivers:message_store:embedded]`).
#[derive(Debug, Clone)]
pub struct EmbeddedStoreConfig {
    pub path: std::path::PathBuf,
    pub shards: usize,
    pub cache_size_mb: usize,
    pub gc_interval_secs: u64,
}

/// Most expired entries removed per shard per sweep (keeps one GC transaction short).
const GC_BATCH: usize = 20_000;

const MANIFEST: &str = "MANIFEST";

pub struct EmbeddedStore {
    shards: Vec<Shard>,
    /// The post path's view of each source's subscriptions.
    sub_cache: Arc<subs::SubCache>,
    clock: SharedClock,
    gc_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// One drain at a time per shard: a transfer is applied, then removed, without a second
    /// drain replaying it in between.
    drain_locks: Vec<tokio::sync::Mutex<()>>,
    /// Where drains stop early, to simulate a crash in tests (see [`DrainStop`]).
    drain_stop: Mutex<DrainStop>,
}

/// A simulated crash point inside [`EmbeddedStore::drain_outbox`] (for recovery tests).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainStop {
    Never,
    BeforeApply,
    AfterApply,
    AfterOutboxRemoval,
}

/// Stable (version-independent) hash used to place a queue on a shard.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0u8)) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

fn se<E: std::fmt::Display>(e: E) -> Error {
    storage_error(e)
}

/// Upper bound for "every key of this queue" in a table keyed by (project, queue, &str).
fn successor(name: &str) -> String {
    format!("{name}\0")
}

fn to_message(marker: u64, rec: MsgRecord, body: &[u8]) -> Result<Message> {
    let text = String::from_utf8(body.to_vec()).map_err(se)?;
    let body = RawValue::from_string(text).map_err(se)?;
    Ok(Message {
        id: message_id(marker, rec.suffix),
        marker,
        body,
        ttl: rec.ttl,
        created: rec.created,
        expires: rec.expires,
        client_id: rec.client_id,
        claim: rec.claim.map(|(id, expires)| MessageClaim { id, expires }),
        claim_count: rec.claim_count,
        delay_expires: rec.delay_expires,
        checksum: rec.checksum,
        encrypted: rec.encrypted,
        moved_from: rec.moved_from,
    })
}

fn read_body(
    bodies: &impl ReadableTable<(&'static str, &'static str, u64), &'static [u8]>,
    p: &str,
    n: &str,
    marker: u64,
) -> Result<Vec<u8>> {
    Ok(bodies
        .get((p, n, marker))
        .map_err(se)?
        .map(|g| g.value().to_vec())
        .unwrap_or_else(|| b"null".to_vec()))
}

fn queue_info(name: &str, rec: &QueueRecord) -> Result<QueueInfo> {
    let metadata: Metadata = serde_json::from_str(&rec.metadata).map_err(se)?;
    Ok(QueueInfo {
        name: name.to_string(),
        metadata,
        version: rec.version,
        created: rec.created,
    })
}

/// Removes every message, body and claim of a queue inside `txn`.
fn purge_in(txn: &WriteTransaction, p: &str, n: &str) -> Result<()> {
    bytes::clear(txn, p, n)?;
    let mut msgs = txn.open_table(MSGS).map_err(se)?;
    msgs.retain_in((p, n, 0u64)..=(p, n, u64::MAX), |_, _| false)
        .map_err(se)?;
    let mut bodies = txn.open_table(BODIES).map_err(se)?;
    bodies
        .retain_in((p, n, 0u64)..=(p, n, u64::MAX), |_, _| false)
        .map_err(se)?;
    let mut claims = txn.open_table(CLAIMS).map_err(se)?;
    let succ = successor(n);
    claims
        .retain_in((p, n, "")..(p, succ.as_str(), ""), |_, _| false)
        .map_err(se)?;
    Ok(())
}

/// Appends messages at the tail of a queue inside `txn`, creating the queue (without metadata)
/// if needed; assigns markers and id suffixes. Returns the new ids in order.
fn append_in<B: AsRef<[u8]>>(
    txn: &WriteTransaction,
    p: &str,
    n: &str,
    now: Millis,
    items: impl IntoIterator<Item = (MsgRecord, B)>,
) -> Result<Vec<String>> {
    let key = (p, n);
    let mut queues = txn.open_table(QUEUES).map_err(se)?;
    if queues.get(key).map_err(se)?.is_none() {
        let rec = QueueRecord {
            created: now,
            version: 1,
            metadata: "{}".into(),
        };
        queues.insert(key, encode(&rec)?.as_slice()).map_err(se)?;
    }
    let mut counters = txn.open_table(COUNTERS).map_err(se)?;
    let last = counters
        .get(key)
        .map_err(se)?
        .map(|g| g.value())
        .unwrap_or(0);
    let mut mt = txn.open_table(MSGS).map_err(se)?;
    let mut bt = txn.open_table(BODIES).map_err(se)?;
    let items = items.into_iter();
    let mut ids = Vec::with_capacity(items.size_hint().0);
    let mut delta = bytes::Delta::default();
    // One encoding buffer for the whole batch.
    let mut buf = Vec::with_capacity(128);
    for (mut rec, body) in items {
        let marker = last + 1 + ids.len() as u64;
        rec.suffix = rand::random();
        let mkey = (p, n, marker);
        encode_into(&rec, &mut buf)?;
        mt.insert(mkey, buf.as_slice()).map_err(se)?;
        bt.insert(mkey, body.as_ref()).map_err(se)?;
        delta.add(rec.expires, body.as_ref().len());
        ids.push(message_id(marker, rec.suffix));
    }
    counters.insert(key, last + ids.len() as u64).map_err(se)?;
    delta.apply(txn, p, n)?;
    Ok(ids)
}

/// Up to `limit` of the oldest messages of a queue that are unexpired, unclaimed and not
/// delayed (what claims and pops take), with their markers.
fn select_free(
    msgs: &impl ReadableTable<(&'static str, &'static str, u64), &'static [u8]>,
    p: &str,
    n: &str,
    now: Millis,
    limit: usize,
) -> Result<Vec<(u64, MsgRecord)>> {
    let mut picked = Vec::new();
    if limit == 0 {
        return Ok(picked);
    }
    for e in msgs.range((p, n, 0u64)..=(p, n, u64::MAX)).map_err(se)? {
        let (k, v) = e.map_err(se)?;
        let rec: MsgRecord = decode(v.value())?;
        if rec.expires <= now || rec.active_claim(now).is_some() || rec.delay_expires > now {
            continue;
        }
        picked.push((k.value().2, rec));
        if picked.len() >= limit {
            break;
        }
    }
    Ok(picked)
}

/// Takes a message out of its queue into a transfer, inside `txn`; `stored_expires` is the
/// expiry it was stored with (`rec` may carry a new one), for the byte accounting in `delta`.
fn take_for_move(
    txn: &WriteTransaction,
    p: &str,
    n: &str,
    marker: u64,
    stored_expires: Millis,
    rec: MsgRecord,
    delta: &mut bytes::Delta,
) -> Result<MovedMessage> {
    let key = (p, n, marker);
    let body = txn
        .open_table(BODIES)
        .map_err(se)?
        .remove(key)
        .map_err(se)?
        .map(|g| g.value().to_vec());
    if let Some(b) = &body {
        delta.remove(stored_expires, b.len());
    }
    let body = body.unwrap_or_else(|| b"null".to_vec());
    txn.open_table(MSGS).map_err(se)?.remove(key).map_err(se)?;
    Ok(MovedMessage { rec, body })
}

/// Records pending transfers in the shard's outbox, inside `txn`.
fn queue_transfers(txn: &WriteTransaction, transfers: Vec<OutboxRecord>) -> Result<usize> {
    let mut outbox = txn.open_table(OUTBOX).map_err(se)?;
    let count = transfers.len();
    for t in transfers {
        let id = uuid::Uuid::new_v4().simple().to_string();
        outbox
            .insert(id.as_str(), encode(&t)?.as_slice())
            .map_err(se)?;
    }
    Ok(count)
}

fn claim_is_live(
    claims: &impl ReadableTable<(&'static str, &'static str, &'static str), &'static [u8]>,
    p: &str,
    n: &str,
    cid: &str,
    now: Millis,
) -> Result<bool> {
    match claims.get((p, n, cid)).map_err(se)? {
        Some(g) => Ok(decode::<ClaimRecord>(g.value())?.expires > now),
        None => Ok(false),
    }
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `cfg.path`.
    pub fn open(cfg: &EmbeddedStoreConfig, clock: SharedClock) -> Result<Arc<EmbeddedStore>> {
        let dir = &cfg.path;
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Unavailable(format!(
                "cannot create the data directory {}: {e}",
                dir.display()
            ))
        })?;
        let shards = Self::shard_count(dir, cfg.shards)?;
        let cache = (cfg.cache_size_mb << 20) / shards;
        let mut opened = Vec::with_capacity(shards);
        for i in 0..shards {
            let shard = Shard::open(&dir.join(format!("shard-{i:02}.redb")), cache, i)?;
            // Create every table up front so read transactions always find them.
            let txn = shard.db.begin_write().map_err(se)?;
            txn.open_table(QUEUES).map_err(se)?;
            txn.open_table(COUNTERS).map_err(se)?;
            txn.open_table(MSGS).map_err(se)?;
            txn.open_table(BODIES).map_err(se)?;
            txn.open_table(CLAIMS).map_err(se)?;
            txn.open_table(OUTBOX).map_err(se)?;
            txn.open_table(XFER_DONE).map_err(se)?;
            txn.open_table(SUBS).map_err(se)?;
            txn.open_table(SUB_URIS).map_err(se)?;
            txn.open_table(QBYTES).map_err(se)?;
            txn.open_table(QBYTES_BY_EXPIRY).map_err(se)?;
            txn.open_table(META).map_err(se)?;
            bytes::initialize(&txn)?;
            {
                // Leases on notification batches belong to a process that is gone: this store
                // is not shared, so release them all.
                let mut notify = txn.open_table(NOTIFY).map_err(se)?;
                subs::release_leases(&mut notify)?;
            }
            txn.commit().map_err(se)?;
            opened.push(shard);
        }
        Ok(Arc::new(EmbeddedStore {
            drain_locks: opened.iter().map(|_| tokio::sync::Mutex::new(())).collect(),
            shards: opened,
            sub_cache: Arc::default(),
            clock,
            gc_task: Mutex::new(None),
            drain_stop: Mutex::new(DrainStop::Never),
        }))
    }

    /// The shard count is fixed when the store is created and recorded in its manifest.
    fn shard_count(dir: &Path, wanted: usize) -> Result<usize> {
        let path = dir.join(MANIFEST);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                    Error::Unavailable(format!("corrupt manifest {}: {e}", path.display()))
                })?;
                let n = v["shards"]
                    .as_u64()
                    .filter(|n| (1..=64).contains(n))
                    .ok_or_else(|| {
                        Error::Unavailable(format!("corrupt manifest {}", path.display()))
                    })? as usize;
                if n != wanted {
                    tracing::warn!(
                        stored = n,
                        configured = wanted,
                        "the store was created with a different shard count; using the stored one"
                    );
                }
                Ok(n)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let tmp = dir.join("MANIFEST.tmp");
                let text = serde_json::json!({"format": 1, "shards": wanted}).to_string();
                let write = || -> std::io::Result<()> {
                    use std::io::Write;
                    let mut f = std::fs::File::create(&tmp)?;
                    f.write_all(text.as_bytes())?;
                    f.sync_all()?;
                    std::fs::rename(&tmp, &path)?;
                    std::fs::File::open(dir)?.sync_all()
                };
                write().map_err(|e| {
                    Error::Unavailable(format!("cannot write {}: {e}", path.display()))
                })?;
                Ok(wanted)
            }
            Err(e) => Err(Error::Unavailable(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    fn shard_index(&self, q: QueueRef<'_>) -> usize {
        (fnv1a(&[q.project, q.name]) % self.shards.len() as u64) as usize
    }

    fn shard(&self, q: QueueRef<'_>) -> &Shard {
        &self.shards[self.shard_index(q)]
    }

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

    async fn drain_outbox_logged(&self, i: usize) {
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
                subs::queue_notification(txn, (&cache, &aborts), &p, &n, now, || {
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

#[async_trait]
impl DataStore for EmbeddedStore {
    async fn ping(&self) -> Result<()> {
        for s in &self.shards {
            s.read()?;
        }
        Ok(())
    }

    fn subscriptions(&self) -> Option<&dyn zaqar_core::store::SubscriptionStore> {
        Some(self)
    }

    async fn shutdown(&self) {
        if let Some(t) = self.gc_task.lock().unwrap().take() {
            t.abort();
        }
        for s in &self.shards {
            s.shutdown().await;
        }
    }
}
