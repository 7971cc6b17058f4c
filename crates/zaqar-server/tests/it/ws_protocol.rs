//! Black-box tests of the WebSocket protocol (spec §4.2-§4.4): the envelope, protocol-level
//! errors and their exact texts, the WebSocket body shapes of every action, and the actions
//! this server answers without implementing them. A real WebSocket client talks to the
//! running server's WebSocket listener.

use zaqar_testkit as common;

use common::ws::{envelope, headers, WsClient};
use common::{TestServer, CLIENT, PROJECT};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

async fn setup() -> (TestServer, WsClient) {
    let s = TestServer::start().await;
    let c = WsClient::to(&s).await;
    (s, c)
}

const NO_REQUEST: fn() -> Value =
    || json!({"action": null, "body": {}, "headers": {}, "api": "v2"});

// ----- envelope -------------------------------------------------------------------------------

#[tokio::test]
async fn response_echoes_the_request_and_mirrors_the_frame_type() {
    let (_s, mut c) = setup().await;
    let req = envelope(
        "queue_create",
        json!({"queue_name": "demo", "metadata": {"a": 1}}),
    );
    c.send_json(&req).await;
    let r = c.recv().await;
    assert!(!r.binary);
    assert_eq!(r.status, 201);
    assert_eq!(
        r.request,
        json!({"action": "queue_create", "body": {"queue_name": "demo", "metadata": {"a": 1}},
               "headers": headers(), "api": "v2"})
    );
    assert_eq!(r.body, json!("Queue demo created."));
    // The same request as MessagePack gets a MessagePack answer.
    c.send_msgpack(&req).await;
    let r = c.recv().await;
    assert!(r.binary);
    assert_eq!(r.status, 204);
    assert_eq!(r.body, json!("Queue demo created."));
    assert_eq!(r.request["api"], "v2");
}

#[tokio::test]
async fn the_upgrade_is_accepted_on_any_path_and_on_the_http_port() {
    let s = TestServer::start().await;
    let mut c = WsClient::connect(&format!("{}/some/path?x=1", s.ws_base)).await;
    assert_eq!(c.call("ping_node", json!({})).await.status, 204);
    let http_port_ws = s.base.replacen("http://", "ws://", 1);
    let mut c = WsClient::connect(&format!("{http_port_ws}/")).await;
    let r = c
        .call("queue_create", json!({"queue_name": "via-http-port"}))
        .await;
    assert_eq!(r.status, 201);
    // HTTP still works on that port.
    let resp = s
        .req(reqwest::Method::GET, "/v2/queues/via-http-port/stats")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // A plain HTTP request to the WebSocket port is not an upgrade.
    let plain = reqwest::get(s.ws_base.replacen("ws://", "http://", 1))
        .await
        .unwrap();
    assert!(plain.status().is_client_error(), "{}", plain.status());
}

// ----- protocol errors (§4.2) -----------------------------------------------------------------

#[tokio::test]
async fn undecodable_frames_are_answered_with_400_and_the_connection_stays_open() {
    let (_s, mut c) = setup().await;
    c.send(Message::text("foo")).await;
    let r = c.recv().await;
    assert_eq!(r.status, 400);
    assert!(!r.binary);
    assert_eq!(r.request, NO_REQUEST());
    let e = r.error();
    assert!(
        e.starts_with("Can't decode text (JSON) request. JSONDecodeError: "),
        "{e}"
    );
    // Binary: "123" is a MessagePack integer followed by extra data.
    c.send(Message::binary(b"123".to_vec())).await;
    let r = c.recv().await;
    assert_eq!(r.status, 400);
    assert!(r.binary);
    assert!(
        r.error()
            .starts_with("Can't decode binary (MessagePack) request. "),
        "{}",
        r.error()
    );
    c.send(Message::binary(vec![0xc1])).await;
    let r = c.recv().await;
    assert_eq!(r.status, 400);
    assert!(r
        .error()
        .starts_with("Can't decode binary (MessagePack) request."));
    // Still usable.
    assert_eq!(c.call("ping_node", json!({})).await.status, 204);
}

