//! Connections to Redis: URI forms (standalone, Sentinel, Cluster), one shared multiplexed
//! connection per store that reconnects by itself, bounded waits, and error mapping.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{Client, Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};

use zaqar_core::error::Error;

/// Where the store's Redis is, parsed from `[drivers:message_store:redis] uri`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// `redis://host:port[/db]`
    Single(String),
    /// `redis://h1:26379,h2:26379?master=NAME[&dbid=N]` (`/N` works too)
    Sentinel {
        sentinels: Vec<String>,
        master: String,
        db: i64,
        password: Option<String>,
    },
    /// `redis+cluster://h1:7000,h2:7001`
    Cluster(Vec<String>),
}

fn bad(uri: &str, why: &str) -> Error {
    // The URI may hold a password: only its scheme is echoed.
    let scheme = uri.split("://").next().unwrap_or("");
    Error::Unavailable(format!(
        "[drivers:message_store:redis] uri (scheme {scheme:?}) is not usable: {why}"
    ))
}

pub(crate) fn parse_uri(uri: &str) -> Result<Target, Error> {
    let uri = uri.trim();
    let (scheme, rest) = uri
        .split_once("://")
        .ok_or_else(|| bad(uri, "expected redis://, rediss:// or redis+cluster://"))?;
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (userinfo, rest) = match rest.rsplit_once('@') {
        Some((u, r)) => (Some(u), r),
        None => (None, rest),
    };
    let (hosts, path) = match rest.split_once('/') {
        Some((h, p)) => (h, p),
        None => (rest, ""),
    };
    let hosts: Vec<&str> = hosts.split(',').filter(|h| !h.is_empty()).collect();
    if hosts.is_empty() {
        return Err(bad(uri, "no host"));
    }
    let params: Vec<(String, String)> = query
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let with_port = |h: &str, default: u16| {
        if h.rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            h.to_string()
        } else {
            format!("{h}:{default}")
        }
    };
    let auth = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
    match scheme {
        "redis+cluster" | "rediss+cluster" => {
            let base = if scheme == "rediss+cluster" {
                "rediss"
            } else {
                "redis"
            };
            Ok(Target::Cluster(
                hosts
                    .iter()
                    .map(|h| format!("{base}://{auth}{}", with_port(h, 6379)))
                    .collect(),
            ))
        }
        "redis" | "rediss" => {
            let db = match param("dbid").or_else(|| (!path.is_empty()).then(|| path.to_string())) {
                Some(d) => d
                    .parse::<i64>()
                    .map_err(|_| bad(uri, "the database must be a number"))?,
                None => 0,
            };
            if let Some(master) = param("master") {
                let password = userinfo
                    .and_then(|u| u.split_once(':').map(|(_, p)| p.to_string()))
                    .filter(|p| !p.is_empty());
                return Ok(Target::Sentinel {
                    sentinels: hosts
                        .iter()
                        .map(|h| format!("redis://{}", with_port(h, 26379)))
                        .collect(),
                    master,
                    db,
                    password,
                });
            }
            if hosts.len() > 1 {
                return Err(bad(
                    uri,
                    "several hosts need ?master=NAME (Sentinel) or the redis+cluster:// scheme",
                ));
            }
            Ok(Target::Single(format!(
                "{scheme}://{auth}{}/{db}",
                with_port(hosts[0], 6379)
            )))
        }
        _ => Err(bad(uri, "expected redis://, rediss:// or redis+cluster://")),
    }
}

/// Timeouts of the connection layer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub connect: Duration,
    pub operation: Duration,
}

/// A connection shared by every request of the store: cheap to clone, multiplexed, and it
/// reconnects by itself after Redis restarts or fails over.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    Sentinel(Arc<SentinelConn>),
}

pub(crate) struct SentinelConn {
    client: tokio::sync::Mutex<SentinelClient>,
    current: std::sync::Mutex<Option<ConnectionManager>>,
    timeouts: Timeouts,
}

fn manager_config(t: Timeouts) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(t.connect))
        .set_response_timeout(Some(t.operation))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500))
}

impl SentinelConn {
    /// The connection to the current master, asking the sentinels when there is none.
    async fn manager(&self) -> RedisResult<ConnectionManager> {
        if let Some(m) = self.current.lock().unwrap().clone() {
            return Ok(m);
        }
        let client = self.client.lock().await.async_get_client().await?;
        let m = ConnectionManager::new_lazy_with_config(client, manager_config(self.timeouts))?;
        *self.current.lock().unwrap() = Some(m.clone());
        Ok(m)
    }

    /// After a failure that may mean the master changed, ask the sentinels again next time.
    fn check(&self, r: &RedisError) {
        let failover = r.is_io_error()
            || r.is_connection_dropped()
            || r.is_connection_refusal()
            || r.is_timeout()
            || r.code() == Some("READONLY");
        if failover {
            *self.current.lock().unwrap() = None;
        }
    }

