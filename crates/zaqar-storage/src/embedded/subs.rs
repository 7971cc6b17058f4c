//! Subscriptions and the notification outbox of the embedded store.
//!
//! A source's subscriptions live in the shard of (project, source), the same shard as the
//! queue's messages, so `post_messages` reads them and writes the pending batch in its own
//! transaction. Batches are numbered per shard and leased in order.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use async_trait::async_trait;
use redb::{ReadableTable, WriteTransaction};
use serde_json::value::RawValue;

use super::records::{decode, encode, NotifyRecord, SubRecord, COUNTERS, NOTIFY, SUBS, SUB_URIS};
use super::{se, successor, EmbeddedStore};
use zaqar_core::clock::{secs, Millis};
use zaqar_core::error::{Error, Result};
use zaqar_core::model::{
    DeliveryOutcome, FinishedDelivery, Metadata, NewSubscription, NotifiedMessage,
    PendingNotification, QueueRef, Subscription, SubscriptionCreated, SubscriptionUpdate,
};
use zaqar_core::store::{DeliveryTallies, SubscriptionStore};

/// The key of the per-shard subscription counter.
const SUB_SEQ: (&str, &str) = ("", "subscriptions");

fn to_subscription(source: &str, id: &str, r: SubRecord) -> Result<Subscription> {
    let options: Metadata = serde_json::from_str(&r.options).map_err(se)?;
    Ok(Subscription {
        id: id.to_string(),
        source: source.to_string(),
        subscriber: r.subscriber,
        ttl: r.ttl,
        created: r.created,
        expires: r.expires,
        options,
        confirmed: r.confirmed,
        secret: r.secret,
        delivered: r.delivered,
        failed: r.failed,
        last_error: r.last_error,
    })
}

fn not_found(id: &str) -> Error {
    Error::not_found(format!("Subscription {id} could not be found."))
}

fn parse_key(key: &str) -> Option<(usize, u64)> {
    let (shard, seq) = key.split_once(':')?;
    Some((shard.parse().ok()?, seq.parse().ok()?))
}

impl EmbeddedStore {
    fn sub_shard(&self, project: &str, source: &str) -> usize {
        self.shard_index(QueueRef::new(project, source))
    }

    /// A write job that may change the subscriptions of a source: the post path's cached view
    /// of them is forgotten in the same job, whatever the outcome.
    async fn write_subs<R, F>(&self, project: &str, source: &str, f: F) -> Result<R>
    where
        F: FnOnce(&WriteTransaction) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let cache = self.sub_cache.clone();
        let (p, n) = (project.to_string(), source.to_string());
        self.shards[self.sub_shard(project, source)]
            .write(move |txn| {
                cache.forget(&p, &n);
                f(txn)
            })
            .await
    }
}

