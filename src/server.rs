//! Assembles the service (store, service layer, HTTP router) and serves it with bounded
//! connections and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::http::{router, AppState};
use crate::service::crypto::Encryptor;
use crate::service::{Service, ServiceOptions};
use crate::storage::DataStore;

/// A running server's parts, built from configuration.
pub struct App {
    pub config: Config,
    pub service: Arc<Service>,
    pub store: Arc<dyn DataStore>,
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
        let store = crate::storage::open(&config, clock.clone()).await?;
        let options = ServiceOptions {
            encryptor,
            checksum: config.enable_checksum,
            max_wait: config.max_wait,
        };
        let service = Arc::new(
            Service::new(config.limits.clone(), store.clone(), clock).with_options(options),
        );
        store.attach_hub(service.hub().clone());
        Ok(App {
            config,
            service,
            store,
        })
    }

    pub fn router(&self) -> axum::Router {
        router(Arc::new(AppState {
            service: self.service.clone(),
            admin_mode: self.config.admin_mode,
        }))
    }

    /// Binds the HTTP listener from configuration.
    pub async fn bind(&self) -> Result<TcpListener> {
        let addr = format!("{}:{}", self.config.bind, self.config.port);
        TcpListener::bind(&addr)
            .await
            .map_err(|e| Error::Unavailable(format!("cannot listen on {addr}: {e}")))
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish
    /// (up to the configured timeout) and flushes the store.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        let app = self.router();
        serve_connections(listener, app, &self.config, shutdown).await;
        self.store.shutdown().await;
        tracing::info!("store closed; bye");
        Ok(())
    }
}

async fn serve_connections(
    listener: TcpListener,
    app: axum::Router,
    config: &Config,
    shutdown: impl Future<Output = ()>,
) {
    let limit = Arc::new(Semaphore::new(config.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(config.header_read_timeout_secs))
        .max_buf_size(config.max_header_bytes.max(8192))
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = &mut shutdown => break,
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
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("no longer accepting connections; finishing in-flight requests");
    let timeout = Duration::from_secs(config.shutdown_timeout_secs);
    if tokio::time::timeout(timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown timeout reached with requests still in flight");
    }
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
