//! Assembles the service (store, service layer, HTTP router, WebSocket transport) and serves
//! both listeners with bounded connections and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::config::Config;
use zaqar_api::http::{router, AppState};
use zaqar_api::ws::WebSocketServer;
use zaqar_core::clock::SharedClock;
use zaqar_core::error::{Error, Result};
use zaqar_core::service::crypto::Encryptor;
use zaqar_core::service::{Service, ServiceOptions};
use zaqar_core::store::DataStore;
use zaqar_notify::Notifier;

/// The Keystone client when `auth_strategy = keystone`.
fn keystone(
    config: &Config,
    clock: SharedClock,
) -> Result<Option<Arc<dyn zaqar_core::identity::IdentityProvider>>> {
    if config.auth_strategy != "keystone" {
        return Ok(None);
    }
    let cfg = config.keystone.clone();
    zaqar_api::auth::keystone::Keystone::new(cfg, clock)
        .map(|k| Some(Arc::new(k) as Arc<dyn zaqar_core::identity::IdentityProvider>))
        .map_err(Error::Invalid)
}

/// The quotas of `[quotas]`, with per-project entries of the management store when pooling
/// gives the server one.
fn quotas(
    config: &Config,
    pools: Option<&Arc<zaqar_storage::pooling::PooledStore>>,
) -> Result<zaqar_core::service::quota::Quotas> {
    use zaqar_core::service::quota::{Limits, Quotas};
    let q = &config.quotas;
    let mut quotas = Quotas::new(
        Limits {
            max_queues: q.max_queues_per_project,
            max_messages_per_queue: q.max_messages_per_queue,
            max_bytes: q.max_bytes_per_project,
            requests_per_second: q.requests_per_second as f64,
            burst: q.burst as f64,
        },
        q.overrides_file.as_deref(),
    )
    .map_err(Error::Invalid)?
    .with_bytes_cache(q.bytes_cache_seconds as i64 * 1000);
    if let Some(p) = pools {
        quotas =
            quotas.with_management(p.management().clone(), q.limits_cache_seconds as i64 * 1000);
    }
    Ok(quotas)
}

/// What the transports take from the configuration.
fn api_options(config: &Config) -> zaqar_api::http::ApiOptions {
    zaqar_api::http::ApiOptions {
        admin_mode: config.admin_mode,
        pooling: config.pooling,
        cors: config.cors.clone(),
    }
}

/// A running server's parts, built from configuration.
pub struct App {
    pub config: Config,
    pub service: Arc<Service>,
    pub store: Arc<dyn DataStore>,
    websocket: WebSocketServer,
    /// Notification delivery.
    pub notifier: Arc<Notifier>,
    /// The notification delivery loop (stopped at shutdown).
    delivery: tokio::task::JoinHandle<()>,
}

