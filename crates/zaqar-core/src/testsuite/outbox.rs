//! Conformance cases of the notification outbox: every post writes one durable batch for the
//! subscriptions of its queue, leased by one worker at a time and finished per subscriber.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::json;

use super::{created_id, env, msg, new_sub, post_n, q, subs, Env, Harness, C1};
use crate::store::DataStore;

pub async fn posts_write_durable_notifications(h: &dyn Harness) {
    use crate::model::{DeliveryOutcome, SubscriptionCreated};
    let Env { s, clock } = env(h).await;
    let Some(st) = subs(&s) else { return };
    // Nothing pending without subscribers.
    post_n(&s, q("p", "n"), 1).await;
    assert!(st.lease_notifications(10, 60_000).await.unwrap().is_empty());
    let SubscriptionCreated::New(s1) = st
        .create_subscription("p", "n", new_sub("http://1", 600))
        .await
        .unwrap()
    else {
        panic!()
    };
    let SubscriptionCreated::New(s2) = st
        .create_subscription("p", "n", new_sub("http://2", 600))
        .await
        .unwrap()
    else {
        panic!()
    };
    st.confirm_subscription("p", "n", &s2, true).await.unwrap();
    let ids = s
        .post_messages(
            q("p", "n"),
            C1,
            vec![msg(json!({"a": 1}), 300), msg(json!("b"), 300)],
        )
        .await
        .unwrap();
    let leased = st.lease_notifications(10, 60_000).await.unwrap();
    assert_eq!(leased.len(), 1);
    let b = &leased[0];
    assert_eq!((b.project.as_str(), b.source.as_str()), ("p", "n"));
    assert_eq!(
        b.messages.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
        ids
    );
    assert_eq!(b.messages[0].body.get(), r#"{"a":1}"#);
    assert_eq!(b.messages[1].ttl, 300);
    let subs_now: Vec<(String, bool)> = b
        .subscribers
        .iter()
        .map(|x| (x.id.clone(), x.confirmed))
        .collect();
    assert_eq!(
        subs_now,
        vec![(s1.clone(), false), (s2.clone(), true)],
        "confirmed as at posting"
    );
    // Leased: not handed out again until the lease lapses.
    assert!(st.lease_notifications(10, 60_000).await.unwrap().is_empty());
    finish(st, &b.key, &s1, DeliveryOutcome::GaveUp("boom".into())).await;
    clock.advance_secs(61);
    let again = st.lease_notifications(10, 60_000).await.unwrap();
    assert_eq!(again.len(), 1, "lapsed lease");
    assert_eq!(again[0].subscribers.len(), 1, "only the pending subscriber");
    assert_eq!(again[0].subscribers[0].id, s2);
    st.renew_notification_lease(&again[0].key, 60_000)
        .await
        .unwrap();
    finish(st, &again[0].key, &s2, DeliveryOutcome::Delivered).await;
    // Replays are harmless.
    finish(st, &again[0].key, &s2, DeliveryOutcome::Delivered).await;
    clock.advance_secs(61);
    assert!(
        st.lease_notifications(10, 60_000).await.unwrap().is_empty(),
        "done"
    );
    let one = st.get_subscription("p", "n", &s1).await.unwrap().unwrap();
    assert_eq!(
        (one.delivered, one.failed, one.last_error.as_deref()),
        (0, 1, Some("boom"))
    );
    let two = st.get_subscription("p", "n", &s2).await.unwrap().unwrap();
    assert_eq!((two.delivered, two.failed), (1, 0));
    // A subscription deleted before delivery is dropped from pending batches.
    s.post_messages(q("p", "n"), C1, vec![msg(json!(3), 300)])
        .await
        .unwrap();
    st.delete_subscription("p", "n", &s1).await.unwrap();
    let third = st.lease_notifications(10, 60_000).await.unwrap();
    assert_eq!(
        third[0]
            .subscribers
            .iter()
            .map(|x| x.id.clone())
            .collect::<Vec<_>>(),
        vec![s2]
    );
}

/// Records one finished delivery.
pub async fn finish(
    st: &dyn crate::store::SubscriptionStore,
    key: &str,
    sid: &str,
    outcome: crate::model::DeliveryOutcome,
) {
    st.finish_notifications(vec![crate::model::FinishedDelivery {
        key: key.to_string(),
        subscription_id: sid.to_string(),
        outcome,
    }])
    .await
    .unwrap();
}

/// Many finished deliveries recorded in one call (as the notifier does): several batches and
/// sources, mixed outcomes, a duplicate within the call and a replay afterwards.
pub async fn finishing_many_deliveries_at_once(h: &dyn Harness) {
    use crate::model::{DeliveryOutcome, FinishedDelivery};
    let Env { s, clock } = env(h).await;
    let Some(st) = subs(&s) else { return };
    let mut sids = Vec::new();
    for i in 0..3 {
        let c = st
            .create_subscription("p", "fan", new_sub(&format!("http://{i}"), 600))
            .await
            .unwrap();
        sids.push(created_id(c));
    }
    let other = created_id(
        st.create_subscription("p", "solo", new_sub("http://solo", 600))
            .await
            .unwrap(),
    );
    for n in 0..3 {
        s.post_messages(q("p", "fan"), C1, vec![msg(json!(n), 600)])
            .await
            .unwrap();
    }
    post_n(&s, q("p", "solo"), 1).await;
    let mut leased = st.lease_notifications(10, 60_000).await.unwrap();
    assert_eq!(leased.len(), 4);
    let solo = leased.iter().position(|b| b.source == "solo").unwrap();
    let solo = leased.remove(solo);
    // The fan batches in posting order.
    leased.sort_by_key(|b| b.messages[0].body.get().parse::<i64>().unwrap());
    let key = |b: usize| leased[b].key.clone();
    let done = |k: String, sid: &str, outcome| FinishedDelivery {
        key: k,
        subscription_id: sid.to_string(),
        outcome,
    };
    let (s0, s1, s2) = (&sids[0], &sids[1], &sids[2]);
    let newer_first = vec![
        done(key(1), s1, DeliveryOutcome::GaveUp("second".into())),
        done(key(1), s0, DeliveryOutcome::Delivered),
        done(key(1), s0, DeliveryOutcome::Delivered),
        done(solo.key.clone(), &other, DeliveryOutcome::Delivered),
        done(key(0), s0, DeliveryOutcome::Delivered),
        done(key(0), s1, DeliveryOutcome::GaveUp("first".into())),
        done(key(0), s2, DeliveryOutcome::Skipped),
    ];
    st.finish_notifications(newer_first).await.unwrap();
    // Replays change nothing.
    st.finish_notifications(vec![
        done(key(0), s0, DeliveryOutcome::Delivered),
        done(key(0), s1, DeliveryOutcome::GaveUp("replayed".into())),
    ])
    .await
    .unwrap();
    st.finish_notifications(Vec::new()).await.unwrap();
    let solo_id = other.as_str();
    let get = |id: String| async move {
        let src = if id == solo_id { "solo" } else { "fan" };
        let sub = st.get_subscription("p", src, &id).await.unwrap().unwrap();
        (sub.delivered, sub.failed, sub.last_error)
    };
    assert_eq!(
        get(s0.clone()).await,
        (2, 0, None),
        "the duplicate counted once"
    );
    assert_eq!(
        get(s1.clone()).await,
        (0, 2, Some("second".to_string())),
        "the newest batch's error"
    );
    assert_eq!(get(s2.clone()).await, (0, 0, None), "skipped");
    assert_eq!(get(other.clone()).await, (1, 0, None));
    // Once the leases lapse: batch 0 and the solo batch are gone; batch 1 still owes s2,
    // batch 2 owes everyone.
    clock.advance_secs(61);
    let mut again = st.lease_notifications(10, 60_000).await.unwrap();
    again.sort_by_key(|b| b.messages[0].body.get().parse::<i64>().unwrap());
    let pending: Vec<(String, Vec<String>)> = again
        .iter()
        .map(|b| {
            (
                b.messages[0].body.get().to_string(),
                b.subscribers.iter().map(|x| x.id.clone()).collect(),
            )
        })
        .collect();
    assert_eq!(
        pending,
        vec![
            ("1".to_string(), vec![s2.clone()]),
            ("2".to_string(), sids.clone()),
        ]
    );
}

/// Each post notifies the subscriptions as they are at that moment, however many posts went
/// before (drivers may keep a view of a source's subscriptions between posts).
pub async fn every_post_sees_the_current_subscriptions(h: &dyn Harness) {
    use crate::model::SubscriptionUpdate;
    let Env { s, clock } = env(h).await;
    let Some(st) = subs(&s) else { return };
    let qq = q("p", "cur");
    // Takes the pending batch (finishing it) and returns its subscribers as (id, confirmed).
    let take = || async {
        let got = st.lease_notifications(10, 60_000).await.unwrap();
        assert!(got.len() <= 1, "one batch per post");
        let Some(b) = got.first() else {
            return Vec::new();
        };
        for x in &b.subscribers {
            finish(st, &b.key, &x.id, crate::model::DeliveryOutcome::Delivered).await;
        }
        b.subscribers
            .iter()
            .map(|x| (x.id.clone(), x.confirmed))
            .collect::<Vec<_>>()
    };
    post_n(&s, qq, 1).await;
    assert!(take().await.is_empty());
    let a = created_id(
        st.create_subscription("p", "cur", new_sub("http://a", 600))
            .await
            .unwrap(),
    );
    post_n(&s, qq, 1).await;
    assert_eq!(take().await, vec![(a.clone(), false)], "a new subscription");
    st.confirm_subscription("p", "cur", &a, true).await.unwrap();
    post_n(&s, qq, 1).await;
    assert_eq!(take().await, vec![(a.clone(), true)], "confirmed since");
    let b = created_id(
        st.create_subscription("p", "cur", new_sub("http://b", 600))
            .await
            .unwrap(),
    );
    st.update_subscription(
        "p",
        "cur",
        &a,
        SubscriptionUpdate {
            ttl: Some(60),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    clock.advance_secs(61);
    post_n(&s, qq, 1).await;
    let got = take().await;
    assert_eq!(got, vec![(b.clone(), false)], "a's new ttl ran out");
    st.delete_subscription("p", "cur", &b).await.unwrap();
    post_n(&s, qq, 1).await;
    assert!(take().await.is_empty(), "deleted");
    let c = created_id(
        st.create_subscription("p", "cur", new_sub("http://c", 600))
            .await
            .unwrap(),
    );
    st.purge_subscriptions("p", "cur").await.unwrap();
    post_n(&s, qq, 1).await;
    assert!(take().await.is_empty(), "purged ({c})");
}

/// Concurrent leasers (as on several API nodes) never hold the same batch at once, and every
/// batch is handed out.
pub async fn concurrent_leasers_never_share_a_batch(h: &dyn Harness) {
    let Env { s, clock } = env(h).await;
    let Some(st) = subs(&s) else { return };
    let sid = created_id(
        st.create_subscription("p", "fan", new_sub("http://x", 600))
            .await
            .unwrap(),
    );
    for i in 0..40 {
        s.post_messages(q("p", "fan"), C1, vec![msg(json!(i), 600)])
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let st = s.subscriptions().unwrap();
            let mut mine = Vec::new();
            loop {
                let got = st.lease_notifications(3, 60_000).await.unwrap();
                if got.is_empty() {
                    return mine;
                }
                for b in got {
                    assert_eq!(b.messages.len(), 1);
                    mine.push((b.key, b.messages[0].body.get().to_string()));
                }
            }
        }));
    }
    let mut keys = HashSet::new();
    let mut bodies = HashSet::new();
    for t in tasks {
        for (k, body) in t.await.unwrap() {
            assert!(keys.insert(k), "a batch was leased twice");
            assert!(bodies.insert(body));
        }
    }
    assert_eq!(keys.len(), 40, "every batch handed out once");
    assert!(st.lease_notifications(10, 60_000).await.unwrap().is_empty());
    // Finished batches are gone for good; the others come back when their lease lapses.
    let mut keys: Vec<String> = keys.into_iter().collect();
    keys.sort();
    for k in &keys[..30] {
        finish(st, k, &sid, crate::model::DeliveryOutcome::Delivered).await;
    }
    clock.advance_secs(61);
    let again = st.lease_notifications(100, 60_000).await.unwrap();
    assert_eq!(again.len(), 10, "only the unfinished batches return");
    let one = st
        .get_subscription("p", "fan", &sid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.delivered, 30);
}

