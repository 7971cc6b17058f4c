//! Black-box tests of the WebSocket body shapes of every action (spec §4.4): queues, messages,
//! claims, authenticate, home, health and ping, and the actions this server answers without
//! implementing them (subscriptions, pools, flavors).

use zaqar_testkit as common;

use common::ws::{headers, WsClient};
use common::{TestServer, PROJECT};
use serde_json::json;

use super::setup;

// ----- body shapes of the actions (§4.4) -------------------------------------------------------

#[tokio::test]
async fn queue_actions() {
    let (_s, mut c) = setup().await;
    let r = c
        .call(
            "queue_create",
            json!({"queue_name": "q1", "metadata": {"description": "d"}}),
        )
        .await;
    assert_eq!((r.status, r.body), (201, json!("Queue q1 created.")));
    // queue_get: the stored metadata, no reserved defaults; a missing queue shows {}.
    let r = c.call("queue_get", json!({"queue_name": "q1"})).await;
    assert_eq!((r.status, r.body), (200, json!({"description": "d"})));
    let r = c.call("queue_get", json!({"queue_name": "missing"})).await;
    assert_eq!((r.status, r.body), (200, json!({})));
    // queue_list: names, metadata only with detailed, no href/links.
    c.call("queue_create", json!({"queue_name": "q2"})).await;
    let r = c.call("queue_list", json!({})).await;
    assert_eq!(
        (r.status, r.body),
        (200, json!({"queues": [{"name": "q1"}, {"name": "q2"}]}))
    );
    let r = c
        .call("queue_list", json!({"detailed": true, "limit": 1}))
        .await;
    assert_eq!(
        r.body,
        json!({"queues": [{"name": "q1", "metadata": {"description": "d"}}]})
    );
    let r = c.call("queue_list", json!({"marker": "q1"})).await;
    assert_eq!(r.body, json!({"queues": [{"name": "q2"}]}));
    let r = c.call("queue_list", json!({"limit": 1000})).await;
    assert_eq!(r.status, 400);
    // A body is optional for queue_list.
    c.send_json(&json!({"action": "queue_list", "headers": headers()}))
        .await;
    assert_eq!(c.recv().await.status, 200);
    // Stats: zero body with 404 for a missing queue.
    let r = c
        .call("queue_get_stats", json!({"queue_name": "missing"}))
        .await;
    assert_eq!(
        (r.status, r.body),
        (
            404,
            json!({"messages": {"claimed": 0, "free": 0, "total": 0}})
        )
    );
    let r = c.call("queue_get_stats", json!({"queue_name": "q1"})).await;
    assert_eq!(
        (r.status, r.body),
        (
            200,
            json!({"messages": {"claimed": 0, "free": 0, "total": 0}})
        )
    );
    // Purge: 204 {} (also with resource_types); bad resource type: 400.
    let r = c.call("queue_purge", json!({"queue_name": "q1"})).await;
    assert_eq!((r.status, r.body), (204, json!({})));
    let r = c
        .call(
            "queue_purge",
            json!({"queue_name": "q1", "resource_types": ["messages"]}),
        )
        .await;
    assert_eq!(r.status, 204);
    let r = c
        .call(
            "queue_purge",
            json!({"queue_name": "q1", "resource_types": ["bogus"]}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "Invalid API request");
    let r = c.call("queue_delete", json!({"queue_name": "q1"})).await;
    assert_eq!((r.status, r.body), (204, json!("Queue q1 removed.")));
}

#[tokio::test]
async fn message_actions() {
    let (_s, mut c) = setup().await;
    let r = c
        .call(
            "message_post",
            json!({"queue_name": "m", "messages": [{"body": {"k": "v"}, "ttl": 300}, {"body": 2}]}),
        )
        .await;
    assert_eq!(r.status, 201);
    let ids: Vec<String> = r.body["message_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(r.body.as_object().unwrap().len(), 1, "{}", r.body);

    // message_list: {"messages": [{"id", "claim_id", "ttl", "age", "body"}]}, no links.
    let r = c
        .call("message_list", json!({"queue_name": "m", "echo": true}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"messages": [
            {"id": ids[0], "claim_id": null, "ttl": 300, "age": 0, "body": {"k": "v"}},
            {"id": ids[1], "claim_id": null, "ttl": 3600, "age": 0, "body": 2},
        ]})
    );
    // A missing queue lists as empty.
    let r = c
        .call("message_list", json!({"queue_name": "nothing-here"}))
        .await;
    assert_eq!((r.status, r.body), (200, json!({"messages": []})));

    // message_get: the object under the plural key.
    let r = c
        .call(
            "message_get",
            json!({"queue_name": "m", "message_id": ids[0]}),
        )
        .await;
    assert_eq!(
        (r.status, r.body),
        (
            200,
            json!({"messages": {"id": ids[0], "claim_id": null, "ttl": 300, "age": 0, "body": {"k": "v"}}})
        )
    );
    let r = c
        .call(
            "message_get",
            json!({"queue_name": "m", "message_id": "nope"}),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"], "Not found");
    assert!(r.body["exception"].as_str().unwrap().contains("nope"));

    // message_get_many: a list, empty when none is found.
    let r = c
        .call(
            "message_get_many",
            json!({"queue_name": "m", "message_ids": [ids[1], "nope"]}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["messages"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["messages"][0]["id"], ids[1].as_str());
    let r = c
        .call(
            "message_get_many",
            json!({"queue_name": "m", "message_ids": ["nope"]}),
        )
        .await;
    assert_eq!((r.status, r.body), (200, json!({"messages": []})));

    // message_delete: 204 {}; message_delete_many by ids: 204 {}; pop: 200 with messages.
    let r = c
        .call(
            "message_delete",
            json!({"queue_name": "m", "message_id": ids[0]}),
        )
        .await;
    assert_eq!((r.status, r.body), (204, json!({})));
    c.call(
        "message_post",
        json!({"queue_name": "m", "messages": [{"body": 3}, {"body": 4}]}),
    )
    .await;
    let r = c
        .call(
            "message_delete_many",
            json!({"queue_name": "m", "message_ids": [ids[1]]}),
        )
        .await;
    assert_eq!((r.status, r.body), (204, json!({})));
    let r = c
        .call("message_delete_many", json!({"queue_name": "m", "pop": 1}))
        .await;
    assert_eq!(r.status, 200);
    let popped = r.body["messages"].as_array().unwrap();
    assert_eq!(popped.len(), 1);
    assert_eq!(popped[0]["body"], 3);
    // Neither ids nor pop; both.
    let r = c
        .call("message_delete_many", json!({"queue_name": "m"}))
        .await;
    assert_eq!(r.status, 400);
    let r = c
        .call(
            "message_delete_many",
            json!({"queue_name": "m", "pop": 1, "message_ids": ["a"]}),
        )
        .await;
    assert_eq!(r.status, 400);
    // No messages field: schema.
    let r = c.call("message_post", json!({"queue_name": "m"})).await;
    assert_eq!(r.error(), "Schema validation failed.");
}

#[tokio::test]
async fn claim_actions() {
    let (s, mut c) = setup().await;
    // Nothing to claim: 204 with a null claim id.
    let r = c.call("claim_create", json!({"queue_name": "c"})).await;
    assert_eq!((r.status, r.body), (204, json!({"claim_id": null})));
    c.call(
        "message_post",
        json!({"queue_name": "c", "messages": [{"body": 1}, {"body": 2}, {"body": 3}]}),
    )
    .await;
    let r = c
        .call(
            "claim_create",
            json!({"queue_name": "c", "ttl": 100, "grace": 60, "limit": 2}),
        )
        .await;
    assert_eq!(r.status, 201);
    let cid = r.body["claim_id"].as_str().unwrap().to_string();
    let msgs = r.body["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2);
    for m in msgs {
        assert_eq!(m["claim_id"], cid.as_str());
        let mut keys: Vec<&str> = m.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, vec!["age", "body", "claim_id", "id", "ttl"]);
    }
    // claim_get: {"age", "ttl", "messages"}.
    s.clock.advance_secs(5);
    let r = c
        .call("claim_get", json!({"queue_name": "c", "claim_id": cid}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["ttl"], 100);
    assert_eq!(r.body["age"], 5);
    assert_eq!(r.body["messages"].as_array().unwrap().len(), 2);
    // claim_update: 204 with a string; without ttl the default TTL applies.
    let r = c
        .call(
            "claim_update",
            json!({"queue_name": "c", "claim_id": cid, "ttl": 200}),
        )
        .await;
    assert_eq!(
        (r.status, r.body),
        (204, json!(format!("Claim {cid} updated.")))
    );
    let r = c
        .call("claim_get", json!({"queue_name": "c", "claim_id": cid}))
        .await;
    assert_eq!(r.body["ttl"], 200);
    let r = c
        .call("claim_update", json!({"queue_name": "c", "claim_id": cid}))
        .await;
    assert_eq!(r.status, 204);
    let r = c
        .call("claim_get", json!({"queue_name": "c", "claim_id": cid}))
        .await;
    assert_eq!(r.body["ttl"], 300);
    let r = c
        .call(
            "claim_update",
            json!({"queue_name": "c", "claim_id": cid, "ttl": 1}),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = c
        .call(
            "claim_update",
            json!({"queue_name": "c", "claim_id": "51db7067821e727dc24df754", "ttl": 100}),
        )
        .await;
    assert_eq!(r.status, 404);
    // claim_delete: 204 with a string.
    let r = c
        .call("claim_delete", json!({"queue_name": "c", "claim_id": cid}))
        .await;
    assert_eq!(
        (r.status, r.body),
        (204, json!(format!("Claim {cid} deleted.")))
    );
    let r = c
        .call("claim_get", json!({"queue_name": "c", "claim_id": cid}))
        .await;
    assert_eq!(r.status, 404);
}

// ----- authenticate, home, health, ping; actions that are not available ------------------------

#[tokio::test]
async fn authenticate_without_auth_configured_succeeds() {
    let (_s, mut c) = setup().await;
    c.send_json(&json!({"action": "authenticate",
                        "headers": {"X-Auth-Token": "t", "X-Project-ID": PROJECT}}))
        .await;
    let r = c.recv().await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"message": "Authentified."}));
    // The token is not echoed back (as the reference answers authenticate).
    assert_eq!(
        r.request,
        json!({"action": "authenticate", "body": {}, "headers": {}, "api": "v2"})
    );
    // Requests still act in their X-Project-ID.
    assert_eq!(c.call("queue_list", json!({})).await.status, 200);
}

#[tokio::test]
async fn home_document_ping_and_health() {
    let (_s, mut c) = setup().await;
    c.send_json(&json!({"action": "get_home_doc", "headers": {}}))
        .await;
    let r = c.recv().await;
    assert_eq!(r.status, 200);
    assert!(r.body["resources"]["rel/queues"]["href-template"]
        .as_str()
        .unwrap()
        .starts_with("/v2/queues"));
    c.send_json(&json!({"action": "ping_node", "headers": {}}))
        .await;
    let r = c.recv().await;
    assert_eq!((r.status, r.body), (204, json!({})));
    // Health is an admin route: not there without admin_mode.
    c.send_json(&json!({"action": "check_node_health", "headers": {}}))
        .await;
    assert_eq!(c.recv().await.status, 404);

    let s = TestServer::start_with(&[("DEFAULT", "admin_mode", "true")]).await;
    let mut c = WsClient::to(&s).await;
    c.send_json(&json!({"action": "check_node_health", "headers": {}}))
        .await;
    assert_eq!(c.recv().await.status, 403);
    c.send_json(&json!({"action": "check_node_health", "headers": {"X-Roles": "admin"}}))
        .await;
    let r = c.recv().await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["storage_reachable"], true);
    assert_eq!(
        r.body["operation_status"]["post_messages"]["succeeded"],
        true
    );
    // Admin mode adds the admin rels to the home document.
    c.send_json(&json!({"action": "get_home_doc", "headers": {}}))
        .await;
    assert!(c.recv().await.body["resources"].get("rel/health").is_some());
}

#[tokio::test]
async fn subscriptions_pools_and_flavors_are_answered_not_dropped() {
    let (_s, mut c) = setup().await;
    let r = c
        .call(
            "subscription_create",
            json!({"queue_name": "q", "subscriber": "http://x.example", "ttl": 60}),
        )
        .await;
    assert_eq!(r.status, 201);
    let sid = r.body["subscription_id"].as_str().unwrap().to_string();
    let r = c
        .call("subscription_list", json!({"queue_name": "q"}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["subscriptions"][0]["subscriber"], "http://x.example");
    let r = c
        .call(
            "subscription_get",
            json!({"queue_name": "q", "subscription_id": sid}),
        )
        .await;
    assert_eq!((r.status, r.body["id"].clone()), (200, json!(sid)));
    let r = c
        .call(
            "subscription_get",
            json!({"queue_name": "q", "subscription_id": "x"}),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = c
        .call(
            "subscription_delete",
            json!({"queue_name": "q", "subscription_id": sid}),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.body, json!(format!("Subscription {sid} removed.")));
    let r = c
        .call(
            "subscription_create",
            json!({"queue_name": "q", "subscriber": "ftp://x"}),
        )
        .await;
    assert_eq!(r.status, 400);
    for (action, body) in [
        ("pool_list", json!({})),
        (
            "pool_create",
            json!({"pool_name": "p", "uri": "x", "weight": 1}),
        ),
        ("pool_get", json!({"pool_name": "p"})),
        ("pool_get_detail", json!({"pool_name": "p"})),
        ("pool_update", json!({"pool_name": "p"})),
        ("pool_delete", json!({"pool_name": "p"})),
        ("flavor_list", json!({})),
        (
            "flavor_create",
            json!({"flavor_name": "f", "pool_name": "p"}),
        ),
        ("flavor_get", json!({"flavor_name": "f"})),
        ("flavor_update", json!({"flavor_name": "f"})),
        ("flavor_delete", json!({"flavor_name": "f"})),
    ] {
        let r = c.call(action, body).await;
        assert_eq!(r.status, 501, "{action}");
        assert_eq!(
            r.body,
            json!({ "error": format!("{action} is not implemented") })
        );
    }
    // Their schemas still apply.
    let r = c.call("pool_get", json!({})).await;
    assert_eq!(r.error(), "Schema validation failed.");
    assert_eq!(c.call("ping_node", json!({})).await.status, 204);
}