impl App {
    /// Opens the configured store and builds the service.
    pub async fn build(config: Config, clock: SharedClock) -> Result<App> {
        let enc = &config.encryption;
        let encryptor = Encryptor::from_config(
            enc.passphrase.as_ref().map(|s| s.0.as_str()),
            enc.key_file.as_deref(),
            enc.current_key.as_deref(),
        )
        .map_err(Error::Invalid)?
        .map(Arc::new);
        let (store, pools): (Arc<dyn DataStore>, _) = if config.pooling {
            let pooled =
                zaqar_storage::pooling::PooledStore::open(&config.store_config(), clock.clone())
                    .await?;
            (pooled.clone(), Some(pooled))
        } else {
            (
                zaqar_storage::open(&config.store_config(), clock.clone()).await?,
                None,
            )
        };
        let identity = keystone(&config, clock.clone())?;
        let options = ServiceOptions {
            encryptor: encryptor.clone(),
            checksum: config.enable_checksum,
            max_wait: config.max_wait,
            signing_key: config
                .signed_url_key
                .as_ref()
                .map(|k| k.0.as_bytes().to_vec()),
            identity: identity.clone(),
            policy: zaqar_core::policy::Policy::load(config.policy_file.as_deref())
                .map_err(Error::Invalid)?,
            require_confirmation: config.notification.require_confirmation,
            quotas: Arc::new(quotas(&config, pools.as_ref())?),
            pools: pools.map(|p| p as Arc<dyn zaqar_core::store::management::PoolAdmin>),
        };
        let service =
            Service::new(config.limits.clone(), store.clone(), clock).with_options(options);
        let notifier = Arc::new(Notifier::new(
            store.clone(),
            encryptor,
            config
                .signed_url_key
                .as_ref()
                .map(|k| k.0.as_bytes().to_vec()),
            config.notification.clone(),
            identity,
            service.hub().writes(),
            service.push_connections().clone(),
        ));
        let service = Arc::new(service.with_notifications(notifier.clone()));
        store.attach_hub(service.hub().clone());
        let delivery = notifier.start();
        let websocket =
            WebSocketServer::new(service.clone(), &api_options(&config), &config.websocket);
        websocket.start_notification_listener().await?;
        Ok(App {
            notifier,
            delivery,
            config,
            service,
            store,
            websocket,
        })
    }

    /// The router of the HTTP listener: the v2 HTTP API, plus WebSocket upgrades on any path.
    pub fn router(&self) -> axum::Router {
        let http = router(Arc::new(AppState::new(
            self.service.clone(),
            &api_options(&self.config),
        )));
        self.websocket.accept_upgrades_on(http)
    }

    pub fn websocket(&self) -> &WebSocketServer {
        &self.websocket
    }

    /// Binds the HTTP listener from configuration.
    pub async fn bind(&self) -> Result<TcpListener> {
        let addr = format!("{}:{}", self.config.bind, self.config.port);
        TcpListener::bind(&addr)
            .await
            .map_err(|e| Error::Unavailable(format!("cannot listen on {addr}: {e}")))
    }

    /// Binds the WebSocket listener from configuration (`[drivers:transport:websocket]`).
    pub async fn bind_websocket(&self) -> Result<TcpListener> {
        let ws = &self.config.websocket;
        let addr = format!("{}:{}", ws.bind, ws.port);
        TcpListener::bind(&addr)
            .await
            .map_err(|e| Error::Unavailable(format!("cannot listen on {addr} (WebSocket): {e}")))
    }

    /// The router of the admin listener: `/metrics`, `/healthz`, `/readyz` (see
    /// [`zaqar_core::metrics`]), and with `[admin] console` the web console and the v2 API.
    pub fn admin_router(&self) -> axum::Router {
        let admin = crate::admin::admin_router(self.service.clone());
        if !self.config.admin.console {
            return admin;
        }
        // The console's page, and the API it calls on the same origin (same checks and auth).
        let api = router(Arc::new(AppState::new(
            self.service.clone(),
            &api_options(&self.config),
        )));
        admin.merge(crate::admin::console::router()).merge(api)
    }

    /// Binds the admin listener from configuration (`[admin]`); `None` when `port` is 0.
    pub async fn bind_admin(&self) -> Result<Option<TcpListener>> {
        let admin = &self.config.admin;
        if admin.port == 0 {
            return Ok(None);
        }
        let addr = format!("{}:{}", admin.bind, admin.port);
        TcpListener::bind(&addr)
            .await
            .map(Some)
            .map_err(|e| Error::Unavailable(format!("cannot listen on {addr} (admin): {e}")))
    }

