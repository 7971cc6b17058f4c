//! Handlers of `/v2/quotas` (this server's extension): per-project limits kept in the management
//! store, admin-only routes that exist with `admin_mode`. Each calls one service function of
//! `service::quota`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::query::{href, Query};
use super::wire::json_body;
use super::AppState;
use crate::error::Result;
use crate::service::quota::{Limits, QuotaView};

type St = State<Arc<AppState>>;

/// A rate as JSON: whole numbers without a fraction.
fn rate(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

fn limits_json(l: &Limits) -> Value {
    json!({
        "max_queues": l.max_queues,
        "max_messages_per_queue": l.max_messages_per_queue,
        "max_bytes": l.max_bytes,
        "requests_per_second": rate(l.requests_per_second),
        "burst": rate(l.burst),
    })
}

/// The wire shape of a project's limits: `quota` is its management-store entry (only the
/// fields it sets), `effective` the limits in force, `usage` (one project only) what it uses.
pub fn quota_json(v: &QuotaView) -> Value {
    let e = &v.entry;
    let mut quota = Map::new();
    let counts = [
        ("max_queues", e.max_queues),
        ("max_messages_per_queue", e.max_messages_per_queue),
        ("max_bytes", e.max_bytes),
    ];
    for (k, x) in counts {
        if let Some(x) = x {
            quota.insert(k.into(), json!(x));
        }
    }
    for (k, x) in [
        ("requests_per_second", e.requests_per_second),
        ("burst", e.burst),
    ] {
        if let Some(x) = x {
            quota.insert(k.into(), rate(x));
        }
    }
    let mut out = json!({
        "project": v.project,
        "quota": quota,
        "effective": limits_json(&v.effective),
        "href": format!("/v2/quotas/{}", super::path_segment(&v.project)),
    });
    if let Some(u) = v.usage {
        out["usage"] = json!({"queues": u.queues, "topics": u.topics, "bytes": u.bytes});
    }
    out
}

pub async fn list_quotas(
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

pub async fn get_quota(State(s): St, Path(project): Path<String>) -> Result<Response> {
    let v = s.service.get_quota(&project).await?;
    Ok(json_body(&quota_json(&v)).into_response())
}

pub async fn put_quota(State(s): St, Path(project): Path<String>, body: Body) -> Result<Response> {
    let body = super::handlers::small_body_pub(body).await?;
    let v = s.service.put_quota(&project, &body).await?;
    Ok(json_body(&quota_json(&v)).into_response())
}

pub async fn delete_quota(State(s): St, Path(project): Path<String>) -> Result<Response> {
    s.service.delete_quota(&project).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(crate::http::path_segment("a b/c-d"), "a%20b%2Fc-d");
        assert_eq!(rate(2.0), json!(2));
        assert_eq!(rate(0.5), json!(0.5));
        let v = QuotaView {
            project: "p".into(),
            entry: crate::store::management::ProjectQuota {
                max_bytes: Some(10),
                ..Default::default()
            },
            effective: Limits {
                max_bytes: 10,
                requests_per_second: 5.0,
                ..Default::default()
            },
            usage: None,
        };
        let j = quota_json(&v);
        assert!(j.get("usage").is_none());
        assert_eq!(j["quota"], json!({"max_bytes": 10}));
        assert_eq!(j["effective"]["requests_per_second"], json!(5));
        assert_eq!(j["href"], "/v2/quotas/p");
    }
}
