//! Shared by the Redis test files: finding the test Redis (standalone at
//! `ZAQAR_TEST_REDIS_URL`, cluster at `ZAQAR_TEST_REDIS_CLUSTER_URL`), skipping when it is not
//! configured (unless `ZAQAR_TEST_REQUIRE_BACKENDS=1`), opening stores under a unique key prefix
//! and deleting that prefix's keys afterwards.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use zaqar_core::clock::SharedClock;
use zaqar_server::config::RedisStoreConfig;
use zaqar_storage::redis::RedisStore;

pub const STANDALONE: &str = "ZAQAR_TEST_REDIS_URL";
pub const CLUSTER: &str = "ZAQAR_TEST_REDIS_CLUSTER_URL";

pub fn required() -> bool {
    std::env::var("ZAQAR_TEST_REQUIRE_BACKENDS").is_ok_and(|v| v == "1")
}

/// `host:port` pairs of a `redis://` or `redis+cluster://` URL.
pub fn hosts(url: &str) -> Vec<String> {
    let rest = url.split_once("://").map(|x| x.1).unwrap_or(url);
    let rest = rest.split(['/', '?']).next().unwrap_or("");
    let rest = rest.rsplit_once('@').map(|x| x.1).unwrap_or(rest);
    rest.split(',')
        .map(|h| {
            if h.contains(':') {
                h.to_string()
            } else {
                format!("{h}:6379")
            }
        })
        .collect()
}

fn reachable(url: &str) -> bool {
    hosts(url).iter().all(|h| {
        use std::net::ToSocketAddrs;
        h.to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .is_some_and(|a| {
                std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok()
            })
    })
}

/// Prints a skip notice once per variable and test binary, past the test harness' output
/// capture (so it shows in a plain `cargo test` run).
fn skip_notice(var: &str, why: &str) {
    use std::io::Write;
    static SHOWN: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut shown = SHOWN.lock().unwrap();
    if !shown.iter().any(|v| v == var) {
        shown.push(var.to_string());
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: Redis tests need {var} ({why}); set ZAQAR_TEST_REQUIRE_BACKENDS=1 to fail instead"
        );
    }
}

/// The URL in `var`, or `None` (after a notice) when the backend is not configured or not
/// reachable and not required. Panics when it is required but missing or unreachable.
pub fn backend(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => {
            if reachable(&url) {
                Some(url)
            } else if required() {
                panic!("{var}={url} is not reachable and ZAQAR_TEST_REQUIRE_BACKENDS=1");
            } else {
                skip_notice(var, &format!("{url} is not reachable"));
                None
            }
        }
        _ => {
            if required() {
                panic!("{var} is not set and ZAQAR_TEST_REQUIRE_BACKENDS=1");
            }
            skip_notice(var, "not set");
            None
        }
    }
}

pub fn unique_prefix() -> String {
    format!("zqtest:{}", uuid::Uuid::new_v4().simple())
}

pub fn config(prefix: &str) -> RedisStoreConfig {
    RedisStoreConfig {
        key_prefix: prefix.to_string(),
        connect_timeout_ms: 2000,
        operation_timeout_ms: 10_000,
        gc_interval_secs: 3600,
    }
}

pub async fn open(url: &str, prefix: &str, clock: SharedClock) -> Arc<RedisStore> {
    RedisStore::open(url, &config(prefix), clock)
        .await
        .expect("open the Redis store")
}

/// Every master of the Redis at `url` (one for standalone; all masters of a cluster).
fn masters(url: &str) -> Vec<String> {
    let first = hosts(url).into_iter().next().unwrap_or_default();
    if let Some((_, query)) = url.split_once("?master=") {
        // Sentinel: ask it where the master is.
        let name = query.split('&').next().unwrap_or(query);
        let Ok(client) = redis::Client::open(format!("redis://{first}")) else {
            return Vec::new();
        };
        let Ok(mut c) = client.get_connection_with_timeout(Duration::from_secs(2)) else {
            return Vec::new();
        };
        let addr: Vec<String> = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(name)
            .query(&mut c)
            .unwrap_or_default();
        return match addr.as_slice() {
            [h, p] => vec![format!("redis://{h}:{p}")],
            _ => Vec::new(),
        };
    }
    if !url.starts_with("redis+cluster") {
        let db = url
            .split_once("://")
            .and_then(|(_, r)| r.split_once('/'))
            .map(|(_, d)| d.split('?').next().unwrap_or("0").to_string())
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "0".into());
        return vec![format!("redis://{first}/{db}")];
    }
    let Ok(client) = redis::Client::open(format!("redis://{first}")) else {
        return Vec::new();
    };
    let Ok(mut c) = client.get_connection_with_timeout(Duration::from_secs(2)) else {
        return Vec::new();
    };
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query(&mut c)
        .unwrap_or_default();
    nodes
        .lines()
        .filter(|l| l.contains("master"))
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|a| format!("redis://{}", a.split('@').next().unwrap_or(a)))
        .collect()
}

