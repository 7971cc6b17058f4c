//! The conformance suite against a `PooledStore`: two embedded pools (per-project placement, so
//! dead-lettering and redrive stay in one pool), and, with `ZAQAR_TEST_REDIS_URL` and
//! `ZAQAR_TEST_POSTGRES_URL`, a Redis pool plus a PostgreSQL pool. Then pooling-only checks
//! (per-queue placement): spreading by weight, merged listings, flavors, refused cross-pool
//! moves, an unreachable pool, pool removal, and both management stores.

use zaqar_core::testsuite as conformance;
use zaqar_testkit::postgres_support;
use zaqar_testkit::redis_support;

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{json, Map};
use zaqar_core::clock::ManualClock;
use zaqar_core::error::Error;
use zaqar_core::model::QueueFilter;
use zaqar_core::store::management::{Flavor, ManagementStore, Pool};
use zaqar_core::store::{ClaimStore, DataStore, MessageStore, QueueStore};
use zaqar_storage::pooling::management::{EmbeddedManagement, PostgresManagement};
use zaqar_storage::pooling::{Placement, PooledStore};
use zaqar_storage::DriverSettings;

use conformance::{claim, claim_dlq, msg, q, Harness, C1};

pub(crate) fn defaults(dir: &std::path::Path) -> DriverSettings {
    DriverSettings {
        embedded: zaqar_storage::embedded::EmbeddedStoreConfig {
            path: dir.to_path_buf(),
            shards: 2,
            cache_size_mb: 8,
            gc_interval_secs: 3600,
        },
        redis: redis_support::config("unused"),
        postgresql: postgres_support::config(""),
    }
}

pub(crate) fn pool(name: &str, uri: &str, weight: i64) -> Pool {
    Pool {
        name: name.into(),
        uri: uri.into(),
        weight,
        flavor: None,
        options: Map::new(),
    }
}

/// A pooled store over `pools` with an embedded management store; the directory lives as long
/// as the returned guard.
async fn pooled(
    placement: Placement,
    clock: &ManualClock,
    pools: &[Pool],
) -> (Arc<PooledStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mgmt = EmbeddedManagement::open(&dir.path().join("mgmt")).unwrap();
    let s = PooledStore::new(
        mgmt,
        defaults(dir.path()),
        placement,
        Arc::new(clock.clone()),
    );
    for p in pools {
        s.put_pool(p.clone()).await.unwrap();
    }
    (s, dir)
}

#[derive(Default)]
struct TwoEmbedded {
    dirs: std::sync::Mutex<Vec<tempfile::TempDir>>,
}

#[async_trait::async_trait]
impl Harness for TwoEmbedded {
    async fn store(&self, clock: ManualClock) -> Arc<dyn DataStore> {
        let (s, dir) = pooled(
            Placement::Project,
            &clock,
            &[pool("a", "embedded://a", 1), pool("b", "embedded://b", 1)],
        )
        .await;
        self.dirs.lock().unwrap().push(dir);
        s
    }
}

zaqar_core::conformance_tests!(TwoEmbedded::default());

/// A Redis pool and a PostgreSQL pool (each under its own prefix / schema).
struct RedisAndPostgres {
    prefixes: redis_support::Prefixes,
    schemas: postgres_support::Schemas,
    dirs: std::sync::Mutex<Vec<tempfile::TempDir>>,
}

impl RedisAndPostgres {
    fn new() -> Option<RedisAndPostgres> {
        let redis = redis_support::backend(redis_support::STANDALONE)?;
        let pg = postgres_support::backend()?;
        Some(RedisAndPostgres {
            prefixes: redis_support::Prefixes::new(redis),
            schemas: postgres_support::Schemas::new(pg),
            dirs: Default::default(),
        })
    }
}

#[async_trait::async_trait]
impl Harness for RedisAndPostgres {
    async fn store(&self, clock: ManualClock) -> Arc<dyn DataStore> {
        let mut r = pool("r", &self.prefixes.url, 1);
        r.options
            .insert("key_prefix".into(), json!(self.prefixes.fresh()));
        let mut p = pool("p", &self.schemas.url, 1);
        p.options
            .insert("schema".into(), json!(self.schemas.fresh()));
        let (s, dir) = pooled(Placement::Project, &clock, &[r, p]).await;
        self.dirs.lock().unwrap().push(dir);
        s
    }
}

mod redis_and_postgres {
    use super::RedisAndPostgres;
    zaqar_core::conformance_tests!(match RedisAndPostgres::new() {
        Some(h) => h,
        None => return,
    });
}

// ----- pooling-only checks ----------------------------------------------------------------

