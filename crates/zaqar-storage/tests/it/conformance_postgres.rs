//! The storage conformance suite against the PostgreSQL store (`ZAQAR_TEST_POSTGRES_URL`), plus
//! PostgreSQL-only checks: migrations, the sweep, reopen, odd project ids, several stores (API
//! nodes) on one database, and cross-node long-poll wake-ups. Every store lives in its own
//! schema, dropped at the end of its test. Without the variable the tests print a notice and
//! pass, unless `ZAQAR_TEST_REQUIRE_BACKENDS=1`.

use zaqar_core::testsuite as conformance;
use zaqar_testkit::postgres_support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use zaqar_core::clock::{Clock, ManualClock};
use zaqar_core::error::Error;
use zaqar_core::hub::Hub;
use zaqar_core::store::{ClaimStore, DataStore, MessageStore, QueueStore};
use zaqar_storage::postgres::PostgresStore;

use conformance::{all, claim, msg, q, Harness, C1, C2};
use postgres_support::{backend, open, Schemas};

struct Pg {
    schemas: Schemas,
}

impl Pg {
    fn from_env() -> Option<Pg> {
        backend().map(|url| Pg {
            schemas: Schemas::new(url),
        })
    }

    async fn open(&self, clock: &ManualClock) -> Arc<PostgresStore> {
        let schema = self.schemas.fresh();
        open(&self.schemas.url, &schema, Arc::new(clock.clone())).await
    }

    /// A second store (another API node) on the schema of `s`.
    async fn open_same(&self, s: &PostgresStore, clock: &ManualClock) -> Arc<PostgresStore> {
        open(&self.schemas.url, s.schema(), Arc::new(clock.clone())).await
    }
}

#[async_trait::async_trait]
impl Harness for Pg {
    async fn store(&self, clock: ManualClock) -> Arc<dyn DataStore> {
        self.open(&clock).await
    }
}

zaqar_core::conformance_tests!(match Pg::from_env() {
    Some(h) => h,
    None => return,
});

macro_rules! harness {
    () => {
        match Pg::from_env() {
            Some(h) => h,
            None => return,
        }
    };
}

#[tokio::test]
async fn sweep_reclaims_expired_messages_and_claims() {
    let h = harness!();
    let clock = ManualClock::default();
    let s = h.open(&clock).await;
    let qa = q("p", "gc");
    s.post_messages(
        qa,
        C1,
        vec![msg(json!(1), 60), msg(json!(2), 60), msg(json!(3), 600)],
    )
    .await
    .unwrap();
    let c = s
        .create_claim(qa, claim(120, 60, 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.stored_message_records().await.unwrap(), 3);
    assert_eq!(s.collect_garbage().await.unwrap(), 0, "nothing expired yet");
    clock.advance_secs(61);
    // Message 2 expired; message 1 is held by the claim, which extended its life.
    assert_eq!(s.project_bytes("p").await.unwrap(), 2);
    assert_eq!(s.collect_garbage().await.unwrap(), 1);
    assert_eq!(s.stored_message_records().await.unwrap(), 2);
    assert_eq!(
        s.project_bytes("p").await.unwrap(),
        2,
        "swept once, counted once"
    );
    clock.advance_secs(60);
    assert_eq!(s.collect_garbage().await.unwrap(), 1, "the expired claim");
    assert!(s.get_claim(qa, &c.id).await.unwrap().is_none());
    clock.advance_secs(60);
    assert_eq!(
        s.collect_garbage().await.unwrap(),
        1,
        "message 1 after grace"
    );
    assert_eq!(s.stored_message_records().await.unwrap(), 1);
    assert_eq!(
        s.list_messages(qa, &all(10)).await.unwrap()[0].body.get(),
        "3"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn data_survives_reopen_and_migrations_run_once() {
    let h = harness!();
    let clock = ManualClock::default();
    let qa = q("p", "durable");
    let s = h.open(&clock).await;
    let ids = s
        .post_messages(
            qa,
            C1,
            vec![msg(json!({"a": 1}), 600), msg(json!("b"), 600)],
        )
        .await
        .unwrap();
    let c = s
        .create_claim(qa, claim(120, 60, 1))
        .await
        .unwrap()
        .unwrap();
    s.shutdown().await;
    let err = s
        .post_messages(qa, C1, vec![msg(json!(1), 600)])
        .await
        .unwrap_err();
    assert_eq!(err.status(), 503, "writes after shutdown fail cleanly");

    // Reopening (several nodes at once) finds the schema current and the data intact.
    let (a, b) = tokio::join!(h.open_same(&s, &clock), h.open_same(&s, &clock));
    let got = a.list_messages(qa, &all(10)).await.unwrap();
    assert_eq!(got.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), ids);
    assert_eq!(got[0].body.get(), r#"{"a":1}"#);
    assert!(b.get_claim(qa, &c.id).await.unwrap().is_some());
    let more = b
        .post_messages(qa, C1, vec![msg(json!(3), 600)])
        .await
        .unwrap();
    let now = a.list_messages(qa, &all(10)).await.unwrap();
    assert_eq!(now.last().unwrap().id, more[0]);
    assert_eq!(
        now[2].marker,
        now[1].marker + 1,
        "the marker sequence goes on"
    );
    let versions = versions(&h.schemas.url, s.schema()).await;
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]) && (1..=4).all(|v| versions.contains(&v)),
        "each migration recorded once: {versions:?}"
    );
}

