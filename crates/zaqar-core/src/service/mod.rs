//! The transport-neutral service layer: one function per API operation. HTTP handlers (and the
//! WebSocket transport) parse their own envelopes, then call these; validation, defaults and
//! every rule of the spec that is not a storage concern live here.

mod access;
pub mod checksum;
pub mod crypto;
pub mod filter;
pub mod limits;
pub mod notifications;
pub mod patch;
pub mod pools;
pub mod quota;
pub mod subscriptions;
pub mod validate;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::clock::{Millis, SharedClock};
use crate::error::{Error, Result};
use crate::model::{
    Claim, ClaimParams, DeadLetter, ListQuery, Message, Metadata, NewMessage, QueueFilter,
    QueueRef, QueueStats, RedriveOutcome,
};
use crate::store::DataStore;
use limits::Limits;

use validate::{
    display_metadata, int_field, json_preflight, parse_document, parse_object, queue_metadata,
    queue_name, MIN_CLAIM_GRACE, MIN_CLAIM_TTL, MIN_MESSAGE_TTL,
};

/// Who is asking: the validated project and Client-ID of a request.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub project: &'a str,
    pub client_id: &'a str,
    /// The request's Keystone token, when it carried one (needed to create trusts).
    pub user: Option<&'a crate::identity::UserToken>,
}

impl<'a> Ctx<'a> {
    fn queue(&self, name: &'a str) -> Result<QueueRef<'a>> {
        queue_name(name)?;
        Ok(QueueRef::new(self.project, name))
    }
}

#[derive(Debug, Clone, Default)]
pub struct QueueListParams {
    pub marker: Option<String>,
    pub limit: Option<i64>,
    pub detailed: bool,
    pub with_count: bool,
    pub filter: QueueFilter,
}

#[derive(Debug, Clone)]
pub struct QueueListing {
    /// Names with their displayed metadata when `detailed` was asked.
    pub queues: Vec<(String, Option<Metadata>)>,
    pub count: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct MessageListParams {
    pub marker: Option<String>,
    pub limit: Option<i64>,
    pub echo: bool,
    pub include_claimed: bool,
    pub include_delayed: bool,
}

#[derive(Debug, Clone)]
pub struct MessageListing {
    pub messages: Vec<Message>,
    /// The marker to resume after this page (present whenever the page is not empty).
    pub next_marker: Option<String>,
}

/// What a collection DELETE on messages asks for.
#[derive(Debug, Clone, Default)]
pub struct BulkDelete {
    pub ids: Option<Vec<String>>,
    pub claim_ids: Option<Vec<String>>,
    pub pop: Option<i64>,
}

/// Result of one step of the health probe.
#[derive(Debug, Clone)]
pub struct ProbeStep {
    pub name: &'static str,
    pub succeeded: bool,
    pub seconds: f64,
    pub reference: Option<String>,
}

/// What the health check found.
#[derive(Debug, Clone)]
pub enum Health {
    /// The store's probe steps.
    Store(Vec<ProbeStep>),
    /// With pooling: each pool's reachability and probe (the catalog answered).
    Pooled(Vec<PoolHealth>),
}

/// One pool's part of the pooled health check.
#[derive(Debug, Clone)]
pub struct PoolHealth {
    pub name: String,
    pub reachable: bool,
    pub steps: Vec<ProbeStep>,
}

/// Message-lifecycle settings of the service (encryption, checksums, long polling).
#[derive(Default)]
pub struct ServiceOptions {
    /// Keys for `_enable_encrypt_messages` queues; `None` when no key is configured.
    pub encryptor: Option<Arc<crypto::Encryptor>>,
    /// `[DEFAULT] enable_checksum`.
    pub checksum: bool,
    /// Longest `wait` (seconds) a long-polling request may ask for; 0 disables long polling.
    pub max_wait: i64,
    /// `[signed_url] secret_key`: the HMAC key of pre-signed URLs (`None`: sharing is off).
    pub signing_key: Option<Vec<u8>>,
    /// The identity service (Keystone) when `auth_strategy = keystone`.
    pub identity: Option<Arc<dyn crate::identity::IdentityProvider>>,
    /// Access rules (defaults of spec §2.4, overridable by a policy file).
    pub policy: crate::policy::Policy,
    /// Per-project limits (queues, depth, bytes, request rate).
    pub quotas: Arc<quota::Quotas>,
    /// `[notification] require_confirmation`: new subscriptions wait for confirmation.
    pub require_confirmation: bool,
    /// The pooled store when `[DEFAULT] pooling = true` (pools and flavors administration).
    pub pools: Option<Arc<dyn crate::store::management::PoolAdmin>>,
}

/// A pre-signed URL grant (`POST .../share`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub project: Option<String>,
    pub paths: Vec<String>,
    pub methods: Vec<String>,
    pub expires: String,
    pub signature: String,
}

/// The signature headers of a request (HTTP: comma-separated strings; WebSocket: arrays).
#[derive(Debug, Clone)]
pub struct SignedRequest<'a> {
    pub signature: &'a str,
    pub expires: &'a str,
    pub methods: Vec<String>,
    pub paths: Vec<String>,
    pub project: Option<&'a str>,
}

