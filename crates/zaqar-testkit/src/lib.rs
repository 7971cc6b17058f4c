//! Test harness: starts the real server on 127.0.0.1:0 over a fresh data directory, with a
//! manual clock so time-dependent behaviour is tested without sleeping.

pub mod mysql_support;
pub mod postgres_support;
pub mod redis_support;
pub mod webhook_support;
pub mod ws;

use std::sync::Arc;

use tokio::sync::oneshot;
use zaqar_core::clock::ManualClock;
use zaqar_server::app::App;
use zaqar_server::config::{Config, Origin, RawConfig};

pub const CLIENT: &str = "3381af92-2b9e-11e3-b191-71861300734c";
pub const OTHER_CLIENT: &str = "9d6d6b5c-9a8f-4f4e-8a0d-1f2e3d4c5b6a";
pub const PROJECT: &str = "test-project";

pub struct TestServer {
    pub base: String,
    /// `ws://127.0.0.1:<port>` of the WebSocket listener.
    pub ws_base: String,
    pub clock: ManualClock,
    pub http: reqwest::Client,
    /// The running service (for tests that look behind the API, e.g. long-poll waiters).
    pub service: Arc<zaqar_core::service::Service>,
    /// Notification delivery (for tests that control its retry pauses).
    pub notifier: Arc<zaqar_notify::Notifier>,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(&[]).await
    }

    /// Starts a server with extra options given as (section, option, value).
    pub async fn start_with(options: &[(&str, &str, &str)]) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut raw = RawConfig::default();
        raw.set("drivers:transport:wsgi", "port", "0", Origin::Cli);
        raw.set("drivers:transport:websocket", "port", "0", Origin::Cli);
        raw.set(
            "drivers:message_store:embedded",
            "path",
            &dir.path().to_string_lossy(),
            Origin::Cli,
        );
        raw.set("drivers:message_store:embedded", "shards", "2", Origin::Cli);
        raw.set(
            "drivers:message_store:embedded",
            "cache_size_mb",
            "16",
            Origin::Cli,
        );
        for (s, o, v) in options {
            raw.set(s, o, v, Origin::Cli);
        }
        let (config, _) = Config::from_raw(&raw, true).expect("valid test config");
        let clock = ManualClock::default();
        let app = App::build(config, Arc::new(clock.clone()))
            .await
            .expect("app");
        let listener = app.bind().await.expect("bind");
        let ws_listener = app.bind_websocket().await.expect("bind websocket");
        let service = app.service.clone();
        let notifier = app.notifier.clone();
        let addr = listener.local_addr().unwrap();
        let ws_addr = ws_listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            app.serve_both(listener, Some(ws_listener), async {
                let _ = rx.await;
            })
            .await
            .expect("serve");
        });
        TestServer {
            base: format!("http://{addr}"),
            ws_base: format!("ws://{ws_addr}"),
            clock,
            http: reqwest::Client::new(),
            service,
            notifier,
            stop: Some(tx),
            handle: Some(handle),
            _dir: dir,
        }
    }

    /// The data directory of the embedded store.
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request with the standard Client-ID and project headers.
    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .header("Client-ID", CLIENT)
            .header("X-Project-ID", PROJECT)
    }

    /// Stops the server gracefully (the store is flushed and closed).
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }
}

// ----- Helpers for the black-box HTTP tests (tests/http_*.rs) -----------------------------

/// The JSON body of a response; panics with the raw text if it is not JSON.
pub async fn json_of(resp: reqwest::Response) -> serde_json::Value {
    let text = resp.text().await.expect("response body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text:?}"))
}

/// Asserts an error response: exact status, a JSON body whose `title` equals `title`, and, when
/// given, a `description` string containing `description`. Returns the body.
pub async fn expect_error(
    resp: reqwest::Response,
    status: u16,
    title: &str,
    description: Option<&str>,
) -> serde_json::Value {
    let got = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_string())
        .unwrap_or_default();
    let body = json_of(resp).await;
    assert_eq!(got, status, "unexpected status; body: {body}");
    assert!(
        content_type.starts_with("application/json"),
        "error Content-Type {content_type:?}"
    );
    assert_eq!(body["title"], title, "unexpected title; body: {body}");
    if let Some(d) = description {
        let text = body["description"]
            .as_str()
            .unwrap_or_else(|| panic!("no description in {body}"));
        assert!(text.contains(d), "description {text:?} lacks {d:?}");
    }
    body
}

/// The last path segment of a `Location`-style path, without any query string.
pub fn last_segment(path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    path.rsplit('/').next().unwrap_or(path).to_string()
}

impl TestServer {
    /// A request with the standard project and the given Client-ID (`req` already sets one,
    /// and adding a second `Client-ID` header would not replace it).
    pub fn req_as(
        &self,
        client: &str,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .header("Client-ID", client)
            .header("X-Project-ID", PROJECT)
    }

    /// Posts `{"messages": messages}` as `client`; asserts 201 and returns the ids in order.
    pub async fn post_as(
        &self,
        client: &str,
        queue: &str,
        messages: serde_json::Value,
    ) -> Vec<String> {
        let resp = self
            .req_as(
                client,
                reqwest::Method::POST,
                &format!("/v2/queues/{queue}/messages"),
            )
            .json(&serde_json::json!({ "messages": messages }))
            .send()
            .await
            .expect("post messages");
        let status = resp.status().as_u16();
        let body = json_of(resp).await;
        assert_eq!(status, 201, "post failed: {body}");
        body["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .map(|r| last_segment(r.as_str().expect("resource path")))
            .collect()
    }

    /// Posts messages as the standard client (see [`TestServer::post_as`]).
    pub async fn post(&self, queue: &str, messages: serde_json::Value) -> Vec<String> {
        self.post_as(CLIENT, queue, messages).await
    }

    /// Claims with the given body (`None` = no body) and `?limit`; returns the claim id and
    /// the claimed messages, or `None` on 204.
    pub async fn claim(
        &self,
        queue: &str,
        body: Option<serde_json::Value>,
        limit: Option<u32>,
    ) -> Option<(String, Vec<serde_json::Value>)> {
        let path = match limit {
            Some(l) => format!("/v2/queues/{queue}/claims?limit={l}"),
            None => format!("/v2/queues/{queue}/claims"),
        };
        let mut req = self.req(reqwest::Method::POST, &path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("claim");
        match resp.status().as_u16() {
            204 => None,
            201 => {
                let loc = resp.headers()["location"].to_str().unwrap().to_string();
                let body = json_of(resp).await;
                let messages = body["messages"].as_array().expect("messages").clone();
                Some((last_segment(&loc), messages))
            }
            s => panic!(
                "claim failed with {s}: {}",
                resp.text().await.unwrap_or_default()
            ),
        }
    }
}