#[tokio::test]
async fn queues_spread_by_weight_and_stay_on_their_pool() {
    let clock = ManualClock::default();
    let (s, _d) = pooled(
        Placement::Queue,
        &clock,
        &[
            pool("a", "embedded://a", 3),
            pool("b", "embedded://b", 1),
            pool("z", "embedded://z", 0),
        ],
    )
    .await;
    let mut on = std::collections::HashMap::<String, usize>::new();
    for i in 0..200 {
        let name = format!("q{i:03}");
        s.post_messages(q("p", &name), C1, vec![msg(json!(i), 600)])
            .await
            .unwrap();
        let p = s.pool_of_queue("p", &name).await.unwrap().unwrap();
        *on.entry(p).or_default() += 1;
    }
    assert!(!on.contains_key("z"), "weight 0 is never chosen: {on:?}");
    let (a, b) = (on["a"], on["b"]);
    assert!(a > b && b > 20, "about 3:1: {on:?}");
    // Deleted and re-created: same pool.
    let before = s.pool_of_queue("p", "q000").await.unwrap();
    s.delete_queue(q("p", "q000")).await.unwrap();
    s.create_queue(q("p", "q000"), Map::new()).await.unwrap();
    assert_eq!(s.pool_of_queue("p", "q000").await.unwrap(), before);
    // The merged listing pages through every pool in name order.
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = s
            .list_queues("p", marker.as_deref(), 7, &QueueFilter::default())
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        marker = Some(page.last().unwrap().name.clone());
        seen.extend(page.into_iter().map(|i| i.name));
    }
    let expected: Vec<String> = (0..200).map(|i| format!("q{i:03}")).collect();
    assert_eq!(seen, expected);
    assert_eq!(s.count_queues("p").await.unwrap(), 200);
}

#[tokio::test]
async fn flavors_choose_their_pools() {
    let clock = ManualClock::default();
    let mut f1 = pool("f1", "embedded://f1", 1);
    f1.flavor = Some("gold".into());
    let (s, _d) = pooled(
        Placement::Queue,
        &clock,
        &[pool("plain", "embedded://plain", 1), f1],
    )
    .await;
    let meta: Map<_, _> = json!({"_flavor": "gold"}).as_object().unwrap().clone();
    let err = s.create_queue(q("p", "g"), meta.clone()).await.unwrap_err();
    assert_eq!(err.status(), 400, "flavor does not exist yet: {err:?}");
    s.management()
        .put_flavor(
            &Flavor {
                project: "p".into(),
                name: "gold".into(),
                capabilities: vec![],
            },
            &["f1".to_string()],
        )
        .await
        .unwrap();
    for i in 0..20 {
        let name = format!("g{i}");
        s.create_queue(q("p", &name), meta.clone()).await.unwrap();
        assert_eq!(s.pool_of_queue("p", &name).await.unwrap().unwrap(), "f1");
        let plain = format!("n{i}");
        s.create_queue(q("p", &plain), Map::new()).await.unwrap();
        assert_eq!(
            s.pool_of_queue("p", &plain).await.unwrap().unwrap(),
            "plain"
        );
    }
    // The last pool of an existing flavor cannot be removed.
    let err = s.delete_pool("f1").await.unwrap_err();
    assert_eq!(err.status(), 403, "{err:?}");
}

#[tokio::test]
async fn moves_between_pools_are_refused_and_within_a_pool_work() {
    let clock = ManualClock::default();
    let (s, _d) = pooled(
        Placement::Queue,
        &clock,
        &[pool("a", "embedded://a", 1), pool("b", "embedded://b", 1)],
    )
    .await;
    // Find two queues on different pools.
    s.create_queue(q("p", "src"), Map::new()).await.unwrap();
    let src_pool = s.pool_of_queue("p", "src").await.unwrap().unwrap();
    let mut other = None;
    for i in 0..100 {
        let n = format!("o{i}");
        s.create_queue(q("p", &n), Map::new()).await.unwrap();
        if s.pool_of_queue("p", &n).await.unwrap().unwrap() != src_pool {
            other = Some(n);
            break;
        }
    }
    let other = other.expect("a queue on the other pool");
    s.post_messages(q("p", "src"), C1, vec![msg(json!(1), 600)])
        .await
        .unwrap();
    let err = s
        .create_claim(q("p", "src"), claim_dlq(60, 1, 1, &other, None))
        .await
        .unwrap_err();
    assert_eq!(err.status(), 400, "{err:?}");
    // An unbound dead-letter queue follows its source.
    s.create_claim(q("p", "src"), claim_dlq(60, 1, 1, "fresh-dlq", None))
        .await
        .unwrap()
        .unwrap();
    clock.advance_secs(61);
    assert!(s
        .create_claim(q("p", "src"), claim_dlq(60, 1, 1, "fresh-dlq", None))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        s.pool_of_queue("p", "fresh-dlq").await.unwrap().unwrap(),
        src_pool
    );
    let moved = s
        .list_messages(q("p", "fresh-dlq"), &conformance::all(10))
        .await
        .unwrap();
    assert_eq!(moved.len(), 1);
    let err = s
        .redrive_messages(q("p", "fresh-dlq"), Some(&other), None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), 400);
}

