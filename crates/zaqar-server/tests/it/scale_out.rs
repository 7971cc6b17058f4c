//! Scale-out: three `zaqar-server` processes on 127.0.0.1:18801-18803 with pooling, the catalog
//! in PostgreSQL (`management_store = sqlalchemy`), and two pools (PostgreSQL and Redis). A
//! client spreads producers and consumers over the nodes. Checked: every acknowledged message is
//! claimed and deleted exactly once under live claims, no message is handed to two claims,
//! queues stay on the pool the catalog names, and killing one node (SIGKILL) mid-load loses
//! nothing acknowledged (a claim made through the killed node whose holder died with it hides
//! its messages until the claim expires; they are then consumed). Prints the throughput of one node and of three nodes on the same
//! backends.
//!
//! `ZAQAR_SCALE_OUT_MESSAGES` (default 3000) sets the messages per phase and
//! `ZAQAR_SCALE_OUT_CLIENTS` (default 6) the producers and the consumers each.
//!
//! Needs `ZAQAR_TEST_REDIS_URL` and `ZAQAR_TEST_POSTGRES_URL` (skipped without them unless
//! `ZAQAR_TEST_REQUIRE_BACKENDS=1`). Run by `scripts/test-backends.sh` as backend `scaleout`.

use zaqar_testkit::postgres_support;
use zaqar_testkit::redis_support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const PORTS: [u16; 3] = [18801, 18802, 18803];
const CLIENT: &str = "3381af92-2b9e-11e3-b191-71861300734c";
const QUEUES: usize = 12;

