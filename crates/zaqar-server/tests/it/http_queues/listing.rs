//! Black-box HTTP tests of the queue list: paging with marker and limit, detailed listing,
//! counts, and the name and metadata filters (spec §3.3).

use zaqar_testkit as common;

use common::{expect_error, json_of, TestServer, OTHER_CLIENT};
use reqwest::Method;
use serde_json::{json, Value};

use super::{defaults, list, names, put, with_defaults};

// ----- list ---------------------------------------------------------------------------------

#[tokio::test]
async fn list_empty_is_200_with_empty_links() {
    let s = TestServer::start().await;
    assert_eq!(list(&s, "").await, json!({"queues": [], "links": []}));
    let page = list(&s, "?with_count=true").await;
    assert_eq!(page, json!({"queues": [], "links": []}), "no count when 0");
}

#[tokio::test]
async fn list_pages_with_marker_and_limit_until_an_empty_page() {
    let s = TestServer::start().await;
    for name in ["echo", "alpha", "delta", "Bravo", "charlie"] {
        assert_eq!(put(&s, name, None).await.status().as_u16(), 201);
    }
    let first = list(&s, "?limit=2").await;
    assert_eq!(names(&first), vec!["Bravo", "alpha"], "byte order");
    assert_eq!(
        first["queues"][0],
        json!({"name": "Bravo", "href": "/v2/queues/Bravo"})
    );
    let mut pages = vec![names(&first)];
    let mut page = first;
    loop {
        let links = page["links"].as_array().unwrap().clone();
        if page["queues"].as_array().unwrap().is_empty() {
            assert_eq!(links, Vec::<Value>::new(), "empty page has no links");
            break;
        }
        assert_eq!(links.len(), 1, "non-empty page has a next link: {page}");
        assert_eq!(links[0]["rel"], "next");
        let href = links[0]["href"].as_str().unwrap();
        assert!(href.starts_with("/v2/queues?"), "{href}");
        assert!(href.contains("limit=2"), "{href}");
        let last = pages.last().unwrap().last().unwrap().clone();
        assert!(href.contains(&format!("marker={last}")), "{href}");
        let resp = s.req(Method::GET, href).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        page = json_of(resp).await;
        pages.push(names(&page));
        assert!(pages.len() < 10, "paging does not terminate");
    }
    assert_eq!(
        pages,
        vec![
            vec!["Bravo", "alpha"],
            vec!["charlie", "delta"],
            vec!["echo"],
            vec![],
        ]
    );
    // An explicit marker: strictly after it, even if it is not a queue name.
    assert_eq!(
        names(&list(&s, "?marker=charlie").await),
        vec!["delta", "echo"]
    );
    assert_eq!(
        names(&list(&s, "?marker=b").await),
        vec!["charlie", "delta", "echo"]
    );
    assert_eq!(names(&list(&s, "?marker=zzz").await), Vec::<String>::new());
}

