//! Sentinel: the store finds the master through `redis://sentinel?master=NAME` and follows a
//! failover by itself. Uses private `redis-server` processes (master, replica, sentinel) on
//! spare ports; runs with the other Redis tests (gated by `ZAQAR_TEST_REDIS_URL`).

use zaqar_testkit::redis_support;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::value::RawValue;
use zaqar_core::clock::SystemClock;
use zaqar_core::model::{ListQuery, NewMessage, QueueRef};
use zaqar_core::store::MessageStore;

use redis_support::{backend, free_port, open, STANDALONE};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// The child is reaped by `Proc::drop`.
#[allow(clippy::zombie_processes)]
fn spawn(args: &[&str]) -> Proc {
    Proc(
        Command::new("redis-server")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server"),
    )
}

fn query<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let mut c = client.get_connection_with_timeout(Duration::from_secs(1))?;
    cmd.query(&mut c)
}

fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

fn master_port(sentinel: u16) -> Option<u16> {
    let mut cmd = redis::cmd("SENTINEL");
    cmd.arg("GET-MASTER-ADDR-BY-NAME").arg("zq");
    let addr: Vec<String> = query(sentinel, &cmd).ok()?;
    addr.get(1)?.parse().ok()
}

fn msg(n: i64) -> NewMessage {
    NewMessage {
        body: RawValue::from_string(n.to_string()).unwrap(),
        ttl: 600,
        delay: 0,
        checksum: None,
        encrypted: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_store_follows_a_failover() {
    if backend(STANDALONE).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (p1, p2, ps) = (free_port(), free_port(), free_port());
    let common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
    let _master = spawn(&[&["--port", &p1.to_string()][..], &common[..]].concat());
    let _replica = spawn(
        &[
            &["--port", &p2.to_string()][..],
            &common[..],
            &["--replicaof", "127.0.0.1", &p1.to_string()][..],
        ]
        .concat(),
    );
    let conf = dir.path().join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {ps}\nbind 127.0.0.1\ndir {}\nsentinel monitor zq 127.0.0.1 {p1} 1\n\
             sentinel down-after-milliseconds zq 1000\nsentinel failover-timeout zq 5000\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let _sentinel = spawn(&[conf.to_str().unwrap(), "--sentinel"]);
    wait_for("the replica to sync", 20, || {
        query::<String>(p2, redis::cmd("INFO").arg("replication"))
            .is_ok_and(|i| i.contains("master_link_status:up"))
    });
    wait_for("the sentinel to know the master", 20, || {
        master_port(ps) == Some(p1)
    });

    let url = format!("redis://127.0.0.1:{ps}?master=zq");
    let store = open(&url, "zqsentinel", Arc::new(SystemClock)).await;
    let q = QueueRef::new("p", "q");
    // A sentinel that has just started may not vouch for the master yet (503 meanwhile).
    let deadline = Instant::now() + Duration::from_secs(15);
    let before = loop {
        match store.post_messages(q, "c", vec![msg(1), msg(2)]).await {
            Ok(ids) => break ids,
            Err(e) => {
                assert_eq!(e.status(), 503, "{e:?}");
                assert!(Instant::now() < deadline, "sentinel never answered: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert_eq!(before.len(), 2);
    // Make sure the replica has the writes before it is promoted.
    let _: i64 = query(p1, redis::cmd("WAIT").arg(1).arg(2000)).unwrap();

    // The sentinel learns about replicas from the master's INFO (every few seconds), and
    // refuses a failover (NOGOODSLAVE) until it has a healthy one: retry until it accepts.
    wait_for("the sentinel to accept a failover", 40, || {
        query::<String>(ps, redis::cmd("SENTINEL").arg("FAILOVER").arg("zq")).is_ok()
    });
    wait_for("the failover", 30, || master_port(ps) == Some(p2));

    // The store notices (connection reset or READONLY from the demoted master) and asks the
    // sentinel again: writes succeed again without reopening the store.
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        match store.post_messages(q, "c", vec![msg(3)]).await {
            Ok(ids) => break ids,
            Err(e) => {
                assert_eq!(e.status(), 503, "{e:?}");
                assert!(Instant::now() < deadline, "no recovery after failover: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert_eq!(after.len(), 1);
    let role: Vec<redis::Value> = query(p2, &redis::cmd("ROLE")).unwrap();
    assert!(matches!(&role[0], redis::Value::BulkString(b) if b == b"master"));
    let all = ListQuery {
        marker: None,
        limit: 10,
        exclude_client: None,
        include_claimed: true,
        include_delayed: true,
    };
    let listed: Vec<String> = store
        .list_messages(q, &all)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body.get().to_string())
        .collect();
    assert_eq!(listed, vec!["1", "2", "3"]);
}
