//! Subscriptions and the notification outbox of the Redis store (`docs/redis.md`).
//!
//! A source's subscriptions and its pending notification batches live under the source queue's
//! hash tag, so the post script reads the subscriptions and writes the batch atomically with
//! the messages (also on a Redis Cluster). Delivery workers find batches through two global
//! sorted sets (tag `{g}`), maintained outside the per-queue scripts:
//!
//! - `nsrc`, the sources with subscriptions. A create enters the source here *before* its
//!   script runs, so a source that has a subscription (hence may get batches) is always listed.
//!   The sweep removes an entry only when the source has neither subscriptions nor batches and
//!   the entry is older than [`INDEX_GRACE_MS`] (a score-checked removal, so a create that
//!   re-entered it meanwhile keeps it).
//! - `npend`, the sources with pending batches, walked by the lease scan. A post that wrote a
//!   batch adds its source after the script; a crash between the two leaves the batch
//!   unlisted only until the next sweep, which re-adds every `nsrc` source that has batches.
//!   The lease scan drops a source whose batches are all gone, then looks again and re-adds it
//!   if a post slipped in between.
//!
//! A batch is leased by one script (lease expiry per batch), so two workers never hold it at
//! once. Its key is `<tag>#<seq>`.

use std::collections::HashMap;

use async_trait::async_trait;
use redis::Value;

use super::records::{array, bad_reply, field, int, to_messages};
use super::{keys, RedisStore};
use zaqar_core::clock::{secs, Millis};
use zaqar_core::error::{Error, Result};
use zaqar_core::model::{
    DeliveryOutcome, FinishedDelivery, Metadata, NewSubscription, NotifiedMessage,
    PendingNotification, QueueRef, Subscription, SubscriptionCreated, SubscriptionUpdate,
};
use zaqar_core::store::SubscriptionStore;

/// An `nsrc` entry of a source without subscriptions or batches is removed only once it is
/// this old: far longer than a create can take between entering the source and its script.
const INDEX_GRACE_MS: i64 = 3_600_000;
/// Batches of one source the lease script examines per call.
const LEASE_SCAN: usize = 256;
/// Sources read from `npend` per round trip of the lease scan.
const PENDING_PAGE: isize = 200;
/// The most finished deliveries applied by one script call.
const FINISH_CHUNK: usize = 256;

/// subscriber, ttl, created, expires, options JSON, confirmed (0/1), secret, delivered,
/// failed, last error ('' none). Written by the driver on create, rewritten by the scripts.
type SubRecord = (String, i64, i64, i64, String, i64, String, i64, i64, String);

fn to_subscription(source: &str, id: String, raw: &Value) -> Result<Subscription> {
    let Value::BulkString(raw) = raw else {
        return Err(bad_reply("subscription record"));
    };
    let (subscriber, ttl, created, expires, options, confirmed, secret, delivered, failed, err): SubRecord =
        rmp_serde::from_slice(raw)
            .map_err(|e| Error::Internal(format!("corrupt subscription record: {e}")))?;
    let options: Metadata = serde_json::from_str(&options)
        .map_err(|e| Error::Internal(format!("corrupt subscription options: {e}")))?;
    Ok(Subscription {
        id,
        source: source.to_string(),
        subscriber,
        ttl,
        created: created as Millis,
        expires: expires as Millis,
        options,
        confirmed: confirmed == 1,
        secret,
        delivered: delivered.max(0) as u64,
        failed: failed.max(0) as u64,
        last_error: (!err.is_empty()).then_some(err),
    })
}

fn not_found(id: &str) -> Error {
    Error::not_found(format!("Subscription {id} could not be found."))
}

fn parse_key(key: &str) -> Result<(&str, &str)> {
    key.rsplit_once('#')
        .filter(|(tag, seq)| !tag.is_empty() && !seq.is_empty())
        .ok_or_else(|| Error::invalid("bad notification key"))
}