#[tokio::test]
async fn non_object_payloads_unknown_actions_and_schema_violations() {
    let (_s, mut c) = setup().await;
    for doc in [json!("123"), json!(123), json!([1, 2]), json!(null)] {
        c.send_json(&doc).await;
        let r = c.recv().await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.body,
            json!({"error": "Unexpected body type. Expected dict or dict like."})
        );
        assert_eq!(r.request, NO_REQUEST());
    }
    c.send_msgpack(&json!("Apparently, I'm not a dictionary"))
        .await;
    let r = c.recv().await;
    assert!(r.binary);
    assert_eq!(
        r.error(),
        "Unexpected body type. Expected dict or dict like."
    );

    c.send_json(&envelope("queue_glorify", json!({}))).await;
    let r = c.recv().await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({"error": "queue_glorify is not a valid action"})
    );
    assert_eq!(r.request["action"], "queue_glorify");
    c.send_json(&json!({"headers": headers()})).await;
    assert_eq!(c.recv().await.error(), "None is not a valid action");

    let schema_failures = [
        // headers missing, not an object, a required header missing, a known header not a string
        json!({"action": "queue_list"}),
        json!({"action": "queue_list", "headers": "x"}),
        json!({"action": "queue_list", "headers": {"Client-ID": CLIENT}}),
        json!({"action": "queue_list", "headers": {"Client-ID": CLIENT, "X-Project-ID": 7}}),
        // body missing, not an object, a required field missing, fields of the wrong type
        json!({"action": "queue_get", "headers": headers()}),
        json!({"action": "queue_get", "headers": headers(), "body": []}),
        json!({"action": "message_get", "headers": headers(), "body": {"queue_name": "q"}}),
        envelope("queue_list", json!({"limit": "10"})),
        envelope("queue_list", json!({"detailed": "true"})),
        envelope("claim_create", json!({"queue_name": "q", "ttl": 60.5})),
        envelope("claim_create", json!({"queue_name": "q", "grace": true})),
        envelope(
            "message_post",
            json!({"queue_name": "q", "messages": {"body": 1}}),
        ),
        envelope("message_list", json!({"queue_name": "q", "echo": 1})),
        envelope(
            "message_delete_many",
            json!({"queue_name": "q", "message_ids": [1]}),
        ),
        envelope("queue_create", json!({"queue_name": "q", "metadata": "m"})),
        envelope(
            "queue_purge",
            json!({"queue_name": "q", "resource_types": "messages"}),
        ),
        json!({"action": "authenticate", "headers": {"X-Project-ID": PROJECT}}),
    ];
    for doc in schema_failures {
        c.send_json(&doc).await;
        let r = c.recv().await;
        assert_eq!(r.status, 400, "{doc}");
        assert_eq!(
            r.body,
            json!({"error": "Schema validation failed."}),
            "{doc}"
        );
        assert_eq!(r.request["action"], doc["action"]);
    }
    // Unknown body keys and extra headers are allowed.
    let doc = json!({"action": "queue_get",
                     "headers": {"Client-ID": CLIENT, "X-Project-ID": PROJECT, "URL-Foo": "x"},
                     "body": {"queue_name": "q", "whatever": [1]}});
    c.send_json(&doc).await;
    assert_eq!(c.recv().await.status, 200);
}

#[tokio::test]
async fn header_values_are_validated_like_over_http() {
    let (_s, mut c) = setup().await;
    c.client_id = "not-a-uuid".into();
    let r = c.call("queue_list", json!({})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "Wrong UUID value");
    assert_eq!(r.body["exception"], "Malformed hexadecimal UUID.");
    c.client_id = CLIENT.into();
    c.project = String::new();
    let r = c.call("queue_list", json!({})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "Empty project header not allowed");
    // Queue names are validated everywhere (§4.4 notes).
    c.project = PROJECT.into();
    let r = c
        .call("queue_get", json!({"queue_name": "no spaces"}))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "Invalid queue identification");
}

#[tokio::test]
async fn json_integers_beyond_int64_are_refused() {
    let (_s, mut c) = setup().await;
    let text = format!(
        r#"{{"action": "message_post", "headers": {}, "body": {{"queue_name": "q", "messages": [{{"body": 99999999999999999999}}]}}}}"#,
        headers()
    );
    c.send(Message::text(text)).await;
    let r = c.recv().await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({"error": "Invalid request body", "exception": "JSON contains integer that is too large."})
    );
}

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

// ----- concurrency ---------------------------------------------------------------------------

#[tokio::test]
async fn pipelined_requests_are_all_answered_and_carry_their_request() {
    let (_s, mut c) = setup().await;
    const N: usize = 200;
    for i in 0..N {
        let doc = envelope(
            "message_post",
            json!({"queue_name": "pipe", "messages": [{"body": {"i": i}}]}),
        );
        if i % 2 == 0 {
            c.send_json(&doc).await;
        } else {
            c.send_msgpack(&doc).await;
        }
    }
    let mut seen = [false; N];
    for _ in 0..N {
        let r = c.recv().await;
        assert_eq!(r.status, 201);
        let i = r.request["body"]["messages"][0]["body"]["i"]
            .as_u64()
            .unwrap() as usize;
        assert_eq!(r.binary, i % 2 == 1, "frame type of response {i}");
        assert!(!seen[i], "two responses for request {i}");
        seen[i] = true;
    }
    let r = c
        .call("queue_get_stats", json!({"queue_name": "pipe"}))
        .await;
    assert_eq!(r.body["messages"]["total"], N as u64);
}

