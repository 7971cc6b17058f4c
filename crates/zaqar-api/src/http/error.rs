//! The single mapping from [`Error`] to an HTTP response with Zaqar's error body: handlers
//! return [`Result`], whose error is an [`Error`] on its way to the client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use zaqar_core::error::Error;

pub const PATCH_MEDIA_TYPE: &str = "application/openstack-messaging-v2.0-json-patch";

/// An [`Error`] answered over HTTP.
#[derive(Debug)]
pub struct HttpError(pub Error);

impl From<Error> for HttpError {
    fn from(e: Error) -> HttpError {
        HttpError(e)
    }
}

/// The result of a handler.
pub(super) type Result<T> = std::result::Result<T, HttpError>;

/// The response of a failed request.
pub fn respond(e: Error) -> Response {
    HttpError(e).into_response()
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let HttpError(error) = self;
        let status =
            StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body = json!({"title": error.title(), "description": error.description()});
        if matches!(error, Error::NotAcceptable) {
            body["link"] = json!({
                "text": "14.1 Accept, Hypertext Transfer Protocol -- HTTP/1.1",
                "href": "http://www.w3.org/Protocols/rfc2616/rfc2616-sec14.html",
                "rel": "help",
            });
        }
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), error = %error, "request failed");
        }
        let mut resp = (status, crate::wire::http::json_body(&body)).into_response();
        if let Error::Unauthorized {
            www_authenticate: Some(v),
            ..
        } = &error
        {
            if let Ok(v) = HeaderValue::from_str(v) {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        if let Error::TooManyRequests {
            retry_after_secs, ..
        } = &error
        {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        if matches!(error, Error::UnsupportedMediaType(_)) {
            resp.headers_mut()
                .insert("accept-patch", HeaderValue::from_static(PATCH_MEDIA_TYPE));
        }
        resp
    }
}

/// A framework-level error (unknown route, wrong method) in Zaqar's shape.
pub(super) fn status_only(status: StatusCode) -> Response {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default()
    );
    let mut resp = (
        status,
        crate::wire::http::json_body(&json!({ "title": title })),
    )
        .into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
