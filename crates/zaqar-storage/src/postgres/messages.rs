//! Messages of the PostgreSQL store: post (through the combining lane), list, get, delete, pop,
//! stats and purge.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::oneshot;

use zaqar_core::error::{Error, Result};
use zaqar_core::model::{
    ListQuery, Message, MessageStamp, NewMessage, QueueRef, QueueStats, RedriveOutcome,
};
use zaqar_core::store::{
    check_bulk_delete_claim, decide_single_delete, is_valid_claim_id, DeleteTarget, MessageStore,
};

use super::errors::db_err;
use super::lanes::{shutting_down, PendingDelete, PendingPost};
use super::rows::{get, message_id, messages_from, parse_ids, parse_message_id};
use super::sql::{
    SQL_DELETE_IDS, SQL_DELETE_MARKERS, SQL_DELETE_ONE_CHECK, SQL_GET, SQL_LIST, SQL_LOCK_IDS,
    SQL_POP, SQL_PURGE, SQL_STATS,
};
use super::store::{rollback, PostgresStore, Shared};

impl Shared {
    pub(super) async fn post_messages(
        self: &Arc<Self>,
        q: QueueRef<'_>,
        client_id: &str,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<String>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        // Posts are combined per queue: a value the database would refuse must fail this post
        // alone, not the others of its group.
        if client_id.contains('\0') {
            return Err(Error::invalid(
                "The Client-ID contains a NUL character, which the message store cannot hold.",
            ));
        }
        let lanes = self.lanes(q);
        let (done, result) = oneshot::channel();
        let start = lanes.posts.push(PendingPost {
            client_id: client_id.to_string(),
            messages,
            done,
        });
        if start {
            // The insert runs in its own task so a caller that goes away does not cancel the
            // posts combined with its own.
            let (p, n) = (q.project.to_string(), q.name.to_string());
            tokio::spawn(self.clone().drain_posts(lanes, p, n));
        }
        result.await.unwrap_or_else(|_| Err(shutting_down()))
    }