/// Deletes every key under `prefix` (SCAN + UNLINK on every master).
pub fn delete_prefix(url: &str, prefix: &str) {
    for m in masters(url) {
        let Ok(client) = redis::Client::open(m.as_str()) else {
            continue;
        };
        let Ok(mut c) = client.get_connection_with_timeout(Duration::from_secs(2)) else {
            continue;
        };
        let mut cursor: u64 = 0;
        loop {
            let r: redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}:*"))
                .arg("COUNT")
                .arg(1000)
                .query(&mut c);
            let Ok((next, keys)) = r else { break };
            for k in keys {
                let _: redis::RedisResult<i64> = redis::cmd("UNLINK").arg(k).query(&mut c);
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
}

/// Runs one command on every master, ignoring errors (on a cluster only the master owning the
/// key's slot accepts it; the others answer MOVED).
pub fn on_every_master(url: &str, args: &[&str]) {
    for m in masters(url) {
        let Ok(client) = redis::Client::open(m.as_str()) else {
            continue;
        };
        let Ok(mut c) = client.get_connection_with_timeout(Duration::from_secs(2)) else {
            continue;
        };
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        let _: redis::RedisResult<redis::Value> = cmd.query(&mut c);
    }
}

/// Number of keys under `prefix` (on every master).
pub fn count_prefix(url: &str, prefix: &str) -> usize {
    let mut n = 0;
    for m in masters(url) {
        let client = redis::Client::open(m.as_str()).unwrap();
        let mut c = client.get_connection().unwrap();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}:*"))
                .arg("COUNT")
                .arg(1000)
                .query(&mut c)
                .unwrap();
            n += keys.len();
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    n
}

/// Remembers the prefixes handed out and deletes their keys when dropped.
pub struct Prefixes {
    pub url: String,
    used: Mutex<Vec<String>>,
}

impl Prefixes {
    pub fn new(url: String) -> Prefixes {
        Prefixes {
            url,
            used: Mutex::new(Vec::new()),
        }
    }

    pub fn fresh(&self) -> String {
        let p = unique_prefix();
        self.used.lock().unwrap().push(p.clone());
        p
    }
}

impl Drop for Prefixes {
    fn drop(&mut self) {
        for p in self.used.lock().unwrap().drain(..) {
            delete_prefix(&self.url, &p);
        }
    }
}

pub const CLIENT: &str = "3381af92-2b9e-11e3-b191-71861300734c";
pub const OTHER_CLIENT: &str = "9d6d6b5c-9a8f-4f4e-8a0d-1f2e3d4c5b6a";

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `zaqar-server` process using the Redis store; killed when dropped.
pub struct Server {
    pub child: std::process::Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Whether the process is still running (it must never die of a Redis failure).
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// Starts the server binary `bin` (the test's `CARGO_BIN_EXE_zaqar-server`) on a free port
/// over the Redis at `url` with key prefix `prefix`; `extra` are further
/// `--set SECTION.OPTION=VALUE` arguments.
// The child is reaped by `Server::drop`, which clippy cannot see through the struct.
#[allow(clippy::zombie_processes)]
pub async fn start_server(bin: &str, url: &str, prefix: &str, extra: &[&str]) -> Server {
    let port = free_port();
    let mut cmd = std::process::Command::new(bin);
    cmd.args(["--port", &port.to_string()])
        .args(["--set", "drivers.message_store=redis"])
        .args(["--set", &format!("drivers:message_store:redis.uri={url}")])
        .args([
            "--set",
            &format!("drivers:message_store:redis.key_prefix={prefix}"),
        ])
        .args(["--set", "drivers:transport:websocket.port=0"]);
    for e in extra {
        cmd.args(["--set", e]);
    }
    let log = std::env::var("ZAQAR_TEST_SERVER_LOG").is_ok();
    cmd.env("ZAQAR_LOG", if log { "info" } else { "error" })
        .stdout(std::process::Stdio::null())
        .stderr(if log {
            std::process::Stdio::inherit()
        } else {
            std::process::Stdio::null()
        });
    // The guard owns the child before anything below can panic.
    let mut server = Server {
        child: cmd.spawn().expect("spawn zaqar-server"),
        base: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    for _ in 0..400 {
        if http.get(format!("{}/", server.base)).send().await.is_ok() {
            return server;
        }
        assert!(server.alive(), "zaqar-server exited at start-up");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("zaqar-server did not start");
}

pub fn req(
    http: &reqwest::Client,
    m: reqwest::Method,
    url: String,
    project: &str,
    client: &str,
) -> reqwest::RequestBuilder {
    http.request(m, url)
        .header("Client-ID", client)
        .header("X-Project-ID", project)
        .header("Content-Type", "application/json")
}
