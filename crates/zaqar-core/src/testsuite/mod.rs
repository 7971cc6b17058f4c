//! The storage conformance suite: one set of cases, generic over the storage traits, run
//! unchanged against every driver. A driver's test file implements [`Harness`] and invokes
//! [`conformance_tests!`], which expands to one `#[tokio::test]` per case.
//!
//! Time is a [`ManualClock`]: expiry, grace and delay are tested by moving the clock.
#![allow(dead_code)]

mod bytes;
pub use bytes::*;

use std::collections::HashSet;
use std::sync::Arc;

use crate::clock::{Clock, ManualClock};
use crate::error::Error;
use crate::model::{ClaimParams, DeadLetter, ListQuery, NewMessage, QueueFilter, QueueRef};
use crate::store::DataStore;
use serde_json::value::RawValue;
use serde_json::{json, Map};

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

// ----- queues -----------------------------------------------------------------------------

pub async fn queue_create_get_delete(h: &dyn Harness) {
    let Env { s, .. } = env(h).await;
    let qa = q("p", "alpha");
    assert!(s.get_queue(qa).await.unwrap().is_none());
    let meta: Map<_, _> = json!({"k": "v"}).as_object().unwrap().clone();
    assert!(s.create_queue(qa, meta.clone()).await.unwrap());
    let other: Map<_, _> = json!({"k": "other"}).as_object().unwrap().clone();
    assert!(!s.create_queue(qa, other).await.unwrap(), "second create");
    let info = s.get_queue(qa).await.unwrap().unwrap();
    assert_eq!(info.metadata, meta, "existing metadata untouched");
    assert_eq!(info.name, "alpha");
    post_n(&s, qa, 3).await;
    s.delete_queue(qa).await.unwrap();
    assert!(s.get_queue(qa).await.unwrap().is_none());
    assert!(s.list_messages(qa, &all(10)).await.unwrap().is_empty());
    s.delete_queue(qa).await.unwrap(); // deleting a missing queue is fine
}

