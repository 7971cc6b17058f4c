//! The storage conformance suite against the Redis store: once against a standalone Redis
//! (`ZAQAR_TEST_REDIS_URL`) and once against a Redis Cluster (`ZAQAR_TEST_REDIS_CLUSTER_URL`),
//! plus Redis-only checks (sweep, interrupted moves, key layout). Each store uses its own key
//! prefix, deleted at the end of its test. Without the variables the tests print a notice and
//! pass, unless `ZAQAR_TEST_REQUIRE_BACKENDS=1`.

use zaqar_core::testsuite as conformance;
use zaqar_testkit::redis_support;

use std::sync::Arc;

use serde_json::json;
use zaqar_core::clock::ManualClock;
use zaqar_core::store::{ClaimStore, DataStore, MessageStore, QueueStore};
use zaqar_storage::redis::{DrainStop, RedisStore};

use conformance::{all, claim, claim_dlq, msg, q, Harness, C1};
use redis_support::{backend, open, Prefixes, CLUSTER, STANDALONE};

struct RedisHarness {
    prefixes: Prefixes,
}

impl RedisHarness {
    fn new(var: &str) -> Option<RedisHarness> {
        backend(var).map(|url| RedisHarness {
            prefixes: Prefixes::new(url),
        })
    }

    async fn open(&self, clock: &ManualClock) -> (Arc<RedisStore>, String) {
        let prefix = self.prefixes.fresh();
        let s = open(&self.prefixes.url, &prefix, Arc::new(clock.clone())).await;
        (s, prefix)
    }
}

#[async_trait::async_trait]
impl Harness for RedisHarness {
    async fn store(&self, clock: ManualClock) -> Arc<dyn DataStore> {
        self.open(&clock).await.0
    }
}

zaqar_core::conformance_tests!(match RedisHarness::new(STANDALONE) {
    Some(h) => h,
    None => return,
});

mod cluster {
    use super::{RedisHarness, CLUSTER};
    zaqar_core::conformance_tests!(match RedisHarness::new(CLUSTER) {
        Some(h) => h,
        None => return,
    });
}

/// Both deployments, for the Redis-only checks below.
fn harnesses() -> Vec<RedisHarness> {
    [STANDALONE, CLUSTER]
        .into_iter()
        .filter_map(RedisHarness::new)
        .collect()
}

#[tokio::test]
async fn sweep_reclaims_expired_messages_and_claims() {
    for h in harnesses() {
        let clock = ManualClock::default();
        let (s, prefix) = h.open(&clock).await;
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
        assert_eq!(s.stored_message_records(qa).await.unwrap(), 3);
        assert_eq!(s.collect_garbage().await.unwrap(), 0, "nothing expired yet");
        clock.advance_secs(61);
        // Message 2 expired; message 1 is held by the claim, which extended its life.
        assert_eq!(s.collect_garbage().await.unwrap(), 1);
        assert_eq!(s.stored_message_records(qa).await.unwrap(), 2);
        clock.advance_secs(60);
        assert_eq!(s.collect_garbage().await.unwrap(), 1, "the expired claim");
        assert!(s.get_claim(qa, &c.id).await.unwrap().is_none());
        clock.advance_secs(60);
        assert_eq!(
            s.collect_garbage().await.unwrap(),
            1,
            "message 1 after grace"
        );
        assert_eq!(s.stored_message_records(qa).await.unwrap(), 1);
        // Memory is really reclaimed: only the queue's bookkeeping and one message remain.
        s.delete_queue(qa).await.unwrap();
        s.collect_garbage().await.unwrap();
        assert_eq!(
            redis_support::count_prefix(&h.prefixes.url, &prefix),
            0,
            "a deleted queue leaves no key behind"
        );
    }
}