async fn versions(url: &str, schema: &str) -> Vec<i32> {
    use sqlx::{Connection, Row};
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    let rows = sqlx::query(&format!(
        "SELECT version FROM {schema}.zaqar_migrations ORDER BY version"
    ))
    .fetch_all(&mut c)
    .await
    .unwrap();
    rows.iter().map(|r| r.get::<i32, _>(0)).collect()
}

#[tokio::test]
async fn project_ids_may_hold_any_character() {
    let h = harness!();
    let clock = ManualClock::default();
    let s = h.open(&clock).await;
    let projects = [
        "p",
        "p%",
        "p_",
        "'; DROP TABLE messages; --",
        "back\\slash",
        "quote\"d",
        "ünïcødé ✓",
        "spaces and\ttabs\nnewlines",
    ];
    for (i, p) in projects.iter().enumerate() {
        s.create_queue(q(p, "shared"), Default::default())
            .await
            .unwrap();
        s.post_messages(q(p, "shared"), C1, vec![msg(json!(i), 600)])
            .await
            .unwrap();
    }
    for (i, p) in projects.iter().enumerate() {
        let got = s.list_messages(q(p, "shared"), &all(10)).await.unwrap();
        assert_eq!(got.len(), 1, "{p:?}");
        assert_eq!(got[0].body.get(), i.to_string(), "{p:?}");
        assert_eq!(s.count_queues(p).await.unwrap(), 1, "{p:?}");
        let names = s
            .list_queues(p, None, 10, &Default::default())
            .await
            .unwrap();
        assert_eq!(names.len(), 1, "{p:?}");
    }
    // A NUL cannot be stored by PostgreSQL: refused as invalid input, not as an outage.
    let err = s
        .post_messages(q("nul\0project", "x"), C1, vec![msg(json!(1), 600)])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    let err = s
        .post_messages(q("p", "x"), "client\0id", vec![msg(json!(1), 600)])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    s.shutdown().await;
}

