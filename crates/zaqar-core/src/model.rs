//! Domain types shared by the service layer and the storage drivers. These are not wire types:
//! the HTTP (and later WebSocket) transports translate them into their own response shapes.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::clock::Millis;

/// Queue metadata as stored (reserved `_` keys included, defaults not filled in).
pub type Metadata = Map<String, Value>;

/// Identifies a queue: every storage operation is scoped by project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueueRef<'a> {
    pub project: &'a str,
    pub name: &'a str,
}

impl<'a> QueueRef<'a> {
    pub fn new(project: &'a str, name: &'a str) -> Self {
        Self { project, name }
    }
}

/// A stored queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueInfo {
    pub name: String,
    pub metadata: Metadata,
    /// Incremented by every metadata change; used for compare-and-set updates.
    pub version: u64,
    pub created: Millis,
}

/// Filters of `GET /v2/queues`.
#[derive(Debug, Clone, Default)]
pub struct QueueFilter {
    /// Literal substring the name must contain.
    pub name_contains: Option<String>,
    /// Metadata keys that must equal the given values.
    pub metadata: Vec<(String, Value)>,
}

impl QueueFilter {
    pub fn matches(&self, name: &str, metadata: &Metadata) -> bool {
        if let Some(sub) = &self.name_contains {
            if !name.contains(sub.as_str()) {
                return false;
            }
        }
        self.metadata
            .iter()
            .all(|(k, v)| metadata.get(k).is_some_and(|m| m == v))
    }

    pub fn is_empty(&self) -> bool {
        self.name_contains.is_none() && self.metadata.is_empty()
    }
}

/// A message to store, already validated and defaulted by the service layer.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The body as JSON text; when `encrypted`, a JSON string holding the ciphertext.
    pub body: Box<RawValue>,
    pub ttl: i64,
    pub delay: i64,
    pub checksum: Option<String>,
    pub encrypted: bool,
}

/// The claim a message is (or was) part of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageClaim {
    pub id: String,
    pub expires: Millis,
}

/// A stored message as returned by a driver.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    /// Per-queue sequence number (FIFO order, paging marker).
    pub marker: u64,
    pub body: Box<RawValue>,
    /// Seconds; may have been raised by a claim's lifetime extension.
    pub ttl: i64,
    pub created: Millis,
    pub expires: Millis,
    pub client_id: String,
    /// The most recent claim, if any; it may have expired (see [`Message::active_claim`]).
    pub claim: Option<MessageClaim>,
    pub claim_count: u32,
    /// The message is delayed until this instant (equals `created` when not delayed).
    pub delay_expires: Millis,
    pub checksum: Option<String>,
    /// The body is ciphertext (see `service::crypto`).
    pub encrypted: bool,
    /// Set on messages moved by dead-lettering: the queue they came from.
    pub moved_from: Option<String>,
}

impl Message {
    /// The claim id while the claim is live.
    pub fn active_claim(&self, now: Millis) -> Option<&str> {
        self.claim
            .as_ref()
            .filter(|c| c.expires > now)
            .map(|c| c.id.as_str())
    }

    pub fn is_expired(&self, now: Millis) -> bool {
        self.expires <= now
    }

    pub fn is_delayed(&self, now: Millis) -> bool {
        self.delay_expires > now
    }
}

/// Parameters of a message listing.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// Only messages with a marker strictly greater than this.
    pub marker: Option<u64>,
    pub limit: usize,
    /// Hide messages posted by this client (echo = false).
    pub exclude_client: Option<String>,
    pub include_claimed: bool,
    pub include_delayed: bool,
}

#[derive(Debug, Clone)]
pub struct MessagePage {
    pub messages: Vec<Message>,
}

/// Parameters of a claim creation (already validated).
#[derive(Debug, Clone)]
pub struct ClaimParams {
    pub ttl: i64,
    pub grace: i64,
    pub limit: usize,
    /// Dead-lettering of the claimed queue, when configured.
    pub dead_letter: Option<DeadLetter>,
}