pub async fn queue_metadata_compare_and_set(h: &dyn Harness) {
    let Env { s, .. } = env(h).await;
    let qa = q("p", "cas");
    let err = s
        .replace_queue_metadata(qa, 1, Map::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    s.create_queue(qa, Map::new()).await.unwrap();
    let v = s.get_queue(qa).await.unwrap().unwrap().version;
    let m1: Map<_, _> = json!({"a": 1}).as_object().unwrap().clone();
    assert!(s.replace_queue_metadata(qa, v, m1.clone()).await.unwrap());
    let m2: Map<_, _> = json!({"a": 2}).as_object().unwrap().clone();
    assert!(
        !s.replace_queue_metadata(qa, v, m2).await.unwrap(),
        "stale version"
    );
    let info = s.get_queue(qa).await.unwrap().unwrap();
    assert_eq!(info.metadata, m1);
    assert_ne!(info.version, v);
}

pub async fn queue_listing(h: &dyn Harness) {
    let Env { s, .. } = env(h).await;
    for name in ["b", "a", "c-1", "C", "a.b", "zz"] {
        let meta = json!({"len": name.len(), "tag": if name.starts_with('a') {"x"} else {"y"}});
        s.create_queue(q("p1", name), meta.as_object().unwrap().clone())
            .await
            .unwrap();
    }
    s.create_queue(q("p2", "a"), Map::new()).await.unwrap();
    s.create_queue(q("p", "a"), Map::new()).await.unwrap();
    let none = QueueFilter::default();
    let names = |v: Vec<crate::model::QueueInfo>| v.into_iter().map(|i| i.name).collect::<Vec<_>>();
    let all_p1 = names(s.list_queues("p1", None, 100, &none).await.unwrap());
    assert_eq!(
        all_p1,
        vec!["C", "a", "a.b", "b", "c-1", "zz"],
        "byte order, own project only"
    );
    let page1 = names(s.list_queues("p1", None, 2, &none).await.unwrap());
    assert_eq!(page1, vec!["C", "a"]);
    let page2 = names(s.list_queues("p1", Some("a"), 2, &none).await.unwrap());
    assert_eq!(page2, vec!["a.b", "b"]);
    let last = names(s.list_queues("p1", Some("zz"), 2, &none).await.unwrap());
    assert!(last.is_empty());
    let f = QueueFilter {
        name_contains: Some("a".into()),
        metadata: vec![],
    };
    assert_eq!(
        names(s.list_queues("p1", None, 10, &f).await.unwrap()),
        vec!["a", "a.b"]
    );
    let f = QueueFilter {
        name_contains: None,
        metadata: vec![("tag".into(), json!("y")), ("len".into(), json!(1))],
    };
    assert_eq!(
        names(s.list_queues("p1", None, 10, &f).await.unwrap()),
        vec!["C", "b"]
    );
    let f = QueueFilter {
        name_contains: None,
        metadata: vec![("tag".into(), json!("y"))],
    };
    // The limit applies after filtering.
    assert_eq!(
        names(s.list_queues("p1", None, 2, &f).await.unwrap()),
        vec!["C", "b"]
    );
    assert_eq!(s.count_queues("p1").await.unwrap(), 6);
    assert_eq!(s.count_queues("p2").await.unwrap(), 1);
    assert_eq!(s.count_queues("nobody").await.unwrap(), 0);
    // A project whose id is a prefix of another's sees only its own queues.
    assert_eq!(
        names(s.list_queues("p", None, 10, &none).await.unwrap()),
        vec!["a"]
    );
}

// ----- messages ---------------------------------------------------------------------------

pub async fn post_preserves_order_and_markers(h: &dyn Harness) {
    let Env { s, .. } = env(h).await;
    let qa = q("p", "fifo");
    let ids1 = post_n(&s, qa, 3).await;
    let ids2 = s
        .post_messages(qa, C2, vec![msg(json!("x"), 60), msg(json!(null), 60)])
        .await
        .unwrap();
    assert_eq!(ids1.len(), 3);
    assert_eq!(ids2.len(), 2);
    let all_ids: HashSet<_> = ids1.iter().chain(ids2.iter()).collect();
    assert_eq!(all_ids.len(), 5, "ids are unique");
    let listed = s.list_messages(qa, &all(20)).await.unwrap();
    let got: Vec<_> = listed.iter().map(|m| m.id.clone()).collect();
    let want: Vec<_> = ids1.iter().chain(ids2.iter()).cloned().collect();
    assert_eq!(got, want, "FIFO order");
    let markers: Vec<u64> = listed.iter().map(|m| m.marker).collect();
    assert!(
        markers.windows(2).all(|w| w[1] == w[0] + 1),
        "consecutive markers {markers:?}"
    );
    assert_eq!(bodies(&listed)[3], "\"x\"");
    assert_eq!(bodies(&listed)[4], "null");
    assert_eq!(listed[3].client_id, C2);
    assert_eq!(listed[3].ttl, 60);
    assert!(
        s.get_queue(qa).await.unwrap().is_some(),
        "posting creates the queue"
    );
}

pub async fn listing_filters_and_paging(h: &dyn Harness) {
    let Env { s, clock } = env(h).await;
    let qa = q("p", "list");
    s.post_messages(qa, C1, vec![msg(json!(1), 600), msg(json!(2), 600)])
        .await
        .unwrap();
    s.post_messages(
        qa,
        C2,
        vec![msg(json!(3), 600), delayed(json!(4), 600, 120)],
    )
    .await
    .unwrap();
    s.post_messages(qa, C2, vec![msg(json!(5), 600), msg(json!(6), 600)])
        .await
        .unwrap();
    s.create_claim(qa, claim(60, 60, 1)).await.unwrap().unwrap(); // claims message 1
    let base = ListQuery {
        marker: None,
        limit: 10,
        exclude_client: None,
        include_claimed: false,
        include_delayed: false,
    };
    let got = bodies(&s.list_messages(qa, &base).await.unwrap());
    assert_eq!(got, vec!["2", "3", "5", "6"], "claimed and delayed hidden");
    let echo_off = ListQuery {
        exclude_client: Some(C1.into()),
        ..base.clone()
    };
    assert_eq!(
        bodies(&s.list_messages(qa, &echo_off).await.unwrap()),
        vec!["3", "5", "6"]
    );
    let claimed = ListQuery {
        include_claimed: true,
        ..base.clone()
    };
    assert_eq!(
        bodies(&s.list_messages(qa, &claimed).await.unwrap()),
        vec!["1", "2", "3", "5", "6"]
    );
    let everything = ListQuery {
        include_claimed: true,
        include_delayed: true,
        ..base.clone()
    };
    assert_eq!(
        bodies(&s.list_messages(qa, &everything).await.unwrap()),
        vec!["1", "2", "3", "4", "5", "6"]
    );
    // Limit applies after filtering; paging with markers.
    let page = ListQuery {
        limit: 2,
        ..base.clone()
    };
    let p1 = s.list_messages(qa, &page).await.unwrap();
    assert_eq!(bodies(&p1), vec!["2", "3"]);
    let p2 = s
        .list_messages(
            qa,
            &ListQuery {
                marker: Some(p1[1].marker),
                ..page.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(bodies(&p2), vec!["5", "6"]);
    let p3 = s
        .list_messages(
            qa,
            &ListQuery {
                marker: Some(p2[1].marker),
                ..page.clone()
            },
        )
        .await
        .unwrap();
    assert!(p3.is_empty());
    // After the delay the message is listed by default.
    clock.advance_secs(121);
    assert!(bodies(&s.list_messages(qa, &base).await.unwrap()).contains(&"4".to_string()));
    // Missing queue: empty.
    assert!(s
        .list_messages(q("p", "nope"), &base)
        .await
        .unwrap()
        .is_empty());
}

pub async fn get_by_ids(h: &dyn Harness) {
    let Env { s, .. } = env(h).await;
    let qa = q("p", "ids");
    let ids = post_n(&s, qa, 3).await;
    let got = s
        .get_messages(
            qa,
            &[
                ids[2].clone(),
                "bogus".into(),
                ids[0].clone(),
                "0".repeat(32),
            ],
        )
        .await
        .unwrap();
    let mut got_ids: Vec<_> = got.iter().map(|m| m.id.clone()).collect();
    got_ids.sort();
    let mut want = vec![ids[0].clone(), ids[2].clone()];
    want.sort();
    assert_eq!(got_ids, want);
    assert!(
        s.get_messages(q("other", "ids"), &ids)
            .await
            .unwrap()
            .is_empty(),
        "other project"
    );
    assert!(
        s.get_messages(q("p", "ids2"), &ids)
            .await
            .unwrap()
            .is_empty(),
        "other queue"
    );
}

pub async fn batch_is_atomic_for_readers(h: &dyn Harness) {
    let Env { s, .. } = env(h).await;
    let qa = q("p", "atomic");
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            for _ in 0..30 {
                let batch = (0..10).map(|i| msg(json!(i), 600)).collect();
                s.post_messages(q("p", "atomic"), C1, batch).await.unwrap();
            }
        })
    };
    let mut observations = 0;
    while !writer.is_finished() {
        let n = s.queue_stats(qa).await.unwrap().total;
        assert_eq!(n % 10, 0, "a reader saw a partial batch: {n}");
        observations += 1;
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();
    assert!(observations > 0);
    assert_eq!(s.queue_stats(qa).await.unwrap().total, 300);
}

pub async fn expiry_hides_messages_everywhere(h: &dyn Harness) {
    let Env { s, clock } = env(h).await;
    let qa = q("p", "ttl");
    let short = s
        .post_messages(qa, C1, vec![msg(json!("short"), 60)])
        .await
        .unwrap();
    let long = s
        .post_messages(qa, C1, vec![msg(json!("long"), 120)])
        .await
        .unwrap();
    clock.advance_secs(59);
    assert_eq!(s.list_messages(qa, &all(10)).await.unwrap().len(), 2);
    clock.advance_secs(1);
    assert_eq!(
        bodies(&s.list_messages(qa, &all(10)).await.unwrap()),
        vec!["\"long\""]
    );
    assert!(s.get_messages(qa, &short).await.unwrap().is_empty());
    assert_eq!(s.queue_stats(qa).await.unwrap().total, 1);
    let c = s
        .create_claim(qa, claim(60, 60, 10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.messages.len(), 1);
    assert_eq!(c.messages[0].id, long[0]);
    s.delete_message(qa, &short[0], None).await.unwrap(); // expired = gone = 204
    clock.advance_secs(10_000);
    assert!(s.list_messages(qa, &all(10)).await.unwrap().is_empty());
    assert!(s.pop_messages(qa, 10).await.unwrap().is_empty());
    assert_eq!(s.queue_stats(qa).await.unwrap(), Default::default());
}

pub async fn delete_messages_in_bulk(h: &dyn Harness) {
    let Env { s, clock } = env(h).await;
    let qa = q("p", "bulk");
    let ids = post_n(&s, qa, 4).await;
    let c = s.create_claim(qa, claim(60, 60, 1)).await.unwrap().unwrap();
    assert_eq!(c.messages[0].id, ids[0]);
    // Without claim ids, claimed messages are deleted too; unknown ids are ignored.
    s.delete_messages(qa, &[ids[0].clone(), ids[1].clone(), "nope".into()], None)
        .await
        .unwrap();
    assert_eq!(s.list_messages(qa, &all(10)).await.unwrap().len(), 2);
    // With claim ids: every targeted message must be held by one of them.
    let c2 = s.create_claim(qa, claim(60, 60, 1)).await.unwrap().unwrap();
    assert_eq!(c2.messages[0].id, ids[2]);
    let err = s
        .delete_messages(
            qa,
            &[ids[2].clone(), ids[3].clone()],
            Some(std::slice::from_ref(&c2.id)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DeleteForbidden(_)), "{err:?}");
    assert_eq!(
        s.list_messages(qa, &all(10)).await.unwrap().len(),
        2,
        "nothing deleted"
    );
    s.delete_messages(qa, &[ids[2].clone()], Some(std::slice::from_ref(&c2.id)))
        .await
        .unwrap();
    assert_eq!(s.list_messages(qa, &all(10)).await.unwrap().len(), 1);
    clock.advance_secs(1);
    s.delete_messages(q("p", "missing"), &ids, None)
        .await
        .unwrap();
}

pub async fn pop_takes_oldest_free_messages(h: &dyn Harness) {
    let Env { s, clock } = env(h).await;
    let qa = q("p", "pop");
    s.post_messages(qa, C1, vec![msg(json!(1), 600), msg(json!(2), 600)])
        .await
        .unwrap();
    s.post_messages(
        qa,
        C1,
        vec![
            delayed(json!(3), 600, 60),
            msg(json!(4), 600),
            msg(json!(5), 600),
        ],
    )
    .await
    .unwrap();
    let c = s.create_claim(qa, claim(60, 60, 1)).await.unwrap().unwrap();
    assert_eq!(c.messages[0].body.get(), "1");
    clock.advance_secs(5);
    let popped = s.pop_messages(qa, 2).await.unwrap();
    assert_eq!(bodies(&popped), vec!["2", "4"], "skips claimed and delayed");
    assert_eq!(popped[0].claim_count, 0);
    let rest = s.list_messages(qa, &all(10)).await.unwrap();
    assert_eq!(
        bodies(&rest),
        vec!["1", "3", "5"],
        "popped messages are gone"
    );
    assert!(s.pop_messages(q("p", "empty"), 5).await.unwrap().is_empty());
    // A message whose claim expired can be popped, and shows its stale claim.
    clock.advance_secs(60);
    let popped = s.pop_messages(qa, 1).await.unwrap();
    assert_eq!(bodies(&popped), vec!["1"]);
    assert_eq!(
        popped[0].claim.as_ref().map(|c| c.id.as_str()),
        Some(c.id.as_str())
    );
    assert_eq!(popped[0].claim_count, 1);
}

pub async fn single_delete_claim_rules(h: &dyn Harness) {
    let Env { s, clock } = env(h).await;
    let qa = q("p", "del");
    let ids = post_n(&s, qa, 4).await;
    // Unclaimed message: deleted without a claim id.
    s.delete_message(qa, &ids[0], None).await.unwrap();
    assert!(s.get_messages(qa, &ids[..1]).await.unwrap().is_empty());
    // Unclaimed message with a claim id: 400.
    let fake = "0123456789abcdef0123456789abcdef";
    let e = s.delete_message(qa, &ids[1], Some(fake)).await.unwrap_err();
    assert!(matches!(e, Error::DeleteBadRequest(_)), "{e:?}");
    let c1 = s.create_claim(qa, claim(60, 60, 1)).await.unwrap().unwrap();
    assert_eq!(c1.messages[0].id, ids[1]);
    let c2 = s.create_claim(qa, claim(60, 60, 1)).await.unwrap().unwrap();
    assert_eq!(c2.messages[0].id, ids[2]);
    // Claimed, no claim id: 403.
    let e = s.delete_message(qa, &ids[1], None).await.unwrap_err();
    assert!(matches!(e, Error::DeleteForbidden(_)), "{e:?}");
    // Malformed claim id: 400.
    let e = s
        .delete_message(qa, &ids[1], Some("nonsense"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::DeleteBadRequest(_)), "{e:?}");
    // Claimed by another live claim: 403.
    let e = s
        .delete_message(qa, &ids[1], Some(&c2.id))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::DeleteForbidden(_)), "{e:?}");
    // Claimed by another claim, given claim unknown: 400.
    let e = s.delete_message(qa, &ids[1], Some(fake)).await.unwrap_err();
    assert!(matches!(e, Error::DeleteBadRequest(_)), "{e:?}");
    // Right claim: deleted, and gone from the claim.
    s.delete_message(qa, &ids[1], Some(&c1.id)).await.unwrap();
    assert!(s.get_messages(qa, &ids[1..2]).await.unwrap().is_empty());
    assert!(s
        .get_claim(qa, &c1.id)
        .await
        .unwrap()
        .unwrap()
        .messages
        .is_empty());
    // Released claim: the message is no longer claimed → 400 with that claim id.
    s.release_claim(qa, &c2.id).await.unwrap();
    let e = s
        .delete_message(qa, &ids[2], Some(&c2.id))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::DeleteBadRequest(_)), "{e:?}");
    // Expired claim: same.
    let c3 = s.create_claim(qa, claim(60, 60, 1)).await.unwrap().unwrap();
    clock.advance_secs(61);
    let e = s
        .delete_message(qa, &c3.messages[0].id, Some(&c3.id))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::DeleteBadRequest(_)), "{e:?}");
    s.delete_message(qa, &c3.messages[0].id, None)
        .await
        .unwrap();
    // Missing message, missing queue, malformed id: no error.
    s.delete_message(qa, &ids[0], Some(fake)).await.unwrap();
    s.delete_message(q("p", "nope"), &ids[3], None)
        .await
        .unwrap();
    s.delete_message(qa, "garbage", None).await.unwrap();
}