#[tokio::test]
async fn concurrent_posts_to_one_queue_keep_batches_whole_and_markers_consecutive() {
    let h = harness!();
    let clock = ManualClock::default();
    let s = h.open(&clock).await;
    let other = h.open_same(&s, &clock).await;
    let mut tasks = Vec::new();
    for t in 0..24 {
        let s = if t % 2 == 0 { s.clone() } else { other.clone() };
        tasks.push(tokio::spawn(async move {
            let mut batches = Vec::new();
            for i in 0..10 {
                let size = 1 + (t + i) % 4;
                let batch = (0..size).map(|j| msg(json!([t, i, j]), 600)).collect();
                let client = if t % 3 == 0 { C1 } else { C2 };
                batches.push(s.post_messages(q("p", "hot"), client, batch).await.unwrap());
            }
            batches
        }));
    }
    let mut batches = Vec::new();
    for t in tasks {
        batches.extend(t.await.unwrap());
    }
    let listed = s.list_messages(q("p", "hot"), &all(10_000)).await.unwrap();
    let total: usize = batches.iter().map(Vec::len).sum();
    assert_eq!(listed.len(), total);
    let markers: Vec<u64> = listed.iter().map(|m| m.marker).collect();
    assert!(
        markers.windows(2).all(|w| w[1] == w[0] + 1),
        "markers are consecutive"
    );
    let position: std::collections::HashMap<&str, u64> =
        listed.iter().map(|m| (m.id.as_str(), m.marker)).collect();
    for b in &batches {
        let ms: Vec<u64> = b.iter().map(|id| position[id.as_str()]).collect();
        assert!(
            ms.windows(2).all(|w| w[1] == w[0] + 1),
            "a batch's messages are contiguous and in order: {ms:?}"
        );
    }
    s.shutdown().await;
    other.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_single_deletes_keep_their_own_outcomes() {
    let h = harness!();
    let clock = ManualClock::default();
    let s = h.open(&clock).await;
    let qa = q("p", "deletes");
    for _ in 0..6 {
        let batch = (0..10).map(|i| msg(json!(i), 600)).collect();
        s.post_messages(qa, C1, batch).await.unwrap();
    }
    let mut claims = Vec::new();
    while let Some(c) = s.create_claim(qa, claim(300, 60, 10)).await.unwrap() {
        claims.push(c);
    }
    assert_eq!(claims.len(), 6);
    let mut tasks = Vec::new();
    for (n, c) in claims.iter().enumerate() {
        let other = claims[(n + 1) % claims.len()].id.clone();
        for (i, m) in c.messages.iter().enumerate() {
            let (s, id, own) = (s.clone(), m.id.clone(), c.id.clone());
            let other = other.clone();
            tasks.push(tokio::spawn(async move {
                let outcome = match i % 3 {
                    0 => s.delete_message(qa, &id, Some(&own)).await,
                    1 => s.delete_message(qa, &id, None).await,
                    _ => s.delete_message(qa, &id, Some(&other)).await,
                };
                (i % 3, id, outcome)
            }));
        }
    }
    // Deletes of messages that do not exist succeed, whatever the claim id.
    for _ in 0..10 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let gone = "00000000000003e80123456789abcdef".to_string();
            (0, gone.clone(), s.delete_message(qa, &gone, None).await)
        }));
    }
    let mut kept = HashSet::new();
    for t in tasks {
        let (kind, id, outcome) = t.await.unwrap();
        match kind {
            0 => outcome.unwrap(),
            _ => {
                let e = outcome.unwrap_err();
                assert!(matches!(e, Error::DeleteForbidden(_)), "{kind}: {e:?}");
                kept.insert(id);
            }
        }
    }
    let left: HashSet<String> = s
        .list_messages(qa, &all(100))
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(left, kept, "exactly the refused deletes left their message");
    s.shutdown().await;
}

