//! Black-box HTTP tests of the cross-cutting parts of the v2 API: versions, home document,
//! ping, the per-request check order of spec §2.1, Client-ID parsing, router errors, request
//! ids, message/claim expiry and project isolation. Endpoint-specific behaviour lives in
//! `http_queues.rs`, `http_messages.rs` and `http_claims.rs`.

use zaqar_testkit as common;

use common::{expect_error, json_of, TestServer, CLIENT, OTHER_CLIENT, PROJECT};
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

// ----- check order (spec §2.1) ---------------------------------------------------------

/// A request that fails every check: urlencoded body, Accept without JSON, no Client-ID, no
/// project, invalid queue name. Each step below fixes one more thing and expects the next
/// check to fail.
#[tokio::test]
async fn checks_run_in_the_specified_order() {
    let s = TestServer::start().await;
    let path = "/v2/queues/bad%20name/messages";

    // 1. urlencoded body -> 400 before anything else.
    let resp = bare(&s, Method::POST, path)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Accept", "text/html")
        .body("a=b")
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Invalid Content-Type", None).await;

    // 2. Accept not allowing JSON -> 406 (with the help link).
    let resp = bare(&s, Method::POST, path)
        .header("Content-Type", "application/json")
        .header("Accept", "text/html")
        .body(r#"{"messages": [{"body": 1}]}"#)
        .send()
        .await
        .unwrap();
    let body = expect_error(resp, 406, "Invalid Accept Header", None).await;
    assert!(body["description"].is_string());
    assert_eq!(body["link"]["rel"], "help");
    assert_eq!(
        body["link"]["href"],
        "http://www.w3.org/Protocols/rfc2616/rfc2616-sec14.html"
    );
    assert_eq!(
        body["link"]["text"],
        "14.1 Accept, Hypertext Transfer Protocol -- HTTP/1.1"
    );

    // 3. Missing Client-ID -> 400.
    let resp = bare(&s, Method::POST, path)
        .header("Accept", "application/json")
        .json(&json!({"messages": [{"body": 1}]}))
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

    // 4. Missing project -> 400.
    let resp = bare(&s, Method::POST, path)
        .header("Client-ID", CLIENT)
        .json(&json!({"messages": [{"body": 1}]}))
        .send()
        .await
        .unwrap();
    expect_error(
        resp,
        400,
        "Project-Id Missing",
        Some("The header X-PROJECT-ID was missing"),
    )
    .await;

    // 5. Invalid queue name -> 400.
    let resp = s
        .req(Method::POST, path)
        .json(&json!({"messages": [{"body": 1}]}))
        .send()
        .await
        .unwrap();
    expect_error(
        resp,
        400,
        "Invalid queue identification",
        Some("The format of the submitted queue name or project id is not valid."),
    )
    .await;

    // Everything fixed: the request goes through.
    let resp = s
        .req(Method::POST, "/v2/queues/good-name/messages")
        .header("Accept", "application/json")
        .json(&json!({"messages": [{"body": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
}

#[tokio::test]
async fn urlencoded_content_type_without_a_body_is_accepted() {
    let s = TestServer::start().await;
    let resp = s
        .req(Method::GET, "/v2/queues")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // ... but with a body it is refused, also on PUT and with a charset parameter.
    let resp = s
        .req(Method::PUT, "/v2/queues/q")
        .header(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body("x=1")
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Invalid Content-Type", None).await;
    let resp = s
        .req(Method::GET, "/v2/queues/q/stats")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        200,
        "the refused PUT created nothing"
    );
    let list = json_of(s.req(Method::GET, "/v2/queues").send().await.unwrap()).await;
    assert_eq!(list["queues"], json!([]));
}

#[tokio::test]
async fn accept_header_variants() {
    let s = TestServer::start().await;
    for accept in [
        "application/json",
        "*/*",
        "application/*",
        "text/html, application/json;q=0.5",
        "application/json; charset=utf-8",
    ] {
        let resp = s
            .req(Method::GET, "/v2/ping")
            .header("Accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 204, "{accept}");
    }
    for accept in ["text/html", "application/xml", "application/json;q=0"] {
        let resp = s
            .req(Method::GET, "/v2/queues")
            .header("Accept", accept)
            .send()
            .await
            .unwrap();
        expect_error(resp, 406, "Invalid Accept Header", None).await;
    }
}

/// The name check (§2.1 step 6) precedes every handler check, e.g. PATCH's media type (415)
/// and message POST's size limit.
#[tokio::test]
async fn queue_name_is_checked_before_the_handler() {
    let s = TestServer::start_with(&[("transport", "max_messages_post_size", "100")]).await;
    let resp = s
        .req(Method::PATCH, "/v2/queues/bad!name")
        .header("Content-Type", "application/json")
        .body("[]")
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Invalid queue identification", None).await;
    let big = json!({"messages": [{"body": "x".repeat(200)}]});
    let resp = s
        .req(
            Method::POST,
            &format!("/v2/queues/{}/messages", "q".repeat(65)),
        )
        .json(&big)
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Invalid queue identification", None).await;
    for path in [
        "/v2/queues/bad!name",
        "/v2/queues/bad!name/stats",
        "/v2/queues/bad!name/messages",
        "/v2/queues/bad!name/messages/abc",
        "/v2/queues/bad!name/claims/abc",
    ] {
        let resp = s.req(Method::GET, path).send().await.unwrap();
        expect_error(resp, 400, "Invalid queue identification", None).await;
    }
    // A name that is not valid UTF-8 once percent-decoded is still a JSON 400.
    let resp = s
        .req(Method::GET, "/v2/queues/%FF/stats")
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Invalid queue identification", None).await;
    let resp = s
        .req(Method::GET, "/v2/queues/q/messages/%FF")
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Invalid parameter", Some("\"message_id\"")).await;
    for path in ["/v2/queues/bad!name/claims", "/v2/queues/bad!name/purge"] {
        let resp = s.req(Method::POST, path).send().await.unwrap();
        expect_error(resp, 400, "Invalid queue identification", None).await;
    }
    for path in [
        "/v2/queues/bad!name",
        "/v2/queues/bad!name/messages?pop=1",
        "/v2/queues/bad!name/messages/abc",
        "/v2/queues/bad!name/claims/abc",
    ] {
        let resp = s.req(Method::DELETE, path).send().await.unwrap();
        expect_error(resp, 400, "Invalid queue identification", None).await;
    }
}

#[tokio::test]
async fn project_header_rules() {
    let s = TestServer::start().await;
    let with_project = |p: &str| {
        bare(&s, Method::GET, "/v2/queues")
            .header("Client-ID", CLIENT)
            .header("X-Project-ID", p)
    };
    let resp = with_project("").send().await.unwrap();
    expect_error(
        resp,
        400,
        "Empty project header not allowed",
        Some("X-PROJECT-ID cannot be an empty string."),
    )
    .await;
    let resp = with_project(&"p".repeat(257)).send().await.unwrap();
    expect_error(
        resp,
        400,
        "Invalid queue identification",
        Some("project id is not valid"),
    )
    .await;
    let resp = with_project(&"p".repeat(256)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // Any characters are allowed, and the header name is case-insensitive.
    let resp = bare(&s, Method::GET, "/v2/queues")
        .header("client-id", CLIENT)
        .header("x-project-id", "tenant with spaces/and:colons")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

// ----- Client-ID (spec §1.4) -------------------------------------------------------------

#[tokio::test]
async fn strict_client_id_accepts_python_uuid_forms() {
    let s = TestServer::start().await;
    for form in [
        "3381af92-2b9e-11e3-b191-71861300734c",
        "3381AF92-2B9E-11E3-B191-71861300734C",
        "3381af922b9e11e3b19171861300734c",
        "{3381af92-2b9e-11e3-b191-71861300734c}",
        "urn:uuid:3381af92-2b9e-11e3-b191-71861300734c",
        "uuid:3381af92-2b9e-11e3-b191-71861300734c",
        "{urn:uuid:3381af922b9e11e3b19171861300734c}",
        "3381af92-2b9e11e3-b19171861300734c",
    ] {
        let resp = bare(&s, Method::GET, "/v2/ping")
            .header("Client-ID", form)
            .header("X-Project-ID", PROJECT)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 204, "{form}");
    }
}

#[tokio::test]
async fn strict_client_id_rejects_non_uuids() {
    let s = TestServer::start().await;
    for form in [
        "",
        "not-a-uuid",
        "3381af92-2b9e-11e3-b191-71861300734",
        "3381af92-2b9e-11e3-b191-71861300734c0",
        "g381af92-2b9e-11e3-b191-71861300734c",
        "0123456789abcdef",
    ] {
        let resp = bare(&s, Method::GET, "/v2/ping")
            .header("Client-ID", form)
            .header("X-Project-ID", PROJECT)
            .send()
            .await
            .unwrap();
        expect_error(
            resp,
            400,
            "Wrong UUID value",
            Some("Malformed hexadecimal UUID."),
        )
        .await;
    }
}

/// Echo filtering compares normalized ids: the same UUID written differently is the same
/// client.
#[tokio::test]
async fn client_id_forms_are_normalized_for_echo() {
    let s = TestServer::start().await;
    s.post_as(
        "{3381AF92-2B9E-11E3-B191-71861300734C}",
        "echoq",
        json!([{"body": "mine"}]),
    )
    .await;
    let listed = |client: &'static str| {
        let req = s.req_as(client, Method::GET, "/v2/queues/echoq/messages");
        async move { json_of(req.send().await.unwrap()).await }
    };
    let own = listed("urn:uuid:3381af922b9e11e3b19171861300734c").await;
    assert_eq!(own["messages"], json!([]), "own message hidden: {own}");
    let other = listed(OTHER_CLIENT).await;
    assert_eq!(other["messages"].as_array().unwrap().len(), 1);
    assert_eq!(other["messages"][0]["body"], "mine");
}

#[tokio::test]
async fn client_id_off_mode_checks_length_only() {
    let s = TestServer::start_with(&[("transport", "client_id_uuid_safe", "off")]).await;
    let ping = |cid: String| {
        bare(&s, Method::GET, "/v2/ping")
            .header("Client-ID", cid)
            .header("X-Project-ID", PROJECT)
            .send()
    };
    for ok in [
        "a".repeat(10),
        "x".repeat(36),
        "not a uuid at all!".to_string(),
    ] {
        assert_eq!(
            ping(ok.clone()).await.unwrap().status().as_u16(),
            204,
            "{ok}"
        );
    }
    let msg = "Length of client id must be at least 10 and no greater than 36.";
    for bad in ["a".repeat(9), "x".repeat(37), String::new()] {
        let body = expect_error(ping(bad).await.unwrap(), 400, msg, None).await;
        assert!(body["title"].is_string());
    }
    // A missing header is still its own error.
    let resp = bare(&s, Method::GET, "/v2/ping")
        .header("X-Project-ID", PROJECT)
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Missing header value", None).await;
}

#[tokio::test]
async fn client_id_off_mode_honours_configured_lengths() {
    let s = TestServer::start_with(&[
        ("transport", "client_id_uuid_safe", "off"),
        ("transport", "min_length_client_id", "3"),
        ("transport", "max_length_client_id", "5"),
    ])
    .await;
    for (cid, status) in [("ab", 400), ("abc", 204), ("abcde", 204), ("abcdef", 400)] {
        let resp = bare(&s, Method::GET, "/v2/ping")
            .header("Client-ID", cid)
            .header("X-Project-ID", PROJECT)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status, "{cid}");
        if status == 400 {
            expect_error(
                resp,
                400,
                "Length of client id must be at least 3 and no greater than 5.",
                None,
            )
            .await;
        }
    }
}

// ----- expiry (manual clock) -----------------------------------------------------------

#[tokio::test]
async fn messages_disappear_after_their_ttl() {
    let s = TestServer::start().await;
    let ids = s
        .post(
            "ttlq",
            json!([{"body": "short", "ttl": 60}, {"body": "long", "ttl": 120}]),
        )
        .await;
    s.clock.advance_secs(59);
    let one = s
        .req(Method::GET, &format!("/v2/queues/ttlq/messages/{}", ids[0]))
        .send()
        .await
        .unwrap();
    let one = json_of(one).await;
    assert_eq!(one["age"], 59);
    assert_eq!(one["ttl"], 60);

    s.clock.advance_secs(1);
    let resp = s
        .req(Method::GET, &format!("/v2/queues/ttlq/messages/{}", ids[0]))
        .send()
        .await
        .unwrap();
    expect_error(resp, 404, "Not found", None).await;
    let list = s
        .req(Method::GET, "/v2/queues/ttlq/messages?echo=true")
        .send()
        .await
        .unwrap();
    let list = json_of(list).await;
    let listed: Vec<&str> = list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec![ids[1].as_str()]);
    let stats = json_of(
        s.req(Method::GET, "/v2/queues/ttlq/stats")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(stats["messages"]["total"], 1);

    s.clock.advance_secs(60);
    let resp = s
        .req(
            Method::GET,
            &format!("/v2/queues/ttlq/messages?ids={},{}", ids[0], ids[1]),
        )
        .send()
        .await
        .unwrap();
    expect_error(resp, 404, "Not found", None).await;
    assert!(s.claim("ttlq", None, None).await.is_none());
    let pop = s
        .req(Method::DELETE, "/v2/queues/ttlq/messages?pop=5")
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(pop).await, json!({"messages": []}));
    let stats = json_of(
        s.req(Method::GET, "/v2/queues/ttlq/stats")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        stats,
        json!({"messages": {"claimed": 0, "free": 0, "total": 0}})
    );
}

#[tokio::test]
async fn queue_default_ttl_applies_and_expires() {
    let s = TestServer::start().await;
    let resp = s
        .req(Method::PUT, "/v2/queues/short")
        .json(&json!({"_default_message_ttl": 90}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let ids = s.post("short", json!([{"body": 1}])).await;
    let m = json_of(
        s.req(
            Method::GET,
            &format!("/v2/queues/short/messages/{}", ids[0]),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(m["ttl"], 90);
    s.clock.advance_secs(90);
    let resp = s
        .req(
            Method::GET,
            &format!("/v2/queues/short/messages/{}", ids[0]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
}

#[tokio::test]
async fn expired_claims_free_their_messages_for_another_claim() {
    let s = TestServer::start().await;
    let ids = s.post("cexp", json!([{"body": 1, "ttl": 3600}])).await;
    let (first, _) = s
        .claim("cexp", Some(json!({"ttl": 60, "grace": 60})), None)
        .await
        .expect("claimed");
    assert!(s.claim("cexp", None, None).await.is_none(), "still held");
    s.clock.advance_secs(59);
    assert!(s.claim("cexp", None, None).await.is_none(), "still held");
    s.clock.advance_secs(1);
    // Visible again in a plain listing, with a plain href.
    let page = json_of(
        s.req_as(OTHER_CLIENT, Method::GET, "/v2/queues/cexp/messages")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page["messages"][0]["id"], ids[0].as_str());
    assert_eq!(
        page["messages"][0]["href"],
        format!("/v2/queues/cexp/messages/{}", ids[0])
    );
    let (second, msgs) = s.claim("cexp", None, None).await.expect("claimable again");
    assert_ne!(first, second);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["id"], ids[0].as_str());
    assert_eq!(
        msgs[0]["href"],
        format!("/v2/queues/cexp/messages/{}?claim_id={second}", ids[0])
    );
    let resp = s
        .req(Method::GET, &format!("/v2/queues/cexp/claims/{first}"))
        .send()
        .await
        .unwrap();
    expect_error(resp, 404, "Not found", None).await;
}

#[tokio::test]
async fn claim_extension_keeps_a_short_lived_message_alive() {
    let s = TestServer::start().await;
    let ids = s.post("ext", json!([{"body": 1, "ttl": 60}])).await;
    let (cid, msgs) = s
        .claim("ext", Some(json!({"ttl": 300, "grace": 60})), None)
        .await
        .unwrap();
    assert_eq!(msgs[0]["ttl"], 360);
    s.clock.advance_secs(200);
    let path = format!("/v2/queues/ext/messages/{}", ids[0]);
    let m = json_of(s.req(Method::GET, &path).send().await.unwrap()).await;
    assert_eq!(m["age"], 200);
    assert_eq!(m["ttl"], 360);
    assert_eq!(
        m["href"],
        format!("/v2/queues/ext/messages/{}?claim_id={cid}", ids[0])
    );
    // The claim expires at 300; the message lives on through the grace period.
    s.clock.advance_secs(110);
    let m = json_of(s.req(Method::GET, &path).send().await.unwrap()).await;
    assert_eq!(m["href"], path, "claim expired, plain href");
    s.clock.advance_secs(50);
    let resp = s.req(Method::GET, &path).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 404, "gone at 360 s");
}

// ----- project isolation -----------------------------------------------------------------

fn as_project(s: &TestServer, m: Method, path: &str, project: &str) -> reqwest::RequestBuilder {
    bare(s, m, path)
        .header("Client-ID", OTHER_CLIENT)
        .header("X-Project-ID", project)
}

#[tokio::test]
async fn other_projects_cannot_see_or_touch_messages() {
    let s = TestServer::start().await;
    let ids = s
        .post("shared", json!([{"body": "a1"}, {"body": "a2"}]))
        .await;
    let b = "project-b";

    let list = json_of(
        as_project(&s, Method::GET, "/v2/queues/shared/messages?echo=true", b)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list, json!({"messages": [], "links": []}));
    let resp = as_project(
        &s,
        Method::GET,
        &format!("/v2/queues/shared/messages/{}", ids[0]),
        b,
    )
    .send()
    .await
    .unwrap();
    expect_error(resp, 404, "Not found", None).await;
    let resp = as_project(
        &s,
        Method::GET,
        &format!("/v2/queues/shared/messages?ids={}", ids.join(",")),
        b,
    )
    .send()
    .await
    .unwrap();
    expect_error(resp, 404, "Not found", None).await;
    let resp = as_project(&s, Method::POST, "/v2/queues/shared/claims", b)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204, "nothing to claim in B");
    let resp = as_project(&s, Method::DELETE, "/v2/queues/shared/messages?pop=5", b)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(resp).await, json!({"messages": []}));
    for path in [
        format!("/v2/queues/shared/messages/{}", ids[0]),
        format!("/v2/queues/shared/messages?ids={}", ids[1]),
        "/v2/queues/shared".to_string(),
    ] {
        let resp = as_project(&s, Method::DELETE, &path, b)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 204, "{path}");
    }
    let resp = as_project(&s, Method::POST, "/v2/queues/shared/purge", b)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let stats = json_of(
        as_project(&s, Method::GET, "/v2/queues/shared/stats", b)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        stats,
        json!({"messages": {"claimed": 0, "free": 0, "total": 0}})
    );
    let queues = json_of(
        as_project(&s, Method::GET, "/v2/queues", b)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(queues["queues"], json!([]));

    // Project A still has both messages, unclaimed.
    let a = json_of(
        s.req(
            Method::GET,
            &format!("/v2/queues/shared/messages?ids={}", ids.join(",")),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(a["messages"].as_array().unwrap().len(), 2);
    let (_, claimed) = s.claim("shared", None, None).await.expect("A can claim");
    assert_eq!(claimed.len(), 2);
}

#[tokio::test]
async fn other_projects_cannot_use_claims() {
    let s = TestServer::start().await;
    s.post("cq", json!([{"body": 1}])).await;
    let (cid, _) = s.claim("cq", None, None).await.unwrap();
    let b = "project-b";
    let path = format!("/v2/queues/cq/claims/{cid}");
    let resp = as_project(&s, Method::GET, &path, b).send().await.unwrap();
    expect_error(resp, 404, "Not found", None).await;
    let resp = as_project(&s, Method::PATCH, &path, b)
        .json(&json!({"ttl": 100}))
        .send()
        .await
        .unwrap();
    expect_error(resp, 404, "Not found", None).await;
    let resp = as_project(&s, Method::DELETE, &path, b)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    // The claim is untouched in project A.
    let claim = json_of(s.req(Method::GET, &path).send().await.unwrap()).await;
    assert_eq!(claim["messages"].as_array().unwrap().len(), 1);
    assert!(s.claim("cq", None, None).await.is_none());
}

#[tokio::test]
async fn same_queue_name_in_two_projects_is_independent() {
    let s = TestServer::start().await;
    let b = "project-b";
    let resp = s
        .req(Method::PUT, "/v2/queues/twin")
        .json(&json!({"owner": "a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    // Project B creates its own queue of the same name: 201, not 204.
    let resp = as_project(&s, Method::PUT, "/v2/queues/twin", b)
        .json(&json!({"owner": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    s.post("twin", json!([{"body": "from a"}])).await;
    let resp = as_project(&s, Method::POST, "/v2/queues/twin/messages", b)
        .json(&json!({"messages": [{"body": "from b 1"}, {"body": "from b 2"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);

    let meta_a = json_of(s.req(Method::GET, "/v2/queues/twin").send().await.unwrap()).await;
    let meta_b = json_of(
        as_project(&s, Method::GET, "/v2/queues/twin", b)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(meta_a["owner"], "a");
    assert_eq!(meta_b["owner"], "b");
    let stats_a = json_of(
        s.req(Method::GET, "/v2/queues/twin/stats")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let stats_b = json_of(
        as_project(&s, Method::GET, "/v2/queues/twin/stats", b)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(stats_a["messages"]["total"], 1);
    assert_eq!(stats_b["messages"]["total"], 2);

    // Deleting B's queue leaves A's intact.
    let resp = as_project(&s, Method::DELETE, "/v2/queues/twin", b)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let list = json_of(
        s.req(Method::GET, "/v2/queues/twin/messages?echo=true")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let bodies: Vec<Value> = list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].clone())
        .collect();
    assert_eq!(bodies, vec![json!("from a")]);
    let queues = json_of(s.req(Method::GET, "/v2/queues").send().await.unwrap()).await;
    assert_eq!(queues["queues"][0]["name"], "twin");
}
