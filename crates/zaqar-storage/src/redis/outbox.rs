//! Moves out of a queue of the Redis store: draining the queue's outbox into the target queues
//! exactly once (see the module docs of [`super`]).

use redis::Value;

use zaqar_core::error::Result;
use zaqar_core::model::QueueRef;

use super::records::{array, bad_reply, field};
use super::{DrainStop, RedisStore};

/// How long a drainer holds an outbox entry before another may take it over.
const LEASE_MS: i64 = 30_000;

impl RedisStore {
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

    pub(super) async fn drain_logged(&self, q: QueueRef<'_>) {
        if let Err(e) = self.drain(q).await {
            tracing::warn!(error = %e, "pending message moves will be retried by the sweep");
        }
    }

    /// Makes drains stop at `stop`, as if the process died there (recovery tests only).
    #[doc(hidden)]
    pub fn simulate_drain_crash(&self, stop: DrainStop) {
        *self.drain_stop.lock().unwrap() = stop;
    }
}
