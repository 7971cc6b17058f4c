//! Message lifecycle over HTTP: delayed queues, dead-letter queues and redrive, encryption at
//! rest, checksums, long polling.

use zaqar_testkit as common;

use std::time::Duration;

use common::{expect_error, json_of, TestServer, OTHER_CLIENT};
use reqwest::Method;
use serde_json::{json, Value};

const KEY: (&str, &str, &str) = (
    "transport",
    "message_encryption_key",
    "correct horse battery",
);

async fn put(s: &TestServer, q: &str, meta: Value) {
    let resp = s
        .req(Method::PUT, &format!("/v2/queues/{q}"))
        .json(&meta)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        201,
        "{}",
        resp.text().await.unwrap()
    );
}

async fn list(s: &TestServer, path: &str) -> Vec<Value> {
    let resp = s
        .req_as(OTHER_CLIENT, Method::GET, path)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    json_of(resp).await["messages"].as_array().unwrap().clone()
}

fn bodies(ms: &[Value]) -> Vec<Value> {
    ms.iter().map(|m| m["body"].clone()).collect()
}

async fn stats(s: &TestServer, q: &str) -> Value {
    json_of(
        s.req(Method::GET, &format!("/v2/queues/{q}/stats"))
            .send()
            .await
            .unwrap(),
    )
    .await["messages"]
        .clone()
}

// ----- delay -----------------------------------------------------------------------------

#[tokio::test]
async fn delayed_queue_hides_messages_until_their_delay_passes() {
    let s = TestServer::start().await;
    put(&s, "dq", json!({"_default_message_delay": 30})).await;
    s.post(
        "dq",
        json!([{"body": "late"}, {"body": "now", "delay": 0}, {"body": "later", "delay": 60}]),
    )
    .await;
    assert_eq!(
        bodies(&list(&s, "/v2/queues/dq/messages").await),
        vec![json!("now")]
    );
    let all = list(&s, "/v2/queues/dq/messages?include_delayed=true").await;
    assert_eq!(
        bodies(&all),
        vec![json!("late"), json!("now"), json!("later")]
    );
    let st = stats(&s, "dq").await;
    assert_eq!(
        (st["total"].clone(), st["delayed"].clone()),
        (json!(3), json!(2))
    );
    // Claims and pops skip delayed messages.
    let (_, claimed) = s.claim("dq", None, Some(10)).await.unwrap();
    assert_eq!(bodies(&claimed), vec![json!("now")]);
    assert!(s.claim("dq", None, Some(10)).await.is_none());
    let popped = json_of(
        s.req(Method::DELETE, "/v2/queues/dq/messages?pop=5")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(popped["messages"], json!([]));
    s.clock.advance_secs(30);
    let (_, claimed) = s.claim("dq", None, Some(10)).await.unwrap();
    assert_eq!(bodies(&claimed), vec![json!("late")]);
    s.clock.advance_secs(30);
    let (_, claimed) = s.claim("dq", None, Some(10)).await.unwrap();
    assert_eq!(bodies(&claimed), vec![json!("later")]);
}

#[tokio::test]
async fn delay_rules() {
    let s = TestServer::start().await;
    put(&s, "dq", json!({"_default_message_delay": 10})).await;
    for (msg, why) in [
        (json!({"body": 1, "delay": 901}), "above max_message_delay"),
        (json!({"body": 1, "delay": -1}), "negative"),
        (
            json!({"body": 1, "delay": 120, "ttl": 60}),
            "longer than the ttl",
        ),
    ] {
        let resp = s
            .req(Method::POST, "/v2/queues/dq/messages")
            .json(&json!({ "messages": [msg] }))
            .send()
            .await
            .unwrap();
        expect_error(resp, 400, "Invalid API request", None).await;
        let _ = why;
    }
    let resp = s
        .req(Method::POST, "/v2/queues/dq/messages")
        .json(&json!({"messages": [{"body": 1, "delay": "5"}]}))
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Invalid request body", Some("delay")).await;
    // On a queue without a default delay, `delay` is silently dropped.
    s.post("plain", json!([{"body": "x", "delay": 600}])).await;
    assert_eq!(list(&s, "/v2/queues/plain/messages").await.len(), 1);
    assert!(s.claim("plain", None, None).await.is_some());
}

#[tokio::test]
async fn raised_max_delay_allows_delays_up_to_the_ttl() {
    let s = TestServer::start_with(&[("transport", "max_message_delay", "7200")]).await;
    put(&s, "long", json!({"_default_message_delay": 3600})).await;
    s.post("long", json!([{"body": 1, "ttl": 7200}])).await;
    s.clock.advance_secs(3599);
    assert!(s.claim("long", None, None).await.is_none());
    s.clock.advance_secs(1);
    assert!(s.claim("long", None, None).await.is_some());
}

// ----- dead-letter queues -----------------------------------------------------------------

#[tokio::test]
async fn dead_letter_queue_and_redrive_over_http() {
    let s = TestServer::start().await;
    put(
        &s,
        "jobs",
        json!({"_max_claim_count": 1, "_dead_letter_queue": "jobs-dead", "_dead_letter_queue_messages_ttl": 600}),
    )
    .await;
    let ids = s.post("jobs", json!([{"body": {"job": 1}}])).await;
    let (_, first) = s.claim("jobs", None, None).await.unwrap();
    assert_eq!(first[0]["id"], ids[0].as_str());
    s.clock.advance_secs(301); // the default claim ttl
    assert!(
        s.claim("jobs", None, None).await.is_none(),
        "moved: nothing to claim"
    );
    let dead = list(&s, "/v2/queues/jobs-dead/messages").await;
    assert_eq!(bodies(&dead), vec![json!({"job": 1})]);
    assert_eq!(dead[0]["ttl"], 600);
    assert_eq!(stats(&s, "jobs").await["total"], 0);

    // Redrive puts it back in `jobs` with a fresh claim count.
    let resp = s
        .req(Method::POST, "/v2/queues/jobs-dead/x-redrive")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        json_of(resp).await,
        json!({"moved": 1, "skipped": 0, "targets": ["jobs"]})
    );
    assert!(list(&s, "/v2/queues/jobs-dead/messages").await.is_empty());
    let (_, again) = s.claim("jobs", None, None).await.unwrap();
    assert_eq!(bodies(&again), vec![json!({"job": 1})]);
}

