//! The transport-neutral service layer: one function per API operation. HTTP handlers (and the
//! WebSocket transport) parse their own envelopes, then call these; validation, defaults and
//! every rule of the spec that is not a storage concern live here.
//!
//! This module holds the [`Service`] itself, its construction and options, and the types the
//! operations share; the operations live in one submodule per resource (queues, messages,
//! claims, redrive, health, pre-signed URLs, subscriptions, pools and flavors, quotas), each
//! adding its own `impl Service` block.

mod access;
pub mod checksum;
mod claims;
pub mod crypto;
pub mod filter;
mod health;
pub mod limits;
mod longpoll;
mod messages;
pub mod notifications;
pub mod patch;
pub mod pools;
mod queues;
pub mod quota;
mod redrive;
mod share;
pub mod subscriptions;
pub mod validate;

pub use health::{Health, PoolHealth, ProbeStep};
pub use share::{Share, SignedRequest};

use std::sync::Arc;

use serde_json::value::RawValue;

use crate::clock::{Millis, SharedClock};
use crate::error::{Error, Result};
use crate::model::{Message, Metadata, QueueFilter, QueueRef};
use crate::store::DataStore;
use limits::Limits;

use validate::queue_name;

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

    /// The queue's stored metadata (`{}` for a missing queue), for the operations that only
    /// follow its settings.
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
}
