//! The Redis message store (`[drivers] message_store = redis`). See `docs/redis.md` for the key
//! layout, the durability each Redis persistence setting gives, and how cross-queue moves stay
//! exactly-once.
//!
//! Every operation on a queue is one Lua script over keys that share the queue's hash slot, so
//! it is atomic on the server (also between API nodes sharing one Redis) and runs on one shard
//! of a Redis Cluster. Time comes from the service's [`Clock`](zaqar_core::clock::Clock) and is passed
//! to the scripts, never read from Redis. Every call is bounded by `operation_timeout_ms`: an
//! unreachable Redis gives `Error::Unavailable` (503), and the shared connection reconnects by
//! itself when Redis is back.
//!
//! Moves to another queue (dead-lettering, redrive) may cross slots. They go through an outbox
//! in the source queue's slot (written by the same script that takes the messages), are applied
//! to the target by a script that records a done-marker in the target's slot (so a replay is a
//! no-op), then removed from the outbox by the lease holder, then the marker is dropped. A
//! crash anywhere leaves a state from which the next drain (at once, or by the background sweep)
//! neither loses nor duplicates a message.

mod conn;
mod keys;
mod scripts;
mod subs;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::{FromRedisValue, ScriptInvocation, Value};
use serde_json::value::RawValue;

use zaqar_core::clock::{Millis, SharedClock};
use zaqar_core::error::{Error, Result};
use zaqar_core::hub::Hub;
use zaqar_core::model::{
    Claim, ClaimParams, ListQuery, Message, MessageClaim, MessageStamp, Metadata, NewMessage,
    QueueFilter, QueueInfo, QueueRef, QueueStats, RedriveOutcome,
};
use zaqar_core::store::{
    check_bulk_delete_claim, decide_single_delete, ClaimStore, DataStore, DeleteTarget, MessageId,
    MessageStore, QueueStore,
};

use conn::{Conn, PubSubSource, Timeouts};
use keys::Keys;
use scripts::Scripts;

/// Settings of the Redis store (`[drivers:message_store:redis]`; the URI is
/// `[drivers:message_store:redis] uri`).
#[derive(Debug, Clone)]
pub struct RedisStoreConfig {
    pub key_prefix: String,
    pub connect_timeout_ms: u64,
    pub operation_timeout_ms: u64,
    pub gc_interval_secs: u64,
}

/// How long a drainer holds an outbox entry before another may take it over.
const LEASE_MS: i64 = 30_000;
/// Done-markers older than this are dropped by the sweep (a drain that needs one has long
/// finished or had its lease taken over).
const DONE_MARKER_AGE_MS: i64 = 3_600_000;
/// Most expired entries one queue sweep removes (keeps a script short).
const SWEEP_BATCH: usize = 1000;
/// Entries a listing script examines per call.
const LIST_SCAN: usize = 1000;

/// A simulated crash point inside a drain of the outbox (recovery tests only).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainStop {
    Never,
    BeforeApply,
    AfterApply,
    AfterOutboxRemoval,
}

pub struct RedisStore {
    conn: Conn,
    pubsub: PubSubSource,
    keys: Keys,
    scripts: Scripts,
    clock: SharedClock,
    timeouts: Timeouts,
    /// Identifies this process in published events, so it ignores its own.
    node: String,
    channel: String,
    closed: Arc<AtomicBool>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    drain_stop: Mutex<DrainStop>,
}

fn field(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Okay => Some("OK".into()),
        _ => None,
    }
}

