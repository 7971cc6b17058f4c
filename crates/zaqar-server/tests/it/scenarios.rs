//! Scenarios written once and run over every transport: HTTP, WebSocket with JSON text frames
//! and WebSocket with MessagePack binary frames. Both transports call the same service layer,
//! so the outcomes (statuses, ids, bodies, claims, stats) must agree; the few documented
//! differences of shape (spec §4.4) are normalised by `common::ws::Transport`.

use zaqar_testkit as common;

use common::ws::{Http, Kind, Op, Transport, Ws};
use common::TestServer;
use serde_json::json;

/// Runs a scenario over HTTP, WebSocket/JSON and WebSocket/MessagePack, each on a fresh server.
macro_rules! over_every_transport {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            use super::*;

            #[tokio::test]
            async fn http() {
                let s = TestServer::start().await;
                super::$scenario(&mut Http { s: &s }).await;
            }

            #[tokio::test]
            async fn websocket_json() {
                let s = TestServer::start().await;
                super::$scenario(&mut Ws::json(&s).await).await;
            }

            #[tokio::test]
            async fn websocket_msgpack() {
                let s = TestServer::start().await;
                super::$scenario(&mut Ws::msgpack(&s).await).await;
            }
        }
    )*};
}

over_every_transport!(
    queue_lifecycle,
    post_list_get,
    claim_renew_delete_release,
    claim_expiry,
    pop,
    stats_and_purge,
    bulk_delete,
    error_cases,
);

async fn post<T: Transport>(t: &mut T, queue: &str, bodies: &[serde_json::Value]) -> Vec<String> {
    let messages: Vec<_> = bodies
        .iter()
        .map(|b| json!({"ttl": 300, "body": b}))
        .collect();
    let out = t
        .call(Op::Post {
            queue,
            messages: json!(messages),
        })
        .await
        .expect(201);
    assert_eq!(out.ids.len(), bodies.len());
    out.ids
}

async fn list_all<T: Transport>(t: &mut T, queue: &str, include_claimed: bool) -> Vec<String> {
    t.call(Op::List {
        queue,
        echo: true,
        include_claimed,
        limit: Some(20),
    })
    .await
    .expect(200)
    .ids()
}

async fn stats<T: Transport>(t: &mut T, queue: &str) -> (u64, u64, u64) {
    let out = t.call(Op::Stats { queue }).await.expect(200);
    out.stats.expect("stats")
}

async fn queue_lifecycle<T: Transport>(t: &mut T) {
    let meta = json!({"description": "billing", "_default_message_ttl": 120});
    t.call(Op::CreateQueue {
        queue: "fruit",
        metadata: Some(meta),
    })
    .await
    .expect(201);
    // Existing: 204 and the metadata is left alone.
    t.call(Op::CreateQueue {
        queue: "fruit",
        metadata: Some(json!({"description": "other"})),
    })
    .await
    .expect(204);
    t.call(Op::CreateQueue {
        queue: "veg",
        metadata: None,
    })
    .await
    .expect(201);
    let got = t.call(Op::GetQueue { queue: "fruit" }).await.expect(200);
    assert_eq!(got.body["description"], "billing");
    assert_eq!(got.body["_default_message_ttl"], 120);
    match t.kind() {
        // HTTP shows the reserved defaults; WebSocket the stored metadata only (§4.4).
        Kind::Http => assert_eq!(got.body["_max_messages_post_size"], 262144),
        Kind::WebSocket => assert!(got.body.get("_max_messages_post_size").is_none()),
    }
    let names = t
        .call(Op::ListQueues {
            limit: None,
            detailed: false,
        })
        .await
        .expect(200)
        .names;
    assert_eq!(names, vec!["fruit", "veg"]);
    let page = t
        .call(Op::ListQueues {
            limit: Some(1),
            detailed: true,
        })
        .await
        .expect(200);
    assert_eq!(page.names, vec!["fruit"]);
    assert_eq!(page.body["queues"][0]["metadata"]["description"], "billing");
    t.call(Op::DeleteQueue { queue: "fruit" }).await.expect(204);
    // Deleting a missing queue is not an error.
    t.call(Op::DeleteQueue { queue: "fruit" }).await.expect(204);
    let names = t
        .call(Op::ListQueues {
            limit: None,
            detailed: false,
        })
        .await
        .expect(200)
        .names;
    assert_eq!(names, vec!["veg"]);
}