pub async fn stats_are_exact(h: &dyn Harness) {
    let Env { s, clock } = env(h).await;
    let qa = q("p", "stats");
    assert_eq!(s.queue_stats(qa).await.unwrap(), Default::default());
    let ids = post_n(&s, qa, 3).await;
    clock.advance_secs(10);
    let later = s
        .post_messages(qa, C1, vec![delayed(json!("d"), 600, 100)])
        .await
        .unwrap();
    s.create_claim(qa, claim(60, 60, 2)).await.unwrap().unwrap();
    let st = s.queue_stats(qa).await.unwrap();
    assert_eq!((st.total, st.claimed, st.delayed), (4, 2, 1));
    let oldest = st.oldest.unwrap();
    assert_eq!(oldest.id, ids[0]);
    let newest = st.newest.unwrap();
    assert_eq!(newest.id, later[0]);
    assert_eq!(newest.created - oldest.created, 10_000);
}

pub async fn purge_removes_every_message(h: &dyn Harness) {
    let Env { s, .. } = env(h).await;
    let qa = q("p", "purge");
    let meta: Map<_, _> = json!({"keep": true}).as_object().unwrap().clone();
    s.create_queue(qa, meta.clone()).await.unwrap();
    post_n(&s, qa, 5).await;
    let c = s.create_claim(qa, claim(60, 60, 2)).await.unwrap().unwrap();
    s.purge_messages(qa).await.unwrap();
    assert_eq!(
        s.queue_stats(qa).await.unwrap().total,
        0,
        "claimed ones too"
    );
    assert!(s
        .get_claim(qa, &c.id)
        .await
        .unwrap()
        .map(|c| c.messages.is_empty())
        .unwrap_or(true));
    assert_eq!(s.get_queue(qa).await.unwrap().unwrap().metadata, meta);
    // The queue keeps working after a purge.
    post_n(&s, qa, 1).await;
    assert_eq!(s.queue_stats(qa).await.unwrap().total, 1);
}

