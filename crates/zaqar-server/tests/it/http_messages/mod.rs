//! Black-box HTTP tests of the message endpoints, and the helpers the submodules share: this
//! file covers POST (spec §1.3, §1.8, §2.8); `listing.rs` covers listing, get by ids and get
//! one (spec §1.4, §3.4); `delete.rs` covers bulk delete, pop and single delete with its claim
//! rules (spec §3.4.6).

mod delete;
mod listing;

use zaqar_testkit as common;

use common::{expect_error, json_of, TestServer, CLIENT};
use reqwest::Method;
use serde_json::{json, Value};

async fn post_raw(s: &TestServer, queue: &str, body: &str) -> reqwest::Response {
    s.req(Method::POST, &format!("/v2/queues/{queue}/messages"))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// GET as `client` and return the JSON body (asserting 200).
async fn get_as(s: &TestServer, client: &str, path: &str) -> Value {
    let resp = s.req_as(client, Method::GET, path).send().await.unwrap();
    let status = resp.status().as_u16();
    let body = json_of(resp).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

async fn get(s: &TestServer, path: &str) -> Value {
    get_as(s, CLIENT, path).await
}

async fn delete(s: &TestServer, path: &str) -> reqwest::Response {
    s.req(Method::DELETE, path).send().await.unwrap()
}

fn ids_of(page: &Value) -> Vec<String> {
    page["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no messages in {page}"))
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

fn bodies_of(page: &Value) -> Vec<Value> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].clone())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// A well-formed message id that no message has: the id of a real message with the last
/// hex digit changed.
fn sibling_id(id: &str) -> String {
    let last = if id.ends_with('0') { '1' } else { '0' };
    format!("{}{last}", &id[..id.len() - 1])
}

async fn stats_total(s: &TestServer, queue: &str) -> i64 {
    get(s, &format!("/v2/queues/{queue}/stats")).await["messages"]["total"]
        .as_i64()
        .unwrap()
}

// ----- POST ---------------------------------------------------------------------------------