fn int(v: &Value) -> i64 {
    field(v).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn array(v: Value) -> Result<Vec<Value>> {
    match v {
        Value::Array(a) => Ok(a),
        Value::Nil => Ok(Vec::new()),
        other => Err(Error::Internal(format!(
            "unexpected reply from Redis: {other:?}"
        ))),
    }
}

fn bad_reply(what: &str) -> Error {
    Error::Internal(format!("unexpected reply from Redis ({what})"))
}

/// The id of a stored message: its marker and the suffix its record keeps as hex text
/// (see [`MessageId`]).
fn message_id(marker: u64, suffix: &str) -> Result<String> {
    let suffix = MessageId::parse_suffix(suffix).ok_or_else(|| bad_reply("message suffix"))?;
    Ok(MessageId::new(marker, suffix).text())
}

/// The marker of an id and its suffix as records keep it.
fn parse_message_id(id: &str) -> Option<(u64, String)> {
    MessageId::parse(id).map(|i| (i.marker, MessageId::suffix_hex(i.suffix)))
}

/// A stored message: a MessagePack array (written by the driver on post, read and rewritten
/// by the scripts with `cmsgpack`). Absent values are `""` / `0` so the array has no holes:
/// suffix, ttl, created, expires, client id, claim id, claim expiry, claim count, delay expiry,
/// checksum, encrypted (0/1), moved from, body (JSON text).
type Record = (
    String,
    i64,
    i64,
    i64,
    String,
    String,
    i64,
    i64,
    i64,
    String,
    i64,
    String,
    String,
);

fn encode_record(r: &Record) -> Result<Vec<u8>> {
    rmp_serde::to_vec(r).map_err(|e| Error::Internal(format!("cannot encode a message: {e}")))
}

fn to_message(marker: &Value, raw: &Value) -> Result<Message> {
    let marker: u64 = field(marker)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad_reply("marker"))?;
    let Value::BulkString(raw) = raw else {
        return Err(bad_reply("message record"));
    };
    let (suffix, ttl, created, expires, client_id, cid, cexp, cc, delay, checksum, enc, mf, body): Record =
        rmp_serde::from_slice(raw)
            .map_err(|e| Error::Internal(format!("corrupt message record: {e}")))?;
    let body = RawValue::from_string(body).map_err(|e| Error::Internal(e.to_string()))?;
    let some = |s: String| (!s.is_empty()).then_some(s);
    Ok(Message {
        id: message_id(marker, &suffix)?,
        marker,
        body,
        ttl,
        created,
        expires,
        client_id,
        claim: some(cid).map(|id| MessageClaim { id, expires: cexp }),
        claim_count: cc.clamp(0, u32::MAX as i64) as u32,
        delay_expires: delay,
        checksum: some(checksum),
        encrypted: enc == 1,
        moved_from: some(mf),
    })
}

/// Messages as the scripts return them: marker, record, marker, record, ...
fn to_messages(v: Value) -> Result<Vec<Message>> {
    let flat = array(v)?;
    if flat.len() % 2 != 0 {
        return Err(bad_reply("message list"));
    }
    flat.chunks(2).map(|p| to_message(&p[0], &p[1])).collect()
}

