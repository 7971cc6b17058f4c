//! Message operations: posting (with validation, encryption, checksums and the project's
//! quotas), listing (with long polling), reading by id, and deleting (by id, in bulk, by pop).

use std::collections::HashMap;

use serde_json::value::RawValue;
use serde_json::Value;

use super::validate::{self, json_preflight, MIN_MESSAGE_TTL};
use super::{checksum, quota, BulkDelete, Ctx, MessageListParams, MessageListing, Service};
use crate::error::{Error, Result};
use crate::model::{ListQuery, Message, Metadata, NewMessage};

impl Service {
    /// Parses and validates a message POST body against the queue's settings. Public for the
    /// micro-benchmarks and the fuzz targets; transports call [`Service::post_messages`].
    pub fn parse_new_messages(
        &self,
        project: &str,
        body: &[u8],
        meta: &Metadata,
    ) -> Result<Vec<NewMessage>> {
        let encrypt = meta.get("_enable_encrypt_messages") == Some(&Value::Bool(true));
        let encryptor = match (encrypt, &self.options.encryptor) {
            (false, _) => None,
            (true, Some(e)) => Some(e),
            (true, None) => {
                return Err(Error::unavailable(
                    "This queue requires message encryption, but no encryption key is configured on this server.",
                ))
            }
        };
        json_preflight(body)?;
        let doc: HashMap<String, &RawValue> = serde_json::from_slice(body).map_err(|_| {
            match serde_json::from_slice::<Value>(body) {
                Ok(_) => Error::body("No messages were found in the request body."),
                Err(_) => Error::body("Request body could not be parsed."),
            }
        })?;
        let Some(raw) = doc.get("messages") else {
            return Err(Error::body("No messages were found in the request body."));
        };
        let items: Vec<&RawValue> = serde_json::from_str(raw.get())
            .map_err(|_| Error::body("The value of the \"messages\" field must be a list."))?;
        if items.is_empty() {
            return Err(Error::invalid("No messages to enqueu."));
        }
        let queue_ttl = meta
            .get("_default_message_ttl")
            .and_then(Value::as_i64)
            .filter(|t| *t != 0);
        let default_ttl = queue_ttl.unwrap_or(self.limits.default_message_ttl);
        let queue_delay = meta
            .get("_default_message_delay")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let delayed_queue = queue_delay != 0;
        let max_delay = self.limits.max_message_delay;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let fields: HashMap<String, &RawValue> = serde_json::from_str(item.get())
                .map_err(|_| Error::body("Each message must be a JSON object."))?;
            let body = fields
                .get("body")
                .ok_or_else(|| Error::body("Missing \"body\" field."))?;
            let int = |name: &str| -> Result<Option<i64>> {
                match fields.get(name) {
                    None => Ok(None),
                    Some(v) => serde_json::from_str::<i64>(v.get()).map(Some).map_err(|_| {
                        Error::body(format!("The value of the \"{name}\" field must be a int."))
                    }),
                }
            };
            let ttl = int("ttl")?.unwrap_or(default_ttl);
            if ttl < MIN_MESSAGE_TTL || ttl > self.limits.max_message_ttl {
                return Err(Error::invalid(format!(
                    "The TTL for a message may not exceed {} seconds, and must be at least {} seconds long.",
                    self.limits.max_message_ttl, MIN_MESSAGE_TTL
                )));
            }
            let delay = if delayed_queue {
                let d = int("delay")?.unwrap_or(queue_delay);
                if d < 0 || d > max_delay {
                    return Err(Error::invalid(format!(
                        "The Delay TTL for a message may not exceed {max_delay} seconds, and must be at least 0 seconds long."
                    )));
                }
                d
            } else {
                0
            };
            if delay > ttl {
                return Err(Error::invalid(format!(
                    "The delay of a message ({delay} seconds) may not exceed its TTL ({ttl} seconds)."
                )));
            }
            let checksum = if self.options.checksum {
                checksum::checksum(body.get())
            } else {
                None
            };
            let body = match encryptor {
                None => (*body).to_owned(),
                Some(e) => {
                    let token = e.encrypt(project, body.get())?;
                    let text = serde_json::to_string(&token)
                        .map_err(|e| Error::Internal(e.to_string()))?;
                    RawValue::from_string(text).map_err(|e| Error::Internal(e.to_string()))?
                }
            };
            out.push(NewMessage {
                body,
                ttl,
                delay,
                checksum,
                encrypted: encryptor.is_some(),
            });
        }
        Ok(out)
    }

    /// `POST .../messages`: stores the batch atomically and returns the new ids in order.
    pub async fn post_messages(
        &self,
        ctx: Ctx<'_>,
        name: &str,
        body: &[u8],
    ) -> Result<Vec<String>> {
        let q = ctx.queue(name)?;
        let global = self.limits.max_messages_post_size;
        if body.len() > global {
            return Err(Error::invalid(format!(
                "Message collection size is too large. Max size {global}"
            )));
        }
        let info = self.store.get_queue(q).await?;
        let limits = self.project_limits(q.project).await;
        if info.is_none() && limits.limits_queues() {
            let n = self.store.count_queues(q.project).await?;
            limits.check_new_queue(q.project, n)?;
        }
        let meta = info.map(|i| i.metadata).unwrap_or_default();
        if let Some(queue_max) = meta
            .get("_max_messages_post_size")
            .and_then(Value::as_u64)
            .filter(|v| *v > 0)
        {
            let effective = (queue_max as usize).min(global);
            if body.len() > effective {
                return Err(Error::invalid(format!(
                    "Message collection size is too large. The max size for current queue is {effective}. \
                     It is calculated by max size = min(max_messages_post_size_config: {global}, \
                     max_messages_post_size_queue: {queue_max})."
                )));
            }
        }
        let messages = self.parse_new_messages(q.project, body, &meta)?;
        if limits.limits_depth() {
            let held = self.store.queue_stats(q).await?.total;
            limits.check_queue_depth(q.name, held, messages.len() as u64)?;
        }
        // The bytes quota counts bodies as stored (after encryption), as the drivers do.
        let reserved = if limits.limits_bytes() {
            let adding: u64 = messages.iter().map(|m| m.body.get().len() as u64).sum();
            self.reserve_bytes(q.project, limits.max_bytes, adding)
                .await?;
            adding
        } else {
            0
        };
        let ids = match self.store.post_messages(q, ctx.client_id, messages).await {
            Ok(ids) => ids,
            Err(e) => {
                if reserved > 0 {
                    self.options
                        .quotas
                        .release_bytes(quota::owner(q.project), reserved);
                }
                return Err(e);
            }
        };
        // Wakes long-pollers and, through the hub's listener, the notification worker: the post
        // may have queued notifications.
        self.hub.notify(q.project, q.name);
        crate::metrics::messages_posted(q.project, q.name, ids.len());
        Ok(ids)
    }

    pub async fn list_messages(
        &self,
        ctx: Ctx<'_>,
        name: &str,
        p: MessageListParams,
    ) -> Result<MessageListing> {
        self.list_messages_wait(ctx, name, p, None).await
    }

    /// Listing with long polling: with `wait` (seconds), an empty page is only returned once
    /// `wait` has passed without a matching message arriving.
    pub async fn list_messages_wait(
        &self,
        ctx: Ctx<'_>,
        name: &str,
        p: MessageListParams,
        wait: Option<i64>,
    ) -> Result<MessageListing> {
        let q = ctx.queue(name)?;
        let limit = validate::limit(p.limit, 10, self.limits.max_messages_per_page)?;
        let wait = self.check_wait(wait)?;
        let marker = match p.marker.as_deref() {
            None => None,
            Some(m) => match m.parse::<u64>() {
                Ok(v) => Some(v),
                // An unparseable marker yields an empty page, not an error.
                Err(_) => {
                    return Ok(MessageListing {
                        messages: Vec::new(),
                        next_marker: None,
                    })
                }
            },
        };
        let query = ListQuery {
            marker,
            limit,
            exclude_client: (!p.echo).then(|| ctx.client_id.to_string()),
            include_claimed: p.include_claimed,
            include_delayed: p.include_delayed,
        };
        let mut messages = self
            .long_poll(
                q,
                wait,
                || self.store.list_messages(q, &query),
                |m: &Vec<Message>| m.is_empty(),
            )
            .await?;
        self.reveal(q.project, &mut messages)?;
        let next_marker = messages.last().map(|m| m.marker.to_string());
        Ok(MessageListing {
            messages,
            next_marker,
        })
    }

    fn check_id_count(&self, n: usize) -> Result<()> {
        let max = self.limits.max_messages_per_page as usize;
        if n == 0 || n > max {
            return Err(Error::invalid(format!(
                "ids parameter should have at least 1 and not greater than {max} values."
            )));
        }
        Ok(())
    }

    /// `GET .../messages?ids=`: 404 when none of them is found.
    pub async fn get_messages(
        &self,
        ctx: Ctx<'_>,
        name: &str,
        ids: &[String],
    ) -> Result<Vec<Message>> {
        let q = ctx.queue(name)?;
        self.check_id_count(ids.len())?;
        let mut found = self.store.get_messages(q, ids).await?;
        self.reveal(q.project, &mut found)?;
        if found.is_empty() {
            return Err(Error::not_found(format!(
                "No messages with IDs: {} found in the queue {} for project {}.",
                ids.join(", "),
                q.name,
                q.project
            )));
        }
        Ok(found)
    }

    pub async fn get_message(&self, ctx: Ctx<'_>, name: &str, id: &str) -> Result<Message> {
        let q = ctx.queue(name)?;
        let mut found = self.store.get_messages(q, &[id.to_string()]).await?;
        self.reveal(q.project, &mut found)?;
        found.pop().ok_or_else(|| {
            Error::not_found(format!(
                "Message {id} does not exist in queue {} for project {}",
                q.name, q.project
            ))
        })
    }

    /// Collection DELETE: by `ids` (returns `None`) or `pop` (returns the popped messages).
    pub async fn delete_messages(
        &self,
        ctx: Ctx<'_>,
        name: &str,
        req: BulkDelete,
    ) -> Result<Option<Vec<Message>>> {
        let q = ctx.queue(name)?;
        match (&req.ids, req.pop) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "pop and id params cannot be present together in the delete request.",
                ))
            }
            (None, None) => {
                return Err(Error::invalid(
                    "The request should have either \"ids\" or \"pop\" parameter in the request, to be able to delete.",
                ))
            }
            _ => {}
        }
        if let Some(n) = req.pop {
            let max = self.limits.max_messages_per_claim_or_pop;
            if n < 1 || n > max {
                return Err(Error::invalid(format!(
                    "Pop value must be at least 1 and may not be greater than {max}."
                )));
            }
            let mut popped = self.store.pop_messages(q, n as usize).await?;
            crate::metrics::messages_deleted(popped.len());
            self.reveal(q.project, &mut popped)?;
            return Ok(Some(popped));
        }
        let ids = req.ids.unwrap_or_default();
        self.check_id_count(ids.len())?;
        let claim_ids = if self.limits.message_delete_with_claim_id {
            match &req.claim_ids {
                Some(c) if !c.is_empty() => Some(c.as_slice()),
                _ => {
                    return Err(Error::invalid(
                        "The request should have both \"ids\" and \"claim_ids\" parameter in the request when message_delete_with_claim_id is True.",
                    ))
                }
            }
        } else {
            None
        };
        self.store.delete_messages(q, &ids, claim_ids).await?;
        crate::metrics::messages_deleted(ids.len());
        Ok(None)
    }

    pub async fn delete_message(
        &self,
        ctx: Ctx<'_>,
        name: &str,
        id: &str,
        claim_id: Option<&str>,
    ) -> Result<()> {
        let q = ctx.queue(name)?;
        self.store.delete_message(q, id, claim_id).await?;
        crate::metrics::messages_deleted(1);
        Ok(())
    }
}