async fn post_list_get<T: Transport>(t: &mut T) {
    let ids = post(t, "q", &[json!({"n": 1}), json!("two"), json!([3])]).await;
    // Posting lazily created the queue.
    assert_eq!(stats(t, "q").await, (3, 0, 3));
    // FIFO, with bodies as posted.
    let out = t
        .call(Op::List {
            queue: "q",
            echo: true,
            include_claimed: false,
            limit: None,
        })
        .await
        .expect(200);
    assert_eq!(out.ids(), ids);
    let bodies: Vec<_> = out.messages.iter().map(|m| m.body.clone()).collect();
    assert_eq!(bodies, vec![json!({"n": 1}), json!("two"), json!([3])]);
    assert!(out
        .messages
        .iter()
        .all(|m| m.ttl == 300 && m.claim_id.is_none()));
    // Without echo, a client does not see its own messages.
    let own = t
        .call(Op::List {
            queue: "q",
            echo: false,
            include_claimed: false,
            limit: None,
        })
        .await
        .expect(200);
    assert!(own.messages.is_empty());
    // Paging by limit.
    let first = t
        .call(Op::List {
            queue: "q",
            echo: true,
            include_claimed: false,
            limit: Some(2),
        })
        .await
        .expect(200);
    assert_eq!(first.ids(), ids[..2].to_vec());
    // Get one, get many.
    let one = t
        .call(Op::Get {
            queue: "q",
            id: &ids[1],
        })
        .await
        .expect(200);
    assert_eq!(one.messages[0].id, ids[1]);
    assert_eq!(one.messages[0].body, json!("two"));
    let some = vec![ids[2].clone(), ids[0].clone()];
    let many = t
        .call(Op::GetMany {
            queue: "q",
            ids: &some,
        })
        .await
        .expect(200);
    let mut got = many.ids();
    got.sort();
    let mut want = some.clone();
    want.sort();
    assert_eq!(got, want);
    // Age follows the (manual) clock.
    t.server().clock.advance_secs(42);
    let one = t
        .call(Op::Get {
            queue: "q",
            id: &ids[0],
        })
        .await
        .expect(200);
    assert_eq!(one.messages[0].age, 42);
}

async fn claim_renew_delete_release<T: Transport>(t: &mut T) {
    let ids = post(t, "jobs", &[json!(1), json!(2), json!(3)]).await;
    let claim = t
        .call(Op::Claim {
            queue: "jobs",
            ttl: Some(120),
            grace: Some(60),
            limit: Some(2),
        })
        .await
        .expect(201);
    let cid = claim.claim_id.clone().expect("claim id");
    assert_eq!(claim.ids(), ids[..2].to_vec());
    assert!(claim
        .messages
        .iter()
        .all(|m| m.claim_id.as_deref() == Some(cid.as_str())));
    // Claimed messages are hidden unless include_claimed.
    assert_eq!(list_all(t, "jobs", false).await, ids[2..].to_vec());
    assert_eq!(list_all(t, "jobs", true).await, ids);
    assert_eq!(stats(t, "jobs").await, (3, 2, 1));
    // The claim as read back.
    let got = t
        .call(Op::GetClaim {
            queue: "jobs",
            claim_id: &cid,
        })
        .await
        .expect(200);
    assert_eq!(got.body["ttl"], 120);
    assert_eq!(got.ids(), ids[..2].to_vec());
    // A claimed message cannot be deleted without its claim.
    t.call(Op::Delete {
        queue: "jobs",
        id: &ids[0],
        claim_id: None,
    })
    .await
    .expect(403);
    t.call(Op::Delete {
        queue: "jobs",
        id: &ids[0],
        claim_id: Some(&cid),
    })
    .await
    .expect(204);
    t.call(Op::Get {
        queue: "jobs",
        id: &ids[0],
    })
    .await
    .expect(404);
    // Renew: the claim's age restarts and its ttl changes.
    t.server().clock.advance_secs(30);
    t.call(Op::Renew {
        queue: "jobs",
        claim_id: &cid,
        ttl: 200,
        grace: 60,
    })
    .await
    .expect(204);
    let got = t
        .call(Op::GetClaim {
            queue: "jobs",
            claim_id: &cid,
        })
        .await
        .expect(200);
    assert_eq!(got.body["ttl"], 200);
    assert_eq!(got.body["age"], 0);
    assert_eq!(got.ids(), vec![ids[1].clone()]);
    // Release: the message is free again and can be claimed by someone else.
    t.call(Op::Release {
        queue: "jobs",
        claim_id: &cid,
    })
    .await
    .expect(204);
    t.call(Op::GetClaim {
        queue: "jobs",
        claim_id: &cid,
    })
    .await
    .expect(404);
    assert_eq!(stats(t, "jobs").await, (2, 0, 2));
    let again = t
        .call(Op::Claim {
            queue: "jobs",
            ttl: None,
            grace: None,
            limit: None,
        })
        .await
        .expect(201);
    assert_eq!(again.ids(), ids[1..].to_vec());
    // Nothing left to claim.
    let none = t
        .call(Op::Claim {
            queue: "jobs",
            ttl: None,
            grace: None,
            limit: None,
        })
        .await
        .expect(204);
    assert!(none.messages.is_empty() && none.claim_id.is_none());
}

