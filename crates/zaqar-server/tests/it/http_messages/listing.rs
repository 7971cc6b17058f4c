//! Black-box HTTP tests of reading messages: listing with echo, claimed and paging flags,
//! page limits, get by ids and get one (spec §1.4, §3.4).

use zaqar_testkit as common;

use common::{expect_error, TestServer, CLIENT, OTHER_CLIENT};
use reqwest::Method;
use serde_json::json;

use super::{bodies_of, delete, get, get_as, ids_of, sibling_id, sorted, stats_total};

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