impl RedisStore {
    /// Lists the source in `npend` (kept at its first score), after a post wrote a batch.
    pub(super) async fn note_pending(&self, q: QueueRef<'_>) {
        let mut zadd = redis::cmd("ZADD");
        zadd.arg(self.keys.notify_pending())
            .arg("NX")
            .arg(self.clock.now())
            .arg(self.keys.tag(q));
        if let Err(e) = self.query::<i64>(&zadd).await {
            tracing::warn!(error = %e, "notification index update failed; the sweep will repeat it");
        }
    }

    async fn pending_batches(&self, tag: &str) -> Result<i64> {
        let mut qk = self.keys.queue_of_tag(tag);
        qk.pop();
        qk.push_str("nq");
        let mut card = redis::cmd("ZCARD");
        card.arg(qk);
        self.query(&card).await
    }

    /// One round of the sweep over the sources with subscriptions: removes expired
    /// subscriptions, re-lists sources with batches in `npend`, forgets idle sources.
    pub(super) async fn sweep_subscriptions(&self) -> Result<usize> {
        let idx = self.keys.notify_sources();
        let mut removed = 0;
        let mut offset: isize = 0;
        loop {
            let mut range = redis::cmd("ZRANGE");
            range.arg(&idx).arg(offset).arg(offset + 99);
            let tags: Vec<String> = self.query(&range).await?;
            if tags.is_empty() {
                return Ok(removed);
            }
            offset += tags.len() as isize;
            let now = self.clock.now();
            for tag in &tags {
                let mut inv = self.scripts.sub_sweep.key(self.keys.queue_of_tag(tag));
                inv.arg(now);
                let (n, subs, batches): (usize, i64, i64) = self.eval(&inv).await?;
                removed += n;
                if batches > 0 {
                    let mut zadd = redis::cmd("ZADD");
                    zadd.arg(self.keys.notify_pending())
                        .arg("NX")
                        .arg(now)
                        .arg(tag);
                    self.query::<i64>(&zadd).await?;
                } else if subs == 0 {
                    let mut rm = self.scripts.index_remove_if_old.key(&idx);
                    rm.arg(tag).arg(now - INDEX_GRACE_MS);
                    if self.eval::<i64>(&rm).await? == 1 {
                        offset -= 1;
                        // Unlisted and idle for an hour: its counters go too (a later create
                        // lists it again first; ids stay unique by their random half).
                        let forget = self.scripts.sub_forget.key(self.keys.queue_of_tag(tag));
                        self.eval::<i64>(&forget).await?;
                    }
                }
            }
        }
    }
}

#[async_trait]
impl SubscriptionStore for RedisStore {
    async fn create_subscription(
        &self,
        project: &str,
        source: &str,
        sub: NewSubscription,
    ) -> Result<SubscriptionCreated> {
        let q = QueueRef::new(project, source);
        let now = self.clock.now();
        // The index entry first (see the module docs).
        let mut zadd = redis::cmd("ZADD");
        zadd.arg(self.keys.notify_sources())
            .arg(now)
            .arg(self.keys.tag(q));
        self.query::<i64>(&zadd).await?;
        let options = serde_json::to_string(&sub.options)
            .map_err(|e| Error::Internal(format!("cannot encode options: {e}")))?;
        let rec: SubRecord = (
            sub.subscriber.clone(),
            sub.ttl,
            now,
            now.saturating_add(secs(sub.ttl)),
            options,
            sub.confirmed as i64,
            format!("{:032x}", rand::random::<u128>()),
            0,
            0,
            String::new(),
        );
        let rec = rmp_serde::to_vec(&rec)
            .map_err(|e| Error::Internal(format!("cannot encode a subscription: {e}")))?;
        let mut inv = self.scripts.sub_create.key(self.qkey(q));
        inv.arg(now)
            .arg(&sub.subscriber)
            .arg(rec)
            .arg(format!("{:016x}", rand::random::<u64>()));
        let (code, id): (i64, String) = self.eval(&inv).await?;
        Ok(match code {
            0 => SubscriptionCreated::New(id),
            1 => SubscriptionCreated::ExistingUnconfirmed(id),
            _ => SubscriptionCreated::ExistingConfirmed(id),
        })
    }