pub async fn recreated_queue_does_not_resurrect_ids(h: &dyn Harness) {
    let Env { s, .. } = env(h).await;
    let qa = q("p", "again");
    let old = post_n(&s, qa, 2).await;
    s.delete_queue(qa).await.unwrap();
    let new = post_n(&s, qa, 2).await;
    assert!(s.get_messages(qa, &old).await.unwrap().is_empty());
    assert_eq!(s.get_messages(qa, &new).await.unwrap().len(), 2);
}

// ----- claims -----------------------------------------------------------------------------

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

// ----- message lifecycle ------------------------------------------------------------------

pub async fn stored_flags_round_trip(h: &dyn Harness) {
    let Env { s, .. } = env(h).await;
    let qa = q("p", "flags");
    let mut m = msg(json!("zqenc:v1:k:AAAA"), 600);
    m.encrypted = true;
    m.checksum = Some("MD5:0123".into());
    let ids = s
        .post_messages(qa, C1, vec![m, msg(json!(2), 600)])
        .await
        .unwrap();
    let got = s.get_messages(qa, &ids).await.unwrap();
    let first = got.iter().find(|m| m.id == ids[0]).unwrap();
    assert!(first.encrypted);
    assert_eq!(first.checksum.as_deref(), Some("MD5:0123"));
    assert_eq!(first.moved_from, None);
    let second = got.iter().find(|m| m.id == ids[1]).unwrap();
    assert!(!second.encrypted);
    assert_eq!(second.checksum, None);
}

