//! Pre-signed URLs: `POST .../share` and requests authorised by the `URL-*` headers.

use zaqar_testkit as common;

use common::{expect_error, json_of, TestServer, CLIENT, PROJECT};
use reqwest::Method;
use serde_json::{json, Value};
use zaqar_core::signing;

const SECRET: (&str, &str, &str) = ("signed_url", "secret_key", "s3cr3t-signing-key");

async fn share(s: &TestServer, q: &str, body: Value) -> reqwest::Response {
    s.req(Method::POST, &format!("/v2/queues/{q}/share"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A request carrying only the signed grant (no other identity than the project header).
fn signed(s: &TestServer, method: Method, path: &str, grant: &Value) -> reqwest::RequestBuilder {
    let join = |k: &str| {
        grant[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    s.http
        .request(method, s.url(path))
        .header("Client-ID", CLIENT)
        .header("X-Project-ID", grant["project"].as_str().unwrap())
        .header("URL-Signature", grant["signature"].as_str().unwrap())
        .header("URL-Expires", grant["expires"].as_str().unwrap())
        .header("URL-Methods", join("methods"))
        .header("URL-Paths", join("paths"))
}

#[tokio::test]
async fn share_needs_a_secret() {
    let s = TestServer::start().await;
    expect_error(
        share(&s, "q", json!({})).await,
        400,
        "Invalid API request",
        Some("secret_key"),
    )
    .await;
}

#[tokio::test]
async fn share_defaults_and_signature() {
    let s = TestServer::start_with(&[SECRET]).await;
    let resp = share(&s, "q", json!({})).await;
    assert_eq!(resp.status().as_u16(), 200);
    let g = json_of(resp).await;
    assert_eq!(g["project"], PROJECT);
    assert_eq!(g["paths"], json!(["/v2/queues/q/messages"]));
    assert_eq!(g["methods"], json!(["GET"]));
    // The manual clock starts at 2026-01-01T00:00:00Z; the default lifetime is one day.
    assert_eq!(g["expires"], "2026-01-02T00:00:00");
    let want = signing::sign(
        b"s3cr3t-signing-key",
        &["/v2/queues/q/messages".to_string()],
        &["GET".to_string()],
        Some(PROJECT),
        "2026-01-02T00:00:00",
    );
    assert_eq!(g["signature"], want);
    // Paths and methods come back sorted and prefixed; offsets in `expires` become UTC.
    let g = json_of(
        share(
            &s,
            "q",
            json!({"paths": ["messages", "claims"], "methods": ["POST", "GET"], "expires": "2026-03-01T12:00:00+02:00"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        g["paths"],
        json!(["/v2/queues/q/claims", "/v2/queues/q/messages"])
    );
    assert_eq!(g["methods"], json!(["GET", "POST"]));
    assert_eq!(g["expires"], "2026-03-01T10:00:00");
}

#[tokio::test]
async fn share_validation() {
    let s = TestServer::start_with(&[SECRET]).await;
    for (body, needle) in [
        (json!({"paths": ["messages", "queues"]}), "Invalid paths"),
        (json!({"methods": "GET"}), "methods"),
        (json!({"expires": "1234567890"}), "expires"),
        (json!({"expires": "not a date"}), "expires"),
        (json!({"expires": "2020-01-01T00:00:00"}), "future"),
        (json!({"bogus": 1}), "Unknown keys"),
    ] {
        expect_error(
            share(&s, "q", body).await,
            400,
            "Invalid API request",
            Some(needle),
        )
        .await;
    }
    let resp = s
        .req(Method::POST, "/v2/queues/q/share")
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "Invalid request body", None).await;
    // Sharing does not create the queue.
    let list = json_of(s.req(Method::GET, "/v2/queues").send().await.unwrap()).await;
    assert_eq!(list["queues"], json!([]));
}

#[tokio::test]
async fn signed_requests_are_limited_to_their_grant() {
    let s = TestServer::start_with(&[SECRET]).await;
    let ids = s.post("q", json!([{"body": 1}])).await;
    s.post("other", json!([{"body": 2}])).await;
    let g = json_of(share(&s, "q", json!({"methods": ["GET"]})).await).await;

    let ok = signed(&s, Method::GET, "/v2/queues/q/messages?echo=true", &g)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(json_of(ok).await["messages"][0]["body"], 1);
    // Below the signed path: one message.
    let one = signed(
        &s,
        Method::GET,
        &format!("/v2/queues/q/messages/{}", ids[0]),
        &g,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(one.status().as_u16(), 200);

    let refused = [
        (Method::POST, "/v2/queues/q/messages".to_string()),
        (Method::GET, "/v2/queues/other/messages".to_string()),
        (
            Method::GET,
            "/v2/queues/q/claims/0123456789abcdef0123456789abcdef".to_string(),
        ),
        (Method::GET, "/v2/queues/q".to_string()),
    ];
    for (m, path) in refused {
        let resp = signed(&s, m.clone(), &path, &g).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 404, "{m} {path}");
    }
    // Tampering with any signed element is refused.
    let mut bad = g.clone();
    bad["methods"] = json!(["GET", "POST"]);
    let resp = signed(&s, Method::POST, "/v2/queues/q/messages", &bad)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let mut bad = g.clone();
    bad["project"] = json!("another-project");
    let resp = signed(&s, Method::GET, "/v2/queues/q/messages", &bad)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let mut bad = g.clone();
    bad["expires"] = json!("2027-01-01T00:00:00");
    let resp = signed(&s, Method::GET, "/v2/queues/q/messages", &bad)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    // Expiry.
    s.clock.advance_secs(86_400);
    let resp = signed(&s, Method::GET, "/v2/queues/q/messages", &g)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
}

#[tokio::test]
async fn a_signature_check_comes_before_every_other_check() {
    let s = TestServer::start_with(&[SECRET]).await;
    // Bad signature and no Client-ID: the signature failure (404) wins over the 400.
    let resp = s
        .http
        .get(s.url("/v2/queues/q/messages"))
        .header("X-Project-ID", PROJECT)
        .header("URL-Signature", "00")
        .header("URL-Expires", "2100-01-01T00:00:00")
        .header("URL-Methods", "GET")
        .header("URL-Paths", "/v2/queues/q/messages")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
}