async fn claim_expiry<T: Transport>(t: &mut T) {
    let ids = post(t, "exp", &[json!("a")]).await;
    let claim = t
        .call(Op::Claim {
            queue: "exp",
            ttl: Some(60),
            grace: Some(60),
            limit: None,
        })
        .await
        .expect(201);
    let cid = claim.claim_id.expect("claim id");
    t.server().clock.advance_secs(61);
    // The claim is gone; the message is free again; renewing fails.
    t.call(Op::GetClaim {
        queue: "exp",
        claim_id: &cid,
    })
    .await
    .expect(404);
    assert_eq!(list_all(t, "exp", false).await, ids);
    t.call(Op::Renew {
        queue: "exp",
        claim_id: &cid,
        ttl: 60,
        grace: 60,
    })
    .await
    .expect(404);
    // A delete with the expired claim is refused (400, §3.4.6).
    t.call(Op::Delete {
        queue: "exp",
        id: &ids[0],
        claim_id: Some(&cid),
    })
    .await
    .expect(400);
}

async fn pop<T: Transport>(t: &mut T) {
    let ids = post(t, "p", &[json!(1), json!(2), json!(3)]).await;
    let out = t
        .call(Op::Pop {
            queue: "p",
            count: 2,
        })
        .await
        .expect(200);
    assert_eq!(out.ids(), ids[..2].to_vec());
    assert_eq!(out.messages[0].body, json!(1));
    assert_eq!(stats(t, "p").await, (1, 0, 1));
    let out = t
        .call(Op::Pop {
            queue: "p",
            count: 5,
        })
        .await
        .expect(200);
    assert_eq!(out.ids(), ids[2..].to_vec());
    let out = t
        .call(Op::Pop {
            queue: "p",
            count: 1,
        })
        .await
        .expect(200);
    assert!(out.messages.is_empty());
}

async fn stats_and_purge<T: Transport>(t: &mut T) {
    let ids = post(t, "s", &[json!(1), json!(2), json!(3), json!(4)]).await;
    t.call(Op::Claim {
        queue: "s",
        ttl: Some(60),
        grace: Some(60),
        limit: Some(1),
    })
    .await
    .expect(201);
    let out = t.call(Op::Stats { queue: "s" }).await.expect(200);
    assert_eq!(out.stats, Some((4, 1, 3)));
    let m = &out.body["messages"];
    match t.kind() {
        Kind::Http => {
            assert!(m["oldest"]["href"].as_str().unwrap().ends_with(&ids[0]));
            assert!(m["newest"]["href"].as_str().unwrap().ends_with(&ids[3]));
        }
        // WebSocket: `id` instead of `href` (§4.4).
        Kind::WebSocket => {
            assert_eq!(m["oldest"]["id"], ids[0].as_str());
            assert_eq!(m["newest"]["id"], ids[3].as_str());
        }
    }
    t.call(Op::Purge { queue: "s" }).await.expect(204);
    assert_eq!(stats(t, "s").await, (0, 0, 0));
    // Purge keeps the queue itself.
    let names = t
        .call(Op::ListQueues {
            limit: None,
            detailed: false,
        })
        .await
        .expect(200)
        .names;
    assert_eq!(names, vec!["s"]);
    // Stats of a queue that does not exist: zeros (HTTP 200; WebSocket 404, §4.4).
    let missing = t.call(Op::Stats { queue: "nope" }).await;
    assert_eq!(missing.stats, Some((0, 0, 0)));
    let want = match t.kind() {
        Kind::Http => 200,
        Kind::WebSocket => 404,
    };
    assert_eq!(missing.status, want);
}

