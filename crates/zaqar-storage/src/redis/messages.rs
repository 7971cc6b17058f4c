//! Messages of the Redis store: post, list, get, delete, pop, stats, purge and redrive, each
//! one script on the queue's keys.

use async_trait::async_trait;
use redis::Value;

use zaqar_core::error::{Error, Result};
use zaqar_core::model::{
    ListQuery, Message, MessageStamp, NewMessage, QueueRef, QueueStats, RedriveOutcome,
};
use zaqar_core::store::{
    check_bulk_delete_claim, decide_single_delete, DeleteTarget, MessageId, MessageStore,
};

use super::records::{
    array, bad_reply, encode_record, field, int, message_id, parse_message_id, to_messages, Record,
};
use super::RedisStore;

/// Entries a listing script examines per call.
const LIST_SCAN: usize = 1000;

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
