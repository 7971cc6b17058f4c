//! The HTTP transport (Zaqar v2 REST API): routing, the per-request checks of spec §2.1, and
//! translation between HTTP and the service layer.

mod error;
mod handlers;
mod pools;
pub mod query;
mod quotas;
pub mod routes;
#[cfg(feature = "otel")]
pub mod trace_context;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tracing::Instrument;

use zaqar_core::error::Error;

use routes::OperationTable;
use zaqar_core::identity::UserToken;
use zaqar_core::service::{validate, Service};

pub use error::{respond, HttpError, PATCH_MEDIA_TYPE};

/// `[cors]` options (oslo.middleware's names).
#[derive(Debug, Clone, Default)]
pub struct CorsConfig {
    pub allowed_origin: Vec<String>,
    pub allow_credentials: bool,
    pub max_age: u64,
    pub expose_headers: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
}

/// What both transports take from the server's configuration.
#[derive(Debug, Clone, Default)]
pub struct ApiOptions {
    /// `[DEFAULT] admin_mode`: the admin routes and actions exist.
    pub admin_mode: bool,
    /// `[DEFAULT] pooling`: with `admin_mode`, the pools and flavors routes exist.
    pub pooling: bool,
    /// `[cors]`.
    pub cors: CorsConfig,
}

/// Shared state of every handler.
pub struct AppState {
    pub service: Arc<Service>,
    pub admin_mode: bool,
    /// `[DEFAULT] pooling`: with `admin_mode`, the pools and flavors routes exist.
    pub pooling: bool,
    pub cors: CorsConfig,
}

impl AppState {
    pub fn new(service: Arc<Service>, options: &ApiOptions) -> AppState {
        AppState {
            service,
            admin_mode: options.admin_mode,
            pooling: options.pooling,
            cors: options.cors.clone(),
        }
    }
}

/// The CORS layer of `[cors]` (spec §2.10), or `None` when no origin is allowed. It wraps the
/// routes outside authentication, so preflight requests need no credentials.
fn cors_layer(c: &CorsConfig) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if c.allowed_origin.is_empty() {
        return None;
    }
    let parse = |items: &[String]| -> Vec<axum::http::HeaderName> {
        items.iter().filter_map(|h| h.parse().ok()).collect()
    };
    let origins: Vec<HeaderValue> = c
        .allowed_origin
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
        .collect();
    let methods: Vec<Method> = c
        .allow_methods
        .iter()
        .filter_map(|m| m.parse().ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods(methods)
            .allow_headers(parse(&c.allow_headers))
            .expose_headers(parse(&c.expose_headers))
            .allow_credentials(c.allow_credentials)
            .max_age(std::time::Duration::from_secs(c.max_age)),
    )
}

/// The identity of a request, established by [`guard`] before any handler runs.
#[derive(Debug, Clone)]
pub struct Identity {
    pub project: String,
    pub client_id: String,
    pub roles: Vec<String>,
    /// The validated Keystone token, when the request carried one.
    pub user: Option<UserToken>,
}

impl Identity {
    pub fn ctx(&self) -> zaqar_core::service::Ctx<'_> {
        zaqar_core::service::Ctx {
            project: &self.project,
            client_id: &self.client_id,
            user: self.user.as_ref(),
        }
    }

    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r.eq_ignore_ascii_case("admin"))
    }
}

pub const REQUEST_ID_HEADER: &str = "x-openstack-request-id";

/// What the request middleware needs: the handlers' state and the operation table.
#[derive(Clone)]
struct Guarded {
    state: Arc<AppState>,
    table: Arc<OperationTable>,
}

/// Builds the application router.
pub fn router(state: Arc<AppState>) -> Router {
    let (v2, mut table) = routes::v2_routes(state.admin_mode, state.pooling).finish();
    table.insert_versions();
    let guarded = Guarded {
        state: state.clone(),
        table: Arc::new(table),
    };
    let v2 = v2.route_layer(middleware::from_fn_with_state(guarded.clone(), guard));
    let root = Router::new()
        .route("/", get(handlers::versions))
        .route_layer(middleware::from_fn(root_guard));
    let cors = cors_layer(&state.cors);
    let app = Router::new()
        .merge(root)
        .merge(v2)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    let app = match cors {
        Some(c) => app.layer(c),
        None => app,
    };
    app.layer(middleware::from_fn_with_state(guarded, request_context))
        .with_state(state)
}

/// No route: 404, unless the request refuses JSON answers (406 comes before any lookup, as
/// on every route; e.g. `GET /v2/health` outside admin mode).
async fn not_found(headers: HeaderMap) -> Response {
    if !accepts_json(header_str(&headers, "accept")) {
        return error::respond(Error::NotAcceptable);
    }
    error::status_only(StatusCode::NOT_FOUND)
}

async fn method_not_allowed() -> Response {
    error::status_only(StatusCode::METHOD_NOT_ALLOWED)
}

/// Request id, one tracing span per request, completion log.
async fn request_context(State(guarded): State<Guarded>, req: Request, next: Next) -> Response {
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
        otel.name = tracing::field::Empty,
        otel.kind = tracing::field::Empty,
    );
    #[cfg(feature = "otel")]
    if trace_context::exporting() {
        span.record("otel.name", format!("{} {route}", req.method()));
        span.record("otel.kind", "server");
        trace_context::set_parent(&span, req.headers());
    }
    let start = Instant::now();
    let method = req.method().clone();
    let in_flight = zaqar_core::metrics::http_in_flight();
    let mut resp = next.run(req).instrument(span.clone()).await;
    drop(in_flight);
    let status = resp.status().as_u16();
    let elapsed = start.elapsed();
    zaqar_core::metrics::http_request(method.as_str(), &route, status, elapsed);
    if status == 503 {
        match guarded.table.lookup(&route, &method) {
            Some(operation) => zaqar_core::metrics::backend_error(operation.label()),
            None => zaqar_core::metrics::backend_error(&route),
        }
    }
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
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

