//! The PostgreSQL store when the database goes away and comes back: operations fail with 503
//! and a clear description within the acquire timeout, then succeed again by themselves, and
//! the long-poll listener reconnects. The database is reached through a TCP proxy the test
//! can cut. Skipped (with a notice) without `ZAQAR_TEST_POSTGRES_URL`, unless
//! `ZAQAR_TEST_REQUIRE_BACKENDS=1`.

use zaqar_testkit::postgres_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use zaqar_core::clock::ManualClock;
use zaqar_core::hub::Hub;
use zaqar_core::model::{ClaimParams, ListQuery, NewMessage, QueueRef};
use zaqar_core::store::{ClaimStore, DataStore, MessageStore};
use zaqar_storage::postgres::PostgresStore;

use postgres_support::{backend, config, open, Schemas};

const C1: &str = "3381af92-2b9e-11e3-b191-71861300734c";

fn msg(n: i64) -> NewMessage {
    NewMessage {
        body: serde_json::value::RawValue::from_string(json!({ "n": n }).to_string()).unwrap(),
        ttl: 600,
        delay: 0,
        checksum: None,
        encrypted: false,
    }
}

fn all() -> ListQuery {
    ListQuery {
        marker: None,
        limit: 100,
        exclude_client: None,
        include_claimed: true,
        include_delayed: true,
    }
}

/// `url` with its host and port replaced by `addr`; also returns the original host:port.
fn via(url: &str, addr: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, rest) = match rest.split_once('@') {
        Some((u, r)) => (format!("{u}@"), r),
        None => (String::new(), rest),
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let mut upstream = rest[..end].to_string();
    if !upstream.contains(':') {
        upstream.push_str(":5432");
    }
    (
        format!("{scheme}://{userinfo}{addr}{}", &rest[end..]),
        upstream,
    )
}

/// A TCP proxy to the database that can be cut (listener and every connection closed) and
/// restored on the same port.
struct Proxy {
    addr: String,
    upstream: String,
    task: Option<JoinHandle<()>>,
}

impl Proxy {
    async fn start(addr: &str, upstream: &str) -> Proxy {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let up = upstream.to_string();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let up = up.clone();
                conns.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&up).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Proxy {
            addr,
            upstream: upstream.to_string(),
            task: Some(task),
        }
    }

    /// Closes the listener and every proxied connection (the JoinSet aborts them on drop).
    async fn cut(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    async fn restore(&mut self) {
        let mut again = Proxy::start(&self.addr, &self.upstream).await;
        assert_eq!(again.addr, self.addr);
        self.task = again.task.take();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_fails_fast_and_recovers() {
    let Some(url) = backend() else { return };
    let schemas = Schemas::new(url.clone());
    let schema = schemas.fresh();
    let (_, upstream) = via(&url, "x");
    let mut proxy = Proxy::start("127.0.0.1:0", &upstream).await;
    let (proxied_url, _) = via(&url, &proxy.addr);
    let clock = ManualClock::default();
    let mut cfg = config(&schema);
    cfg.acquire_timeout_secs = 1;
    cfg.max_connections = 4;
    let s = PostgresStore::open(&proxied_url, &cfg, Arc::new(clock.clone()))
        .await
        .unwrap();
    let hub = Hub::new();
    s.attach_hub(hub.clone());
    // Another node, connected directly, to check that wake-ups flow again after the outage.
    let direct = open(&url, &schema, Arc::new(clock.clone())).await;
    direct.attach_hub(Hub::new());
    let qa = QueueRef::new("p", "outage");
    s.post_messages(qa, C1, vec![msg(1)]).await.unwrap();

    proxy.cut().await;
    for round in 0..2 {
        let started = Instant::now();
        let errors = [
            s.post_messages(qa, C1, vec![msg(2)]).await.err(),
            s.list_messages(qa, &all()).await.err(),
            s.create_claim(
                qa,
                ClaimParams {
                    ttl: 60,
                    grace: 60,
                    limit: 1,
                    dead_letter: None,
                },
            )
            .await
            .err(),
            s.ping().await.err(),
        ];
        let elapsed = started.elapsed();
        for e in errors {
            let e = e.expect("an operation succeeded while the database was unreachable");
            assert_eq!(e.status(), 503, "round {round}: {e:?}");
            assert!(e.description().contains("PostgreSQL"), "{e}");
        }
        assert!(
            elapsed < Duration::from_secs(4 * 2 + 2),
            "round {round}: four failures took {elapsed:?} (acquire timeout 1 s)"
        );
    }

    proxy.restore().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match s.list_messages(qa, &all()).await {
            Ok(ms) => {
                assert_eq!(ms.len(), 1, "nothing was written during the outage");
                break;
            }
            Err(e) if Instant::now() < deadline => {
                assert_eq!(e.status(), 503);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the store did not recover: {e}"),
        }
    }
    s.post_messages(qa, C1, vec![msg(3)]).await.unwrap();
    assert!(s
        .create_claim(
            qa,
            ClaimParams {
                ttl: 60,
                grace: 60,
                limit: 5,
                dead_letter: None
            }
        )
        .await
        .unwrap()
        .is_some());

    // The listener reconnected: a post through the other node wakes this node's waiters.
    let deadline = Instant::now() + Duration::from_secs(15);
    let signal = hub.watch("p", "wake");
    loop {
        let notified = signal.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        direct
            .post_messages(QueueRef::new("p", "wake"), C1, vec![msg(4)])
            .await
            .unwrap();
        if tokio::time::timeout(Duration::from_millis(500), notified)
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the long-poll listener did not reconnect"
        );
    }
    s.shutdown().await;
    direct.shutdown().await;
}
