//! Micro-benchmarks of the hot paths of a message's life, below HTTP:
//!
//! - `post_body`: what a message POST costs before storage: the JSON preflight scan
//!   (`validate::json_preflight`), the name and Client-ID checks, and the service's parse and
//!   validation of `{"messages": [...]}` (`Service::parse_new_messages`), for 1 and 10
//!   messages of about 100 bytes;
//! - `list_response`: serialising a listing of 10 and 20 messages the way the HTTP handler
//!   does (`http::wire::MessageView` plus the `links`, through a `serde_json::Value`), and
//!   straight from typed views for comparison;
//! - `embedded_store`: appends of 1 and 10 messages (each acknowledged after its fsync), 64
//!   concurrent single-message appends (group commit), and a claim of 10 then its release,
//!   against an `EmbeddedStore` in a temporary directory.
//!
//! Run with `cargo bench --bench hot_paths` (add `-- post_body` to run one group). The store
//! group is bound by the disk's fsync latency: compare its figures only on the same machine.

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde_json::{json, Map, Value};
use zaqar_api::wire::http::{next_links, MessageView};
use zaqar_core::clock::{Clock, SharedClock, SystemClock};
use zaqar_core::model::{ClaimParams, ListQuery, Message, NewMessage, QueueRef};
use zaqar_core::service::{validate, Service};
use zaqar_core::store::{ClaimStore, DataStore, MessageStore, QueueStore};
use zaqar_server::config::{Config, EmbeddedStoreConfig};
use zaqar_storage::embedded::EmbeddedStore;

const CLIENT_ID: &str = "3381af92-2b9e-11e3-b191-71861300734c";

/// A message POST body of `n` messages whose bodies are about 100 bytes, as zaqar-bench sends.
fn post_body(n: usize) -> Vec<u8> {
    let messages: Vec<Value> = (0..n)
        .map(|i| json!({"ttl": 3600, "body": {"data": "x".repeat(72), "seq": i}}))
        .collect();
    serde_json::to_vec(&json!({ "messages": messages })).expect("serialisable")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

fn open_store(dir: &std::path::Path) -> Arc<EmbeddedStore> {
    let cfg = EmbeddedStoreConfig {
        path: dir.to_path_buf(),
        shards: 2,
        cache_size_mb: 64,
        gc_interval_secs: 3600,
    };
    let clock: SharedClock = Arc::new(SystemClock);
    EmbeddedStore::open(&cfg, clock).expect("the embedded store opens")
}

fn new_messages(n: usize) -> Vec<NewMessage> {
    (0..n)
        .map(|i| NewMessage {
            body: serde_json::value::to_raw_value(&json!({"data": "x".repeat(72), "seq": i}))
                .expect("serialisable"),
            ttl: 3600,
            delay: 0,
            checksum: None,
            encrypted: false,
        })
        .collect()
}

fn bench_post_body(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let service = {
        let _guard = rt.enter();
        let store: Arc<dyn DataStore> = open_store(dir.path());
        Service::new(Config::defaults().limits, store, Arc::new(SystemClock))
    };
    let meta = Map::new();
    let limits = Config::defaults().limits;
    let mut group = c.benchmark_group("post_body");
    for n in [1usize, 10] {
        let body = post_body(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(format!("json_preflight/{n}"), |b| {
            b.iter(|| validate::json_preflight(std::hint::black_box(&body)).expect("valid"))
        });
        group.bench_function(format!("parse_new_messages/{n}"), |b| {
            b.iter(|| {
                service
                    .parse_new_messages("bench", std::hint::black_box(&body), &meta)
                    .expect("valid")
            })
        });
    }
    group.throughput(Throughput::Elements(1));
    group.bench_function("queue_name_and_client_id", |b| {
        b.iter(|| {
            validate::queue_name(std::hint::black_box("a-queue_name-0123")).expect("valid");
            validate::client_id(Some(std::hint::black_box(CLIENT_ID)), &limits).expect("valid")
        })
    });
    group.finish();
    drop(service);
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(10)).await });
}