#[tokio::test]
async fn consumers_on_two_nodes_never_share_a_message() {
    let h = harness!();
    let clock = ManualClock::default();
    let a = h.open(&clock).await;
    let b = h.open_same(&a, &clock).await;
    for _ in 0..20 {
        let batch = (0..10).map(|i| msg(json!(i), 3600)).collect();
        a.post_messages(q("p", "work"), C1, batch).await.unwrap();
    }
    let mut tasks = Vec::new();
    for t in 0..12 {
        let s: Arc<PostgresStore> = if t % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(c) = s
                .create_claim(q("p", "work"), claim(300, 60, 4))
                .await
                .unwrap()
            {
                for m in &c.messages {
                    // Half of them are deleted with their claim, as consumers do.
                    if m.marker % 2 == 0 {
                        s.delete_message(q("p", "work"), &m.id, Some(&c.id))
                            .await
                            .unwrap();
                    }
                }
                mine.extend(c.messages.into_iter().map(|m| m.id));
            }
            mine
        }));
    }
    let mut seen = HashSet::new();
    for t in tasks {
        for id in t.await.unwrap() {
            assert!(seen.insert(id), "a message was claimed twice");
        }
    }
    assert_eq!(seen.len(), 200);
    let st = a.queue_stats(q("p", "work")).await.unwrap();
    assert_eq!((st.total, st.claimed), (100, 100));
    a.shutdown().await;
    b.shutdown().await;
}

/// Runs `action`, then waits up to `limit` for `signal` (registered before the action); true
/// if it fired.
async fn wakes(
    signal: &tokio::sync::Notify,
    limit: Duration,
    action: impl std::future::Future<Output = ()>,
) -> bool {
    let notified = signal.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    action.await;
    tokio::time::timeout(limit, notified).await.is_ok()
}