#[async_trait]
impl SubscriptionStore for EmbeddedStore {
    async fn create_subscription(
        &self,
        project: &str,
        source: &str,
        sub: NewSubscription,
    ) -> Result<SubscriptionCreated> {
        let (p, n) = (project.to_string(), source.to_string());
        let clock = self.clock.clone();
        let options = serde_json::to_string(&sub.options).map_err(se)?;
        self.write_subs(project, source, move |txn| {
            let now = clock.now();
            let mut uris = txn.open_table(SUB_URIS).map_err(se)?;
            let mut subs = txn.open_table(SUBS).map_err(se)?;
            let uri_key = (p.as_str(), n.as_str(), sub.subscriber.as_str());
            let existing = uris
                .get(uri_key)
                .map_err(se)?
                .map(|g| g.value().to_string());
            if let Some(id) = existing {
                let live = match subs
                    .get((p.as_str(), n.as_str(), id.as_str()))
                    .map_err(se)?
                {
                    Some(g) => Some(decode::<SubRecord>(g.value())?),
                    None => None,
                }
                .filter(|r| r.expires > now);
                if let Some(r) = live {
                    return Ok(if r.confirmed {
                        SubscriptionCreated::ExistingConfirmed(id)
                    } else {
                        SubscriptionCreated::ExistingUnconfirmed(id)
                    });
                }
                // An expired subscription with that URI: replace it.
                subs.remove((p.as_str(), n.as_str(), id.as_str()))
                    .map_err(se)?;
            }
            // Ids sort in creation order: a per-shard sequence, then a random part.
            let mut counters = txn.open_table(COUNTERS).map_err(se)?;
            let seq = counters
                .get(SUB_SEQ)
                .map_err(se)?
                .map(|g| g.value())
                .unwrap_or(0)
                + 1;
            counters.insert(SUB_SEQ, seq).map_err(se)?;
            let id = format!("{seq:016x}{:016x}", rand::random::<u64>());
            let secret = format!("{:032x}", rand::random::<u128>());
            let rec = SubRecord {
                subscriber: sub.subscriber.clone(),
                ttl: sub.ttl,
                created: now,
                expires: now.saturating_add(secs(sub.ttl)),
                options,
                confirmed: sub.confirmed,
                secret,
                delivered: 0,
                failed: 0,
                last_error: None,
            };
            subs.insert(
                (p.as_str(), n.as_str(), id.as_str()),
                encode(&rec)?.as_slice(),
            )
            .map_err(se)?;
            uris.insert(uri_key, id.as_str()).map_err(se)?;
            Ok(SubscriptionCreated::New(id))
        })
        .await
    }

    async fn list_subscriptions(
        &self,
        project: &str,
        source: &str,
        marker: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Subscription>> {
        let now = self.clock.now();
        let rtx = self.shards[self.sub_shard(project, source)].read()?;
        let t = rtx.open_table(SUBS).map_err(se)?;
        let lower = match marker {
            Some(m) => Bound::Excluded((project, source, m)),
            None => Bound::Included((project, source, "")),
        };
        let succ = successor(source);
        let upper = Bound::Excluded((project, succ.as_str(), ""));
        let mut out = Vec::new();
        for e in t.range::<(&str, &str, &str)>((lower, upper)).map_err(se)? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = e.map_err(se)?;
            let r: SubRecord = decode(v.value())?;
            if r.expires > now {
                out.push(to_subscription(source, k.value().2, r)?);
            }
        }
        Ok(out)
    }

    async fn get_subscription(
        &self,
        project: &str,
        source: &str,
        id: &str,
    ) -> Result<Option<Subscription>> {
        let now = self.clock.now();
        let rtx = self.shards[self.sub_shard(project, source)].read()?;
        let t = rtx.open_table(SUBS).map_err(se)?;
        match t.get((project, source, id)).map_err(se)? {
            Some(g) => {
                let r: SubRecord = decode(g.value())?;
                if r.expires <= now {
                    return Ok(None);
                }
                Ok(Some(to_subscription(source, id, r)?))
            }
            None => Ok(None),
        }
    }

    async fn update_subscription(
        &self,
        project: &str,
        source: &str,
        id: &str,
        update: SubscriptionUpdate,
    ) -> Result<()> {
        let (p, n, id) = (project.to_string(), source.to_string(), id.to_string());
        let clock = self.clock.clone();
        let options = update
            .options
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(se)?;
        self.write_subs(project, source, move |txn| {
                let now = clock.now();
                let mut subs = txn.open_table(SUBS).map_err(se)?;
                let key = (p.as_str(), n.as_str(), id.as_str());
                let mut r: SubRecord = match subs.get(key).map_err(se)? {
                    Some(g) => decode(g.value())?,
                    None => return Err(not_found(&id)),
                };
                if r.expires <= now {
                    return Err(not_found(&id));
                }
                let mut uris = txn.open_table(SUB_URIS).map_err(se)?;
                if let Some(new_uri) = &update.subscriber {
                    if *new_uri != r.subscriber {
                        let taken = uris
                            .get((p.as_str(), n.as_str(), new_uri.as_str()))
                            .map_err(se)?
                            .map(|g| g.value().to_string());
                        if let Some(other) = taken {
                            let live = match subs
                                .get((p.as_str(), n.as_str(), other.as_str()))
                                .map_err(se)?
                            {
                                Some(g) => decode::<SubRecord>(g.value())?.expires > now,
                                None => false,
                            };
                            if live && other != id {
                                return Err(Error::Conflict(
                                    "Such subscription already exists. Subscriptions are unique by project + queue + subscriber URI."
                                        .into(),
                                ));
                            }
                        }
                        uris.remove((p.as_str(), n.as_str(), r.subscriber.as_str()))
                            .map_err(se)?;
                        uris.insert((p.as_str(), n.as_str(), new_uri.as_str()), id.as_str())
                            .map_err(se)?;
                        r.subscriber = new_uri.clone();
                    }
                }
                if let Some(ttl) = update.ttl {
                    r.ttl = ttl;
                    r.expires = now.saturating_add(secs(ttl));
                }
                if let Some(o) = options {
                    r.options = o;
                }
                subs.insert(key, encode(&r)?.as_slice()).map_err(se)?;
                Ok(())
            })
            .await
    }

