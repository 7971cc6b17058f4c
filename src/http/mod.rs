//! The HTTP transport (Zaqar v2 REST API): routing, the per-request checks of spec §2.1, and
//! translation between HTTP and the service layer.

mod error;
mod handlers;
mod query;
mod wire;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use tracing::Instrument;

use crate::error::Error;
use crate::service::{validate, Service};

pub use error::PATCH_MEDIA_TYPE;

/// Shared state of every handler.
pub struct AppState {
    pub service: Arc<Service>,
    pub admin_mode: bool,
}

/// The identity of a request, established by [`guard`] before any handler runs.
#[derive(Debug, Clone)]
pub struct Identity {
    pub project: String,
    pub client_id: String,
    pub roles: Vec<String>,
}

impl Identity {
    pub fn ctx(&self) -> crate::service::Ctx<'_> {
        crate::service::Ctx {
            project: &self.project,
            client_id: &self.client_id,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r.eq_ignore_ascii_case("admin"))
    }
}

pub const REQUEST_ID_HEADER: &str = "x-openstack-request-id";

/// Builds the application router.
pub fn router(state: Arc<AppState>) -> Router {
    use handlers::*;
    let mut v2 = Router::new()
        .route("/v2", get(home))
        .route("/v2/", get(home))
        .route("/v2/ping", get(ping).head(ping_head))
        .route("/v2/queues", get(list_queues))
        .route(
            "/v2/queues/{queue}",
            put(create_queue)
                .get(get_queue)
                .patch(patch_queue)
                .delete(delete_queue)
                .head(head_queue),
        )
        .route("/v2/queues/{queue}/stats", get(queue_stats))
        .route("/v2/queues/{queue}/purge", post(purge_queue))
        .route("/v2/queues/{queue}/x-redrive", post(redrive))
        .route(
            "/v2/queues/{queue}/messages",
            post(post_messages)
                .get(get_messages)
                .delete(delete_messages),
        )
        .route(
            "/v2/queues/{queue}/messages/{message_id}",
            get(get_message).delete(delete_message),
        )
        .route("/v2/queues/{queue}/claims", post(create_claim))
        .route(
            "/v2/queues/{queue}/claims/{claim_id}",
            get(get_claim).patch(update_claim).delete(delete_claim),
        );
    if state.admin_mode {
        v2 = v2.route("/v2/health", get(health));
    }
    let v2 = v2.route_layer(middleware::from_fn_with_state(state.clone(), guard));
    let root = Router::new()
        .route("/", get(versions))
        .route_layer(middleware::from_fn(root_guard));
    Router::new()
        .merge(root)
        .merge(v2)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(request_context))
        .with_state(state)
}

async fn not_found() -> Response {
    error::status_only(StatusCode::NOT_FOUND)
}

async fn method_not_allowed() -> Response {
    error::status_only(StatusCode::METHOD_NOT_ALLOWED)
}

/// Request id, one tracing span per request, completion log.
async fn request_context(req: Request, next: Next) -> Response {
    let request_id = format!("req-{}", uuid::Uuid::new_v4());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "<unmatched>".to_string());
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        route = %route,
        request_id = %request_id,
        project = tracing::field::Empty,
    );
    let start = Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status().as_u16();
    let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::warn!(parent: &span, status, latency_ms, "request completed");
    } else {
        tracing::debug!(parent: &span, status, latency_ms, "request completed");
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    resp
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether an `Accept` header allows `application/json`.
fn accepts_json(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return true };
    if accept.trim().is_empty() {
        return true;
    }
    accept.split(',').any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let refused = parts.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        !refused && matches!(media.as_str(), "*/*" | "application/*" | "application/json")
    })
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || header_str(headers, "content-length")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}

/// Checks 2 and 3 of spec §2.1 (urlencoded body, Accept). Unlike the Client-ID and project
/// checks, they also apply to `GET /`.
fn check_media(headers: &HeaderMap) -> Result<(), Error> {
    if has_body(headers) {
        let ct = header_str(headers, "content-type").unwrap_or("");
        if ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        {
            return Err(Error::bad_request(
                "Invalid Content-Type",
                "Content-Type application/x-www-form-urlencoded is not supported; send JSON.",
            ));
        }
    }
    if !accepts_json(header_str(headers, "accept")) {
        return Err(Error::NotAcceptable);
    }
    Ok(())
}

/// The per-route checks of spec §2.1, in order: urlencoded body, Accept, Client-ID, project.
/// (Signature verification and policy slot in around these.)
fn check_request(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Identity, Error> {
    let _ = method;
    check_media(headers)?;
    let limits = state.service.limits();
    let client_id = validate::client_id(header_str(headers, "client-id"), limits)?;
    let project = validate::project_id(header_str(headers, "x-project-id"))?.to_string();
    let roles = header_str(headers, "x-roles")
        .map(|r| {
            r.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    Ok(Identity {
        project,
        client_id,
        roles,
    })
}

/// `GET /` needs no Client-ID or project, but the media checks still apply.
async fn root_guard(req: Request, next: Next) -> Response {
    match check_media(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

type PathParams = Result<Path<HashMap<String, String>>, PathRejection>;

/// Check 6 of spec §2.1: a `{queue}` path parameter must be a valid queue name. It runs here,
/// before any handler, so that its 400 wins over handler checks (PATCH media type, body size).
/// Parameters that are not UTF-8 once percent-decoded get a JSON error too.
fn check_path(params: &PathParams) -> Result<(), Error> {
    match params {
        Ok(Path(params)) => params
            .get("queue")
            .map_or(Ok(()), |name| validate::queue_name(name)),
        Err(PathRejection::FailedToDeserializePathParams(e)) => match e.kind() {
            // Not UTF-8, hence not a valid name: the same error as any other invalid name.
            ErrorKind::InvalidUtf8InPathParam { key } if key == "queue" => validate::queue_name(""),
            ErrorKind::InvalidUtf8InPathParam { key } => Err(Error::param(
                key.as_str(),
                "It must be valid UTF-8 once percent-decoded.",
            )),
            _ => Ok(()),
        },
        // Left to the handler's own extractor.
        Err(_) => Ok(()),
    }
}

async fn guard(
    State(state): State<Arc<AppState>>,
    params: PathParams,
    mut req: Request,
    next: Next,
) -> Response {
    let checked = check_request(&state, req.method(), req.headers())
        .and_then(|identity| check_path(&params).map(|()| identity));
    match checked {
        Ok(identity) => {
            tracing::Span::current().record("project", identity.project.as_str());
            req.extensions_mut().insert(identity);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_header_rules() {
        assert!(accepts_json(None));
        assert!(accepts_json(Some("*/*")));
        assert!(accepts_json(Some("application/json; charset=utf-8")));
        assert!(accepts_json(Some("text/html, application/*;q=0.5")));
        assert!(!accepts_json(Some("text/html")));
        assert!(!accepts_json(Some("application/json;q=0")));
        assert!(!accepts_json(Some("application/xml")));
    }
}