impl RedisStore {
    /// Connects to the Redis named by `uri`. With a standalone or Sentinel URI the connection
    /// is made on first use, so the store opens while Redis is still down; a cluster is asked
    /// for its slot map now.
    pub async fn open(
        uri: &str,
        cfg: &RedisStoreConfig,
        clock: SharedClock,
    ) -> Result<Arc<RedisStore>> {
        let target = conn::parse_uri(uri)?;
        let timeouts = Timeouts {
            connect: Duration::from_millis(cfg.connect_timeout_ms),
            operation: Duration::from_millis(cfg.operation_timeout_ms),
        };
        let (conn, pubsub) = conn::connect(&target, timeouts).await?;
        let keys = Keys::new(&cfg.key_prefix);
        Ok(Arc::new(RedisStore {
            conn,
            pubsub,
            channel: keys.channel(),
            keys,
            scripts: Scripts::new(),
            clock,
            timeouts,
            node: uuid::Uuid::new_v4().simple().to_string(),
            closed: Arc::new(AtomicBool::new(false)),
            tasks: Mutex::new(Vec::new()),
            drain_stop: Mutex::new(DrainStop::Never),
        }))
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Unavailable("the message store is shut down".into()))
        } else {
            Ok(())
        }
    }

    fn timed_out(&self) -> Error {
        Error::Unavailable(format!(
            "the Redis message store did not answer within {} ms",
            self.timeouts.operation.as_millis()
        ))
    }

    /// Runs a script, bounded by the operation timeout.
    async fn eval<T: FromRedisValue>(&self, inv: &ScriptInvocation<'_>) -> Result<T> {
        self.check_open()?;
        let mut conn = self.conn.clone();
        match tokio::time::timeout(self.timeouts.operation, inv.invoke_async(&mut conn)).await {
            Ok(r) => r.map_err(conn::map_err),
            Err(_) => Err(self.timed_out()),
        }
    }

    /// Runs a plain command, bounded by the operation timeout.
    async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T> {
        self.check_open()?;
        let mut conn = self.conn.clone();
        match tokio::time::timeout(self.timeouts.operation, cmd.query_async(&mut conn)).await {
            Ok(r) => r.map_err(conn::map_err),
            Err(_) => Err(self.timed_out()),
        }
    }

    fn qkey(&self, q: QueueRef<'_>) -> String {
        self.keys.queue(q)
    }

    /// A key of the queue other than its record (`part` replaces the final `q`).
    fn qpart(&self, q: QueueRef<'_>, part: &str) -> String {
        let mut k = self.keys.queue(q);
        k.pop();
        k.push_str(part);
        k
    }

    fn event(&self, q: QueueRef<'_>) -> String {
        self.keys.event(&self.node, q)
    }

    /// Enters the queue in its project's index (and the project in the set of projects), then
    /// flags the queue as indexed. Runs after the queue record exists; a crash in between
    /// leaves the flag unset and the next write to the queue repeats this.
    async fn index_queue(&self, q: QueueRef<'_>) -> Result<()> {
        let mut zadd = redis::cmd("ZADD");
        zadd.arg(self.keys.project_index(q.project))
            .arg(0)
            .arg(q.name);
        let mut sadd = redis::cmd("SADD");
        sadd.arg(self.keys.projects()).arg(q.project);
        let (a, b) = tokio::join!(self.query::<i64>(&zadd), self.query::<i64>(&sadd));
        a?;
        b?;
        let mut inv = self.scripts.mark_indexed.key(self.qkey(q));
        inv.arg(0);
        self.eval::<i64>(&inv).await?;
        Ok(())
    }

    async fn index_queue_logged(&self, q: QueueRef<'_>) {
        if let Err(e) = self.index_queue(q).await {
            tracing::warn!(error = %e, "queue index update failed; the next write will retry it");
        }
    }

    async fn queue_info(&self, q: QueueRef<'_>) -> Result<Option<QueueInfo>> {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.qkey(q)).arg("c").arg("v").arg("md");
        let (c, v, md): (Option<i64>, Option<u64>, Option<String>) = self.query(&cmd).await?;
        let (Some(c), Some(v)) = (c, v) else {
            return Ok(None);
        };
        let metadata: Metadata = serde_json::from_str(md.as_deref().unwrap_or("{}"))
            .map_err(|e| Error::Internal(format!("corrupt queue metadata: {e}")))?;
        Ok(Some(QueueInfo {
            name: q.name.to_string(),
            metadata,
            version: v,
            created: c,
        }))
    }

    /// Applies the pending moves out of queue `q` (see the module docs). Returns how many
    /// transfers this call completed.
    pub async fn drain(&self, q: QueueRef<'_>) -> Result<usize> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let qk = self.qkey(q);
        let stop = *self.drain_stop.lock().unwrap();
        let mut done = 0;
        loop {
            let mut lease = self.scripts.outbox_lease.key(&qk);
            lease
                .arg(self.clock.now())
                .arg(&token)
                .arg(LEASE_MS)
                .arg(16);
            let leased = array(self.eval::<Value>(&lease).await?)?;
            if leased.is_empty() {
                return Ok(done);
            }
            for entry in leased.chunks(3) {
                let [tid, target, payload] = entry else {
                    return Err(bad_reply("outbox entry"));
                };
                let (Some(tid), Some(target)) = (field(tid), field(target)) else {
                    return Err(bad_reply("outbox entry"));
                };
                let payload = match payload {
                    Value::BulkString(b) => b.clone(),
                    _ => return Err(bad_reply("outbox payload")),
                };
                if stop == DrainStop::BeforeApply {
                    return Ok(done);
                }
                let tq = QueueRef::new(q.project, &target);
                let mut apply = self.scripts.outbox_apply.key(self.qkey(tq));
                apply
                    .arg(self.clock.now())
                    .arg(&tid)
                    .arg(payload)
                    .arg(&self.channel)
                    .arg(self.event(tq));
                let (_, indexed): (i64, i64) = self.eval(&apply).await?;
                if indexed == 0 {
                    self.index_queue_logged(tq).await;
                }
                if stop == DrainStop::AfterApply {
                    return Ok(done);
                }
                let mut fin = self.scripts.outbox_done.key(&qk);
                fin.arg(&tid).arg(&token);
                let removed: i64 = self.eval(&fin).await?;
                if stop == DrainStop::AfterOutboxRemoval {
                    return Ok(done);
                }
                if removed == 1 {
                    let mut hdel = redis::cmd("HDEL");
                    hdel.arg(self.qpart(tq, "xd")).arg(&tid);
                    self.query::<i64>(&hdel).await?;
                    done += 1;
                }
            }
        }
    }

    async fn drain_logged(&self, q: QueueRef<'_>) {
        if let Err(e) = self.drain(q).await {
            tracing::warn!(error = %e, "pending message moves will be retried by the sweep");
        }
    }

    /// Makes drains stop at `stop`, as if the process died there (recovery tests only).
    #[doc(hidden)]
    pub fn simulate_drain_crash(&self, stop: DrainStop) {
        *self.drain_stop.lock().unwrap() = stop;
    }

    /// Starts the background sweep: every `interval`, one node (whichever takes the sweep lock)
    /// reclaims expired messages and claims of every queue and finishes interrupted moves.
    pub fn start_gc(self: &Arc<Self>, interval: Duration) {
        let store = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(store) = store.upgrade() else { return };
                if store.closed.load(Ordering::Acquire) {
                    return;
                }
                let mut lock = redis::cmd("SET");
                lock.arg(store.keys.sweep_lock())
                    .arg(&store.node)
                    .arg("NX")
                    .arg("PX")
                    .arg(interval.as_millis().max(1) as u64);
                match store.query::<Option<String>>(&lock).await {
                    Ok(Some(_)) => {
                        if let Err(e) = store.collect_garbage().await {
                            tracing::warn!(error = %e, "Redis expired-data sweep failed");
                        }
                    }
                    Ok(None) => {} // another node sweeps this round
                    Err(e) => tracing::warn!(error = %e, "Redis expired-data sweep skipped"),
                }
            }
        });
        self.tasks.lock().unwrap().push(task);
    }

    /// One sweep over every queue of every project: removes expired messages, expired claims
    /// and old done-markers, finishes pending moves, drops index entries of deleted queues.
    /// Returns how many entries were removed.
    pub async fn collect_garbage(&self) -> Result<usize> {
        let mut removed = 0;
        let mut cursor: u64 = 0;
        loop {
            let mut scan = redis::cmd("SSCAN");
            scan.arg(self.keys.projects())
                .arg(cursor)
                .arg("COUNT")
                .arg(100);
            let (next, projects): (u64, Vec<String>) = self.query(&scan).await?;
            for p in projects {
                removed += self.sweep_project(&p).await?;
            }
            if next == 0 {
                return Ok(removed + self.sweep_subscriptions().await?);
            }
            cursor = next;
        }
    }

    /// Up to `count` queue names of the project's index after `after` (exclusive), in byte
    /// order.
    async fn queue_names_after(
        &self,
        project: &str,
        after: Option<&str>,
        count: usize,
    ) -> Result<Vec<String>> {
        let start = after.map_or_else(|| "-".to_string(), |a| format!("({a}"));
        let mut range = redis::cmd("ZRANGEBYLEX");
        range
            .arg(self.keys.project_index(project))
            .arg(start)
            .arg("+")
            .arg("LIMIT")
            .arg(0)
            .arg(count);
        self.query(&range).await
    }

    async fn sweep_project(&self, project: &str) -> Result<usize> {
        let idx = self.keys.project_index(project);
        let mut removed = 0;
        let mut after: Option<String> = None;
        loop {
            let names = self
                .queue_names_after(project, after.as_deref(), 100)
                .await?;
            for name in &names {
                let q = QueueRef::new(project, name);
                let mut inv = self.scripts.sweep.key(self.qkey(q));
                inv.arg(self.clock.now())
                    .arg(SWEEP_BATCH)
                    .arg(DONE_MARKER_AGE_MS);
                let (n, pending, exists): (usize, i64, i64) = self.eval(&inv).await?;
                removed += n;
                if pending > 0 {
                    self.drain_logged(q).await;
                }
                if exists == 0 {
                    // An index entry whose queue is gone (a deletion interrupted between its
                    // steps). Remove it, then put it back if the queue was re-created meanwhile.
                    let mut zrem = redis::cmd("ZREM");
                    zrem.arg(&idx).arg(name);
                    self.query::<i64>(&zrem).await?;
                    if self.queue_info(q).await?.is_some() {
                        self.index_queue(q).await?;
                    }
                }
            }
            match names.last() {
                Some(last) if names.len() == 100 => after = Some(last.clone()),
                _ => break,
            }
        }
        let mut card = redis::cmd("ZCARD");
        card.arg(&idx);
        if self.query::<i64>(&card).await? == 0 {
            let mut srem = redis::cmd("SREM");
            srem.arg(self.keys.projects()).arg(project);
            self.query::<i64>(&srem).await?;
            if self.query::<i64>(&card).await? > 0 {
                let mut sadd = redis::cmd("SADD");
                sadd.arg(self.keys.projects()).arg(project);
                self.query::<i64>(&sadd).await?;
            }
        }
        Ok(removed)
    }

    /// Number of message records physically stored for a queue, expired-but-uncollected
    /// included (for tests of the sweep).
    pub async fn stored_message_records(&self, q: QueueRef<'_>) -> Result<u64> {
        let mut card = redis::cmd("ZCARD");
        card.arg(self.qpart(q, "all"));
        self.query(&card).await
    }
}