    async fn delete_subscription(&self, project: &str, source: &str, id: &str) -> Result<()> {
        let (p, n, id) = (project.to_string(), source.to_string(), id.to_string());
        self.write_subs(project, source, move |txn| {
            let mut subs = txn.open_table(SUBS).map_err(se)?;
            let removed = subs
                .remove((p.as_str(), n.as_str(), id.as_str()))
                .map_err(se)?
                .map(|g| decode::<SubRecord>(g.value()))
                .transpose()?;
            if let Some(r) = removed {
                txn.open_table(SUB_URIS)
                    .map_err(se)?
                    .remove((p.as_str(), n.as_str(), r.subscriber.as_str()))
                    .map_err(se)?;
            }
            Ok(())
        })
        .await
    }

    async fn confirm_subscription(
        &self,
        project: &str,
        source: &str,
        id: &str,
        confirmed: bool,
    ) -> Result<bool> {
        let (p, n, id) = (project.to_string(), source.to_string(), id.to_string());
        let clock = self.clock.clone();
        self.write_subs(project, source, move |txn| {
            let mut subs = txn.open_table(SUBS).map_err(se)?;
            let key = (p.as_str(), n.as_str(), id.as_str());
            let mut r: SubRecord = match subs.get(key).map_err(se)? {
                Some(g) => decode(g.value())?,
                None => return Ok(false),
            };
            if r.expires <= clock.now() {
                return Ok(false);
            }
            r.confirmed = confirmed;
            subs.insert(key, encode(&r)?.as_slice()).map_err(se)?;
            Ok(true)
        })
        .await
    }

    async fn purge_subscriptions(&self, project: &str, source: &str) -> Result<()> {
        let (p, n) = (project.to_string(), source.to_string());
        self.write_subs(project, source, move |txn| {
            let succ = successor(&n);
            txn.open_table(SUBS)
                .map_err(se)?
                .retain_in(
                    (p.as_str(), n.as_str(), "")..(p.as_str(), succ.as_str(), ""),
                    |_, _| false,
                )
                .map_err(se)?;
            txn.open_table(SUB_URIS)
                .map_err(se)?
                .retain_in(
                    (p.as_str(), n.as_str(), "")..(p.as_str(), succ.as_str(), ""),
                    |_, _| false,
                )
                .map_err(se)?;
            Ok(())
        })
        .await
    }

