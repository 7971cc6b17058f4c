//! Black-box HTTP tests of the cross-cutting parts of the v2 API: versions, home document,
//! ping, health, router errors and request ids. The per-request checks of spec §2.1 and
//! Client-ID parsing live in `checks.rs`, message/claim expiry in `expiry.rs` and project
//! isolation in `isolation.rs`; endpoint-specific behaviour lives in `http_queues`,
//! `http_messages` and `http_claims.rs`.

mod checks;
mod expiry;
mod isolation;

use zaqar_testkit as common;

use common::{expect_error, json_of, TestServer, CLIENT, PROJECT};
use reqwest::Method;
use serde_json::{json, Value};

/// A request with no headers at all.
fn bare(s: &TestServer, m: Method, path: &str) -> reqwest::RequestBuilder {
    s.http.request(m, s.url(path))
}

// ----- versions, home, ping ------------------------------------------------------------

#[tokio::test]
async fn versions_document_needs_no_headers_and_answers_300() {
    let s = TestServer::start().await;
    let resp = bare(&s, Method::GET, "/").send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 300);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let body = json_of(resp).await;
    assert_eq!(
        body,
        json!({"versions": [{
            "id": "2",
            "status": "CURRENT",
            "updated": "2014-9-24T04:06:47Z",
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.messaging-v2+json"}],
            "links": [{"href": "/v2/", "rel": "self"}],
        }]})
    );
}

/// `GET /` skips the Client-ID and project checks, not the media checks (spec §2.1).
#[tokio::test]
async fn versions_document_still_checks_accept_and_urlencoded_bodies() {
    let s = TestServer::start().await;
    let resp = bare(&s, Method::GET, "/")
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    let body = expect_error(resp, 406, "Invalid Accept Header", None).await;
    assert_eq!(body["link"]["rel"], "help");
    let resp = bare(&s, Method::GET, "/")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("a=b")
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Invalid Content-Type", None).await;
    let resp = bare(&s, Method::GET, "/")
        .header("Accept", "application/json")
        .header("Client-ID", "not-a-uuid")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        300,
        "a bad Client-ID is ignored on /"
    );
}

#[tokio::test]
async fn home_document_is_json_home_and_cacheable() {
    let s = TestServer::start().await;
    for path in ["/v2/", "/v2"] {
        let resp = s.req(Method::GET, path).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "application/json-home"
        );
        assert_eq!(
            resp.headers()["cache-control"].to_str().unwrap(),
            "max-age=86400"
        );
        let body = json_of(resp).await;
        let res = body["resources"].as_object().expect("resources object");
        for rel in [
            "rel/queues",
            "rel/queue",
            "rel/queue_stats",
            "rel/queue_share",
            "rel/queue_purge",
            "rel/messages",
            "rel/post_messages",
            "rel/messages_delete",
            "rel/message_delete",
            "rel/message_get",
            "rel/claim",
            "rel/post_claim",
            "rel/patch_claim",
            "rel/delete_claim",
            "rel/subscriptions_get",
            "rel/subscriptions_post",
            "rel/subscription",
            "rel/subscription_patch",
            "rel/ping",
        ] {
            assert!(res.contains_key(rel), "{rel} missing");
        }
        assert!(!res.contains_key("rel/health"), "health only in admin mode");
        assert_eq!(
            res["rel/queues"]["href-template"],
            "/v2/queues{?marker,limit,detailed}"
        );
        assert_eq!(res["rel/queues"]["href-vars"]["limit"], "param/limit");
        assert_eq!(
            res["rel/queue"]["hints"]["allow"],
            json!(["GET", "PUT", "DELETE", "PATCH"])
        );
        assert_eq!(
            res["rel/messages"]["href-template"],
            "/v2/queues/{queue_name}/messages{?marker,limit,echo,include_claimed}"
        );
        assert_eq!(
            res["rel/post_messages"]["hints"]["accept-post"],
            json!(["application/json"])
        );
        assert_eq!(res["rel/ping"]["href-template"], "/v2/ping");
    }
}

#[tokio::test]
async fn home_document_lists_health_in_admin_mode() {
    let s = TestServer::start_with(&[("DEFAULT", "admin_mode", "true")]).await;
    let body = json_of(s.req(Method::GET, "/v2/").send().await.unwrap()).await;
    assert_eq!(body["resources"]["rel/health"]["href"], "/v2/health");
}

#[tokio::test]
async fn home_document_requires_client_id_and_project() {
    let s = TestServer::start().await;
    let resp = bare(&s, Method::GET, "/v2/")
        .header("X-Project-ID", PROJECT)
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Missing header value", None).await;
    let resp = bare(&s, Method::GET, "/v2/")
        .header("Client-ID", CLIENT)
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Project-Id Missing", None).await;
}

