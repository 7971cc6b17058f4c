//! Queue operations: listing, creation, metadata (read, JSON-patch), existence, stats, purge
//! and deletion.

use serde_json::{Map, Value};

use super::validate::{self, display_metadata, parse_document, parse_object, queue_metadata};
use super::{patch, Ctx, QueueListParams, QueueListing, Service};
use crate::error::{Error, Result};
use crate::model::{Metadata, QueueStats};

impl Service {
    pub async fn list_queues(&self, ctx: Ctx<'_>, p: QueueListParams) -> Result<QueueListing> {
        self.list_queues_shown(ctx, p, true).await
    }

    /// Queue listing with each queue's stored metadata as is, without the reserved defaults
    /// (the WebSocket `queue_list`).
    pub async fn list_queues_stored(
        &self,
        ctx: Ctx<'_>,
        p: QueueListParams,
    ) -> Result<QueueListing> {
        self.list_queues_shown(ctx, p, false).await
    }

    async fn list_queues_shown(
        &self,
        ctx: Ctx<'_>,
        p: QueueListParams,
        with_defaults: bool,
    ) -> Result<QueueListing> {
        let limit =
            validate::limit(p.limit, 10, self.limits.max_queues_per_page).map_err(|_| {
                Error::invalid(format!(
                    "Limit must be at least 1 and no greater than {}.",
                    self.limits.max_queues_per_page
                ))
            })?;
        let infos = self
            .store
            .list_queues(ctx.project, p.marker.as_deref(), limit, &p.filter)
            .await?;
        let queues = infos
            .into_iter()
            .map(|i| {
                let meta = p.detailed.then(|| {
                    if with_defaults {
                        display_metadata(&i.metadata, &self.limits)
                    } else {
                        i.metadata
                    }
                });
                (i.name, meta)
            })
            .collect();
        let count = if p.with_count {
            Some(self.store.count_queues(ctx.project).await?).filter(|n| *n > 0)
        } else {
            None
        };
        Ok(QueueListing { queues, count })
    }

    fn check_metadata_size(&self, len: usize) -> Result<()> {
        if len > self.limits.max_queue_metadata {
            return Err(Error::invalid(format!(
                "Queue metadata is too large. Max size: {}",
                self.limits.max_queue_metadata
            )));
        }
        Ok(())
    }