#[tokio::test]
async fn interrupted_dead_letter_moves_complete_exactly_once() {
    for h in harnesses() {
        for stop in [
            DrainStop::BeforeApply,
            DrainStop::AfterApply,
            DrainStop::AfterOutboxRemoval,
        ] {
            let clock = ManualClock::default();
            let (s, prefix) = h.open(&clock).await;
            let qa = q("p", "src");
            let dlq = q("p", "dlq");
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
            // "Another process" over the same keys, after the drainer's lease ran out.
            clock.advance_secs(31);
            let s2 = open(&h.prefixes.url, &prefix, Arc::new(clock.clone())).await;
            s2.collect_garbage().await.unwrap();
            s2.collect_garbage().await.unwrap();
            let in_dlq = s2.list_messages(dlq, &all(10)).await.unwrap();
            assert_eq!(in_dlq.len(), 1, "{stop:?}: exactly one copy in the DLQ");
            assert_eq!(in_dlq[0].body.get(), "\"m\"");
            assert_eq!(in_dlq[0].moved_from.as_deref(), Some("src"));
            assert!(
                s2.list_messages(qa, &all(10)).await.unwrap().is_empty(),
                "{stop:?}"
            );
            assert!(
                s2.get_queue(dlq).await.unwrap().is_some(),
                "{stop:?}: DLQ created"
            );
            let names: Vec<_> = s2
                .list_queues("p", None, 10, &Default::default())
                .await
                .unwrap()
                .into_iter()
                .map(|i| i.name)
                .collect();
            assert_eq!(names, vec!["dlq", "src"], "{stop:?}: both listed");
        }
    }
}

#[tokio::test]
async fn concurrent_drains_by_two_nodes_apply_once() {
    for h in harnesses() {
        let clock = ManualClock::default();
        let (a, prefix) = h.open(&clock).await;
        let b = open(&h.prefixes.url, &prefix, Arc::new(clock.clone())).await;
        let src = q("p", "many");
        for _ in 0..5 {
            let batch = (0..20).map(|i| msg(json!(i), 3600)).collect();
            a.post_messages(src, C1, batch).await.unwrap();
        }
        // Leave 100 messages in the outbox, in 10 transfers, then let both nodes drain at once.
        a.simulate_drain_crash(DrainStop::BeforeApply);
        for _ in 0..10 {
            a.redrive_messages(src, Some("out"), Some(10))
                .await
                .unwrap();
        }
        a.simulate_drain_crash(DrainStop::Never);
        // The interrupted drains hold their leases for 30 s.
        clock.advance_secs(31);
        let (ra, rb) = tokio::join!(a.drain(src), b.drain(src));
        assert_eq!(
            ra.unwrap() + rb.unwrap(),
            10,
            "each transfer completed once"
        );
        let moved = a.list_messages(q("p", "out"), &all(200)).await.unwrap();
        assert_eq!(moved.len(), 100);
        let mut bodies: Vec<i64> = moved
            .iter()
            .map(|m| m.body.get().parse().unwrap())
            .collect();
        bodies.sort();
        let mut want: Vec<i64> = (0..5).flat_map(|_| 0..20).collect();
        want.sort();
        assert_eq!(bodies, want, "nothing lost, nothing duplicated");
    }
}