    async fn master_client(&self) -> RedisResult<Client> {
        self.client.lock().await.async_get_client().await
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Sentinel(s) => Box::pin(async move {
                let mut m = s.manager().await.inspect_err(|e| s.check(e))?;
                m.req_packed_command(cmd).await.inspect_err(|e| s.check(e))
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Sentinel(s) => Box::pin(async move {
                let mut m = s.manager().await.inspect_err(|e| s.check(e))?;
                m.req_packed_commands(pipeline, offset, count)
                    .await
                    .inspect_err(|e| s.check(e))
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
            Conn::Sentinel(_) => 0,
        }
    }
}

/// How to open a dedicated pub/sub connection for the target.
#[derive(Clone)]
pub(crate) enum PubSubSource {
    Single(Client),
    /// Any node of a cluster receives every PUBLISH of the cluster; try them in turn.
    Cluster(Vec<Client>),
    Sentinel(Arc<SentinelConn>),
}

impl PubSubSource {
    pub(super) async fn connect(&self, attempt: usize) -> RedisResult<redis::aio::PubSub> {
        match self {
            PubSubSource::Single(c) => c.get_async_pubsub().await,
            PubSubSource::Cluster(nodes) => nodes[attempt % nodes.len()].get_async_pubsub().await,
            PubSubSource::Sentinel(s) => s.master_client().await?.get_async_pubsub().await,
        }
    }
}

/// Opens the connection (lazily where the client allows: a store can start while Redis is down
/// and becomes usable when it comes up).
pub(crate) async fn connect(target: &Target, t: Timeouts) -> Result<(Conn, PubSubSource), Error> {
    let unavailable = |e: RedisError| Error::Unavailable(format!("cannot use Redis: {e}"));
    match target {
        Target::Single(url) => {
            let client = Client::open(url.as_str()).map_err(unavailable)?;
            let m = ConnectionManager::new_lazy_with_config(client.clone(), manager_config(t))
                .map_err(unavailable)?;
            Ok((Conn::Single(m), PubSubSource::Single(client)))
        }
        Target::Cluster(nodes) => {
            let client = ClusterClientBuilder::new(nodes.clone())
                .connection_timeout(t.connect)
                .response_timeout(t.operation)
                .retries(2)
                .build()
                .map_err(unavailable)?;
            let conn = tokio::time::timeout(t.operation, client.get_async_connection())
                .await
                .map_err(|_| {
                    Error::Unavailable(format!(
                        "Redis Cluster did not answer within {} ms",
                        t.operation.as_millis()
                    ))
                })?
                .map_err(unavailable)?;
            let clients = nodes
                .iter()
                .map(|n| Client::open(n.as_str()))
                .collect::<RedisResult<Vec<_>>>()
                .map_err(unavailable)?;
            Ok((Conn::Cluster(conn), PubSubSource::Cluster(clients)))
        }
        Target::Sentinel {
            sentinels,
            master,
            db,
            password,
        } => {
            let mut info = redis::RedisConnectionInfo::default().set_db(*db);
            if let Some(p) = password {
                info = info.set_password(p);
            }
            let node = SentinelNodeConnectionInfo::default().set_redis_connection_info(info);
            let client = SentinelClient::build(
                sentinels.clone(),
                master.clone(),
                Some(node),
                SentinelServerType::Master,
            )
            .map_err(unavailable)?;
            let s = Arc::new(SentinelConn {
                client: tokio::sync::Mutex::new(client),
                current: std::sync::Mutex::new(None),
                timeouts: t,
            });
            Ok((Conn::Sentinel(s.clone()), PubSubSource::Sentinel(s)))
        }
    }
}

/// Maps a Redis failure to the service's error: unreachable, restarting, failing over or
/// timing out is `Unavailable` (503) with a description that says so; anything else (a bug in
/// a script, a reply of the wrong shape) is `Internal`.
pub(crate) fn map_err(e: RedisError) -> Error {
    use redis::ErrorKind;
    let transient = e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_cluster_error()
        || matches!(
            e.code(),
            Some(
                "LOADING"
                    | "BUSY"
                    | "MASTERDOWN"
                    | "READONLY"
                    | "TRYAGAIN"
                    | "CLUSTERDOWN"
                    | "OOM"
                    | "NOREPLICAS"
                    | "MISCONF"
            )
        );
    if transient || !matches!(e.kind(), ErrorKind::Parse | ErrorKind::UnexpectedReturnType) {
        Error::Unavailable(format!("the Redis message store is unavailable: {e}"))
    } else {
        Error::Internal(format!("unexpected reply from Redis: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_forms() {
        assert_eq!(
            parse_uri("redis://127.0.0.1:6379").unwrap(),
            Target::Single("redis://127.0.0.1:6379/0".into())
        );
        assert_eq!(
            parse_uri("redis://:pw@h/3").unwrap(),
            Target::Single("redis://:pw@h:6379/3".into())
        );
        assert_eq!(
            parse_uri("redis://h1:26379,h2?master=mymaster").unwrap(),
            Target::Sentinel {
                sentinels: vec!["redis://h1:26379".into(), "redis://h2:26379".into()],
                master: "mymaster".into(),
                db: 0,
                password: None
            }
        );
        assert_eq!(
            parse_uri("redis+cluster://h1:7000,h2:7001").unwrap(),
            Target::Cluster(vec!["redis://h1:7000".into(), "redis://h2:7001".into()])
        );
        assert!(parse_uri("redis://h1,h2").is_err());
        assert!(parse_uri("http://h").is_err());
        let e = parse_uri("mongodb://user:secret@h").unwrap_err();
        assert!(!e.to_string().contains("secret"));
    }
}
