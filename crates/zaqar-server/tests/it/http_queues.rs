//! Black-box HTTP tests of the queue endpoints: PUT, GET, HEAD, PATCH, DELETE, listing, stats
//! and purge (spec §1.2, §1.14, §3.3).

use zaqar_testkit as common;

use common::{expect_error, json_of, TestServer, OTHER_CLIENT};
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

// ----- PATCH --------------------------------------------------------------------------------

#[tokio::test]
async fn patch_requires_the_json_patch_media_type() {
    let s = TestServer::start().await;
    put(&s, "p", Some(json!({"a": 1}))).await;
    let ops = json!([{"op": "add", "path": "/metadata/b", "value": 2}]).to_string();
    for ct in [Some("application/json"), Some("text/plain"), None] {
        let mut req = s.req(Method::PATCH, "/v2/queues/p").body(ops.clone());
        if let Some(ct) = ct {
            req = req.header("Content-Type", ct);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.headers()["accept-patch"], PATCH_CT);
        expect_error(resp, 415, "415 Unsupported Media Type", Some(PATCH_CT)).await;
    }
    assert_eq!(get_meta(&s, "p").await, with_defaults(json!({"a": 1})));
}

#[tokio::test]
async fn patch_applies_operations_in_order_and_returns_displayed_metadata() {
    let s = TestServer::start().await;
    put(&s, "p", Some(json!({"a": 1, "b": 2, "c": 3}))).await;
    let resp = patch(
        &s,
        "p",
        json!([
            {"op": "add", "path": "/metadata/d", "value": {"nested": [1, 2]}},
            {"op": "replace", "path": "/metadata/a", "value": "one"},
            {"op": "remove", "path": "/metadata/b"},
            {"op": "add", "path": "/metadata/c", "value": 30},
            {"op": "add", "path": "/metadata/tmp", "value": 1},
            {"op": "remove", "path": "/metadata/tmp"},
            {"op": "replace", "path": "/metadata/_default_message_ttl", "value": 300},
        ]),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 200);
    let expected = with_defaults(json!({
        "a": "one", "c": 30, "d": {"nested": [1, 2]}, "_default_message_ttl": 300,
    }));
    assert_eq!(json_of(resp).await, expected);
    assert_eq!(get_meta(&s, "p").await, expected);
}

#[tokio::test]
async fn patch_pointer_syntax() {
    let s = TestServer::start().await;
    put(&s, "p", None).await;
    let resp = patch(
        &s,
        "p",
        json!([
            {"op": "add", "path": "/METADATA/upper", "value": 1},
            {"op": "add", "path": "/metadata/ spaced ", "value": 2},
            {"op": "add", "path": "/metadata/a~1b~0c", "value": 3},
        ]),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 200);
    let meta = json_of(resp).await;
    assert_eq!(meta["upper"], 1);
    assert_eq!(meta["spaced"], 2);
    assert_eq!(meta["a/b~c"], 3);
}

#[tokio::test]
async fn patch_rejects_malformed_operations() {
    let s = TestServer::start().await;
    put(&s, "p", Some(json!({"a": 1}))).await;
    for ops in [
        json!({"op": "add", "path": "/metadata/x", "value": 1}),
        json!([1]),
        json!(["add"]),
        json!([{"path": "/metadata/x", "value": 1}]),
        json!([{"op": "move", "path": "/metadata/x", "value": 1}]),
        json!([{"op": "test", "path": "/metadata/a", "value": 1}]),
        json!([{"op": 1, "path": "/metadata/x", "value": 1}]),
        json!([{"op": "add", "value": 1}]),
        json!([{"op": "add", "path": "/metadata/x"}]),
        json!([{"op": "replace", "path": "/metadata/a"}]),
        json!([{"op": "add", "path": "metadata/x", "value": 1}]),
        json!([{"op": "add", "path": "/metadata//x", "value": 1}]),
        json!([{"op": "add", "path": "/metadata/x/", "value": 1}]),
        json!([{"op": "add", "path": "/metadata/x~2", "value": 1}]),
        json!([{"op": "add", "path": "/metadata/x/y", "value": 1}]),
        json!([{"op": "add", "path": "/metadata", "value": 1}]),
        json!([{"op": "add", "path": "/meta/x", "value": 1}]),
        json!([{"op": "add", "path": 5, "value": 1}]),
        // A valid first op does not save an invalid second one.
        json!([
            {"op": "add", "path": "/metadata/x", "value": 1},
            {"op": "remove"}
        ]),
    ] {
        let resp = patch(&s, "p", ops.clone()).await;
        let status = resp.status().as_u16();
        let body = json_of(resp).await;
        assert_eq!(status, 400, "{ops}: {body}");
        assert!(body["title"].is_string(), "{body}");
        assert!(body["description"].is_string(), "{body}");
    }
    assert_eq!(get_meta(&s, "p").await, with_defaults(json!({"a": 1})));
}

