//! Subscriptions and the notification outbox of the PostgreSQL store (tables of
//! `migrations/postgresql/0002_subscriptions.sql`).
//!
//! The outbox row of a post is inserted by the statement that inserts the messages
//! (`SQL_POST`), so it commits with them. Leasing picks rows with `FOR UPDATE SKIP LOCKED` and
//! sets their lease in the same statement: two workers (on any nodes) never lease one batch at
//! once. A batch's key is its row id.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::value::RawValue;
use sqlx::postgres::PgRow;
use sqlx::Row;

use super::errors::{corrupt, db_err, is_conflict};
use super::rows::{get, message_id};
use super::store::{rollback, PostgresStore, Shared};
use zaqar_core::clock::secs;
use zaqar_core::error::{Error, Result};
use zaqar_core::model::{
    DeliveryOutcome, FinishedDelivery, Metadata, NewSubscription, NotifiedMessage,
    PendingNotification, Subscription, SubscriptionCreated, SubscriptionUpdate,
};
use zaqar_core::store::{DeliveryTallies, SubscriptionStore};

const CONFLICT: &str =
    "Such subscription already exists. Subscriptions are unique by project + queue + subscriber URI.";

fn not_found(id: &str) -> Error {
    Error::not_found(format!("Subscription {id} could not be found."))
}

fn subscription_from(row: &PgRow) -> Result<Subscription> {
    let options: String = get(row, "options")?;
    let delivered: i64 = get(row, "delivered")?;
    let failed: i64 = get(row, "failed")?;
    Ok(Subscription {
        id: get(row, "id")?,
        source: get(row, "source")?,
        subscriber: get(row, "subscriber")?,
        ttl: get(row, "ttl")?,
        created: get(row, "created")?,
        expires: get(row, "expires")?,
        options: serde_json::from_str::<Metadata>(&options).map_err(corrupt)?,
        confirmed: get(row, "confirmed")?,
        secret: get(row, "secret")?,
        delivered: delivered.max(0) as u64,
        failed: failed.max(0) as u64,
        last_error: get(row, "last_error")?,
    })
}

fn parse_key(key: &str) -> Result<i64> {
    key.parse()
        .map_err(|_| Error::invalid("bad notification key"))
}

/// Inserts a subscription unless the URI is taken by a live one. Returns `Ok(None)` when a
/// concurrent insert of the same URI won the race (the caller looks again).
const SQL_SUB_INSERT: &str = "
INSERT INTO subscriptions (project, source, id, subscriber, ttl, created, expires, options,
                           confirmed, secret)
VALUES ($1, $2, lpad(to_hex(nextval('subscription_seq')), 16, '0') || $3, $4, $5, $6, $7, $8,
        $9, $10)
ON CONFLICT (project, source, subscriber) DO NOTHING
RETURNING id";

