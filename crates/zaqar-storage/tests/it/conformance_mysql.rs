//! The MySQL / MariaDB management store (`ZAQAR_TEST_MYSQL_URL`): the management contract, the
//! whole conformance suite through a pooled store whose catalog lives in MySQL, SQLAlchemy's
//! URI spellings, and migrations run by several nodes starting at once.

use std::sync::Arc;

use zaqar_core::clock::ManualClock;
use zaqar_core::store::management::ManagementStore;
use zaqar_core::store::DataStore;
use zaqar_core::testsuite::Harness;
use zaqar_storage::pooling::management::MysqlManagement;
use zaqar_storage::pooling::{Placement, PooledStore};
use zaqar_testkit::mysql_support::{self, Databases};

use crate::conformance_pooled::{defaults, management_contract, pool};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_management_store() {
    let Some(url) = mysql_support::backend() else {
        return;
    };
    let dbs = Databases::new(url);
    let m = MysqlManagement::open(&dbs.fresh().await, 0).await.unwrap();
    management_contract(m.clone()).await;
    m.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlalchemy_uris_open_the_same_store() {
    let Some(url) = mysql_support::backend() else {
        return;
    };
    let dbs = Databases::new(url);
    let db = dbs.fresh().await;
    let first = MysqlManagement::open(&db, 0).await.unwrap();
    first.put_pool(&pool("p1", "redis://h1", 1)).await.unwrap();
    for scheme in ["mysql+pymysql", "mysql+mysqldb"] {
        let uri = format!("{scheme}://{}", db.split_once("://").unwrap().1);
        let m = MysqlManagement::open(&uri, 0).await.unwrap();
        assert_eq!(m.get_pool("p1").await.unwrap().unwrap().uri, "redis://h1");
        m.close().await;
    }
    first.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_at_once_migrate_once() {
    let Some(url) = mysql_support::backend() else {
        return;
    };
    let dbs = Databases::new(url);
    let db = dbs.fresh().await;
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { MysqlManagement::open(&db, 0).await })
        })
        .collect();
    let mut stores = Vec::new();
    for o in opens {
        stores.push(o.await.unwrap().expect("every node opens the store"));
    }
    // Every node sees the same tables; the versions are recorded once each.
    stores[0]
        .put_pool(&pool("p", "redis://h", 1))
        .await
        .unwrap();
    for s in &stores {
        assert!(s.get_pool("p").await.unwrap().is_some());
    }
    let mut c = <sqlx::MySqlConnection as sqlx::Connection>::connect(&db)
        .await
        .unwrap();
    let versions: Vec<i32> =
        sqlx::query_scalar("SELECT version FROM zaqar_migrations ORDER BY version")
            .fetch_all(&mut c)
            .await
            .unwrap();
    assert_eq!(versions, [1, 2]);
    for s in stores {
        s.close().await;
    }
}

/// Two embedded pools, the catalog in MySQL (one database per case).
struct MysqlCatalog {
    dbs: Databases,
    dirs: std::sync::Mutex<Vec<tempfile::TempDir>>,
}

impl MysqlCatalog {
    fn new() -> Option<MysqlCatalog> {
        Some(MysqlCatalog {
            dbs: Databases::new(mysql_support::backend()?),
            dirs: std::sync::Mutex::default(),
        })
    }
}

#[async_trait::async_trait]
impl Harness for MysqlCatalog {
    async fn store(&self, clock: ManualClock) -> Arc<dyn DataStore> {
        let dir = tempfile::tempdir().unwrap();
        let mgmt = MysqlManagement::open(&self.dbs.fresh().await, 0)
            .await
            .unwrap();
        let s = PooledStore::new(
            mgmt,
            defaults(dir.path()),
            // Moves (dead letters, redrive) stay in one pool: the suite moves between queues.
            Placement::Project,
            Arc::new(clock),
        );
        for p in [pool("a", "embedded://a", 1), pool("b", "embedded://b", 1)] {
            s.put_pool(p).await.unwrap();
        }
        self.dirs.lock().unwrap().push(dir);
        s
    }
}

mod pooled_with_mysql_catalog {
    use super::MysqlCatalog;
    zaqar_core::conformance_tests!(match MysqlCatalog::new() {
        Some(h) => h,
        None => return,
    });
}
