//! The admin listener (`[admin]`): Prometheus metrics, liveness and readiness probes, the
//! queue-depth sampler behind the depth gauges, and (with `[admin] console`) the web console.
//!
//! Routes (see [`admin_router`]): `GET /metrics` (Prometheus text format 0.0.4),
//! `GET /healthz` (the process is up), `GET /readyz` (the store answers a ping; 503 otherwise).

pub mod console;
#[cfg(feature = "otel")]
pub mod otel;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::Router;

use zaqar_core::metrics::{self, Depth, FORGET_AFTER};
use zaqar_core::model::QueueRef;
use zaqar_core::service::Service;

/// How long `/readyz` waits for the store's ping.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// Samples the depth of the recently used queues, keeps the `top` deepest as gauges (and the
/// `top` projects with the most messages), forgets queues that stayed empty and unused, and
/// records whether the store answers.
pub async fn sample_depths(service: &Service, top: usize) {
    let up = service.ping().await;
    metrics::set_backend_up(up);
    metrics::set_longpoll_queues(service.hub().watched_queues());
    if top == 0 || !up {
        return;
    }
    let started = Instant::now();
    let tracked = metrics::tracked_queues();
    let mut depths = Vec::with_capacity(tracked.len());
    let mut forget = Vec::new();
    for t in tracked {
        let Ok(stats) = service
            .store()
            .queue_stats(QueueRef::new(&t.project, &t.queue))
            .await
        else {
            continue;
        };
        depths.push(Depth {
            project: t.project.clone(),
            queue: t.queue.clone(),
            total: stats.total,
            claimed: stats.claimed,
            delayed: stats.delayed,
        });
        if stats.total == 0 && t.last_used.elapsed() > FORGET_AFTER {
            forget.push(t);
        }
    }
    metrics::forget_queues(forget);
    metrics::publish_depths(depths, top, started.elapsed());
}

/// Samples every `interval` until `stop` turns true.
pub async fn run_sampler(
    service: Arc<Service>,
    top: usize,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => sample_depths(&service, top).await,
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
        }
    }
}

// ----- the admin listener -------------------------------------------------------------------

/// The routes of the admin listener. It is not authenticated: bind it to a private address.
pub fn admin_router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/metrics", routing::get(metrics_endpoint))
        .route("/healthz", routing::get(healthz))
        .route("/readyz", routing::get(readyz))
        .with_state(service)
}

async fn metrics_endpoint(State(service): State<Arc<Service>>) -> Response {
    // Cheap, so always current (the sampler refreshes the rest).
    metrics::set_longpoll_queues(service.hub().watched_queues());
    (
        [(
            header::CONTENT_TYPE,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )],
        metrics::get().encode(),
    )
        .into_response()
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn healthz() -> Response {
    json(StatusCode::OK, serde_json::json!({"status": "ok"}))
}

async fn readyz(State(service): State<Arc<Service>>) -> Response {
    let up = tokio::time::timeout(READY_TIMEOUT, service.ping())
        .await
        .unwrap_or(false);
    metrics::set_backend_up(up);
    if up {
        json(StatusCode::OK, serde_json::json!({"status": "ready"}))
    } else {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "unavailable", "reason": "the message store does not answer"}),
        )
    }
}
