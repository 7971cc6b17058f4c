//! Black-box HTTP tests of queue stats (claimed and free counts, oldest and newest) and of
//! purge with its body rules (spec §1.14, §3.3).

use zaqar_testkit as common;

use common::{expect_error, TestServer};
use reqwest::Method;
use serde_json::json;

use super::{get_meta, list, names, put, stats};

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
