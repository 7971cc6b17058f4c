//! Per-project quotas and rate limits, CORS, and the access policy file.

mod common;

use common::{expect_error, TestServer, CLIENT};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn queue_quota_counts_explicit_and_lazy_creation() {
    let s = TestServer::start_with(&[("quotas", "max_queues_per_project", "2")]).await;
    for q in ["a", "b"] {
        let r = s
            .req(Method::PUT, &format!("/v2/queues/{q}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
    let r = s.req(Method::PUT, "/v2/queues/c").send().await.unwrap();
    expect_error(r, 403, "Not authorized", Some("Quota exceeded")).await;
    let r = s
        .req(Method::POST, "/v2/queues/d/messages")
        .json(&json!({"messages": [{"body": 1}]}))
        .send()
        .await
        .unwrap();
    expect_error(r, 403, "Not authorized", Some("at most 2 queues")).await;
    // Existing queues keep working.
    let r = s.req(Method::PUT, "/v2/queues/a").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    s.post("a", json!([{"body": 1}])).await;
    // Other projects have their own count.
    let r = s
        .http
        .put(s.url("/v2/queues/c"))
        .header("Client-ID", CLIENT)
        .header("X-Project-ID", "another")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
}

#[tokio::test]
async fn queue_depth_quota_refuses_posts_beyond_it_until_messages_are_consumed() {
    let s = TestServer::start_with(&[("quotas", "max_messages_per_queue", "3")]).await;
    let ids = s.post("deep", json!([{"body": 1}, {"body": 2}])).await;
    // A batch that would go past the limit is refused whole.
    let r = s
        .req(Method::POST, "/v2/queues/deep/messages")
        .json(&json!({"messages": [{"body": 3}, {"body": 4}]}))
        .send()
        .await
        .unwrap();
    expect_error(r, 403, "Not authorized", Some("at most 3")).await;
    s.post("deep", json!([{"body": 3}])).await;
    let r = s
        .req(Method::POST, "/v2/queues/deep/messages")
        .json(&json!({"messages": [{"body": 4}]}))
        .send()
        .await
        .unwrap();
    expect_error(r, 403, "Not authorized", Some("Quota exceeded")).await;
    // Other queues have their own depth; consuming makes room.
    s.post("shallow", json!([{"body": 1}])).await;
    let r = s
        .req(
            Method::DELETE,
            &format!("/v2/queues/deep/messages?ids={}", ids[0]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    s.post("deep", json!([{"body": 4}])).await;
}

#[tokio::test]
async fn rate_limits_are_per_project_with_retry_after() {
    let s = TestServer::start_with(&[
        ("quotas", "requests_per_second", "1"),
        ("quotas", "burst", "3"),
    ])
    .await;
    for _ in 0..3 {
        let r = s.req(Method::GET, "/v2/queues").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    let r = s.req(Method::GET, "/v2/queues").send().await.unwrap();
    assert_eq!(r.headers()["retry-after"], "1");
    expect_error(r, 429, "Too many requests", Some("Rate limit")).await;
    let other = s
        .http
        .get(s.url("/v2/queues"))
        .header("Client-ID", CLIENT)
        .header("X-Project-ID", "someone-else")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 200);
    s.clock.advance_secs(1);
    let r = s.req(Method::GET, "/v2/queues").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test]
async fn cors_preflight_and_simple_requests() {
    let s = TestServer::start_with(&[("cors", "allowed_origin", "https://app.example")]).await;
    let pre = s
        .http
        .request(Method::OPTIONS, s.url("/v2/queues"))
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "client-id")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status().as_u16(), 200, "preflight needs no credentials");
    assert_eq!(
        pre.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(pre.headers()["access-control-allow-credentials"], "true");
    let allowed = pre.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(allowed.contains("PATCH"), "{allowed}");
    let r = s
        .req(Method::GET, "/v2/queues")
        .header("Origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("x-openstack-request-id"), "{exposed}");
    let r = s
        .req(Method::GET, "/v2/queues")
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    // Without configuration there is no CORS at all.
    let plain = TestServer::start().await;
    let r = plain
        .req(Method::GET, "/v2/queues")
        .header("Origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn policy_files_override_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(
        &path,
        "# only operators delete queues\n\"queues:delete\": \"role:admin or role:operator\"\n",
    )
    .unwrap();
    let s = TestServer::start_with(&[("oslo_policy", "policy_file", path.to_str().unwrap())]).await;
    let r = s.req(Method::DELETE, "/v2/queues/q").send().await.unwrap();
    expect_error(r, 403, "Not authorized", None).await;
    let r = s
        .req(Method::DELETE, "/v2/queues/q")
        .header("X-Roles", "member,operator")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let r = s.req(Method::PUT, "/v2/queues/q").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201, "other rules keep their defaults");
}
