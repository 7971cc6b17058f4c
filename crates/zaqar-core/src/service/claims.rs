//! Claim operations: creating a claim (with long polling and the queue's dead-letter rule),
//! reading, renewing and releasing it.

use serde_json::{Map, Value};

use super::validate::{self, int_field, parse_object, MIN_CLAIM_GRACE, MIN_CLAIM_TTL};
use super::{Ctx, Service};
use crate::error::{Error, Result};
use crate::model::{Claim, ClaimParams, DeadLetter, Metadata, QueueRef};

/// Reads `ttl`/`grace` of a claim body.
fn claim_body_field(body: &Map<String, Value>, name: &str, default: i64) -> Result<i64> {
    match body.get(name) {
        None => Ok(default),
        Some(v) => int_field(v, name),
    }
}

impl Service {
    /// The dead-letter settings of a queue's metadata (both keys needed, spec §1.7).
    fn dead_letter(meta: &Metadata) -> Option<DeadLetter> {
        let max = meta.get("_max_claim_count")?.as_u64()?;
        let queue = meta.get("_dead_letter_queue")?.as_str()?.to_string();
        Some(DeadLetter {
            max_claim_count: u32::try_from(max).unwrap_or(u32::MAX),
            queue,
            ttl: meta
                .get("_dead_letter_queue_messages_ttl")
                .and_then(Value::as_i64),
        })
    }

    fn check_claim_ttl_grace(&self, ttl: i64, grace: i64) -> Result<()> {
        if ttl < MIN_CLAIM_TTL || ttl > self.limits.max_claim_ttl {
            return Err(Error::invalid(format!(
                "The TTL for a claim may not exceed {} seconds, and must be at least {} seconds long.",
                self.limits.max_claim_ttl, MIN_CLAIM_TTL
            )));
        }
        if grace < MIN_CLAIM_GRACE || grace > self.limits.max_claim_grace {
            return Err(Error::invalid(format!(
                "The grace for a claim may not exceed {} seconds, and must be at least {} seconds long.",
                self.limits.max_claim_grace, MIN_CLAIM_GRACE
            )));
        }
        Ok(())
    }

    fn claim_body(&self, body: &[u8]) -> Result<(i64, i64)> {
        let doc = parse_object(body)?;
        Ok((
            claim_body_field(&doc, "ttl", self.limits.default_claim_ttl)?,
            claim_body_field(&doc, "grace", self.limits.default_claim_grace)?,
        ))
    }

    /// `POST .../claims`: `None` when nothing could be claimed.
    pub async fn create_claim(
        &self,
        ctx: Ctx<'_>,
        name: &str,
        limit: Option<i64>,
        body: &[u8],
    ) -> Result<Option<Claim>> {
        self.create_claim_wait(ctx, name, limit, body, None).await
    }

    /// Claim creation with long polling: with `wait` (seconds), `None` is only returned once
    /// `wait` has passed without a claimable message arriving.
    pub async fn create_claim_wait(
        &self,
        ctx: Ctx<'_>,
        name: &str,
        limit: Option<i64>,
        body: &[u8],
        wait: Option<i64>,
    ) -> Result<Option<Claim>> {
        let q = ctx.queue(name)?;
        let (ttl, grace) = if body.iter().all(u8::is_ascii_whitespace) {
            (
                self.limits.default_claim_ttl,
                self.limits.default_claim_grace,
            )
        } else {
            self.claim_body(body)?
        };
        self.check_claim_ttl_grace(ttl, grace)?;
        let limit = validate::limit(limit, 10, self.limits.max_messages_per_claim_or_pop)?;
        let wait = self.check_wait(wait)?;
        let dead_letter = Self::dead_letter(&self.queue_metadata(q).await?);
        let params = ClaimParams {
            ttl,
            grace,
            limit,
            dead_letter: dead_letter.clone(),
        };
        let attempt = || async {
            let claim = self.store.create_claim(q, params.clone()).await;
            if let Some(dl) = &dead_letter {
                self.hub.notify(q.project, &dl.queue);
            }
            claim
        };
        let mut claim = self
            .long_poll(q, wait, attempt, |c: &Option<Claim>| c.is_none())
            .await?;
        if let Some(c) = claim.as_mut() {
            crate::metrics::messages_claimed(q.project, q.name, c.messages.len());
            self.reveal(q.project, &mut c.messages)?;
        }
        Ok(claim)
    }

    fn claim_not_found(q: QueueRef<'_>, cid: &str) -> Error {
        Error::not_found(format!(
            "Claim {cid} does not exist in queue {} for project {}",
            q.name, q.project
        ))
    }

    pub async fn get_claim(&self, ctx: Ctx<'_>, name: &str, claim_id: &str) -> Result<Claim> {
        let q = ctx.queue(name)?;
        let mut claim = self
            .store
            .get_claim(q, claim_id)
            .await?
            .ok_or_else(|| Self::claim_not_found(q, claim_id))?;
        self.reveal(q.project, &mut claim.messages)?;
        Ok(claim)
    }

    /// `PATCH .../claims/{id}`: renews a live claim (body required).
    pub async fn update_claim(
        &self,
        ctx: Ctx<'_>,
        name: &str,
        claim_id: &str,
        body: &[u8],
    ) -> Result<()> {
        let q = ctx.queue(name)?;
        let (ttl, grace) = self.claim_body(body)?;
        self.check_claim_ttl_grace(ttl, grace)?;
        if self.store.renew_claim(q, claim_id, ttl, grace).await? {
            Ok(())
        } else {
            Err(Self::claim_not_found(q, claim_id))
        }
    }

    pub async fn delete_claim(&self, ctx: Ctx<'_>, name: &str, claim_id: &str) -> Result<()> {
        let q = ctx.queue(name)?;
        self.store.release_claim(q, claim_id).await?;
        // Released messages are claimable again: wake the queue's waiters.
        self.hub.notify(q.project, q.name);
        Ok(())
    }
}
