//! The one error type of the service layer and the storage drivers, and its single mapping to a
//! status code and Zaqar's `{"title", "description"}` error body. Both transports use
//! [`Error::status`], [`Error::title`] and [`Error::description`]; nothing else decides a status.

use std::borrow::Cow;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A request value breaks a validation or business rule (400, `Invalid API request`).
    #[error("{0}")]
    Invalid(String),
    /// The body is unreadable, unparseable or of the wrong shape (400, `Invalid request body`).
    #[error("{0}")]
    InvalidBody(String),
    /// A query parameter has a value of the wrong type (400, `Invalid parameter`).
    #[error("The \"{name}\" parameter is invalid. {detail}")]
    InvalidParam { name: String, detail: String },
    /// A 400 with its own title (header checks, name checks, content type).
    #[error("{description}")]
    BadRequest {
        title: Cow<'static, str>,
        description: String,
    },
    /// Single-message delete refused with 400 (`Unable to delete`).
    #[error("{0}")]
    DeleteBadRequest(String),
    /// Single-message delete refused with 403 (`Unable to delete`).
    #[error("{0}")]
    DeleteForbidden(String),
    /// Authentication failed or is missing (401); `www_authenticate` names the identity service.
    #[error("{description}")]
    Unauthorized {
        description: String,
        www_authenticate: Option<String>,
    },
    /// The credentials do not allow this (403 with a specific description).
    #[error("{0}")]
    Forbidden(String),
    /// Policy refused the action (403, `Not authorized`).
    #[error("You are not authorized to complete this action.")]
    NotAuthorized,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The `Accept` header does not allow JSON (406).
    #[error("Response data could not be serialized into any of the media types requested.")]
    NotAcceptable,
    /// PATCH with the wrong content type (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A rate limit was hit (429); retry after the given seconds.
    #[error("{description}")]
    TooManyRequests {
        description: String,
        retry_after_secs: u64,
    },
    /// The storage backend failed or is unreachable (503).
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure (500).
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Self::Invalid(msg.into())
    }

    pub fn body(msg: impl Into<String>) -> Self {
        Self::InvalidBody(msg.into())
    }

    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::NotFound(msg.into())
    }

    pub fn unavailable(msg: impl Into<String>) -> Self {
        Self::Unavailable(msg.into())
    }

    pub fn param(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::InvalidParam {
            name: name.into(),
            detail: detail.into(),
        }
    }

    pub fn bad_request(title: &'static str, description: impl Into<String>) -> Self {
        Self::BadRequest {
            title: Cow::Borrowed(title),
            description: description.into(),
        }
    }

    /// The HTTP-like status code (also used as `headers.status` over WebSocket).
    pub fn status(&self) -> u16 {
        match self {
            Error::Invalid(_)
            | Error::InvalidBody(_)
            | Error::InvalidParam { .. }
            | Error::BadRequest { .. }
            | Error::DeleteBadRequest(_) => 400,
            Error::Unauthorized { .. } => 401,
            Error::DeleteForbidden(_) | Error::NotAuthorized | Error::Forbidden(_) => 403,
            Error::NotFound(_) => 404,
            Error::NotAcceptable => 406,
            Error::Conflict(_) => 409,
            Error::UnsupportedMediaType(_) => 415,
            Error::TooManyRequests { .. } => 429,
            Error::Internal(_) => 500,
            Error::Unavailable(_) => 503,
        }
    }

    /// Zaqar's error title for this error.
    pub fn title(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Error::Invalid(_) => "Invalid API request",
            Error::InvalidBody(_) => "Invalid request body",
            Error::InvalidParam { .. } => "Invalid parameter",
            Error::BadRequest { title, .. } => return title.clone(),
            Error::DeleteBadRequest(_) | Error::DeleteForbidden(_) => "Unable to delete",
            Error::NotAuthorized | Error::Forbidden(_) => "Not authorized",
            Error::Unauthorized { .. } => "Unauthorized",
            Error::NotFound(_) => "Not found",
            Error::Conflict(_) => "Resource conflict",
            Error::NotAcceptable => "Invalid Accept Header",
            Error::UnsupportedMediaType(_) => "415 Unsupported Media Type",
            Error::TooManyRequests { .. } => "Too many requests",
            Error::Unavailable(_) => "Service temporarily unavailable",
            Error::Internal(_) => "Internal server error",
        })
    }

    pub fn description(&self) -> String {
        self.to_string()
    }
}