#[tokio::test]
async fn ping_get_and_head_answer_204_without_body() {
    let s = TestServer::start().await;
    for m in [Method::GET, Method::HEAD] {
        let resp = s.req(m.clone(), "/v2/ping").send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 204, "{m}");
        assert!(resp.bytes().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn ping_requires_client_id_and_project() {
    let s = TestServer::start().await;
    let resp = bare(&s, Method::GET, "/v2/ping")
        .header("X-Project-ID", PROJECT)
        .send()
        .await
        .unwrap();
    expect_error(
        resp,
        400,
        "Missing header value",
        Some("The \"Client-Id\" header is required."),
    )
    .await;
    let resp = bare(&s, Method::HEAD, "/v2/ping")
        .header("Client-ID", CLIENT)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
}

#[tokio::test]
async fn health_exists_only_in_admin_mode() {
    let s = TestServer::start().await;
    let resp = s
        .req(Method::GET, "/v2/health")
        .header("X-Roles", "admin")
        .send()
        .await
        .unwrap();
    expect_error(resp, 404, "404 Not Found", None).await;
}

#[tokio::test]
async fn health_requires_the_admin_role() {
    let s = TestServer::start_with(&[("DEFAULT", "admin_mode", "true")]).await;
    for roles in [None, Some("member"), Some("reader, member")] {
        let mut req = s.req(Method::GET, "/v2/health");
        if let Some(r) = roles {
            req = req.header("X-Roles", r);
        }
        let resp = req.send().await.unwrap();
        expect_error(
            resp,
            403,
            "Not authorized",
            Some("You are not authorized to complete this action."),
        )
        .await;
    }
    // The usual header checks come first.
    let resp = bare(&s, Method::GET, "/v2/health")
        .header("X-Roles", "admin")
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Missing header value", None).await;
}

#[tokio::test]
async fn health_runs_the_probe_workload() {
    let s = TestServer::start_with(&[("DEFAULT", "admin_mode", "true")]).await;
    let resp = s
        .req(Method::GET, "/v2/health")
        .header("X-Roles", "member,Admin")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body = json_of(resp).await;
    assert_eq!(body["storage_reachable"], true);
    let status = body["operation_status"]
        .as_object()
        .expect("operation_status");
    let mut keys: Vec<&str> = status.keys().map(|k| k.as_str()).collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            "bulk_delete_messages",
            "claim_messages",
            "create_queue",
            "delete_claim",
            "delete_messages",
            "delete_queue",
            "list_messages",
            "post_messages",
        ]
    );
    for (name, step) in status {
        assert_eq!(step["succeeded"], true, "{name}: {step}");
        assert!(step["seconds"].as_f64().is_some_and(|x| x >= 0.0), "{step}");
        assert_eq!(step["ref"], Value::Null, "{name}");
    }
    // The probe leaves nothing behind in the caller's project.
    let queues = json_of(s.req(Method::GET, "/v2/queues").send().await.unwrap()).await;
    assert_eq!(queues["queues"], json!([]));
}

// ----- router errors and request ids ---------------------------------------------------

#[tokio::test]
async fn unknown_routes_are_404_with_a_zaqar_style_body() {
    let s = TestServer::start().await;
    for path in [
        "/v2/nothing",
        "/v3/queues",
        "/v2/queues/q/messages/id/extra",
        "/v2/queues/q/claims/c/x",
    ] {
        let resp = s.req(Method::GET, path).send().await.unwrap();
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        let body = expect_error(resp, 404, "404 Not Found", None).await;
        assert_eq!(body, json!({"title": "404 Not Found"}), "{path}");
    }
    // Unknown routes need no headers: the router answers before the checks.
    let resp = bare(&s, Method::GET, "/v2/nothing").send().await.unwrap();
    expect_error(resp, 404, "404 Not Found", None).await;
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow_header() {
    let s = TestServer::start().await;
    for (m, path, allowed) in [
        (Method::POST, "/v2/ping", "GET"),
        (Method::PUT, "/v2/queues", "GET"),
        (Method::POST, "/v2/queues/q", "PUT"),
        (Method::GET, "/v2/queues/q/claims", "POST"),
        (Method::PUT, "/v2/queues/q/messages", "POST"),
        (Method::PATCH, "/v2/queues/q/messages/abc", "DELETE"),
        (Method::DELETE, "/v2/queues/q/stats", "GET"),
        (Method::GET, "/v2/queues/q/purge", "POST"),
        (Method::POST, "/", "GET"),
    ] {
        let resp = s.req(m.clone(), path).send().await.unwrap();
        let allow = resp
            .headers()
            .get("allow")
            .unwrap_or_else(|| panic!("no Allow on {m} {path}"))
            .to_str()
            .unwrap()
            .to_string();
        assert!(allow.contains(allowed), "{m} {path}: Allow = {allow}");
        let body = expect_error(resp, 405, "405 Method Not Allowed", None).await;
        assert_eq!(body, json!({"title": "405 Method Not Allowed"}));
    }
    // The router answers before the header checks.
    let resp = bare(&s, Method::DELETE, "/v2/queues").send().await.unwrap();
    expect_error(resp, 405, "405 Method Not Allowed", None).await;
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let s = TestServer::start().await;
    let mut seen = Vec::new();
    for (req, status) in [
        (bare(&s, Method::GET, "/"), 300),
        (s.req(Method::GET, "/v2/ping"), 204),
        (bare(&s, Method::GET, "/v2/ping"), 400),
        (s.req(Method::GET, "/v2/nope"), 404),
        (s.req(Method::GET, "/v2/queues"), 200),
    ] {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status);
        let rid = resp.headers()["x-openstack-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        let uuid = rid.strip_prefix("req-").expect("req- prefix");
        assert_eq!(uuid.len(), 36, "{rid}");
        assert_eq!(uuid.matches('-').count(), 4, "{rid}");
        assert!(!seen.contains(&rid), "request ids are unique");
        seen.push(rid);
    }
}
