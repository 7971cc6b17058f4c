//! Subscriptions, topics and notification delivery over HTTP, with a real webhook receiver
//! (an HTTP server in the test that records every request and can fail the first N).

use zaqar_testkit as common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use common::{expect_error, json_of, TestServer, CLIENT, PROJECT};
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;

#[derive(Clone, Default)]
struct Receiver {
    /// Every request: its path, headers and body, in the order they arrived.
    requests: Arc<Mutex<Vec<(String, HeaderMap, String)>>>,
    /// Answer this status to the first `fail_first` requests.
    fail_first: Arc<AtomicUsize>,
    fail_status: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let r = Receiver::default();
        r.fail_status.store(503, Ordering::SeqCst);
        let app = axum::Router::new()
            .route("/{*path}", post(record))
            .route("/", post(record))
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (r, url)
    }

    fn bodies(&self) -> Vec<Value> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|(_, _, b)| parse(b))
            .collect()
    }

    /// The bodies each request path received, in the order they arrived.
    fn bodies_by_path(&self) -> BTreeMap<String, Vec<Value>> {
        let mut by_path: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for (path, _, b) in self.requests.lock().unwrap().iter() {
            by_path.entry(path.clone()).or_default().push(parse(b));
        }
        by_path
    }

    /// Waits (bounded) until `n` requests arrived.
    async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..400 {
            if self.requests.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let got = self.bodies();
        assert!(
            got.len() >= n,
            "expected {n} deliveries, got {}: {got:?}",
            got.len()
        );
        got
    }
}

/// A request body as JSON, or as a JSON string when it is not JSON.
fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or(Value::String(body.to_string()))
}

async fn record(
    State(r): State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let n = {
        let mut reqs = r.requests.lock().unwrap();
        reqs.push((uri.path().to_string(), headers, body));
        reqs.len()
    };
    if n <= r.fail_first.load(Ordering::SeqCst) {
        StatusCode::from_u16(r.fail_status.load(Ordering::SeqCst) as u16).unwrap()
    } else {
        StatusCode::OK
    }
}

