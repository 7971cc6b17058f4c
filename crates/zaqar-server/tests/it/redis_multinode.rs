//! Two `zaqar-server` processes sharing one Redis (`ZAQAR_TEST_REDIS_URL`): consumers on both
//! nodes never get the same message under one live claim, and a long-poll GET on one node
//! returns promptly when the other node posts.

use zaqar_testkit::redis_support;
use zaqar_testkit::webhook_support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use redis_support::{backend, req, start_server, Prefixes, CLIENT, OTHER_CLIENT, STANDALONE};

const PROJECT: &str = "multinode";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_on_two_nodes_never_share_a_message() {
    let Some(url) = backend(STANDALONE) else {
        return;
    };
    let prefixes = Prefixes::new(url.clone());
    let prefix = prefixes.fresh();
    let a = start_server(env!("CARGO_BIN_EXE_zaqar-server"), &url, &prefix, &[]).await;
    let b = start_server(env!("CARGO_BIN_EXE_zaqar-server"), &url, &prefix, &[]).await;
    let http = reqwest::Client::new();
    let mut posted = HashSet::new();
    for i in 0..30 {
        let node = if i % 2 == 0 { &a.base } else { &b.base };
        let msgs: Vec<Value> = (0..10)
            .map(|j| json!({"body": {"n": i * 10 + j}, "ttl": 600}))
            .collect();
        let r = req(
            &http,
            Method::POST,
            format!("{node}/v2/queues/work/messages"),
            PROJECT,
            CLIENT,
        )
        .json(&json!({ "messages": msgs }))
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        for href in v["resources"].as_array().unwrap() {
            posted.insert(
                href.as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string(),
            );
        }
    }
    assert_eq!(posted.len(), 300);
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut tasks = Vec::new();
    for c in 0..8 {
        let base = if c % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        let seen = seen.clone();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                // A long claim TTL: no message can come back by expiry during the test, so a
                // second delivery could only be a double claim.
                let r = req(
                    &http,
                    Method::POST,
                    format!("{base}/v2/queues/work/claims?limit=7"),
                    PROJECT,
                    CLIENT,
                )
                .json(&json!({"ttl": 300, "grace": 60}))
                .send()
                .await
                .unwrap();
                if r.status() == 204 {
                    return;
                }
                assert_eq!(r.status(), 201);
                let v: Value = r.json().await.unwrap();
                for m in v["messages"].as_array().unwrap() {
                    seen.lock()
                        .unwrap()
                        .push(m["id"].as_str().unwrap().to_string());
                    // Half of the messages are deleted under the claim, half stay claimed.
                    if m["body"]["n"].as_i64().unwrap() % 2 == 0 {
                        let href = m["href"].as_str().unwrap();
                        let d = req(
                            &http,
                            Method::DELETE,
                            format!("{base}{href}"),
                            PROJECT,
                            CLIENT,
                        )
                        .send()
                        .await
                        .unwrap();
                        assert_eq!(d.status(), 204, "delete under the claim");
                    }
                }
            }
            panic!("consumers did not finish in time");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let seen = seen.lock().unwrap().clone();
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "a message was delivered twice under live claims"
    );
    assert_eq!(unique, posted, "every message was claimed exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_on_one_node_wakes_for_a_post_on_the_other() {
    let Some(url) = backend(STANDALONE) else {
        return;
    };
    let prefixes = Prefixes::new(url.clone());
    let prefix = prefixes.fresh();
    let a = start_server(env!("CARGO_BIN_EXE_zaqar-server"), &url, &prefix, &[]).await;
    let b = start_server(env!("CARGO_BIN_EXE_zaqar-server"), &url, &prefix, &[]).await;
    let http = reqwest::Client::new();
    // The queue exists and is empty.
    let r = req(
        &http,
        Method::PUT,
        format!("{}/v2/queues/lp", a.base),
        PROJECT,
        CLIENT,
    )
    .send()
    .await
    .unwrap();
    assert!(r.status().is_success());
    for round in 0..3 {
        let base_a = a.base.clone();
        let started = Instant::now();
        let waiter = tokio::spawn(async move {
            let http = reqwest::Client::new();
            let r = req(
                &http,
                Method::GET,
                format!("{base_a}/v2/queues/lp/messages?wait=10"),
                PROJECT,
                OTHER_CLIENT,
            )
            .send()
            .await
            .unwrap();
            (r.status(), r.json::<Value>().await.ok(), Instant::now())
        });
        // Let the GET register as a waiter on node A first.
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(
            !waiter.is_finished(),
            "the long poll returned before any post"
        );
        let posted_at = Instant::now();
        let r = req(
            &http,
            Method::POST,
            format!("{}/v2/queues/lp/messages", b.base),
            PROJECT,
            CLIENT,
        )
        .json(&json!({"messages": [{"body": {"round": round}, "ttl": 60}]}))
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 201);
        let (status, body, returned_at) = waiter.await.unwrap();
        assert_eq!(status, 200);
        let body = body.unwrap();
        let msgs = body["messages"].as_array().unwrap();
        assert!(msgs.iter().any(|m| m["body"]["round"] == round), "{body}");
        let delay = returned_at.duration_since(posted_at);
        assert!(
            delay < Duration::from_secs(2),
            "woke {delay:?} after the post (wait was 10 s, started {:?} ago)",
            started.elapsed()
        );
        // Consume what was posted so the next round waits again.
        for m in msgs {
            let href = m["href"].as_str().unwrap();
            req(
                &http,
                Method::DELETE,
                format!("{}{href}", a.base),
                PROJECT,
                CLIENT,
            )
            .send()
            .await
            .unwrap();
        }
    }
}

/// Webhook notifications posted through two nodes sharing one Redis (standalone and, when
/// configured, the cluster) reach each subscriber exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_through_two_nodes_arrive_once_per_subscriber() {
    for var in [STANDALONE, redis_support::CLUSTER] {
        let Some(url) = backend(var) else {
            continue;
        };
        let prefixes = Prefixes::new(url.clone());
        let prefix = prefixes.fresh();
        let a = start_server(env!("CARGO_BIN_EXE_zaqar-server"), &url, &prefix, &[]).await;
        let b = start_server(env!("CARGO_BIN_EXE_zaqar-server"), &url, &prefix, &[]).await;
        webhook_support::each_notification_arrives_once_per_subscriber(&a.base, &b.base, PROJECT)
            .await;
    }
}