#[tokio::test]
async fn post_returns_location_and_resources_in_request_order() {
    let s = TestServer::start().await;
    let resp = s
        .req(Method::POST, "/v2/queues/demo/messages")
        .json(&json!({"messages": [
            {"ttl": 300, "body": {"event": "BackupStarted"}},
            {"body": {"event": "BackupProgress", "current_bytes": "0"}},
            {"body": "third", "ttl": 60},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let body = json_of(resp).await;
    let resources: Vec<String> = body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    assert_eq!(resources.len(), 3);
    assert_eq!(body.as_object().unwrap().len(), 1, "only resources: {body}");
    let ids: Vec<String> = resources
        .iter()
        .map(|r| {
            r.strip_prefix("/v2/queues/demo/messages/")
                .unwrap_or_else(|| panic!("{r}"))
                .to_string()
        })
        .collect();
    for id in &ids {
        assert!(
            !id.is_empty()
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "URL-safe id: {id}"
        );
    }
    assert_eq!(
        location,
        format!("/v2/queues/demo/messages?ids={}", ids.join(","))
    );
    // Following Location returns the three messages.
    let got = get(&s, &location).await;
    assert_eq!(sorted(ids_of(&got)), sorted(ids.clone()));
    // FIFO: listing (echo) returns them in posting order with their bodies and ttls.
    let page = get(&s, "/v2/queues/demo/messages?echo=true").await;
    assert_eq!(ids_of(&page), ids);
    assert_eq!(
        bodies_of(&page),
        vec![
            json!({"event": "BackupStarted"}),
            json!({"event": "BackupProgress", "current_bytes": "0"}),
            json!("third"),
        ]
    );
    let ttls: Vec<i64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["ttl"].as_i64().unwrap())
        .collect();
    assert_eq!(ttls, vec![300, 3600, 60]);
}

#[tokio::test]
async fn post_creates_the_queue_lazily() {
    let s = TestServer::start().await;
    s.post("lazy", json!([{"body": 1}])).await;
    // The Content-Type is not checked (only urlencoded bodies are refused).
    for ct in [None, Some("text/plain")] {
        let mut req = s
            .req(Method::POST, "/v2/queues/lazy/messages")
            .body(r#"{"messages": [{"body": 2}]}"#);
        if let Some(ct) = ct {
            req = req.header("Content-Type", ct);
        }
        assert_eq!(req.send().await.unwrap().status().as_u16(), 201, "{ct:?}");
    }
    assert_eq!(stats_total(&s, "lazy").await, 3);
    let queues = get(&s, "/v2/queues").await;
    assert_eq!(queues["queues"][0]["name"], "lazy");
    assert_eq!(queues["queues"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn post_accepts_any_json_body_and_drops_extra_fields() {
    let s = TestServer::start().await;
    let bodies = vec![
        Value::Null,
        json!("text"),
        json!(42),
        json!(-1.5),
        json!(true),
        json!([1, "two", null]),
        json!({"deep": {"er": [{"est": 1}]}}),
        json!({}),
        json!("unicode ✓ \u{1F600}"),
    ];
    let messages: Vec<Value> = bodies
        .iter()
        .map(|b| json!({"body": b, "extra": "dropped"}))
        .collect();
    let ids = s.post("any", Value::Array(messages)).await;
    let page = get(&s, "/v2/queues/any/messages?echo=true&limit=20").await;
    assert_eq!(ids_of(&page), ids);
    assert_eq!(bodies_of(&page), bodies);
    for m in page["messages"].as_array().unwrap() {
        let mut keys: Vec<&str> = m.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        keys.sort();
        assert_eq!(keys, vec!["age", "body", "href", "id", "ttl"], "{m}");
    }
}

/// A batch is all or nothing: one invalid message rejects the whole request.
#[tokio::test]
async fn post_batch_is_atomic() {
    let s = TestServer::start().await;
    s.post("atomic", json!([{"body": "before"}])).await;
    for bad in [
        json!([{"body": 1}, {"body": 2, "ttl": 30}]),
        json!([{"body": 1}, {"ttl": 300}]),
        json!([{"body": 1}, "not an object"]),
        json!([{"body": 1}, {"body": 2, "ttl": "60"}]),
    ] {
        let resp = s
            .req(Method::POST, "/v2/queues/atomic/messages")
            .json(&json!({ "messages": bad }))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body = json_of(resp).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["title"].is_string() && body["description"].is_string());
    }
    assert_eq!(stats_total(&s, "atomic").await, 1);
    let page = get(&s, "/v2/queues/atomic/messages?echo=true").await;
    assert_eq!(bodies_of(&page), vec![json!("before")]);
}

#[tokio::test]
async fn post_rejects_wrong_document_shapes() {
    let s = TestServer::start().await;
    for (body, title, description) in [
        (
            r#"[{"body": 1}]"#,
            "Invalid request body",
            "No messages were found in the request body.",
        ),
        (
            r#"{"body": 1}"#,
            "Invalid request body",
            "No messages were found in the request body.",
        ),
        (
            r#""messages""#,
            "Invalid request body",
            "No messages were found in the request body.",
        ),
        (
            r#"{"messages": {"body": 1}}"#,
            "Invalid request body",
            "\"messages\"",
        ),
        (
            r#"{"messages": "x"}"#,
            "Invalid request body",
            "\"messages\"",
        ),
        (r#"{"messages": [1]}"#, "Invalid request body", ""),
        (r#"{"messages": [[]]}"#, "Invalid request body", ""),
        (
            r#"{"messages": [{"ttl": 60}]}"#,
            "Invalid request body",
            "Missing \"body\" field.",
        ),
        (
            r#"{"messages": []}"#,
            "Invalid API request",
            "No messages to enqueu.",
        ),
        (
            r#"{"messages": [{"body": 1}"#,
            "Invalid request body",
            "Request body could not be parsed.",
        ),
        (
            "not json",
            "Invalid request body",
            "Request body could not be parsed.",
        ),
        (
            "\u{feff}",
            "Invalid request body",
            "Request body could not be parsed.",
        ),
        ("", "Invalid request body", "Request body can not be empty"),
        (
            "   ",
            "Invalid request body",
            "Request body can not be empty",
        ),
    ] {
        let resp = post_raw(&s, "shape", body).await;
        expect_error(resp, 400, title, Some(description)).await;
    }
    // Without any body at all.
    let resp = s
        .req(Method::POST, "/v2/queues/shape/messages")
        .send()
        .await
        .unwrap();
    expect_error(
        resp,
        400,
        "Invalid request body",
        Some("Request body can not be empty"),
    )
    .await;
    assert_eq!(stats_total(&s, "shape").await, 0);
}

#[tokio::test]
async fn post_checks_ttl_type_and_range() {
    let s = TestServer::start().await;
    for ttl in [
        json!("300"),
        json!(true),
        json!(60.5),
        json!([60]),
        json!({}),
    ] {
        let resp = s
            .req(Method::POST, "/v2/queues/ttl/messages")
            .json(&json!({"messages": [{"body": 1, "ttl": ttl}]}))
            .send()
            .await
            .unwrap();
        expect_error(
            resp,
            400,
            "Invalid request body",
            Some("The value of the \"ttl\" field must be a"),
        )
        .await;
    }
    for ttl in [59, 0, -1, 1_209_601] {
        let resp = s
            .req(Method::POST, "/v2/queues/ttl/messages")
            .json(&json!({"messages": [{"body": 1, "ttl": ttl}]}))
            .send()
            .await
            .unwrap();
        expect_error(
            resp,
            400,
            "Invalid API request",
            Some("The TTL for a message may not exceed 1209600 seconds, and must be at least 60 seconds long."),
        )
        .await;
    }
    let ids = s
        .post(
            "ttl",
            json!([{"body": 1, "ttl": 60}, {"body": 2, "ttl": 1_209_600}]),
        )
        .await;
    for (id, ttl) in ids.iter().zip([60, 1_209_600]) {
        let m = get(&s, &format!("/v2/queues/ttl/messages/{id}")).await;
        assert_eq!(m["ttl"], ttl);
    }
}

#[tokio::test]
async fn post_ttl_bounds_follow_configuration() {
    let s = TestServer::start_with(&[
        ("transport", "max_message_ttl", "600"),
        ("transport", "default_message_ttl", "120"),
    ])
    .await;
    let resp = s
        .req(Method::POST, "/v2/queues/t/messages")
        .json(&json!({"messages": [{"body": 1, "ttl": 601}]}))
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Invalid API request", Some("600")).await;
    let ids = s.post("t", json!([{"body": 1}])).await;
    let m = get(&s, &format!("/v2/queues/t/messages/{}", ids[0])).await;
    assert_eq!(m["ttl"], 120, "config default ttl");
}

#[tokio::test]
async fn post_rejects_integers_beyond_int64() {
    let s = TestServer::start().await;
    for body in [
        r#"{"messages": [{"body": 9223372036854775808}]}"#,
        r#"{"messages": [{"body": {"n": [-9223372036854775809]}}]}"#,
        r#"{"messages": [{"body": 1, "ttl": 99999999999999999999}]}"#,
    ] {
        let resp = post_raw(&s, "big", body).await;
        expect_error(
            resp,
            400,
            "Invalid request body",
            Some("JSON contains integer that is too large."),
        )
        .await;
    }
    // Large numbers inside strings, floats and the int64 edges are fine.
    let resp = post_raw(
        &s,
        "big",
        r#"{"messages": [{"body": {"s": "99999999999999999999", "f": 1e300,
            "max": 9223372036854775807, "min": -9223372036854775808}}]}"#,
    )
    .await;
    assert_eq!(resp.status().as_u16(), 201);
    let page = get(&s, "/v2/queues/big/messages?echo=true").await;
    assert_eq!(page["messages"][0]["body"]["max"], i64::MAX);
    assert_eq!(page["messages"][0]["body"]["min"], i64::MIN);
    assert_eq!(page["messages"][0]["body"]["s"], "99999999999999999999");
}

#[tokio::test]
async fn post_deeply_nested_body_is_400_not_5xx() {
    let s = TestServer::start().await;
    for depth in [200, 1_000, 40_000] {
        let body = format!(
            r#"{{"messages": [{{"body": {}{}}}]}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let resp = post_raw(&s, "deep", &body).await;
        expect_error(resp, 400, "Invalid request body", None).await;
        let body = format!(
            r#"{{"messages": [{{"body": {}1{}}}]}}"#,
            r#"{"a":"#.repeat(depth),
            "}".repeat(depth)
        );
        let resp = post_raw(&s, "deep", &body).await;
        expect_error(resp, 400, "Invalid request body", None).await;
    }
    // Moderate nesting is fine, and the server still answers.
    let body = format!(
        r#"{{"messages": [{{"body": {}{}}}]}}"#,
        "[".repeat(50),
        "]".repeat(50)
    );
    assert_eq!(post_raw(&s, "deep", &body).await.status().as_u16(), 201);
    assert_eq!(stats_total(&s, "deep").await, 1);
}

#[tokio::test]
async fn post_size_limit_from_configuration() {
    let s = TestServer::start_with(&[("transport", "max_messages_post_size", "100")]).await;
    let make = |len: usize| {
        // {"messages": [{"body": "xxx"}]} has 28 bytes around the string.
        let body = format!(
            r#"{{"messages": [{{"body": "{}"}}]}}"#,
            "x".repeat(len - 28)
        );
        assert_eq!(body.len(), len);
        body
    };
    assert_eq!(post_raw(&s, "sz", &make(100)).await.status().as_u16(), 201);
    let resp = post_raw(&s, "sz", &make(101)).await;
    expect_error(
        resp,
        400,
        "Invalid API request",
        Some("Message collection size is too large."),
    )
    .await;
    assert_eq!(stats_total(&s, "sz").await, 1);
}

#[tokio::test]
async fn post_size_limit_from_queue_metadata() {
    let s = TestServer::start().await;
    let resp = s
        .req(Method::PUT, "/v2/queues/small")
        .json(&json!({"_max_messages_post_size": 80}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let make = |len: usize| {
        format!(
            r#"{{"messages": [{{"body": "{}"}}]}}"#,
            "x".repeat(len - 28)
        )
    };
    assert_eq!(
        post_raw(&s, "small", &make(80)).await.status().as_u16(),
        201
    );
    let resp = post_raw(&s, "small", &make(81)).await;
    expect_error(
        resp,
        400,
        "Invalid API request",
        Some("Message collection size is too large."),
    )
    .await;
    // Other queues keep the global limit.
    assert_eq!(
        post_raw(&s, "other", &make(1000)).await.status().as_u16(),
        201
    );
    // The queue setting cannot raise the global limit: min(queue, global) applies.
    let s2 = TestServer::start_with(&[("transport", "max_messages_post_size", "100")]).await;
    let resp = s2
        .req(Method::PUT, "/v2/queues/q")
        .json(&json!({"_max_messages_post_size": 200}))
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Invalid API request", None).await;
    let resp = post_raw(&s2, "q", &make(150)).await;
    expect_error(resp, 400, "Invalid API request", Some("too large")).await;
}

#[tokio::test]
async fn post_uses_queue_default_ttl() {
    let s = TestServer::start().await;
    s.req(Method::PUT, "/v2/queues/dt")
        .json(&json!({"_default_message_ttl": 120}))
        .send()
        .await
        .unwrap();
    let ids = s
        .post("dt", json!([{"body": 1}, {"body": 2, "ttl": 500}]))
        .await;
    let page = get(&s, &format!("/v2/queues/dt/messages?ids={}", ids.join(","))).await;
    let mut ttls: Vec<i64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["ttl"].as_i64().unwrap())
        .collect();
    ttls.sort();
    assert_eq!(ttls, vec![120, 500]);
}
