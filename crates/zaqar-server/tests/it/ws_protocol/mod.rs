//! Black-box tests of the WebSocket protocol (spec §4.2-§4.4): the envelope, protocol-level
//! errors and their exact texts, pre-signed requests, concurrency on one connection and
//! notifications. `actions.rs` covers the WebSocket body shapes of every action and the
//! actions this server answers without implementing them. A real WebSocket client talks to
//! the running server's WebSocket listener.

mod actions;

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