#[async_trait]
impl QueueStore for RedisStore {
    async fn create_queue(&self, q: QueueRef<'_>, metadata: Metadata) -> Result<bool> {
        let text = serde_json::to_string(&metadata).map_err(|e| Error::Internal(e.to_string()))?;
        let mut inv = self.scripts.create_queue.key(self.qkey(q));
        inv.arg(self.clock.now()).arg(text);
        let (created, indexed): (i64, i64) = self.eval(&inv).await?;
        if indexed == 0 {
            self.index_queue(q).await?;
        }
        Ok(created == 1)
    }

    async fn get_queue(&self, q: QueueRef<'_>) -> Result<Option<QueueInfo>> {
        self.queue_info(q).await
    }

    async fn replace_queue_metadata(
        &self,
        q: QueueRef<'_>,
        expected_version: u64,
        metadata: Metadata,
    ) -> Result<bool> {
        let text = serde_json::to_string(&metadata).map_err(|e| Error::Internal(e.to_string()))?;
        let mut inv = self.scripts.replace_metadata.key(self.qkey(q));
        inv.arg(expected_version).arg(text);
        match self.eval::<i64>(&inv).await? {
            -1 => Err(Error::not_found(format!(
                "Queue {} does not exist for project {}",
                q.name, q.project
            ))),
            r => Ok(r == 1),
        }
    }

