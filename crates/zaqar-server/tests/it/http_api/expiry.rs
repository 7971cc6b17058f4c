//! Black-box HTTP tests of expiry on the manual clock: messages disappear after their TTL or
//! the queue's default TTL, and expired claims free their messages.

use zaqar_testkit as common;

use common::{expect_error, json_of, TestServer, OTHER_CLIENT};
use reqwest::Method;
use serde_json::json;

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