async fn subscribe(s: &TestServer, base: &str, subscriber: &str, options: Value) -> String {
    let resp = s
        .req(Method::POST, &format!("{base}/subscriptions"))
        .json(&json!({"subscriber": subscriber, "ttl": 3600, "options": options}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    assert_eq!(
        resp.headers()["location"],
        format!("{base}/subscriptions").as_str()
    );
    json_of(resp).await["subscription_id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn get_sub(s: &TestServer, base: &str, id: &str) -> Value {
    let resp = s
        .req(Method::GET, &format!("{base}/subscriptions/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    json_of(resp).await
}

#[tokio::test]
async fn subscription_crud_and_duplicate_rules() {
    let s = TestServer::start().await;
    let q = "/v2/queues/subs";
    let id = subscribe(&s, q, "http://example.com/hook", json!({"name": "x"})).await;
    // Creating a subscription created the queue.
    let list = json_of(s.req(Method::GET, "/v2/queues").send().await.unwrap()).await;
    assert_eq!(list["queues"][0]["name"], "subs");
    // An unconfirmed duplicate: 201 with the same id.
    assert_eq!(
        subscribe(&s, q, "http://example.com/hook", json!({})).await,
        id
    );
    let sub = get_sub(&s, q, &id).await;
    assert_eq!(sub["subscriber"], "http://example.com/hook");
    assert_eq!(sub["source"], "subs");
    assert_eq!(sub["ttl"], 3600);
    assert_eq!(sub["confirmed"], false);
    assert_eq!(sub["options"], json!({"name": "x"}));
    // Confirmed: a duplicate is a conflict.
    let r = s
        .req(Method::PUT, &format!("{q}/subscriptions/{id}/confirm"))
        .json(&json!({"confirmed": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let r = s
        .req(Method::POST, &format!("{q}/subscriptions"))
        .json(&json!({"subscriber": "http://example.com/hook"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["location"],
        format!("{q}/subscriptions").as_str()
    );
    expect_error(r, 409, "Resource conflict", None).await;
    // Paging in creation order.
    let mut ids = vec![id.clone()];
    for i in 0..3 {
        ids.push(subscribe(&s, q, &format!("http://example.com/{i}"), json!({})).await);
    }
    let page = json_of(
        s.req(Method::GET, &format!("{q}/subscriptions?limit=3"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let got: Vec<&str> = page["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, ids[..3].iter().map(String::as_str).collect::<Vec<_>>());
    let next = page["links"][0]["href"].as_str().unwrap().to_string();
    let page2 = json_of(s.req(Method::GET, &next).send().await.unwrap()).await;
    assert_eq!(page2["subscriptions"][0]["id"], ids[3].as_str());
    // Update: ttl, options; a subscriber taken by another subscription is a conflict.
    let r = s
        .req(Method::PATCH, &format!("{q}/subscriptions/{}", ids[1]))
        .json(&json!({"ttl": 600, "options": {"k": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let sub = get_sub(&s, q, &ids[1]).await;
    assert_eq!(
        (sub["ttl"].clone(), sub["options"].clone()),
        (json!(600), json!({"k": 1}))
    );
    let r = s
        .req(Method::PATCH, &format!("{q}/subscriptions/{}", ids[1]))
        .json(&json!({"subscriber": "http://example.com/2"}))
        .send()
        .await
        .unwrap();
    expect_error(r, 409, "Resource conflict", None).await;
    // TTL expiry.
    s.clock.advance_secs(601);
    let r = s
        .req(Method::GET, &format!("{q}/subscriptions/{}", ids[1]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    // Delete, then 404; deleting again is 204.
    for _ in 0..2 {
        let r = s
            .req(Method::DELETE, &format!("{q}/subscriptions/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 204);
    }
    let r = s
        .req(Method::GET, &format!("{q}/subscriptions/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

#[tokio::test]
async fn subscription_validation() {
    let s = TestServer::start().await;
    let post = |body: Value| {
        s.req(Method::POST, "/v2/queues/v/subscriptions")
            .json(&body)
            .send()
    };
    for (body, needle) in [
        (json!({"ttl": 3600}), "Missing parameter subscriber"),
        (json!({"subscriber": "ftp://x"}), "must be supported"),
        (json!({"subscriber": "no-scheme"}), "must be supported"),
        (json!({"subscriber": "http://"}), "subscriber"),
        (json!({"subscriber": "mailto:nobody"}), "e-mail"),
        (json!({"subscriber": "trust+http://x"}), "Keystone"),
        (json!({"subscriber": "http://x", "ttl": 0}), "at least 60"),
        (json!({"subscriber": "http://x", "ttl": "60"}), "integer"),
        (json!({"subscriber": "http://x", "options": [1]}), "dict"),
        (
            json!({"subscriber": "http://x", "options": {"_retry_policy": {"retry_backoff_function": "x"}}}),
            "retry_backoff_function",
        ),
        (
            json!({"subscriber": "http://x", "options": {"filter_policy": {"k": "v"}}}),
            "filter_policy",
        ),
    ] {
        expect_error(
            post(body.clone()).await.unwrap(),
            400,
            "Invalid API request",
            Some(needle),
        )
        .await;
    }
    let r = s
        .req(Method::PATCH, "/v2/queues/v/subscriptions/0123")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "Invalid API request", Some("No subscription")).await;
    let r = s
        .req(Method::PATCH, "/v2/queues/v/subscriptions/0123")
        .json(&json!({"ttl": 600}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = s
        .req(Method::PUT, "/v2/queues/v/subscriptions/0123/confirm")
        .json(&json!({"confirmed": "yes"}))
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "Invalid API request", Some("boolean")).await;
}

fn verify_signature(headers: &HeaderMap, secret: &str, body: &str) {
    let sig = headers["x-zaqar-signature"].to_str().unwrap();
    let (t, v1) = sig.split_once(',').unwrap();
    let t = t.strip_prefix("t=").unwrap();
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(format!("{t}.{body}").as_bytes());
    let want: String = m
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(v1.strip_prefix("v1=").unwrap(), want);
}

#[tokio::test]
async fn webhooks_receive_every_posted_message_after_it_is_stored() {
    let s = TestServer::start().await;
    let (rx, url) = Receiver::start().await;
    let id = subscribe(&s, "/v2/queues/hooked", &format!("{url}/hook"), json!({})).await;
    let secret = get_sub(&s, "/v2/queues/hooked", &id).await["signing_secret"]
        .as_str()
        .unwrap()
        .to_string();
    let ids = s
        .post(
            "hooked",
            json!([{"body": {"event": "a"}, "ttl": 300}, {"body": "b"}]),
        )
        .await;
    let got = rx.wait_for(2).await;
    assert_eq!(
        got[0],
        json!({"body": {"event": "a"}, "ttl": 300, "queue_name": "hooked",
               "Message_Type": "Notification", "message_id": ids[0]})
    );
    assert_eq!(got[1]["body"], "b");
    assert_eq!(got[1]["message_id"], ids[1].as_str());
    let (_, headers, body) = rx.requests.lock().unwrap()[0].clone();
    assert_eq!(headers["content-type"], "application/json");
    verify_signature(&headers, &secret, &body);
    // The delivery counter is visible on the subscription.
    for _ in 0..100 {
        if get_sub(&s, "/v2/queues/hooked", &id).await["delivery"]["delivered"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        get_sub(&s, "/v2/queues/hooked", &id).await["delivery"]["delivered"],
        1
    );
}

#[tokio::test]
async fn post_data_templates_and_headers() {
    let s = TestServer::start().await;
    let (rx, url) = Receiver::start().await;
    subscribe(
        &s,
        "/v2/queues/tpl",
        &url,
        json!({"post_data": "{\"data\": \"$zaqar_message$\", \"src\": \"zaqar\"}",
               "post_headers": {"X-Custom": "yes"}}),
    )
    .await;
    s.post("tpl", json!([{"body": 7}])).await;
    let got = rx.wait_for(1).await;
    assert_eq!(got[0]["src"], "zaqar");
    assert_eq!(got[0]["data"]["body"], 7);
    assert_eq!(rx.requests.lock().unwrap()[0].1["x-custom"], "yes");
}

#[tokio::test]
async fn retries_follow_the_policy_on_5xx_but_not_on_4xx() {
    let s = TestServer::start().await;
    s.notifier.record_pauses_instead_of_sleeping();
    let (rx, url) = Receiver::start().await;
    rx.fail_first.store(5, Ordering::SeqCst);
    subscribe(&s, "/v2/queues/retry", &url, json!({})).await;
    s.post("retry", json!([{"body": 1}])).await;
    // 3 immediate retries, then the minimum-delay retries: the 6th attempt succeeds.
    rx.wait_for(6).await;
    assert_eq!(s.notifier.recorded_pauses(), vec![5, 5]);

    // A 4xx is final: one attempt, failure recorded.
    let (rx4, url4) = Receiver::start().await;
    rx4.fail_first.store(100, Ordering::SeqCst);
    rx4.fail_status.store(400, Ordering::SeqCst);
    let id = subscribe(&s, "/v2/queues/retry4", &url4, json!({})).await;
    s.post("retry4", json!([{"body": 1}])).await;
    rx4.wait_for(1).await;
    let mut sub = Value::Null;
    for _ in 0..200 {
        sub = get_sub(&s, "/v2/queues/retry4", &id).await;
        if sub["delivery"]["failed"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sub["delivery"]["failed"], 1);
    assert!(sub["delivery"]["last_error"]
        .as_str()
        .unwrap()
        .contains("400"));
    // The failure is recorded only once the delivery has given up, so no attempt can follow.
    assert_eq!(rx4.requests.lock().unwrap().len(), 1, "no retry on 4xx");
}

#[tokio::test]
async fn the_queue_retry_policy_and_backoff_apply() {
    let s = TestServer::start().await;
    s.notifier.record_pauses_instead_of_sleeping();
    let (rx, url) = Receiver::start().await;
    rx.fail_first.store(1000, Ordering::SeqCst);
    let r = s
        .req(Method::PUT, "/v2/queues/policy")
        .json(&json!({"_retry_policy": {
            "retries_with_no_delay": 1, "minimum_delay_retries": 1, "minimum_delay": 5,
            "maximum_delay": 30, "maximum_delay_retries": 1, "retry_backoff_function": "geometric"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let id = subscribe(&s, "/v2/queues/policy", &url, json!({})).await;
    s.post("policy", json!([{"body": 1}])).await;
    // 1 + 1 immediate + 1 at min + 5 backoff + 1 at max = 9 attempts.
    rx.wait_for(9).await;
    let mut sub = Value::Null;
    for _ in 0..200 {
        sub = get_sub(&s, "/v2/queues/policy", &id).await;
        if sub["delivery"]["failed"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The failure is recorded only once the delivery has given up, so the attempts counted
    // below are all there will be.
    assert_eq!(sub["delivery"]["failed"], 1);
    assert_eq!(s.notifier.recorded_pauses(), vec![5, 5, 7, 12, 19, 30, 30]);
    assert_eq!(rx.requests.lock().unwrap().len(), 9);
}

#[tokio::test]
async fn filter_policies_select_messages() {
    let s = TestServer::start().await;
    let (rx, url) = Receiver::start().await;
    subscribe(
        &s,
        "/v2/queues/filtered",
        &url,
        json!({"filter_policy": {"kind": ["order"], "total": [{"numeric": [">", 100]}]}}),
    )
    .await;
    s.post(
        "filtered",
        json!([{"body": {"kind": "order", "total": 50}}, {"body": {"kind": "order", "total": 150}},
               {"body": {"kind": "refund", "total": 500}}, {"body": "text"}]),
    )
    .await;
    // Delivery is in order per subscriber: once this marker (posted after the others, and
    // passing the filter) has arrived, every message before it was delivered or filtered out.
    s.post(
        "filtered",
        json!([{"body": {"kind": "order", "total": 1000, "marker": true}}]),
    )
    .await;
    let got = rx.wait_for(2).await;
    let bodies: Vec<&Value> = got.iter().map(|b| &b["body"]).collect();
    assert_eq!(
        bodies,
        [
            &json!({"kind": "order", "total": 150}),
            &json!({"kind": "order", "total": 1000, "marker": true})
        ],
        "only the matching message, then the marker"
    );
}

/// Posts one message to topic `news`, checking the topic's `Location` and resource hrefs.
async fn post_to_topic(s: &TestServer, body: &str) {
    let r = s
        .req(Method::POST, "/v2/topics/news/messages")
        .json(&json!({"messages": [{"body": body}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with("/v2/topics/news/messages?ids="), "{loc}");
    let ids = json_of(r).await["resources"].clone();
    assert!(ids[0]
        .as_str()
        .unwrap()
        .starts_with("/v2/topics/news/messages/"));
}

#[tokio::test]
async fn topics_are_their_own_namespace_and_fan_out() {
    let s = TestServer::start().await;
    let (rx, url) = Receiver::start().await;
    for i in 0..3 {
        subscribe(&s, "/v2/topics/news", &format!("{url}/sub{i}"), json!({})).await;
    }
    // A queue of the same name is another resource.
    s.post("news", json!([{"body": "queue message"}])).await;
    post_to_topic(&s, "topic message").await;
    let got = rx.wait_for(3).await;
    assert!(got
        .iter()
        .all(|b| b["body"] == "topic message" && b["queue_name"] == "news"));
    // Delivery is in order per subscriber, and the queue's message was posted before the
    // topic message that has now been delivered: once every subscriber has this marker, a
    // delivery of the queue's message would have arrived before it.
    post_to_topic(&s, "marker").await;
    rx.wait_for(6).await;
    let by_subscriber = rx.bodies_by_path();
    assert_eq!(
        by_subscriber.keys().collect::<Vec<_>>(),
        ["/sub0", "/sub1", "/sub2"]
    );
    for (path, bodies) in &by_subscriber {
        let bodies: Vec<&Value> = bodies.iter().map(|b| &b["body"]).collect();
        assert_eq!(
            bodies,
            [&json!("topic message"), &json!("marker")],
            "{path}: one delivery per topic message, none for the queue"
        );
    }
    // Listings are separate.
    let topics = json_of(s.req(Method::GET, "/v2/topics").send().await.unwrap()).await;
    assert_eq!(topics["topics"][0]["name"], "news");
    assert_eq!(topics["topics"][0]["href"], "/v2/topics/news");
    let queues = json_of(s.req(Method::GET, "/v2/queues").send().await.unwrap()).await;
    assert_eq!(queues["queues"].as_array().unwrap().len(), 1);
    let msgs = json_of(
        s.req(Method::GET, "/v2/topics/news/messages?echo=true")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(msgs["messages"].as_array().unwrap().len(), 2);
    assert_eq!(msgs["messages"][0]["body"], "topic message");
    assert_eq!(msgs["messages"][1]["body"], "marker");
    // Topic stats: total only; metadata shows three reserved keys.
    let st = json_of(
        s.req(Method::GET, "/v2/topics/news/stats")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st["messages"]["total"], 2);
    assert!(st["messages"].get("claimed").is_none());
    let meta = json_of(s.req(Method::GET, "/v2/topics/news").send().await.unwrap()).await;
    assert_eq!(
        meta,
        json!({"_max_messages_post_size": 262144, "_default_message_ttl": 3600, "_default_message_delay": 0})
    );
    // No claims on topics.
    let r = s
        .req(Method::POST, "/v2/topics/news/claims")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = s
        .req(Method::PUT, "/v2/topics/bad%20name")
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "Invalid topic identification", None).await;
}

#[tokio::test]
async fn confirmation_flow_with_signed_links() {
    let s = TestServer::start_with(&[
        ("notification", "require_confirmation", "true"),
        ("signed_url", "secret_key", "confirm-key"),
    ])
    .await;
    let (rx, url) = Receiver::start().await;
    let id = subscribe(&s, "/v2/queues/conf", &url, json!({})).await;
    let got = rx.wait_for(1).await;
    let c = &got[0];
    assert_eq!(c["Message_Type"], "SubscriptionConfirmation");
    assert_eq!(c["queue_name"], "conf");
    assert_eq!(c["URL-Methods"], "PUT");
    let path = format!("/v2/queues/conf/subscriptions/{id}/confirm");
    assert_eq!(c["URL-Paths"], path.as_str());
    // Unconfirmed: no notification. Whether the subscriber was confirmed is recorded with the
    // post, so this message must never be delivered, not even after the confirmation below.
    s.post("conf", json!([{"body": "early"}])).await;
    // Confirm with the signed link alone (no other credentials than the project).
    let confirm = |confirmed: bool| {
        s.http
            .put(s.url(&path))
            .header("Client-ID", CLIENT)
            .header("X-Project-ID", c["X-Project-ID"].as_str().unwrap())
            .header("URL-Signature", c["URL-Signature"].as_str().unwrap())
            .header("URL-Expires", c["URL-Expires"].as_str().unwrap())
            .header("URL-Methods", "PUT")
            .header("URL-Paths", path.as_str())
            .json(&json!({ "confirmed": confirmed }))
            .send()
    };
    assert_eq!(confirm(true).await.unwrap().status().as_u16(), 204);
    assert_eq!(c["X-Project-ID"], PROJECT);
    // "late" is the marker: delivery is in order per subscriber, so had "early" been
    // delivered, it would have arrived between the confirmation message and "late".
    s.post("conf", json!([{"body": "late"}])).await;
    let got = rx.wait_for(2).await;
    assert_eq!(got[1]["Message_Type"], "Notification");
    assert_eq!(
        got[1]["body"], "late",
        "the first notification is the one posted after confirming"
    );
    // Unsubscribing sends the unsubscribe confirmation.
    assert_eq!(confirm(false).await.unwrap().status().as_u16(), 204);
    let got = rx.wait_for(3).await;
    let types: Vec<&Value> = got.iter().map(|b| &b["Message_Type"]).collect();
    assert_eq!(
        types,
        [
            "SubscriptionConfirmation",
            "Notification",
            "UnsubscribeConfirmation"
        ],
        "{got:?}"
    );
}

#[tokio::test]
async fn email_subscribers_through_the_sendmail_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mail.txt");
    let cmd = format!("tee -a {}", out.display());
    let s = TestServer::start_with(&[("notification", "smtp_command", cmd.as_str())]).await;
    subscribe(
        &s,
        "/v2/queues/mail",
        "mailto:ops@example.com?subject=Queue%20alert",
        json!({"from": "Zaqar <zaqar@example.com>"}),
    )
    .await;
    s.post("mail", json!([{"body": {"alert": "disk"}}])).await;
    let mut text = String::new();
    for _ in 0..400 {
        text = std::fs::read_to_string(&out).unwrap_or_default();
        if text.contains("disk") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(text.contains("To: ops@example.com"), "{text}");
    assert!(text.contains("Subject: Queue alert"), "{text}");
    assert!(text.contains("From: Zaqar <zaqar@example.com>"), "{text}");
    assert!(text.contains("\"alert\":\"disk\""), "{text}");
}

#[tokio::test]
async fn purge_can_remove_subscriptions() {
    let s = TestServer::start().await;
    for i in 0..12 {
        subscribe(
            &s,
            "/v2/queues/pq",
            &format!("http://example.com/{i}"),
            json!({}),
        )
        .await;
    }
    let r = s
        .req(Method::POST, "/v2/queues/pq/purge")
        .json(&json!({"resource_types": ["subscriptions"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let page = json_of(
        s.req(Method::GET, "/v2/queues/pq/subscriptions")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        page["subscriptions"],
        json!([]),
        "all of them, not the first page only"
    );
}