/// The outbox indexes across slots: a batch whose source a crashed node never listed as
/// pending is found by the next sweep; the sweep removes expired subscriptions and, once a
/// source is idle, every key of it.
#[tokio::test]
async fn notification_indexes_recover_and_are_swept() {
    use zaqar_core::model::{DeliveryOutcome, NewSubscription, SubscriptionCreated};
    for h in harnesses() {
        let clock = ManualClock::default();
        let (s, prefix) = h.open(&clock).await;
        let st = s.subscriptions().unwrap();
        let qa = q("p", "n");
        let sub = NewSubscription {
            subscriber: "http://a".into(),
            ttl: 60,
            options: Default::default(),
            confirmed: true,
        };
        let SubscriptionCreated::New(id) = st.create_subscription("p", "n", sub).await.unwrap()
        else {
            panic!()
        };
        s.post_messages(qa, C1, vec![msg(json!(1), 600)])
            .await
            .unwrap();
        // As if the posting node died between its script and listing the source as pending.
        redis_support::on_every_master(
            &h.prefixes.url,
            &["ZREM", &format!("{prefix}:{{g}}:npend"), "p/n"],
        );
        assert!(st.lease_notifications(10, 60_000).await.unwrap().is_empty());
        s.collect_garbage().await.unwrap();
        let found = st.lease_notifications(10, 60_000).await.unwrap();
        assert_eq!(found.len(), 1, "the sweep lists the batch again");
        conformance::finish(st, &found[0].key, &id, DeliveryOutcome::Delivered).await;
        // The subscription expires; the sweep removes it, and an hour later the source's keys.
        clock.advance_secs(61);
        assert_eq!(
            s.collect_garbage().await.unwrap(),
            1,
            "the expired subscription"
        );
        clock.advance_secs(3600);
        s.collect_garbage().await.unwrap();
        s.delete_queue(qa).await.unwrap();
        s.collect_garbage().await.unwrap();
        // The workers' next scan drops the source from the pending index.
        assert!(st.lease_notifications(10, 60_000).await.unwrap().is_empty());
        assert_eq!(
            redis_support::count_prefix(&h.prefixes.url, &prefix),
            0,
            "nothing of the source is left behind"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_leasers_on_two_nodes_never_share_a_batch() {
    for h in harnesses() {
        let clock = ManualClock::default();
        let (a, prefix) = h.open(&clock).await;
        let b = open(&h.prefixes.url, &prefix, Arc::new(clock.clone())).await;
        conformance::leasers_on_two_nodes_never_share_a_batch(a, b).await;
    }
}

#[tokio::test]
async fn awkward_project_ids_keep_their_own_slot_and_listing() {
    for h in harnesses() {
        let clock = ManualClock::default();
        let (s, _) = h.open(&clock).await;
        let projects = ["a{b}", "a", "a/b", "}{", "p%41", "p A", "ü"];
        for p in projects {
            s.post_messages(q(p, "x"), C1, vec![msg(json!(p), 600)])
                .await
                .unwrap();
            s.create_queue(q(p, "y"), Default::default()).await.unwrap();
        }
        for p in projects {
            let got = s.list_messages(q(p, "x"), &all(10)).await.unwrap();
            assert_eq!(got.len(), 1, "{p}");
            assert_eq!(got[0].body.get(), json!(p).to_string());
            assert_eq!(s.count_queues(p).await.unwrap(), 2, "{p}");
            let c = s.create_claim(q(p, "x"), claim(60, 60, 5)).await.unwrap();
            assert_eq!(c.unwrap().messages.len(), 1, "{p}");
        }
    }
}

#[tokio::test]
async fn unreachable_redis_is_unavailable_not_a_hang() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = redis_support::config("zqtest:none");
    cfg.operation_timeout_ms = 500;
    cfg.connect_timeout_ms = 200;
    let s = RedisStore::open(
        &format!("redis://127.0.0.1:{port}"),
        &cfg,
        Arc::new(ManualClock::default()),
    )
    .await
    .expect("a standalone store opens before Redis is up");
    let started = std::time::Instant::now();
    let e = s
        .post_messages(q("p", "x"), C1, vec![msg(json!(1), 60)])
        .await
        .unwrap_err();
    assert_eq!(e.status(), 503, "{e:?}");
    assert!(e.description().contains("Redis"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    assert_eq!(s.ping().await.unwrap_err().status(), 503);
}

#[tokio::test]
async fn bodies_survive_script_rewrites_byte_for_byte() {
    for h in harnesses() {
        let clock = ManualClock::default();
        let (s, _) = h.open(&clock).await;
        let qa = q("p", "bytes");
        let big = "é🦀\u{0}\"\\x".repeat(30_000);
        let bodies = [
            json!({"n": 12345678901234567890u64, "f": 1.0000000000000002, "s": big}),
            json!("short"),
            json!([1, {"a": null}]),
        ];
        let posted = s
            .post_messages(qa, C1, bodies.iter().map(|b| msg(b.clone(), 600)).collect())
            .await
            .unwrap();
        // A claim and a renewal make the scripts decode and re-encode every record.
        let c = s
            .create_claim(qa, claim(60, 60, 10))
            .await
            .unwrap()
            .unwrap();
        assert!(s.renew_claim(qa, &c.id, 120, 60).await.unwrap());
        s.release_claim(qa, &c.id).await.unwrap();
        let got = s.get_messages(qa, &posted).await.unwrap();
        assert_eq!(got.len(), 3);
        for (b, id) in bodies.iter().zip(&posted) {
            let m = got.iter().find(|m| &m.id == id).unwrap();
            assert_eq!(m.body.get(), b.to_string());
            assert_eq!(m.claim_count, 1);
        }
    }
}