/// A queue's dead-letter settings (`_max_claim_count` and `_dead_letter_queue`, spec §1.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// A message may be claimed this many times; the next claim attempt moves it.
    pub max_claim_count: u32,
    /// Target queue, in the same project.
    pub queue: String,
    /// New TTL of moved messages (`_dead_letter_queue_messages_ttl`); `None` keeps their
    /// remaining life.
    pub ttl: Option<i64>,
}

/// What a redrive moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedriveOutcome {
    pub moved: u64,
    /// Messages left in place because they record no source queue and no target was given.
    pub skipped: u64,
    /// The queues that received messages.
    pub targets: Vec<String>,
}

/// A live claim.
#[derive(Debug, Clone)]
pub struct Claim {
    pub id: String,
    pub ttl: i64,
    /// When the claim was created or last renewed.
    pub updated: Millis,
    pub expires: Millis,
    /// Messages still held by the claim (deleted or expired ones are omitted).
    pub messages: Vec<Message>,
}

/// A message's position in the queue, for stats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageStamp {
    pub id: String,
    pub created: Millis,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub total: u64,
    pub claimed: u64,
    pub delayed: u64,
    pub oldest: Option<MessageStamp>,
    pub newest: Option<MessageStamp>,
}

/// Outcome of deleting one message by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    NotFound,
}

/// A subscription as stored (spec §1.9). Sources are queue names; topics live in a separate
/// namespace (see `service::topics`), so the same store serves both.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub id: String,
    pub source: String,
    pub subscriber: String,
    pub ttl: i64,
    pub created: Millis,
    pub expires: Millis,
    pub options: Metadata,
    pub confirmed: bool,
    /// HMAC key of signed webhook deliveries (hex).
    pub secret: String,
    /// Notifications delivered, and those given up after every retry.
    pub delivered: u64,
    pub failed: u64,
    pub last_error: Option<String>,
}

/// A subscription to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSubscription {
    pub subscriber: String,
    pub ttl: i64,
    pub options: Metadata,
    /// Create it confirmed (WebSocket connection subscriptions, `require_confirmation` off).
    pub confirmed: bool,
}

/// What a create did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionCreated {
    New(String),
    /// An unconfirmed subscription with the same subscriber existed: its id (spec: 201 again).
    ExistingUnconfirmed(String),
    /// A confirmed one existed (spec: 409).
    ExistingConfirmed(String),
}

/// Changes of `PATCH .../subscriptions/{id}`; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubscriptionUpdate {
    pub subscriber: Option<String>,
    pub ttl: Option<i64>,
    pub options: Option<Metadata>,
}

/// One message as notified to subscribers.
#[derive(Debug, Clone)]
pub struct NotifiedMessage {
    pub id: String,
    pub body: Box<RawValue>,
    pub ttl: i64,
    pub delay: i64,
    pub encrypted: bool,
}

/// A batch of posted messages still to be delivered to some subscribers, leased to the caller.
#[derive(Debug, Clone)]
pub struct PendingNotification {
    /// Opaque, driver-specific handle.
    pub key: String,
    pub project: String,
    pub source: String,
    pub messages: Vec<NotifiedMessage>,
    /// The subscriptions (as they are now) that have not had this batch yet, in creation order;
    /// their `confirmed` is as it was when the messages were posted.
    pub subscribers: Vec<Subscription>,
}

/// How one subscriber's delivery of a batch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    /// Not sent, by rule (an unconfirmed subscription under `require_confirmation`, a filter
    /// policy that matched none of the messages): no counter changes.
    Skipped,
    /// Every retry failed; the error is kept on the subscription.
    GaveUp(String),
}

/// One subscriber done with one leased batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedDelivery {
    /// The batch's [`PendingNotification::key`].
    pub key: String,
    pub subscription_id: String,
    pub outcome: DeliveryOutcome,
}