pub struct Service {
    limits: Limits,
    store: Arc<dyn DataStore>,
    clock: SharedClock,
    options: ServiceOptions,
    hub: Arc<crate::hub::Hub>,
    notifications: Arc<dyn notifications::Notifications>,
    connections: Arc<notifications::PushConnections>,
}

/// Parameters of `POST .../redrive`.
#[derive(Debug, Clone, Default)]
pub struct RedriveParams {
    pub target: Option<String>,
    pub limit: Option<i64>,
}

/// Reads `ttl`/`grace` of a claim body.
fn claim_body_field(body: &Map<String, Value>, name: &str, default: i64) -> Result<i64> {
    match body.get(name) {
        None => Ok(default),
        Some(v) => int_field(v, name),
    }
}

impl Service {
    pub fn new(limits: Limits, store: Arc<dyn DataStore>, clock: SharedClock) -> Self {
        let options = ServiceOptions {
            max_wait: 20,
            ..Default::default()
        };
        Self {
            limits,
            store,
            clock,
            options,
            hub: crate::hub::Hub::new(),
            notifications: Arc::new(notifications::NoDelivery),
            connections: Arc::default(),
        }
    }

    /// Sets the message-lifecycle options.
    pub fn with_options(mut self, options: ServiceOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets the notification delivery worker (built over [`Service::hub`] and
    /// [`Service::push_connections`]).
    pub fn with_notifications(mut self, n: Arc<dyn notifications::Notifications>) -> Self {
        self.notifications = n;
        self
    }

    /// Notification delivery.
    pub fn notifications(&self) -> &Arc<dyn notifications::Notifications> {
        &self.notifications
    }

    /// This node's WebSocket connections that receive pushed notifications.
    pub fn push_connections(&self) -> &Arc<notifications::PushConnections> {
        &self.connections
    }

    /// The long-polling hub (drivers shared by several nodes feed it remote events).
    pub fn hub(&self) -> &Arc<crate::hub::Hub> {
        &self.hub
    }

    /// Whether requests must carry a Keystone token (or a valid signature).
    pub fn auth_required(&self) -> bool {
        self.options.identity.is_some()
    }

    /// Validates a Keystone token (401 invalid, 503 Keystone unreachable).
    pub async fn authenticate(&self, token: &str) -> Result<crate::identity::TokenInfo> {
        match &self.options.identity {
            Some(k) => k.validate(token).await,
            None => Err(Error::Internal("authentication is not configured".into())),
        }
    }

    /// Takes one request from the project's rate budget (429 when exhausted).
    pub async fn admit(&self, project: &str) -> Result<()> {
        let limits = self.project_limits(project).await;
        self.options
            .quotas
            .admit(project, &limits, self.clock.now())
    }

    /// Refuses to create a queue beyond the project's queue quota.
    async fn check_queue_quota(&self, q: QueueRef<'_>) -> Result<()> {
        let limits = self.project_limits(q.project).await;
        if limits.limits_queues() && self.store.get_queue(q).await?.is_none() {
            let n = self.store.count_queues(q.project).await?;
            limits.check_new_queue(q.project, n)?;
        }
        Ok(())
    }

    /// `POST .../share`: signs a grant for the queue's sub-resources (spec §3.3.8).
    pub async fn share(&self, ctx: Ctx<'_>, name: &str, body: &[u8]) -> Result<Share> {
        use crate::signing;
        let q = ctx.queue(name)?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::body("Request body can not be empty"));
        }
        let doc = parse_object(body)?;
        let unknown: Vec<&str> = doc
            .keys()
            .map(String::as_str)
            .filter(|k| !matches!(*k, "methods" | "paths" | "expires"))
            .collect();
        if !unknown.is_empty() {
            return Err(Error::invalid(format!(
                "Unknown keys: {}",
                unknown.join(", ")
            )));
        }
        let strings = |key: &str, default: &str| -> Result<Vec<String>> {
            match doc.get(key) {
                None => Ok(vec![default.to_string()]),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| {
                        i.as_str().map(str::to_string).ok_or_else(|| {
                            Error::invalid(format!("{key} must be a list of strings."))
                        })
                    })
                    .collect(),
                Some(_) => Err(Error::invalid(format!("{key} must be a list of strings."))),
            }
        };
        let methods = strings("methods", "GET")?;
        let rel_paths = strings("paths", "messages")?;
        let bad: Vec<&str> = rel_paths
            .iter()
            .map(String::as_str)
            .filter(|p| !signing::SHAREABLE.contains(p))
            .collect();
        if !bad.is_empty() {
            return Err(Error::invalid(format!("Invalid paths: {}", bad.join(", "))));
        }
        let now = self.clock.now();
        let expires = match doc.get("expires") {
            None => chrono::DateTime::from_timestamp_millis(now + 86_400_000)
                .ok_or_else(|| Error::Internal("clock out of range".into()))?,
            Some(Value::String(text)) => signing::parse_expires(text).ok_or_else(|| {
                Error::invalid(format!(
                    "Invalid expires value: {text}. It must be an ISO 8601 date-time."
                ))
            })?,
            Some(_) => return Err(Error::invalid("expires must be an ISO 8601 string.")),
        };
        if signing::millis(expires) <= now {
            return Err(Error::invalid("Expiration date must be in the future."));
        }
        let key = self.options.signing_key.as_ref().ok_or_else(|| {
            Error::invalid("Pre-signed URLs are not available: [signed_url] secret_key is not set.")
        })?;
        let mut paths: Vec<String> = rel_paths
            .iter()
            .map(|p| format!("/v2/queues/{}/{p}", q.name))
            .collect();
        paths.sort();
        paths.dedup();
        let mut methods = methods;
        methods.sort();
        let expires = signing::format_expires(expires);
        let signature = signing::sign(key, &paths, &methods, Some(q.project), &expires);
        Ok(Share {
            project: Some(q.project.to_string()),
            paths,
            methods,
            expires,
            signature,
        })
    }

    /// Verifies a pre-signed request for `method` on `path` (spec §1.12, with segment-wise path
    /// coverage). The error is `NotFound`, as the reference answers over HTTP.
    pub fn verify_signed(&self, req: &SignedRequest<'_>, method: &str, path: &str) -> Result<()> {
        use crate::signing;
        let refuse = || Error::not_found("The requested resource could not be found.");
        let key = self.options.signing_key.as_ref().ok_or_else(refuse)?;
        if !req.methods.iter().any(|m| m == method) {
            return Err(refuse());
        }
        if !req.paths.iter().any(|p| signing::path_covers(p, path)) {
            return Err(refuse());
        }
        let expires = signing::parse_expires(req.expires).ok_or_else(refuse)?;
        if signing::millis(expires) <= self.clock.now() {
            return Err(refuse());
        }
        let formatted = signing::format_expires(expires);
        if !signing::verify(
            key,
            &req.paths,
            &req.methods,
            req.project,
            &formatted,
            req.signature,
        ) {
            return Err(refuse());
        }
        Ok(())
    }

    /// Validates a `wait` parameter (seconds).
    fn check_wait(&self, wait: Option<i64>) -> Result<Option<Duration>> {
        match wait {
            None | Some(0) => Ok(None),
            Some(w) if w < 0 || w > self.options.max_wait => Err(Error::invalid(format!(
                "wait must be at least 0 and no greater than {} seconds.",
                self.options.max_wait
            ))),
            Some(w) => Ok(Some(Duration::from_secs(w as u64))),
        }
    }

    /// Replaces encrypted bodies with their plaintext.
    fn reveal(&self, project: &str, messages: &mut [Message]) -> Result<()> {
        for m in messages.iter_mut().filter(|m| m.encrypted) {
            let enc = self.options.encryptor.as_ref().ok_or_else(|| {
                Error::Internal(
                    "an encrypted message cannot be read: no encryption key is configured".into(),
                )
            })?;
            let token: String = serde_json::from_str(m.body.get())
                .map_err(|_| Error::Internal("corrupt encrypted message".into()))?;
            let plain = enc.decrypt(project, &token)?;
            m.body = RawValue::from_string(plain)
                .map_err(|_| Error::Internal("corrupt encrypted message".into()))?;
            m.encrypted = false;
        }
        Ok(())
    }

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

    async fn queue_metadata(&self, q: QueueRef<'_>) -> Result<Metadata> {
        Ok(self
            .store
            .get_queue(q)
            .await?
            .map(|i| i.metadata)
            .unwrap_or_default())
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    pub fn store(&self) -> &Arc<dyn DataStore> {
        &self.store
    }

    // ----- health -----------------------------------------------------------------------

    pub async fn ping(&self) -> bool {
        self.store.ping().await.is_ok()
    }

    /// The health check (spec §3.2.3): 503 when the storage (with pooling: the catalog) is
    /// unreachable, else the probe's steps (with pooling: each pool's reachability and probe,
    /// run on the pool's driver directly, so no catalog entry is left behind).
    pub async fn health(&self) -> Result<Health> {
        let unreadable = || Error::unavailable("Health status could not be read.");
        let Some(pooled) = self.options.pools.as_ref() else {
            if !self.ping().await {
                return Err(unreadable());
            }
            return Ok(Health::Store(self.probe_store(&self.store).await));
        };
        let pools = async {
            pooled.management().ping().await?;
            let mut out = Vec::new();
            for (name, driver) in pooled.pool_drivers().await? {
                let (reachable, steps) = match driver {
                    Ok(d) if d.ping().await.is_ok() => (true, self.probe_store(&d).await),
                    _ => (false, Vec::new()),
                };
                out.push(PoolHealth {
                    name,
                    reachable,
                    steps,
                });
            }
            Ok::<_, Error>(out)
        }
        .await
        .map_err(|_| unreadable())?;
        Ok(Health::Pooled(pools))
    }

    async fn probe_store(&self, store: &Arc<dyn DataStore>) -> Vec<ProbeStep> {
        let project = format!("zaqar-health-{}", uuid::Uuid::new_v4().simple());
        let client = uuid::Uuid::new_v4().hyphenated().to_string();
        let ctx = Ctx {
            project: &project,
            client_id: &client,
            user: None,
        };
        let q = QueueRef::new(&project, "health-probe");
        let mut steps = Vec::new();
        async fn step<T>(
            steps: &mut Vec<ProbeStep>,
            name: &'static str,
            fut: impl std::future::Future<Output = Result<T>>,
        ) -> Option<T> {
            let start = Instant::now();
            let r = fut.await;
            let seconds = start.elapsed().as_secs_f64();
            let (succeeded, reference, out) = match r {
                Ok(v) => (true, None, Some(v)),
                Err(e) => {
                    let reference = uuid::Uuid::new_v4().to_string();
                    tracing::warn!(step = name, reference = %reference, error = %e, "health probe step failed");
                    (false, Some(reference), None)
                }
            };
            steps.push(ProbeStep {
                name,
                succeeded,
                seconds,
                reference,
            });
            out
        }
        step(
            &mut steps,
            "create_queue",
            store.create_queue(q, Map::new()),
        )
        .await;
        let body = RawValue::from_string("{\"probe\": true}".into()).expect("valid JSON");
        let msgs = (0..100)
            .map(|_| NewMessage {
                body: body.clone(),
                ttl: 600,
                delay: 0,
                checksum: None,
                encrypted: false,
            })
            .collect();
        step(
            &mut steps,
            "post_messages",
            store.post_messages(q, ctx.client_id, msgs),
        )
        .await;
        let params = ClaimParams {
            ttl: 60,
            grace: 300,
            limit: self.limits.max_messages_per_claim_or_pop as usize,
            dead_letter: None,
        };
        let claim = step(&mut steps, "claim_messages", store.create_claim(q, params))
            .await
            .flatten();
        let query = ListQuery {
            marker: None,
            limit: self.limits.max_messages_per_page as usize,
            exclude_client: None,
            include_claimed: true,
            include_delayed: true,
        };
        step(&mut steps, "list_messages", store.list_messages(q, &query)).await;
        if let Some(c) = &claim {
            step(&mut steps, "delete_messages", async {
                for m in &c.messages {
                    store.delete_message(q, &m.id, Some(&c.id)).await?;
                }
                Ok(())
            })
            .await;
            step(&mut steps, "delete_claim", store.release_claim(q, &c.id)).await;
        }
        let ids: Vec<String> = store
            .list_messages(q, &query)
            .await
            .map(|ms| ms.into_iter().map(|m| m.id).collect())
            .unwrap_or_default();
        step(
            &mut steps,
            "bulk_delete_messages",
            store.delete_messages(q, &ids, None),
        )
        .await;
        step(&mut steps, "delete_queue", store.delete_queue(q)).await;
        steps
    }

    // ----- queues -----------------------------------------------------------------------

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

    // ----- messages ---------------------------------------------------------------------

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

    /// Runs `attempt` until its result is not empty or `wait` runs out, sleeping on the queue's
    /// signal in between (no polling).
    async fn long_poll<T, F, Fut>(
        &self,
        q: QueueRef<'_>,
        wait: Option<Duration>,
        mut attempt: F,
        empty: impl Fn(&T) -> bool,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let Some(wait) = wait else {
            return attempt().await;
        };
        let deadline = tokio::time::Instant::now() + wait;
        let signal = self.hub.watch(q.project, q.name);
        loop {
            let notified = signal.notified();
            tokio::pin!(notified);
            // Register before looking, so a post between the look and the sleep is not missed.
            notified.as_mut().enable();
            let out = attempt().await?;
            if !empty(&out) {
                return Ok(out);
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(out),
            }
        }
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

    // ----- claims -----------------------------------------------------------------------

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

    /// `POST .../redrive` (extension): moves messages of a (dead-letter) queue back to the
    /// queues they came from, or to `target`.
    pub async fn redrive(&self, ctx: Ctx<'_>, name: &str, body: &[u8]) -> Result<RedriveOutcome> {
        let q = ctx.queue(name)?;
        let mut params = RedriveParams::default();
        if !body.iter().all(u8::is_ascii_whitespace) {
            let doc = parse_object(body)?;
            for key in doc.keys() {
                if key != "target" && key != "limit" {
                    return Err(Error::invalid(format!("Unknown key: {key}.")));
                }
            }
            params.target = match doc.get("target") {
                None | Some(Value::Null) => None,
                Some(Value::String(t)) => Some(t.clone()),
                Some(_) => {
                    return Err(Error::body(
                        "The value of the \"target\" field must be a string.",
                    ))
                }
            };
            params.limit = match doc.get("limit") {
                None | Some(Value::Null) => None,
                Some(v) => Some(int_field(v, "limit")?),
            };
        }
        if let Some(t) = &params.target {
            queue_name(t)?;
            if t == name {
                return Err(Error::invalid("The redrive target must be another queue."));
            }
        }
        if params.limit.is_some_and(|l| l < 1) {
            return Err(Error::invalid("limit must be at least 1."));
        }
        let outcome = self
            .store
            .redrive_messages(
                q,
                params.target.as_deref(),
                params.limit.map(|l| l as usize),
            )
            .await?;
        for t in &outcome.targets {
            self.hub.notify(q.project, t);
        }
        Ok(outcome)
    }
}