#[tokio::test]
async fn an_unreachable_pool_fails_only_its_queues() {
    let clock = ManualClock::default();
    let (s, dir) = pooled(Placement::Queue, &clock, &[pool("a", "embedded://a", 1)]).await;
    s.create_queue(q("p", "good"), Map::new()).await.unwrap();
    // Registered behind the API's back (the API refuses unreachable URIs), then given weight.
    let mgmt = s.management().clone();
    let mut dead = pool("dead", "redis://127.0.0.1:1", 1);
    dead.options.insert("key_prefix".into(), json!("zq-dead"));
    mgmt.put_pool(&dead).await.unwrap();
    mgmt.put_pool(&pool("a", "embedded://a", 0)).await.unwrap();
    let s2 = PooledStore::new(
        mgmt.clone(),
        defaults(dir.path()),
        Placement::Queue,
        Arc::new(clock.clone()),
    );
    drop(s); // the embedded pool may be opened once per process
    let err = s2
        .post_messages(q("p", "doomed"), C1, vec![msg(json!(1), 60)])
        .await
        .unwrap_err();
    assert_eq!(err.status(), 503, "{err:?}");
    // The queue on the healthy pool keeps working, and listings skip the dead pool.
    s2.post_messages(q("p", "good"), C1, vec![msg(json!(1), 60)])
        .await
        .unwrap();
    assert!(s2
        .create_claim(q("p", "good"), claim(60, 60, 1))
        .await
        .unwrap()
        .is_some());
    let names: Vec<String> = s2
        .list_queues("p", None, 10, &QueueFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, vec!["good"]);
    // Registering an unreachable URI through the store is a 400.
    let err = s2
        .put_pool(pool("dead2", "redis://127.0.0.1:2", 1))
        .await
        .unwrap_err();
    assert_eq!(err.status(), 400, "{err:?}");
    s2.shutdown().await;
}

#[tokio::test]
async fn pool_removal_waits_for_its_queues() {
    let clock = ManualClock::default();
    let (s, _d) = pooled(Placement::Queue, &clock, &[pool("a", "embedded://a", 1)]).await;
    s.create_queue(q("p", "x"), Map::new()).await.unwrap();
    let err = s.delete_pool("a").await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    s.delete_queue(q("p", "x")).await.unwrap();
    s.delete_pool("a").await.unwrap();
    assert!(s.pool_of_queue("p", "x").await.unwrap().is_none());
    let err = s.create_queue(q("p", "x"), Map::new()).await.unwrap_err();
    assert_eq!(err.status(), 503, "no pool left: {err:?}");
    // Same URI twice is a conflict.
    s.put_pool(pool("one", "embedded://u", 1)).await.unwrap();
    let err = s
        .put_pool(pool("two", "embedded://u", 1))
        .await
        .unwrap_err();
    assert_eq!(err.status(), 409);
}