    async fn lease_notifications(
        &self,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<PendingNotification>> {
        let mut out = Vec::new();
        for (i, shard) in self.shards.iter().enumerate() {
            if out.len() >= limit {
                break;
            }
            let want = limit - out.len();
            let clock = self.clock.clone();
            let leased: Vec<PendingNotification> = shard
                .write(move |txn| {
                    let now = clock.now();
                    let mut notify = txn.open_table(NOTIFY).map_err(se)?;
                    let mut picked = Vec::new();
                    for e in notify.iter().map_err(se)? {
                        if picked.len() >= want {
                            break;
                        }
                        let (k, v) = e.map_err(se)?;
                        let r: NotifyRecord = decode(v.value())?;
                        if r.lease_until <= now {
                            picked.push((k.value(), r));
                        }
                    }
                    let subs = txn.open_table(SUBS).map_err(se)?;
                    let mut leased = Vec::with_capacity(picked.len());
                    for (seq, mut r) in picked {
                        let mut subscribers = Vec::new();
                        for id in &r.pending {
                            if let Some(g) = subs
                                .get((r.project.as_str(), r.source.as_str(), id.as_str()))
                                .map_err(se)?
                            {
                                let rec: SubRecord = decode(g.value())?;
                                if rec.expires > now {
                                    let mut sub = to_subscription(&r.source, id, rec)?;
                                    // What counts is whether it was confirmed at posting time.
                                    sub.confirmed = !r.unconfirmed.contains(id);
                                    subscribers.push(sub);
                                }
                            }
                        }
                        // Subscriptions gone since the post are no longer pending.
                        r.pending = subscribers.iter().map(|s| s.id.clone()).collect();
                        if r.pending.is_empty() {
                            notify.remove(seq).map_err(se)?;
                            continue;
                        }
                        r.lease_until = now + lease_ms;
                        notify.insert(seq, encode(&r)?.as_slice()).map_err(se)?;
                        let messages = r
                            .messages
                            .iter()
                            .map(|m| {
                                let text = String::from_utf8(m.body.clone()).map_err(se)?;
                                Ok(NotifiedMessage {
                                    id: m.id.clone(),
                                    body: RawValue::from_string(text).map_err(se)?,
                                    ttl: m.ttl,
                                    delay: m.delay,
                                    encrypted: m.encrypted,
                                })
                            })
                            .collect::<Result<Vec<_>>>()?;
                        leased.push(PendingNotification {
                            key: format!("{i}:{seq}"),
                            project: r.project,
                            source: r.source,
                            messages,
                            subscribers,
                        });
                    }
                    Ok(leased)
                })
                .await?;
            out.extend(leased);
        }
        Ok(out)
    }

    async fn renew_notification_lease(&self, key: &str, lease_ms: i64) -> Result<()> {
        let (i, seq) = parse_key(key).ok_or_else(|| Error::invalid("bad notification key"))?;
        let clock = self.clock.clone();
        self.shards
            .get(i)
            .ok_or_else(|| Error::invalid("bad notification key"))?
            .write(move |txn| {
                let mut notify = txn.open_table(NOTIFY).map_err(se)?;
                let rec: Option<NotifyRecord> = match notify.get(seq).map_err(se)? {
                    Some(g) => Some(decode(g.value())?),
                    None => None,
                };
                if let Some(mut r) = rec {
                    r.lease_until = clock.now() + lease_ms;
                    notify.insert(seq, encode(&r)?.as_slice()).map_err(se)?;
                }
                Ok(())
            })
            .await
    }

    async fn finish_notifications(&self, done: Vec<FinishedDelivery>) -> Result<()> {
        // One write per shard, whatever the number of entries.
        let mut per_shard: HashMap<usize, Vec<(u64, String, DeliveryOutcome)>> = HashMap::new();
        for d in done {
            let (i, seq) = parse_key(&d.key)
                .filter(|(i, _)| *i < self.shards.len())
                .ok_or_else(|| Error::invalid("bad notification key"))?;
            per_shard
                .entry(i)
                .or_default()
                .push((seq, d.subscription_id, d.outcome));
        }
        let writes = per_shard
            .into_iter()
            .map(|(i, entries)| self.shards[i].write(move |txn| finish_in_shard(txn, entries)));
        futures_util::future::try_join_all(writes).await?;
        Ok(())
    }
}

/// Applies finished deliveries of one shard inside `txn`: each batch record and each
/// subscription record is read and written once, however many entries name it.
fn finish_in_shard(
    txn: &WriteTransaction,
    entries: Vec<(u64, String, DeliveryOutcome)>,
) -> Result<()> {
    let mut by_batch: BTreeMap<u64, Vec<(String, DeliveryOutcome)>> = BTreeMap::new();
    for (seq, sid, outcome) in entries {
        by_batch.entry(seq).or_default().push((sid, outcome));
    }
    let mut counters = DeliveryTallies::new();
    let mut notify = txn.open_table(NOTIFY).map_err(se)?;
    for (seq, finished) in by_batch {
        let rec: Option<NotifyRecord> = match notify.get(seq).map_err(se)? {
            Some(g) => Some(decode(g.value())?),
            None => None,
        };
        let Some(mut r) = rec else { continue };
        let before = r.pending.len();
        for (sid, outcome) in finished {
            let Some(at) = r.pending.iter().position(|p| *p == sid) else {
                continue; // already finished (a replay)
            };
            r.pending.remove(at);
            counters
                .entry((r.project.clone(), r.source.clone(), sid))
                .or_default()
                .add(&outcome);
        }
        if r.pending.is_empty() {
            notify.remove(seq).map_err(se)?;
        } else if r.pending.len() != before {
            notify.insert(seq, encode(&r)?.as_slice()).map_err(se)?;
        }
    }
    let mut subs = txn.open_table(SUBS).map_err(se)?;
    for ((project, source, sid), tally) in counters {
        if tally.is_empty() {
            continue;
        }
        let key = (project.as_str(), source.as_str(), sid.as_str());
        let sub: Option<SubRecord> = match subs.get(key).map_err(se)? {
            Some(g) => Some(decode(g.value())?),
            None => None,
        };
        if let Some(mut s) = sub {
            s.delivered += tally.delivered;
            s.failed += tally.failed;
            if tally.last_error.is_some() {
                s.last_error = tally.last_error;
            }
            subs.insert(key, encode(&s)?.as_slice()).map_err(se)?;
        }
    }
    Ok(())
}

/// Removes expired subscriptions of one shard inside `txn`; returns how many.
pub(super) fn sweep_subscriptions(txn: &WriteTransaction, now: Millis) -> Result<usize> {
    let expired: Vec<(String, String, String, String)> = {
        let subs = txn.open_table(SUBS).map_err(se)?;
        let mut out = Vec::new();
        for e in subs.iter().map_err(se)? {
            let (k, v) = e.map_err(se)?;
            let r: SubRecord = decode(v.value())?;
            if r.expires <= now {
                let (p, n, id) = k.value();
                out.push((p.to_string(), n.to_string(), id.to_string(), r.subscriber));
            }
        }
        out
    };
    let mut subs = txn.open_table(SUBS).map_err(se)?;
    let mut uris = txn.open_table(SUB_URIS).map_err(se)?;
    for (p, n, id, uri) in &expired {
        subs.remove((p.as_str(), n.as_str(), id.as_str()))
            .map_err(se)?;
        let owner = uris
            .get((p.as_str(), n.as_str(), uri.as_str()))
            .map_err(se)?
            .map(|g| g.value().to_string());
        if owner.as_deref() == Some(id.as_str()) {
            uris.remove((p.as_str(), n.as_str(), uri.as_str()))
                .map_err(se)?;
        }
    }
    Ok(expired.len())
}

/// Clears every lease of a shard's notification batches (at start-up).
pub(super) fn release_leases(notify: &mut redb::Table<'_, u64, &[u8]>) -> Result<()> {
    let leased: Vec<(u64, NotifyRecord)> = {
        let mut out = Vec::new();
        for e in notify.iter().map_err(se)? {
            let (k, v) = e.map_err(se)?;
            let r: NotifyRecord = decode(v.value())?;
            if r.lease_until > 0 {
                out.push((k.value(), r));
            }
        }
        out
    };
    for (seq, mut r) in leased {
        r.lease_until = 0;
        notify.insert(seq, encode(&r)?.as_slice()).map_err(se)?;
    }
    Ok(())
}
