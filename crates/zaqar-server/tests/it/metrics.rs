//! Black-box tests of the admin listener: Prometheus metrics, liveness, readiness.
//!
//! Metrics are process-wide, so every assertion compares values before and after, or waits
//! for a value, rather than expecting exact totals.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use zaqar_core::clock::SystemClock;
use zaqar_core::store::DataStore;
use zaqar_server::app::App;
use zaqar_server::config::{Config, Origin, RawConfig};

const CLIENT: &str = "3381af92-2b9e-11e3-b191-71861300734c";
const PROJECT: &str = "metrics-project";

struct Server {
    base: String,
    admin: String,
    ws: String,
    store: Arc<dyn DataStore>,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        Self::start_with(&[]).await
    }

    async fn start_with(options: &[(&str, &str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut raw = RawConfig::default();
        for (s, o, v) in [
            ("drivers:transport:wsgi", "port", "0"),
            ("drivers:transport:websocket", "port", "0"),
            ("drivers:message_store:embedded", "shards", "1"),
            ("drivers:message_store:embedded", "cache_size_mb", "8"),
            ("admin", "queue_depth_interval", "1"),
            ("admin", "queue_depth_top", "5"),
        ] {
            raw.set(s, o, v, Origin::Cli);
        }
        for (s, o, v) in options {
            raw.set(s, o, v, Origin::Cli);
        }
        raw.set(
            "drivers:message_store:embedded",
            "path",
            &dir.path().to_string_lossy(),
            Origin::Cli,
        );
        let (config, _) = Config::from_raw(&raw, true).unwrap();
        let app = App::build(config, Arc::new(SystemClock)).await.unwrap();
        // Port 0 means "no admin listener" in configuration; tests bind their own.
        assert!(app.bind_admin().await.unwrap().is_none());
        let http = app.bind().await.unwrap();
        let ws = app.bind_websocket().await.unwrap();
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", http.local_addr().unwrap());
        let ws_base = format!("ws://{}", ws.local_addr().unwrap());
        let admin_base = format!("http://{}", admin.local_addr().unwrap());
        let store = app.store.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            app.serve_all(http, Some(ws), Some(admin), async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Server {
            base,
            admin: admin_base,
            ws: ws_base,
            store,
            http: reqwest::Client::new(),
            stop: Some(tx),
            handle: Some(handle),
            _dir: dir,
        }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("Client-ID", CLIENT)
            .header("X-Project-ID", PROJECT)
    }

    async fn metrics(&self) -> String {
        let resp = self
            .http
            .get(format!("{}/metrics", self.admin))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
        resp.text().await.unwrap()
    }

    async fn stop(mut self) {
        let _ = self.stop.take().map(|tx| tx.send(()));
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }
}

/// The value of the sample whose name and labels are exactly `series`, 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

/// Waits (up to 10 s) until the metrics satisfy `ok`; returns them.
async fn wait_for(s: &Server, what: &str, ok: impl Fn(&str) -> bool) -> String {
    for _ in 0..100 {
        let text = s.metrics().await;
        if ok(&text) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}:\n{}", s.metrics().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_readiness_and_request_metrics() {
    let s = Server::start().await;
    let r = s
        .http
        .get(format!("{}/healthz", s.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .http
        .get(format!("{}/readyz", s.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), r#"{"status":"ready"}"#);

    let posted = r#"zaqar_http_requests_total{method="POST",route="/v2/queues/{queue}/messages",status="201"}"#;
    let before = s.metrics().await;
    let r = s
        .req(reqwest::Method::POST, "/v2/queues/metered/messages")
        .json(&serde_json::json!({"messages": [{"body": 1}, {"body": 2}, {"body": 3}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = s
        .req(reqwest::Method::POST, "/v2/queues/metered/claims?limit=2")
        .json(&serde_json::json!({"ttl": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = s
        .req(reqwest::Method::DELETE, "/v2/queues/metered/messages?pop=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .req(reqwest::Method::GET, "/v2/queues/metered/nothing-here")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let after = s.metrics().await;
    let delta = |series: &str| value(&after, series) - value(&before, series);
    // The registry is process-wide and other tests of this binary post at the same time, so
    // counters only ever grow by at least this test's own requests.
    assert!(delta(posted) >= 1.0, "{after}");
    assert!(delta("zaqar_messages_posted_total") >= 3.0);
    assert!(delta("zaqar_messages_claimed_total") >= 2.0);
    assert!(delta("zaqar_claims_created_total") >= 1.0);
    assert!(delta("zaqar_messages_deleted_total") >= 1.0);
    assert!(
        delta(
            r#"zaqar_http_request_duration_seconds_count{method="POST",route="/v2/queues/{queue}/messages"}"#
        ) >= 1.0
    );
    // Route templates, never raw paths: the queue name is not a label value.
    assert!(
        !after
            .lines()
            .any(|l| l.contains("route=") && l.contains("metered")),
        "{after}"
    );
    assert!(
        after.contains(r#"route="<unmatched>",status="404""#),
        "{after}"
    );
    assert!(after.contains("# TYPE zaqar_http_request_duration_seconds histogram"));
    assert!(after.contains(r#"zaqar_build_info{version=""#));

    // The depth sampler picks the queue up (it was used) within its 1 s interval.
    let text = wait_for(&s, "queue depth gauges", |t| {
        value(
            t,
            r#"zaqar_queue_messages{project="metrics-project",queue="metered",state="claimed"}"#,
        ) == 2.0
    })
    .await;
    assert_eq!(
        value(
            &text,
            r#"zaqar_project_messages{project="metrics-project"}"#
        ),
        2.0
    );
    assert_eq!(value(&text, "zaqar_backend_up"), 1.0);

    // Notification counters are there for the notifier to call.
    zaqar_core::metrics::notification_delivered("https");
    zaqar_core::metrics::notification_failed("mailto");
    let text = s.metrics().await;
    assert!(
        value(
            &text,
            r#"zaqar_notifications_delivered_total{kind="https"}"#
        ) >= 1.0
    );
    assert!(value(&text, r#"zaqar_notifications_failed_total{kind="mailto"}"#) >= 1.0);

    // Once the store is shut down, writes fail with 503, counted by operation.
    s.store.shutdown().await;
    let series = r#"zaqar_backend_errors_total{operation="messages:create"}"#;
    let before = value(&s.metrics().await, series);
    let r = s
        .req(reqwest::Method::POST, "/v2/queues/metered/messages")
        .json(&serde_json::json!({"messages": [{"body": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let text = s.metrics().await;
    assert_eq!(value(&text, series) - before, 1.0, "{text}");
    s.stop().await;
}

/// Readiness follows the store's ping. The embedded store still answers reads once shut down,
/// so this runs against Redis (`ZAQAR_TEST_REDIS_URL`, as the other Redis tests), whose ping
/// fails once the store is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_when_the_store_does_not_answer() {
    let Ok(url) = std::env::var("ZAQAR_TEST_REDIS_URL") else {
        assert!(
            std::env::var("ZAQAR_TEST_REQUIRE_BACKENDS").as_deref() != Ok("1"),
            "ZAQAR_TEST_REDIS_URL is required"
        );
        eprintln!("skipped: ZAQAR_TEST_REDIS_URL is not set");
        return;
    };
    let prefix = format!("zaqar-metrics-{}", uuid::Uuid::new_v4().simple());
    let s = Server::start_with(&[
        ("drivers", "message_store", "redis"),
        ("drivers:message_store:redis", "uri", &url),
        ("drivers:message_store:redis", "key_prefix", &prefix),
    ])
    .await;
    let readyz = || s.http.get(format!("{}/readyz", s.admin)).send();
    assert_eq!(readyz().await.unwrap().status(), 200);
    assert_eq!(value(&s.metrics().await, "zaqar_backend_up"), 1.0);
    s.store.shutdown().await;
    let r = readyz().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("unavailable"));
    assert_eq!(value(&s.metrics().await, "zaqar_backend_up"), 0.0);
    s.stop().await;
    // Leave that Redis as it was.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut con)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut con)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_connections_and_long_poll_waiters() {
    use futures_util::{SinkExt, StreamExt};
    let s = Server::start().await;
    let (mut ws, _) = tokio_tungstenite::connect_async(&s.ws).await.unwrap();
    wait_for(&s, "an open WebSocket connection", |t| {
        value(t, "zaqar_websocket_connections") >= 1.0
    })
    .await;
    let req = serde_json::json!({
        "action": "queue_list",
        "headers": {"Client-ID": CLIENT, "X-Project-ID": PROJECT},
        "body": {}
    });
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        req.to_string().into(),
    ))
    .await
    .unwrap();
    let _ = ws.next().await.unwrap().unwrap();
    let text = s.metrics().await;
    assert!(
        value(
            &text,
            r#"zaqar_websocket_requests_total{action="queue_list",status="200"}"#
        ) >= 1.0,
        "{text}"
    );
    ws.close(None).await.unwrap();
    drop(ws);
    wait_for(&s, "the WebSocket connection to be closed", |t| {
        value(t, "zaqar_websocket_connections") == 0.0
    })
    .await;

    // A long-polling listing waits on its queue until a message arrives.
    let poll = s
        .req(
            reqwest::Method::GET,
            "/v2/queues/waiting/messages?wait=10&echo=true",
        )
        .send();
    let poll = tokio::spawn(poll);
    wait_for(&s, "a long-poll waiter", |t| {
        value(t, "zaqar_longpoll_waiting_queues") >= 1.0
    })
    .await;
    let r = s
        .req(reqwest::Method::POST, "/v2/queues/waiting/messages")
        .json(&serde_json::json!({"messages": [{"body": "wake up"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = poll.await.unwrap().unwrap();
    assert_eq!(r.status(), 200);
    wait_for(&s, "no long-poll waiter", |t| {
        value(t, "zaqar_longpoll_waiting_queues") == 0.0
    })
    .await;
    s.stop().await;
}

/// A headless Chromium driven over the DevTools protocol (one page).
struct Browser {
    child: std::process::Child,
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// `None` when no Chromium is installed (`contrib/install-chromium.sh` installs it).
    async fn launch() -> Option<Browser> {
        let exe = std::env::var("ZAQAR_TEST_CHROMIUM").unwrap_or_else(|_| "chromium".into());
        let found = std::process::Command::new(&exe)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            assert!(
                std::env::var("ZAQAR_TEST_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "{exe} is required (contrib/install-chromium.sh)"
            );
            eprintln!("skipped: {exe} is not installed (contrib/install-chromium.sh)");
            return None;
        }
        let profile = tempfile::tempdir().unwrap();
        let child = std::process::Command::new(&exe)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let port_file = profile.path().join("DevToolsActivePort");
        let mut port = None;
        for _ in 0..300 {
            if let Some(p) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<u16>().ok()))
            {
                port = Some(p);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let port = port.expect("Chromium did not open its DevTools port");
        let targets: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{port}/json/list"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let url = targets
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_string();
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Some(Browser {
            child,
            ws,
            next_id: 0,
            _profile: profile,
        })
    }

    async fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        use futures_util::{SinkExt, StreamExt};
        self.next_id += 1;
        let id = self.next_id;
        let msg = serde_json::json!({"id": id, "method": method, "params": params});
        self.ws
            .send(tokio_tungstenite::tungstenite::Message::Text(
                msg.to_string().into(),
            ))
            .await
            .unwrap();
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(20), self.ws.next())
                .await
                .expect("DevTools answer")
                .unwrap()
                .unwrap();
            let Ok(text) = frame.to_text() else { continue };
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    async fn eval(&mut self, js: &str) -> serde_json::Value {
        let r = self
            .call(
                "Runtime.evaluate",
                serde_json::json!({"expression": js, "awaitPromise": true, "returnByValue": true}),
            )
            .await;
        assert!(r.get("exceptionDetails").is_none(), "{js}: {r}");
        r["result"]["value"].clone()
    }

    /// Waits (up to 15 s) until `condition` (a JavaScript expression) is true.
    async fn wait(&mut self, condition: &str) {
        for _ in 0..150 {
            if self.eval(&format!("!!({condition})")).await == true {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let page = self
            .eval("document.body ? document.body.innerText : ''")
            .await;
        panic!("timed out waiting for {condition}; page:\n{page}");
    }

    /// Types `value` into the input `id`.
    async fn fill(&mut self, id: &str, value: &str) {
        let js = format!(
            "(() => {{ const e = document.getElementById({}); e.value = {}; \
             e.dispatchEvent(new Event('input')); return true; }})()",
            serde_json::json!(id),
            serde_json::json!(value)
        );
        assert_eq!(self.eval(&js).await, true);
    }

    async fn click(&mut self, selector: &str) {
        let js = format!(
            "(() => {{ const e = document.querySelector({}); if (!e) return false; e.click(); \
             return true; }})()",
            serde_json::json!(selector)
        );
        assert_eq!(self.eval(&js).await, true, "no element {selector}");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The web console in a real browser: sign in, create a queue, post and peek, stats and the
/// chart, subscriptions, error display. Skips without Chromium unless
/// `ZAQAR_TEST_REQUIRE_BROWSER=1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_end_to_end_in_headless_chromium() {
    let Some(mut b) = Browser::launch().await else {
        return;
    };
    let s = Server::start_with(&[("admin", "console", "true")]).await;
    // The console is off by default: the plain admin listener has no /console.
    let plain = Server::start().await;
    let r = plain
        .http
        .get(format!("{}/console/", plain.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    plain.stop().await;
    let r = s
        .http
        .get(format!("{}/console/", s.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("script-src 'self'"));
    // The API beside it is authenticated as on the API port.
    let r = s
        .http
        .get(format!("{}/v2/queues", s.admin))
        .header("Client-ID", CLIENT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "no project, no access");

    b.call(
        "Emulation.setDeviceMetricsOverride",
        serde_json::json!({"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
    )
    .await;
    b.call(
        "Page.navigate",
        serde_json::json!({"url": format!("{}/console/", s.admin)}),
    )
    .await;
    b.wait("document.readyState === 'complete' && document.getElementById('connect')")
        .await;

    b.fill("project", PROJECT).await;
    b.click("#connect").await;
    b.wait("!document.getElementById('app').classList.contains('hidden')")
        .await;

    b.fill("new-queue", "ui-queue").await;
    b.click("#create-queue").await;
    b.wait("document.getElementById('queue-name').textContent === 'ui-queue'")
        .await;
    b.wait("document.querySelector('#queue-list button.selected')?.textContent === 'ui-queue'")
        .await;

    b.fill("post-body", r#"{"from": "chromium"}"#).await;
    b.click("#post").await;
    b.wait("document.getElementById('messages').textContent.includes('chromium')")
        .await;
    b.wait("document.getElementById('stat-total').textContent === '1'")
        .await;
    let r = s
        .req(
            reqwest::Method::GET,
            "/v2/queues/ui-queue/messages?echo=true",
        )
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["messages"][0]["body"],
        serde_json::json!({"from": "chromium"})
    );

    // The chart gets samples every 2 s, with the server's throughput from /metrics.
    b.wait("state.samples.length >= 2").await;

    b.fill("sub-subscriber", "http://127.0.0.1:9/console-hook")
        .await;
    b.click("#sub-create").await;
    b.wait("document.getElementById('subscriptions').textContent.includes('console-hook')")
        .await;
    let r = s
        .req(reqwest::Method::GET, "/v2/queues/ui-queue/subscriptions")
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["subscriptions"][0]["subscriber"],
        "http://127.0.0.1:9/console-hook"
    );
    b.click("#subscriptions button.danger").await;
    b.wait("!document.getElementById('subscriptions').textContent.includes('console-hook')")
        .await;

    // API errors are shown with Zaqar's title and status.
    b.fill("new-queue", "bad name!").await;
    b.click("#create-queue").await;
    b.wait("document.getElementById('error').textContent.includes('HTTP 400')")
        .await;

    let shot = b
        .call(
            "Page.captureScreenshot",
            serde_json::json!({"format": "png"}),
        )
        .await;
    if let Some(data) = shot["data"].as_str() {
        use base64::Engine;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap();
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console.png");
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
    }
    drop(b);
    s.stop().await;
}