async fn bulk_delete<T: Transport>(t: &mut T) {
    let ids = post(t, "b", &[json!(1), json!(2), json!(3)]).await;
    let two = vec![ids[0].clone(), ids[2].clone()];
    t.call(Op::DeleteMany {
        queue: "b",
        ids: &two,
    })
    .await
    .expect(204);
    assert_eq!(list_all(t, "b", true).await, vec![ids[1].clone()]);
    // None of these exist any more: HTTP 404, WebSocket an empty list (§4.4).
    let gone = t
        .call(Op::GetMany {
            queue: "b",
            ids: &two,
        })
        .await;
    match t.kind() {
        Kind::Http => assert_eq!(gone.status, 404),
        Kind::WebSocket => {
            assert_eq!(gone.status, 200);
            assert!(gone.messages.is_empty());
        }
    }
}

async fn error_cases<T: Transport>(t: &mut T) {
    // Invalid queue name.
    let out = t
        .call(Op::CreateQueue {
            queue: "bad name!",
            metadata: None,
        })
        .await
        .expect(400);
    assert!(out.error.is_some(), "{out:?}");
    // Reserved metadata of the wrong type.
    t.call(Op::CreateQueue {
        queue: "q",
        metadata: Some(json!({"_default_message_ttl": "soon"})),
    })
    .await
    .expect(400);
    // Message TTL out of range; message without body; empty batch.
    let out = t
        .call(Op::Post {
            queue: "q",
            messages: json!([{"ttl": 10, "body": 1}]),
        })
        .await
        .expect(400);
    assert!(out.error.unwrap().contains("TTL"));
    let out = t
        .call(Op::Post {
            queue: "q",
            messages: json!([{"ttl": 100}]),
        })
        .await
        .expect(400);
    assert!(out.error.unwrap().contains("body"));
    t.call(Op::Post {
        queue: "q",
        messages: json!([]),
    })
    .await
    .expect(400);
    // Claim TTL too short, claim limit too large.
    let out = t
        .call(Op::Claim {
            queue: "q",
            ttl: Some(1),
            grace: None,
            limit: None,
        })
        .await
        .expect(400);
    assert!(out.error.unwrap().contains("TTL"));
    t.call(Op::Claim {
        queue: "q",
        ttl: None,
        grace: None,
        limit: Some(1000),
    })
    .await
    .expect(400);
    // Missing things.
    let ids = post(t, "q", &[json!(1)]).await;
    let missing = format!("{}0", &ids[0][..ids[0].len() - 1]);
    let missing = if missing == ids[0] {
        format!("{}1", &ids[0][..ids[0].len() - 1])
    } else {
        missing
    };
    t.call(Op::Get {
        queue: "q",
        id: &missing,
    })
    .await
    .expect(404);
    t.call(Op::GetClaim {
        queue: "q",
        claim_id: "51db7067821e727dc24df754",
    })
    .await
    .expect(404);
    // Pop out of range; list limit out of range.
    t.call(Op::Pop {
        queue: "q",
        count: 0,
    })
    .await
    .expect(400);
    t.call(Op::List {
        queue: "q",
        echo: true,
        include_claimed: false,
        limit: Some(0),
    })
    .await
    .expect(400);
    // Too many ids.
    let many: Vec<String> = (0..21).map(|_| ids[0].clone()).collect();
    t.call(Op::GetMany {
        queue: "q",
        ids: &many,
    })
    .await
    .expect(400);
}