    async fn delete_queue(&self, q: QueueRef<'_>) -> Result<()> {
        let qk = self.qkey(q);
        self.eval::<i64>(&self.scripts.unmark_indexed.key(&qk))
            .await?;
        let mut zrem = redis::cmd("ZREM");
        zrem.arg(self.keys.project_index(q.project)).arg(q.name);
        self.query::<i64>(&zrem).await?;
        for _ in 0..5 {
            if self
                .eval::<i64>(&self.scripts.delete_queue.key(&qk))
                .await?
                == 1
            {
                return Ok(());
            }
            // Moves out of this queue are pending: finish them before the queue goes.
            self.drain(q).await?;
        }
        Err(Error::Unavailable(format!(
            "queue {} still has message moves in progress; retry the deletion",
            q.name
        )))
    }

    async fn list_queues(
        &self,
        project: &str,
        marker: Option<&str>,
        limit: usize,
        filter: &QueueFilter,
    ) -> Result<Vec<QueueInfo>> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let mut after = marker.map(str::to_string);
        let chunk = if filter.is_empty() {
            limit.min(1000)
        } else {
            limit.clamp(100, 1000)
        };
        loop {
            let names = self
                .queue_names_after(project, after.as_deref(), chunk)
                .await?;
            let infos = futures_util::future::join_all(
                names
                    .iter()
                    .map(|n| self.queue_info(QueueRef::new(project, n))),
            )
            .await;
            for info in infos {
                if let Some(info) = info? {
                    if filter.matches(&info.name, &info.metadata) {
                        out.push(info);
                        if out.len() >= limit {
                            return Ok(out);
                        }
                    }
                }
            }
            match names.last() {
                Some(last) if names.len() == chunk => after = Some(last.clone()),
                _ => return Ok(out),
            }
        }
    }

    async fn count_queues(&self, project: &str) -> Result<u64> {
        let mut card = redis::cmd("ZCARD");
        card.arg(self.keys.project_index(project));
        self.query(&card).await
    }

    /// The queues of the project's index, each asked for its bytes by its own script (in its
    /// own slot), a page of queues at a time.
    async fn project_bytes(&self, project: &str) -> Result<u64> {
        let now = self.clock.now();
        let mut sum: u64 = 0;
        let mut after: Option<String> = None;
        loop {
            let names = self
                .queue_names_after(project, after.as_deref(), 100)
                .await?;
            let counts = futures_util::future::join_all(names.iter().map(|n| async move {
                let mut inv = self.scripts.bytes.key(self.qkey(QueueRef::new(project, n)));
                inv.arg(now);
                self.eval::<String>(&inv).await
            }))
            .await;
            for c in counts {
                sum = sum.saturating_add(c?.parse::<u64>().unwrap_or(0));
            }
            match names.last() {
                Some(last) if names.len() == 100 => after = Some(last.clone()),
                _ => return Ok(sum),
            }
        }
    }
}