/// The document `GET .../messages` answers for `messages`, built as the handler builds it
/// (through a `serde_json::Value`, which re-parses every body).
fn render_listing(queue: &str, messages: &[Message], now: i64) -> Vec<u8> {
    let views: Vec<MessageView<'_>> = messages
        .iter()
        .map(|m| MessageView::new(queue, m, now))
        .collect();
    let next = messages.last().map(|m| {
        format!(
            "/v2/queues/{queue}/messages?marker={}&limit={}",
            m.marker,
            messages.len()
        )
    });
    serde_json::to_vec(&json!({ "messages": views, "links": next_links(next) }))
        .expect("serialisable")
}

/// The same document serialised straight from typed views (bodies copied as raw text), for
/// comparison with the handler's way.
fn render_listing_typed(queue: &str, messages: &[Message], now: i64) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Listing<'a> {
        messages: Vec<MessageView<'a>>,
        links: Vec<zaqar_api::wire::http::Link>,
    }
    let next = messages.last().map(|m| {
        format!(
            "/v2/queues/{queue}/messages?marker={}&limit={}",
            m.marker,
            messages.len()
        )
    });
    let doc = Listing {
        messages: messages
            .iter()
            .map(|m| MessageView::new(queue, m, now))
            .collect(),
        links: next_links(next),
    };
    serde_json::to_vec(&doc).expect("serialisable")
}

fn bench_list_response(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let q = QueueRef::new("bench", "listing");
    let messages = rt.block_on(async {
        let store = open_store(dir.path());
        store
            .post_messages(q, CLIENT_ID, new_messages(20))
            .await
            .expect("posted");
        let query = ListQuery {
            marker: None,
            limit: 20,
            exclude_client: None,
            include_claimed: true,
            include_delayed: true,
        };
        let listed = store.list_messages(q, &query).await.expect("listed");
        store.shutdown().await;
        listed
    });
    assert_eq!(messages.len(), 20);
    let now = SystemClock.now();
    let mut group = c.benchmark_group("list_response");
    for n in [10usize, 20] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(format!("serialise/{n}"), |b| {
            b.iter(|| render_listing("listing", std::hint::black_box(&messages[..n]), now))
        });
        group.bench_function(format!("serialise_typed/{n}"), |b| {
            b.iter(|| render_listing_typed("listing", std::hint::black_box(&messages[..n]), now))
        });
    }
    group.finish();
}

fn bench_embedded_store(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = {
        let _guard = rt.enter();
        open_store(dir.path())
    };
    let q = QueueRef::new("bench", "store");
    rt.block_on(async {
        store.create_queue(q, Map::new()).await.expect("created");
        // Work for the claims: they are released after each iteration, so this never runs out.
        store
            .post_messages(q, CLIENT_ID, new_messages(100))
            .await
            .expect("prefilled");
    });
    let mut group = c.benchmark_group("embedded_store");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(4));
    for n in [1usize, 10] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(format!("append/{n}"), |b| {
            b.to_async(&rt).iter_batched(
                || new_messages(n),
                |batch| {
                    let store = store.clone();
                    async move {
                        let q = QueueRef::new("bench", "append");
                        store
                            .post_messages(q, CLIENT_ID, batch)
                            .await
                            .expect("posted")
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.throughput(Throughput::Elements(64));
    group.bench_function("append/1 x64 concurrent", |b| {
        b.to_async(&rt).iter(|| {
            let store = store.clone();
            async move {
                let posts = (0..64).map(|i| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        let name = format!("concurrent-{}", i % 8);
                        let q = QueueRef::new("bench", &name);
                        store.post_messages(q, CLIENT_ID, new_messages(1)).await
                    })
                });
                for p in futures_util::future::join_all(posts).await {
                    p.expect("joined").expect("posted");
                }
            }
        })
    });
    group.throughput(Throughput::Elements(10));
    group.bench_function("claim/10 then release", |b| {
        b.to_async(&rt).iter(|| {
            let store = store.clone();
            async move {
                let params = ClaimParams {
                    ttl: 60,
                    grace: 60,
                    limit: 10,
                    dead_letter: None,
                };
                let claim = store
                    .create_claim(q, params)
                    .await
                    .expect("claimed")
                    .expect("messages to claim");
                store.release_claim(q, &claim.id).await.expect("released");
            }
        })
    });
    group.finish();
    rt.block_on(store.shutdown());
}

criterion_group!(
    benches,
    bench_post_body,
    bench_list_response,
    bench_embedded_store
);
criterion_main!(benches);
