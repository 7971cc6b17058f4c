//! Conformance cases of subscriptions: creation and uniqueness, listing, updates, expiry,
//! deletion and purge, and their independence from the queue's messages.

use serde_json::json;

use super::{created_id, env, new_sub, post_n, q, subs, Env, Harness};
use crate::clock::ManualClock;
use crate::error::Error;
use crate::model::{SubscriptionCreated, SubscriptionUpdate};
use crate::store::SubscriptionStore;

/// Subscriptions are unique per queue and subscriber URI, listed in creation order, updated
/// with conflict checks, and gone once expired, deleted or purged. The steps run in order on
/// one store, each building on what the previous one left behind.
pub async fn subscriptions_crud_and_uniqueness(h: &dyn Harness) {
    let Env { s, clock } = env(h).await;
    let Some(st) = subs(&s) else { return };
    let a = creation_is_unique_per_queue_and_uri(st).await;
    let ids = listing_and_reading(st, a).await;
    updates_check_conflicts_and_restart_the_ttl(st, &clock, &ids).await;
    expiry_deletion_and_purge(st, &clock, &ids).await;
}

/// Creates `http://a` on `p/q` (then confirms it) and checks what re-creating it answers;
/// returns its id.
async fn creation_is_unique_per_queue_and_uri(st: &dyn SubscriptionStore) -> String {
    let a = match st
        .create_subscription("p", "q", new_sub("http://a", 600))
        .await
        .unwrap()
    {
        SubscriptionCreated::New(id) => id,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        st.create_subscription("p", "q", new_sub("http://a", 600))
            .await
            .unwrap(),
        SubscriptionCreated::ExistingUnconfirmed(a.clone())
    );
    assert!(st.confirm_subscription("p", "q", &a, true).await.unwrap());
    assert_eq!(
        st.create_subscription("p", "q", new_sub("http://a", 600))
            .await
            .unwrap(),
        SubscriptionCreated::ExistingConfirmed(a.clone())
    );
    // Same URI elsewhere is another subscription.
    assert!(matches!(
        st.create_subscription("p", "other", new_sub("http://a", 600))
            .await
            .unwrap(),
        SubscriptionCreated::New(_)
    ));
    assert!(matches!(
        st.create_subscription("p2", "q", new_sub("http://a", 600))
            .await
            .unwrap(),
        SubscriptionCreated::New(_)
    ));
    a
}

/// Adds four subscriptions after `a` and checks paging and reading; returns the ids of `p/q`
/// in creation order (`a` first).
async fn listing_and_reading(st: &dyn SubscriptionStore, a: String) -> Vec<String> {
    let mut ids = vec![a.clone()];
    for i in 0..4 {
        match st
            .create_subscription("p", "q", new_sub(&format!("http://b{i}"), 600))
            .await
            .unwrap()
        {
            SubscriptionCreated::New(id) => ids.push(id),
            other => panic!("{other:?}"),
        }
    }
    let page = st.list_subscriptions("p", "q", None, 3).await.unwrap();
    assert_eq!(
        page.iter().map(|x| x.id.clone()).collect::<Vec<_>>(),
        ids[..3],
        "creation order"
    );
    let rest = st
        .list_subscriptions("p", "q", Some(&ids[2]), 10)
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|x| x.id.clone()).collect::<Vec<_>>(),
        ids[3..]
    );
    let got = st.get_subscription("p", "q", &a).await.unwrap().unwrap();
    assert_eq!(
        (got.subscriber.as_str(), got.ttl, got.confirmed),
        ("http://a", 600, true)
    );
    assert_eq!(got.options, json!({"k": 1}).as_object().unwrap().clone());
    assert!(!got.secret.is_empty());
    assert!(st
        .get_subscription("p", "other-q", &a)
        .await
        .unwrap()
        .is_none());
    assert!(st.get_subscription("p2", "q", &a).await.unwrap().is_none());
    ids
}

