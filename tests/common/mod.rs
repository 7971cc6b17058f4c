//! Test harness: starts the real server on 127.0.0.1:0 over a fresh data directory, with a
//! manual clock so time-dependent behaviour is tested without sleeping.
#![allow(dead_code)]

use std::sync::Arc;

use tokio::sync::oneshot;
use zaqar::clock::ManualClock;
use zaqar::config::{Config, Origin, RawConfig};
use zaqar::server::App;

pub const CLIENT: &str = "3381af92-2b9e-11e3-b191-71861300734c";
pub const OTHER_CLIENT: &str = "9d6d6b5c-9a8f-4f4e-8a0d-1f2e3d4c5b6a";
pub const PROJECT: &str = "test-project";

pub struct TestServer {
    pub base: String,
    pub clock: ManualClock,
    pub http: reqwest::Client,
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
        raw.set(
            "drivers:message_store:embedded",
            "path",
            &dir.path().to_string_lossy(),
            Origin::Cli,
        );
        raw.set("drivers:message_store:embedded", "shards", "2", Origin::Cli);
        raw.set("drivers:message_store:embedded", "cache_size_mb", "16", Origin::Cli);
        for (s, o, v) in options {
            raw.set(s, o, v, Origin::Cli);
        }
        let (config, _) = Config::from_raw(&raw, true).expect("valid test config");
        let clock = ManualClock::default();
        let app = App::build(config, Arc::new(clock.clone())).expect("app");
        let listener = app.bind().await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            app.serve(listener, async {
                let _ = rx.await;
            })
            .await
            .expect("serve");
        });
        TestServer {
            base: format!("http://{addr}"),
            clock,
            http: reqwest::Client::new(),
            stop: Some(tx),
            handle: Some(handle),
            _dir: dir,
        }
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
