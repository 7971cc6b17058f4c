//! Subscriptions and the notification outbox of the PostgreSQL store (tables of
//! `migrations/postgresql/0002_subscriptions.sql`).
//!
//! The outbox row of a post is inserted by the statement that inserts the messages
//! (`SQL_POST`), so it commits with them. Leasing picks rows with `FOR UPDATE SKIP LOCKED` and
//! sets their lease in the same statement: two workers (on any nodes) never lease one batch at
//! once. A batch's key is its row id.

use async_trait::async_trait;
use serde_json::value::RawValue;
use sqlx::postgres::PgRow;

use super::{corrupt, db_err, get, message_id, rollback, PostgresStore, Shared};
use crate::clock::secs;
use crate::error::{Error, Result};
use crate::model::{
    DeliveryOutcome, Metadata, NewSubscription, NotifiedMessage, PendingNotification, Subscription,
    SubscriptionCreated, SubscriptionUpdate,
};
use crate::storage::SubscriptionStore;

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

    async fn finish_notification(
        &self,
        key: &str,
        subscription_id: &str,
        outcome: &DeliveryOutcome,
    ) -> Result<()> {
        let id = parse_key(key)?;
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "UPDATE notifications SET pending = array_remove(pending, $2)
             WHERE id = $1 AND $2 = ANY(pending)
             RETURNING project, source, cardinality(pending) AS left",
        )
        .bind(id)
        .bind(subscription_id)
        .fetch_optional(&mut *tx)
        .await;
        let row = match row {
            Ok(Some(r)) => r,
            // Unknown batch or already finished for this subscriber (a replay).
            Ok(None) => return tx.commit().await.map_err(db_err),
            Err(e) => return rollback(tx, db_err(e)).await,
        };
        let project: String = get(&row, "project")?;
        let source: String = get(&row, "source")?;
        let left: i32 = get(&row, "left")?;
        if left == 0 {
            let r = sqlx::query("DELETE FROM notifications WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await;
            if let Err(e) = r {
                return rollback(tx, db_err(e)).await;
            }
        }
        let counters = match outcome {
            DeliveryOutcome::Delivered => Some((1i64, 0i64, None)),
            DeliveryOutcome::GaveUp(e) => Some((0, 1, Some(e.as_str()))),
            DeliveryOutcome::Skipped => None,
        };
        if let Some((d, f, err)) = counters {
            let r = sqlx::query(
                "UPDATE subscriptions
                 SET delivered = delivered + $4, failed = failed + $5,
                     last_error = coalesce($6, last_error)
                 WHERE project = $1 AND source = $2 AND id = $3",
            )
            .bind(&project)
            .bind(&source)
            .bind(subscription_id)
            .bind(d)
            .bind(f)
            .bind(err)
            .execute(&mut *tx)
            .await;
            if let Err(e) = r {
                return rollback(tx, db_err(e)).await;
            }
        }
        tx.commit().await.map_err(db_err)
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

    async fn finish_notification(
        &self,
        key: &str,
        subscription_id: &str,
        outcome: DeliveryOutcome,
    ) -> Result<()> {
        let s = &self.shared;
        s.timed(s.finish_notification(key, subscription_id, &outcome))
            .await
    }
}
