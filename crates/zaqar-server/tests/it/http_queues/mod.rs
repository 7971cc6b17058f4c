//! Black-box HTTP tests of the queue endpoints, and the helpers the submodules share: this
//! file covers PUT, GET, HEAD and DELETE (spec §1.2, §3.3); `patch.rs` covers PATCH,
//! `listing.rs` the queue list and `stats_and_purge.rs` stats and purge (spec §1.14).

mod listing;
mod patch;
mod stats_and_purge;

use zaqar_testkit as common;

use common::{expect_error, json_of, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

const PATCH_CT: &str = "application/openstack-messaging-v2.0-json-patch";

/// The metadata a queue without any stored metadata displays (default configuration).
fn defaults() -> Value {
    json!({
        "_max_messages_post_size": 262144,
        "_default_message_ttl": 3600,
        "_default_message_delay": 0,
        "_dead_letter_queue": null,
        "_dead_letter_queue_messages_ttl": null,
        "_max_claim_count": null,
        "_enable_encrypt_messages": false,
    })
}

/// `defaults()` with `extra` merged in.
fn with_defaults(extra: Value) -> Value {
    let mut d = defaults();
    for (k, v) in extra.as_object().unwrap() {
        d[k] = v.clone();
    }
    d
}

async fn put(s: &TestServer, name: &str, body: Option<Value>) -> reqwest::Response {
    let mut req = s.req(Method::PUT, &format!("/v2/queues/{name}"));
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

async fn get_meta(s: &TestServer, name: &str) -> Value {
    let resp = s
        .req(Method::GET, &format!("/v2/queues/{name}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    json_of(resp).await
}

async fn patch(s: &TestServer, name: &str, ops: Value) -> reqwest::Response {
    s.req(Method::PATCH, &format!("/v2/queues/{name}"))
        .header("Content-Type", PATCH_CT)
        .body(ops.to_string())
        .send()
        .await
        .unwrap()
}

async fn list(s: &TestServer, query: &str) -> Value {
    let resp = s
        .req(Method::GET, &format!("/v2/queues{query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "GET /v2/queues{query}");
    json_of(resp).await
}

fn names(page: &Value) -> Vec<String> {
    page["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap().to_string())
        .collect()
}

async fn stats(s: &TestServer, name: &str) -> Value {
    let resp = s
        .req(Method::GET, &format!("/v2/queues/{name}/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    json_of(resp).await
}

// ----- PUT ----------------------------------------------------------------------------------

#[tokio::test]
async fn put_creates_with_201_and_location() {
    let s = TestServer::start().await;
    let resp = put(&s, "fizbit", Some(json!({"description": "billing"}))).await;
    assert_eq!(resp.status().as_u16(), 201);
    assert_eq!(resp.headers()["location"], "/v2/queues/fizbit");
    assert!(resp.bytes().await.unwrap().is_empty());
    assert_eq!(
        get_meta(&s, "fizbit").await,
        with_defaults(json!({"description": "billing"}))
    );
}

#[tokio::test]
async fn put_without_body_creates_an_empty_queue() {
    let s = TestServer::start().await;
    let resp = put(&s, "a.b-c_D9", None).await;
    assert_eq!(resp.status().as_u16(), 201);
    assert_eq!(resp.headers()["location"], "/v2/queues/a.b-c_D9");
    assert_eq!(get_meta(&s, "a.b-c_D9").await, defaults());
    assert_eq!(names(&list(&s, "").await), vec!["a.b-c_D9"]);
}

#[tokio::test]
async fn put_existing_queue_is_204_and_leaves_metadata_untouched() {
    let s = TestServer::start().await;
    assert_eq!(
        put(&s, "q", Some(json!({"a": 1}))).await.status().as_u16(),
        201
    );
    let resp = put(&s, "q", Some(json!({"a": 2, "b": 3}))).await;
    assert_eq!(resp.status().as_u16(), 204);
    assert!(resp.headers().get("location").is_none());
    assert!(resp.bytes().await.unwrap().is_empty());
    assert_eq!(get_meta(&s, "q").await, with_defaults(json!({"a": 1})));
    // Invalid metadata on an existing queue is still rejected.
    let resp = put(&s, "q", Some(json!({"_default_message_ttl": 1}))).await;
    expect_error(resp, 400, "Invalid API request", None).await;
}

#[tokio::test]
async fn put_name_length_limits() {
    let s = TestServer::start().await;
    assert_eq!(put(&s, &"n".repeat(64), None).await.status().as_u16(), 201);
    for bad in [
        "n".repeat(65),
        "a%20b".into(),
        "a*b".into(),
        "caf%C3%A9".into(),
    ] {
        let resp = put(&s, &bad, None).await;
        expect_error(
            resp,
            400,
            "Invalid queue identification",
            Some("The format of the submitted queue name or project id is not valid."),
        )
        .await;
    }
    assert_eq!(names(&list(&s, "").await), vec!["n".repeat(64)]);
}

#[tokio::test]
async fn put_rejects_oversize_metadata() {
    let s = TestServer::start_with(&[("transport", "max_queue_metadata", "100")]).await;
    // Exactly at the limit is fine.
    let at_limit = format!(r#"{{"k": "{}"}}"#, "x".repeat(100 - 9));
    assert_eq!(at_limit.len(), 100);
    let resp = s
        .req(Method::PUT, "/v2/queues/fits")
        .header("Content-Type", "application/json")
        .body(at_limit)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let over = format!(r#"{{"k": "{}"}}"#, "x".repeat(101 - 9));
    let resp = s
        .req(Method::PUT, "/v2/queues/big")
        .header("Content-Type", "application/json")
        .body(over)
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Invalid API request", Some("too large")).await;
    assert_eq!(names(&list(&s, "").await), vec!["fits"]);
}

#[tokio::test]
async fn put_rejects_oversize_metadata_with_default_limit() {
    let s = TestServer::start().await;
    let resp = put(&s, "big", Some(json!({"k": "x".repeat(65536)}))).await;
    expect_error(resp, 400, "Invalid API request", Some("too large")).await;
}

#[tokio::test]
async fn put_rejects_non_object_and_unparseable_bodies() {
    let s = TestServer::start().await;
    for (body, description) in [
        ("[1, 2]", "Document type not supported."),
        ("[]", "Document type not supported."),
        ("\"text\"", "Document type not supported."),
        ("42", "Document type not supported."),
        ("null", "Document type not supported."),
        ("{\"a\": ", "Request body could not be parsed."),
        ("{'a': 1}", "Request body could not be parsed."),
        (
            "{\"a\": 9223372036854775808}",
            "JSON contains integer that is too large.",
        ),
        (
            "{\"a\": [-9223372036854775809]}",
            "JSON contains integer that is too large.",
        ),
    ] {
        let resp = s
            .req(Method::PUT, "/v2/queues/q")
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        expect_error(resp, 400, "Invalid request body", Some(description)).await;
    }
    // The edge of the int64 range is fine.
    let resp = s
        .req(Method::PUT, "/v2/queues/q")
        .body(r#"{"max": 9223372036854775807, "min": -9223372036854775808}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let meta = get_meta(&s, "q").await;
    assert_eq!(meta["max"], i64::MAX);
    assert_eq!(meta["min"], i64::MIN);
}

#[tokio::test]
async fn put_rejects_deeply_nested_metadata_with_400() {
    let s = TestServer::start().await;
    // Deep, but within the metadata size limit.
    let depth = 30_000;
    let body = format!(r#"{{"a": {}{}}}"#, "[".repeat(depth), "]".repeat(depth));
    let resp = s
        .req(Method::PUT, "/v2/queues/deep")
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Invalid request body", None).await;
    // The server is still alive.
    assert_eq!(put(&s, "alive", None).await.status().as_u16(), 201);
}

#[tokio::test]
async fn put_validates_reserved_keys() {
    let s =
        TestServer::start_with(&[("transport", "message_encryption_key", "test-passphrase")]).await;
    for bad in [
        json!({"_default_message_ttl": 59}),
        json!({"_default_message_ttl": 1209601}),
        json!({"_default_message_ttl": "3600"}),
        json!({"_default_message_ttl": 0}),
        json!({"_default_message_ttl": false}),
        json!({"_default_message_ttl": 120.5}),
        json!({"_max_messages_post_size": 0}),
        json!({"_max_messages_post_size": 262145}),
        json!({"_max_messages_post_size": -1}),
        json!({"_default_message_delay": -1}),
        json!({"_default_message_delay": 901}),
        json!({"_default_message_delay": true}),
        json!({"_dead_letter_queue_messages_ttl": 59}),
        json!({"_dead_letter_queue_messages_ttl": 1209601}),
        json!({"_max_claim_count": "3"}),
        json!({"_max_claim_count": 1.5}),
        json!({"_enable_encrypt_messages": "yes"}),
        json!({"_enable_encrypt_messages": 1}),
        json!({"_dead_letter_queue": 5}),
        json!({"_retry_policy": "fast"}),
        json!({"_retry_policy": {"retry_backoff_function": "cubic"}}),
        json!({"_retry_policy": {"minimum_delay": 5, "maximum_delay": 10}}),
    ] {
        let resp = put(&s, "reserved", Some(bad.clone())).await;
        let body = expect_error(resp, 400, "Invalid API request", None).await;
        assert!(body["description"].is_string(), "{bad}: {body}");
    }
    assert_eq!(list(&s, "").await["queues"], json!([]), "nothing created");
    for good in [
        json!({"_default_message_ttl": 60}),
        json!({"_default_message_ttl": 1209600}),
        json!({"_max_messages_post_size": 1}),
        json!({"_max_messages_post_size": 262144}),
        json!({"_default_message_delay": 900}),
        json!({"_dead_letter_queue_messages_ttl": 60}),
        json!({"_max_claim_count": 3, "_dead_letter_queue": "dlq"}),
        json!({"_enable_encrypt_messages": true}),
        json!({"_retry_policy": {"minimum_delay": 5, "maximum_delay": 15}}),
        json!({"_default_message_ttl": null, "_anything_else": [1]}),
    ] {
        let name = format!(
            "ok{}",
            list(&s, "").await["queues"].as_array().unwrap().len()
        );
        let resp = put(&s, &name, Some(good.clone())).await;
        assert_eq!(resp.status().as_u16(), 201, "{good}");
    }
}

// ----- GET / HEAD ---------------------------------------------------------------------------

#[tokio::test]
async fn get_missing_queue_shows_defaults_without_creating_it() {
    let s = TestServer::start().await;
    assert_eq!(get_meta(&s, "ghost").await, defaults());
    assert_eq!(list(&s, "").await, json!({"queues": [], "links": []}));
    let resp = s
        .req(Method::HEAD, "/v2/queues/ghost")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
}

#[tokio::test]
async fn head_reports_existence() {
    let s = TestServer::start().await;
    put(&s, "here", None).await;
    let resp = s.req(Method::HEAD, "/v2/queues/here").send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert!(resp.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn get_defaults_follow_configuration() {
    let s = TestServer::start_with(&[
        ("transport", "default_message_ttl", "600"),
        ("transport", "default_message_delay", "5"),
        ("transport", "max_messages_post_size", "1000"),
    ])
    .await;
    let meta = get_meta(&s, "cfg").await;
    assert_eq!(meta["_default_message_ttl"], 600);
    assert_eq!(meta["_default_message_delay"], 5);
    assert_eq!(meta["_max_messages_post_size"], 1000);
}

/// Display rule (spec §1.2): reserved keys missing or falsy show their defaults.
#[tokio::test]
async fn get_fills_falsy_reserved_values_with_defaults() {
    let s = TestServer::start_with(&[("transport", "default_message_delay", "5")]).await;
    let resp = put(
        &s,
        "falsy",
        Some(json!({
            "_default_message_delay": 0,
            "_max_claim_count": 0,
            "_enable_encrypt_messages": false,
            "_dead_letter_queue": null,
            "_default_message_ttl": 120,
            "zero": 0,
            "empty": "",
        })),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 201);
    let meta = get_meta(&s, "falsy").await;
    assert_eq!(
        meta,
        json!({
            "_max_messages_post_size": 262144,
            "_default_message_ttl": 120,
            "_default_message_delay": 5,
            "_dead_letter_queue": null,
            "_dead_letter_queue_messages_ttl": null,
            "_max_claim_count": null,
            "_enable_encrypt_messages": false,
            "zero": 0,
            "empty": "",
        })
    );
}

#[tokio::test]
async fn get_shows_stored_truthy_reserved_values_and_extra_reserved_keys() {
    let s =
        TestServer::start_with(&[("transport", "message_encryption_key", "test-passphrase")]).await;
    let stored = json!({
        "_max_messages_post_size": 1024,
        "_default_message_ttl": 600,
        "_default_message_delay": 30,
        "_dead_letter_queue": "dlq",
        "_dead_letter_queue_messages_ttl": 120,
        "_max_claim_count": 3,
        "_enable_encrypt_messages": true,
        "_retry_policy": {"retries_with_no_delay": 1},
    });
    put(&s, "full", Some(stored.clone())).await;
    assert_eq!(get_meta(&s, "full").await, stored);
}

// ----- DELETE -------------------------------------------------------------------------------

#[tokio::test]
async fn delete_removes_queue_and_messages_and_is_idempotent() {
    let s = TestServer::start().await;
    put(&s, "gone", Some(json!({"a": 1}))).await;
    let ids = s.post("gone", json!([{"body": 1}, {"body": 2}])).await;
    s.claim("gone", None, Some(1)).await.expect("claimed");
    let resp = s
        .req(Method::DELETE, "/v2/queues/gone")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert!(resp.bytes().await.unwrap().is_empty());
    assert_eq!(list(&s, "").await["queues"], json!([]));
    assert_eq!(get_meta(&s, "gone").await, defaults());
    assert_eq!(
        stats(&s, "gone").await,
        json!({"messages": {"claimed": 0, "free": 0, "total": 0}})
    );
    let resp = s
        .req(Method::GET, &format!("/v2/queues/gone/messages/{}", ids[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    // Again, and on a queue that never existed.
    for name in ["gone", "never"] {
        let resp = s
            .req(Method::DELETE, &format!("/v2/queues/{name}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 204);
    }
    // A re-created queue starts empty, with fresh metadata.
    assert_eq!(put(&s, "gone", None).await.status().as_u16(), 201);
    assert_eq!(get_meta(&s, "gone").await, defaults());
    let page = json_of(
        s.req(
            Method::GET,
            "/v2/queues/gone/messages?echo=true&include_claimed=true",
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(page["messages"], json!([]));
}
