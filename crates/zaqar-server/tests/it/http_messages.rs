//! Black-box HTTP tests of the message endpoints: post, list, get by ids, get one, bulk
//! delete / pop and single delete with its claim rules (spec §1.3, §1.4, §1.8, §2.8, §3.4).

use zaqar_testkit as common;

use common::{expect_error, json_of, TestServer, CLIENT, OTHER_CLIENT};
use reqwest::Method;
use serde_json::{json, Value};

async fn post_raw(s: &TestServer, queue: &str, body: &str) -> reqwest::Response {
    s.req(Method::POST, &format!("/v2/queues/{queue}/messages"))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// GET as `client` and return the JSON body (asserting 200).
async fn get_as(s: &TestServer, client: &str, path: &str) -> Value {
    let resp = s.req_as(client, Method::GET, path).send().await.unwrap();
    let status = resp.status().as_u16();
    let body = json_of(resp).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

async fn get(s: &TestServer, path: &str) -> Value {
    get_as(s, CLIENT, path).await
}

async fn delete(s: &TestServer, path: &str) -> reqwest::Response {
    s.req(Method::DELETE, path).send().await.unwrap()
}

fn ids_of(page: &Value) -> Vec<String> {
    page["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no messages in {page}"))
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

fn bodies_of(page: &Value) -> Vec<Value> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].clone())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// A well-formed message id that no message has: the id of a real message with the last
/// hex digit changed.
fn sibling_id(id: &str) -> String {
    let last = if id.ends_with('0') { '1' } else { '0' };
    format!("{}{last}", &id[..id.len() - 1])
}

async fn stats_total(s: &TestServer, queue: &str) -> i64 {
    get(s, &format!("/v2/queues/{queue}/stats")).await["messages"]["total"]
        .as_i64()
        .unwrap()
}

// ----- POST ---------------------------------------------------------------------------------