    pub(super) async fn list_messages(
        &self,
        q: QueueRef<'_>,
        query: &ListQuery,
    ) -> Result<Vec<Message>> {
        let after = match query.marker {
            None => 0,
            Some(m) if m > i64::MAX as u64 => return Ok(Vec::new()),
            Some(m) => m as i64,
        };
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(SQL_LIST)
            .bind(q.project)
            .bind(q.name)
            .bind(after)
            .bind(self.now())
            .bind(query.include_claimed)
            .bind(query.include_delayed)
            .bind(query.exclude_client.as_deref())
            .bind(query.limit.min(i64::MAX as usize) as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        messages_from(&rows)
    }

    pub(super) async fn get_messages(
        &self,
        q: QueueRef<'_>,
        ids: &[String],
    ) -> Result<Vec<Message>> {
        let keys = parse_ids(ids);
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let markers: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let suffixes: Vec<i64> = keys.iter().map(|k| k.1).collect();
        let rows = sqlx::query(SQL_GET)
            .bind(q.project)
            .bind(q.name)
            .bind(&markers)
            .bind(&suffixes)
            .bind(self.now())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        let mut found = messages_from(&rows)?;
        // In the order the ids were asked for.
        let order: HashMap<i64, usize> = markers.iter().enumerate().map(|(i, m)| (*m, i)).collect();
        found.sort_by_key(|m| order.get(&(m.marker as i64)).copied().unwrap_or(usize::MAX));
        Ok(found)
    }

    pub(super) async fn delete_messages(
        &self,
        q: QueueRef<'_>,
        ids: &[String],
        claim_ids: Option<&[String]>,
    ) -> Result<()> {
        let mut keys = parse_ids(ids);
        if keys.is_empty() {
            return Ok(());
        }
        // Rows are locked in marker order, as every other statement does, so concurrent
        // deletes of overlapping sets cannot deadlock.
        keys.sort_unstable_by_key(|k| (k.0, k.1));
        let markers: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let suffixes: Vec<i64> = keys.iter().map(|k| k.1).collect();
        let Some(claim_ids) = claim_ids else {
            sqlx::query(SQL_DELETE_IDS)
                .bind(q.project)
                .bind(q.name)
                .bind(&markers)
                .bind(&suffixes)
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
            return Ok(());
        };
        let now = self.now();
        let mut tx = self.begin().await?;
        let rows = sqlx::query(SQL_LOCK_IDS)
            .bind(q.project)
            .bind(q.name)
            .bind(&markers)
            .bind(&suffixes)
            .bind(now)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        let mut queue_id = None;
        let mut held = HashMap::new();
        for row in &rows {
            queue_id = Some(get::<i64>(row, "queue_id")?);
            let claim_id: Option<String> = get(row, "claim_id")?;
            let claim_expires: i64 = get(row, "claim_expires")?;
            let active = claim_id.filter(|_| claim_expires > now);
            held.insert(get::<i64>(row, "marker")?, active);
        }
        // Every targeted message that exists must be held by one of the claims.
        let allowed = keys
            .iter()
            .try_for_each(|(marker, _, id)| match held.get(marker) {
                Some(active) => check_bulk_delete_claim(id, active.as_deref(), claim_ids),
                None => Ok(()),
            });
        if let Err(e) = allowed {
            return rollback(tx, e).await;
        }
        if let Some(queue_id) = queue_id {
            let targets: Vec<i64> = held.keys().copied().collect();
            sqlx::query(SQL_DELETE_MARKERS)
                .bind(queue_id)
                .bind(&targets)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    pub(super) async fn pop_messages(&self, q: QueueRef<'_>, limit: usize) -> Result<Vec<Message>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(SQL_POP)
            .bind(q.project)
            .bind(q.name)
            .bind(self.now())
            .bind(limit.min(i64::MAX as usize) as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        let mut out = messages_from(&rows)?;
        out.sort_by_key(|m| m.marker);
        Ok(out)
    }

    pub(super) async fn delete_message(
        self: &Arc<Self>,
        q: QueueRef<'_>,
        id: &str,
        claim_id: Option<&str>,
    ) -> Result<()> {
        let Some((marker, suffix)) = parse_message_id(id) else {
            return Ok(());
        };
        // The common outcomes, combined with the other deletes of this queue waiting on this
        // node into one statement (see SQL_DELETE_BATCH); the rest is decided below.
        if claim_id.is_none_or(is_valid_claim_id) {
            let lanes = self.lanes(q);
            let (done, result) = oneshot::channel();
            let start = lanes.deletes.push(PendingDelete {
                marker,
                suffix,
                claim_id: claim_id.map(str::to_string),
                done,
            });
            if start {
                let (p, n) = (q.project.to_string(), q.name.to_string());
                tokio::spawn(self.clone().drain_deletes(lanes, p, n));
            }
            if result.await.unwrap_or_else(|_| Err(shutting_down()))? {
                return Ok(());
            }
        }
        let now = self.now();
        let mut tx = self.begin().await?;
        let row = sqlx::query(SQL_DELETE_ONE_CHECK)
            .bind(q.project)
            .bind(q.name)
            .bind(marker)
            .bind(suffix)
            .bind(now)
            .bind(claim_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        let (queue_id, active, live) = match &row {
            Some(r) => {
                let cid: Option<String> = get(r, "claim_id")?;
                let expires: i64 = get(r, "claim_expires")?;
                (
                    Some(get::<i64>(r, "queue_id")?),
                    cid.filter(|_| expires > now),
                    get::<bool>(r, "claim_live")?,
                )
            }
            None => (None, None, false),
        };
        let target = row.as_ref().map(|_| DeleteTarget {
            active_claim: active.as_deref(),
        });
        let delete = match decide_single_delete(target, claim_id, |_| Ok(live)) {
            Ok(d) => d,
            Err(e) => return rollback(tx, e).await,
        };
        if delete {
            if let Some(queue_id) = queue_id {
                sqlx::query(SQL_DELETE_MARKERS)
                    .bind(queue_id)
                    .bind(vec![marker])
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
        }
        tx.commit().await.map_err(db_err)
    }

    pub(super) async fn queue_stats(&self, q: QueueRef<'_>) -> Result<QueueStats> {
        let row = sqlx::query(SQL_STATS)
            .bind(q.project)
            .bind(q.name)
            .bind(self.now())
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        let total: i64 = get(&row, "total")?;
        let claimed: i64 = get(&row, "claimed")?;
        let delayed: i64 = get(&row, "delayed")?;
        let stamp = |p: &str| -> Result<Option<MessageStamp>> {
            let marker: Option<i64> = get(&row, &format!("{p}_marker"))?;
            let suffix: Option<i64> = get(&row, &format!("{p}_suffix"))?;
            let created: Option<i64> = get(&row, &format!("{p}_created"))?;
            Ok(match (marker, suffix, created) {
                (Some(m), Some(s), Some(c)) => Some(MessageStamp {
                    id: message_id(m, s),
                    created: c,
                }),
                _ => None,
            })
        };
        Ok(QueueStats {
            total: total as u64,
            claimed: claimed as u64,
            delayed: delayed as u64,
            oldest: stamp("o")?,
            newest: stamp("n")?,
        })
    }

    pub(super) async fn purge_messages(&self, q: QueueRef<'_>) -> Result<()> {
        sqlx::query(SQL_PURGE)
            .bind(q.project)
            .bind(q.name)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}

#[async_trait]
impl MessageStore for PostgresStore {
    async fn post_messages(
        &self,
        q: QueueRef<'_>,
        client_id: &str,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<String>> {
        // Bounded by the insert task's own timeout.
        self.shared.post_messages(q, client_id, messages).await
    }

    async fn list_messages(&self, q: QueueRef<'_>, query: &ListQuery) -> Result<Vec<Message>> {
        let s = &self.shared;
        s.timed(s.list_messages(q, query)).await
    }

    async fn get_messages(&self, q: QueueRef<'_>, ids: &[String]) -> Result<Vec<Message>> {
        let s = &self.shared;
        s.timed(s.get_messages(q, ids)).await
    }

    async fn delete_messages(
        &self,
        q: QueueRef<'_>,
        ids: &[String],
        claim_ids: Option<&[String]>,
    ) -> Result<()> {
        let s = &self.shared;
        s.timed(s.delete_messages(q, ids, claim_ids)).await
    }

    async fn pop_messages(&self, q: QueueRef<'_>, limit: usize) -> Result<Vec<Message>> {
        let s = &self.shared;
        s.timed(s.pop_messages(q, limit)).await
    }

    async fn delete_message(
        &self,
        q: QueueRef<'_>,
        id: &str,
        claim_id: Option<&str>,
    ) -> Result<()> {
        let s = &self.shared;
        s.timed(s.delete_message(q, id, claim_id)).await
    }

    async fn queue_stats(&self, q: QueueRef<'_>) -> Result<QueueStats> {
        let s = &self.shared;
        s.timed(s.queue_stats(q)).await
    }

    async fn purge_messages(&self, q: QueueRef<'_>) -> Result<()> {
        let s = &self.shared;
        s.timed(s.purge_messages(q)).await
    }

    async fn redrive_messages(
        &self,
        q: QueueRef<'_>,
        target: Option<&str>,
        limit: Option<usize>,
    ) -> Result<RedriveOutcome> {
        let s = &self.shared;
        s.timed(s.redrive_messages(q, target, limit)).await
    }
}
