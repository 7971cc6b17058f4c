//! Handlers of `/v2/quotas` (this server's extension): per-project limits kept in the management
//! store, admin-only routes that exist with `admin_mode`. Each calls one service function of
//! `service::quota`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::Result;
use super::query::{href, Query};
use super::AppState;
use crate::wire::http::json_body;
use crate::wire::quota_json;

type St = State<Arc<AppState>>;

pub(super) async fn list_quotas(
    State(s): St,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let q = Query::parse(raw.as_deref());
    let views = s
        .service
        .list_quotas(q.string("marker").as_deref(), q.int("limit")?)
        .await?;
    let mut doc = json!({ "quotas": views.iter().map(quota_json).collect::<Vec<_>>() });
    if let Some(last) = views.last() {
        let mut params: Vec<(&str, String)> = vec![("marker", last.project.clone())];
        if let Some(l) = q.get("limit") {
            params.push(("limit", l.to_string()));
        }
        doc["links"] = json!([{"rel": "next", "href": href("/v2/quotas", &params)}]);
    }
    let mut resp = json_body(&doc).into_response();
    if let Ok(v) = HeaderValue::from_str(&uri.to_string()) {
        resp.headers_mut().insert(header::CONTENT_LOCATION, v);
    }
    Ok(resp)
}

pub(super) async fn get_quota(State(s): St, Path(project): Path<String>) -> Result<Response> {
    let v = s.service.get_quota(&project).await?;
    Ok(json_body(&quota_json(&v)).into_response())
}

pub(super) async fn put_quota(
    State(s): St,
    Path(project): Path<String>,
    body: Body,
) -> Result<Response> {
    let body = super::handlers::small_body_pub(body).await?;
    let v = s.service.put_quota(&project, &body).await?;
    Ok(json_body(&quota_json(&v)).into_response())
}

pub(super) async fn delete_quota(State(s): St, Path(project): Path<String>) -> Result<Response> {
    s.service.delete_quota(&project).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