/// Update: conflicts, ttl restart, options replace. Moves `ids[1]` to `http://moved` with a
/// ttl of 300 s, 500 s after the subscriptions were created.
async fn updates_check_conflicts_and_restart_the_ttl(
    st: &dyn SubscriptionStore,
    clock: &ManualClock,
    ids: &[String],
) {
    let err = st
        .update_subscription(
            "p",
            "q",
            &ids[1],
            SubscriptionUpdate {
                subscriber: Some("http://a".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    clock.advance_secs(500);
    st.update_subscription(
        "p",
        "q",
        &ids[1],
        SubscriptionUpdate {
            ttl: Some(300),
            options: Some(Default::default()),
            subscriber: Some("http://moved".into()),
        },
    )
    .await
    .unwrap();
    let moved = st
        .get_subscription("p", "q", &ids[1])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (moved.subscriber.as_str(), moved.ttl),
        ("http://moved", 300)
    );
    assert!(moved.options.is_empty());
    // The old URI is free again.
    assert!(matches!(
        st.create_subscription("p", "q", new_sub("http://b0", 600))
            .await
            .unwrap(),
        SubscriptionCreated::New(_)
    ));
}

/// Expiry, deletion and purge, after the update step (`ids[0]` is `a`).
async fn expiry_deletion_and_purge(
    st: &dyn SubscriptionStore,
    clock: &ManualClock,
    ids: &[String],
) {
    let a = &ids[0];
    // Expiry: the others (ttl 600, 500 s ago) expire before the updated one.
    clock.advance_secs(101);
    assert!(st.get_subscription("p", "q", a).await.unwrap().is_none());
    assert!(st
        .get_subscription("p", "q", &ids[1])
        .await
        .unwrap()
        .is_some());
    let err = st
        .update_subscription(
            "p",
            "q",
            a,
            SubscriptionUpdate {
                ttl: Some(60),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)));
    st.delete_subscription("p", "q", &ids[1]).await.unwrap();
    assert!(st
        .get_subscription("p", "q", &ids[1])
        .await
        .unwrap()
        .is_none());
    st.purge_subscriptions("p", "q").await.unwrap();
    assert!(st
        .list_subscriptions("p", "q", None, 20)
        .await
        .unwrap()
        .is_empty());
    assert!(!st
        .confirm_subscription("p", "q", &ids[1], true)
        .await
        .unwrap());
}

/// Expired subscriptions are invisible to every operation and drop out of pending batches;
/// their subscriber URI is free again.
pub async fn expired_subscriptions_are_invisible(h: &dyn Harness) {
    let Env { s, clock } = env(h).await;
    let Some(st) = subs(&s) else { return };
    let short = created_id(
        st.create_subscription("p", "e", new_sub("http://short", 60))
            .await
            .unwrap(),
    );
    let long = created_id(
        st.create_subscription("p", "e", new_sub("http://long", 600))
            .await
            .unwrap(),
    );
    st.confirm_subscription("p", "e", &short, true)
        .await
        .unwrap();
    post_n(&s, q("p", "e"), 1).await;
    clock.advance_secs(60);
    assert!(st
        .get_subscription("p", "e", &short)
        .await
        .unwrap()
        .is_none());
    let listed = st.list_subscriptions("p", "e", None, 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|x| x.id.clone()).collect::<Vec<_>>(),
        vec![long.clone()]
    );
    assert!(!st
        .confirm_subscription("p", "e", &short, true)
        .await
        .unwrap());
    let err = st
        .update_subscription("p", "e", &short, SubscriptionUpdate::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    // The batch posted before the expiry now only serves the live subscription.
    let leased = st.lease_notifications(10, 60_000).await.unwrap();
    assert_eq!(leased.len(), 1);
    assert_eq!(
        leased[0]
            .subscribers
            .iter()
            .map(|x| x.id.clone())
            .collect::<Vec<_>>(),
        vec![long.clone()]
    );
    // The URI of the expired one can be taken, by a new subscription or an update.
    let again = st
        .create_subscription("p", "e", new_sub("http://short", 600))
        .await
        .unwrap();
    let SubscriptionCreated::New(again) = again else {
        panic!("{again:?}")
    };
    assert_ne!(again, short);
    let fresh = st
        .get_subscription("p", "e", &again)
        .await
        .unwrap()
        .unwrap();
    assert!(!fresh.confirmed, "nothing of the expired one carries over");
    st.delete_subscription("p", "e", &again).await.unwrap();
    st.update_subscription(
        "p",
        "e",
        &long,
        SubscriptionUpdate {
            subscriber: Some("http://short".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    clock.advance_secs(600);
    assert!(st
        .list_subscriptions("p", "e", None, 10)
        .await
        .unwrap()
        .is_empty());
    post_n(&s, q("p", "e"), 1).await;
    clock.advance_secs(61);
    assert!(st.lease_notifications(10, 60_000).await.unwrap().is_empty());
}

/// Deleting or purging a queue's messages leaves its subscriptions and pending notifications.
pub async fn queue_deletion_keeps_subscriptions_and_pending_batches(h: &dyn Harness) {
    let Env { s, .. } = env(h).await;
    let Some(st) = subs(&s) else { return };
    let sid = created_id(
        st.create_subscription("p", "d", new_sub("http://a", 600))
            .await
            .unwrap(),
    );
    let ids = post_n(&s, q("p", "d"), 2).await;
    s.purge_messages(q("p", "d")).await.unwrap();
    s.delete_queue(q("p", "d")).await.unwrap();
    assert!(s.get_queue(q("p", "d")).await.unwrap().is_none());
    assert!(st.get_subscription("p", "d", &sid).await.unwrap().is_some());
    let leased = st.lease_notifications(10, 60_000).await.unwrap();
    assert_eq!(leased.len(), 1, "the notification outlives its messages");
    assert_eq!(
        leased[0]
            .messages
            .iter()
            .map(|m| m.id.clone())
            .collect::<Vec<_>>(),
        ids
    );
    // A re-created queue notifies the same subscription.
    post_n(&s, q("p", "d"), 1).await;
    let next = st.lease_notifications(10, 60_000).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].subscribers[0].id, sid);
}