#[tokio::test]
async fn post_returns_location_and_resources_in_request_order() {
    let s = TestServer::start().await;
    let resp = s
        .req(Method::POST, "/v2/queues/demo/messages")
        .json(&json!({"messages": [
            {"ttl": 300, "body": {"event": "BackupStarted"}},
            {"body": {"event": "BackupProgress", "current_bytes": "0"}},
            {"body": "third", "ttl": 60},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let body = json_of(resp).await;
    let resources: Vec<String> = body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    assert_eq!(resources.len(), 3);
    assert_eq!(body.as_object().unwrap().len(), 1, "only resources: {body}");
    let ids: Vec<String> = resources
        .iter()
        .map(|r| {
            r.strip_prefix("/v2/queues/demo/messages/")
                .unwrap_or_else(|| panic!("{r}"))
                .to_string()
        })
        .collect();
    for id in &ids {
        assert!(
            !id.is_empty()
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "URL-safe id: {id}"
        );
    }
    assert_eq!(
        location,
        format!("/v2/queues/demo/messages?ids={}", ids.join(","))
    );
    // Following Location returns the three messages.
    let got = get(&s, &location).await;
    assert_eq!(sorted(ids_of(&got)), sorted(ids.clone()));
    // FIFO: listing (echo) returns them in posting order with their bodies and ttls.
    let page = get(&s, "/v2/queues/demo/messages?echo=true").await;
    assert_eq!(ids_of(&page), ids);
    assert_eq!(
        bodies_of(&page),
        vec![
            json!({"event": "BackupStarted"}),
            json!({"event": "BackupProgress", "current_bytes": "0"}),
            json!("third"),
        ]
    );
    let ttls: Vec<i64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["ttl"].as_i64().unwrap())
        .collect();
    assert_eq!(ttls, vec![300, 3600, 60]);
}

#[tokio::test]
async fn post_creates_the_queue_lazily() {
    let s = TestServer::start().await;
    s.post("lazy", json!([{"body": 1}])).await;
    // The Content-Type is not checked (only urlencoded bodies are refused).
    for ct in [None, Some("text/plain")] {
        let mut req = s
            .req(Method::POST, "/v2/queues/lazy/messages")
            .body(r#"{"messages": [{"body": 2}]}"#);
        if let Some(ct) = ct {
            req = req.header("Content-Type", ct);
        }
        assert_eq!(req.send().await.unwrap().status().as_u16(), 201, "{ct:?}");
    }
    assert_eq!(stats_total(&s, "lazy").await, 3);
    let queues = get(&s, "/v2/queues").await;
    assert_eq!(queues["queues"][0]["name"], "lazy");
    assert_eq!(queues["queues"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn post_accepts_any_json_body_and_drops_extra_fields() {
    let s = TestServer::start().await;
    let bodies = vec![
        Value::Null,
        json!("text"),
        json!(42),
        json!(-1.5),
        json!(true),
        json!([1, "two", null]),
        json!({"deep": {"er": [{"est": 1}]}}),
        json!({}),
        json!("unicode ✓ \u{1F600}"),
    ];
    let messages: Vec<Value> = bodies
        .iter()
        .map(|b| json!({"body": b, "extra": "dropped"}))
        .collect();
    let ids = s.post("any", Value::Array(messages)).await;
    let page = get(&s, "/v2/queues/any/messages?echo=true&limit=20").await;
    assert_eq!(ids_of(&page), ids);
    assert_eq!(bodies_of(&page), bodies);
    for m in page["messages"].as_array().unwrap() {
        let mut keys: Vec<&str> = m.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        keys.sort();
        assert_eq!(keys, vec!["age", "body", "href", "id", "ttl"], "{m}");
    }
}

/// A batch is all or nothing: one invalid message rejects the whole request.
#[tokio::test]
async fn post_batch_is_atomic() {
    let s = TestServer::start().await;
    s.post("atomic", json!([{"body": "before"}])).await;
    for bad in [
        json!([{"body": 1}, {"body": 2, "ttl": 30}]),
        json!([{"body": 1}, {"ttl": 300}]),
        json!([{"body": 1}, "not an object"]),
        json!([{"body": 1}, {"body": 2, "ttl": "60"}]),
    ] {
        let resp = s
            .req(Method::POST, "/v2/queues/atomic/messages")
            .json(&json!({ "messages": bad }))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body = json_of(resp).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["title"].is_string() && body["description"].is_string());
    }
    assert_eq!(stats_total(&s, "atomic").await, 1);
    let page = get(&s, "/v2/queues/atomic/messages?echo=true").await;
    assert_eq!(bodies_of(&page), vec![json!("before")]);
}

#[tokio::test]
async fn post_rejects_wrong_document_shapes() {
    let s = TestServer::start().await;
    for (body, title, description) in [
        (
            r#"[{"body": 1}]"#,
            "Invalid request body",
            "No messages were found in the request body.",
        ),
        (
            r#"{"body": 1}"#,
            "Invalid request body",
            "No messages were found in the request body.",
        ),
        (
            r#""messages""#,
            "Invalid request body",
            "No messages were found in the request body.",
        ),
        (
            r#"{"messages": {"body": 1}}"#,
            "Invalid request body",
            "\"messages\"",
        ),
        (
            r#"{"messages": "x"}"#,
            "Invalid request body",
            "\"messages\"",
        ),
        (r#"{"messages": [1]}"#, "Invalid request body", ""),
        (r#"{"messages": [[]]}"#, "Invalid request body", ""),
        (
            r#"{"messages": [{"ttl": 60}]}"#,
            "Invalid request body",
            "Missing \"body\" field.",
        ),
        (
            r#"{"messages": []}"#,
            "Invalid API request",
            "No messages to enqueu.",
        ),
        (
            r#"{"messages": [{"body": 1}"#,
            "Invalid request body",
            "Request body could not be parsed.",
        ),
        (
            "not json",
            "Invalid request body",
            "Request body could not be parsed.",
        ),
        (
            "\u{feff}",
            "Invalid request body",
            "Request body could not be parsed.",
        ),
        ("", "Invalid request body", "Request body can not be empty"),
        (
            "   ",
            "Invalid request body",
            "Request body can not be empty",
        ),
    ] {
        let resp = post_raw(&s, "shape", body).await;
        expect_error(resp, 400, title, Some(description)).await;
    }
    // Without any body at all.
    let resp = s
        .req(Method::POST, "/v2/queues/shape/messages")
        .send()
        .await
        .unwrap();
    expect_error(
        resp,
        400,
        "Invalid request body",
        Some("Request body can not be empty"),
    )
    .await;
    assert_eq!(stats_total(&s, "shape").await, 0);
}

#[tokio::test]
async fn post_checks_ttl_type_and_range() {
    let s = TestServer::start().await;
    for ttl in [
        json!("300"),
        json!(true),
        json!(60.5),
        json!([60]),
        json!({}),
    ] {
        let resp = s
            .req(Method::POST, "/v2/queues/ttl/messages")
            .json(&json!({"messages": [{"body": 1, "ttl": ttl}]}))
            .send()
            .await
            .unwrap();
        expect_error(
            resp,
            400,
            "Invalid request body",
            Some("The value of the \"ttl\" field must be a"),
        )
        .await;
    }
    for ttl in [59, 0, -1, 1_209_601] {
        let resp = s
            .req(Method::POST, "/v2/queues/ttl/messages")
            .json(&json!({"messages": [{"body": 1, "ttl": ttl}]}))
            .send()
            .await
            .unwrap();
        expect_error(
            resp,
            400,
            "Invalid API request",
            Some("The TTL for a message may not exceed 1209600 seconds, and must be at least 60 seconds long."),
        )
        .await;
    }
    let ids = s
        .post(
            "ttl",
            json!([{"body": 1, "ttl": 60}, {"body": 2, "ttl": 1_209_600}]),
        )
        .await;
    for (id, ttl) in ids.iter().zip([60, 1_209_600]) {
        let m = get(&s, &format!("/v2/queues/ttl/messages/{id}")).await;
        assert_eq!(m["ttl"], ttl);
    }
}

#[tokio::test]
async fn post_ttl_bounds_follow_configuration() {
    let s = TestServer::start_with(&[
        ("transport", "max_message_ttl", "600"),
        ("transport", "default_message_ttl", "120"),
    ])
    .await;
    let resp = s
        .req(Method::POST, "/v2/queues/t/messages")
        .json(&json!({"messages": [{"body": 1, "ttl": 601}]}))
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Invalid API request", Some("600")).await;
    let ids = s.post("t", json!([{"body": 1}])).await;
    let m = get(&s, &format!("/v2/queues/t/messages/{}", ids[0])).await;
    assert_eq!(m["ttl"], 120, "config default ttl");
}

#[tokio::test]
async fn post_rejects_integers_beyond_int64() {
    let s = TestServer::start().await;
    for body in [
        r#"{"messages": [{"body": 9223372036854775808}]}"#,
        r#"{"messages": [{"body": {"n": [-9223372036854775809]}}]}"#,
        r#"{"messages": [{"body": 1, "ttl": 99999999999999999999}]}"#,
    ] {
        let resp = post_raw(&s, "big", body).await;
        expect_error(
            resp,
            400,
            "Invalid request body",
            Some("JSON contains integer that is too large."),
        )
        .await;
    }
    // Large numbers inside strings, floats and the int64 edges are fine.
    let resp = post_raw(
        &s,
        "big",
        r#"{"messages": [{"body": {"s": "99999999999999999999", "f": 1e300,
            "max": 9223372036854775807, "min": -9223372036854775808}}]}"#,
    )
    .await;
    assert_eq!(resp.status().as_u16(), 201);
    let page = get(&s, "/v2/queues/big/messages?echo=true").await;
    assert_eq!(page["messages"][0]["body"]["max"], i64::MAX);
    assert_eq!(page["messages"][0]["body"]["min"], i64::MIN);
    assert_eq!(page["messages"][0]["body"]["s"], "99999999999999999999");
}

#[tokio::test]
async fn post_deeply_nested_body_is_400_not_5xx() {
    let s = TestServer::start().await;
    for depth in [200, 1_000, 40_000] {
        let body = format!(
            r#"{{"messages": [{{"body": {}{}}}]}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let resp = post_raw(&s, "deep", &body).await;
        expect_error(resp, 400, "Invalid request body", None).await;
        let body = format!(
            r#"{{"messages": [{{"body": {}1{}}}]}}"#,
            r#"{"a":"#.repeat(depth),
            "}".repeat(depth)
        );
        let resp = post_raw(&s, "deep", &body).await;
        expect_error(resp, 400, "Invalid request body", None).await;
    }
    // Moderate nesting is fine, and the server still answers.
    let body = format!(
        r#"{{"messages": [{{"body": {}{}}}]}}"#,
        "[".repeat(50),
        "]".repeat(50)
    );
    assert_eq!(post_raw(&s, "deep", &body).await.status().as_u16(), 201);
    assert_eq!(stats_total(&s, "deep").await, 1);
}

#[tokio::test]
async fn post_size_limit_from_configuration() {
    let s = TestServer::start_with(&[("transport", "max_messages_post_size", "100")]).await;
    let make = |len: usize| {
        // {"messages": [{"body": "xxx"}]} has 28 bytes around the string.
        let body = format!(
            r#"{{"messages": [{{"body": "{}"}}]}}"#,
            "x".repeat(len - 28)
        );
        assert_eq!(body.len(), len);
        body
    };
    assert_eq!(post_raw(&s, "sz", &make(100)).await.status().as_u16(), 201);
    let resp = post_raw(&s, "sz", &make(101)).await;
    expect_error(
        resp,
        400,
        "Invalid API request",
        Some("Message collection size is too large."),
    )
    .await;
    assert_eq!(stats_total(&s, "sz").await, 1);
}

#[tokio::test]
async fn post_size_limit_from_queue_metadata() {
    let s = TestServer::start().await;
    let resp = s
        .req(Method::PUT, "/v2/queues/small")
        .json(&json!({"_max_messages_post_size": 80}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let make = |len: usize| {
        format!(
            r#"{{"messages": [{{"body": "{}"}}]}}"#,
            "x".repeat(len - 28)
        )
    };
    assert_eq!(
        post_raw(&s, "small", &make(80)).await.status().as_u16(),
        201
    );
    let resp = post_raw(&s, "small", &make(81)).await;
    expect_error(
        resp,
        400,
        "Invalid API request",
        Some("Message collection size is too large."),
    )
    .await;
    // Other queues keep the global limit.
    assert_eq!(
        post_raw(&s, "other", &make(1000)).await.status().as_u16(),
        201
    );
    // The queue setting cannot raise the global limit: min(queue, global) applies.
    let s2 = TestServer::start_with(&[("transport", "max_messages_post_size", "100")]).await;
    let resp = s2
        .req(Method::PUT, "/v2/queues/q")
        .json(&json!({"_max_messages_post_size": 200}))
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Invalid API request", None).await;
    let resp = post_raw(&s2, "q", &make(150)).await;
    expect_error(resp, 400, "Invalid API request", Some("too large")).await;
}

#[tokio::test]
async fn post_uses_queue_default_ttl() {
    let s = TestServer::start().await;
    s.req(Method::PUT, "/v2/queues/dt")
        .json(&json!({"_default_message_ttl": 120}))
        .send()
        .await
        .unwrap();
    let ids = s
        .post("dt", json!([{"body": 1}, {"body": 2, "ttl": 500}]))
        .await;
    let page = get(&s, &format!("/v2/queues/dt/messages?ids={}", ids.join(","))).await;
    let mut ttls: Vec<i64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["ttl"].as_i64().unwrap())
        .collect();
    ttls.sort();
    assert_eq!(ttls, vec![120, 500]);
}

// ----- listing ------------------------------------------------------------------------------

#[tokio::test]
async fn listing_hides_own_messages_unless_echo() {
    let s = TestServer::start().await;
    let mine = s
        .post_as(CLIENT, "echo", json!([{"body": "a1"}, {"body": "a2"}]))
        .await;
    let theirs = s
        .post_as(OTHER_CLIENT, "echo", json!([{"body": "b1"}]))
        .await;
    let path = "/v2/queues/echo/messages";
    assert_eq!(ids_of(&get_as(&s, CLIENT, path).await), theirs);
    assert_eq!(ids_of(&get_as(&s, OTHER_CLIENT, path).await), mine);
    for q in [
        "?echo=false",
        "?echo=False",
        "?echo=f",
        "?echo=no",
        "?echo=n",
        "?echo=0",
        "?echo=off",
        "?echo=",
    ] {
        let page = get_as(&s, CLIENT, &format!("{path}{q}")).await;
        assert_eq!(ids_of(&page), theirs, "{q}");
    }
    let all: Vec<String> = mine.iter().chain(&theirs).cloned().collect();
    for q in [
        "?echo=true",
        "?echo=True",
        "?echo=t",
        "?echo=yes",
        "?echo=y",
        "?echo=1",
        "?echo=on",
    ] {
        let page = get_as(&s, CLIENT, &format!("{path}{q}")).await;
        assert_eq!(ids_of(&page), all, "{q}");
    }
    // A third client sees everything without echo.
    let third = "11111111-2222-3333-4444-555555555555";
    assert_eq!(ids_of(&get_as(&s, third, path).await), all);
}

/// The limit applies after filtering: hidden messages do not shorten a page.
#[tokio::test]
async fn listing_limit_applies_after_filtering() {
    let s = TestServer::start().await;
    let mut theirs = Vec::new();
    for i in 0..4 {
        s.post_as(CLIENT, "lf", json!([{"body": format!("mine {i}")}]))
            .await;
        theirs.extend(
            s.post_as(OTHER_CLIENT, "lf", json!([{"body": format!("theirs {i}")}]))
                .await,
        );
    }
    // Claim the first two messages (one of each client).
    s.claim("lf", None, Some(2)).await.unwrap();
    let page = get(&s, "/v2/queues/lf/messages?limit=2").await;
    assert_eq!(ids_of(&page), theirs[1..3].to_vec());
    let next = get(&s, page["links"][0]["href"].as_str().unwrap()).await;
    assert_eq!(ids_of(&next), theirs[3..].to_vec());
    let last = get(&s, next["links"][0]["href"].as_str().unwrap()).await;
    assert_eq!(last, json!({"messages": [], "links": []}));
}

#[tokio::test]
async fn listing_excludes_claimed_messages_unless_include_claimed() {
    let s = TestServer::start().await;
    let ids = s
        .post_as(
            OTHER_CLIENT,
            "lc",
            json!([{"body": 1}, {"body": 2}, {"body": 3}]),
        )
        .await;
    let (cid, _) = s.claim("lc", None, Some(1)).await.unwrap();
    let page = get(&s, "/v2/queues/lc/messages").await;
    assert_eq!(ids_of(&page), ids[1..].to_vec());
    let page = get(&s, "/v2/queues/lc/messages?include_claimed=true").await;
    assert_eq!(ids_of(&page), ids);
    assert_eq!(
        page["messages"][0]["href"],
        format!("/v2/queues/lc/messages/{}?claim_id={cid}", ids[0])
    );
    assert_eq!(
        page["messages"][1]["href"],
        format!("/v2/queues/lc/messages/{}", ids[1])
    );
    let href = page["links"][0]["href"].as_str().unwrap();
    assert!(href.contains("include_claimed=true"), "{href}");
}

#[tokio::test]
async fn listing_pages_with_marker_until_an_empty_page() {
    let s = TestServer::start().await;
    let ids = s
        .post_as(
            OTHER_CLIENT,
            "pg",
            json!([{"body": 0}, {"body": 1}, {"body": 2}, {"body": 3}, {"body": 4}]),
        )
        .await;
    let mut href = "/v2/queues/pg/messages?limit=2".to_string();
    let mut pages: Vec<Vec<String>> = Vec::new();
    loop {
        let page = get(&s, &href).await;
        let got = ids_of(&page);
        let links = page["links"].as_array().unwrap().clone();
        if got.is_empty() {
            assert!(links.is_empty(), "empty page has no links: {page}");
            break;
        }
        assert_eq!(links.len(), 1, "{page}");
        assert_eq!(links[0]["rel"], "next");
        href = links[0]["href"].as_str().unwrap().to_string();
        assert!(href.starts_with("/v2/queues/pg/messages?"), "{href}");
        assert!(href.contains("marker="), "{href}");
        assert!(href.contains("limit=2"), "{href}");
        pages.push(got);
        assert!(pages.len() < 10, "paging does not terminate");
    }
    assert_eq!(
        pages,
        vec![ids[0..2].to_vec(), ids[2..4].to_vec(), ids[4..].to_vec()]
    );
    // Messages posted after the last page show up when following the last link.
    let more = s.post_as(OTHER_CLIENT, "pg", json!([{"body": 5}])).await;
    assert_eq!(ids_of(&get(&s, &href).await), more);
}

#[tokio::test]
async fn listing_next_link_keeps_flags() {
    let s = TestServer::start().await;
    s.post("fl", json!([{"body": 1}, {"body": 2}])).await;
    let page = get(&s, "/v2/queues/fl/messages?echo=true&limit=1").await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 1);
    let href = page["links"][0]["href"].as_str().unwrap();
    assert!(href.contains("echo=true"), "{href}");
    let next = get(&s, href).await;
    assert_eq!(bodies_of(&next), vec![json!(2)]);
}

#[tokio::test]
async fn listing_with_bad_marker_is_an_empty_page() {
    let s = TestServer::start().await;
    s.post_as(OTHER_CLIENT, "bm", json!([{"body": 1}])).await;
    for marker in ["abc", "-1", "1.5", "%20"] {
        let page = get(&s, &format!("/v2/queues/bm/messages?marker={marker}")).await;
        assert_eq!(page, json!({"messages": [], "links": []}), "{marker}");
    }
}

#[tokio::test]
async fn listing_missing_queue_is_empty_and_creates_nothing() {
    let s = TestServer::start().await;
    let page = get(&s, "/v2/queues/ghost/messages?echo=true").await;
    assert_eq!(page, json!({"messages": [], "links": []}));
    assert_eq!(get(&s, "/v2/queues").await["queues"], json!([]));
}

#[tokio::test]
async fn listing_limit_and_flag_validation() {
    let s = TestServer::start().await;
    s.post_as(
        OTHER_CLIENT,
        "lim",
        json!((0..25).map(|i| json!({"body": i})).collect::<Vec<_>>()),
    )
    .await;
    assert_eq!(ids_of(&get(&s, "/v2/queues/lim/messages").await).len(), 10);
    assert_eq!(
        ids_of(&get(&s, "/v2/queues/lim/messages?limit=20").await).len(),
        20
    );
    assert_eq!(
        ids_of(&get(&s, "/v2/queues/lim/messages?limit=1").await).len(),
        1
    );
    for bad in ["0", "21", "-5"] {
        let resp = s
            .req(Method::GET, &format!("/v2/queues/lim/messages?limit={bad}"))
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
        ("echo=maybe", "echo"),
        ("include_claimed=2", "include_claimed"),
    ] {
        let resp = s
            .req(Method::GET, &format!("/v2/queues/lim/messages?{query}"))
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
async fn listing_reports_age_from_the_clock() {
    let s = TestServer::start().await;
    s.post_as(OTHER_CLIENT, "age", json!([{"body": 1}])).await;
    s.clock.advance_secs(42);
    let page = get(&s, "/v2/queues/age/messages").await;
    assert_eq!(page["messages"][0]["age"], 42);
    s.clock.advance(999);
    let page = get(&s, "/v2/queues/age/messages").await;
    assert_eq!(page["messages"][0]["age"], 42, "whole seconds");
}

#[tokio::test]
async fn page_limits_follow_configuration() {
    let s = TestServer::start_with(&[("transport", "max_messages_per_page", "5")]).await;
    let ids = s
        .post(
            "cfg",
            json!((0..6).map(|i| json!({"body": i})).collect::<Vec<_>>()),
        )
        .await;
    let resp = s
        .req(Method::GET, "/v2/queues/cfg/messages?limit=6")
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Invalid API request", Some("5")).await;
    assert_eq!(
        ids_of(&get(&s, "/v2/queues/cfg/messages?echo=true&limit=5").await).len(),
        5
    );
    let resp = s
        .req(
            Method::GET,
            &format!("/v2/queues/cfg/messages?ids={}", ids.join(",")),
        )
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Invalid API request", None).await;
    let resp = delete(
        &s,
        &format!("/v2/queues/cfg/messages?ids={}", ids.join(",")),
    )
    .await;
    expect_error(resp, 400, "Invalid API request", None).await;
    assert_eq!(stats_total(&s, "cfg").await, 6);
}

// ----- GET by ids ---------------------------------------------------------------------------

#[tokio::test]
async fn get_by_ids_returns_only_found_messages() {
    let s = TestServer::start().await;
    let ids = s.post("byid", json!([{"body": "x"}, {"body": "y"}])).await;
    let (cid, _) = s.claim("byid", None, Some(1)).await.unwrap();
    let unknown = sibling_id(&ids[0]);
    let path = format!(
        "/v2/queues/byid/messages?ids={},{unknown},not-an-id,{}",
        ids[0], ids[1]
    );
    // Echo is ignored: the poster gets its own (and claimed) messages.
    let page = get(&s, &path).await;
    assert_eq!(sorted(ids_of(&page)), sorted(ids.clone()));
    assert!(page.get("links").is_none(), "no links: {page}");
    let first = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == ids[0].as_str())
        .unwrap();
    assert_eq!(
        first["href"],
        format!("/v2/queues/byid/messages/{}?claim_id={cid}", ids[0])
    );
    assert_eq!(first["body"], "x");
    assert_eq!(first["ttl"], 3600);
    assert_eq!(first["age"], 0);
    // Other query parameters are ignored.
    let page = get(
        &s,
        &format!("{path}&echo=false&include_claimed=false&limit=1"),
    )
    .await;
    assert_eq!(ids_of(&page).len(), 2);
}

#[tokio::test]
async fn get_by_ids_with_none_found_is_404() {
    let s = TestServer::start().await;
    let ids = s.post("byid", json!([{"body": 1}])).await;
    for path in [
        format!("/v2/queues/byid/messages?ids={}", sibling_id(&ids[0])),
        "/v2/queues/byid/messages?ids=nope,also-nope".to_string(),
        format!("/v2/queues/other/messages?ids={}", ids[0]),
        format!("/v2/queues/ghost/messages?ids={}", ids[0]),
    ] {
        let resp = s.req(Method::GET, &path).send().await.unwrap();
        expect_error(resp, 404, "Not found", Some("No messages with IDs")).await;
    }
}

#[tokio::test]
async fn get_by_ids_accepts_1_to_20_ids() {
    let s = TestServer::start().await;
    let ids = s.post("many", json!([{"body": 1}])).await;
    let mut twenty: Vec<String> = (0..19).map(|i| format!("{i:032x}")).collect();
    twenty.push(ids[0].clone());
    let page = get(
        &s,
        &format!("/v2/queues/many/messages?ids={}", twenty.join(",")),
    )
    .await;
    assert_eq!(ids_of(&page), ids);
    let mut twenty_one = twenty.clone();
    twenty_one.push(format!("{:032x}", 99));
    let resp = s
        .req(
            Method::GET,
            &format!("/v2/queues/many/messages?ids={}", twenty_one.join(",")),
        )
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Invalid API request", Some("ids")).await;
    let resp = s
        .req(Method::GET, "/v2/queues/many/messages?ids=,")
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Invalid API request", None).await;
}

// ----- GET one ------------------------------------------------------------------------------

#[tokio::test]
async fn get_one_returns_the_message_view() {
    let s = TestServer::start().await;
    let ids = s
        .post("one", json!([{"body": {"k": "v"}, "ttl": 600}]))
        .await;
    s.clock.advance_secs(7);
    let m = get(&s, &format!("/v2/queues/one/messages/{}", ids[0])).await;
    assert_eq!(
        m,
        json!({
            "id": ids[0],
            "href": format!("/v2/queues/one/messages/{}", ids[0]),
            "ttl": 600,
            "age": 7,
            "body": {"k": "v"},
        })
    );
    let (cid, _) = s.claim("one", None, None).await.unwrap();
    let m = get(&s, &format!("/v2/queues/one/messages/{}", ids[0])).await;
    assert_eq!(
        m["href"],
        format!("/v2/queues/one/messages/{}?claim_id={cid}", ids[0])
    );
}

#[tokio::test]
async fn get_one_unknown_malformed_or_elsewhere_is_404() {
    let s = TestServer::start().await;
    let ids = s.post("one", json!([{"body": 1}, {"body": 2}])).await;
    s.post("two", json!([{"body": 3}])).await;
    let resp = delete(&s, &format!("/v2/queues/one/messages/{}", ids[1])).await;
    assert_eq!(resp.status().as_u16(), 204);
    for path in [
        format!("/v2/queues/one/messages/{}", sibling_id(&ids[0])),
        "/v2/queues/one/messages/not-an-id".to_string(),
        "/v2/queues/one/messages/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz".to_string(),
        format!("/v2/queues/one/messages/{}", ids[1]),
        format!("/v2/queues/two/messages/{}", ids[0]),
        format!("/v2/queues/ghost/messages/{}", ids[0]),
    ] {
        let resp = s.req(Method::GET, &path).send().await.unwrap();
        expect_error(resp, 404, "Not found", Some("does not exist")).await;
    }
    let resp = s
        .http
        .get(s.url(&format!("/v2/queues/one/messages/{}", ids[0])))
        .header("Client-ID", CLIENT)
        .header("X-Project-ID", "someone-else")
        .send()
        .await
        .unwrap();
    expect_error(resp, 404, "Not found", None).await;
}

// ----- bulk DELETE and pop ------------------------------------------------------------------

#[tokio::test]
async fn bulk_delete_needs_exactly_one_of_ids_and_pop() {
    let s = TestServer::start().await;
    let ids = s.post("bd", json!([{"body": 1}])).await;
    for query in [
        format!("?ids={}&pop=1", ids[0]),
        String::new(),
        "?ids=&pop=".to_string(),
        "?claim_ids=abc".to_string(),
    ] {
        let resp = delete(&s, &format!("/v2/queues/bd/messages{query}")).await;
        expect_error(resp, 400, "Invalid API request", None).await;
    }
    assert_eq!(stats_total(&s, "bd").await, 1);
}

#[tokio::test]
async fn bulk_delete_pop_bounds() {
    let s = TestServer::start().await;
    s.post("pb", json!([{"body": 1}])).await;
    for pop in ["0", "21", "-1"] {
        let resp = delete(&s, &format!("/v2/queues/pb/messages?pop={pop}")).await;
        expect_error(
            resp,
            400,
            "Invalid API request",
            Some("Pop value must be at least 1 and may not be greater than 20."),
        )
        .await;
    }
    let resp = delete(&s, "/v2/queues/pb/messages?pop=abc").await;
    expect_error(
        resp,
        400,
        "Invalid parameter",
        Some("The \"pop\" parameter is invalid."),
    )
    .await;
    assert_eq!(stats_total(&s, "pb").await, 1);
    let resp = delete(&s, "/v2/queues/pb/messages?pop=20").await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(json_of(resp).await["messages"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bulk_delete_by_ids_deletes_claimed_messages_and_skips_unknown_ones() {
    let s = TestServer::start().await;
    let ids = s
        .post("bd", json!([{"body": 1}, {"body": 2}, {"body": 3}]))
        .await;
    s.claim("bd", None, Some(2)).await.unwrap();
    let resp = delete(
        &s,
        &format!(
            "/v2/queues/bd/messages?ids={},{},{},junk",
            ids[0],
            ids[1],
            sibling_id(&ids[2])
        ),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 204);
    assert!(resp.bytes().await.unwrap().is_empty());
    let left = get(&s, "/v2/queues/bd/messages?echo=true&include_claimed=true").await;
    assert_eq!(ids_of(&left), ids[2..].to_vec());
    // Idempotent, and fine on a missing queue.
    for path in [
        format!("/v2/queues/bd/messages?ids={}", ids[0]),
        format!("/v2/queues/ghost/messages?ids={}", ids[2]),
    ] {
        assert_eq!(delete(&s, &path).await.status().as_u16(), 204);
    }
    assert_eq!(stats_total(&s, "bd").await, 1);
}

#[tokio::test]
async fn bulk_delete_by_ids_accepts_at_most_20() {
    let s = TestServer::start().await;
    let ids = s.post("bd", json!([{"body": 1}])).await;
    let mut list: Vec<String> = (0..20).map(|i| format!("{i:032x}")).collect();
    list.push(ids[0].clone());
    let resp = delete(
        &s,
        &format!("/v2/queues/bd/messages?ids={}", list.join(",")),
    )
    .await;
    expect_error(resp, 400, "Invalid API request", Some("ids")).await;
    assert_eq!(stats_total(&s, "bd").await, 1);
    list.remove(0);
    let resp = delete(
        &s,
        &format!("/v2/queues/bd/messages?ids={}", list.join(",")),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(stats_total(&s, "bd").await, 0);
}

/// `[transport] message_delete_with_claim_id = true`: bulk deletion by ids needs the claim ids
/// of the targeted messages.
#[tokio::test]
async fn bulk_delete_with_mandatory_claim_ids() {
    let s = TestServer::start_with(&[("transport", "message_delete_with_claim_id", "true")]).await;
    let ids = s
        .post("mc", json!([{"body": 1}, {"body": 2}, {"body": 3}]))
        .await;
    let (cid, _) = s.claim("mc", None, Some(2)).await.unwrap();
    let resp = delete(&s, &format!("/v2/queues/mc/messages?ids={}", ids[0])).await;
    expect_error(resp, 400, "Invalid API request", Some("claim_ids")).await;
    // A targeted message that the given claim does not hold: refused, nothing deleted.
    let resp = delete(
        &s,
        &format!(
            "/v2/queues/mc/messages?ids={},{}&claim_ids={cid}",
            ids[0], ids[2]
        ),
    )
    .await;
    expect_error(resp, 403, "Unable to delete", None).await;
    let resp = delete(
        &s,
        &format!("/v2/queues/mc/messages?ids={}&claim_ids={:032x}", ids[0], 5),
    )
    .await;
    expect_error(resp, 403, "Unable to delete", None).await;
    assert_eq!(stats_total(&s, "mc").await, 3);
    let resp = delete(
        &s,
        &format!(
            "/v2/queues/mc/messages?ids={},{}&claim_ids={cid}",
            ids[0], ids[1]
        ),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(stats_total(&s, "mc").await, 1);
    // Pop is unaffected.
    let resp = delete(&s, "/v2/queues/mc/messages?pop=1").await;
    assert_eq!(ids_of(&json_of(resp).await), vec![ids[2].clone()]);
}

#[tokio::test]
async fn pop_returns_the_raw_shape_oldest_first_and_skips_claimed() {
    let s = TestServer::start().await;
    let ids = s
        .post(
            "pop",
            json!([{"body": "a"}, {"body": "b", "ttl": 120}, {"body": "c"}, {"body": "d"}]),
        )
        .await;
    let (_, claimed) = s.claim("pop", None, Some(1)).await.unwrap();
    assert_eq!(claimed[0]["id"], ids[0].as_str());
    s.clock.advance_secs(3);
    let resp = delete(&s, "/v2/queues/pop/messages?pop=2").await;
    assert_eq!(resp.status().as_u16(), 200);
    let body = json_of(resp).await;
    assert_eq!(
        body,
        json!({"messages": [
            {"id": ids[1], "age": 3, "ttl": 120, "claim_count": 0, "claim_id": null, "body": "b"},
            {"id": ids[2], "age": 3, "ttl": 3600, "claim_count": 0, "claim_id": null, "body": "c"},
        ]})
    );
    // Popped messages are gone; the claimed one and the last remain.
    let left = get(&s, "/v2/queues/pop/messages?echo=true&include_claimed=true").await;
    assert_eq!(ids_of(&left), vec![ids[0].clone(), ids[3].clone()]);
    let resp = delete(&s, "/v2/queues/pop/messages?pop=5").await;
    assert_eq!(ids_of(&json_of(resp).await), vec![ids[3].clone()]);
    let resp = delete(&s, "/v2/queues/pop/messages?pop=5").await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(json_of(resp).await, json!({"messages": []}));
    assert_eq!(stats_total(&s, "pop").await, 1);
}

#[tokio::test]
async fn pop_reports_a_stale_claim_id() {
    let s = TestServer::start().await;
    let ids = s.post("stale", json!([{"body": 1}])).await;
    let (cid, _) = s
        .claim("stale", Some(json!({"ttl": 60, "grace": 60})), None)
        .await
        .unwrap();
    s.clock.advance_secs(61);
    let body = json_of(delete(&s, "/v2/queues/stale/messages?pop=1").await).await;
    let m = &body["messages"][0];
    assert_eq!(m["id"], ids[0].as_str());
    // The stale claim id, or null (spec §3.4.4 allows both), never another value.
    assert!(
        m["claim_id"] == cid.as_str() || m["claim_id"].is_null(),
        "{m}"
    );
    assert!(m.get("href").is_none());
    assert!(m["claim_count"].is_u64());
}

#[tokio::test]
async fn pop_on_missing_queue_is_an_empty_list() {
    let s = TestServer::start().await;
    let resp = delete(&s, "/v2/queues/ghost/messages?pop=3").await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(json_of(resp).await, json!({"messages": []}));
}

// ----- single DELETE (spec §3.4.6) -----------------------------------------------------------

const CLAIMED: &str = "This message is claimed; it cannot be deleted without a valid claim ID.";
const NOT_CLAIMED: &str = "A claim was specified, but the message is not currently claimed.";
const NO_CLAIM: &str = "The specified claim does not exist or has expired.";

async fn exists(s: &TestServer, queue: &str, id: &str) -> bool {
    let resp = s
        .req(Method::GET, &format!("/v2/queues/{queue}/messages/{id}"))
        .send()
        .await
        .unwrap();
    match resp.status().as_u16() {
        200 => true,
        404 => false,
        other => panic!("GET message: {other}"),
    }
}

#[tokio::test]
async fn delete_one_without_claim() {
    let s = TestServer::start().await;
    let ids = s.post("d1", json!([{"body": 1}])).await;
    let path = format!("/v2/queues/d1/messages/{}", ids[0]);
    let resp = delete(&s, &path).await;
    assert_eq!(resp.status().as_u16(), 204);
    assert!(resp.bytes().await.unwrap().is_empty());
    assert!(!exists(&s, "d1", &ids[0]).await);
    // Already deleted, unknown, malformed, missing queue: all 204.
    for path in [
        path.clone(),
        format!("/v2/queues/d1/messages/{}", sibling_id(&ids[0])),
        "/v2/queues/d1/messages/garbage".to_string(),
        format!("/v2/queues/ghost/messages/{}", ids[0]),
        format!(
            "/v2/queues/d1/messages/{}?claim_id={}",
            ids[0],
            "a".repeat(32)
        ),
    ] {
        assert_eq!(delete(&s, &path).await.status().as_u16(), 204, "{path}");
    }
}

#[tokio::test]
async fn delete_one_claimed_without_claim_id_is_403() {
    let s = TestServer::start().await;
    let ids = s.post("d2", json!([{"body": 1}])).await;
    s.claim("d2", None, None).await.unwrap();
    let resp = delete(&s, &format!("/v2/queues/d2/messages/{}", ids[0])).await;
    expect_error(resp, 403, "Unable to delete", Some(CLAIMED)).await;
    assert!(exists(&s, "d2", &ids[0]).await);
}

#[tokio::test]
async fn delete_one_with_its_claim_id_deletes_it_from_the_claim() {
    let s = TestServer::start().await;
    let ids = s.post("d3", json!([{"body": 1}, {"body": 2}])).await;
    let (cid, msgs) = s.claim("d3", None, None).await.unwrap();
    // The href from the claim is usable verbatim.
    let href = msgs[0]["href"].as_str().unwrap().to_string();
    assert_eq!(
        href,
        format!("/v2/queues/d3/messages/{}?claim_id={cid}", ids[0])
    );
    let resp = delete(&s, &href).await;
    assert_eq!(resp.status().as_u16(), 204);
    assert!(!exists(&s, "d3", &ids[0]).await);
    let claim = get(&s, &format!("/v2/queues/d3/claims/{cid}")).await;
    assert_eq!(ids_of(&claim), vec![ids[1].clone()]);
}

#[tokio::test]
async fn delete_one_with_claim_id_on_unclaimed_message_is_400() {
    let s = TestServer::start().await;
    let ids = s
        .post("d4", json!([{"body": 1}, {"body": 2}, {"body": 3}]))
        .await;
    // Never claimed (a live claim holds another message).
    let (cid_other, _) = s.claim("d4", None, Some(1)).await.unwrap();
    let resp = delete(
        &s,
        &format!("/v2/queues/d4/messages/{}?claim_id={cid_other}", ids[2]),
    )
    .await;
    expect_error(resp, 400, "Unable to delete", Some(NOT_CLAIMED)).await;
    // Released.
    let (cid, _) = s.claim("d4", None, Some(1)).await.unwrap();
    let resp = delete(&s, &format!("/v2/queues/d4/claims/{cid}")).await;
    assert_eq!(resp.status().as_u16(), 204);
    let resp = delete(
        &s,
        &format!("/v2/queues/d4/messages/{}?claim_id={cid}", ids[1]),
    )
    .await;
    expect_error(resp, 400, "Unable to delete", Some(NOT_CLAIMED)).await;
    // Expired.
    s.clock.advance_secs(301);
    let resp = delete(
        &s,
        &format!("/v2/queues/d4/messages/{}?claim_id={cid_other}", ids[0]),
    )
    .await;
    expect_error(resp, 400, "Unable to delete", Some(NOT_CLAIMED)).await;
    for id in &ids {
        assert!(exists(&s, "d4", id).await);
    }
}

#[tokio::test]
async fn delete_one_with_malformed_or_unknown_claim_id_is_400() {
    let s = TestServer::start().await;
    let ids = s.post("d5", json!([{"body": 1}])).await;
    s.claim("d5", None, None).await.unwrap();
    for cid in ["garbage", "12", &"f".repeat(32)] {
        let resp = delete(
            &s,
            &format!("/v2/queues/d5/messages/{}?claim_id={cid}", ids[0]),
        )
        .await;
        expect_error(resp, 400, "Unable to delete", Some(NO_CLAIM)).await;
    }
    assert!(exists(&s, "d5", &ids[0]).await);
}

#[tokio::test]
async fn delete_one_claimed_by_another_claim() {
    let s = TestServer::start().await;
    let ids = s.post("d6", json!([{"body": 1}, {"body": 2}])).await;
    // An expired claim A on message 0, then a live claim B on it.
    let (a, _) = s
        .claim("d6", Some(json!({"ttl": 60, "grace": 60})), Some(1))
        .await
        .unwrap();
    s.clock.advance_secs(60);
    let (b, msgs) = s.claim("d6", None, Some(1)).await.unwrap();
    assert_eq!(msgs[0]["id"], ids[0].as_str());
    // C: another live claim, on message 1.
    let (c, msgs) = s.claim("d6", None, Some(1)).await.unwrap();
    assert_eq!(msgs[0]["id"], ids[1].as_str());
    // The given claim exists and is live, but holds another message: 403.
    let resp = delete(
        &s,
        &format!("/v2/queues/d6/messages/{}?claim_id={c}", ids[0]),
    )
    .await;
    expect_error(resp, 403, "Unable to delete", None).await;
    // The given claim has expired: 400.
    let resp = delete(
        &s,
        &format!("/v2/queues/d6/messages/{}?claim_id={a}", ids[0]),
    )
    .await;
    expect_error(resp, 400, "Unable to delete", Some(NO_CLAIM)).await;
    assert!(exists(&s, "d6", &ids[0]).await);
    // The right claim works.
    let resp = delete(
        &s,
        &format!("/v2/queues/d6/messages/{}?claim_id={b}", ids[0]),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 204);
    assert!(!exists(&s, "d6", &ids[0]).await);
}
