//! Storage traits. Every driver (embedded, Redis, PostgreSQL) implements them, and the
//! conformance suite in `tests/conformance/` runs unchanged against each.
//!
//! Contract for implementors:
//! - Every method is scoped by project; no method may read or change another project's data.
//! - Each method is atomic on its own: a batch post becomes visible all at once, a claim takes
//!   messages no other live claim holds, a delete-with-claim checks and deletes in one step.
//! - Expired messages and claims are invisible to every method even before they are collected.
//! - Validation of user input is the service layer's job; drivers trust their arguments, except
//!   for the claim rules of single-message deletion, decided by [`decide_single_delete`].

pub mod id;
pub mod management;

pub use id::MessageId;

use async_trait::async_trait;

use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::model::{
    Claim, ClaimParams, DeliveryOutcome, FinishedDelivery, ListQuery, Message, Metadata,
    NewMessage, NewSubscription, PendingNotification, QueueFilter, QueueInfo, QueueRef, QueueStats,
    RedriveOutcome, Subscription, SubscriptionCreated, SubscriptionUpdate,
};

#[async_trait]
pub trait QueueStore: Send + Sync {
    /// Creates the queue with `metadata` if it does not exist. Returns `true` when it was
    /// created; an existing queue is left untouched.
    async fn create_queue(&self, q: QueueRef<'_>, metadata: Metadata) -> Result<bool>;

    async fn get_queue(&self, q: QueueRef<'_>) -> Result<Option<QueueInfo>>;

    /// Replaces the metadata if the stored version is still `expected_version`.
    /// Returns `Ok(false)` when another writer got there first; `NotFound` when the queue is gone.
    async fn replace_queue_metadata(
        &self,
        q: QueueRef<'_>,
        expected_version: u64,
        metadata: Metadata,
    ) -> Result<bool>;

    /// Deletes the queue with its messages and claims. Missing queues are not an error.
    async fn delete_queue(&self, q: QueueRef<'_>) -> Result<()>;

    /// Queues of `project` with names strictly after `marker`, in byte order of names, that
    /// match `filter`; at most `limit`.
    async fn list_queues(
        &self,
        project: &str,
        marker: Option<&str>,
        limit: usize,
        filter: &QueueFilter,
    ) -> Result<Vec<QueueInfo>>;

    async fn count_queues(&self, project: &str) -> Result<u64>;

    /// Bytes of messages the project stores: the sum, over its queues, of the length of each
    /// unexpired message's body as stored (its JSON text, after encryption for encrypted
    /// queues; ids, metadata and claim state are not counted). Drivers keep it in counters
    /// updated atomically with the messages, so the cost depends on the number of queues, not
    /// of messages. A message stops counting when it expires, or (embedded and Redis, which
    /// account expiry per second, see [`expiry_second`]) within a second after. Messages in
    /// transit between queues (dead-lettering, redrive, until the move is applied) and messages
    /// stored by a version without byte accounting (Redis) are not counted.
    async fn project_bytes(&self, project: &str) -> Result<u64>;
}

#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Appends the messages in order with consecutive markers, atomically, creating the queue
    /// (without metadata) if it does not exist. Returns the new ids in the same order.
    async fn post_messages(
        &self,
        q: QueueRef<'_>,
        client_id: &str,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<String>>;

    /// Unexpired messages after `query.marker` in marker order, filtered as the query says,
    /// at most `query.limit` (the limit applies after filtering).
    async fn list_messages(&self, q: QueueRef<'_>, query: &ListQuery) -> Result<Vec<Message>>;

    /// The unexpired messages among `ids` (claimed and delayed included); unknown or malformed
    /// ids are skipped.
    async fn get_messages(&self, q: QueueRef<'_>, ids: &[String]) -> Result<Vec<Message>>;

    /// Deletes the listed messages whether claimed or not. With `claim_ids`, every targeted
    /// message that exists must be held by a live claim among them, else `DeleteForbidden` and
    /// nothing is deleted.
    async fn delete_messages(
        &self,
        q: QueueRef<'_>,
        ids: &[String],
        claim_ids: Option<&[String]>,
    ) -> Result<()>;

    /// Removes and returns up to `limit` of the oldest messages that are neither claimed nor
    /// delayed.
    async fn pop_messages(&self, q: QueueRef<'_>, limit: usize) -> Result<Vec<Message>>;

    /// Deletes one message under the rules of [`decide_single_delete`].
    async fn delete_message(&self, q: QueueRef<'_>, id: &str, claim_id: Option<&str>)
        -> Result<()>;

    async fn queue_stats(&self, q: QueueRef<'_>) -> Result<QueueStats>;

    /// Deletes every message of the queue (claimed ones included) and its claims; the queue and
    /// its metadata stay.
    async fn purge_messages(&self, q: QueueRef<'_>) -> Result<()>;

    /// Moves up to `limit` (all if `None`) of the oldest unclaimed messages of `q` to `target`,
    /// or, without a target, each to the queue it was dead-lettered from (messages that record
    /// none stay and are counted as skipped). Moved messages get a fresh claim count, keep their
    /// body, ttl, expiry and age, and are visible in their new queue when this returns. A move
    /// is never lost or duplicated, even across a crash.
    async fn redrive_messages(
        &self,
        q: QueueRef<'_>,
        target: Option<&str>,
        limit: Option<usize>,
    ) -> Result<RedriveOutcome>;
}

#[async_trait]
pub trait ClaimStore: Send + Sync {
    /// Claims up to `params.limit` of the oldest unexpired, unclaimed, undelayed messages.
    /// `None` when nothing was claimable (no claim is created).
    ///
    /// With `params.dead_letter`, every selected message that was already claimed
    /// `max_claim_count` times is moved instead (spec §1.7): it leaves this queue and this claim,
    /// and appears unclaimed in the dead-letter queue (created if missing) with a fresh claim
    /// count, `moved_from` set, and the dead-letter TTL if one is configured. If every selected
    /// message moved, the result is `None`. Moves are visible when this returns and are never
    /// lost or duplicated, even across a crash.
    async fn create_claim(&self, q: QueueRef<'_>, params: ClaimParams) -> Result<Option<Claim>>;

    /// A live claim with the messages it still holds; `None` if unknown or expired.
    async fn get_claim(&self, q: QueueRef<'_>, claim_id: &str) -> Result<Option<Claim>>;

    /// Renews a live claim: new ttl from now, lifetime extension with `grace`.
    /// Returns `false` if the claim is unknown or expired.
    async fn renew_claim(
        &self,
        q: QueueRef<'_>,
        claim_id: &str,
        ttl: i64,
        grace: i64,
    ) -> Result<bool>;

    /// Releases the claim; its messages become claimable at once. Unknown claims are ignored.
    async fn release_claim(&self, q: QueueRef<'_>, claim_id: &str) -> Result<()>;
}

/// Subscriptions and the durable outbox of notifications (spec §1.9, §6).
///
/// Contract for implementors:
/// - Subscriptions are scoped by (project, source); the subscriber URI is unique within a
///   source. Expired subscriptions are invisible everywhere.
/// - `MessageStore::post_messages` writes, in the same atomic step as the messages, one pending
///   notification batch for the source when it has unexpired subscriptions, listing them as
///   pending. So a crash can never lose a notification of an acknowledged message.
/// - Batches are leased: a leased batch is not handed out again until its lease lapses, so
///   several nodes can run delivery workers and each subscriber gets each batch from one worker
///   at a time (at least once overall, across crashes).
#[async_trait]
pub trait SubscriptionStore: Send + Sync {
    async fn create_subscription(
        &self,
        project: &str,
        source: &str,
        sub: NewSubscription,
    ) -> Result<SubscriptionCreated>;

    /// Subscriptions of a source with ids strictly after `marker`, in id (creation) order.
    async fn list_subscriptions(
        &self,
        project: &str,
        source: &str,
        marker: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Subscription>>;

    async fn get_subscription(
        &self,
        project: &str,
        source: &str,
        id: &str,
    ) -> Result<Option<Subscription>>;

    /// `NotFound` if missing; `Conflict` if the new subscriber belongs to another subscription.
    /// A new `ttl` restarts the expiry from now; `options` replaces the whole object.
    async fn update_subscription(
        &self,
        project: &str,
        source: &str,
        id: &str,
        update: SubscriptionUpdate,
    ) -> Result<()>;

    async fn delete_subscription(&self, project: &str, source: &str, id: &str) -> Result<()>;

    /// Sets `confirmed`; `false` when the subscription does not exist.
    async fn confirm_subscription(
        &self,
        project: &str,
        source: &str,
        id: &str,
        confirmed: bool,
    ) -> Result<bool>;

    /// Deletes every subscription of the source.
    async fn purge_subscriptions(&self, project: &str, source: &str) -> Result<()>;

    /// Leases up to `limit` pending batches, oldest first, that nobody holds (or whose lease
    /// lapsed), for `lease_ms`. Subscriptions deleted or expired since are left out.
    async fn lease_notifications(
        &self,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<PendingNotification>>;

    /// Extends the lease of a batch still being delivered.
    async fn renew_notification_lease(&self, key: &str, lease_ms: i64) -> Result<()>;

    /// Records that subscribers are done with batches: counters and last error on each
    /// subscription (of several failures of one subscriber, the newest batch's error is kept),
    /// and a batch disappears when no subscriber is pending. An entry whose subscriber is no
    /// longer pending for its batch (a replay) changes nothing. Drivers apply a call in as few
    /// writes as they can (the notifier hands over everything finished since its last call);
    /// the call need not be atomic as a whole, but no entry is ever applied twice.
    async fn finish_notifications(&self, done: Vec<FinishedDelivery>) -> Result<()>;
}

/// A complete data-plane driver.
#[async_trait]
pub trait DataStore: QueueStore + MessageStore + ClaimStore {
    /// Whether the backend answers.
    async fn ping(&self) -> Result<()>;

    /// Relays long-polling wake-ups between API nodes sharing this backend. The service signals
    /// its own node's waiters after each write; a driver whose backend is shared (Redis,
    /// PostgreSQL) also publishes those writes and calls `hub.notify(project, queue)` for
    /// writes made through other nodes. Drivers of a single process ignore it.
    fn attach_hub(&self, _hub: std::sync::Arc<crate::hub::Hub>) {}

    /// The driver's subscriptions and notification outbox; `None` for drivers without them yet.
    fn subscriptions(&self) -> Option<&dyn SubscriptionStore> {
        None
    }

    /// Finishes pending writes and releases the backend. Later calls fail with `Unavailable`.
    async fn shutdown(&self);
}

/// Lifetime extension of a claimed message (spec §1.6): if the message would expire before the
/// claim does, it lives until `claim_expires + grace` and its reported ttl becomes
/// `claim_ttl + grace`. Returns the new `(ttl, expires)`.
pub fn extend_for_claim(
    ttl: i64,
    expires: Millis,
    claim_ttl: i64,
    claim_expires: Millis,
    grace: i64,
) -> (i64, Millis) {
    if expires < claim_expires {
        (claim_ttl + grace, claim_expires + grace * 1000)
    } else {
        (ttl, expires)
    }
}

/// What finished deliveries add to one subscription's counters (drivers sum a
/// [`SubscriptionStore::finish_notifications`] call per subscription before writing).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeliveryTally {
    pub delivered: u64,
    pub failed: u64,
    pub last_error: Option<String>,
}

impl DeliveryTally {
    /// Adds an outcome; outcomes are added oldest batch first, so the newest error stays.
    pub fn add(&mut self, outcome: &DeliveryOutcome) {
        match outcome {
            DeliveryOutcome::Delivered => self.delivered += 1,
            DeliveryOutcome::GaveUp(e) => {
                self.failed += 1;
                self.last_error = Some(e.clone());
            }
            DeliveryOutcome::Skipped => {}
        }
    }

    /// Whether the counters stay as they are.
    pub fn is_empty(&self) -> bool {
        self.delivered == 0 && self.failed == 0
    }
}

/// Tallies by (project, source, subscription id).
pub type DeliveryTallies = std::collections::BTreeMap<(String, String, String), DeliveryTally>;

/// The second by whose end a message expiring at `expires` has expired: byte accounting per
/// expiry second (embedded and Redis drivers) keys stored bytes by it, and every second `s`
/// with `s * 1000 <= now` holds only expired messages.
pub fn expiry_second(expires: Millis) -> u64 {
    (expires.max(0) as u64).div_ceil(1000)
}

/// Whether a claim id has the shape of an id this service hands out.
pub fn is_valid_claim_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What single-message deletion needs to know about the targeted message.
#[derive(Debug, Clone, Copy)]
pub struct DeleteTarget<'a> {
    /// The message's live claim, if it is claimed.
    pub active_claim: Option<&'a str>,
}

/// The claim rules of single-message deletion (spec §3.4.6). Given the message (`None` if it
/// does not exist), the claim id of the request and a way to ask whether that claim is live,
/// decides whether to delete (`Ok(true)`), do nothing (`Ok(false)`), or refuse.
pub fn decide_single_delete(
    target: Option<DeleteTarget<'_>>,
    claim_id: Option<&str>,
    claim_is_live: impl FnOnce(&str) -> Result<bool>,
) -> Result<bool> {
    const CLAIMED: &str = "This message is claimed; it cannot be deleted without a valid claim ID.";
    const NO_CLAIM: &str = "The specified claim does not exist or has expired.";
    let Some(target) = target else {
        return Ok(false);
    };
    match (claim_id, target.active_claim) {
        (None, Some(_)) => Err(Error::DeleteForbidden(CLAIMED.into())),
        (None, None) => Ok(true),
        (Some(cid), _) if !is_valid_claim_id(cid) => Err(Error::DeleteBadRequest(NO_CLAIM.into())),
        (Some(_), None) => Err(Error::DeleteBadRequest(
            "A claim was specified, but the message is not currently claimed.".into(),
        )),
        (Some(cid), Some(own)) if own == cid => Ok(true),
        (Some(cid), Some(_)) => {
            if claim_is_live(cid)? {
                Err(Error::DeleteForbidden(
                    "This message is claimed by another claim; it cannot be deleted with the \
                     given claim ID."
                        .into(),
                ))
            } else {
                Err(Error::DeleteBadRequest(NO_CLAIM.into()))
            }
        }
    }
}

/// Checks the `claim_ids` rule of bulk deletion for one targeted message.
pub fn check_bulk_delete_claim(
    message_id: &str,
    active_claim: Option<&str>,
    claim_ids: &[String],
) -> Result<()> {
    match active_claim {
        Some(c) if claim_ids.iter().any(|x| x == c) => Ok(()),
        _ => Err(Error::DeleteForbidden(format!(
            "Message {message_id} is not held by any of the given claims."
        ))),
    }
}