#[tokio::test]
async fn patch_empty_or_unparseable_body_is_400() {
    let s = TestServer::start().await;
    put(&s, "p", None).await;
    let resp = s
        .req(Method::PATCH, "/v2/queues/p")
        .header("Content-Type", PATCH_CT)
        .send()
        .await
        .unwrap();
    let body = expect_error(resp, 400, "Invalid request body", None).await;
    assert_eq!(
        body["description"],
        "PATCH body could not be empty for update."
    );
    for (text, description) in [
        ("[{", "Request body could not be parsed."),
        ("7", "Document type not supported."),
    ] {
        let resp = s
            .req(Method::PATCH, "/v2/queues/p")
            .header("Content-Type", PATCH_CT)
            .body(text)
            .send()
            .await
            .unwrap();
        expect_error(resp, 400, "Invalid request body", Some(description)).await;
    }
}

#[tokio::test]
async fn patch_replace_or_remove_of_missing_keys_is_409() {
    let s = TestServer::start().await;
    put(&s, "p", Some(json!({"a": 1}))).await;
    let resp = patch(
        &s,
        "p",
        json!([{"op": "replace", "path": "/metadata/nope", "value": 1}]),
    )
    .await;
    expect_error(
        resp,
        409,
        "Resource conflict",
        Some("Can't replace non-existent object nope."),
    )
    .await;
    let resp = patch(&s, "p", json!([{"op": "remove", "path": "/metadata/nope"}])).await;
    expect_error(resp, 409, "Resource conflict", Some("nope")).await;
    // Reserved keys count as present: replace sets them, remove is a no-op.
    let resp = patch(
        &s,
        "p",
        json!([
            {"op": "remove", "path": "/metadata/_max_claim_count"},
            {"op": "replace", "path": "/metadata/_dead_letter_queue", "value": "dlq"},
        ]),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        json_of(resp).await,
        with_defaults(json!({"a": 1, "_dead_letter_queue": "dlq"}))
    );
}

/// A failing operation or an invalid result leaves the stored metadata untouched.
#[tokio::test]
async fn patch_is_atomic() {
    let s = TestServer::start().await;
    put(&s, "p", Some(json!({"a": 1}))).await;
    let resp = patch(
        &s,
        "p",
        json!([
            {"op": "add", "path": "/metadata/b", "value": 2},
            {"op": "remove", "path": "/metadata/a"},
            {"op": "replace", "path": "/metadata/missing", "value": 3},
        ]),
    )
    .await;
    expect_error(resp, 409, "Resource conflict", None).await;
    let resp = patch(
        &s,
        "p",
        json!([
            {"op": "add", "path": "/metadata/b", "value": 2},
            {"op": "add", "path": "/metadata/_default_message_ttl", "value": 30},
        ]),
    )
    .await;
    expect_error(resp, 400, "Invalid API request", None).await;
    let resp = patch(
        &s,
        "p",
        json!([{"op": "add", "path": "/metadata/_enable_encrypt_messages", "value": "no"}]),
    )
    .await;
    expect_error(resp, 400, "Invalid API request", None).await;
    assert_eq!(get_meta(&s, "p").await, with_defaults(json!({"a": 1})));
}