#[tokio::test]
async fn pre_signed_requests_are_limited_to_their_grant() {
    let s = TestServer::start_with(&[("signed_url", "secret_key", "ws-signing")]).await;
    s.post("shared", json!([{"body": "hi"}])).await;
    let grant: Value = s
        .req(reqwest::Method::POST, "/v2/queues/shared/share")
        .json(&json!({"methods": ["GET", "POST"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut ws = WsClient::to(&s).await;
    let signed = |action: &str, queue: &str, grant: &Value| {
        json!({"action": action,
            "headers": {"Client-ID": CLIENT, "X-Project-ID": grant["project"],
                "URL-Signature": grant["signature"], "URL-Expires": grant["expires"],
                "URL-Methods": grant["methods"], "URL-Paths": grant["paths"]},
            "body": {"queue_name": queue, "echo": true}})
    };
    ws.send_json(&signed("message_list", "shared", &grant))
        .await;
    let r = ws.recv().await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["messages"][0]["body"], "hi");
    // Another queue of the same project, an action a grant cannot cover, a tampered grant.
    ws.send_json(&signed("message_list", "other", &grant)).await;
    assert_eq!(ws.recv().await.status, 403);
    ws.send_json(&signed("queue_delete", "shared", &grant))
        .await;
    assert_eq!(ws.recv().await.status, 403);
    let mut bad = grant.clone();
    bad["methods"] = json!(["GET", "POST", "DELETE"]);
    ws.send_json(&signed("message_delete_many", "shared", &bad))
        .await;
    let r = ws.recv().await;
    assert_eq!((r.status, r.error()), (403, "Not authentified."));
}

#[tokio::test]
async fn a_waiting_request_does_not_block_the_connection() {
    let (s, mut ws) = setup().await;
    // A claim that waits, then an ordinary request on the same connection.
    ws.send_json(&envelope(
        "claim_create",
        json!({"queue_name": "lp", "wait": 20}),
    ))
    .await;
    let r = ws.call("queue_list", json!({})).await;
    assert_eq!(r.status, 200, "answered while the claim waits");
    assert_eq!(r.request["action"], "queue_list");
    s.post("lp", json!([{"body": "wake"}])).await;
    let r = ws.recv().await;
    assert_eq!(r.request["action"], "claim_create");
    assert_eq!(r.status, 201);
    assert_eq!(r.body["messages"][0]["body"], "wake");
    // `wait` is validated like over HTTP.
    let r = ws
        .call("message_list", json!({"queue_name": "lp", "wait": 3600}))
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn connections_subscribe_and_receive_notifications_in_their_format() {
    let (s, mut ws) = setup().await;
    let r = ws
        .call(
            "subscription_create",
            json!({"queue_name": "push", "ttl": 600}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let sid = r.body["subscription_id"].as_str().unwrap().to_string();
    assert_eq!(r.body["message"], "Subscription push created.");
    // A post over HTTP reaches the connection as a bare notification frame.
    s.post("push", json!([{"body": {"n": 1}, "ttl": 120}]))
        .await;
    let frame = next_notification(&mut ws).await;
    assert_eq!(
        frame,
        json!({"body": {"n": 1}, "ttl": 120, "queue_name": "push", "Message_Type": "Notification"})
    );
    // The subscription is listed, and is confirmed (connection subscriptions need no
    // confirmation).
    let r = ws
        .call("subscription_list", json!({"queue_name": "push"}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["subscriptions"][0]["id"], sid.as_str());
    assert_eq!(r.body["subscriptions"][0]["confirmed"], true);
    // MessagePack subscribers get binary frames.
    let mut bin = WsClient::to(&s).await;
    let r = bin
        .call_msgpack("subscription_create", json!({"queue_name": "push"}))
        .await;
    assert_eq!(r.status, 201);
    s.post("push", json!([{"body": "two"}])).await;
    let frame = next_raw(&mut bin).await;
    assert!(matches!(frame, Message::Binary(_)), "{frame:?}");
    // Closing the connection removes its subscriptions.
    ws.close().await;
    bin.close().await;
    for _ in 0..200 {
        let list: Value = s
            .req(reqwest::Method::GET, "/v2/queues/push/subscriptions")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if list["subscriptions"].as_array().unwrap().is_empty() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the closed connections' subscriptions were not removed");
}

async fn next_raw(ws: &mut WsClient) -> Message {
    ws.next_message().await
}

async fn next_notification(ws: &mut WsClient) -> Value {
    match ws.next_message().await {
        Message::Text(t) => serde_json::from_str(&t).unwrap(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}
