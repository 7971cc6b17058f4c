//! Black-box HTTP tests of the claim endpoints: create, get, renew, release, and how claims
//! interact with message visibility and lifetime (spec §1.6, §3.5).

use zaqar_testkit as common;

use common::{expect_error, json_of, last_segment, TestServer, OTHER_CLIENT};
use reqwest::Method;
use serde_json::{json, Value};

fn messages(n: usize) -> Value {
    Value::Array((0..n).map(|i| json!({"body": i})).collect())
}

fn ids_of(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

async fn claim_raw(
    s: &TestServer,
    queue: &str,
    query: &str,
    body: Option<&str>,
) -> reqwest::Response {
    let mut req = s.req(Method::POST, &format!("/v2/queues/{queue}/claims{query}"));
    if let Some(b) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    req.send().await.unwrap()
}

async fn get_claim(s: &TestServer, queue: &str, cid: &str) -> reqwest::Response {
    s.req(Method::GET, &format!("/v2/queues/{queue}/claims/{cid}"))
        .send()
        .await
        .unwrap()
}

async fn claim_doc(s: &TestServer, queue: &str, cid: &str) -> Value {
    let resp = get_claim(s, queue, cid).await;
    let status = resp.status().as_u16();
    let body = json_of(resp).await;
    assert_eq!(status, 200, "GET claim: {body}");
    body
}

async fn renew(s: &TestServer, queue: &str, cid: &str, body: Option<&str>) -> reqwest::Response {
    let mut req = s.req(Method::PATCH, &format!("/v2/queues/{queue}/claims/{cid}"));
    if let Some(b) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    req.send().await.unwrap()
}

async fn release(s: &TestServer, queue: &str, cid: &str) -> reqwest::Response {
    s.req(Method::DELETE, &format!("/v2/queues/{queue}/claims/{cid}"))
        .send()
        .await
        .unwrap()
}

async fn message(s: &TestServer, queue: &str, id: &str) -> Value {
    let resp = s
        .req(Method::GET, &format!("/v2/queues/{queue}/messages/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    json_of(resp).await
}

// ----- POST ---------------------------------------------------------------------------------

#[tokio::test]
async fn claim_with_defaults_takes_ten_oldest_messages() {
    let s = TestServer::start().await;
    let ids = s.post("cl", messages(12)).await;
    let resp = claim_raw(&s, "cl", "", None).await;
    assert_eq!(resp.status().as_u16(), 201);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("/v2/queues/cl/claims/"), "{location}");
    let cid = last_segment(&location);
    assert!(!cid.is_empty());
    let body = json_of(resp).await;
    assert_eq!(body.as_object().unwrap().len(), 1, "only messages: {body}");
    let claimed = body["messages"].as_array().unwrap();
    assert_eq!(ids_of(claimed), ids[..10].to_vec(), "oldest first");
    for (i, m) in claimed.iter().enumerate() {
        assert_eq!(
            m,
            &json!({
                "id": ids[i],
                "href": format!("/v2/queues/cl/messages/{}?claim_id={cid}", ids[i]),
                "ttl": 3600,
                "age": 0,
                "body": i,
            })
        );
    }
    let doc = claim_doc(&s, "cl", &cid).await;
    assert_eq!(doc["ttl"], 300, "default claim ttl");
    assert_eq!(doc["age"], 0);
    assert_eq!(doc["href"], location);
    assert_eq!(
        ids_of(doc["messages"].as_array().unwrap()),
        ids[..10].to_vec()
    );
}

#[tokio::test]
async fn claim_limit_and_exclusion_of_claimed_messages() {
    let s = TestServer::start().await;
    let ids = s.post("cl", messages(5)).await;
    // An empty body means "all defaults".
    let resp = claim_raw(&s, "cl", "?limit=3", Some("")).await;
    assert_eq!(resp.status().as_u16(), 201);
    let a = last_segment(resp.headers()["location"].to_str().unwrap());
    let first = json_of(resp).await["messages"].as_array().unwrap().clone();
    assert_eq!(ids_of(&first), ids[..3].to_vec());
    assert_eq!(claim_doc(&s, "cl", &a).await["ttl"], 300);
    let (b, second) = s.claim("cl", None, Some(3)).await.unwrap();
    assert_ne!(a, b);
    assert_eq!(ids_of(&second), ids[3..].to_vec(), "claimed ones excluded");
    assert!(s.claim("cl", None, None).await.is_none());
}

#[tokio::test]
async fn claims_ignore_echo_and_take_any_clients_messages() {
    let s = TestServer::start().await;
    let mine = s.post("cl", messages(1)).await;
    let theirs = s.post_as(OTHER_CLIENT, "cl", messages(1)).await;
    let (_, claimed) = s.claim("cl", None, None).await.unwrap();
    assert_eq!(ids_of(&claimed), vec![mine[0].clone(), theirs[0].clone()]);
}

#[tokio::test]
async fn nothing_to_claim_is_204_without_body_or_location() {
    let s = TestServer::start().await;
    for queue in ["ghost", "empty"] {
        if queue == "empty" {
            let resp = s.req(Method::PUT, "/v2/queues/empty").send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 201);
        }
        let resp = claim_raw(&s, queue, "", Some(r#"{"ttl": 100}"#)).await;
        assert_eq!(resp.status().as_u16(), 204, "{queue}");
        assert!(resp.headers().get("location").is_none());
        assert!(resp.bytes().await.unwrap().is_empty());
    }
    let queues = json_of(s.req(Method::GET, "/v2/queues").send().await.unwrap()).await;
    assert_eq!(
        queues["queues"].as_array().unwrap().len(),
        1,
        "ghost not created"
    );
    s.post("empty", messages(1)).await;
    s.claim("empty", None, None).await.unwrap();
    let resp = claim_raw(&s, "empty", "", None).await;
    assert_eq!(resp.status().as_u16(), 204, "everything already claimed");
}

#[tokio::test]
async fn claim_body_and_limit_validation() {
    let s = TestServer::start().await;
    s.post("cv", messages(1)).await;
    let range = [
        (r#"{"ttl": 59}"#, "TTL"),
        (r#"{"ttl": 43201}"#, "TTL"),
        (r#"{"grace": 59}"#, "grace"),
        (r#"{"grace": 43201}"#, "grace"),
        (r#"{"ttl": 0, "grace": 0}"#, "TTL"),
    ];
    for (body, what) in range {
        let resp = claim_raw(&s, "cv", "", Some(body)).await;
        expect_error(resp, 400, "Invalid API request", Some(what)).await;
    }
    for body in [
        r#"{"ttl": "300"}"#,
        r#"{"ttl": true}"#,
        r#"{"ttl": 300.5}"#,
        r#"{"grace": "60"}"#,
        r#"{"grace": [60]}"#,
    ] {
        let resp = claim_raw(&s, "cv", "", Some(body)).await;
        expect_error(resp, 400, "Invalid request body", Some("must be a")).await;
    }
    for (body, description) in [
        ("[]", "Document type not supported."),
        ("300", "Document type not supported."),
        ("{\"ttl\": ", "Request body could not be parsed."),
        (
            "{\"ttl\": 99999999999999999999}",
            "JSON contains integer that is too large.",
        ),
    ] {
        let resp = claim_raw(&s, "cv", "", Some(body)).await;
        expect_error(resp, 400, "Invalid request body", Some(description)).await;
    }
    for limit in ["0", "21", "-1"] {
        let resp = claim_raw(&s, "cv", &format!("?limit={limit}"), None).await;
        expect_error(
            resp,
            400,
            "Invalid API request",
            Some("Limit must be at least 1"),
        )
        .await;
    }
    let resp = claim_raw(&s, "cv", "?limit=abc", None).await;
    expect_error(
        resp,
        400,
        "Invalid parameter",
        Some("The \"limit\" parameter is invalid."),
    )
    .await;
    // Nothing was claimed by the refused requests.
    let (_, claimed) = s.claim("cv", None, None).await.unwrap();
    assert_eq!(claimed.len(), 1);
}

#[tokio::test]
async fn claim_bounds_are_inclusive() {
    let s = TestServer::start().await;
    s.post("cb", messages(25)).await;
    for (body, limit, ttl, count) in [
        (r#"{"ttl": 60, "grace": 60}"#, "?limit=1", 60, 1),
        (r#"{"ttl": 43200, "grace": 43200}"#, "?limit=20", 43200, 20),
        (r#"{}"#, "?limit=", 300, 4),
    ] {
        let resp = claim_raw(&s, "cb", limit, Some(body)).await;
        assert_eq!(resp.status().as_u16(), 201, "{body} {limit}");
        let cid = last_segment(resp.headers()["location"].to_str().unwrap());
        assert_eq!(
            json_of(resp).await["messages"].as_array().unwrap().len(),
            count
        );
        assert_eq!(claim_doc(&s, "cb", &cid).await["ttl"], ttl);
    }
}

#[tokio::test]
async fn claim_limits_and_defaults_follow_configuration() {
    let s = TestServer::start_with(&[
        ("transport", "max_messages_per_claim_or_pop", "5"),
        ("transport", "default_claim_ttl", "120"),
        ("transport", "max_claim_ttl", "600"),
    ])
    .await;
    s.post("cc", messages(6)).await;
    let resp = claim_raw(&s, "cc", "?limit=6", None).await;
    expect_error(resp, 400, "Invalid API request", Some("5")).await;
    let resp = claim_raw(&s, "cc", "", Some(r#"{"ttl": 601}"#)).await;
    expect_error(resp, 400, "Invalid API request", Some("600")).await;
    let resp = s
        .req(Method::DELETE, "/v2/queues/cc/messages?pop=6")
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Invalid API request", Some("5")).await;
    let (cid, claimed) = s.claim("cc", None, Some(5)).await.unwrap();
    assert_eq!(claimed.len(), 5);
    assert_eq!(claim_doc(&s, "cc", &cid).await["ttl"], 120);
}

/// Lifetime extension (spec §1.6): a message that would die before its claim lives until the
/// claim's end plus grace, and reports `ttl = claim ttl + grace`.
#[tokio::test]
async fn claim_extends_the_lifetime_of_short_lived_messages() {
    let s = TestServer::start().await;
    let ids = s
        .post(
            "ext",
            json!([
                {"body": "short", "ttl": 60},
                {"body": "medium", "ttl": 200},
                {"body": "long", "ttl": 3600},
            ]),
        )
        .await;
    s.clock.advance_secs(10);
    let (cid, claimed) = s
        .claim("ext", Some(json!({"ttl": 300, "grace": 60})), None)
        .await
        .unwrap();
    let ttls: Vec<(i64, i64)> = claimed
        .iter()
        .map(|m| (m["ttl"].as_i64().unwrap(), m["age"].as_i64().unwrap()))
        .collect();
    assert_eq!(ttls, vec![(360, 10), (360, 10), (3600, 10)]);
    let doc = claim_doc(&s, "ext", &cid).await;
    let ttls: Vec<i64> = doc["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["ttl"].as_i64().unwrap())
        .collect();
    assert_eq!(ttls, vec![360, 360, 3600]);
    assert_eq!(message(&s, "ext", &ids[0]).await["ttl"], 360);
    // Alive past the original ttl, gone at claim expiry + grace (10 + 300 + 60).
    s.clock.advance_secs(300);
    assert_eq!(message(&s, "ext", &ids[1]).await["age"], 310);
    s.clock.advance_secs(60);
    for id in &ids[..2] {
        let resp = s
            .req(Method::GET, &format!("/v2/queues/ext/messages/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 404);
    }
    assert_eq!(message(&s, "ext", &ids[2]).await["ttl"], 3600);
}

// ----- GET ----------------------------------------------------------------------------------

#[tokio::test]
async fn get_claim_reports_age_and_omits_deleted_messages() {
    let s = TestServer::start().await;
    let ids = s.post("gc", messages(3)).await;
    let (cid, _) = s
        .claim("gc", Some(json!({"ttl": 120, "grace": 60})), None)
        .await
        .unwrap();
    s.clock.advance_secs(30);
    let doc = claim_doc(&s, "gc", &cid).await;
    assert_eq!(doc["age"], 30);
    assert_eq!(doc["ttl"], 120);
    assert_eq!(doc["href"], format!("/v2/queues/gc/claims/{cid}"));
    let first = &doc["messages"][0];
    assert_eq!(first["age"], 30);
    assert_eq!(
        first["href"],
        format!("/v2/queues/gc/messages/{}?claim_id={cid}", ids[0])
    );
    // Delete one with the claim, one in bulk: both disappear from the claim.
    let resp = s
        .req(
            Method::DELETE,
            &format!("/v2/queues/gc/messages/{}?claim_id={cid}", ids[0]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let resp = s
        .req(
            Method::DELETE,
            &format!("/v2/queues/gc/messages?ids={}", ids[2]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let doc = claim_doc(&s, "gc", &cid).await;
    assert_eq!(
        ids_of(doc["messages"].as_array().unwrap()),
        vec![ids[1].clone()]
    );
}

#[tokio::test]
async fn get_claim_unknown_malformed_expired_or_elsewhere_is_404() {
    let s = TestServer::start().await;
    s.post("gc", messages(1)).await;
    let (cid, _) = s
        .claim("gc", Some(json!({"ttl": 60, "grace": 60})), None)
        .await
        .unwrap();
    let unknown = format!("{:032x}", 12345);
    for (queue, id) in [
        ("gc", unknown.as_str()),
        ("gc", "not-a-claim"),
        ("other", cid.as_str()),
        ("ghost", cid.as_str()),
    ] {
        let resp = get_claim(&s, queue, id).await;
        expect_error(resp, 404, "Not found", Some("does not exist")).await;
    }
    s.clock.advance_secs(59);
    claim_doc(&s, "gc", &cid).await;
    s.clock.advance_secs(1);
    let resp = get_claim(&s, "gc", &cid).await;
    expect_error(resp, 404, "Not found", None).await;
}

// ----- PATCH (renew) --------------------------------------------------------------------------

#[tokio::test]
async fn renew_resets_age_and_sets_ttl() {
    let s = TestServer::start().await;
    let ids = s.post("rn", messages(1)).await;
    let (cid, _) = s
        .claim("rn", Some(json!({"ttl": 100, "grace": 60})), None)
        .await
        .unwrap();
    s.clock.advance_secs(90);
    assert_eq!(claim_doc(&s, "rn", &cid).await["age"], 90);
    let resp = renew(&s, "rn", &cid, Some(r#"{"ttl": 200, "grace": 60}"#)).await;
    assert_eq!(resp.status().as_u16(), 204);
    assert!(resp.bytes().await.unwrap().is_empty());
    let doc = claim_doc(&s, "rn", &cid).await;
    assert_eq!(doc["age"], 0);
    assert_eq!(doc["ttl"], 200);
    // The claim now outlives its original expiry (100 s after creation).
    s.clock.advance_secs(150);
    let doc = claim_doc(&s, "rn", &cid).await;
    assert_eq!(doc["age"], 150);
    assert_eq!(ids_of(doc["messages"].as_array().unwrap()), ids);
    assert!(s.claim("rn", None, None).await.is_none(), "still claimed");
    s.clock.advance_secs(50);
    let resp = get_claim(&s, "rn", &cid).await;
    assert_eq!(
        resp.status().as_u16(),
        404,
        "expired 200 s after the renewal"
    );
    // An empty object renews with the defaults.
    let (cid2, _) = s.claim("rn", None, None).await.unwrap();
    s.clock.advance_secs(10);
    let resp = renew(&s, "rn", &cid2, Some("{}")).await;
    assert_eq!(resp.status().as_u16(), 204);
    let doc = claim_doc(&s, "rn", &cid2).await;
    assert_eq!(
        (doc["age"].as_i64(), doc["ttl"].as_i64()),
        (Some(0), Some(300))
    );
}

#[tokio::test]
async fn renew_reapplies_the_lifetime_extension() {
    let s = TestServer::start().await;
    let ids = s.post("rx", json!([{"body": 1, "ttl": 120}])).await;
    let (cid, claimed) = s
        .claim("rx", Some(json!({"ttl": 60, "grace": 60})), None)
        .await
        .unwrap();
    assert_eq!(claimed[0]["ttl"], 120, "outlives the claim: untouched");
    s.clock.advance_secs(30);
    let resp = renew(&s, "rx", &cid, Some(r#"{"ttl": 300, "grace": 100}"#)).await;
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(message(&s, "rx", &ids[0]).await["ttl"], 400);
    // Claim ends at 330, the message at 430.
    s.clock.advance_secs(399);
    let m = message(&s, "rx", &ids[0]).await;
    assert_eq!(m["age"], 429);
    s.clock.advance_secs(1);
    let resp = s
        .req(Method::GET, &format!("/v2/queues/rx/messages/{}", ids[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
}

#[tokio::test]
async fn renew_requires_a_valid_body() {
    let s = TestServer::start().await;
    s.post("rv", messages(1)).await;
    let (cid, _) = s.claim("rv", None, None).await.unwrap();
    let resp = renew(&s, "rv", &cid, None).await;
    expect_error(
        resp,
        400,
        "Invalid request body",
        Some("Request body can not be empty"),
    )
    .await;
    for (body, what) in [
        (r#"{"ttl": 59}"#, "TTL"),
        (r#"{"ttl": 43201}"#, "TTL"),
        (r#"{"grace": 59}"#, "grace"),
        (r#"{"ttl": 100, "grace": 43201}"#, "grace"),
    ] {
        let resp = renew(&s, "rv", &cid, Some(body)).await;
        expect_error(resp, 400, "Invalid API request", Some(what)).await;
    }
    for (body, description) in [
        (r#"{"ttl": "100"}"#, "\"ttl\""),
        (r#"{"grace": false}"#, "\"grace\""),
        ("[]", "Document type not supported."),
        ("{", "Request body could not be parsed."),
    ] {
        let resp = renew(&s, "rv", &cid, Some(body)).await;
        expect_error(resp, 400, "Invalid request body", Some(description)).await;
    }
    // The claim is unchanged by the refused renewals.
    assert_eq!(claim_doc(&s, "rv", &cid).await["ttl"], 300);
}

#[tokio::test]
async fn renew_of_unknown_or_expired_claim_is_404() {
    let s = TestServer::start().await;
    s.post("ru", messages(1)).await;
    let (cid, _) = s
        .claim("ru", Some(json!({"ttl": 60, "grace": 60})), None)
        .await
        .unwrap();
    for (queue, id) in [
        ("ru", format!("{:032x}", 7)),
        ("ru", "bogus".to_string()),
        ("ghost", cid.clone()),
    ] {
        let resp = renew(&s, queue, &id, Some(r#"{"ttl": 100}"#)).await;
        expect_error(resp, 404, "Not found", Some("does not exist")).await;
    }
    s.clock.advance_secs(60);
    let resp = renew(&s, "ru", &cid, Some(r#"{"ttl": 100}"#)).await;
    expect_error(resp, 404, "Not found", None).await;
    // The expired claim was not revived.
    assert!(s.claim("ru", None, None).await.is_some());
}

// ----- DELETE (release) ---------------------------------------------------------------------

#[tokio::test]
async fn release_makes_messages_claimable_and_visible_again() {
    let s = TestServer::start().await;
    let ids = s.post_as(OTHER_CLIENT, "rl", messages(2)).await;
    let (cid, _) = s.claim("rl", None, None).await.unwrap();
    let page = json_of(
        s.req(Method::GET, "/v2/queues/rl/messages")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page["messages"], json!([]), "claimed: hidden");
    let resp = release(&s, "rl", &cid).await;
    assert_eq!(resp.status().as_u16(), 204);
    assert!(resp.bytes().await.unwrap().is_empty());
    let resp = get_claim(&s, "rl", &cid).await;
    expect_error(resp, 404, "Not found", None).await;
    let page = json_of(
        s.req(Method::GET, "/v2/queues/rl/messages")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let listed = ids_of(page["messages"].as_array().unwrap());
    assert_eq!(listed, ids);
    assert_eq!(
        page["messages"][0]["href"],
        format!("/v2/queues/rl/messages/{}", ids[0])
    );
    // Deletion without a claim id works again.
    let resp = s
        .req(
            Method::DELETE,
            &format!("/v2/queues/rl/messages/{}", ids[0]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let (other, claimed) = s.claim("rl", None, None).await.unwrap();
    assert_ne!(other, cid);
    assert_eq!(ids_of(&claimed), ids[1..].to_vec());
}

#[tokio::test]
async fn release_of_unknown_claims_is_204() {
    let s = TestServer::start().await;
    s.post("ru", messages(1)).await;
    let (cid, _) = s
        .claim("ru", Some(json!({"ttl": 60, "grace": 60})), None)
        .await
        .unwrap();
    for (queue, id) in [
        ("ru", format!("{:032x}", 9)),
        ("ru", "malformed!".to_string()),
        ("ghost", cid.clone()),
        ("other", cid.clone()),
    ] {
        let resp = release(&s, queue, &id).await;
        assert_eq!(resp.status().as_u16(), 204, "{queue}/{id}");
    }
    // None of those released the real claim.
    assert!(s.claim("ru", None, None).await.is_none());
    // Expired, then released twice.
    s.clock.advance_secs(60);
    assert_eq!(release(&s, "ru", &cid).await.status().as_u16(), 204);
    assert_eq!(release(&s, "ru", &cid).await.status().as_u16(), 204);
    let queues = json_of(s.req(Method::GET, "/v2/queues").send().await.unwrap()).await;
    assert_eq!(
        queues["queues"].as_array().unwrap().len(),
        1,
        "nothing created"
    );
}

/// Releasing a claim does not free messages that another live claim holds.
#[tokio::test]
async fn release_only_affects_its_own_messages() {
    let s = TestServer::start().await;
    let ids = s.post("ro", messages(2)).await;
    let (a, _) = s.claim("ro", None, Some(1)).await.unwrap();
    let (b, _) = s.claim("ro", None, Some(1)).await.unwrap();
    assert_eq!(release(&s, "ro", &a).await.status().as_u16(), 204);
    let doc = claim_doc(&s, "ro", &b).await;
    assert_eq!(
        ids_of(doc["messages"].as_array().unwrap()),
        vec![ids[1].clone()]
    );
    let (_, again) = s.claim("ro", None, None).await.unwrap();
    assert_eq!(ids_of(&again), vec![ids[0].clone()]);
}