#[tokio::test]
async fn list_default_limit_is_10_and_max_is_20() {
    let s = TestServer::start().await;
    for i in 0..21 {
        put(&s, &format!("q{i:02}"), None).await;
    }
    assert_eq!(names(&list(&s, "").await).len(), 10);
    assert_eq!(names(&list(&s, "?limit=20").await).len(), 20);
    assert_eq!(
        names(&list(&s, "?limit=").await).len(),
        10,
        "empty = absent"
    );
    for bad in ["0", "21", "-1"] {
        let resp = s
            .req(Method::GET, &format!("/v2/queues?limit={bad}"))
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
        ("limit=1.5", "limit"),
        ("detailed=maybe", "detailed"),
        ("with_count=2", "with_count"),
    ] {
        let resp = s
            .req(Method::GET, &format!("/v2/queues?{query}"))
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
async fn list_max_limit_follows_configuration() {
    let s = TestServer::start_with(&[("transport", "max_queues_per_page", "3")]).await;
    let resp = s
        .req(Method::GET, "/v2/queues?limit=4")
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Invalid API request", Some("no greater than 3")).await;
    assert_eq!(list(&s, "?limit=3").await["queues"], json!([]));
}

#[tokio::test]
async fn list_detailed_shows_displayed_metadata() {
    let s = TestServer::start().await;
    put(
        &s,
        "a",
        Some(json!({"color": "red", "_default_message_ttl": 120})),
    )
    .await;
    put(&s, "b", None).await;
    let page = list(&s, "?detailed=true&limit=1").await;
    assert_eq!(
        page["queues"],
        json!([{
            "name": "a",
            "href": "/v2/queues/a",
            "metadata": with_defaults(json!({"color": "red", "_default_message_ttl": 120})),
        }])
    );
    let href = page["links"][0]["href"].as_str().unwrap();
    assert!(href.contains("detailed=true"), "{href}");
    let next = json_of(s.req(Method::GET, href).send().await.unwrap()).await;
    assert_eq!(next["queues"][0]["metadata"], defaults());
    // Booleans are rendered true/false in next links, whatever spelling was sent.
    let page = list(&s, "?detailed=yes&with_count=1&limit=1").await;
    let href = page["links"][0]["href"].as_str().unwrap();
    assert!(href.contains("detailed=true"), "{href}");
    assert!(href.contains("with_count=true"), "{href}");
    assert!(!href.contains("yes"), "{href}");
    // Not detailed: no metadata key at all.
    for q in ["", "?detailed=false"] {
        let page = list(&s, q).await;
        for item in page["queues"].as_array().unwrap() {
            assert!(item.get("metadata").is_none(), "{item}");
        }
    }
}

#[tokio::test]
async fn list_with_count_counts_all_queues_ignoring_filters_and_paging() {
    let s = TestServer::start().await;
    put(&s, "apple", Some(json!({"kind": "fruit"}))).await;
    put(&s, "banana", Some(json!({"kind": "fruit"}))).await;
    put(&s, "carrot", Some(json!({"kind": "veg"}))).await;
    let page = list(&s, "?with_count=true&limit=1").await;
    assert_eq!(names(&page), vec!["apple"]);
    assert_eq!(page["count"], 3);
    let page = list(&s, "?with_count=true&kind=veg").await;
    assert_eq!(names(&page), vec!["carrot"]);
    assert_eq!(page["count"], 3);
    let page = list(&s, "?with_count=true&name=zzz").await;
    assert_eq!(names(&page), Vec::<String>::new());
    assert_eq!(page["count"], 3);
    for q in ["", "?with_count=false"] {
        assert!(list(&s, q).await.get("count").is_none(), "{q}");
    }
    // Other projects' queues are not counted.
    let other = json_of(
        s.http
            .get(s.url("/v2/queues?with_count=true"))
            .header("Client-ID", OTHER_CLIENT)
            .header("X-Project-ID", "another")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(other, json!({"queues": [], "links": []}));
}

#[tokio::test]
async fn list_name_filter_is_a_literal_substring() {
    let s = TestServer::start().await;
    for name in ["alpha", "alphabet", "beta", "a.b", "axb", "gamma"] {
        put(&s, name, None).await;
    }
    assert_eq!(
        names(&list(&s, "?name=pha").await),
        vec!["alpha", "alphabet"]
    );
    assert_eq!(names(&list(&s, "?name=a.b").await), vec!["a.b"]);
    assert_eq!(names(&list(&s, "?name=ma").await), vec!["gamma"]);
    let page = list(&s, "?name=a&limit=2").await;
    assert_eq!(names(&page), vec!["a.b", "alpha"]);
    let href = page["links"][0]["href"].as_str().unwrap();
    assert!(href.contains("name=a"), "filter kept in next link: {href}");
    let next = json_of(s.req(Method::GET, href).send().await.unwrap()).await;
    assert_eq!(names(&next), vec!["alphabet", "axb"]);
}

#[tokio::test]
async fn list_metadata_filters_coerce_integers() {
    let s = TestServer::start().await;
    put(&s, "q1", Some(json!({"size": 3, "color": "red"}))).await;
    put(&s, "q2", Some(json!({"size": "3", "color": "blue"}))).await;
    put(&s, "q3", Some(json!({"size": 4, "color": "red"}))).await;
    put(&s, "q4", None).await;
    assert_eq!(names(&list(&s, "?size=3").await), vec!["q1"]);
    assert_eq!(names(&list(&s, "?color=red").await), vec!["q1", "q3"]);
    assert_eq!(names(&list(&s, "?color=red&size=4").await), vec!["q3"]);
    assert_eq!(names(&list(&s, "?color=green").await), Vec::<String>::new());
    let page = list(&s, "?color=red&limit=1").await;
    assert_eq!(names(&page), vec!["q1"]);
    let href = page["links"][0]["href"].as_str().unwrap();
    assert!(
        href.contains("color=red"),
        "filter kept in next link: {href}"
    );
    let next = json_of(s.req(Method::GET, href).send().await.unwrap()).await;
    assert_eq!(names(&next), vec!["q3"]);
}
