//! Keystone authentication against a real Keystone (started by `scripts/keystone.sh`, which
//! prints `ZAQAR_TEST_KEYSTONE_URL`). Without that variable the tests are skipped, unless
//! `ZAQAR_TEST_REQUIRE_BACKENDS=1`, which makes a missing Keystone a failure.

use zaqar_testkit as common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use common::ws::{Ended, WsClient};
use common::{json_of, TestServer, CLIENT};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn keystone_url() -> Option<String> {
    match std::env::var("ZAQAR_TEST_KEYSTONE_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            if std::env::var("ZAQAR_TEST_REQUIRE_BACKENDS").as_deref() == Ok("1") {
                panic!("ZAQAR_TEST_KEYSTONE_URL is not set and backends are required");
            }
            eprintln!(
                "skipped: ZAQAR_TEST_KEYSTONE_URL is not set (run scripts/keystone.sh start)"
            );
            None
        }
    }
}

fn password() -> String {
    std::env::var("ZAQAR_TEST_KEYSTONE_PASSWORD").unwrap_or_else(|_| "secret".into())
}

/// A user token scoped to `project`, with its project id.
async fn token(url: &str, user: &str, project: &str) -> (String, String) {
    let body = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": "Default"}, "password": password()}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}});
    let resp = reqwest::Client::new()
        .post(format!("{url}/auth/tokens"))
        .json(&body)
        .send()
        .await
        .expect("Keystone reachable");
    assert_eq!(resp.status().as_u16(), 201, "login of {user}");
    let tok = resp.headers()["x-subject-token"]
        .to_str()
        .unwrap()
        .to_string();
    let doc: Value = resp.json().await.unwrap();
    (
        tok,
        doc["token"]["project"]["id"].as_str().unwrap().to_string(),
    )
}

/// A TCP relay in front of Keystone that counts token validations and can be cut.
struct Relay {
    url: String,
    validations: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

async fn relay(keystone: &str) -> Relay {
    let target = keystone
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let validations = Arc::new(AtomicUsize::new(0));
    let down = Arc::new(AtomicBool::new(false));
    let (v, d) = (validations.clone(), down.clone());
    tokio::spawn(async move {
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            if d.load(Ordering::SeqCst) {
                drop(client);
                continue;
            }
            let mut server = TcpStream::connect(&target).await.unwrap();
            let (v, d) = (v.clone(), d.clone());
            tokio::spawn(async move {
                let mut a = [0u8; 16384];
                let mut b = [0u8; 65536];
                loop {
                    if d.load(Ordering::SeqCst) {
                        return;
                    }
                    tokio::select! {
                        n = client.read(&mut a) => {
                            let Ok(n) = n else { return };
                            if n == 0 { return; }
                            if a[..n].windows(19).any(|w| w == b"GET /v3/auth/tokens") {
                                v.fetch_add(1, Ordering::SeqCst);
                            }
                            if server.write_all(&a[..n]).await.is_err() { return; }
                        }
                        n = server.read(&mut b) => {
                            let Ok(n) = n else { return };
                            if n == 0 { return; }
                            if client.write_all(&b[..n]).await.is_err() { return; }
                        }
                    }
                }
            });
        }
    });
    Relay {
        url: format!("http://{addr}/v3"),
        validations,
        down,
    }
}

async fn server(keystone: &str, extra: &[(&str, &str, &str)]) -> TestServer {
    let pass = password();
    let mut opts = vec![
        ("DEFAULT", "auth_strategy", "keystone"),
        ("DEFAULT", "admin_mode", "true"),
        ("keystone_authtoken", "auth_url", keystone),
        (
            "keystone_authtoken",
            "www_authenticate_uri",
            "http://keystone.example/v3",
        ),
        ("keystone_authtoken", "username", "zaqar"),
        ("keystone_authtoken", "password", pass.as_str()),
        ("keystone_authtoken", "project_name", "service"),
    ];
    opts.extend_from_slice(extra);
    TestServer::start_with(&opts).await
}

fn with_token(s: &TestServer, m: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
    s.http
        .request(m, s.url(path))
        .header("Client-ID", CLIENT)
        .header("X-Auth-Token", token)
}