pub async fn dead_letter_after_max_claims(h: &dyn Harness) {
    let Env { s, clock } = env(h).await;
    let qa = q("p", "work");
    let dlq = q("p", "work-dlq");
    let ids = s
        .post_messages(
            qa,
            C1,
            vec![msg(json!("poison"), 3600), msg(json!("ok"), 3600)],
        )
        .await
        .unwrap();
    // A message may be claimed twice; the third attempt moves it.
    for round in 1..=2u32 {
        let c = s
            .create_claim(qa, claim_dlq(60, 1, 2, "work-dlq", None))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.messages[0].id, ids[0]);
        assert_eq!(c.messages[0].claim_count, round);
        if round == 1 {
            // Renewal keeps the counter.
            assert!(s.renew_claim(qa, &c.id, 60, 60).await.unwrap());
        }
        clock.advance_secs(61);
    }
    assert!(
        s.get_queue(dlq).await.unwrap().is_none(),
        "not created before a move"
    );
    let c = s
        .create_claim(qa, claim_dlq(60, 1, 2, "work-dlq", None))
        .await
        .unwrap();
    assert!(c.is_none(), "every selected message moved: no claim");
    assert!(
        s.get_messages(qa, &ids[..1]).await.unwrap().is_empty(),
        "gone from the source"
    );
    let moved = s.list_messages(dlq, &all(10)).await.unwrap();
    assert_eq!(moved.len(), 1, "visible in the DLQ at once");
    assert_eq!(moved[0].body.get(), "\"poison\"");
    assert_eq!(moved[0].moved_from.as_deref(), Some("work"));
    assert_eq!(moved[0].claim_count, 0);
    assert!(
        moved[0].active_claim(clock.now()).is_none(),
        "not claimed in the DLQ"
    );
    assert!(
        s.get_queue(dlq).await.unwrap().is_some(),
        "the DLQ was created"
    );
    // The other message is claimable in the source as usual.
    let c = s
        .create_claim(qa, claim_dlq(60, 5, 2, "work-dlq", None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.messages.len(), 1);
    assert_eq!(c.messages[0].id, ids[1]);
    // And the moved message can be claimed in the DLQ.
    assert!(s
        .create_claim(dlq, claim(60, 60, 5))
        .await
        .unwrap()
        .is_some());
}