    async fn list_subscriptions(
        &self,
        project: &str,
        source: &str,
        marker: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Subscription>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut inv = self
            .scripts
            .sub_list
            .key(self.qkey(QueueRef::new(project, source)));
        inv.arg(self.clock.now())
            .arg(marker.unwrap_or(""))
            .arg(limit);
        let flat = array(self.eval::<Value>(&inv).await?)?;
        flat.chunks(2)
            .map(|c| match c {
                [id, raw] => {
                    to_subscription(source, field(id).ok_or_else(|| bad_reply("id"))?, raw)
                }
                _ => Err(bad_reply("subscription list")),
            })
            .collect()
    }

    async fn get_subscription(
        &self,
        project: &str,
        source: &str,
        id: &str,
    ) -> Result<Option<Subscription>> {
        let mut inv = self
            .scripts
            .sub_get
            .key(self.qkey(QueueRef::new(project, source)));
        inv.arg(self.clock.now()).arg(id);
        match self.eval::<Value>(&inv).await? {
            Value::Nil => Ok(None),
            raw => to_subscription(source, id.to_string(), &raw).map(Some),
        }
    }

    async fn update_subscription(
        &self,
        project: &str,
        source: &str,
        id: &str,
        update: SubscriptionUpdate,
    ) -> Result<()> {
        let now = self.clock.now();
        let options = update
            .options
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| Error::Internal(format!("cannot encode options: {e}")))?;
        let mut inv = self
            .scripts
            .sub_update
            .key(self.qkey(QueueRef::new(project, source)));
        inv.arg(now)
            .arg(id)
            .arg(if update.subscriber.is_some() {
                "1"
            } else {
                "0"
            })
            .arg(update.subscriber.as_deref().unwrap_or(""))
            .arg(if update.ttl.is_some() { "1" } else { "0" })
            .arg(update.ttl.unwrap_or(0))
            .arg(update.ttl.map(|t| now.saturating_add(secs(t))).unwrap_or(0))
            .arg(if options.is_some() { "1" } else { "0" })
            .arg(options.unwrap_or_default());
        match self.eval::<i64>(&inv).await? {
            0 => Ok(()),
            1 => Err(not_found(id)),
            _ => Err(Error::Conflict(
                "Such subscription already exists. Subscriptions are unique by project + queue + subscriber URI."
                    .into(),
            )),
        }
    }

    async fn delete_subscription(&self, project: &str, source: &str, id: &str) -> Result<()> {
        let mut inv = self
            .scripts
            .sub_delete
            .key(self.qkey(QueueRef::new(project, source)));
        inv.arg(id);
        self.eval::<i64>(&inv).await?;
        Ok(())
    }

    async fn confirm_subscription(
        &self,
        project: &str,
        source: &str,
        id: &str,
        confirmed: bool,
    ) -> Result<bool> {
        let mut inv = self
            .scripts
            .sub_confirm
            .key(self.qkey(QueueRef::new(project, source)));
        inv.arg(self.clock.now()).arg(id).arg(confirmed as i64);
        Ok(self.eval::<i64>(&inv).await? == 1)
    }

    async fn purge_subscriptions(&self, project: &str, source: &str) -> Result<()> {
        self.eval::<i64>(
            &self
                .scripts
                .sub_purge
                .key(self.qkey(QueueRef::new(project, source))),
        )
        .await?;
        Ok(())
    }

    async fn lease_notifications(
        &self,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<PendingNotification>> {
        let mut out = Vec::new();
        let idx = self.keys.notify_pending();
        let mut offset: isize = 0;
        while out.len() < limit {
            let mut range = redis::cmd("ZRANGE");
            range.arg(&idx).arg(offset).arg(offset + PENDING_PAGE - 1);
            let tags: Vec<String> = self.query(&range).await?;
            if tags.is_empty() {
                break;
            }
            offset += tags.len() as isize;
            for tag in &tags {
                if out.len() >= limit {
                    break;
                }
                let mut inv = self.scripts.notify_lease.key(self.keys.queue_of_tag(tag));
                inv.arg(self.clock.now())
                    .arg(lease_ms)
                    .arg(limit - out.len())
                    .arg(LEASE_SCAN);
                let r = array(self.eval::<Value>(&inv).await?)?;
                let [left, batches] =
                    <[Value; 2]>::try_from(r).map_err(|_| bad_reply("notification lease"))?;
                let (project, source) = tag
                    .split_once('/')
                    .and_then(|(p, n)| Some((keys::dec(p)?, keys::dec(n)?)))
                    .ok_or_else(|| bad_reply("notification index entry"))?;
                for b in array(batches)? {
                    let [seq, msgs, subs] =
                        <[Value; 3]>::try_from(array(b)?).map_err(|_| bad_reply("batch"))?;
                    let seq = field(&seq).ok_or_else(|| bad_reply("batch seq"))?;
                    let messages = to_messages(msgs)?
                        .into_iter()
                        .map(|m| NotifiedMessage {
                            id: m.id,
                            body: m.body,
                            ttl: m.ttl,
                            delay: ((m.delay_expires - m.created) / 1000).max(0),
                            encrypted: m.encrypted,
                        })
                        .collect();
                    let subscribers = array(subs)?
                        .chunks(3)
                        .map(|c| match c {
                            [id, raw, confirmed] => {
                                let id = field(id).ok_or_else(|| bad_reply("id"))?;
                                let mut s = to_subscription(&source, id, raw)?;
                                // What counts is whether it was confirmed at posting time.
                                s.confirmed = int(confirmed) == 1;
                                Ok(s)
                            }
                            _ => Err(bad_reply("batch subscribers")),
                        })
                        .collect::<Result<Vec<_>>>()?;
                    out.push(PendingNotification {
                        key: format!("{tag}#{seq}"),
                        project: project.clone(),
                        source: source.clone(),
                        messages,
                        subscribers,
                    });
                }
                if int(&left) == 0 {
                    // Drop the source from the scan, then look again: a post that wrote a
                    // batch meanwhile may have listed it just before the removal.
                    let mut zrem = redis::cmd("ZREM");
                    zrem.arg(&idx).arg(tag);
                    if self.query::<i64>(&zrem).await? == 1 {
                        offset -= 1;
                    }
                    if self.pending_batches(tag).await? > 0 {
                        let mut zadd = redis::cmd("ZADD");
                        zadd.arg(&idx).arg("NX").arg(self.clock.now()).arg(tag);
                        self.query::<i64>(&zadd).await?;
                    }
                }
            }
        }
        Ok(out)
    }

    async fn renew_notification_lease(&self, key: &str, lease_ms: i64) -> Result<()> {
        let (tag, seq) = parse_key(key)?;
        let mut inv = self.scripts.notify_renew.key(self.keys.queue_of_tag(tag));
        inv.arg(seq).arg(self.clock.now() + lease_ms);
        self.eval::<i64>(&inv).await?;
        Ok(())
    }

    async fn finish_notifications(&self, done: Vec<FinishedDelivery>) -> Result<()> {
        // One script per queue (a queue's keys share a hash slot), in chunks.
        let mut per_queue: HashMap<String, Vec<FinishedDelivery>> = HashMap::new();
        for d in done {
            let (tag, _) = parse_key(&d.key)?;
            per_queue.entry(tag.to_string()).or_default().push(d);
        }
        for (tag, entries) in per_queue {
            for chunk in entries.chunks(FINISH_CHUNK) {
                let mut inv = self.scripts.notify_finish.key(self.keys.queue_of_tag(&tag));
                for d in chunk {
                    let (_, seq) = parse_key(&d.key)?;
                    let (code, err) = match &d.outcome {
                        DeliveryOutcome::Delivered => ("0", ""),
                        DeliveryOutcome::GaveUp(e) => ("1", e.as_str()),
                        DeliveryOutcome::Skipped => ("2", ""),
                    };
                    inv.arg(seq).arg(&d.subscription_id).arg(code).arg(err);
                }
                self.eval::<i64>(&inv).await?;
            }
        }
        Ok(())
    }
}
