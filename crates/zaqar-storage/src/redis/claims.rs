//! Claims of the Redis store, with dead-lettering of messages claimed too often (through the
//! outbox, see [`super::outbox`]).

use async_trait::async_trait;
use redis::Value;

use zaqar_core::clock::Millis;
use zaqar_core::error::Result;
use zaqar_core::model::{Claim, ClaimParams, QueueRef};
use zaqar_core::store::ClaimStore;

use super::records::{array, bad_reply, int, to_messages};
use super::RedisStore;

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