/// The same checks against both management stores.
pub(crate) async fn management_contract(m: Arc<dyn ManagementStore>) {
    m.put_pool(&pool("p1", "redis://h1", 1)).await.unwrap();
    m.put_pool(&pool("p2", "redis://h2", 2)).await.unwrap();
    m.put_pool(&pool("p3", "redis://h3", 3)).await.unwrap();
    let err = m.put_pool(&pool("p4", "redis://h1", 1)).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    let names = |v: Vec<Pool>| v.into_iter().map(|p| p.name).collect::<Vec<_>>();
    assert_eq!(names(m.list_pools(None, 2).await.unwrap()), ["p1", "p2"]);
    assert_eq!(
        names(m.list_pools(Some("p1"), 10).await.unwrap()),
        ["p2", "p3"]
    );
    let f = Flavor {
        project: "proj".into(),
        name: "f".into(),
        capabilities: vec!["FIFO".into()],
    };
    m.put_flavor(&f, &["p1".into(), "p2".into()]).await.unwrap();
    assert_eq!(
        m.get_pool("p2").await.unwrap().unwrap().flavor.as_deref(),
        Some("f")
    );
    m.put_flavor(&f, &["p2".into()]).await.unwrap();
    assert_eq!(m.get_pool("p1").await.unwrap().unwrap().flavor, None);
    assert!(m.flavor_exists_anywhere("f").await.unwrap());
    assert_eq!(
        m.list_flavors("proj", None, 10).await.unwrap(),
        vec![f.clone()]
    );
    assert!(m.list_flavors("other", None, 10).await.unwrap().is_empty());
    assert_eq!(m.get_flavor("proj", "f").await.unwrap(), Some(f));
    m.delete_flavor("proj", "f").await.unwrap();
    assert_eq!(m.get_pool("p2").await.unwrap().unwrap().flavor, None);
    assert_eq!(m.catalog_bind("proj", "q", "p1").await.unwrap(), "p1");
    assert_eq!(
        m.catalog_bind("proj", "q", "p2").await.unwrap(),
        "p1",
        "sticky"
    );
    assert_eq!(
        m.catalog_get("proj", "q").await.unwrap().as_deref(),
        Some("p1")
    );
    assert_eq!(
        m.catalog_of_pool("p1").await.unwrap(),
        vec![("proj".to_string(), "q".to_string())]
    );
    m.delete_pool("p1").await.unwrap();
    assert_eq!(m.catalog_get("proj", "q").await.unwrap(), None);
    assert!(m.get_pool("p1").await.unwrap().is_none());
    // Concurrent binds agree on one pool.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let m = m.clone();
        tasks.push(tokio::spawn(async move {
            m.catalog_bind("proj", "race", if i % 2 == 0 { "p2" } else { "p3" })
                .await
                .unwrap()
        }));
    }
    let mut winners = HashSet::new();
    for t in tasks {
        winners.insert(t.await.unwrap());
    }
    assert_eq!(winners.len(), 1);
    // Per-project limits.
    use zaqar_core::store::management::ProjectQuota;
    assert_eq!(m.get_quota("proj").await.unwrap(), None);
    let lim = ProjectQuota {
        max_bytes: Some(10),
        requests_per_second: Some(0.5),
        ..Default::default()
    };
    m.put_quota("proj", &lim).await.unwrap();
    m.put_quota("a b", &ProjectQuota::default()).await.unwrap();
    assert_eq!(m.get_quota("proj").await.unwrap(), Some(lim));
    let replaced = ProjectQuota {
        max_queues: Some(i64::MAX as u64),
        max_messages_per_queue: Some(0),
        burst: Some(3.0),
        ..Default::default()
    };
    m.put_quota("proj", &replaced).await.unwrap();
    assert_eq!(m.get_quota("proj").await.unwrap(), Some(replaced));
    let projects = |v: Vec<(String, ProjectQuota)>| v.into_iter().map(|x| x.0).collect::<Vec<_>>();
    assert_eq!(
        projects(m.list_quotas(None, 10).await.unwrap()),
        ["a b", "proj"]
    );
    assert_eq!(projects(m.list_quotas(None, 1).await.unwrap()), ["a b"]);
    assert_eq!(
        projects(m.list_quotas(Some("a b"), 10).await.unwrap()),
        ["proj"]
    );
    m.delete_quota("proj").await.unwrap();
    m.delete_quota("proj").await.unwrap();
    assert_eq!(m.get_quota("proj").await.unwrap(), None);
    assert_eq!(
        m.get_quota("a b").await.unwrap(),
        Some(ProjectQuota::default())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_management_store() {
    let dir = tempfile::tempdir().unwrap();
    management_contract(EmbeddedManagement::open(dir.path()).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_management_store() {
    let Some(url) = postgres_support::backend() else {
        return;
    };
    let schemas = postgres_support::Schemas::new(url.clone());
    let schema = schemas.fresh();
    let m = PostgresManagement::open(&url, &schema, 0).await.unwrap();
    management_contract(m.clone()).await;
    m.close().await;
}

#[tokio::test]
async fn quotas_take_management_entries_per_field_and_cache_them() {
    use zaqar_core::service::quota::{Limits, Quotas};
    use zaqar_core::store::management::ProjectQuota;
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedManagement::open(dir.path()).unwrap();
    let mut f = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut f, br#"{"p": {"max_queues": 5, "max_bytes": 50}}"#).unwrap();
    let q = Quotas::new(
        Limits {
            max_queues: 1,
            max_messages_per_queue: 9,
            ..Default::default()
        },
        Some(f.path()),
    )
    .unwrap()
    .with_management(store.clone(), 1000);
    assert_eq!(q.limits("p", 0).await.max_bytes, 50, "no entry yet");
    let entry = ProjectQuota {
        max_bytes: Some(10),
        ..Default::default()
    };
    store.put_quota("p", &entry).await.unwrap();
    // Written through another node: this one sees it once its cached read is stale.
    assert_eq!(q.limits("p", 999).await.max_bytes, 50);
    let l = q.limits("p", 1000).await;
    assert_eq!(l.max_bytes, 10, "the entry wins");
    assert_eq!(l.max_queues, 5, "unset fields come from the overrides file");
    assert_eq!(q.limits("other", 1000).await.max_messages_per_queue, 9);
    // Written through this node: at once.
    store.delete_quota("p").await.unwrap();
    q.remember("p", None, 1001);
    assert_eq!(q.limits("p", 1001).await.max_bytes, 50);
}
