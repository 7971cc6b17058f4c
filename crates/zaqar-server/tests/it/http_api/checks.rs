//! Black-box HTTP tests of the checks every request goes through: their order (spec §2.1),
//! urlencoded bodies, Accept variants, the queue-name and project header rules, and Client-ID
//! parsing in strict and off modes (spec §1.4).

use zaqar_testkit as common;

use common::{expect_error, json_of, TestServer, CLIENT, OTHER_CLIENT, PROJECT};
use reqwest::Method;
use serde_json::json;

use super::bare;

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
