//! Black-box HTTP tests of deleting messages: bulk delete by ids, pop, and single delete with
//! its claim rules (spec §3.4.6).

use zaqar_testkit as common;

use common::{expect_error, json_of, TestServer};
use reqwest::Method;
use serde_json::json;

use super::{delete, get, ids_of, sibling_id, stats_total};

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