#[tokio::test]
async fn writes_on_one_node_wake_long_polls_on_another() {
    let h = harness!();
    let clock = ManualClock::default();
    let a = h.open(&clock).await;
    let b = h.open_same(&a, &clock).await;
    let (hub_a, hub_b) = (Hub::new(), Hub::new());
    a.attach_hub(hub_a.clone());
    b.attach_hub(hub_b.clone());
    let qa = q("proj 'x'", "lp");
    let post = |s: &Arc<PostgresStore>, qr: zaqar_core::model::QueueRef<'static>| {
        let s = s.clone();
        async move {
            s.post_messages(qr, C1, vec![msg(json!(1), 600)])
                .await
                .unwrap();
        }
    };

    // A post on A wakes B's waiters of that queue (once B's listener is connected).
    let signal = hub_b.watch(qa.project, qa.name);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !wakes(&signal, Duration::from_millis(500), post(&a, qa)).await {
        assert!(
            std::time::Instant::now() < deadline,
            "a post on A never woke B"
        );
    }
    // Posting on B wakes A (once A's listener is connected too).
    let signal = hub_a.watch(qa.project, qa.name);
    while !wakes(&signal, Duration::from_millis(500), post(&b, qa)).await {
        assert!(
            std::time::Instant::now() < deadline,
            "a post on B never woke A"
        );
    }

    // A release on B wakes A's waiters.
    let c = b
        .create_claim(qa, claim(60, 60, 10))
        .await
        .unwrap()
        .unwrap();
    assert!(
        wakes(&signal, Duration::from_secs(10), async {
            b.release_claim(qa, &c.id).await.unwrap()
        })
        .await,
        "release on B wakes A"
    );

    // A dead-letter move on A wakes B's waiters of the dead-letter queue.
    let q2 = q(qa.project, "lp2");
    a.post_messages(q2, C1, vec![msg(json!(1), 600)])
        .await
        .unwrap();
    a.create_claim(q2, conformance::claim_dlq(60, 1, 1, "lp-dlq", None))
        .await
        .unwrap()
        .unwrap();
    clock.advance_secs(61);
    let signal = hub_b.watch(qa.project, "lp-dlq");
    assert!(
        wakes(&signal, Duration::from_secs(10), async {
            assert!(a
                .create_claim(q2, conformance::claim_dlq(60, 1, 1, "lp-dlq", None))
                .await
                .unwrap()
                .is_none());
        })
        .await,
        "dead-letter move on A wakes B"
    );

    // Other queues are not woken.
    let signal = hub_b.watch(qa.project, "quiet");
    assert!(!wakes(&signal, Duration::from_millis(300), post(&a, qa)).await);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn bad_settings_are_reported_at_open() {
    let h = harness!();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::default());
    let mut cfg = postgres_support::config("Bad-Name");
    let err = PostgresStore::open(&h.schemas.url, &cfg, clock.clone())
        .await
        .err()
        .unwrap();
    assert!(err.description().contains("schema"), "{err}");
    cfg.schema = h.schemas.fresh();
    let err = PostgresStore::open("mysql://nope", &cfg, clock.clone())
        .await
        .err()
        .unwrap();
    assert_eq!(err.status(), 503);
    // Nothing listens on port 1: a clear 503 within the acquire timeout.
    cfg.acquire_timeout_secs = 1;
    let started = std::time::Instant::now();
    let err = PostgresStore::open("postgresql://postgres@127.0.0.1:1/test", &cfg, clock)
        .await
        .err()
        .unwrap();
    assert_eq!(err.status(), 503);
    assert!(err.description().contains("PostgreSQL"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_leasers_on_two_nodes_never_share_a_batch() {
    let h = harness!();
    let clock = ManualClock::default();
    let a = h.open(&clock).await;
    let b = h.open_same(&a, &clock).await;
    conformance::leasers_on_two_nodes_never_share_a_batch(a.clone(), b.clone()).await;
    a.shutdown().await;
    b.shutdown().await;
}

/// Migration 0004 counts the rows a schema already holds; several nodes post and delete at
/// once without losing a byte; deleting a queue takes its counters with it.
#[tokio::test]
async fn byte_counters_cover_existing_rows_and_concurrent_writers() {
    use sqlx::Connection;
    let h = harness!();
    let clock = ManualClock::default();
    let s = h.open(&clock).await;
    for name in ["a", "b"] {
        s.post_messages(q("p", name), C1, vec![msg(json!("0123456789"), 600)])
            .await
            .unwrap();
    }
    // As a schema of version 3 would be: rows, but no counters.
    let mut c = sqlx::PgConnection::connect(&h.schemas.url).await.unwrap();
    let schema = s.schema().to_string();
    for stmt in [
        format!("DROP TABLE {schema}.queue_bytes"),
        format!("DROP TABLE {schema}.zaqar_quotas"),
        format!("DROP FUNCTION {schema}.zaqar_bytes_inserted() CASCADE"),
        format!("DROP FUNCTION {schema}.zaqar_bytes_deleted() CASCADE"),
        format!("DELETE FROM {schema}.zaqar_migrations WHERE version = 4"),
    ] {
        sqlx::query(&stmt).execute(&mut c).await.unwrap();
    }
    let s = h.open_same(&s, &clock).await;
    assert_eq!(
        s.project_bytes("p").await.unwrap(),
        24,
        "counted by the migration"
    );
    // Two nodes writing to one queue at once.
    let t = h.open_same(&s, &clock).await;
    let mut tasks = Vec::new();
    for (i, node) in [s.clone(), t.clone(), s.clone(), t.clone()]
        .into_iter()
        .enumerate()
    {
        tasks.push(tokio::spawn(async move {
            for _ in 0..20 {
                let ids = node
                    .post_messages(
                        q("p", "a"),
                        C1,
                        vec![msg(json!(i), 600), msg(json!(i), 600)],
                    )
                    .await
                    .unwrap();
                node.delete_messages(q("p", "a"), &ids[..1], None)
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(s.project_bytes("p").await.unwrap(), 24 + 80);
    assert_eq!(t.project_bytes("p").await.unwrap(), 24 + 80);
    s.delete_queue(q("p", "a")).await.unwrap();
    assert_eq!(s.project_bytes("p").await.unwrap(), 12);
    let left: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {schema}.queue_bytes"))
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert!(left <= 16, "only queue b's slots are left ({left})");
    s.post_messages(q("p", "a"), C1, vec![msg(json!(1), 600)])
        .await
        .unwrap();
    assert_eq!(s.project_bytes("p").await.unwrap(), 13);
}