#[tokio::test]
async fn patch_missing_queue_is_404() {
    let s = TestServer::start().await;
    let resp = patch(
        &s,
        "ghost",
        json!([{"op": "add", "path": "/metadata/a", "value": 1}]),
    )
    .await;
    expect_error(
        resp,
        404,
        "Not found",
        Some("Queue ghost does not exist for project test-project"),
    )
    .await;
    assert_eq!(list(&s, "").await["queues"], json!([]), "not created");
}

#[tokio::test]
async fn patch_rejects_oversize_body() {
    let s = TestServer::start_with(&[("transport", "max_queue_metadata", "100")]).await;
    put(&s, "p", None).await;
    let resp = patch(
        &s,
        "p",
        json!([{"op": "add", "path": "/metadata/a", "value": "x".repeat(100)}]),
    )
    .await;
    expect_error(resp, 400, "Invalid API request", Some("too large")).await;
    assert_eq!(get_meta(&s, "p").await, defaults());
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

// ----- list ---------------------------------------------------------------------------------

#[tokio::test]
async fn list_empty_is_200_with_empty_links() {
    let s = TestServer::start().await;
    assert_eq!(list(&s, "").await, json!({"queues": [], "links": []}));
    let page = list(&s, "?with_count=true").await;
    assert_eq!(page, json!({"queues": [], "links": []}), "no count when 0");
}

#[tokio::test]
async fn list_pages_with_marker_and_limit_until_an_empty_page() {
    let s = TestServer::start().await;
    for name in ["echo", "alpha", "delta", "Bravo", "charlie"] {
        assert_eq!(put(&s, name, None).await.status().as_u16(), 201);
    }
    let first = list(&s, "?limit=2").await;
    assert_eq!(names(&first), vec!["Bravo", "alpha"], "byte order");
    assert_eq!(
        first["queues"][0],
        json!({"name": "Bravo", "href": "/v2/queues/Bravo"})
    );
    let mut pages = vec![names(&first)];
    let mut page = first;
    loop {
        let links = page["links"].as_array().unwrap().clone();
        if page["queues"].as_array().unwrap().is_empty() {
            assert_eq!(links, Vec::<Value>::new(), "empty page has no links");
            break;
        }
        assert_eq!(links.len(), 1, "non-empty page has a next link: {page}");
        assert_eq!(links[0]["rel"], "next");
        let href = links[0]["href"].as_str().unwrap();
        assert!(href.starts_with("/v2/queues?"), "{href}");
        assert!(href.contains("limit=2"), "{href}");
        let last = pages.last().unwrap().last().unwrap().clone();
        assert!(href.contains(&format!("marker={last}")), "{href}");
        let resp = s.req(Method::GET, href).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        page = json_of(resp).await;
        pages.push(names(&page));
        assert!(pages.len() < 10, "paging does not terminate");
    }
    assert_eq!(
        pages,
        vec![
            vec!["Bravo", "alpha"],
            vec!["charlie", "delta"],
            vec!["echo"],
            vec![],
        ]
    );
    // An explicit marker: strictly after it, even if it is not a queue name.
    assert_eq!(
        names(&list(&s, "?marker=charlie").await),
        vec!["delta", "echo"]
    );
    assert_eq!(
        names(&list(&s, "?marker=b").await),
        vec!["charlie", "delta", "echo"]
    );
    assert_eq!(names(&list(&s, "?marker=zzz").await), Vec::<String>::new());
}

#[tokio::test]
async fn list_default_limit_is_10_and_max_is_20() {
    let s = TestServer::start().await;
    for i in 0..21 {
        put(&s, &format!("q{i:02}"), None).await;
    }
    assert_eq!(names(&list(&s, "").await).len(), 10);
    assert_eq!(names(&list(&s, "?limit=20").await).len(), 20);
    assert_eq!(
        names(&list(&s, "?limit=").await).len(),
        10,
        "empty = absent"
    );
    for bad in ["0", "21", "-1"] {
        let resp = s
            .req(Method::GET, &format!("/v2/queues?limit={bad}"))
            .send()
            .await
            .unwrap();
        expect_error(
            resp,
            400,
            "Invalid API request",
            Some("Limit must be at least 1"),
        )
        .await;
    }
    for (query, name) in [
        ("limit=abc", "limit"),
        ("limit=1.5", "limit"),
        ("detailed=maybe", "detailed"),
        ("with_count=2", "with_count"),
    ] {
        let resp = s
            .req(Method::GET, &format!("/v2/queues?{query}"))
            .send()
            .await
            .unwrap();
        expect_error(
            resp,
            400,
            "Invalid parameter",
            Some(&format!("The \"{name}\" parameter is invalid.")),
        )
        .await;
    }
}

#[tokio::test]
async fn list_max_limit_follows_configuration() {
    let s = TestServer::start_with(&[("transport", "max_queues_per_page", "3")]).await;
    let resp = s
        .req(Method::GET, "/v2/queues?limit=4")
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Invalid API request", Some("no greater than 3")).await;
    assert_eq!(list(&s, "?limit=3").await["queues"], json!([]));
}

#[tokio::test]
async fn list_detailed_shows_displayed_metadata() {
    let s = TestServer::start().await;
    put(
        &s,
        "a",
        Some(json!({"color": "red", "_default_message_ttl": 120})),
    )
    .await;
    put(&s, "b", None).await;
    let page = list(&s, "?detailed=true&limit=1").await;
    assert_eq!(
        page["queues"],
        json!([{
            "name": "a",
            "href": "/v2/queues/a",
            "metadata": with_defaults(json!({"color": "red", "_default_message_ttl": 120})),
        }])
    );
    let href = page["links"][0]["href"].as_str().unwrap();
    assert!(href.contains("detailed=true"), "{href}");
    let next = json_of(s.req(Method::GET, href).send().await.unwrap()).await;
    assert_eq!(next["queues"][0]["metadata"], defaults());
    // Booleans are rendered true/false in next links, whatever spelling was sent.
    let page = list(&s, "?detailed=yes&with_count=1&limit=1").await;
    let href = page["links"][0]["href"].as_str().unwrap();
    assert!(href.contains("detailed=true"), "{href}");
    assert!(href.contains("with_count=true"), "{href}");
    assert!(!href.contains("yes"), "{href}");
    // Not detailed: no metadata key at all.
    for q in ["", "?detailed=false"] {
        let page = list(&s, q).await;
        for item in page["queues"].as_array().unwrap() {
            assert!(item.get("metadata").is_none(), "{item}");
        }
    }
}

#[tokio::test]
async fn list_with_count_counts_all_queues_ignoring_filters_and_paging() {
    let s = TestServer::start().await;
    put(&s, "apple", Some(json!({"kind": "fruit"}))).await;
    put(&s, "banana", Some(json!({"kind": "fruit"}))).await;
    put(&s, "carrot", Some(json!({"kind": "veg"}))).await;
    let page = list(&s, "?with_count=true&limit=1").await;
    assert_eq!(names(&page), vec!["apple"]);
    assert_eq!(page["count"], 3);
    let page = list(&s, "?with_count=true&kind=veg").await;
    assert_eq!(names(&page), vec!["carrot"]);
    assert_eq!(page["count"], 3);
    let page = list(&s, "?with_count=true&name=zzz").await;
    assert_eq!(names(&page), Vec::<String>::new());
    assert_eq!(page["count"], 3);
    for q in ["", "?with_count=false"] {
        assert!(list(&s, q).await.get("count").is_none(), "{q}");
    }
    // Other projects' queues are not counted.
    let other = json_of(
        s.http
            .get(s.url("/v2/queues?with_count=true"))
            .header("Client-ID", OTHER_CLIENT)
            .header("X-Project-ID", "another")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(other, json!({"queues": [], "links": []}));
}

#[tokio::test]
async fn list_name_filter_is_a_literal_substring() {
    let s = TestServer::start().await;
    for name in ["alpha", "alphabet", "beta", "a.b", "axb", "gamma"] {
        put(&s, name, None).await;
    }
    assert_eq!(
        names(&list(&s, "?name=pha").await),
        vec!["alpha", "alphabet"]
    );
    assert_eq!(names(&list(&s, "?name=a.b").await), vec!["a.b"]);
    assert_eq!(names(&list(&s, "?name=ma").await), vec!["gamma"]);
    let page = list(&s, "?name=a&limit=2").await;
    assert_eq!(names(&page), vec!["a.b", "alpha"]);
    let href = page["links"][0]["href"].as_str().unwrap();
    assert!(href.contains("name=a"), "filter kept in next link: {href}");
    let next = json_of(s.req(Method::GET, href).send().await.unwrap()).await;
    assert_eq!(names(&next), vec!["alphabet", "axb"]);
}

#[tokio::test]
async fn list_metadata_filters_coerce_integers() {
    let s = TestServer::start().await;
    put(&s, "q1", Some(json!({"size": 3, "color": "red"}))).await;
    put(&s, "q2", Some(json!({"size": "3", "color": "blue"}))).await;
    put(&s, "q3", Some(json!({"size": 4, "color": "red"}))).await;
    put(&s, "q4", None).await;
    assert_eq!(names(&list(&s, "?size=3").await), vec!["q1"]);
    assert_eq!(names(&list(&s, "?color=red").await), vec!["q1", "q3"]);
    assert_eq!(names(&list(&s, "?color=red&size=4").await), vec!["q3"]);
    assert_eq!(names(&list(&s, "?color=green").await), Vec::<String>::new());
    let page = list(&s, "?color=red&limit=1").await;
    assert_eq!(names(&page), vec!["q1"]);
    let href = page["links"][0]["href"].as_str().unwrap();
    assert!(
        href.contains("color=red"),
        "filter kept in next link: {href}"
    );
    let next = json_of(s.req(Method::GET, href).send().await.unwrap()).await;
    assert_eq!(names(&next), vec!["q3"]);
}

// ----- stats --------------------------------------------------------------------------------

#[tokio::test]
async fn stats_of_missing_queue_are_zeros() {
    let s = TestServer::start().await;
    assert_eq!(
        stats(&s, "ghost").await,
        json!({"messages": {"claimed": 0, "free": 0, "total": 0}})
    );
    assert_eq!(list(&s, "").await["queues"], json!([]), "not created");
    put(&s, "empty", None).await;
    assert_eq!(
        stats(&s, "empty").await,
        json!({"messages": {"claimed": 0, "free": 0, "total": 0}})
    );
}

#[tokio::test]
async fn stats_count_claimed_and_free_with_oldest_and_newest() {
    let s = TestServer::start().await;
    let first = s.post("st", json!([{"body": 1}])).await;
    s.clock.advance_secs(10);
    s.post("st", json!([{"body": 2}])).await;
    s.clock.advance_secs(10);
    let last = s.post("st", json!([{"body": 3}])).await;
    s.clock.advance_secs(5);
    let (_, claimed) = s.claim("st", None, Some(1)).await.unwrap();
    assert_eq!(claimed[0]["id"], first[0].as_str());
    let st = stats(&s, "st").await;
    assert_eq!(
        st,
        json!({"messages": {
            "claimed": 1, "free": 2, "total": 3,
            "oldest": {
                "id": first[0],
                "href": format!("/v2/queues/st/messages/{}", first[0]),
                "age": 25,
                "created": "2026-01-01T00:00:00Z",
            },
            "newest": {
                "id": last[0],
                "href": format!("/v2/queues/st/messages/{}", last[0]),
                "age": 5,
                "created": "2026-01-01T00:00:20Z",
            },
        }})
    );
    // Deleting the oldest moves `oldest`; deleting all empties the stats.
    let resp = s
        .req(
            Method::DELETE,
            &format!("/v2/queues/st/messages?ids={}", first[0]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let st = stats(&s, "st").await;
    assert_eq!(st["messages"]["claimed"], 0);
    assert_eq!(st["messages"]["free"], 2);
    assert_eq!(st["messages"]["oldest"]["created"], "2026-01-01T00:00:10Z");
    assert_eq!(st["messages"]["oldest"]["age"], 15);
}

// ----- purge --------------------------------------------------------------------------------

async fn purge(s: &TestServer, name: &str, body: Option<&str>) -> reqwest::Response {
    let mut req = s.req(Method::POST, &format!("/v2/queues/{name}/purge"));
    if let Some(b) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn purge_removes_all_messages_including_claimed_ones() {
    let s = TestServer::start().await;
    put(&s, "pq", Some(json!({"keep": true}))).await;
    s.post("pq", json!([{"body": 1}, {"body": 2}, {"body": 3}]))
        .await;
    let (cid, _) = s.claim("pq", None, Some(2)).await.unwrap();
    let resp = purge(&s, "pq", Some(r#"{"resource_types": ["messages"]}"#)).await;
    assert_eq!(resp.status().as_u16(), 204);
    assert!(resp.bytes().await.unwrap().is_empty());
    assert_eq!(
        stats(&s, "pq").await,
        json!({"messages": {"claimed": 0, "free": 0, "total": 0}})
    );
    // The queue and its metadata stay; the claims are gone with the messages.
    assert_eq!(get_meta(&s, "pq").await["keep"], true);
    assert_eq!(names(&list(&s, "").await), vec!["pq"]);
    let resp = s
        .req(Method::GET, &format!("/v2/queues/pq/claims/{cid}"))
        .send()
        .await
        .unwrap();
    expect_error(resp, 404, "Not found", None).await;
    // New messages can be posted and claimed afterwards.
    s.post("pq", json!([{"body": 4}])).await;
    let (_, msgs) = s.claim("pq", None, None).await.unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["body"], 4);
}

#[tokio::test]
async fn purge_without_body_purges_messages() {
    let s = TestServer::start().await;
    s.post("pq", json!([{"body": 1}])).await;
    assert_eq!(purge(&s, "pq", None).await.status().as_u16(), 204);
    assert_eq!(stats(&s, "pq").await["messages"]["total"], 0);
    let resp = purge(
        &s,
        "pq",
        Some(r#"{"resource_types": ["messages", "subscriptions"]}"#),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 204);
}

#[tokio::test]
async fn purge_of_subscriptions_only_keeps_messages() {
    let s = TestServer::start().await;
    s.post("pq", json!([{"body": 1}, {"body": 2}])).await;
    let resp = purge(&s, "pq", Some(r#"{"resource_types": ["subscriptions"]}"#)).await;
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(stats(&s, "pq").await["messages"]["total"], 2);
}

#[tokio::test]
async fn purge_body_rules() {
    let s = TestServer::start().await;
    s.post("pq", json!([{"body": 1}])).await;
    for body in [
        r#"{}"#,
        r#"{"types": ["messages"]}"#,
        r#"{"resource_types": ["bogus"]}"#,
        r#"{"resource_types": ["messages", "claims"]}"#,
        r#"{"resource_types": "messages"}"#,
        r#"{"resource_types": [1]}"#,
    ] {
        let resp = purge(&s, "pq", Some(body)).await;
        let err = expect_error(resp, 400, "Invalid API request", None).await;
        assert!(err["description"].is_string(), "{body}");
    }
    let resp = purge(&s, "pq", Some(r#"{"x": 1}"#)).await;
    expect_error(
        resp,
        400,
        "Invalid API request",
        Some("Post body must contain key \"resource_types\"."),
    )
    .await;
    for (body, description) in [
        ("[\"messages\"]", "Document type not supported."),
        ("{\"resource_types\": ", "Request body could not be parsed."),
    ] {
        let resp = purge(&s, "pq", Some(body)).await;
        expect_error(resp, 400, "Invalid request body", Some(description)).await;
    }
    assert_eq!(
        stats(&s, "pq").await["messages"]["total"],
        1,
        "nothing purged"
    );
}

#[tokio::test]
async fn purge_of_missing_queue_is_204_and_creates_nothing() {
    let s = TestServer::start().await;
    assert_eq!(purge(&s, "ghost", None).await.status().as_u16(), 204);
    assert_eq!(list(&s, "").await["queues"], json!([]));
}