#[tokio::test]
async fn tokens_are_required_and_checked() {
    let Some(url) = keystone_url() else { return };
    let s = server(&url, &[]).await;
    // No token, a bad token: 401 with WWW-Authenticate.
    for tok in ["", "not-a-token"] {
        let resp = with_token(&s, Method::GET, "/v2/queues", tok)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{tok:?}");
        assert_eq!(
            resp.headers()["www-authenticate"],
            "Keystone uri=\"http://keystone.example/v3\""
        );
        let body = json_of(resp).await;
        assert_eq!(body["title"], "Unauthorized");
    }
    // 401 comes before the Client-ID check.
    let resp = s.http.get(s.url("/v2/queues")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    // A valid token: the project comes from the token; X-Project-ID is optional.
    let (tok, alpha) = token(&url, "bob", "alpha").await;
    let resp = with_token(&s, Method::PUT, "/v2/queues/kq", &tok)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let resp = with_token(&s, Method::GET, "/v2/queues", &tok)
        .header("X-Project-ID", &alpha)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(json_of(resp).await["queues"][0]["name"], "kq");
    // An X-Project-ID contradicting the token is refused.
    let resp = with_token(&s, Method::GET, "/v2/queues", &tok)
        .header("X-Project-ID", "someone-else")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
}

#[tokio::test]
async fn projects_are_isolated_and_roles_come_from_the_token() {
    let Some(url) = keystone_url() else { return };
    let s = server(&url, &[]).await;
    let (bob, alpha) = token(&url, "bob", "alpha").await;
    let (carol, _) = token(&url, "carol", "beta").await;
    let (alice, _) = token(&url, "alice", "alpha").await;
    let resp = with_token(&s, Method::POST, "/v2/queues/secret/messages", &bob)
        .json(&json!({"messages": [{"body": "alpha only"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let href = json_of(resp).await["resources"][0]
        .as_str()
        .unwrap()
        .to_string();
    // Carol (project beta) sees nothing of alpha's, whatever header she sends.
    let list = json_of(
        with_token(
            &s,
            Method::GET,
            "/v2/queues/secret/messages?echo=true",
            &carol,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(list["messages"], json!([]));
    let resp = with_token(&s, Method::GET, &href, &carol)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let resp = with_token(&s, Method::GET, "/v2/queues/secret/messages", &carol)
        .header("X-Project-ID", &alpha)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert!(
        with_token(&s, Method::POST, "/v2/queues/secret/claims", &carol)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
            == 204,
        "nothing to claim in beta's queue of that name"
    );
    // Admin-only route: bob (member) is refused even when he claims the admin role.
    let resp = with_token(&s, Method::GET, "/v2/health", &bob)
        .header("X-Roles", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let resp = with_token(&s, Method::GET, "/v2/health", &alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

#[tokio::test]
async fn cache_hits_do_not_call_keystone_and_survive_an_outage() {
    let Some(url) = keystone_url() else { return };
    let relay = relay(&url).await;
    let s = server(&relay.url, &[]).await;
    let (tok, _) = token(&url, "bob", "alpha").await;
    for _ in 0..5 {
        let resp = with_token(&s, Method::GET, "/v2/queues", &tok)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
    }
    assert_eq!(
        relay.validations.load(Ordering::SeqCst),
        1,
        "one validation, then the cache"
    );
    // Keystone goes away: the cached token keeps working, a new one gets 503.
    relay.down.store(true, Ordering::SeqCst);
    let resp = with_token(&s, Method::GET, "/v2/queues", &tok)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let (other, _) = token(&url, "carol", "beta").await;
    let resp = with_token(&s, Method::GET, "/v2/queues", &other)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    relay.down.store(false, Ordering::SeqCst);
    let resp = with_token(&s, Method::GET, "/v2/queues", &other)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        200,
        "recovers when Keystone is back"
    );
}

#[tokio::test]
async fn revoked_and_expired_tokens_are_refused() {
    let Some(url) = keystone_url() else { return };
    let s = server(&url, &[]).await;
    // Revoked before first use.
    let (tok, _) = token(&url, "bob", "alpha").await;
    let r = reqwest::Client::new()
        .delete(format!("{url}/auth/tokens"))
        .header("X-Auth-Token", &tok)
        .header("X-Subject-Token", &tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let resp = with_token(&s, Method::GET, "/v2/queues", &tok)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    // Expiry is re-checked on every use, cache or not.
    let (tok, _) = token(&url, "bob", "alpha").await;
    s.clock.set(chrono::Utc::now().timestamp_millis());
    let resp = with_token(&s, Method::GET, "/v2/queues", &tok)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    s.clock.advance_secs(3 * 3600);
    let resp = with_token(&s, Method::GET, "/v2/queues", &tok)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
}

#[tokio::test]
async fn signed_urls_bypass_keystone_but_only_for_their_grant() {
    let Some(url) = keystone_url() else { return };
    let s = server(&url, &[("signed_url", "secret_key", "k-sign")]).await;
    let (tok, alpha) = token(&url, "bob", "alpha").await;
    with_token(&s, Method::POST, "/v2/queues/shared/messages", &tok)
        .json(&json!({"messages": [{"body": 1}]}))
        .send()
        .await
        .unwrap();
    let grant = json_of(
        with_token(&s, Method::POST, "/v2/queues/shared/share", &tok)
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(grant["project"], alpha.as_str());
    let signed = |path: &str| {
        s.http
            .get(s.url(path))
            .header("Client-ID", CLIENT)
            .header("X-Project-ID", grant["project"].as_str().unwrap())
            .header("URL-Signature", grant["signature"].as_str().unwrap())
            .header("URL-Expires", grant["expires"].as_str().unwrap())
            .header("URL-Methods", "GET")
            .header("URL-Paths", grant["paths"][0].as_str().unwrap())
    };
    let resp = signed("/v2/queues/shared/messages?echo=true")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(json_of(resp).await["messages"][0]["body"], 1);
    // The same grant does not open another queue of the project.
    let resp = signed("/v2/queues/other/messages").send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    // EXTRA-SPEC bypasses nothing.
    let resp = s
        .http
        .get(s.url("/v2/queues"))
        .header("Client-ID", CLIENT)
        .header("EXTRA-SPEC", "messagecode:1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
}

#[tokio::test]
async fn websocket_connections_authenticate_and_are_pinned_to_the_token_project() {
    let Some(url) = keystone_url() else { return };
    let s = server(&url, &[]).await;
    let (bob, alpha) = token(&url, "bob", "alpha").await;
    let mut ws = WsClient::to(&s).await;
    ws.project = alpha.clone();
    // Nothing works before `authenticate`.
    let r = ws.call("queue_list", json!({})).await;
    assert_eq!((r.status, r.error()), (403, "Not authentified."));
    // A bad token.
    ws.send_json(&json!({"action": "authenticate",
        "headers": {"X-Auth-Token": "nope", "X-Project-ID": alpha}}))
        .await;
    let r = ws.recv().await;
    assert_eq!((r.status, r.error()), (401, "Authentication failed."));
    // A good one.
    ws.send_json(&json!({"action": "authenticate",
        "headers": {"X-Auth-Token": bob, "X-Project-ID": alpha}}))
        .await;
    let r = ws.recv().await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"message": "Authentified."}));
    let r = ws.call("queue_create", json!({"queue_name": "wsq"})).await;
    assert_eq!(r.status, 201);
    // The project is pinned: another X-Project-ID is refused.
    ws.project = "beta-or-anything".into();
    let r = ws.call("queue_list", json!({})).await;
    assert_eq!(r.status, 403);
    ws.project = alpha.clone();
    let r = ws.call("queue_list", json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["queues"][0]["name"], "wsq");
    // Admin-only actions follow the token's roles.
    let r = ws.call("check_node_health", json!({})).await;
    assert_eq!(r.status, 403);
    ws.close().await;
}

#[tokio::test]
async fn websocket_connections_close_with_4003_when_the_token_expires() {
    let Some(url) = keystone_url() else { return };
    let s = server(&url, &[]).await;
    let (bob, alpha) = token(&url, "bob", "alpha").await;
    // Put the service clock one second before the token's expiry.
    let info: Value = reqwest::Client::new()
        .get(format!("{url}/auth/tokens?nocatalog"))
        .header("X-Auth-Token", &bob)
        .header("X-Subject-Token", &bob)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let expires =
        chrono::DateTime::parse_from_rfc3339(info["token"]["expires_at"].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
    s.clock.set(expires - 1_000);
    let mut ws = WsClient::to(&s).await;
    ws.send_json(&json!({"action": "authenticate",
        "headers": {"X-Auth-Token": bob, "X-Project-ID": alpha}}))
        .await;
    assert_eq!(ws.recv().await.status, 200);
    assert_eq!(
        ws.ended().await,
        Ended::Closed {
            code: 4003,
            reason: "Authentication expired.".into()
        }
    );
}

/// A webhook receiver: forwards each request's `X-Auth-Token` and body.
async fn hook_receiver() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(String, Value)>,
) {
    use axum::http::HeaderMap;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                let token = headers
                    .get("x-auth-token")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let _ = tx.send((token, serde_json::from_slice(&body).unwrap_or(Value::Null)));
                "ok"
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), rx)
}

#[tokio::test]
async fn trust_subscribers_are_notified_with_a_token_acting_for_their_creator() {
    let Some(url) = keystone_url() else { return };
    let s = server(&url, &[]).await;
    let (bob, alpha) = token(&url, "bob", "alpha").await;
    let (hook, mut received) = hook_receiver().await;
    let resp = with_token(&s, Method::POST, "/v2/queues/trusted/subscriptions", &bob)
        .json(&json!({"subscriber": format!("trust+{hook}"), "ttl": 3600}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        201,
        "{}",
        resp.text().await.unwrap()
    );
    let id = json_of(resp).await["subscription_id"]
        .as_str()
        .unwrap()
        .to_string();
    let sub = json_of(
        with_token(
            &s,
            Method::GET,
            &format!("/v2/queues/trusted/subscriptions/{id}"),
            &bob,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    let trust = sub["options"]["trust_id"].as_str().unwrap().to_string();

    // Replacing the options keeps the trust (it is the server's, not the user's to set).
    let resp = with_token(
        &s,
        Method::PATCH,
        &format!("/v2/queues/trusted/subscriptions/{id}"),
        &bob,
    )
    .json(&json!({"options": {"trust_id": "forged", "note": "x"}}))
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let sub = json_of(
        with_token(
            &s,
            Method::GET,
            &format!("/v2/queues/trusted/subscriptions/{id}"),
            &bob,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(sub["options"]["trust_id"], json!(trust));
    assert_eq!(sub["options"]["note"], json!("x"));

    let resp = with_token(&s, Method::POST, "/v2/queues/trusted/messages", &bob)
        .json(&json!({"messages": [{"body": {"event": "trusted"}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let (delivered_token, body) =
        tokio::time::timeout(std::time::Duration::from_secs(30), received.recv())
            .await
            .expect("the trust subscriber is notified")
            .unwrap();
    assert_eq!(body["body"], json!({"event": "trusted"}));
    assert!(!delivered_token.is_empty(), "the webhook carries a token");
    assert_ne!(delivered_token, bob, "not the user's own token");
    // The token acts for bob in alpha through the trust (as an admin reads it).
    let (admin, _) = token(&url, "zaqar", "service").await;
    let resp = reqwest::Client::new()
        .get(format!("{url}/auth/tokens"))
        .header("X-Auth-Token", &admin)
        .header("X-Subject-Token", &delivered_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["token"]["OS-TRUST:trust"]["id"], json!(trust));
    assert_eq!(doc["token"]["project"]["id"], json!(alpha));
    assert_eq!(doc["token"]["user"]["name"], json!("bob"));

    // A trust+ subscriber with a pre-signed request or without a host is refused with 400.
    let resp = with_token(&s, Method::POST, "/v2/queues/trusted/subscriptions", &bob)
        .json(&json!({"subscriber": "trust+http://", "ttl": 3600}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
}