#[async_trait]
impl MessageStore for RedisStore {
    async fn post_messages(
        &self,
        q: QueueRef<'_>,
        client_id: &str,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<String>> {
        let now = self.clock.now();
        let mut inv = self.scripts.post.key(self.qkey(q));
        inv.arg(now).arg(&self.channel).arg(self.event(q));
        let mut suffixes = Vec::with_capacity(messages.len());
        for m in messages {
            let suffix = MessageId::suffix_hex(rand::random::<u64>());
            let expires = now + m.ttl * 1000;
            let delay = now + m.delay * 1000;
            let rec: Record = (
                suffix.clone(),
                m.ttl,
                now,
                expires,
                client_id.to_string(),
                String::new(),
                0,
                0,
                delay,
                m.checksum.unwrap_or_default(),
                m.encrypted as i64,
                String::new(),
                m.body.get().to_string(),
            );
            inv.arg(encode_record(&rec)?)
                .arg(expires)
                .arg(delay)
                .arg(m.body.get().len());
            suffixes.push(suffix);
        }
        let (indexed, first, batch): (i64, u64, i64) = self.eval(&inv).await?;
        if batch == 1 {
            self.note_pending(q).await;
        }
        if indexed == 0 {
            self.index_queue_logged(q).await;
        }
        Ok(suffixes
            .iter()
            .enumerate()
            .map(|(i, s)| message_id(first + i as u64, s))
            .collect::<Result<Vec<_>>>()?)
    }

    async fn list_messages(&self, q: QueueRef<'_>, query: &ListQuery) -> Result<Vec<Message>> {
        let mut after = match query.marker {
            Some(u64::MAX) => return Ok(Vec::new()),
            Some(m) => m.to_string(),
            None => "0".to_string(),
        };
        let mut out = Vec::new();
        let qk = self.qkey(q);
        while out.len() < query.limit {
            let mut inv = self.scripts.list.key(&qk);
            inv.arg(self.clock.now())
                .arg(&after)
                .arg(query.limit - out.len())
                .arg(if query.include_claimed { "1" } else { "0" })
                .arg(if query.include_delayed { "1" } else { "0" })
                .arg(query.exclude_client.as_deref().unwrap_or(""))
                .arg(LIST_SCAN);
            let (finished, last, msgs): (i64, String, Value) = self.eval(&inv).await?;
            out.extend(to_messages(msgs)?);
            if finished == 1 {
                break;
            }
            after = last;
        }
        out.truncate(query.limit);
        Ok(out)
    }

    async fn get_messages(&self, q: QueueRef<'_>, ids: &[String]) -> Result<Vec<Message>> {
        let mut seen = std::collections::HashSet::new();
        let mut inv = self.scripts.get.key(self.qkey(q));
        inv.arg(self.clock.now());
        let mut any = false;
        for id in ids {
            if let Some((marker, suffix)) = parse_message_id(id) {
                if seen.insert(marker) {
                    inv.arg(marker).arg(suffix);
                    any = true;
                }
            }
        }
        if !any {
            return Ok(Vec::new());
        }
        to_messages(self.eval(&inv).await?)
    }

    async fn delete_messages(
        &self,
        q: QueueRef<'_>,
        ids: &[String],
        claim_ids: Option<&[String]>,
    ) -> Result<()> {
        let parsed: Vec<(&String, u64, String)> = ids
            .iter()
            .filter_map(|id| parse_message_id(id).map(|(m, s)| (id, m, s)))
            .collect();
        if parsed.is_empty() {
            return Ok(());
        }
        let mut inv = self.scripts.delete_bulk.key(self.qkey(q));
        inv.arg(self.clock.now());
        match claim_ids {
            Some(c) => {
                inv.arg("1").arg(c.len());
                for cid in c {
                    inv.arg(cid);
                }
            }
            None => {
                inv.arg("0").arg(0);
            }
        }
        for (_, m, s) in &parsed {
            inv.arg(*m).arg(s);
        }
        let r = array(self.eval::<Value>(&inv).await?)?;
        match r.as_slice() {
            [code] if int(code) == 0 => Ok(()),
            [code, idx] if int(code) == 1 => {
                let id = parsed
                    .get(int(idx) as usize)
                    .map(|p| p.0.as_str())
                    .ok_or_else(|| bad_reply("bulk delete"))?;
                // The script found the message not held by any of the claims.
                check_bulk_delete_claim(id, None, claim_ids.unwrap_or_default())
            }
            _ => Err(bad_reply("bulk delete")),
        }
    }

    async fn pop_messages(&self, q: QueueRef<'_>, limit: usize) -> Result<Vec<Message>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut inv = self.scripts.pop.key(self.qkey(q));
        inv.arg(self.clock.now()).arg(limit);
        to_messages(self.eval(&inv).await?)
    }

    async fn delete_message(
        &self,
        q: QueueRef<'_>,
        id: &str,
        claim_id: Option<&str>,
    ) -> Result<()> {
        let Some((marker, suffix)) = parse_message_id(id) else {
            return Ok(());
        };
        let mut inv = self.scripts.delete_one.key(self.qkey(q));
        inv.arg(self.clock.now())
            .arg(marker)
            .arg(suffix)
            .arg(claim_id.unwrap_or(""));
        let r = array(self.eval::<Value>(&inv).await?)?;
        let [exists, active, live, deleted] = r.as_slice() else {
            return Err(bad_reply("delete"));
        };
        let active = field(active);
        let target = (int(exists) == 1).then_some(DeleteTarget {
            active_claim: active.as_deref(),
        });
        // The script deleted exactly in the cases decided `Ok(true)`, from the same state.
        let decision = decide_single_delete(target, claim_id, |_| Ok(int(live) == 1))?;
        if decision != (int(deleted) == 1) {
            return Err(Error::Internal(
                "single-message delete: script and rules disagree".into(),
            ));
        }
        Ok(())
    }

    async fn queue_stats(&self, q: QueueRef<'_>) -> Result<QueueStats> {
        let mut inv = self.scripts.stats.key(self.qkey(q));
        inv.arg(self.clock.now());
        let r = array(self.eval::<Value>(&inv).await?)?;
        let [total, claimed, delayed, oldest, newest] = r.as_slice() else {
            return Err(bad_reply("stats"));
        };
        let stamp = |v: &Value| -> Option<MessageStamp> {
            let Value::Array(a) = v else { return None };
            let marker: u64 = field(a.first()?)?.parse().ok()?;
            Some(MessageStamp {
                id: message_id(marker, &field(a.get(1)?)?).ok()?,
                created: field(a.get(2)?)?.parse().ok()?,
            })
        };
        Ok(QueueStats {
            total: int(total).max(0) as u64,
            claimed: int(claimed).max(0) as u64,
            delayed: int(delayed).max(0) as u64,
            oldest: stamp(oldest),
            newest: stamp(newest),
        })
    }

    async fn purge_messages(&self, q: QueueRef<'_>) -> Result<()> {
        self.eval::<i64>(&self.scripts.purge.key(self.qkey(q)))
            .await?;
        Ok(())
    }

    async fn redrive_messages(
        &self,
        q: QueueRef<'_>,
        target: Option<&str>,
        limit: Option<usize>,
    ) -> Result<RedriveOutcome> {
        let mut inv = self.scripts.redrive.key(self.qkey(q));
        inv.arg(self.clock.now())
            .arg(limit.map(|l| l as i64).unwrap_or(-1))
            .arg(target.unwrap_or(""))
            .arg(q.name)
            .arg(uuid::Uuid::new_v4().simple().to_string());
        let r = array(self.eval::<Value>(&inv).await?)?;
        if r.len() < 2 {
            return Err(bad_reply("redrive"));
        }
        let moved = int(&r[0]).max(0) as u64;
        let skipped = int(&r[1]).max(0) as u64;
        let mut targets: Vec<String> = r[2..]
            .chunks(2)
            .filter_map(|c| c.get(1).and_then(field))
            .collect();
        targets.sort();
        if moved > 0 {
            self.drain_logged(q).await;
        }
        Ok(RedriveOutcome {
            moved,
            skipped,
            targets,
        })
    }
}

#[async_trait]
impl ClaimStore for RedisStore {
    async fn create_claim(&self, q: QueueRef<'_>, params: ClaimParams) -> Result<Option<Claim>> {
        let now = self.clock.now();
        let cid = uuid::Uuid::new_v4().simple().to_string();
        let dl = params.dead_letter.as_ref();
        let mut inv = self.scripts.claim.key(self.qkey(q));
        inv.arg(now)
            .arg(&cid)
            .arg(params.ttl)
            .arg(params.grace)
            .arg(params.limit)
            .arg(dl.map(|d| d.max_claim_count as i64).unwrap_or(-1))
            .arg(dl.and_then(|d| d.ttl).unwrap_or(-1))
            .arg(uuid::Uuid::new_v4().simple().to_string())
            .arg(dl.map(|d| d.queue.as_str()).unwrap_or(""))
            .arg(q.name);
        let (moved, msgs): (i64, Value) = self.eval(&inv).await?;
        if moved > 0 {
            self.drain_logged(q).await;
        }
        let messages = to_messages(msgs)?;
        if messages.is_empty() {
            return Ok(None);
        }
        Ok(Some(Claim {
            id: cid,
            ttl: params.ttl,
            updated: now,
            expires: now + params.ttl * 1000,
            messages,
        }))
    }

