//! Claims of the PostgreSQL store (`FOR UPDATE SKIP LOCKED`), with dead-lettering of messages
//! claimed too often.

use async_trait::async_trait;
use sqlx::Row;

use zaqar_core::clock::{secs, Millis};
use zaqar_core::error::Result;
use zaqar_core::model::{Claim, ClaimParams, DeadLetter, Message, QueueRef};
use zaqar_core::store::ClaimStore;

use super::errors::db_err;
use super::rows::{get, message_from, messages_from};
use super::sql::{SQL_CLAIM, SQL_CLAIM_MARKERS, SQL_GET_CLAIM, SQL_PICK, SQL_RELEASE, SQL_RENEW};
use super::store::{PostgresStore, Shared};

impl Shared {
    pub(super) async fn create_claim(
        &self,
        q: QueueRef<'_>,
        params: &ClaimParams,
    ) -> Result<Option<Claim>> {
        let now = self.now();
        let cid = uuid::Uuid::new_v4().simple().to_string();
        let expires = now + secs(params.ttl);
        let limit = params.limit.min(i64::MAX as usize) as i64;
        if limit == 0 {
            return Ok(None);
        }
        let messages = match &params.dead_letter {
            None => {
                let rows = sqlx::query(SQL_CLAIM)
                    .bind(q.project)
                    .bind(q.name)
                    .bind(now)
                    .bind(limit)
                    .bind(&cid)
                    .bind(expires)
                    .bind(params.ttl)
                    .bind(params.grace)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                messages_from(&rows)?
            }
            Some(dl) => {
                self.claim_with_dead_letter(q, params, dl, &cid, now, expires, limit)
                    .await?
            }
        };
        if messages.is_empty() {
            return Ok(None);
        }
        Ok(Some(Claim {
            id: cid,
            ttl: params.ttl,
            updated: now,
            expires,
            messages,
        }))
    }

    /// A claim of a queue with dead-lettering (spec §1.7): in one transaction, the selected
    /// messages already claimed `max_claim_count` times move to the dead-letter queue and the
    /// others are claimed.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn claim_with_dead_letter(
        &self,
        q: QueueRef<'_>,
        params: &ClaimParams,
        dl: &DeadLetter,
        cid: &str,
        now: Millis,
        expires: Millis,
        limit: i64,
    ) -> Result<Vec<Message>> {
        let mut tx = self.begin().await?;
        let rows = sqlx::query(SQL_PICK)
            .bind(q.project)
            .bind(q.name)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        let Some(first) = rows.first() else {
            tx.commit().await.map_err(db_err)?;
            return Ok(Vec::new());
        };
        let queue_id: i64 = get(first, "queue_id")?;
        let (mut exhausted, mut keep) = (Vec::new(), Vec::new());
        for row in &rows {
            let marker: i64 = get(row, "marker")?;
            let count: i32 = get(row, "claim_count")?;
            if count.max(0) as u32 >= dl.max_claim_count {
                exhausted.push(marker);
            } else {
                keep.push(marker);
            }
        }
        if !exhausted.is_empty() {
            self.move_in(
                &mut tx,
                q.project,
                queue_id,
                &exhausted,
                &dl.queue,
                Some(q.name),
                dl.ttl,
                now,
            )
            .await?;
        }
        let mut messages = Vec::new();
        if !keep.is_empty() {
            let rows = sqlx::query(SQL_CLAIM_MARKERS)
                .bind(q.project)
                .bind(q.name)
                .bind(now)
                .bind(&keep)
                .bind(cid)
                .bind(expires)
                .bind(params.ttl)
                .bind(params.grace)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
            messages = messages_from(&rows)?;
        }
        tx.commit().await.map_err(db_err)?;
        if !exhausted.is_empty() {
            self.publish(q.project, &dl.queue);
        }
        Ok(messages)
    }

    pub(super) async fn get_claim(&self, q: QueueRef<'_>, claim_id: &str) -> Result<Option<Claim>> {
        let rows = sqlx::query(SQL_GET_CLAIM)
            .bind(q.project)
            .bind(q.name)
            .bind(claim_id)
            .bind(self.now())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let mut messages = Vec::with_capacity(rows.len());
        for row in &rows {
            if get::<Option<i64>>(row, "marker")?.is_some() {
                messages.push(message_from(row)?);
            }
        }
        Ok(Some(Claim {
            id: claim_id.to_string(),
            ttl: get(first, "c_ttl")?,
            updated: get(first, "c_updated")?,
            expires: get(first, "c_expires")?,
            messages,
        }))
    }

    pub(super) async fn renew_claim(
        &self,
        q: QueueRef<'_>,
        claim_id: &str,
        ttl: i64,
        grace: i64,
    ) -> Result<bool> {
        let now = self.now();
        let renewed: i64 = sqlx::query(SQL_RENEW)
            .bind(q.project)
            .bind(q.name)
            .bind(claim_id)
            .bind(ttl)
            .bind(now)
            .bind(now + secs(ttl))
            .bind(grace)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?
            .try_get("renewed")
            .map_err(db_err)?;
        Ok(renewed > 0)
    }

    pub(super) async fn release_claim(&self, q: QueueRef<'_>, claim_id: &str) -> Result<()> {
        let released = sqlx::query(SQL_RELEASE)
            .bind(q.project)
            .bind(q.name)
            .bind(claim_id)
            .bind(self.now())
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        if released.rows_affected() > 0 {
            self.publish(q.project, q.name);
        }
        Ok(())
    }

    // ----- sweep --------------------------------------------------------------------------
}

#[async_trait]
impl ClaimStore for PostgresStore {
    async fn create_claim(&self, q: QueueRef<'_>, params: ClaimParams) -> Result<Option<Claim>> {
        let s = &self.shared;
        s.timed(s.create_claim(q, &params)).await
    }

    async fn get_claim(&self, q: QueueRef<'_>, claim_id: &str) -> Result<Option<Claim>> {
        let s = &self.shared;
        s.timed(s.get_claim(q, claim_id)).await
    }

    async fn renew_claim(
        &self,
        q: QueueRef<'_>,
        claim_id: &str,
        ttl: i64,
        grace: i64,
    ) -> Result<bool> {
        let s = &self.shared;
        s.timed(s.renew_claim(q, claim_id, ttl, grace)).await
    }

    async fn release_claim(&self, q: QueueRef<'_>, claim_id: &str) -> Result<()> {
        let s = &self.shared;
        s.timed(s.release_claim(q, claim_id)).await
    }
}