impl Shared {
    async fn create_subscription(
        &self,
        project: &str,
        source: &str,
        sub: &NewSubscription,
    ) -> Result<SubscriptionCreated> {
        let options = serde_json::to_string(&sub.options).map_err(corrupt)?;
        for _ in 0..5 {
            let now = self.now();
            let mut tx = self.begin().await?;
            let existing = sqlx::query(
                "SELECT id, expires, confirmed FROM subscriptions
                 WHERE project = $1 AND source = $2 AND subscriber = $3 FOR UPDATE",
            )
            .bind(project)
            .bind(source)
            .bind(&sub.subscriber)
            .fetch_optional(&mut *tx)
            .await;
            let existing = match existing {
                Ok(r) => r,
                Err(e) => return rollback(tx, db_err(e)).await,
            };
            if let Some(row) = existing {
                let id: String = get(&row, "id")?;
                let expires: i64 = get(&row, "expires")?;
                if expires > now {
                    let confirmed: bool = get(&row, "confirmed")?;
                    tx.commit().await.map_err(db_err)?;
                    return Ok(if confirmed {
                        SubscriptionCreated::ExistingConfirmed(id)
                    } else {
                        SubscriptionCreated::ExistingUnconfirmed(id)
                    });
                }
                // An expired subscription with that URI: replace it.
                let r = sqlx::query(
                    "DELETE FROM subscriptions WHERE project = $1 AND source = $2 AND id = $3",
                )
                .bind(project)
                .bind(source)
                .bind(&id)
                .execute(&mut *tx)
                .await;
                if let Err(e) = r {
                    return rollback(tx, db_err(e)).await;
                }
            }
            let inserted = sqlx::query(SQL_SUB_INSERT)
                .bind(project)
                .bind(source)
                .bind(format!("{:016x}", rand::random::<u64>()))
                .bind(&sub.subscriber)
                .bind(sub.ttl)
                .bind(now)
                .bind(now.saturating_add(secs(sub.ttl)))
                .bind(&options)
                .bind(sub.confirmed)
                .bind(format!("{:032x}", rand::random::<u128>()))
                .fetch_optional(&mut *tx)
                .await;
            match inserted {
                Ok(Some(row)) => {
                    let id: String = get(&row, "id")?;
                    tx.commit().await.map_err(db_err)?;
                    return Ok(SubscriptionCreated::New(id));
                }
                // Another node inserted that URI meanwhile: look again.
                Ok(None) => tx.rollback().await.map_err(db_err)?,
                Err(e) => return rollback(tx, db_err(e)).await,
            }
        }
        Err(Error::Unavailable(
            "The subscription could not be created because of concurrent changes. Please try \
             again."
                .into(),
        ))
    }