    async fn get_claim(&self, q: QueueRef<'_>, claim_id: &str) -> Result<Option<Claim>> {
        let mut inv = self.scripts.get_claim.key(self.qkey(q));
        inv.arg(self.clock.now()).arg(claim_id);
        let r = array(self.eval::<Value>(&inv).await?)?;
        if r.is_empty() {
            return Ok(None);
        }
        let mut it = r.into_iter();
        let (Some(ttl), Some(updated), Some(expires), Some(msgs)) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            return Err(bad_reply("claim"));
        };
        Ok(Some(Claim {
            id: claim_id.to_string(),
            ttl: int(&ttl),
            updated: int(&updated) as Millis,
            expires: int(&expires) as Millis,
            messages: to_messages(msgs)?,
        }))
    }

    async fn renew_claim(
        &self,
        q: QueueRef<'_>,
        claim_id: &str,
        ttl: i64,
        grace: i64,
    ) -> Result<bool> {
        let mut inv = self.scripts.renew.key(self.qkey(q));
        inv.arg(self.clock.now()).arg(claim_id).arg(ttl).arg(grace);
        Ok(self.eval::<i64>(&inv).await? == 1)
    }

    async fn release_claim(&self, q: QueueRef<'_>, claim_id: &str) -> Result<()> {
        let mut inv = self.scripts.release.key(self.qkey(q));
        inv.arg(self.clock.now())
            .arg(claim_id)
            .arg(&self.channel)
            .arg(self.event(q));
        self.eval::<i64>(&inv).await?;
        Ok(())
    }
}

