//! The conformance suite against the embedded store, plus embedded-only checks (durability
//! across reopen, the expired-data sweep, the shard manifest).

use zaqar_core::testsuite as conformance;

use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use zaqar_core::clock::ManualClock;
use zaqar_core::store::{ClaimStore, DataStore, MessageStore, QueueStore};
use zaqar_storage::embedded::EmbeddedStore;
use zaqar_storage::embedded::EmbeddedStoreConfig;

use conformance::{all, claim, msg, q, Harness, C1};

fn config(path: &Path, shards: usize) -> EmbeddedStoreConfig {
    EmbeddedStoreConfig {
        path: path.to_path_buf(),
        shards,
        cache_size_mb: 8,
        gc_interval_secs: 3600,
    }
}

/// Each store lives in its own temporary directory, removed when the harness is dropped at the
/// end of the test.
#[derive(Default)]
struct Embedded {
    dirs: std::sync::Mutex<Vec<tempfile::TempDir>>,
}

#[async_trait::async_trait]
impl Harness for Embedded {
    async fn store(&self, clock: ManualClock) -> Arc<dyn DataStore> {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&config(dir.path(), 3), Arc::new(clock)).unwrap();
        self.dirs.lock().unwrap().push(dir);
        store
    }
}

zaqar_core::conformance_tests!(Embedded::default());

#[tokio::test]
async fn data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    let qa = q("p", "durable");
    let (ids, claim_id) = {
        let s = EmbeddedStore::open(&config(dir.path(), 2), Arc::new(clock.clone())).unwrap();
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
        (ids, c.id)
    };
    let s = EmbeddedStore::open(&config(dir.path(), 2), Arc::new(clock.clone())).unwrap();
    let got = s.list_messages(qa, &all(10)).await.unwrap();
    assert_eq!(got.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), ids);
    assert_eq!(got[0].body.get(), r#"{"a":1}"#);
    assert!(
        s.get_claim(qa, &claim_id).await.unwrap().is_some(),
        "claims persist"
    );
    // New posts continue the marker sequence.
    let more = s
        .post_messages(qa, C1, vec![msg(json!(3), 600)])
        .await
        .unwrap();
    let all_now = s.list_messages(qa, &all(10)).await.unwrap();
    assert_eq!(all_now.last().unwrap().id, more[0]);
    assert_eq!(all_now[2].marker, all_now[1].marker + 1);
}

#[tokio::test]
async fn shard_count_is_fixed_at_creation() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::default());
    let qa = q("p", "x");
    {
        let s = EmbeddedStore::open(&config(dir.path(), 4), clock.clone()).unwrap();
        s.post_messages(qa, C1, vec![msg(json!(1), 600)])
            .await
            .unwrap();
        s.shutdown().await;
    }
    // Reopening with another configured count keeps the stored layout (and finds the data).
    let s = EmbeddedStore::open(&config(dir.path(), 1), clock).unwrap();
    assert_eq!(s.list_messages(qa, &all(10)).await.unwrap().len(), 1);
}

#[tokio::test]
async fn sweep_reclaims_expired_messages_and_claims() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    let s = EmbeddedStore::open(&config(dir.path(), 2), Arc::new(clock.clone())).unwrap();
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
    assert_eq!(s.stored_message_records().unwrap(), 3);
    assert_eq!(s.collect_garbage().await.unwrap(), 0, "nothing expired yet");
    assert_eq!(s.project_bytes("p").await.unwrap(), 3);
    clock.advance_secs(61);
    // Message 2 expired. Message 1 is held by the claim, which extended its life to
    // claim expiry + grace (180 s).
    assert_eq!(s.project_bytes("p").await.unwrap(), 2);
    assert_eq!(s.collect_garbage().await.unwrap(), 1);
    assert_eq!(s.stored_message_records().unwrap(), 2);
    assert_eq!(
        s.project_bytes("p").await.unwrap(),
        2,
        "swept once, counted once"
    );
    clock.advance_secs(60);
    assert_eq!(s.collect_garbage().await.unwrap(), 1, "the expired claim");
    assert!(s.get_claim(qa, &c.id).await.unwrap().is_none());
    assert_eq!(s.stored_message_records().unwrap(), 2);
    clock.advance_secs(60);
    assert_eq!(s.project_bytes("p").await.unwrap(), 1);
    assert_eq!(
        s.collect_garbage().await.unwrap(),
        1,
        "message 1 after its grace"
    );
    assert_eq!(s.stored_message_records().unwrap(), 1);
    assert_eq!(s.project_bytes("p").await.unwrap(), 1);
    assert_eq!(
        s.list_messages(qa, &all(10)).await.unwrap()[0].body.get(),
        "3"
    );
}