    /// `PUT` a queue. Returns `true` if it was created, `false` if it already existed (its
    /// metadata is then left untouched).
    pub async fn create_queue(&self, ctx: Ctx<'_>, name: &str, body: &[u8]) -> Result<bool> {
        let q = ctx.queue(name)?;
        self.check_metadata_size(body.len())?;
        // No body: no metadata. A body of white space is a document that does not parse (as
        // the reference answers it), not an empty one.
        let metadata = if body.is_empty() {
            Map::new()
        } else if body.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::body("Request body could not be parsed."));
        } else {
            parse_object(body)?
        };
        queue_metadata(&metadata, &self.limits)?;
        self.check_encryption_available(&metadata)?;
        self.check_queue_quota(q).await?;
        self.store.create_queue(q, metadata).await
    }

    /// Metadata with the reserved defaults (a missing queue shows the defaults only).
    pub async fn get_queue(&self, ctx: Ctx<'_>, name: &str) -> Result<Metadata> {
        let q = ctx.queue(name)?;
        let stored = self
            .store
            .get_queue(q)
            .await?
            .map(|i| i.metadata)
            .unwrap_or_default();
        Ok(display_metadata(&stored, &self.limits))
    }

    /// The stored metadata, without the reserved defaults (`{}` for a missing queue): the
    /// WebSocket `queue_get`.
    pub async fn get_queue_stored(&self, ctx: Ctx<'_>, name: &str) -> Result<Metadata> {
        let q = ctx.queue(name)?;
        self.queue_metadata(q).await
    }

    /// Whether the queue exists (`HEAD` on a queue).
    pub async fn queue_exists(&self, ctx: Ctx<'_>, name: &str) -> Result<bool> {
        let q = ctx.queue(name)?;
        Ok(self.store.get_queue(q).await?.is_some())
    }

    /// Applies a JSON-patch to the queue metadata atomically; returns the displayed result.
    pub async fn patch_queue(&self, ctx: Ctx<'_>, name: &str, body: &[u8]) -> Result<Metadata> {
        let q = ctx.queue(name)?;
        self.check_metadata_size(body.len())?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::body("PATCH body could not be empty for update."));
        }
        let ops = patch::parse(parse_document(body)?)?;
        // Optimistic concurrency: re-read and re-apply if another writer got there first.
        for _ in 0..16 {
            let info = self.store.get_queue(q).await?.ok_or_else(|| {
                Error::not_found(format!(
                    "Queue {} does not exist for project {}",
                    q.name, q.project
                ))
            })?;
            let mut meta = info.metadata;
            patch::apply(&mut meta, &ops)?;
            queue_metadata(&meta, &self.limits)?;
            self.check_encryption_available(&meta)?;
            if self
                .store
                .replace_queue_metadata(q, info.version, meta.clone())
                .await?
            {
                return Ok(display_metadata(&meta, &self.limits));
            }
        }
        Err(Error::unavailable(
            "Queue metadata could not be updated because of concurrent changes. Please try again.",
        ))
    }

    pub async fn delete_queue(&self, ctx: Ctx<'_>, name: &str) -> Result<()> {
        let q = ctx.queue(name)?;
        self.store.delete_queue(q).await
    }

    pub async fn queue_stats(&self, ctx: Ctx<'_>, name: &str) -> Result<QueueStats> {
        let q = ctx.queue(name)?;
        self.store.queue_stats(q).await
    }

    /// Stats, or `None` when the queue does not exist (the WebSocket `queue_get_stats` answers
    /// 404 then).
    pub async fn queue_stats_if_exists(
        &self,
        ctx: Ctx<'_>,
        name: &str,
    ) -> Result<Option<QueueStats>> {
        let q = ctx.queue(name)?;
        if self.store.get_queue(q).await?.is_none() {
            return Ok(None);
        }
        Ok(Some(self.store.queue_stats(q).await?))
    }

    /// `POST .../purge`. An absent body purges every resource type.
    pub async fn purge_queue(&self, ctx: Ctx<'_>, name: &str, body: &[u8]) -> Result<()> {
        let q = ctx.queue(name)?;
        let mut messages = true;
        let mut subscriptions = true;
        if !body.iter().all(u8::is_ascii_whitespace) {
            let doc = parse_object(body)?;
            let Some(types) = doc.get("resource_types") else {
                return Err(Error::invalid(
                    "Post body must contain key \"resource_types\".",
                ));
            };
            let Value::Array(types) = types else {
                return Err(Error::invalid(
                    "Resource types must be a list of \"messages\" and \"subscriptions\".",
                ));
            };
            messages = false;
            subscriptions = false;
            for t in types {
                match t.as_str() {
                    Some("messages") => messages = true,
                    Some("subscriptions") => subscriptions = true,
                    _ => {
                        return Err(Error::invalid(
                            "Resource types must be a sub set of {'messages', 'subscriptions'}.",
                        ))
                    }
                }
            }
        }
        if messages {
            self.store.purge_messages(q).await?;
        }
        if subscriptions {
            if let Some(subs) = self.store.subscriptions() {
                subs.purge_subscriptions(q.project, q.name).await?;
            }
        }
        Ok(())
    }

    fn check_encryption_available(&self, meta: &Metadata) -> Result<()> {
        if meta.get("_enable_encrypt_messages") == Some(&Value::Bool(true))
            && self.options.encryptor.is_none()
        {
            return Err(Error::invalid(
                "_enable_encrypt_messages needs an encryption key, and none is configured on this server.",
            ));
        }
        Ok(())
    }
}
