//! The web console (`[admin] console = true`): one static page and its script, served on the
//! admin listener at `/console`. The page holds no data of its own: it calls the v2 API on the
//! same origin (the admin listener serves the API beside it when the console is on) with the
//! credentials the user enters — a Keystone token, or a project id (and roles) on a server
//! without authentication — so it sees exactly what those credentials allow. It also reads
//! `/metrics` for the live throughput chart.

use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

const PAGE: &str = include_str!("console.html");
const SCRIPT: &str = include_str!("console.js");

/// No inline scripts, no third-party origins, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

pub fn router() -> Router {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route("/console/", get(page))
        .route("/console/app.js", get(script))
}

fn with_headers(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn page() -> Response {
    with_headers("text/html; charset=utf-8", PAGE)
}

async fn script() -> Response {
    with_headers("text/javascript; charset=utf-8", SCRIPT)
}