pub async fn dead_letter_mixed_batch_and_ttl(h: &dyn Harness) {
    let Env { s, clock } = env(h).await;
    let qa = q("p", "mixed");
    let dlq = q("p", "mixed-dlq");
    s.post_messages(qa, C1, vec![msg(json!(1), 3600)])
        .await
        .unwrap();
    s.create_claim(qa, claim_dlq(60, 1, 1, "mixed-dlq", Some(120)))
        .await
        .unwrap()
        .unwrap();
    clock.advance_secs(61);
    s.post_messages(qa, C1, vec![msg(json!(2), 3600)])
        .await
        .unwrap();
    // The batch selects both; message 1 moves, message 2 is claimed.
    let c = s
        .create_claim(qa, claim_dlq(60, 5, 1, "mixed-dlq", Some(120)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.messages.len(), 1);
    assert_eq!(c.messages[0].body.get(), "2");
    let moved = s.list_messages(dlq, &all(10)).await.unwrap();
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].ttl, 120, "dead-letter TTL applies");
    assert_eq!(moved[0].expires, clock.now() + 120_000);
    clock.advance_secs(120);
    assert!(
        s.list_messages(dlq, &all(10)).await.unwrap().is_empty(),
        "expires by the new TTL"
    );
}

pub async fn dead_letter_keeps_remaining_life_without_ttl(h: &dyn Harness) {
    let Env { s, clock } = env(h).await;
    let qa = q("p", "life");
    s.post_messages(qa, C1, vec![msg(json!(1), 600)])
        .await
        .unwrap();
    s.create_claim(qa, claim_dlq(60, 1, 1, "life-dlq", None))
        .await
        .unwrap()
        .unwrap();
    clock.advance_secs(100);
    assert!(s
        .create_claim(qa, claim_dlq(60, 1, 1, "life-dlq", None))
        .await
        .unwrap()
        .is_none());
    let moved = s.list_messages(q("p", "life-dlq"), &all(10)).await.unwrap();
    assert_eq!(moved[0].expires, moved[0].created + 600_000);
}

