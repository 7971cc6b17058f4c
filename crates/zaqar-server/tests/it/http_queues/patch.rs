//! Black-box HTTP tests of PATCH on a queue's metadata: the JSON-patch media type, operations
//! and pointer syntax, conflicts, atomicity and size limits (spec §1.2, §3.3).

use zaqar_testkit as common;

use common::{expect_error, json_of, TestServer};
use reqwest::Method;
use serde_json::json;

use super::{defaults, get_meta, list, patch, put, with_defaults, PATCH_CT};

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
