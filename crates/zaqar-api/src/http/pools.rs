//! Handlers of `/v2/pools` and `/v2/flavors` (spec §3.8, §3.9): admin routes that exist with
//! `admin_mode` and `pooling`. Each calls one service function of `service::pools`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::{json, Value};

use super::error::Result;
use super::query::{href, Query};
use super::{AppState, Identity};
use crate::wire::http::json_body;
use crate::wire::{flavor_json, pool_json};

type St = State<Arc<AppState>>;

fn with_location(mut resp: Response, name: header::HeaderName, value: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
    resp
}

fn created(path: String) -> Response {
    with_location(StatusCode::CREATED.into_response(), header::LOCATION, &path)
}

/// The listing body: items, and a `next` link when the page is not empty.
fn listing(
    collection: &str,
    key: &str,
    items: Vec<Value>,
    last: Option<String>,
    q: &Query,
    detailed: bool,
    uri: &str,
) -> Response {
    let mut doc = json!({});
    doc[key] = Value::Array(items);
    if let Some(last) = last {
        let mut params: Vec<(&str, String)> = vec![("marker", last)];
        if let Some(l) = q.get("limit") {
            params.push(("limit", l.to_string()));
        }
        params.push(("detailed", detailed.to_string()));
        doc["links"] = json!([{"rel": "next", "href": href(collection, &params)}]);
    }
    let resp = json_body(&doc).into_response();
    with_location(resp, header::CONTENT_LOCATION, uri)
}

pub(super) async fn list_pools(
    State(s): St,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let q = Query::parse(raw.as_deref());
    let detailed = q.flag("detailed")?;
    let pools = s
        .service
        .list_pools(q.string("marker").as_deref(), q.int("limit")?)
        .await?;
    let last = pools.last().map(|p| p.name.clone());
    let items = pools.iter().map(|p| pool_json(p, detailed)).collect();
    Ok(listing(
        "/v2/pools",
        "pools",
        items,
        last,
        &q,
        detailed,
        &uri.to_string(),
    ))
}

pub(super) async fn put_pool(
    State(s): St,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response> {
    let body = super::handlers::small_body_pub(body).await?;
    s.service.put_pool(&name, &body).await?;
    Ok(created(format!("/v2/pools/{name}")))
}

pub(super) async fn get_pool(
    State(s): St,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let detailed = Query::parse(raw.as_deref()).flag("detailed")?;
    let pool = s.service.get_pool(&name).await?;
    Ok(json_body(&pool_json(&pool, detailed)).into_response())
}

pub(super) async fn patch_pool(
    State(s): St,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response> {
    let body = super::handlers::small_body_pub(body).await?;
    let pool = s.service.patch_pool(&name, &body).await?;
    Ok(json_body(&pool_json(&pool, false)).into_response())
}

pub(super) async fn delete_pool(State(s): St, Path(name): Path<String>) -> Result<Response> {
    s.service.delete_pool(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn list_flavors(
    State(s): St,
    Extension(id): Extension<Identity>,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let q = Query::parse(raw.as_deref());
    let detailed = q.flag("detailed")?;
    let flavors = s
        .service
        .list_flavors(&id.project, q.string("marker").as_deref(), q.int("limit")?)
        .await?;
    let last = flavors.last().map(|f| f.name.clone());
    let items = flavors
        .iter()
        .map(|f| flavor_json(f, detailed, false))
        .collect();
    Ok(listing(
        "/v2/flavors",
        "flavors",
        items,
        last,
        &q,
        detailed,
        &uri.to_string(),
    ))
}

pub(super) async fn put_flavor(
    State(s): St,
    Extension(id): Extension<Identity>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response> {
    let body = super::handlers::small_body_pub(body).await?;
    s.service.put_flavor(&id.project, &name, &body).await?;
    Ok(created(format!("/v2/flavors/{name}")))
}

pub(super) async fn get_flavor(
    State(s): St,
    Extension(id): Extension<Identity>,
    Path(name): Path<String>,
) -> Result<Response> {
    let f = s.service.get_flavor(&id.project, &name).await?;
    Ok(json_body(&flavor_json(&f, true, true)).into_response())
}

pub(super) async fn patch_flavor(
    State(s): St,
    Extension(id): Extension<Identity>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response> {
    let body = super::handlers::small_body_pub(body).await?;
    let f = s.service.patch_flavor(&id.project, &name, &body).await?;
    Ok(json_body(&flavor_json(&f, true, true)).into_response())
}

pub(super) async fn delete_flavor(
    State(s): St,
    Extension(id): Extension<Identity>,
    Path(name): Path<String>,
) -> Result<Response> {
    s.service.delete_flavor(&id.project, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
