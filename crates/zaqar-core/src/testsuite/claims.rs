//! Conformance cases of claims: ordering and exclusivity (also under concurrency), expiry,
//! renewal, release, delayed messages and project isolation.

use std::collections::HashSet;

use serde_json::json;

use super::{all, bodies, claim, delayed, env, msg, post_n, q, Env, Harness, C1};
use crate::clock::Clock;

pub async fn claims_take_oldest_first_and_exclusively(h: &dyn Harness) {
    let Env { s, clock } = env(h).await;
    let qa = q("p", "claims");
    assert!(
        s.create_claim(qa, claim(60, 60, 5))
            .await
            .unwrap()
            .is_none(),
        "missing queue"
    );
    let ids = post_n(&s, qa, 5).await;
    let c1 = s.create_claim(qa, claim(60, 60, 2)).await.unwrap().unwrap();
    let got: Vec<_> = c1.messages.iter().map(|m| m.id.clone()).collect();
    assert_eq!(got, ids[..2]);
    assert!(c1
        .messages
        .iter()
        .all(|m| m.active_claim(clock.now()) == Some(c1.id.as_str())));
    assert!(c1.messages.iter().all(|m| m.claim_count == 1));
    let c2 = s
        .create_claim(qa, claim(60, 60, 10))
        .await
        .unwrap()
        .unwrap();
    let got: Vec<_> = c2.messages.iter().map(|m| m.id.clone()).collect();
    assert_eq!(got, ids[2..]);
    assert_ne!(c1.id, c2.id);
    assert!(
        s.create_claim(qa, claim(60, 60, 10))
            .await
            .unwrap()
            .is_none(),
        "all claimed"
    );
    assert_eq!(
        c1.id.len(),
        32,
        "claim ids look like the ids this service issues"
    );
}

pub async fn concurrent_claims_never_share_a_message(h: &dyn Harness) {
    let Env { s, .. } = env(h).await;
    let qa = q("p", "race");
    for _ in 0..10 {
        post_n(&s, qa, 20).await;
    }
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(c) = s
                .create_claim(q("p", "race"), claim(300, 60, 3))
                .await
                .unwrap()
            {
                mine.extend(c.messages.into_iter().map(|m| m.id));
            }
            mine
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for t in tasks {
        for id in t.await.unwrap() {
            total += 1;
            assert!(seen.insert(id), "a message was claimed twice");
        }
    }
    assert_eq!(total, 200);
}

pub async fn claim_expiry_and_counts(h: &dyn Harness) {
    let Env { s, clock } = env(h).await;
    let qa = q("p", "expire");
    post_n(&s, qa, 1).await;
    let c1 = s.create_claim(qa, claim(60, 60, 1)).await.unwrap().unwrap();
    clock.advance_secs(59);
    assert!(s
        .create_claim(qa, claim(60, 60, 1))
        .await
        .unwrap()
        .is_none());
    assert!(s.get_claim(qa, &c1.id).await.unwrap().is_some());
    clock.advance_secs(1);
    assert!(
        s.get_claim(qa, &c1.id).await.unwrap().is_none(),
        "expired claim is gone"
    );
    let c2 = s.create_claim(qa, claim(60, 60, 1)).await.unwrap().unwrap();
    assert_eq!(
        c2.messages[0].claim_count, 2,
        "claim counter counts every claim"
    );
    assert!(
        !s.renew_claim(qa, &c1.id, 60, 60).await.unwrap(),
        "expired claims cannot be renewed"
    );
}