#[async_trait]
impl DataStore for RedisStore {
    async fn ping(&self) -> Result<()> {
        self.query::<String>(&redis::cmd("PING")).await.map(|_| ())
    }

    fn subscriptions(&self) -> Option<&dyn zaqar_core::store::SubscriptionStore> {
        Some(self)
    }

    /// Subscribes to the store's event channel and wakes this node's waiters for writes made
    /// through other nodes. The subscription reconnects by itself after Redis restarts.
    fn attach_hub(&self, hub: Arc<Hub>) {
        let source = self.pubsub.clone();
        let channel = self.channel.clone();
        let node = self.node.clone();
        let closed = self.closed.clone();
        let connect_timeout = self.timeouts.connect;
        let task = tokio::spawn(async move {
            let mut attempt = 0usize;
            while !closed.load(Ordering::Acquire) {
                match tokio::time::timeout(connect_timeout, source.connect(attempt)).await {
                    Ok(Ok(mut ps)) => match ps.subscribe(&channel).await {
                        Ok(()) => {
                            attempt = 0;
                            let mut stream = ps.on_message();
                            while let Some(msg) = stream.next().await {
                                let Ok(payload) = msg.get_payload::<String>() else {
                                    continue;
                                };
                                if let Some((from, p, q)) = keys::parse_event(&payload) {
                                    if from != node {
                                        hub.notify(&p, &q);
                                    }
                                }
                            }
                            tracing::warn!("Redis event subscription lost; reconnecting");
                        }
                        Err(e) => tracing::warn!(error = %e, "Redis event subscription failed"),
                    },
                    Ok(Err(e)) => tracing::debug!(error = %e, "Redis event connection failed"),
                    Err(_) => tracing::debug!("Redis event connection timed out"),
                }
                attempt += 1;
                let backoff = Duration::from_millis((50u64 << attempt.min(5)).min(1000));
                tokio::time::sleep(backoff).await;
            }
        });
        self.tasks.lock().unwrap().push(task);
    }

    async fn shutdown(&self) {
        self.closed.store(true, Ordering::Release);
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}
