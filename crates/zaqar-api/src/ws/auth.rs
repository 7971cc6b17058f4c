//! Authentication of a WebSocket connection (spec §4.3, §4.5): the per-connection state and the
//! one function every request goes through.
//!
//! - Without `auth_strategy`, requests carry their `X-Project-ID` (and `X-Roles`) as over HTTP.
//! - With Keystone, [`authenticate`] validates `X-Auth-Token` through the service (the same cache
//!   and rules as HTTP) and moves the connection to [`AuthState::Authenticated`]: every later
//!   request acts in the token's project (a different `X-Project-ID` is refused) with its roles,
//!   and the connection is closed with code 4003 when the token expires.
//! - A request carrying `URL-Signature` is verified as a pre-signed grant (§4.5): its action maps
//!   to a method, `/v2/queues/<queue_name>/messages` must be covered by a signed path, and the
//!   HMAC must match and not be expired; otherwise 403.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use std::sync::Arc;

use super::protocol::Request;
use zaqar_core::identity::UserToken;
use zaqar_core::service::{Service, SignedRequest};

/// The close code and reason when a token expires.
pub const EXPIRED_CODE: u16 = 4003;
pub const EXPIRED_REASON: &str = "Authentication expired.";

/// The authentication state of one connection.
#[derive(Debug, Clone)]
pub enum AuthState {
    /// No authentication is configured: every request's `X-Project-ID` is trusted.
    Disabled,
    /// Authentication is required and no `authenticate` has succeeded yet.
    Unauthenticated,
    /// An `authenticate` is being validated.
    Pending,
    /// A token was validated; requests act in its project until it expires.
    Authenticated {
        project: String,
        roles: Vec<String>,
        expires: Option<Instant>,
        /// The validated token (for operations that act for the user later: trusts).
        user: Arc<UserToken>,
    },
}

impl AuthState {
    /// The state of a new connection.
    pub fn initial(auth_required: bool) -> AuthState {
        if !auth_required {
            AuthState::Disabled
        } else {
            AuthState::Unauthenticated
        }
    }
}

/// Who a request acts as, once authorized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The project to act in: the authenticated one, or `X-Project-ID` when auth is disabled.
    /// `None` leaves it to the request's header (validated like over HTTP).
    pub project: Option<String>,
    /// Roles (`X-Roles` without auth, the token's roles with it).
    pub roles: Vec<String>,
    /// The connection's validated token, when authenticated.
    pub user: Option<Arc<UserToken>>,
}

fn header_roles(req: &Request<'_>) -> Vec<String> {
    req.header("X-Roles")
        .map(zaqar_core::identity::parse_roles)
        .unwrap_or_default()
}

fn not_authentified() -> (u16, Value) {
    (403, json!({"error": "Not authentified."}))
}

/// Decides whether a request (other than `authenticate`) may proceed on this connection.
pub fn authorize(
    service: &Service,
    state: &AuthState,
    req: &Request<'_>,
) -> Result<Caller, (u16, Value)> {
    // A pre-signed request stands on its signature alone, whatever the connection's state.
    if req.headers.contains_key("URL-Signature") {
        return if presigned(service, req) {
            Ok(Caller {
                project: None,
                roles: Vec::new(),
                user: None,
            })
        } else {
            Err(not_authentified())
        };
    }
    match state {
        AuthState::Disabled => Ok(Caller {
            project: None,
            roles: header_roles(req),
            user: None,
        }),
        AuthState::Authenticated {
            project,
            roles,
            user,
            ..
        } => {
            // §4.3: the project is pinned to the token's; a different header is refused.
            match req.header("X-Project-ID") {
                Some(p) if p != project => Err((
                    403,
                    json!({"error": "X-Project-ID does not match the authenticated project."}),
                )),
                _ => Ok(Caller {
                    project: Some(project.clone()),
                    roles: roles.clone(),
                    user: Some(user.clone()),
                }),
            }
        }
        AuthState::Unauthenticated | AuthState::Pending => Err(not_authentified()),
    }
}

/// The method a signed grant must allow for an action (§4.5); `None` for actions a grant can
/// never authorize.
fn signed_method(action: &str) -> Option<&'static str> {
    match action {
        "message_list" | "message_get" | "message_get_many" => Some("GET"),
        "message_post" => Some("POST"),
        "message_delete" | "message_delete_many" => Some("DELETE"),
        _ => None,
    }
}

/// Verifies pre-signed headers (§4.5): `URL-Methods` and `URL-Paths` are JSON arrays here.
fn presigned(service: &Service, req: &Request<'_>) -> bool {
    let Some(method) = signed_method(req.action()) else {
        return false;
    };
    let Some(queue) = req.str("queue_name") else {
        return false;
    };
    let list = |name: &str| -> Option<Vec<String>> {
        req.headers
            .get(name)?
            .as_array()?
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    let (Some(methods), Some(paths)) = (list("URL-Methods"), list("URL-Paths")) else {
        return false;
    };
    let signed = SignedRequest {
        signature: req.header("URL-Signature").unwrap_or(""),
        expires: req.header("URL-Expires").unwrap_or(""),
        methods,
        paths,
        project: req.header("X-Project-ID"),
    };
    let path = format!("/v2/queues/{queue}/messages");
    service.verify_signed(&signed, method, &path).is_ok()
}

/// The `authenticate` action: the new state and the response. With authentication disabled it
/// succeeds without changing anything (§4.3, last bullet).
pub async fn authenticate(
    service: &Service,
    state: &AuthState,
    req: &Request<'_>,
) -> (AuthState, u16, Value) {
    if matches!(state, AuthState::Disabled) {
        return (
            AuthState::Disabled,
            200,
            json!({"message": "Authentified."}),
        );
    }
    let token = req.header("X-Auth-Token").unwrap_or("").trim();
    match service.authenticate(token).await {
        Ok(info) => {
            if req
                .header("X-Project-ID")
                .is_some_and(|p| !p.is_empty() && p != info.project_id)
            {
                return (
                    state.clone(),
                    403,
                    json!({"error": "X-Project-ID does not match the project of the token."}),
                );
            }
            let left = (info.expires_at - service.now()).max(0) as u64;
            (
                AuthState::Authenticated {
                    project: info.project_id.clone(),
                    roles: info.roles.clone(),
                    expires: Some(Instant::now() + Duration::from_millis(left)),
                    user: Arc::new(UserToken {
                        token: token.to_string(),
                        info,
                    }),
                },
                200,
                json!({"message": "Authentified."}),
            )
        }
        Err(e) => {
            let status = e.status();
            // A failed attempt keeps an existing identity only if there was none to replace.
            let next = match state {
                AuthState::Authenticated { .. } => AuthState::Unauthenticated,
                other => other.clone(),
            };
            let body = if status == 401 {
                json!({"error": "Authentication failed."})
            } else {
                json!({"error": "Authentication failed.", "exception": e.description()})
            };
            (next, status, body)
        }
    }
}

/// When the connection must be closed with [`EXPIRED_CODE`].
pub fn expiry(state: &AuthState) -> Option<Instant> {
    match state {
        AuthState::Authenticated { expires, .. } => *expires,
        _ => None,
    }
}
