//! Conformance cases of `QueueStore::project_bytes`: the stored body bytes of a project's
//! unexpired messages, kept by every driver as messages come and go.

use crate::model::NewMessage;
use serde_json::json;

use super::{claim, claim_dlq, env, msg, q, Env, Harness, C1};

/// A message whose body is exactly `n` bytes of JSON text (a string of `n - 2` letters).
fn sized(n: usize, ttl: i64) -> NewMessage {
    assert!(n >= 2);
    msg(json!("b".repeat(n - 2)), ttl)
}

pub async fn project_bytes_follow_posts_and_removals(h: &dyn Harness) {
    let Env { s, .. } = env(h).await;
    let (qa, qb) = (q("p", "bytes-a"), q("p", "bytes-b"));
    assert_eq!(s.project_bytes("p").await.unwrap(), 0, "nothing stored yet");
    let a = s
        .post_messages(qa, C1, (0..4).map(|_| sized(100, 3600)).collect())
        .await
        .unwrap();
    s.post_messages(
        qb,
        C1,
        vec![sized(50, 3600), sized(70, 3600), sized(30, 3600)],
    )
    .await
    .unwrap();
    assert_eq!(s.project_bytes("p").await.unwrap(), 550);
    // Bulk delete (a repeated id counts once; unknown ids nothing).
    s.delete_messages(qa, &[a[0].clone(), a[0].clone(), "ffff".into()], None)
        .await
        .unwrap();
    assert_eq!(s.project_bytes("p").await.unwrap(), 450);
    s.delete_message(qa, &a[1], None).await.unwrap();
    s.delete_message(qa, &a[1], None).await.unwrap(); // already gone
    assert_eq!(s.project_bytes("p").await.unwrap(), 350);
    // Pop takes the oldest: 50 bytes.
    assert_eq!(s.pop_messages(qb, 1).await.unwrap().len(), 1);
    assert_eq!(s.project_bytes("p").await.unwrap(), 300);
    // Deleting with a claim; releasing and renewing change nothing.
    let c = s.create_claim(qb, claim(60, 60, 1)).await.unwrap().unwrap();
    assert!(s.renew_claim(qb, &c.id, 120, 60).await.unwrap());
    assert_eq!(s.project_bytes("p").await.unwrap(), 300);
    s.delete_message(qb, &c.messages[0].id, Some(&c.id))
        .await
        .unwrap();
    assert_eq!(s.project_bytes("p").await.unwrap(), 230);
    let c = s.create_claim(qb, claim(60, 60, 1)).await.unwrap().unwrap();
    s.release_claim(qb, &c.id).await.unwrap();
    assert_eq!(s.project_bytes("p").await.unwrap(), 230);
    // Purge and queue deletion remove the rest; a re-created queue starts from nothing.
    s.purge_messages(qa).await.unwrap();
    assert_eq!(s.project_bytes("p").await.unwrap(), 30);
    s.delete_queue(qb).await.unwrap();
    assert_eq!(s.project_bytes("p").await.unwrap(), 0);
    s.post_messages(qb, C1, vec![sized(10, 3600)])
        .await
        .unwrap();
    assert_eq!(s.project_bytes("p").await.unwrap(), 10);
}

pub async fn project_bytes_exclude_expired_messages(h: &dyn Harness) {
    let Env { s, clock } = env(h).await;
    let qa = q("p", "bytes-ttl");
    s.post_messages(qa, C1, vec![sized(100, 60), sized(40, 600)])
        .await
        .unwrap();
    clock.advance_secs(59);
    assert_eq!(s.project_bytes("p").await.unwrap(), 140);
    clock.advance_secs(2);
    assert_eq!(s.project_bytes("p").await.unwrap(), 40, "expired at 60 s");
    // A claim that outlives a message extends its life, and its bytes with it.
    s.post_messages(qa, C1, vec![sized(200, 60)]).await.unwrap();
    let c = s
        .create_claim(qa, claim(100, 30, 10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.messages.len(), 2);
    clock.advance_secs(62);
    assert_eq!(
        s.project_bytes("p").await.unwrap(),
        240,
        "kept by the claim"
    );
    // Renewed: the claim now ends 200 s from here, the message 30 s after that.
    assert!(s.renew_claim(qa, &c.id, 200, 30).await.unwrap());
    clock.advance_secs(190);
    assert_eq!(s.project_bytes("p").await.unwrap(), 240);
    clock.advance_secs(42);
    assert_eq!(
        s.project_bytes("p").await.unwrap(),
        40,
        "claim and grace over"
    );
    clock.advance_secs(246);
    assert_eq!(s.project_bytes("p").await.unwrap(), 0, "all expired");
    // Removing expired messages does not count them twice.
    s.purge_messages(qa).await.unwrap();
    assert_eq!(s.project_bytes("p").await.unwrap(), 0);
    s.post_messages(qa, C1, vec![sized(5, 60)]).await.unwrap();
    assert_eq!(s.project_bytes("p").await.unwrap(), 5);
}

pub async fn project_bytes_stay_with_moved_messages(h: &dyn Harness) {
    let Env { s, clock } = env(h).await;
    let qa = q("p", "bytes-src");
    s.post_messages(qa, C1, vec![sized(100, 3600), sized(20, 3600)])
        .await
        .unwrap();
    s.create_claim(qa, claim_dlq(60, 2, 1, "bytes-dlq", Some(120)))
        .await
        .unwrap()
        .unwrap();
    clock.advance_secs(61);
    // Both move to the dead-letter queue, with its TTL of 120 s.
    assert!(s
        .create_claim(qa, claim_dlq(60, 2, 1, "bytes-dlq", Some(120)))
        .await
        .unwrap()
        .is_none());
    assert_eq!(s.project_bytes("p").await.unwrap(), 120);
    let back = s
        .redrive_messages(q("p", "bytes-dlq"), None, None)
        .await
        .unwrap();
    assert_eq!(back.moved, 2);
    assert_eq!(s.project_bytes("p").await.unwrap(), 120);
    clock.advance_secs(121);
    assert_eq!(
        s.project_bytes("p").await.unwrap(),
        0,
        "they expire by the dead-letter TTL"
    );
}

pub async fn project_bytes_are_per_project(h: &dyn Harness) {
    let Env { s, .. } = env(h).await;
    s.post_messages(q("p", "x"), C1, vec![sized(10, 3600)])
        .await
        .unwrap();
    s.post_messages(q("p2", "x"), C1, vec![sized(20, 3600)])
        .await
        .unwrap();
    s.post_messages(q("p\u{1}topics", "x"), C1, vec![sized(40, 3600)])
        .await
        .unwrap();
    assert_eq!(s.project_bytes("p").await.unwrap(), 10);
    assert_eq!(s.project_bytes("p2").await.unwrap(), 20);
    assert_eq!(s.project_bytes("p\u{1}topics").await.unwrap(), 40);
    assert_eq!(s.project_bytes("").await.unwrap(), 0);
    assert_eq!(s.project_bytes("nobody").await.unwrap(), 0);
    s.delete_queue(q("p2", "x")).await.unwrap();
    assert_eq!(s.project_bytes("p").await.unwrap(), 10);
}
