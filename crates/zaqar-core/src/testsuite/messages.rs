//! Conformance cases of messages: posting, listing and paging, reading by id, expiry, deleting
//! (by id, in bulk, by pop), stats, purge, and the flags stored with a message.

use std::collections::HashSet;

use serde_json::{json, Map};

use super::{all, bodies, claim, delayed, env, msg, post_n, q, Env, Harness, C1, C2};
use crate::error::Error;
use crate::model::ListQuery;

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
