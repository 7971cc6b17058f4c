//! Conformance cases of dead-letter queues (messages moved after too many claims) and of
//! redrive (moving them back).

use serde_json::json;

use super::{all, bodies, claim, claim_dlq, env, msg, q, Env, Harness, C1};
use crate::clock::Clock;

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