    /// Binds the WebSocket listener, then serves both (see [`App::serve_both`]). When the
    /// WebSocket address is entirely at its defaults and cannot be bound (typically a second
    /// server on the host holding port 9000), HTTP is served alone and an error is logged;
    /// when the operator chose the transport or its address, that failure is fatal.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        let admin = self.bind_admin().await?;
        match self.bind_websocket().await {
            Ok(websocket) => {
                self.serve_all(listener, Some(websocket), admin, shutdown)
                    .await
            }
            Err(e) if !self.config.websocket.required => {
                tracing::error!(
                    error = %e,
                    "WebSocket transport disabled: its default address is not available; \
                     set [drivers:transport:websocket] port to run it"
                );
                self.serve_all(listener, None, admin, shutdown).await
            }
            Err(e) => Err(e),
        }
    }

    /// Serves HTTP on `http` and WebSocket on `websocket` (WebSocket upgrades are accepted on
    /// the HTTP port as well) until `shutdown` resolves. Then both
    /// stop accepting, in-flight HTTP requests finish, WebSocket connections answer what they
    /// are processing and are closed with 1001 (all up to the configured timeout), and the
    /// store is flushed.
    pub async fn serve_both(
        self,
        http: TcpListener,
        websocket: Option<TcpListener>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        self.serve_all(http, websocket, None, shutdown).await
    }

    /// [`App::serve_both`], plus the admin listener (metrics, liveness, readiness) on `admin`
    /// and the queue-depth sampler behind its gauges. The admin listener stops with the others.
    pub async fn serve_all(
        self,
        http: TcpListener,
        websocket: Option<TcpListener>,
        admin: Option<TcpListener>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        let (stop, stopped) = watch::channel(false);
        let admin_conns = async {
            if let Some(listener) = admin {
                if let Ok(addr) = listener.local_addr() {
                    tracing::info!(addr = %addr, "admin listener (metrics, healthz, readyz)");
                }
                let sampler = crate::admin::run_sampler(
                    self.service.clone(),
                    self.config.admin.queue_depth_top,
                    Duration::from_secs(self.config.admin.queue_depth_interval_secs),
                    stopped.clone(),
                );
                let router = self.admin_router();
                let serve =
                    serve_connections("admin", listener, router, &self.config, stopped.clone());
                tokio::join!(sampler, serve);
            }
        };
        let http_conns =
            serve_connections("HTTP", http, self.router(), &self.config, stopped.clone());
        let ws_conns = async {
            if let Some(listener) = websocket {
                if let Ok(addr) = listener.local_addr() {
                    tracing::info!(addr = %addr, "WebSocket transport listening");
                }
                let router = self.websocket.router();
                serve_connections("WebSocket", listener, router, &self.config, stopped.clone())
                    .await;
            }
        };
        let timeout = Duration::from_secs(self.config.shutdown_timeout_secs);
        let signal = async {
            shutdown.await;
            let _ = stop.send(true);
            self.websocket.shutdown(timeout).await;
        };
        tokio::join!(http_conns, ws_conns, admin_conns, signal);
        self.delivery.abort();
        self.store.shutdown().await;
        tracing::info!("store closed; bye");
        Ok(())
    }
}

/// Accepts HTTP/1.1 connections (upgrades allowed) until `stop` turns true; then stops
/// accepting, asks open connections to finish, and waits for them up to the shutdown timeout.
/// Upgraded (WebSocket) connections leave this loop's accounting once upgraded.
async fn serve_connections(
    listener_name: &'static str,
    listener: TcpListener,
    app: axum::Router,
    config: &Config,
    mut stop: watch::Receiver<bool>,
) {
    let max = config.max_connections;
    let limit = Arc::new(Semaphore::new(max));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(config.header_read_timeout_secs))
        .max_buf_size(config.max_header_bytes.max(8192))
        .keep_alive(true);
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stopped(&mut stop) => break,
        };
        let (stream, peer): (_, SocketAddr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!(
        listener = listener_name,
        "no longer accepting connections; finishing in-flight requests"
    );
    let timeout = Duration::from_secs(config.shutdown_timeout_secs);
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(timeout, limit.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            listener = listener_name,
            "shutdown timeout reached with requests still in flight"
        );
    }
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}