    async fn list_subscriptions(
        &self,
        project: &str,
        source: &str,
        marker: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Subscription>> {
        let rows = sqlx::query(
            "SELECT * FROM subscriptions
             WHERE project = $1 AND source = $2 AND id > $3 AND expires > $4
             ORDER BY id LIMIT $5",
        )
        .bind(project)
        .bind(source)
        .bind(marker.unwrap_or(""))
        .bind(self.now())
        .bind(limit.min(i64::MAX as usize) as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(subscription_from).collect()
    }

    async fn get_subscription(
        &self,
        project: &str,
        source: &str,
        id: &str,
    ) -> Result<Option<Subscription>> {
        let row = sqlx::query(
            "SELECT * FROM subscriptions
             WHERE project = $1 AND source = $2 AND id = $3 AND expires > $4",
        )
        .bind(project)
        .bind(source)
        .bind(id)
        .bind(self.now())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(subscription_from).transpose()
    }

    async fn update_subscription(
        &self,
        project: &str,
        source: &str,
        id: &str,
        update: &SubscriptionUpdate,
    ) -> Result<()> {
        let options = update
            .options
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(corrupt)?;
        let now = self.now();
        let mut tx = self.begin().await?;
        let current = sqlx::query(
            "SELECT subscriber FROM subscriptions
             WHERE project = $1 AND source = $2 AND id = $3 AND expires > $4 FOR UPDATE",
        )
        .bind(project)
        .bind(source)
        .bind(id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await;
        let current: String = match current {
            Ok(Some(row)) => get(&row, "subscriber")?,
            Ok(None) => return rollback(tx, not_found(id)).await,
            Err(e) => return rollback(tx, db_err(e)).await,
        };
        let new_uri = update.subscriber.as_deref().filter(|u| *u != current);
        if let Some(uri) = new_uri {
            let taken = sqlx::query(
                "SELECT id, expires FROM subscriptions
                 WHERE project = $1 AND source = $2 AND subscriber = $3 FOR UPDATE",
            )
            .bind(project)
            .bind(source)
            .bind(uri)
            .fetch_optional(&mut *tx)
            .await;
            match taken {
                Ok(Some(row)) => {
                    let expires: i64 = get(&row, "expires")?;
                    let other: String = get(&row, "id")?;
                    if expires > now {
                        return rollback(tx, Error::Conflict(CONFLICT.into())).await;
                    }
                    let r = sqlx::query(
                        "DELETE FROM subscriptions
                         WHERE project = $1 AND source = $2 AND id = $3",
                    )
                    .bind(project)
                    .bind(source)
                    .bind(&other)
                    .execute(&mut *tx)
                    .await;
                    if let Err(e) = r {
                        return rollback(tx, db_err(e)).await;
                    }
                }
                Ok(None) => {}
                Err(e) => return rollback(tx, db_err(e)).await,
            }
        }
        let r = sqlx::query(
            "UPDATE subscriptions
             SET subscriber = coalesce($4, subscriber),
                 ttl = coalesce($5, ttl),
                 expires = CASE WHEN $5::int8 IS NULL THEN expires ELSE $6 END,
                 options = coalesce($7, options)
             WHERE project = $1 AND source = $2 AND id = $3",
        )
        .bind(project)
        .bind(source)
        .bind(id)
        .bind(new_uri)
        .bind(update.ttl)
        .bind(update.ttl.map(|t| now.saturating_add(secs(t))).unwrap_or(0))
        .bind(options)
        .execute(&mut *tx)
        .await;
        match r {
            Ok(_) => tx.commit().await.map_err(db_err),
            Err(sqlx::Error::Database(d)) if d.code().as_deref() == Some("23505") => {
                rollback(tx, Error::Conflict(CONFLICT.into())).await
            }
            Err(e) => rollback(tx, db_err(e)).await,
        }
    }

    async fn delete_subscription(&self, project: &str, source: &str, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM subscriptions WHERE project = $1 AND source = $2 AND id = $3")
            .bind(project)
            .bind(source)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn confirm_subscription(
        &self,
        project: &str,
        source: &str,
        id: &str,
        confirmed: bool,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE subscriptions SET confirmed = $4
             WHERE project = $1 AND source = $2 AND id = $3 AND expires > $5",
        )
        .bind(project)
        .bind(source)
        .bind(id)
        .bind(confirmed)
        .bind(self.now())
        .execute(&self.pool)
        .await
        .map_err(db_err)?
        .rows_affected();
        Ok(n > 0)
    }

    async fn purge_subscriptions(&self, project: &str, source: &str) -> Result<()> {
        sqlx::query("DELETE FROM subscriptions WHERE project = $1 AND source = $2")
            .bind(project)
            .bind(source)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn lease_notifications(
        &self,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<PendingNotification>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = self.now();
        // Takes the oldest free batches and leases them in one statement; pending subscriptions
        // deleted or expired since the post are dropped on the way.
        let rows = sqlx::query(
            "WITH picked AS (
                 SELECT id FROM notifications WHERE lease_until <= $1
                 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED
             )
             UPDATE notifications n
             SET lease_until = $1 + $3,
                 pending = array(
                     SELECT u.x FROM unnest(n.pending) WITH ORDINALITY AS u(x, o)
                     WHERE EXISTS (SELECT 1 FROM subscriptions s
                                   WHERE s.project = n.project AND s.source = n.source
                                     AND s.id = u.x AND s.expires > $1)
                     ORDER BY u.o)
             FROM picked WHERE n.id = picked.id
             RETURNING n.*",
        )
        .bind(now)
        .bind(limit.min(i64::MAX as usize) as i64)
        .bind(lease_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let mut out = Vec::with_capacity(rows.len());
        let mut empty = Vec::new();
        for row in &rows {
            let id: i64 = get(row, "id")?;
            let pending: Vec<String> = get(row, "pending")?;
            if pending.is_empty() {
                empty.push(id);
                continue;
            }
            let project: String = get(row, "project")?;
            let source: String = get(row, "source")?;
            let unconfirmed: Vec<String> = get(row, "unconfirmed")?;
            let subs = sqlx::query(
                "SELECT * FROM subscriptions
                 WHERE project = $1 AND source = $2 AND id = ANY($3) AND expires > $4
                 ORDER BY id",
            )
            .bind(&project)
            .bind(&source)
            .bind(&pending)
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
            let mut subscribers = subs
                .iter()
                .map(subscription_from)
                .collect::<Result<Vec<_>>>()?;
            // What counts is whether it was confirmed at posting time.
            for s in &mut subscribers {
                s.confirmed = !unconfirmed.contains(&s.id);
            }
            if subscribers.is_empty() {
                continue; // gone between the two statements; pruned at the next lease
            }
            let markers: Vec<i64> = get(row, "markers")?;
            let suffixes: Vec<i64> = get(row, "suffixes")?;
            let ttls: Vec<i64> = get(row, "ttls")?;
            let delays: Vec<i64> = get(row, "delays")?;
            let encrypted: Vec<bool> = get(row, "encrypted")?;
            let bodies: Vec<String> = get(row, "bodies")?;
            let n = markers.len();
            if [
                suffixes.len(),
                ttls.len(),
                delays.len(),
                encrypted.len(),
                bodies.len(),
            ]
            .iter()
            .any(|l| *l != n)
            {
                return Err(corrupt("notification batch with uneven arrays"));
            }
            let mut messages = Vec::with_capacity(n);
            for (i, body) in bodies.into_iter().enumerate() {
                messages.push(NotifiedMessage {
                    id: message_id(markers[i], suffixes[i]),
                    body: RawValue::from_string(body).map_err(corrupt)?,
                    ttl: ttls[i],
                    delay: delays[i],
                    encrypted: encrypted[i],
                });
            }
            out.push(PendingNotification {
                key: id.to_string(),
                project,
                source,
                messages,
                subscribers,
            });
        }
        if !empty.is_empty() {
            sqlx::query(
                "DELETE FROM notifications WHERE id = ANY($1) AND cardinality(pending) = 0",
            )
            .bind(&empty)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        }
        Ok(out)
    }

    async fn renew_notification_lease(&self, key: &str, lease_ms: i64) -> Result<()> {
        let id = parse_key(key)?;
        sqlx::query("UPDATE notifications SET lease_until = $2 WHERE id = $1")
            .bind(id)
            .bind(self.now() + lease_ms)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn finish_notifications(&self, done: &[FinishedDelivery]) -> Result<()> {
        let mut by_batch: BTreeMap<i64, Vec<(&str, &DeliveryOutcome)>> = BTreeMap::new();
        for d in done {
            by_batch
                .entry(parse_key(&d.key)?)
                .or_default()
                .push((&d.subscription_id, &d.outcome));
        }
        if by_batch.is_empty() {
            return Ok(());
        }
        // Two nodes finishing deliveries of one subscription may deadlock on its row; the
        // loser is rolled back whole and tries again.
        let mut attempt = 0;
        loop {
            match self.try_finish_notifications(&by_batch).await {
                Err(e) if attempt < 3 && is_conflict(&e) => attempt += 1,
                r => return r.map_err(db_err),
            }
        }
    }

    /// One transaction: lock the batches (in id order), drop the subscribers that were still
    /// pending, delete emptied batches, then add up the counters of each subscription.
    async fn try_finish_notifications(
        &self,
        by_batch: &BTreeMap<i64, Vec<(&str, &DeliveryOutcome)>>,
    ) -> std::result::Result<(), sqlx::Error> {
        let ids: Vec<i64> = by_batch.keys().copied().collect();
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT id, project, source, pending FROM notifications
             WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        let (mut gone_ids, mut gone_sids) = (Vec::new(), Vec::new());
        let mut tallies = DeliveryTallies::new();
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            let project: String = row.try_get("project")?;
            let source: String = row.try_get("source")?;
            let mut pending: Vec<String> = row.try_get("pending")?;
            for (sid, outcome) in by_batch.get(&id).into_iter().flatten() {
                let Some(at) = pending.iter().position(|p| p == sid) else {
                    continue; // already finished (a replay)
                };
                pending.remove(at);
                gone_ids.push(id);
                gone_sids.push(sid.to_string());
                tallies
                    .entry((project.clone(), source.clone(), sid.to_string()))
                    .or_default()
                    .add(outcome);
            }
        }
        if gone_ids.is_empty() {
            return tx.commit().await;
        }
        sqlx::query(
            "WITH d(id, sid) AS (SELECT * FROM unnest($1::bigint[], $2::text[])),
                  g AS (SELECT id, array_agg(sid) AS sids FROM d GROUP BY id)
             UPDATE notifications n
             SET pending = ARRAY(SELECT p FROM unnest(n.pending) WITH ORDINALITY AS x(p, o)
                                 WHERE NOT (p = ANY(g.sids)) ORDER BY o)
             FROM g WHERE n.id = g.id",
        )
        .bind(&gone_ids)
        .bind(&gone_sids)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM notifications WHERE id = ANY($1) AND cardinality(pending) = 0")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        tallies.retain(|_, t| !t.is_empty());
        if !tallies.is_empty() {
            let (mut projects, mut sources, mut sids) = (Vec::new(), Vec::new(), Vec::new());
            let (mut delivered, mut failed, mut errors) = (Vec::new(), Vec::new(), Vec::new());
            for ((project, source, sid), t) in tallies {
                projects.push(project);
                sources.push(source);
                sids.push(sid);
                delivered.push(t.delivered as i64);
                failed.push(t.failed as i64);
                errors.push(t.last_error);
            }
            sqlx::query(
                "UPDATE subscriptions s
                 SET delivered = s.delivered + u.d, failed = s.failed + u.f,
                     last_error = coalesce(u.e, s.last_error)
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[],
                             $6::text[]) AS u(project, source, id, d, f, e)
                 WHERE s.project = u.project AND s.source = u.source AND s.id = u.id",
            )
            .bind(&projects)
            .bind(&sources)
            .bind(&sids)
            .bind(&delivered)
            .bind(&failed)
            .bind(&errors)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }
}

#[async_trait]
impl SubscriptionStore for PostgresStore {
    async fn create_subscription(
        &self,
        project: &str,
        source: &str,
        sub: NewSubscription,
    ) -> Result<SubscriptionCreated> {
        let s = &self.shared;
        s.timed(s.create_subscription(project, source, &sub)).await
    }

    async fn list_subscriptions(
        &self,
        project: &str,
        source: &str,
        marker: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Subscription>> {
        let s = &self.shared;
        s.timed(s.list_subscriptions(project, source, marker, limit))
            .await
    }

    async fn get_subscription(
        &self,
        project: &str,
        source: &str,
        id: &str,
    ) -> Result<Option<Subscription>> {
        let s = &self.shared;
        s.timed(s.get_subscription(project, source, id)).await
    }

    async fn update_subscription(
        &self,
        project: &str,
        source: &str,
        id: &str,
        update: SubscriptionUpdate,
    ) -> Result<()> {
        let s = &self.shared;
        s.timed(s.update_subscription(project, source, id, &update))
            .await
    }

    async fn delete_subscription(&self, project: &str, source: &str, id: &str) -> Result<()> {
        let s = &self.shared;
        s.timed(s.delete_subscription(project, source, id)).await
    }

    async fn confirm_subscription(
        &self,
        project: &str,
        source: &str,
        id: &str,
        confirmed: bool,
    ) -> Result<bool> {
        let s = &self.shared;
        s.timed(s.confirm_subscription(project, source, id, confirmed))
            .await
    }

    async fn purge_subscriptions(&self, project: &str, source: &str) -> Result<()> {
        let s = &self.shared;
        s.timed(s.purge_subscriptions(project, source)).await
    }

    async fn lease_notifications(
        &self,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<PendingNotification>> {
        let s = &self.shared;
        s.timed(s.lease_notifications(limit, lease_ms)).await
    }

    async fn renew_notification_lease(&self, key: &str, lease_ms: i64) -> Result<()> {
        let s = &self.shared;
        s.timed(s.renew_notification_lease(key, lease_ms)).await
    }

    async fn finish_notifications(&self, done: Vec<FinishedDelivery>) -> Result<()> {
        let s = &self.shared;
        s.timed(s.finish_notifications(&done)).await
    }
}
