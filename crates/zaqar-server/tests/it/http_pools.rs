//! The pools and flavors admin API (spec §3.8, §3.9) over HTTP, and its WebSocket actions:
//! routes only with admin_mode + pooling, admin-only policy, validation errors, placement of
//! queues on registered pools, and the rules of pool and flavor removal.

use zaqar_testkit as common;

use common::ws::WsClient;
use common::{expect_error, json_of, TestServer, CLIENT, PROJECT};
use reqwest::Method;
use serde_json::{json, Value};

async fn pooled_server() -> TestServer {
    TestServer::start_with(&[
        ("DEFAULT", "admin_mode", "true"),
        ("DEFAULT", "pooling", "true"),
    ])
    .await
}

fn admin(s: &TestServer, m: Method, path: &str) -> reqwest::RequestBuilder {
    s.req(m, path).header("X-Roles", "admin")
}

async fn put_pool(s: &TestServer, name: &str, body: Value) -> reqwest::Response {
    admin(s, Method::PUT, &format!("/v2/pools/{name}"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn routes_exist_only_with_admin_mode_and_pooling() {
    let plain = TestServer::start_with(&[("DEFAULT", "admin_mode", "true")]).await;
    let r = admin(&plain, Method::GET, "/v2/pools")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = admin(&plain, Method::GET, "/v2/flavors")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let s = TestServer::start_with(&[("DEFAULT", "pooling", "true")]).await;
    let r = admin(&s, Method::GET, "/v2/pools").send().await.unwrap();
    assert_eq!(r.status(), 404, "pooling without admin_mode");
}

#[tokio::test]
async fn pools_are_admin_only() {
    let s = pooled_server().await;
    for (m, path) in [
        (Method::GET, "/v2/pools"),
        (Method::GET, "/v2/pools/a"),
        (Method::PUT, "/v2/pools/a"),
        (Method::PATCH, "/v2/pools/a"),
        (Method::DELETE, "/v2/pools/a"),
        (Method::PUT, "/v2/flavors/f"),
        (Method::DELETE, "/v2/flavors/f"),
    ] {
        let r = s
            .req(m.clone(), path)
            .header("X-Roles", "member")
            .json(&json!({"weight": 1, "uri": "embedded://a"}))
            .send()
            .await
            .unwrap();
        expect_error(r, 403, "Not authorized", None).await;
    }
    // Listing flavors is not protected.
    let r = s.req(Method::GET, "/v2/flavors").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json_of(r).await["flavors"], json!([]));
}

#[tokio::test]
async fn pool_validation_errors() {
    let s = pooled_server().await;
    let long_uri = format!("embedded://{}", "x".repeat(250));
    for body in [
        json!({"uri": "embedded://a"}),
        json!({"weight": 1}),
        json!({"weight": -1, "uri": "embedded://a"}),
        json!({"weight": 4294967296u64, "uri": "embedded://a"}),
        json!({"weight": "1", "uri": "embedded://a"}),
        json!({"weight": 1.5, "uri": "embedded://a"}),
        json!({"weight": 1, "uri": 7}),
        json!({"weight": 1, "uri": "not a uri"}),
        json!({"weight": 1, "uri": long_uri}),
        json!({"weight": 1, "uri": "embedded://a", "flavor": 3}),
        json!({"weight": 1, "uri": "embedded://a", "options": []}),
        json!({"weight": 1, "uri": "embedded://a", "extra": true}),
        json!([1]),
    ] {
        let r = put_pool(&s, "a", body.clone()).await;
        assert_eq!(r.status(), 400, "{body}: {}", r.text().await.unwrap());
    }
    let r = admin(&s, Method::PUT, "/v2/pools/a")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = put_pool(
        &s,
        "bad%20name",
        json!({"weight": 1, "uri": "embedded://a"}),
    )
    .await;
    assert_eq!(r.status(), 400);
    // Unreachable or unknown backends.
    let r = put_pool(&s, "a", json!({"weight": 1, "uri": "redis://127.0.0.1:1"})).await;
    expect_error(
        r,
        400,
        "Invalid API request",
        Some("cannot connect to redis://127.0.0.1:1"),
    )
    .await;
    let r = put_pool(
        &s,
        "a",
        json!({"weight": 1, "uri": "mongodb://127.0.0.1:27017"}),
    )
    .await;
    expect_error(r, 400, "Invalid API request", Some("cannot connect")).await;
    // Nothing was registered.
    let r = admin(&s, Method::GET, "/v2/pools").send().await.unwrap();
    assert_eq!(json_of(r).await["pools"], json!([]));
}

#[tokio::test]
async fn pool_crud_and_placement() {
    let s = pooled_server().await;
    // No pool: creating a queue is 503 (no pool found).
    let r = s.req(Method::PUT, "/v2/queues/early").send().await.unwrap();
    assert_eq!(r.status(), 503);

    let r = put_pool(
        &s,
        "a",
        json!({"weight": 10, "uri": "embedded://pool-a", "options": {"shards": 1}}),
    )
    .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    assert_eq!(r.headers()["location"], "/v2/pools/a");
    let r = put_pool(&s, "b", json!({"weight": 10, "uri": "embedded://pool-b"})).await;
    assert_eq!(r.status(), 201);
    // Same URI as another pool.
    let r = put_pool(&s, "c", json!({"weight": 1, "uri": "embedded://pool-a"})).await;
    expect_error(r, 409, "Resource conflict", None).await;

    let r = admin(&s, Method::GET, "/v2/pools/a").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body = json_of(r).await;
    assert_eq!(
        body,
        json!({"name": "a", "uri": "embedded://pool-a", "weight": 10, "flavor": null,
               "href": "/v2/pools/a"})
    );
    let r = admin(&s, Method::GET, "/v2/pools/a?detailed=true")
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["options"], json!({"shards": 1}));
    let r = admin(&s, Method::GET, "/v2/pools/zz").send().await.unwrap();
    expect_error(r, 404, "Not found", None).await;

    let r = admin(&s, Method::GET, "/v2/pools?limit=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-location"], "/v2/pools?limit=1");
    let body = json_of(r).await;
    assert_eq!(body["pools"].as_array().unwrap().len(), 1);
    let next = body["links"][0]["href"].as_str().unwrap().to_string();
    assert!(next.contains("marker=a"), "{next}");
    let r = admin(&s, Method::GET, &next).send().await.unwrap();
    let body = json_of(r).await;
    assert_eq!(body["pools"][0]["name"], "b");
    let r = admin(&s, Method::GET, "/v2/pools?limit=0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = admin(&s, Method::GET, "/v2/pools?limit=21")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // PATCH
    let r = admin(&s, Method::PATCH, "/v2/pools/a")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = admin(&s, Method::PATCH, "/v2/pools/zz")
        .json(&json!({"weight": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = admin(&s, Method::PATCH, "/v2/pools/b")
        .json(&json!({"weight": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json_of(r).await["weight"], 0);

    // Queues now all go to pool a; messages flow normally.
    for i in 0..5 {
        let q = format!("q{i}");
        s.post(&q, json!([{"body": i, "ttl": 300}])).await;
        let claimed = s.claim(&q, None, Some(5)).await.expect("claimed");
        assert_eq!(claimed.1.len(), 1);
    }
    let r = s.req(Method::GET, "/v2/queues").send().await.unwrap();
    assert_eq!(json_of(r).await["queues"].as_array().unwrap().len(), 5);

    // A pool holding queues cannot be removed; an empty one can, missing ones too.
    let r = admin(&s, Method::DELETE, "/v2/pools/a")
        .send()
        .await
        .unwrap();
    expect_error(r, 409, "Resource conflict", Some("still holds queues")).await;
    let r = admin(&s, Method::DELETE, "/v2/pools/b")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = admin(&s, Method::DELETE, "/v2/pools/b")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    for i in 0..5 {
        let r = s
            .req(Method::DELETE, &format!("/v2/queues/q{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    let r = admin(&s, Method::DELETE, "/v2/pools/a")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

#[tokio::test]
async fn flavors() {
    let s = pooled_server().await;
    assert_eq!(
        put_pool(&s, "plain", json!({"weight": 1, "uri": "embedded://plain"}))
            .await
            .status(),
        201
    );
    assert_eq!(
        put_pool(&s, "g1", json!({"weight": 1, "uri": "embedded://g1"}))
            .await
            .status(),
        201
    );
    let put_flavor = |body: Value| {
        admin(&s, Method::PUT, "/v2/flavors/gold")
            .json(&body)
            .send()
    };
    for body in [
        json!({}),
        json!({"pool_list": []}),
        json!({"pool_list": ["nope"]}),
        json!({"pool_list": "g1"}),
        json!({"pool_list": ["g1"], "other": 1}),
    ] {
        let r = put_flavor(body.clone()).await.unwrap();
        assert_eq!(r.status(), 400, "{body}");
    }
    let r = put_flavor(json!({"pool_list": ["g1"], "capabilities": {"x": 1}}))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["location"], "/v2/flavors/gold");
    let r = s.req(Method::GET, "/v2/flavors/gold").send().await.unwrap();
    assert_eq!(
        json_of(r).await,
        json!({"name": "gold", "href": "/v2/flavors/gold", "pool_list": ["g1"],
               "capabilities": ["FIFO", "CLAIMS", "DURABILITY", "AOD"]})
    );
    let r = s.req(Method::GET, "/v2/flavors").send().await.unwrap();
    assert_eq!(
        json_of(r).await["flavors"][0],
        json!({"name": "gold", "href": "/v2/flavors/gold", "pool_list": ["g1"]})
    );
    let r = admin(&s, Method::GET, "/v2/pools/g1").send().await.unwrap();
    assert_eq!(json_of(r).await["flavor"], "gold");
    // Flavors are per project.
    let r = s
        .http
        .get(s.url("/v2/flavors/gold"))
        .header("Client-ID", CLIENT)
        .header("X-Project-ID", "someone-else")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Queues with _flavor go to the flavor's pool, others to flavor-less pools.
    let r = s
        .req(Method::PUT, "/v2/queues/golden")
        .json(&json!({"_flavor": "gold"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    s.post("golden", json!([{"body": 1}])).await;
    s.post("plainq", json!([{"body": 1}])).await;
    let pooled = s.service.pools().unwrap();
    assert_eq!(
        pooled
            .pool_of_queue(PROJECT, "golden")
            .await
            .unwrap()
            .as_deref(),
        Some("g1")
    );
    assert_eq!(
        pooled
            .pool_of_queue(PROJECT, "plainq")
            .await
            .unwrap()
            .as_deref(),
        Some("plain")
    );
    let r = s
        .req(Method::PUT, "/v2/queues/unknown")
        .json(&json!({"_flavor": "silver"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // The last pool of a flavor cannot be removed.
    let r = admin(&s, Method::DELETE, "/v2/pools/g1")
        .send()
        .await
        .unwrap();
    expect_error(r, 403, "Unable to delete", Some("used by flavors gold")).await;

    // PATCH
    let r = admin(&s, Method::PATCH, "/v2/flavors/silver")
        .json(&json!({"pool_list": ["g1"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = admin(&s, Method::PATCH, "/v2/flavors/gold")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = admin(&s, Method::PATCH, "/v2/flavors/gold")
        .json(&json!({"pool_list": ["g1", "plain"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json_of(r).await["pool_list"], json!(["g1", "plain"]));

    let r = admin(&s, Method::DELETE, "/v2/flavors/gold")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = admin(&s, Method::GET, "/v2/pools/g1").send().await.unwrap();
    assert_eq!(json_of(r).await["flavor"], Value::Null);
}

#[tokio::test]
async fn websocket_pool_and_flavor_actions() {
    let s = pooled_server().await;
    let mut ws = WsClient::to(&s).await;
    let call = |action: &str, body: Value, roles: &str| {
        json!({"action": action,
               "headers": {"Client-ID": CLIENT, "X-Project-ID": PROJECT, "X-Roles": roles},
               "body": body})
    };
    ws.send_json(&call(
        "pool_create",
        json!({"pool_name": "w", "weight": 1, "uri": "embedded://w"}),
        "member",
    ))
    .await;
    assert_eq!(ws.recv().await.status, 403);
    ws.send_json(&call(
        "pool_create",
        json!({"pool_name": "w", "uri": "embedded://w"}),
        "admin",
    ))
    .await;
    let r = ws.recv().await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.body["exception"].as_str().unwrap().contains("weight"));
    ws.send_json(&call(
        "pool_create",
        json!({"pool_name": "w", "weight": 1, "uri": "embedded://w"}),
        "admin",
    ))
    .await;
    assert_eq!(ws.recv().await.status, 201);
    ws.send_json(&call("pool_get_detail", json!({"pool_name": "w"}), "admin"))
        .await;
    let r = ws.recv().await;
    assert_eq!((r.status, r.body["options"].clone()), (200, json!({})));
    ws.send_json(&call("pool_list", json!({}), "admin")).await;
    let r = ws.recv().await;
    assert_eq!(r.body["pools"][0]["name"], "w");
    ws.send_json(&call(
        "pool_update",
        json!({"pool_name": "w", "weight": 5}),
        "admin",
    ))
    .await;
    let r = ws.recv().await;
    assert_eq!((r.status, r.body["weight"].clone()), (200, json!(5)));
    ws.send_json(&call(
        "flavor_create",
        json!({"flavor_name": "f", "pool_list": ["w"]}),
        "admin",
    ))
    .await;
    assert_eq!(ws.recv().await.status, 201);
    ws.send_json(&call("flavor_get", json!({"flavor_name": "f"}), ""))
        .await;
    let r = ws.recv().await;
    assert_eq!((r.status, r.body["pool_list"].clone()), (200, json!(["w"])));
    ws.send_json(&call("flavor_list", json!({}), "")).await;
    assert_eq!(ws.recv().await.body["flavors"][0]["name"], "f");
    ws.send_json(&call("flavor_delete", json!({"flavor_name": "f"}), "admin"))
        .await;
    assert_eq!(ws.recv().await.status, 204);
    ws.send_json(&call("pool_delete", json!({"pool_name": "w"}), "admin"))
        .await;
    assert_eq!(ws.recv().await.status, 204);
    ws.send_json(&call("pool_get", json!({"pool_name": "w"}), "admin"))
        .await;
    assert_eq!(ws.recv().await.status, 404);
}

#[tokio::test]
async fn home_document_and_pooled_health() {
    let s = pooled_server().await;
    let r = s.req(Method::GET, "/v2/").send().await.unwrap();
    let home = json_of(r).await;
    for rel in [
        "rel/pools",
        "rel/pool",
        "rel/flavors",
        "rel/flavor",
        "rel/health",
    ] {
        assert!(home["resources"].get(rel).is_some(), "{rel} in {home}");
    }
    assert_eq!(
        home["resources"]["rel/pool"]["href-template"],
        "/v2/pools/{pool_name}"
    );
    assert_eq!(
        put_pool(&s, "h", json!({"weight": 1, "uri": "embedded://h"}))
            .await
            .status(),
        201
    );
    let r = admin(&s, Method::GET, "/v2/health").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let health = json_of(r).await;
    assert_eq!(health["catalog_reachable"], true);
    assert_eq!(health["h"]["storage_reachable"], true);
    let steps = health["h"]["operation_status"].as_object().unwrap();
    assert!(steps.values().all(|v| v["succeeded"] == true), "{health}");
    // The probe leaves no catalog entry behind: the pool can be removed at once.
    let r = admin(&s, Method::DELETE, "/v2/pools/h")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}