pub async fn redrive_returns_messages_to_their_source(h: &dyn Harness) {
    let Env { s, clock } = env(h).await;
    let dlq = q("p", "r-dlq");
    for src in ["r-a", "r-b"] {
        s.post_messages(q("p", src), C1, vec![msg(json!(src), 3600)])
            .await
            .unwrap();
        s.create_claim(q("p", src), claim_dlq(60, 1, 1, "r-dlq", None))
            .await
            .unwrap();
    }
    clock.advance_secs(61);
    for src in ["r-a", "r-b"] {
        assert!(s
            .create_claim(q("p", src), claim_dlq(60, 1, 1, "r-dlq", None))
            .await
            .unwrap()
            .is_none());
    }
    // A message posted straight into the DLQ has no source.
    s.post_messages(dlq, C1, vec![msg(json!("orphan"), 3600)])
        .await
        .unwrap();
    assert_eq!(s.list_messages(dlq, &all(10)).await.unwrap().len(), 3);
    let out = s.redrive_messages(dlq, None, Some(1)).await.unwrap();
    assert_eq!(out.moved, 1);
    let out2 = s.redrive_messages(dlq, None, None).await.unwrap();
    assert_eq!((out2.moved, out2.skipped), (1, 1));
    let mut targets = out.targets.clone();
    targets.extend(out2.targets.clone());
    targets.sort();
    assert_eq!(targets, vec!["r-a", "r-b"]);
    for src in ["r-a", "r-b"] {
        let back = s.list_messages(q("p", src), &all(10)).await.unwrap();
        assert_eq!(back.len(), 1, "{src}");
        assert_eq!(back[0].body.get(), format!("\"{src}\""));
        assert_eq!(back[0].claim_count, 0, "fresh claim count");
        assert!(back[0].active_claim(clock.now()).is_none());
    }
    assert_eq!(
        bodies(&s.list_messages(dlq, &all(10)).await.unwrap()),
        vec!["\"orphan\""]
    );
    // With an explicit target every unclaimed message moves.
    let out = s
        .redrive_messages(dlq, Some("elsewhere"), None)
        .await
        .unwrap();
    assert_eq!((out.moved, out.skipped), (1, 0));
    assert_eq!(
        s.list_messages(q("p", "elsewhere"), &all(10))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(s.list_messages(dlq, &all(10)).await.unwrap().is_empty());
    // Claimed messages stay where they are.
    s.post_messages(dlq, C1, vec![msg(json!("held"), 3600)])
        .await
        .unwrap();
    s.create_claim(dlq, claim(60, 60, 1))
        .await
        .unwrap()
        .unwrap();
    let out = s
        .redrive_messages(dlq, Some("elsewhere"), None)
        .await
        .unwrap();
    assert_eq!(out.moved, 0);
}

// ----- subscriptions and the notification outbox -------------------------------------------

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

pub async fn subscriptions_crud_and_uniqueness(h: &dyn Harness) {
    use crate::model::{SubscriptionCreated, SubscriptionUpdate};
    let Env { s, clock } = env(h).await;
    let Some(st) = subs(&s) else { return };
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
    // Update: conflicts, ttl restart, options replace.
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
    // Expiry: the others (ttl 600, 500 s ago) expire before the updated one.
    clock.advance_secs(101);
    assert!(st.get_subscription("p", "q", &a).await.unwrap().is_none());
    assert!(st
        .get_subscription("p", "q", &ids[1])
        .await
        .unwrap()
        .is_some());
    let err = st
        .update_subscription(
            "p",
            "q",
            &a,
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

fn created_id(c: crate::model::SubscriptionCreated) -> String {
    match c {
        crate::model::SubscriptionCreated::New(id) => id,
        other => panic!("expected a new subscription, got {other:?}"),
    }
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

/// Expired subscriptions are invisible to every operation and drop out of pending batches;
/// their subscriber URI is free again.
pub async fn expired_subscriptions_are_invisible(h: &dyn Harness) {
    use crate::model::{SubscriptionCreated, SubscriptionUpdate};
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