#[tokio::test]
async fn redrive_parameters() {
    let s = TestServer::start().await;
    s.post("dead", json!([{"body": 1}, {"body": 2}, {"body": 3}]))
        .await;
    let redrive = |body: Value| {
        s.req(Method::POST, "/v2/queues/dead/x-redrive")
            .json(&body)
            .send()
    };
    // No recorded source and no target: nothing moves.
    let out = json_of(redrive(json!({})).await.unwrap()).await;
    assert_eq!(out["moved"], 0);
    assert_eq!(out["skipped"], 3);
    let out = json_of(
        redrive(json!({"target": "fresh", "limit": 2}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(out["moved"], 2);
    assert_eq!(list(&s, "/v2/queues/fresh/messages").await.len(), 2);
    for (body, title) in [
        (
            json!({"target": "bad name!"}),
            "Invalid queue identification",
        ),
        (json!({"target": "dead"}), "Invalid API request"),
        (json!({"limit": 0}), "Invalid API request"),
        (json!({"limit": "2"}), "Invalid request body"),
        (json!({"target": 5}), "Invalid request body"),
        (json!({"other": 1}), "Invalid API request"),
    ] {
        expect_error(redrive(body).await.unwrap(), 400, title, None).await;
    }
}

// ----- encryption -------------------------------------------------------------------------

/// Whether any file of the store contains `needle`.
fn store_contains(s: &TestServer, needle: &str) -> bool {
    std::fs::read_dir(s.data_dir()).unwrap().any(|e| {
        let bytes = std::fs::read(e.unwrap().path()).unwrap();
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    })
}

#[tokio::test]
async fn encrypted_queues_store_ciphertext_and_return_plaintext_everywhere() {
    let s = TestServer::start_with(&[KEY]).await;
    put(&s, "secret", json!({"_enable_encrypt_messages": true})).await;
    put(&s, "open", json!({})).await;
    let plain = json!({"card": "PLAINTEXT-SECRET-4111"});
    let ids = s
        .post(
            "secret",
            json!([{"body": plain}, {"body": "PLAINTEXT-STRING-BODY"}]),
        )
        .await;
    s.post("open", json!([{"body": "PLAINTEXT-OPEN-BODY"}]))
        .await;
    assert!(
        !store_contains(&s, "PLAINTEXT-SECRET-4111"),
        "ciphertext at rest"
    );
    assert!(!store_contains(&s, "PLAINTEXT-STRING-BODY"));
    assert!(
        store_contains(&s, "PLAINTEXT-OPEN-BODY"),
        "the check itself works"
    );

    let listed = list(&s, "/v2/queues/secret/messages").await;
    assert_eq!(
        bodies(&listed),
        vec![plain.clone(), json!("PLAINTEXT-STRING-BODY")]
    );
    let one = json_of(
        s.req(
            Method::GET,
            &format!("/v2/queues/secret/messages/{}", ids[0]),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(one["body"], plain);
    let many = json_of(
        s.req(
            Method::GET,
            &format!("/v2/queues/secret/messages?ids={}", ids.join(",")),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(many["messages"].as_array().unwrap().len(), 2);
    assert!(many["messages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["body"] == plain));
    let (cid, claimed) = s.claim("secret", None, Some(1)).await.unwrap();
    assert_eq!(claimed[0]["body"], plain);
    let claim = json_of(
        s.req(Method::GET, &format!("/v2/queues/secret/claims/{cid}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(claim["messages"][0]["body"], plain);
    let popped = json_of(
        s.req(Method::DELETE, "/v2/queues/secret/messages?pop=5")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        popped["messages"][0]["body"],
        json!("PLAINTEXT-STRING-BODY")
    );
}

#[tokio::test]
async fn encryption_needs_a_configured_key() {
    let s = TestServer::start().await;
    let resp = s
        .req(Method::PUT, "/v2/queues/secret")
        .json(&json!({"_enable_encrypt_messages": true}))
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Invalid API request", Some("encryption key")).await;
    put(&s, "later", json!({})).await;
    let resp = s
        .req(Method::PATCH, "/v2/queues/later")
        .header("Content-Type", zaqar_api::http::PATCH_MEDIA_TYPE)
        .body(r#"[{"op": "add", "path": "/metadata/_enable_encrypt_messages", "value": true}]"#)
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Invalid API request", Some("encryption key")).await;
}

#[tokio::test]
async fn the_reference_default_key_is_refused_at_start_up() {
    let mut raw = zaqar_server::config::RawConfig::default();
    raw.set(
        "transport",
        "message_encryption_key",
        "AES256",
        zaqar_server::config::Origin::Cli,
    );
    let dir = tempfile::tempdir().unwrap();
    raw.set(
        "drivers:message_store:embedded",
        "path",
        &dir.path().to_string_lossy(),
        zaqar_server::config::Origin::Cli,
    );
    let (config, _) = zaqar_server::config::Config::from_raw(&raw, true).unwrap();
    let err =
        zaqar_server::app::App::build(config, std::sync::Arc::new(zaqar_core::clock::SystemClock))
            .await
            .err()
            .expect("refused");
    assert!(err.to_string().contains("message_encryption_key"), "{err}");
}

// ----- checksums --------------------------------------------------------------------------

#[tokio::test]
async fn checksums_match_the_reference() {
    let s = TestServer::start_with(&[("DEFAULT", "enable_checksum", "true")]).await;
    let ids = s
        .post(
            "c",
            json!([{"body": {"event": "BackupStarted", "n": 1}}, {"body": null}]),
        )
        .await;
    let got = json_of(
        s.req(
            Method::GET,
            &format!("/v2/queues/c/messages?ids={}", ids.join(",")),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    for m in got["messages"].as_array().unwrap() {
        if m["id"] == ids[0].as_str() {
            assert_eq!(m["checksum"], "MD5:77304575523d9e78bafb864b74c01f2f");
        } else {
            assert!(m.get("checksum").is_none(), "a null body has no checksum");
        }
    }
    let off = TestServer::start().await;
    let ids = off.post("c", json!([{"body": 1}])).await;
    let m = json_of(
        off.req(Method::GET, &format!("/v2/queues/c/messages/{}", ids[0]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(m.get("checksum").is_none());
}

// ----- long polling -----------------------------------------------------------------------

#[tokio::test]
async fn a_waiting_listing_returns_when_a_message_arrives() {
    let s = TestServer::start().await;
    let waiter = s
        .req_as(OTHER_CLIENT, Method::GET, "/v2/queues/lp/messages?wait=20")
        .send();
    let waiter = tokio::spawn(waiter);
    // Wait until the request is parked on the queue's signal, then post.
    for _ in 0..200 {
        if s.service.hub().watched_queues() == 1 {
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        s.service.hub().watched_queues(),
        1,
        "the request is waiting"
    );
    s.post("lp", json!([{"body": "hello"}])).await;
    let resp = waiter.await.unwrap().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let page = json_of(resp).await;
    assert_eq!(page["messages"][0]["body"], "hello");
}

#[tokio::test]
async fn a_waiting_claim_returns_when_a_message_arrives() {
    let s = TestServer::start().await;
    let waiter = tokio::spawn(s.req(Method::POST, "/v2/queues/lpc/claims?wait=20").send());
    for _ in 0..200 {
        if s.service.hub().watched_queues() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    s.post("lpc", json!([{"body": 7}])).await;
    let resp = waiter.await.unwrap().unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    assert_eq!(json_of(resp).await["messages"][0]["body"], 7);
}

#[tokio::test]
async fn wait_is_validated() {
    let s = TestServer::start_with(&[("transport", "max_wait", "5")]).await;
    for path in [
        "/v2/queues/w/messages?wait=6",
        "/v2/queues/w/messages?wait=-1",
    ] {
        let resp = s.req(Method::GET, path).send().await.unwrap();
        expect_error(resp, 400, "Invalid API request", Some("wait")).await;
    }
    let resp = s
        .req(Method::GET, "/v2/queues/w/messages?wait=x")
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Invalid parameter", None).await;
    let resp = s
        .req(Method::POST, "/v2/queues/w/claims?wait=6")
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Invalid API request", Some("wait")).await;
    // wait=0 is an ordinary request.
    let resp = s
        .req(Method::GET, "/v2/queues/w/messages?wait=0")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

#[tokio::test]
async fn a_client_that_gives_up_stops_waiting() {
    let s = TestServer::start().await;
    let waiter = tokio::spawn(
        s.req(Method::GET, "/v2/queues/gone/messages?wait=20")
            .send(),
    );
    for _ in 0..200 {
        if s.service.hub().watched_queues() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(s.service.hub().watched_queues(), 1);
    waiter.abort(); // the client disconnects
    let mut released = false;
    for _ in 0..400 {
        if s.service.hub().watched_queues() == 0 {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(released, "the server dropped the abandoned waiter");
}

#[tokio::test]
async fn the_post_size_limit_counts_what_the_client_sent_not_the_ciphertext() {
    let s = TestServer::start_with(&[KEY]).await;
    put(
        &s,
        "sealed",
        json!({"_enable_encrypt_messages": true, "_max_messages_post_size": 1000}),
    )
    .await;
    // 940-odd bytes as sent; the stored ciphertext (nonce, tag, base64) is far larger.
    let body = json!({"messages": [{"body": "x".repeat(900), "ttl": 300}]}).to_string();
    assert!(body.len() < 1000, "{}", body.len());
    let r = s
        .req(Method::POST, "/v2/queues/sealed/messages")
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert_eq!(status, 201, "{}", r.text().await.unwrap());
    // Over the limit as sent: refused.
    let body = json!({"messages": [{"body": "x".repeat(1000)}]}).to_string();
    let r = s
        .req(Method::POST, "/v2/queues/sealed/messages")
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "Invalid API request", Some("too large")).await;
}

#[tokio::test]
async fn the_post_size_limit_counts_what_the_client_sent_over_websocket_too() {
    use common::ws::WsClient;
    let s = TestServer::start_with(&[KEY]).await;
    put(
        &s,
        "sealed",
        json!({"_enable_encrypt_messages": true, "_max_messages_post_size": 1000}),
    )
    .await;
    let mut ws = WsClient::to(&s).await;
    let under =
        json!({"queue_name": "sealed", "messages": [{"body": "x".repeat(900), "ttl": 300}]});
    let reply = ws.call("message_post", under.clone()).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let reply = ws.call_msgpack("message_post", under).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let over = json!({"queue_name": "sealed", "messages": [{"body": "x".repeat(1000)}]});
    let reply = ws.call("message_post", over).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
}
