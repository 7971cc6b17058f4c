//! Black-box HTTP tests of project isolation: another project can neither see nor touch a
//! project's messages and claims, and the same queue name in two projects is two queues.

use zaqar_testkit as common;

use common::{expect_error, json_of, TestServer, OTHER_CLIENT};
use reqwest::Method;
use serde_json::{json, Value};

use super::bare;

// ----- project isolation -----------------------------------------------------------------

fn as_project(s: &TestServer, m: Method, path: &str, project: &str) -> reqwest::RequestBuilder {
    bare(s, m, path)
        .header("Client-ID", OTHER_CLIENT)
        .header("X-Project-ID", project)
}

#[tokio::test]
async fn other_projects_cannot_see_or_touch_messages() {
    let s = TestServer::start().await;
    let ids = s
        .post("shared", json!([{"body": "a1"}, {"body": "a2"}]))
        .await;
    let b = "project-b";

    let list = json_of(
        as_project(&s, Method::GET, "/v2/queues/shared/messages?echo=true", b)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list, json!({"messages": [], "links": []}));
    let resp = as_project(
        &s,
        Method::GET,
        &format!("/v2/queues/shared/messages/{}", ids[0]),
        b,
    )
    .send()
    .await
    .unwrap();
    expect_error(resp, 404, "Not found", None).await;
    let resp = as_project(
        &s,
        Method::GET,
        &format!("/v2/queues/shared/messages?ids={}", ids.join(",")),
        b,
    )
    .send()
    .await
    .unwrap();
    expect_error(resp, 404, "Not found", None).await;
    let resp = as_project(&s, Method::POST, "/v2/queues/shared/claims", b)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204, "nothing to claim in B");
    let resp = as_project(&s, Method::DELETE, "/v2/queues/shared/messages?pop=5", b)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(resp).await, json!({"messages": []}));
    for path in [
        format!("/v2/queues/shared/messages/{}", ids[0]),
        format!("/v2/queues/shared/messages?ids={}", ids[1]),
        "/v2/queues/shared".to_string(),
    ] {
        let resp = as_project(&s, Method::DELETE, &path, b)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 204, "{path}");
    }
    let resp = as_project(&s, Method::POST, "/v2/queues/shared/purge", b)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let stats = json_of(
        as_project(&s, Method::GET, "/v2/queues/shared/stats", b)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        stats,
        json!({"messages": {"claimed": 0, "free": 0, "total": 0}})
    );
    let queues = json_of(
        as_project(&s, Method::GET, "/v2/queues", b)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(queues["queues"], json!([]));

    // Project A still has both messages, unclaimed.
    let a = json_of(
        s.req(
            Method::GET,
            &format!("/v2/queues/shared/messages?ids={}", ids.join(",")),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(a["messages"].as_array().unwrap().len(), 2);
    let (_, claimed) = s.claim("shared", None, None).await.expect("A can claim");
    assert_eq!(claimed.len(), 2);
}

#[tokio::test]
async fn other_projects_cannot_use_claims() {
    let s = TestServer::start().await;
    s.post("cq", json!([{"body": 1}])).await;
    let (cid, _) = s.claim("cq", None, None).await.unwrap();
    let b = "project-b";
    let path = format!("/v2/queues/cq/claims/{cid}");
    let resp = as_project(&s, Method::GET, &path, b).send().await.unwrap();
    expect_error(resp, 404, "Not found", None).await;
    let resp = as_project(&s, Method::PATCH, &path, b)
        .json(&json!({"ttl": 100}))
        .send()
        .await
        .unwrap();
    expect_error(resp, 404, "Not found", None).await;
    let resp = as_project(&s, Method::DELETE, &path, b)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    // The claim is untouched in project A.
    let claim = json_of(s.req(Method::GET, &path).send().await.unwrap()).await;
    assert_eq!(claim["messages"].as_array().unwrap().len(), 1);
    assert!(s.claim("cq", None, None).await.is_none());
}

#[tokio::test]
async fn same_queue_name_in_two_projects_is_independent() {
    let s = TestServer::start().await;
    let b = "project-b";
    let resp = s
        .req(Method::PUT, "/v2/queues/twin")
        .json(&json!({"owner": "a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    // Project B creates its own queue of the same name: 201, not 204.
    let resp = as_project(&s, Method::PUT, "/v2/queues/twin", b)
        .json(&json!({"owner": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    s.post("twin", json!([{"body": "from a"}])).await;
    let resp = as_project(&s, Method::POST, "/v2/queues/twin/messages", b)
        .json(&json!({"messages": [{"body": "from b 1"}, {"body": "from b 2"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);

    let meta_a = json_of(s.req(Method::GET, "/v2/queues/twin").send().await.unwrap()).await;
    let meta_b = json_of(
        as_project(&s, Method::GET, "/v2/queues/twin", b)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(meta_a["owner"], "a");
    assert_eq!(meta_b["owner"], "b");
    let stats_a = json_of(
        s.req(Method::GET, "/v2/queues/twin/stats")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let stats_b = json_of(
        as_project(&s, Method::GET, "/v2/queues/twin/stats", b)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(stats_a["messages"]["total"], 1);
    assert_eq!(stats_b["messages"]["total"], 2);

    // Deleting B's queue leaves A's intact.
    let resp = as_project(&s, Method::DELETE, "/v2/queues/twin", b)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let list = json_of(
        s.req(Method::GET, "/v2/queues/twin/messages?echo=true")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let bodies: Vec<Value> = list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].clone())
        .collect();
    assert_eq!(bodies, vec![json!("from a")]);
    let queues = json_of(s.req(Method::GET, "/v2/queues").send().await.unwrap()).await;
    assert_eq!(queues["queues"][0]["name"], "twin");
}
