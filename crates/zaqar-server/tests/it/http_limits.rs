//! Per-project quotas and rate limits, CORS, and the access policy file.

use zaqar_testkit as common;

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

/// `{"messages": [...]}` of bodies that are strings of `n - 2` letters: `n` bytes each.
fn bodies(sizes: &[usize]) -> serde_json::Value {
    json!({ "messages": items(sizes) })
}

fn items(sizes: &[usize]) -> serde_json::Value {
    sizes
        .iter()
        .map(|n| json!({"body": "b".repeat(n - 2), "ttl": 300}))
        .collect()
}

async fn post_sized(s: &TestServer, path: &str, sizes: &[usize]) -> reqwest::Response {
    s.req(Method::POST, path)
        .json(&bodies(sizes))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn bytes_quota_counts_stored_bodies_of_queues_and_topics() {
    let s = TestServer::start_with(&[("quotas", "max_bytes_per_project", "100")]).await;
    let ids = s.post("a", items(&[30, 30])).await;
    let r = post_sized(&s, "/v2/topics/t/messages", &[30]).await;
    assert_eq!(r.status().as_u16(), 201);
    // 90 stored: 30 more would make 120.
    let r = post_sized(&s, "/v2/queues/b/messages", &[30]).await;
    let body = expect_error(r, 403, "Not authorized", Some("Quota exceeded")).await;
    let text = body["description"].as_str().unwrap();
    assert!(text.contains("stores 90 bytes"), "{text}");
    assert!(text.contains("at most 100"), "{text}");
    assert!(text.contains("Delete or consume"), "{text}");
    let r = post_sized(&s, "/v2/topics/t/messages", &[30]).await;
    expect_error(r, 403, "Not authorized", Some("stores 90 bytes")).await;
    // Up to the limit exactly is fine.
    let r = post_sized(&s, "/v2/queues/a/messages", &[10]).await;
    assert_eq!(r.status().as_u16(), 201);
    // Another project has its own allowance.
    let r = s
        .http
        .post(s.url("/v2/queues/a/messages"))
        .header("Client-ID", CLIENT)
        .header("X-Project-ID", "another")
        .json(&bodies(&[90]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    // Consuming makes room at once (a refusal is decided on a fresh figure).
    let r = s
        .req(
            Method::DELETE,
            &format!("/v2/queues/a/messages?ids={}", ids[0]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let r = post_sized(&s, "/v2/queues/b/messages", &[30]).await;
    assert_eq!(r.status().as_u16(), 201);
    // Expired messages stop counting.
    let r = post_sized(&s, "/v2/queues/b/messages", &[30]).await;
    expect_error(r, 403, "Not authorized", Some("Quota exceeded")).await;
    s.clock.advance_secs(301);
    let r = post_sized(&s, "/v2/queues/b/messages", &[100]).await;
    assert_eq!(r.status().as_u16(), 201);
    // A batch larger than the whole allowance is refused whole.
    s.clock.advance_secs(301);
    let r = post_sized(&s, "/v2/queues/b/messages", &[60, 60]).await;
    expect_error(r, 403, "Not authorized", Some("would add 120 bytes")).await;
}

#[tokio::test]
async fn bytes_quota_from_the_overrides_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quotas.json");
    std::fs::write(&path, r#"{"test-project": {"max_bytes": 20}}"#).unwrap();
    let s = TestServer::start_with(&[
        ("quotas", "max_bytes_per_project", "1000"),
        ("quotas", "overrides_file", path.to_str().unwrap()),
    ])
    .await;
    let r = post_sized(&s, "/v2/queues/a/messages", &[30]).await;
    expect_error(r, 403, "Not authorized", Some("at most 20")).await;
    let r = post_sized(&s, "/v2/queues/a/messages", &[20]).await;
    assert_eq!(r.status().as_u16(), 201);
}

fn as_admin(s: &TestServer, m: Method, path: &str) -> reqwest::RequestBuilder {
    s.req(m, path).header("X-Roles", "admin")
}

async fn pooled() -> TestServer {
    let s = TestServer::start_with(&[
        ("DEFAULT", "admin_mode", "true"),
        ("DEFAULT", "pooling", "true"),
        ("quotas", "max_queues_per_project", "100"),
        ("quotas", "limits_cache_seconds", "5"),
    ])
    .await;
    let r = as_admin(&s, Method::PUT, "/v2/pools/one")
        .json(&json!({"weight": 1, "uri": "embedded://one"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    s
}

#[tokio::test]
async fn admins_set_read_and_remove_project_limits() {
    let s = pooled().await;
    let path = "/v2/quotas/test-project";
    let r = as_admin(&s, Method::GET, path).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body = common::json_of(r).await;
    assert_eq!(body["project"], "test-project");
    assert_eq!(body["quota"], json!({}));
    assert_eq!(body["effective"]["max_queues"], 100);
    assert_eq!(body["effective"]["max_bytes"], 0);
    let r = as_admin(&s, Method::PUT, path)
        .json(&json!({"max_queues": 1, "max_bytes": 50, "burst": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body = common::json_of(r).await;
    assert_eq!(body["quota"], json!({"max_queues": 1, "max_bytes": 50}));
    assert_eq!(body["effective"]["max_messages_per_queue"], 0);
    assert_eq!(body["href"], path);
    // In force at once on this node.
    let r = s.req(Method::PUT, "/v2/queues/one").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let r = s.req(Method::PUT, "/v2/queues/two").send().await.unwrap();
    expect_error(r, 403, "Not authorized", Some("at most 1 queues")).await;
    let r = post_sized(&s, "/v2/queues/one/messages", &[60]).await;
    expect_error(r, 403, "Not authorized", Some("at most 50")).await;
    // What the project uses, with its limits.
    let r = post_sized(&s, "/v2/queues/one/messages", &[20]).await;
    assert_eq!(r.status().as_u16(), 201);
    let r = post_sized(&s, "/v2/topics/news/messages", &[25]).await;
    assert_eq!(r.status().as_u16(), 201);
    let r = as_admin(&s, Method::GET, path).send().await.unwrap();
    assert_eq!(
        common::json_of(r).await["usage"],
        json!({"queues": 1, "topics": 1, "bytes": 45})
    );
    // A rate for another project: a burst of one request (twice 0.5), then one every two
    // seconds.
    let r = as_admin(&s, Method::PUT, "/v2/quotas/slow")
        .json(&json!({"requests_per_second": 0.5}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        common::json_of(r).await["quota"],
        json!({"requests_per_second": 0.5})
    );
    let slow = || {
        s.http
            .get(s.url("/v2/queues"))
            .header("Client-ID", CLIENT)
            .header("X-Project-ID", "slow")
    };
    assert_eq!(slow().send().await.unwrap().status().as_u16(), 200);
    let r = slow().send().await.unwrap();
    expect_error(r, 429, "Too many requests", None).await;
    s.clock.advance_secs(2);
    assert_eq!(slow().send().await.unwrap().status().as_u16(), 200);
    // Listed, with paging links.
    let r = as_admin(&s, Method::GET, "/v2/quotas?limit=5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let list = common::json_of(r).await;
    let projects: Vec<_> = list["quotas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["project"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(projects, ["slow", "test-project"]);
    assert!(
        list["quotas"][0].get("usage").is_none(),
        "usage is shown for one project only"
    );
    let next = list["links"][0]["href"].as_str().unwrap();
    assert!(next.contains("marker=test-project"), "{next}");
    let r = as_admin(&s, Method::GET, "/v2/quotas?marker=slow")
        .send()
        .await
        .unwrap();
    assert_eq!(
        common::json_of(r).await["quotas"][0]["project"],
        "test-project"
    );
    // Removed: back to [quotas].
    let r = as_admin(&s, Method::DELETE, path).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let r = as_admin(&s, Method::DELETE, path).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204, "deleting again is fine");
    let r = s.req(Method::PUT, "/v2/queues/two").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let r = as_admin(&s, Method::GET, "/v2/quotas")
        .send()
        .await
        .unwrap();
    assert_eq!(common::json_of(r).await["quotas"][0]["project"], "slow");
}

#[tokio::test]
async fn limits_changed_through_another_node_apply_within_the_cache_time() {
    let s = pooled().await;
    let r = s.req(Method::PUT, "/v2/queues/one").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    // What another node writes to the shared management store.
    let mgmt = s.service.pools().unwrap().management().clone();
    let entry = zaqar_core::store::management::ProjectQuota {
        max_queues: Some(1),
        ..Default::default()
    };
    mgmt.put_quota(common::PROJECT, &entry).await.unwrap();
    let r = s.req(Method::PUT, "/v2/queues/two").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201, "this node's cached read is fresh");
    s.clock.advance_secs(5);
    let r = s.req(Method::PUT, "/v2/queues/three").send().await.unwrap();
    expect_error(r, 403, "Not authorized", Some("at most 1 queues")).await;
    mgmt.delete_quota(common::PROJECT).await.unwrap();
    s.clock.advance_secs(5);
    let r = s.req(Method::PUT, "/v2/queues/three").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
}

#[tokio::test]
async fn quota_routes_are_admin_only_and_validate_their_input() {
    let s = pooled().await;
    for (m, path) in [
        (Method::GET, "/v2/quotas"),
        (Method::GET, "/v2/quotas/p"),
        (Method::PUT, "/v2/quotas/p"),
        (Method::DELETE, "/v2/quotas/p"),
    ] {
        let r = s
            .req(m, path)
            .header("X-Roles", "member")
            .json(&json!({"max_bytes": 1}))
            .send()
            .await
            .unwrap();
        expect_error(r, 403, "Not authorized", None).await;
    }
    for (body, title, why) in [
        (
            json!({"max_bytes": -1}),
            "Invalid API request",
            "\"max_bytes\" must be an integer",
        ),
        (
            json!({"max_queues": 1.5}),
            "Invalid API request",
            "\"max_queues\" must be an integer",
        ),
        (
            json!({"burst": -2}),
            "Invalid API request",
            "\"burst\" must be a number",
        ),
        (
            json!({"requests_per_second": "5"}),
            "Invalid API request",
            "must be a number",
        ),
        (
            json!({"max_byte": 1}),
            "Invalid API request",
            "'max_byte' was unexpected",
        ),
        (json!([1]), "Invalid request body", ""),
    ] {
        let r = as_admin(&s, Method::PUT, "/v2/quotas/p")
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_error(r, 400, title, Some(why)).await;
    }
    let r = as_admin(&s, Method::PUT, "/v2/quotas/p")
        .header("Content-Type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = as_admin(&s, Method::GET, "/v2/quotas/a%01topics")
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "Invalid project identification", None).await;
    let r = as_admin(&s, Method::GET, "/v2/quotas?limit=0")
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "Invalid API request", Some("Limit")).await;
    // A rejected body changed nothing.
    let r = as_admin(&s, Method::GET, "/v2/quotas/p")
        .send()
        .await
        .unwrap();
    assert_eq!(common::json_of(r).await["quota"], json!({}));
}

#[tokio::test]
async fn quota_routes_need_admin_mode_and_a_management_store() {
    let plain = TestServer::start().await;
    let r = as_admin(&plain, Method::GET, "/v2/quotas/p")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404, "no route without admin_mode");
    let s = TestServer::start_with(&[("DEFAULT", "admin_mode", "true")]).await;
    for m in [Method::GET, Method::PUT, Method::DELETE] {
        let r = as_admin(&s, m, "/v2/quotas/p")
            .json(&json!({"max_bytes": 1}))
            .send()
            .await
            .unwrap();
        expect_error(r, 404, "Not found", Some("management store")).await;
    }
}

#[tokio::test]
async fn websocket_quota_actions() {
    use common::ws::WsClient;
    let s = pooled().await;
    let mut ws = WsClient::to(&s).await;
    let call = |action: &str, body: serde_json::Value, roles: &str| {
        json!({"action": action,
               "headers": {"Client-ID": CLIENT, "X-Project-ID": common::PROJECT,
                           "X-Roles": roles},
               "body": body})
    };
    ws.send_json(&call(
        "quota_set",
        json!({"project_id": "p", "quota": {"max_bytes": 5}}),
        "member",
    ))
    .await;
    assert_eq!(ws.recv().await.status, 403);
    ws.send_json(&call(
        "quota_set",
        json!({"project_id": "p", "quota": {"max_bytes": -5}}),
        "admin",
    ))
    .await;
    assert_eq!(ws.recv().await.status, 400);
    ws.send_json(&call(
        "quota_set",
        json!({"project_id": "p", "quota": {"max_bytes": 5}}),
        "admin",
    ))
    .await;
    let r = ws.recv().await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["quota"], json!({"max_bytes": 5}));
    ws.send_json(&call("quota_get", json!({"project_id": "p"}), "admin"))
        .await;
    assert_eq!(ws.recv().await.body["effective"]["max_bytes"], 5);
    ws.send_json(&call("quota_list", json!({}), "admin")).await;
    let r = ws.recv().await;
    assert_eq!(r.body["quotas"][0]["project"], "p");
    ws.send_json(&call("quota_delete", json!({"project_id": "p"}), "admin"))
        .await;
    assert_eq!(ws.recv().await.status, 204);
}