pub async fn claim_extends_message_lifetime(h: &dyn Harness) {
    let Env { s, clock } = env(h).await;
    let qa = q("p", "extend");
    s.post_messages(
        qa,
        C1,
        vec![msg(json!("short"), 60), msg(json!("long"), 3600)],
    )
    .await
    .unwrap();
    let c = s
        .create_claim(qa, claim(300, 60, 2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.messages[0].ttl, 360, "ttl becomes claim ttl + grace");
    assert_eq!(
        c.messages[1].ttl, 3600,
        "messages that outlive the claim are untouched"
    );
    assert_eq!(c.expires - c.updated, 300_000);
    // The short message outlives its own ttl while claimed, then lives through the grace.
    clock.advance_secs(300);
    assert_eq!(s.list_messages(qa, &all(10)).await.unwrap().len(), 2);
    let c2 = s.create_claim(qa, claim(60, 60, 1)).await.unwrap().unwrap();
    assert_eq!(c2.messages[0].body.get(), "\"short\"");
    clock.advance_secs(61);
    let left = s.list_messages(qa, &all(10)).await.unwrap();
    assert_eq!(
        bodies(&left),
        vec!["\"long\""],
        "expired after claim + grace"
    );
}

pub async fn renew_resets_and_extends(h: &dyn Harness) {
    let Env { s, clock } = env(h).await;
    let qa = q("p", "renew");
    s.post_messages(qa, C1, vec![msg(json!(1), 100)])
        .await
        .unwrap();
    let c = s.create_claim(qa, claim(60, 60, 1)).await.unwrap().unwrap();
    assert_eq!(c.messages[0].ttl, 100);
    clock.advance_secs(50);
    assert!(s.renew_claim(qa, &c.id, 200, 100).await.unwrap());
    let got = s.get_claim(qa, &c.id).await.unwrap().unwrap();
    assert_eq!(got.ttl, 200);
    assert_eq!(got.updated, clock.now(), "age resets on renew");
    assert_eq!(got.expires, clock.now() + 200_000);
    assert_eq!(got.messages.len(), 1);
    assert_eq!(
        got.messages[0].ttl, 300,
        "lifetime extension re-applied with the new grace"
    );
    assert_eq!(
        got.messages[0].claim_count, 1,
        "renewal keeps the claim counter"
    );
    clock.advance_secs(199);
    assert!(s
        .create_claim(qa, claim(60, 60, 1))
        .await
        .unwrap()
        .is_none());
    clock.advance_secs(1);
    assert!(s
        .create_claim(qa, claim(60, 60, 1))
        .await
        .unwrap()
        .is_some());
    assert!(!s
        .renew_claim(qa, "0123456789abcdef0123456789abcdef", 60, 60)
        .await
        .unwrap());
}

pub async fn release_makes_messages_claimable(h: &dyn Harness) {
    let Env { s, .. } = env(h).await;
    let qa = q("p", "release");
    post_n(&s, qa, 2).await;
    let c = s
        .create_claim(qa, claim(600, 60, 2))
        .await
        .unwrap()
        .unwrap();
    s.release_claim(qa, &c.id).await.unwrap();
    assert!(s.get_claim(qa, &c.id).await.unwrap().is_none());
    let c2 = s
        .create_claim(qa, claim(600, 60, 2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c2.messages.len(), 2);
    s.release_claim(qa, "0123456789abcdef0123456789abcdef")
        .await
        .unwrap();
    s.release_claim(q("p", "nope"), &c2.id).await.unwrap();
}

pub async fn delayed_messages_wait(h: &dyn Harness) {
    let Env { s, clock } = env(h).await;
    let qa = q("p", "delay");
    let ids = s
        .post_messages(qa, C1, vec![delayed(json!("later"), 600, 30)])
        .await
        .unwrap();
    assert!(s
        .create_claim(qa, claim(60, 60, 5))
        .await
        .unwrap()
        .is_none());
    assert!(s.pop_messages(qa, 5).await.unwrap().is_empty());
    assert_eq!(
        s.get_messages(qa, &ids).await.unwrap().len(),
        1,
        "get by id returns delayed"
    );
    clock.advance_secs(30);
    assert!(s
        .create_claim(qa, claim(60, 60, 5))
        .await
        .unwrap()
        .is_some());
}

pub async fn projects_are_isolated(h: &dyn Harness) {
    let Env { s, .. } = env(h).await;
    let a = q("project-a", "shared");
    let b = q("project-b", "shared");
    let ids = post_n(&s, a, 3).await;
    assert!(s.list_messages(b, &all(10)).await.unwrap().is_empty());
    assert!(s.get_messages(b, &ids).await.unwrap().is_empty());
    assert!(s
        .create_claim(b, claim(60, 60, 10))
        .await
        .unwrap()
        .is_none());
    assert!(s.pop_messages(b, 10).await.unwrap().is_empty());
    s.delete_messages(b, &ids, None).await.unwrap();
    for id in &ids {
        s.delete_message(b, id, None).await.unwrap();
    }
    s.purge_messages(b).await.unwrap();
    s.delete_queue(b).await.unwrap();
    assert_eq!(s.queue_stats(b).await.unwrap().total, 0);
    assert_eq!(
        s.list_messages(a, &all(10)).await.unwrap().len(),
        3,
        "A untouched"
    );
    let c = s.create_claim(a, claim(60, 60, 1)).await.unwrap().unwrap();
    assert!(s.get_claim(b, &c.id).await.unwrap().is_none());
    assert!(!s.renew_claim(b, &c.id, 60, 60).await.unwrap());
    s.release_claim(b, &c.id).await.unwrap();
    assert!(
        s.get_claim(a, &c.id).await.unwrap().is_some(),
        "B cannot release A's claim"
    );
}
