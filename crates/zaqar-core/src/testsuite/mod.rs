//! The storage conformance suite: one set of cases, generic over the storage traits, run
//! unchanged against every driver. A driver's test file implements [`Harness`] and invokes
//! [`conformance_tests!`], which expands to one `#[tokio::test]` per case.
//!
//! Time is a [`ManualClock`]: expiry, grace and delay are tested by moving the clock.
#![allow(dead_code)]

mod bytes;
mod claims;
mod dead_letters;
mod messages;
mod outbox;
mod queues;
mod subscriptions;

pub use bytes::*;
pub use claims::*;
pub use dead_letters::*;
pub use messages::*;
pub use outbox::*;
pub use queues::*;
pub use subscriptions::*;

use std::sync::Arc;

use crate::clock::ManualClock;
use crate::model::{ClaimParams, DeadLetter, ListQuery, NewMessage, QueueRef};
use crate::store::DataStore;
use serde_json::json;
use serde_json::value::RawValue;

/// Gives each case a fresh, isolated store driven by `clock`.
#[async_trait::async_trait]
pub trait Harness: Send + Sync {
    async fn store(&self, clock: ManualClock) -> Arc<dyn DataStore>;
}

pub const C1: &str = "3381af92-2b9e-11e3-b191-71861300734c";
pub const C2: &str = "9d6d6b5c-9a8f-4f4e-8a0d-1f2e3d4c5b6a";

pub fn q<'a>(project: &'a str, name: &'a str) -> QueueRef<'a> {
    QueueRef::new(project, name)
}

pub fn msg(body: serde_json::Value, ttl: i64) -> NewMessage {
    NewMessage {
        body: RawValue::from_string(body.to_string()).unwrap(),
        ttl,
        delay: 0,
        checksum: None,
        encrypted: false,
    }
}

pub fn delayed(body: serde_json::Value, ttl: i64, delay: i64) -> NewMessage {
    NewMessage {
        delay,
        ..msg(body, ttl)
    }
}

pub fn all(limit: usize) -> ListQuery {
    ListQuery {
        marker: None,
        limit,
        exclude_client: None,
        include_claimed: true,
        include_delayed: true,
    }
}

pub fn claim(ttl: i64, grace: i64, limit: usize) -> ClaimParams {
    ClaimParams {
        ttl,
        grace,
        limit,
        dead_letter: None,
    }
}

pub fn claim_dlq(
    ttl: i64,
    limit: usize,
    max_claims: u32,
    dlq: &str,
    dlq_ttl: Option<i64>,
) -> ClaimParams {
    ClaimParams {
        dead_letter: Some(DeadLetter {
            max_claim_count: max_claims,
            queue: dlq.to_string(),
            ttl: dlq_ttl,
        }),
        ..claim(ttl, 60, limit)
    }
}

fn bodies(ms: &[crate::model::Message]) -> Vec<String> {
    ms.iter().map(|m| m.body.get().to_string()).collect()
}

async fn post_n(s: &Arc<dyn DataStore>, qr: QueueRef<'_>, n: usize) -> Vec<String> {
    let msgs = (0..n).map(|i| msg(json!({ "n": i }), 3600)).collect();
    s.post_messages(qr, C1, msgs).await.unwrap()
}

pub struct Env {
    pub clock: ManualClock,
    pub s: Arc<dyn DataStore>,
}

pub async fn env(h: &dyn Harness) -> Env {
    let clock = ManualClock::default();
    let s = h.store(clock.clone()).await;
    Env { clock, s }
}

// The subscription helpers below live here, not in `subscriptions`, because the outbox cases
// use them as well.

/// A new, unconfirmed subscription of `uri` with a fixed set of options.
fn new_sub(uri: &str, ttl: i64) -> crate::model::NewSubscription {
    crate::model::NewSubscription {
        subscriber: uri.to_string(),
        ttl,
        options: json!({"k": 1}).as_object().unwrap().clone(),
        confirmed: false,
    }
}

/// The driver's subscription store; drivers without one yet skip these cases (loudly).
fn subs(s: &Arc<dyn DataStore>) -> Option<&dyn crate::store::SubscriptionStore> {
    let st = s.subscriptions();
    if st.is_none() {
        eprintln!("SKIPPED: this driver has no subscription store yet");
    }
    st
}

/// The id of a subscription that `create_subscription` reported as new.
fn created_id(c: crate::model::SubscriptionCreated) -> String {
    match c {
        crate::model::SubscriptionCreated::New(id) => id,
        other => panic!("expected a new subscription, got {other:?}"),
    }
}

/// Expands to one test per conformance case for the harness expression `$h`.
#[macro_export]
macro_rules! conformance_tests {
    ($h:expr) => {
        $crate::conformance_tests!(@cases $h;
            queue_create_get_delete, queue_metadata_compare_and_set, queue_listing,
            post_preserves_order_and_markers, listing_filters_and_paging, get_by_ids,
            batch_is_atomic_for_readers, expiry_hides_messages_everywhere,
            delete_messages_in_bulk, pop_takes_oldest_free_messages, single_delete_claim_rules,
            stats_are_exact, purge_removes_every_message, recreated_queue_does_not_resurrect_ids,
            claims_take_oldest_first_and_exclusively, concurrent_claims_never_share_a_message,
            claim_expiry_and_counts, claim_extends_message_lifetime, renew_resets_and_extends,
            release_makes_messages_claimable, delayed_messages_wait, projects_are_isolated,
            stored_flags_round_trip, dead_letter_after_max_claims, dead_letter_mixed_batch_and_ttl,
            dead_letter_keeps_remaining_life_without_ttl, redrive_returns_messages_to_their_source,
            subscriptions_crud_and_uniqueness, posts_write_durable_notifications,
            concurrent_leasers_never_share_a_batch, each_post_writes_one_batch_with_its_messages,
            expired_subscriptions_are_invisible, finishing_many_deliveries_at_once,
            every_post_sees_the_current_subscriptions,
            queue_deletion_keeps_subscriptions_and_pending_batches);
    };
    (@cases $h:expr; $($case:ident),* $(,)?) => {
        $crate::conformance_tests!(@each $h;
            project_bytes_follow_posts_and_removals, project_bytes_exclude_expired_messages,
            project_bytes_stay_with_moved_messages, project_bytes_are_per_project,
            $($case),*);
    };
    (@each $h:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let h = $h;
                $crate::testsuite::$case(&h).await;
            }
        )*
    };
}