struct Node {
    child: std::process::Child,
    base: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[allow(clippy::zombie_processes)] // reaped by Node::drop
fn spawn_node(port: u16, pg: &str, schema: &str, dir: &std::path::Path) -> Node {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_zaqar-server"));
    let set = |c: &mut std::process::Command, v: String| {
        c.args(["--set", &v]);
    };
    cmd.args(["--port", &port.to_string()]);
    set(&mut cmd, "DEFAULT.pooling=true".into());
    set(&mut cmd, "DEFAULT.admin_mode=true".into());
    set(&mut cmd, "drivers.management_store=sqlalchemy".into());
    set(
        &mut cmd,
        format!("drivers:management_store:sqlalchemy.uri={pg}"),
    );
    set(
        &mut cmd,
        format!("drivers:management_store:sqlalchemy.schema={schema}"),
    );
    set(&mut cmd, "drivers:transport:websocket.port=0".into());
    set(
        &mut cmd,
        format!(
            "drivers:message_store:embedded.path={}",
            dir.join(port.to_string()).display()
        ),
    );
    let log = std::env::var("ZAQAR_TEST_SERVER_LOG").is_ok();
    cmd.env("ZAQAR_LOG", if log { "info" } else { "error" })
        .stdout(std::process::Stdio::null())
        .stderr(if log {
            std::process::Stdio::inherit()
        } else {
            std::process::Stdio::null()
        });
    Node {
        child: cmd.spawn().expect("spawn zaqar-server"),
        base: format!("http://127.0.0.1:{port}"),
    }
}

async fn wait_ready(http: &reqwest::Client, node: &mut Node) {
    for _ in 0..400 {
        if http.get(format!("{}/", node.base)).send().await.is_ok() {
            return;
        }
        assert!(
            matches!(node.child.try_wait(), Ok(None)),
            "zaqar-server on {} exited at start-up",
            node.base
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("zaqar-server on {} did not start", node.base);
}

fn req(
    http: &reqwest::Client,
    m: reqwest::Method,
    url: String,
    project: &str,
) -> reqwest::RequestBuilder {
    http.request(m, url)
        .header("Client-ID", CLIENT)
        .header("X-Project-ID", project)
        .header("X-Roles", "admin")
}

/// What one load phase saw.
#[derive(Default)]
struct Tally {
    /// Body keys of posts answered 201.
    acked: HashSet<u64>,
    /// Body keys of posts that failed (may or may not exist).
    unacked: HashSet<u64>,
    /// Message id → claims that handed it out.
    claimed: HashMap<String, usize>,
    /// Body key → successful deletions.
    deleted: HashMap<u64, usize>,
}

/// Round-robin over the nodes still marked alive.
struct Picker {
    bases: Arc<Vec<String>>,
    alive: Arc<Vec<AtomicBool>>,
    rr: AtomicUsize,
}

impl Picker {
    /// The base URL of the next live node.
    fn next(&self) -> String {
        loop {
            let i = self.rr.fetch_add(1, Ordering::Relaxed) % self.bases.len();
            if self.alive[i].load(Ordering::Relaxed) {
                return self.bases[i].clone();
            }
        }
    }
}

/// What the producers and consumers of one load phase share.
struct Phase {
    http: reqwest::Client,
    pick: Picker,
    project: String,
    /// Messages to post; body keys run from 0 to `total`.
    total: u64,
    claim_ttl: u64,
    tally: Mutex<Tally>,
    /// The first body key of the next batch to post.
    next_key: AtomicUsize,
    producers_done: AtomicBool,
    /// Fired once a third of the messages are posted, to kill a node mid-load.
    kill: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl Phase {
    /// Posts batches of 10 messages, round-robin over the queues, until `total` are taken.
    async fn produce(self: Arc<Self>, p: usize) {
        let mut n = p;
        loop {
            let first = self.next_key.fetch_add(10, Ordering::Relaxed) as u64;
            if first >= self.total {
                return;
            }
            if first >= self.total / 3 {
                if let Some(k) = self.kill.lock().unwrap().take() {
                    let _ = k.send(());
                }
            }
            let keys: Vec<u64> = (first..(first + 10).min(self.total)).collect();
            let queue = format!("q{}", n % QUEUES);
            n += 1;
            let ok = self.post_batch(&queue, &keys).await;
            let mut t = self.tally.lock().unwrap();
            for k in keys {
                if ok {
                    t.acked.insert(k);
                } else {
                    t.unacked.insert(k);
                }
            }
        }
    }

    /// Posts one message per key to `queue`; whether the post was acknowledged (201).
    async fn post_batch(&self, queue: &str, keys: &[u64]) -> bool {
        let msgs: Vec<Value> = keys
            .iter()
            .map(|k| json!({"body": {"k": k}, "ttl": 3600}))
            .collect();
        let r = req(
            &self.http,
            reqwest::Method::POST,
            format!("{}/v2/queues/{queue}/messages", self.pick.next()),
            &self.project,
        )
        .json(&json!({ "messages": msgs }))
        .send()
        .await;
        matches!(&r, Ok(r) if r.status() == 201)
    }

    /// Claims and deletes messages, round-robin over the queues, until the producers are done
    /// and every queue has come back empty three times in a row.
    async fn consume(self: Arc<Self>, c: usize) {
        let mut n = c;
        let mut empty_rounds = 0;
        loop {
            let queue = format!("q{}", n % QUEUES);
            n += 1;
            let claimed = self.claim(&queue).await;
            if claimed.is_empty() {
                if self.producers_done.load(Ordering::Relaxed) {
                    empty_rounds += 1;
                    if empty_rounds > 3 * QUEUES {
                        return;
                    }
                } else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                continue;
            }
            empty_rounds = 0;
            for m in claimed {
                self.delete_claimed(&m).await;
            }
        }
    }

    /// Claims up to 10 messages of `queue`; none when the claim fails.
    async fn claim(&self, queue: &str) -> Vec<Value> {
        let r = req(
            &self.http,
            reqwest::Method::POST,
            format!("{}/v2/queues/{queue}/claims?limit=10", self.pick.next()),
            &self.project,
        )
        .json(&json!({"ttl": self.claim_ttl, "grace": 60}))
        .send()
        .await;
        match r {
            Ok(r) if r.status() == 201 => r
                .json::<Value>()
                .await
                .ok()
                .and_then(|v| v["messages"].as_array().cloned())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Records the claimed message `m` and deletes it with its claim, retrying through any
    /// live node.
    async fn delete_claimed(&self, m: &Value) {
        let href = m["href"].as_str().unwrap_or_default().to_string();
        let id = href
            .split('?')
            .next()
            .and_then(|p| p.rsplit('/').next())
            .unwrap_or_default()
            .to_string();
        let k = m["body"]["k"].as_u64().expect("body key");
        *self.tally.lock().unwrap().claimed.entry(id).or_default() += 1;
        // The claim lives in the backend: any live node can delete with it.
        let mut deleted = false;
        for _ in 0..20 {
            let r = req(
                &self.http,
                reqwest::Method::DELETE,
                format!("{}{href}", self.pick.next()),
                &self.project,
            )
            .send()
            .await;
            if matches!(&r, Ok(r) if r.status() == 204) {
                deleted = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(deleted, "could not delete {href}");
        *self.tally.lock().unwrap().deleted.entry(k).or_default() += 1;
    }
}

/// The producers and the consumers each of a phase: `ZAQAR_SCALE_OUT_CLIENTS`, default 6.
fn clients_per_role() -> usize {
    std::env::var("ZAQAR_SCALE_OUT_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6)
}

/// Posts `total` messages and consumes them through `bases`, skipping the nodes `alive` marks
/// dead, with `kill` fired once a third of the messages are posted. Returns the tally and the
/// seconds from the first post to the last delete.
async fn run_phase(
    bases: Arc<Vec<String>>,
    alive: Arc<Vec<AtomicBool>>,
    project: &str,
    total: u64,
    claim_ttl: u64,
    kill: Option<tokio::sync::oneshot::Sender<()>>,
) -> (Tally, f64) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(16)
        .build()
        .unwrap();
    let phase = Arc::new(Phase {
        http,
        pick: Picker {
            bases,
            alive,
            rr: AtomicUsize::new(0),
        },
        project: project.to_string(),
        total,
        claim_ttl,
        tally: Mutex::new(Tally::default()),
        next_key: AtomicUsize::new(0),
        producers_done: AtomicBool::new(false),
        kill: Mutex::new(kill),
    });
    let clients = clients_per_role();
    let start = Instant::now();
    let producers: Vec<_> = (0..clients)
        .map(|p| tokio::spawn(phase.clone().produce(p)))
        .collect();
    let consumers: Vec<_> = (0..clients)
        .map(|c| tokio::spawn(phase.clone().consume(c)))
        .collect();
    for p in producers {
        p.await.unwrap();
    }
    phase.producers_done.store(true, Ordering::Relaxed);
    for c in consumers {
        c.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let tally = Arc::try_unwrap(phase)
        .ok()
        .expect("tasks done")
        .tally
        .into_inner()
        .unwrap();
    (tally, secs)
}

fn check(tally: &Tally, phase: &str) {
    let twice: Vec<_> = tally.claimed.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "{phase}: messages claimed twice: {twice:?}"
    );
    let lost: Vec<_> = tally
        .acked
        .iter()
        .filter(|k| !tally.deleted.contains_key(k))
        .collect();
    assert!(
        lost.is_empty(),
        "{phase}: acknowledged but never consumed: {} messages",
        lost.len()
    );
    let dup: Vec<_> = tally.deleted.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dup.is_empty(), "{phase}: consumed more than once: {dup:?}");
    let phantom: Vec<_> = tally
        .deleted
        .keys()
        .filter(|k| !tally.acked.contains(k) && !tally.unacked.contains(k))
        .collect();
    assert!(
        phantom.is_empty(),
        "{phase}: consumed messages never posted"
    );
}

/// Starts the three nodes, sharing the catalog schema, and waits until each answers.
async fn start_nodes(
    http: &reqwest::Client,
    pg: &str,
    catalog_schema: &str,
    dir: &std::path::Path,
) -> Vec<Node> {
    let mut nodes: Vec<Node> = PORTS
        .iter()
        .map(|p| spawn_node(*p, pg, catalog_schema, dir))
        .collect();
    for n in nodes.iter_mut() {
        wait_ready(http, n).await;
    }
    nodes
}

/// Registers the two pools through node 1 and checks that node 3 reads them from the shared
/// catalog.
async fn register_pools(http: &reqwest::Client, nodes: &[Node], pools: [(&str, String, Value); 2]) {
    for (name, uri, options) in pools {
        let r = req(
            http,
            reqwest::Method::PUT,
            format!("{}/v2/pools/{name}", nodes[0].base),
            "admin",
        )
        .json(&json!({"weight": 100, "uri": uri, "options": options}))
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    let r = req(
        http,
        reqwest::Method::GET,
        format!("{}/v2/pools", nodes[2].base),
        "admin",
    )
    .send()
    .await
    .unwrap();
    let listed: Value = r.json().await.unwrap();
    assert_eq!(listed["pools"].as_array().unwrap().len(), 2, "{listed}");
}

/// Messages per phase: `ZAQAR_SCALE_OUT_MESSAGES`, default 3000.
fn messages_per_phase() -> u64 {
    std::env::var("ZAQAR_SCALE_OUT_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

/// Liveness flags for `n` nodes, all alive.
fn all_alive(n: usize) -> Arc<Vec<AtomicBool>> {
    Arc::new((0..n).map(|_| AtomicBool::new(true)).collect::<Vec<_>>())
}

/// The body keys of every message of `project` that the node at `live` still stores, claimed
/// or not.
async fn stored_keys(http: &reqwest::Client, live: &str, project: &str) -> HashSet<u64> {
    let mut present = HashSet::new();
    for i in 0..QUEUES {
        let mut next = format!("/v2/queues/q{i}/messages?include_claimed=true&echo=true&limit=20");
        loop {
            let r = req(http, reqwest::Method::GET, format!("{live}{next}"), project)
                .send()
                .await
                .unwrap();
            if r.status() != 200 {
                break;
            }
            let page: Value = r.json().await.unwrap();
            let msgs = page["messages"].as_array().cloned().unwrap_or_default();
            if msgs.is_empty() {
                break;
            }
            present.extend(msgs.iter().filter_map(|m| m["body"]["k"].as_u64()));
            match page["links"][0]["href"].as_str() {
                Some(h) => next = h.to_string(),
                None => break,
            }
        }
    }
    present
}

/// Phase 3: three nodes, `victim` (the third) killed with SIGKILL after a third of the
/// messages. What its orphaned claims hide must still be stored, and is consumed once those
/// claims expire. Returns the tally of the whole phase, drain included.
async fn run_phase_killing_a_node(
    http: &reqwest::Client,
    victim: Node,
    bases: &[String],
    total: u64,
) -> Tally {
    let alive = all_alive(3);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let alive_k = alive.clone();
    let (victim_base, http_k) = (bases[2].clone(), http.clone());
    let killer = tokio::spawn(async move {
        let _ = rx.await;
        // A claim made through the victim whose holder "dies" with it: its messages must come
        // back when the claim expires, not be lost.
        let _ = req(
            &http_k,
            reqwest::Method::POST,
            format!("{victim_base}/v2/queues/q0/claims?limit=5"),
            "scale-kill",
        )
        .json(&json!({"ttl": 60, "grace": 60}))
        .send()
        .await;
        // Clients stop choosing it only after it is gone: some requests fail on the way.
        drop(victim);
        alive_k[2].store(false, Ordering::Relaxed);
    });
    // Claims of 60 s: a claim whose response died with the node hides its messages that long.
    let (mut killed, _) = run_phase(
        Arc::new(bases.to_vec()),
        alive.clone(),
        "scale-kill",
        total,
        60,
        Some(tx),
    )
    .await;
    killer.await.unwrap();
    let missing: Vec<u64> = killed
        .acked
        .iter()
        .filter(|k| !killed.deleted.contains_key(k))
        .copied()
        .collect();
    if !missing.is_empty() {
        // Still stored (held by an orphaned claim), not lost: list them with include_claimed.
        let present = stored_keys(http, &bases[0], "scale-kill").await;
        let gone: Vec<_> = missing.iter().filter(|k| !present.contains(k)).collect();
        assert!(gone.is_empty(), "acknowledged and gone: {gone:?}");
        eprintln!(
            "node killed: {} acknowledged messages held by claims whose responses were lost \
             with the node; consuming them after the claims expire",
            missing.len()
        );
        tokio::time::sleep(Duration::from_secs(62)).await;
        let (drained, _) = run_phase(
            Arc::new(bases[..2].to_vec()),
            alive,
            "scale-kill",
            0,
            60,
            None,
        )
        .await;
        for (id, n) in drained.claimed {
            *killed.claimed.entry(id).or_default() += n;
        }
        for (k, n) in drained.deleted {
            *killed.deleted.entry(k).or_default() += n;
        }
    }
    killed
}

/// Where the test's pools live: the catalog and pool schemas in PostgreSQL, the key prefix in
/// Redis.
struct Backends<'a> {
    pg: &'a str,
    redis: &'a str,
    catalog_schema: &'a str,
    pool_schema: &'a str,
    prefix: &'a str,
}

/// Each queue of the three phases is bound to one pool in the catalog, exists on that pool
/// and on no other, and both pools hold queues.
async fn assert_queues_stay_on_their_pools(b: &Backends<'_>) {
    let catalog: Vec<(String, String, String)> = {
        use sqlx::{Connection, Row};
        let mut c = sqlx::PgConnection::connect(b.pg).await.unwrap();
        let rows = sqlx::query(&format!(
            "SELECT project, queue, pool FROM {}.zaqar_catalog ORDER BY 1, 2",
            b.catalog_schema
        ))
        .fetch_all(&mut c)
        .await
        .unwrap();
        rows.iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    };
    let clock: zaqar_core::clock::SharedClock = Arc::new(zaqar_core::clock::SystemClock);
    let pg_store = postgres_support::open(b.pg, b.pool_schema, clock.clone()).await;
    let redis_store = redis_support::open(b.redis, b.prefix, clock).await;
    use zaqar_core::store::QueueStore;
    let mut per_pool: HashMap<String, usize> = HashMap::new();
    for project in ["scale-one", "scale-three", "scale-kill"] {
        for i in 0..QUEUES {
            let queue = format!("q{i}");
            let bound: Vec<&(String, String, String)> = catalog
                .iter()
                .filter(|(p, q, _)| p == project && *q == queue)
                .collect();
            assert_eq!(bound.len(), 1, "{project}/{queue}: {bound:?}");
            let pool = &bound[0].2;
            *per_pool.entry(pool.clone()).or_default() += 1;
            let qr = zaqar_core::model::QueueRef::new(project, &queue);
            let on_pg = pg_store.get_queue(qr).await.unwrap().is_some();
            let on_redis = redis_store.get_queue(qr).await.unwrap().is_some();
            assert_eq!(
                (on_pg, on_redis),
                (pool == "pg", pool == "redis"),
                "{project}/{queue} bound to {pool}"
            );
        }
    }
    assert_eq!(per_pool.len(), 2, "both pools hold queues: {per_pool:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_two_pools_catalog_in_postgres() {
    let Some(redis) = redis_support::backend(redis_support::STANDALONE) else {
        return;
    };
    let Some(pg) = postgres_support::backend() else {
        return;
    };
    let schemas = postgres_support::Schemas::new(pg.clone());
    let prefixes = redis_support::Prefixes::new(redis.clone());
    let catalog_schema = schemas.fresh();
    let pool_schema = schemas.fresh();
    let prefix = prefixes.fresh();
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();

    let mut nodes = start_nodes(&http, &pg, &catalog_schema, dir.path()).await;
    // Register the pools through node 1; the others read them from the shared catalog.
    register_pools(
        &http,
        &nodes,
        [
            ("pg", pg.clone(), json!({"schema": pool_schema})),
            ("redis", redis.clone(), json!({"key_prefix": prefix})),
        ],
    )
    .await;

    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    let total = messages_per_phase();

    // 1. One node.
    let (one, one_secs) = run_phase(
        Arc::new(vec![bases[0].clone()]),
        Arc::new(vec![AtomicBool::new(true)]),
        "scale-one",
        total,
        300,
        None,
    )
    .await;
    check(&one, "one node");
    // 2. Three nodes, same backends.
    let (three, three_secs) = run_phase(
        Arc::new(bases.clone()),
        all_alive(3),
        "scale-three",
        total,
        300,
        None,
    )
    .await;
    check(&three, "three nodes");
    // 3. Three nodes, node 3 killed (SIGKILL) after a third of the messages.
    let victim = nodes.pop().unwrap();
    let killed = run_phase_killing_a_node(&http, victim, &bases, total).await;
    check(&killed, "node killed");

    // Queues stay on the pool the catalog names (and exist on no other).
    assert_queues_stay_on_their_pools(&Backends {
        pg: &pg,
        redis: &redis,
        catalog_schema: &catalog_schema,
        pool_schema: &pool_schema,
        prefix: &prefix,
    })
    .await;

    let rate = |t: &Tally, s: f64| t.acked.len() as f64 / s;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    eprintln!(
        "scale-out throughput ({cores} cores for client, servers and backends) (post + claim + delete, {total} messages, debug build unless \
         built with --release): 1 node {:.0} msg/s ({one_secs:.1} s); 3 nodes {:.0} msg/s \
         ({three_secs:.1} s); ratio {:.2}; node killed: {} acknowledged, {} unacknowledged, \
         all acknowledged consumed once",
        rate(&one, one_secs),
        rate(&three, three_secs),
        rate(&three, three_secs) / rate(&one, one_secs),
        killed.acked.len(),
        killed.unacked.len()
    );
    drop(nodes);
}