/// Authentication, then the per-route checks of spec §2.1 in order: signature, urlencoded body,
/// Accept, Client-ID, project. With Keystone, the token is validated first (401/503) unless the
/// request is pre-signed; the project and roles then come from the token, and an `X-Project-ID`
/// that contradicts it is refused. Without Keystone, `X-Project-ID` and `X-Roles` are trusted,
/// except on pre-signed requests, which carry no roles.
fn check_request(
    state: &AppState,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    user: Option<UserToken>,
) -> Result<Identity, Error> {
    let signed = is_signed(headers);
    check_signature(state, method, path, headers)?;
    check_media(headers)?;
    let limits = state.service.limits();
    let client_id = validate::client_id(header_str(headers, "client-id"), limits)?;
    let (project, roles) = match user.as_ref().map(|u| &u.info) {
        Some(t) => {
            if let Some(claimed) = header_str(headers, "x-project-id").filter(|p| !p.is_empty()) {
                if claimed != t.project_id {
                    return Err(Error::Forbidden(
                        "X-Project-ID does not match the project of the token.".into(),
                    ));
                }
            }
            (
                validate::project_id(Some(&t.project_id))?.to_string(),
                t.roles.clone(),
            )
        }
        None => {
            let project = validate::project_id(header_str(headers, "x-project-id"))?.to_string();
            let roles = if signed {
                Vec::new()
            } else {
                header_str(headers, "x-roles")
                    .map(zaqar_core::identity::parse_roles)
                    .unwrap_or_default()
            };
            (project, roles)
        }
    };
    Ok(Identity {
        project,
        client_id,
        roles,
        user,
    })
}

fn is_signed(headers: &HeaderMap) -> bool {
    // Present at all, even empty: a failed signature (404), never an unsigned request.
    headers.contains_key("url-signature")
}

/// The Keystone identity of a request, when Keystone is on and the request is not pre-signed.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Option<UserToken>, Error> {
    if is_signed(headers) || !state.service.auth_required() {
        return Ok(None);
    }
    let token = header_str(headers, "x-auth-token")
        .unwrap_or("")
        .trim()
        .to_string();
    let info = state.service.authenticate(&token).await?;
    Ok(Some(UserToken { token, info }))
}

/// Check 1 of spec §2.1: a request carrying `URL-Signature` must be covered by a valid,
/// unexpired pre-signed grant (else 404, as the reference answers).
fn check_signature(
    state: &AppState,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<(), Error> {
    if !headers.contains_key("url-signature") {
        return Ok(());
    }
    // An empty (or non-text) signature is verified like any other, and fails.
    let signature = header_str(headers, "url-signature").unwrap_or("");
    let list = |name: &str| -> Vec<String> {
        header_str(headers, name)
            .unwrap_or("")
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let req = zaqar_core::service::SignedRequest {
        signature,
        expires: header_str(headers, "url-expires").unwrap_or(""),
        methods: list("url-methods"),
        paths: list("url-paths"),
        project: header_str(headers, "x-project-id"),
    };
    state.service.verify_signed(&req, method.as_str(), path)
}

/// `GET /` needs no Client-ID or project, but the media checks still apply.
async fn root_guard(req: Request, next: Next) -> Response {
    match check_media(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => error::respond(e),
    }
}

type PathParams = Result<Path<HashMap<String, String>>, PathRejection>;

/// Check 6 of spec §2.1: a `{queue}` path parameter must be a valid queue name. It runs here,
/// before any handler, so that its 400 wins over handler checks (PATCH media type, body size).
/// Parameters that are not UTF-8 once percent-decoded get a JSON error too.
fn check_path(params: &PathParams) -> Result<(), Error> {
    match params {
        Ok(Path(params)) => {
            if let Some(name) = params.get("queue") {
                validate::queue_name(name)?;
            }
            match params.get("topic") {
                Some(name) if validate::queue_name(name).is_err() => Err(Error::bad_request(
                    "Invalid topic identification",
                    "The format of the submitted topic name or project id is not valid.",
                )),
                _ => Ok(()),
            }
        }
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

/// Establishes the identity of a `/v2` request and decides whether it may proceed: the
/// operation of its route (none: refused), authentication, the checks of spec §2.1, the
/// operation's policy rule, the project's rate budget.
async fn guard(
    State(guarded): State<Guarded>,
    params: PathParams,
    mut req: Request,
    next: Next,
) -> Response {
    let state = &guarded.state;
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    // Every route is registered with its operation; a method the route does not serve has
    // none and is refused here, before authentication or any handler.
    let Some(operation) = guarded.table.lookup(&route, req.method()) else {
        return method_not_allowed().await;
    };
    let token = match authenticate(state, req.headers()).await {
        Ok(t) => t,
        Err(e) => return error::respond(e),
    };
    let checked = check_request(state, req.method(), req.uri().path(), req.headers(), token)
        .and_then(|identity| {
            check_path(&params)?;
            state.service.authorize(operation, &identity.roles)?;
            Ok(identity)
        });
    let checked = match checked {
        Ok(identity) => state
            .service
            .admit(&identity.project)
            .await
            .map(|()| identity),
        Err(e) => Err(e),
    };
    match checked {
        Ok(identity) => {
            tracing::Span::current().record("project", identity.project.as_str());
            req.extensions_mut().insert(identity);
            next.run(req).await
        }
        Err(e) => error::respond(e),
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