#[tokio::test]
async fn writes_after_shutdown_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open(&config(dir.path(), 1), Arc::new(ManualClock::default())).unwrap();
    s.shutdown().await;
    let err = s
        .post_messages(q("p", "x"), C1, vec![msg(json!(1), 600)])
        .await
        .unwrap_err();
    assert_eq!(err.status(), 503);
}

#[tokio::test]
async fn interrupted_dead_letter_moves_complete_exactly_once_after_restart() {
    use conformance::claim_dlq;
    use zaqar_storage::embedded::DrainStop;
    for stop in [
        DrainStop::BeforeApply,
        DrainStop::AfterApply,
        DrainStop::AfterOutboxRemoval,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::default();
        let qa = q("p", "src");
        let dlq = q("p", "dlq");
        {
            let s = EmbeddedStore::open(&config(dir.path(), 4), Arc::new(clock.clone())).unwrap();
            s.post_messages(qa, C1, vec![msg(json!("m"), 3600)])
                .await
                .unwrap();
            s.create_claim(qa, claim_dlq(60, 1, 1, "dlq", None))
                .await
                .unwrap()
                .unwrap();
            clock.advance_secs(61);
            s.simulate_drain_crash(stop);
            assert!(s
                .create_claim(qa, claim_dlq(60, 1, 1, "dlq", None))
                .await
                .unwrap()
                .is_none());
            s.shutdown().await;
        }
        let s = EmbeddedStore::open(&config(dir.path(), 4), Arc::new(clock.clone())).unwrap();
        s.drain_all_outboxes().await;
        s.drain_all_outboxes().await;
        let in_dlq = s.list_messages(dlq, &all(10)).await.unwrap();
        assert_eq!(in_dlq.len(), 1, "{stop:?}: exactly one copy in the DLQ");
        assert_eq!(in_dlq[0].body.get(), "\"m\"");
        assert!(
            s.list_messages(qa, &all(10)).await.unwrap().is_empty(),
            "{stop:?}"
        );
        s.shutdown().await;
    }
}

/// Byte accounting survives a restart, and a store written before it existed is counted once
/// when opened.
#[tokio::test]
async fn byte_accounting_survives_reopen_and_covers_older_stores() {
    use redb::TableDefinition;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    let open = || EmbeddedStore::open(&config(dir.path(), 2), Arc::new(clock.clone())).unwrap();
    let s = open();
    for (p, name) in [("p", "a"), ("p", "b"), ("other", "a")] {
        s.post_messages(
            q(p, name),
            C1,
            vec![msg(json!("0123456789"), 60), msg(json!([1, 2]), 600)],
        )
        .await
        .unwrap();
    }
    assert_eq!(s.project_bytes("p").await.unwrap(), 34);
    s.shutdown().await;
    drop(s);
    let s = open();
    assert_eq!(s.project_bytes("p").await.unwrap(), 34);
    s.shutdown().await;
    drop(s);
    // As a store of an earlier version would be: no accounting tables.
    for i in 0..2 {
        let db = redb::Database::create(dir.path().join(format!("shard-{i:02}.redb"))).unwrap();
        let txn = db.begin_write().unwrap();
        txn.delete_table(TableDefinition::<&str, u64>::new("meta"))
            .unwrap();
        txn.delete_table(TableDefinition::<(&str, &str), u64>::new("queue_bytes"))
            .unwrap();
        txn.delete_table(TableDefinition::<(&str, &str, u64), u64>::new(
            "queue_bytes_by_expiry",
        ))
        .unwrap();
        txn.commit().unwrap();
    }
    let s = open();
    assert_eq!(s.project_bytes("p").await.unwrap(), 34, "counted at open");
    assert_eq!(s.project_bytes("other").await.unwrap(), 17);
    clock.advance_secs(60);
    assert_eq!(
        s.project_bytes("p").await.unwrap(),
        10,
        "expiry is accounted too"
    );
    s.delete_queue(q("p", "a")).await.unwrap();
    assert_eq!(s.project_bytes("p").await.unwrap(), 5);
    s.shutdown().await;
}
