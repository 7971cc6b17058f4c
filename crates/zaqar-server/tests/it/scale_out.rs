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

/// Posts `total` messages and consumes them through `nodes` (indexes into `bases`), with
/// `kill` killing a node once a third of the messages are posted. Returns the tally and the
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
    let tally = Arc::new(Mutex::new(Tally::default()));
    let next_key = Arc::new(AtomicUsize::new(0));
    let producers_done = Arc::new(AtomicBool::new(false));
    let rr = Arc::new(AtomicUsize::new(0));
    let kill = Arc::new(Mutex::new(kill));
    let pick = {
        let bases = bases.clone();
        let alive = alive.clone();
        let rr = rr.clone();
        move || loop {
            let i = rr.fetch_add(1, Ordering::Relaxed) % bases.len();
            if alive[i].load(Ordering::Relaxed) {
                return bases[i].clone();
            }
        }
    };
    let clients: usize = std::env::var("ZAQAR_SCALE_OUT_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let start = Instant::now();
    let mut producers = Vec::new();
    for p in 0..clients {
        let (http, tally, next_key, pick, kill) = (
            http.clone(),
            tally.clone(),
            next_key.clone(),
            pick.clone(),
            kill.clone(),
        );
        let project = project.to_string();
        producers.push(tokio::spawn(async move {
            let mut n = p;
            loop {
                let first = next_key.fetch_add(10, Ordering::Relaxed) as u64;
                if first >= total {
                    return;
                }
                if first >= total / 3 {
                    if let Some(k) = kill.lock().unwrap().take() {
                        let _ = k.send(());
                    }
                }
                let keys: Vec<u64> = (first..(first + 10).min(total)).collect();
                let msgs: Vec<Value> = keys
                    .iter()
                    .map(|k| json!({"body": {"k": k}, "ttl": 3600}))
                    .collect();
                let queue = format!("q{}", n % QUEUES);
                n += 1;
                let r = req(
                    &http,
                    reqwest::Method::POST,
                    format!("{}/v2/queues/{queue}/messages", pick()),
                    &project,
                )
                .json(&json!({ "messages": msgs }))
                .send()
                .await;
                let ok = matches!(&r, Ok(r) if r.status() == 201);
                let mut t = tally.lock().unwrap();
                for k in keys {
                    if ok {
                        t.acked.insert(k);
                    } else {
                        t.unacked.insert(k);
                    }
                }
            }
        }));
    }
    let mut consumers = Vec::new();
    for c in 0..clients {
        let (http, tally, pick, producers_done) = (
            http.clone(),
            tally.clone(),
            pick.clone(),
            producers_done.clone(),
        );
        let project = project.to_string();
        consumers.push(tokio::spawn(async move {
            let mut n = c;
            let mut empty_rounds = 0;
            loop {
                let queue = format!("q{}", n % QUEUES);
                n += 1;
                let r = req(
                    &http,
                    reqwest::Method::POST,
                    format!("{}/v2/queues/{queue}/claims?limit=10", pick()),
                    &project,
                )
                .json(&json!({"ttl": claim_ttl, "grace": 60}))
                .send()
                .await;
                let claimed: Vec<Value> = match r {
                    Ok(r) if r.status() == 201 => r
                        .json::<Value>()
                        .await
                        .ok()
                        .and_then(|v| v["messages"].as_array().cloned())
                        .unwrap_or_default(),
                    _ => Vec::new(),
                };
                if claimed.is_empty() {
                    if producers_done.load(Ordering::Relaxed) {
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
                    let href = m["href"].as_str().unwrap_or_default().to_string();
                    let id = href
                        .split('?')
                        .next()
                        .and_then(|p| p.rsplit('/').next())
                        .unwrap_or_default()
                        .to_string();
                    let k = m["body"]["k"].as_u64().expect("body key");
                    *tally.lock().unwrap().claimed.entry(id).or_default() += 1;
                    // The claim lives in the backend: any live node can delete with it.
                    let mut deleted = false;
                    for _ in 0..20 {
                        let r = req(
                            &http,
                            reqwest::Method::DELETE,
                            format!("{}{href}", pick()),
                            &project,
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
                    *tally.lock().unwrap().deleted.entry(k).or_default() += 1;
                }
            }
        }));
    }
    for p in producers {
        p.await.unwrap();
    }
    producers_done.store(true, Ordering::Relaxed);
    for c in consumers {
        c.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let tally = Arc::try_unwrap(tally)
        .ok()
        .expect("tasks done")
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

    let mut nodes: Vec<Node> = PORTS
        .iter()
        .map(|p| spawn_node(*p, &pg, &catalog_schema, dir.path()))
        .collect();
    for n in nodes.iter_mut() {
        wait_ready(&http, n).await;
    }
    // Register the pools through node 1; the others read them from the shared catalog.
    for (name, uri, options) in [
        ("pg", pg.clone(), json!({"schema": pool_schema})),
        ("redis", redis.clone(), json!({"key_prefix": prefix})),
    ] {
        let r = req(
            &http,
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
        &http,
        reqwest::Method::GET,
        format!("{}/v2/pools", nodes[2].base),
        "admin",
    )
    .send()
    .await
    .unwrap();
    let listed: Value = r.json().await.unwrap();
    assert_eq!(listed["pools"].as_array().unwrap().len(), 2, "{listed}");

    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    let total: u64 = std::env::var("ZAQAR_SCALE_OUT_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let all_alive = || Arc::new((0..3).map(|_| AtomicBool::new(true)).collect::<Vec<_>>());

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
        all_alive(),
        "scale-three",
        total,
        300,
        None,
    )
    .await;
    check(&three, "three nodes");
    // 3. Three nodes, node 3 killed (SIGKILL) after a third of the messages.
    let alive = all_alive();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let victim = nodes.pop().unwrap();
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
        Arc::new(bases.clone()),
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
        let live = &bases[0];
        let mut present = HashSet::new();
        for i in 0..QUEUES {
            let mut next =
                format!("/v2/queues/q{i}/messages?include_claimed=true&echo=true&limit=20");
            loop {
                let r = req(
                    &http,
                    reqwest::Method::GET,
                    format!("{live}{next}"),
                    "scale-kill",
                )
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
        let gone: Vec<_> = missing.iter().filter(|k| !present.contains(k)).collect();
        assert!(gone.is_empty(), "acknowledged and gone: {gone:?}");
        println!(
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
    check(&killed, "node killed");

    // Queues stay on the pool the catalog names (and exist on no other).
    let catalog: Vec<(String, String, String)> = {
        use sqlx::{Connection, Row};
        let mut c = sqlx::PgConnection::connect(&pg).await.unwrap();
        let rows = sqlx::query(&format!(
            "SELECT project, queue, pool FROM {catalog_schema}.zaqar_catalog ORDER BY 1, 2"
        ))
        .fetch_all(&mut c)
        .await
        .unwrap();
        rows.iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    };
    let clock: zaqar_core::clock::SharedClock = Arc::new(zaqar_core::clock::SystemClock);
    let pg_store = postgres_support::open(&pg, &pool_schema, clock.clone()).await;
    let redis_store = redis_support::open(&redis, &prefix, clock).await;
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

    let rate = |t: &Tally, s: f64| t.acked.len() as f64 / s;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
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