/// For drivers whose backend several nodes share: `a` and `b` are two stores over the same
/// data. Batches posted through both are leased by workers on both, each exactly once while
/// the leases run.
pub async fn leasers_on_two_nodes_never_share_a_batch(
    a: Arc<dyn DataStore>,
    b: Arc<dyn DataStore>,
) {
    let st = a.subscriptions().expect("a subscription store");
    created_id(
        st.create_subscription("p", "two", new_sub("http://x", 600))
            .await
            .unwrap(),
    );
    for i in 0..40 {
        let s = if i % 2 == 0 { &a } else { &b };
        s.post_messages(q("p", "two"), C1, vec![msg(json!(i), 600)])
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for t in 0..6 {
        let s = if t % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let st = s.subscriptions().unwrap();
            let mut mine = Vec::new();
            loop {
                let got = st.lease_notifications(2, 60_000).await.unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|b| b.messages[0].id.clone()));
            }
        }));
    }
    let mut seen = HashSet::new();
    for t in tasks {
        for id in t.await.unwrap() {
            assert!(seen.insert(id), "a batch was leased by two workers");
        }
    }
    assert_eq!(seen.len(), 40, "every batch was leased");
}

/// Each post writes exactly one batch with exactly its messages, also under concurrent posts,
/// and only for sources with unexpired subscriptions.
pub async fn each_post_writes_one_batch_with_its_messages(h: &dyn Harness) {
    let Env { s, clock } = env(h).await;
    let Some(st) = subs(&s) else { return };
    created_id(
        st.create_subscription("p", "hot", new_sub("http://a", 600))
            .await
            .unwrap(),
    );
    created_id(
        st.create_subscription("p", "brief", new_sub("http://b", 60))
            .await
            .unwrap(),
    );
    let mut tasks = Vec::new();
    for t in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut posts = Vec::new();
            for i in 0..5 {
                let batch = (0..1 + (t + i) % 3)
                    .map(|j| msg(json!([t, i, j]), 600))
                    .collect();
                posts.push(s.post_messages(q("p", "hot"), C1, batch).await.unwrap());
            }
            posts
        }));
    }
    let mut posts = Vec::new();
    for t in tasks {
        posts.extend(t.await.unwrap());
    }
    // Posts elsewhere write nothing for these subscriptions.
    post_n(&s, q("p", "quiet"), 3).await;
    post_n(&s, q("p2", "hot"), 3).await;
    let leased = st.lease_notifications(1000, 3_600_000).await.unwrap();
    assert_eq!(leased.len(), posts.len(), "one batch per post");
    let mut got: Vec<Vec<String>> = leased
        .iter()
        .map(|b| {
            assert_eq!((b.project.as_str(), b.source.as_str()), ("p", "hot"));
            b.messages.iter().map(|m| m.id.clone()).collect()
        })
        .collect();
    got.sort();
    posts.sort();
    assert_eq!(
        got, posts,
        "each batch holds exactly its post's messages, in order"
    );
    // An expired subscription gets no batch; its source none at all.
    clock.advance_secs(61);
    post_n(&s, q("p", "brief"), 2).await;
    let none = st.lease_notifications(10, 60_000).await.unwrap();
    assert!(
        none.is_empty(),
        "{:?}",
        none.iter().map(|b| &b.source).collect::<Vec<_>>()
    );
}
