//! HTTP handlers: one per route and method. Each parses the request, calls the service layer
//! once, and renders the result.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::{json, Value};

use super::error::Result;
use super::query::{href, Query};
use super::{AppState, Identity, PATCH_MEDIA_TYPE};
use crate::wire;
use crate::wire::http::{
    json_body, next_links, ClaimView, Link, MessageView, PoppedView, StatsView,
};
use zaqar_core::error::Error;
use zaqar_core::model::Metadata;
use zaqar_core::model::QueueFilter;
use zaqar_core::service::subscriptions::{topic_project, Created, SourceKind};
use zaqar_core::service::{BulkDelete, Ctx, MessageListParams, QueueListParams};

type St = State<Arc<AppState>>;
type Id = Extension<Identity>;

/// Bodies of requests other than message posts and metadata are small documents.
const SMALL_BODY: usize = 64 * 1024;

/// Reads a request body of at most `limit` bytes; `Ok(None)` if it is larger. A body whose
/// announced length (`Content-Length`) is over the limit is refused before any of it is read,
/// so a client cannot hold a request open waiting for gigabytes it never sends.
async fn read_body(body: Body, limit: usize) -> Result<Option<Bytes>> {
    if axum::body::HttpBody::size_hint(&body).lower() > limit as u64 {
        return Ok(None);
    }
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(Some(c.to_bytes())),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Ok(None),
        Err(_) => Err(Error::body("Request body could not be read.").into()),
    }
}

/// [`small_body`] for the other handler modules.
pub(super) async fn small_body_pub(body: Body) -> Result<Bytes> {
    small_body(body).await
}

async fn small_body(body: Body) -> Result<Bytes> {
    Ok(read_body(body, SMALL_BODY)
        .await?
        .ok_or_else(|| Error::body("Request body is too large."))?)
}

fn location(resp: &mut Response, path: &str) {
    if let Ok(v) = HeaderValue::from_str(path) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Queues or topics: the routes of both are the same handlers (spec §3.7).
pub(super) trait Kind: Send + Sync + 'static {
    const KIND: SourceKind;
    const COLLECTION: &'static str;
    const PLURAL: &'static str;
    const WITH_COUNT: bool;

    /// The stored project of a request.
    fn project(id: &Identity) -> String {
        match Self::KIND {
            SourceKind::Queue => id.project.clone(),
            SourceKind::Topic => topic_project(&id.project),
        }
    }

    fn ctx<'a>(id: &'a Identity, project: &'a str) -> Ctx<'a> {
        Ctx {
            project,
            client_id: &id.client_id,
            user: id.user.as_ref(),
        }
    }

    /// Displayed metadata (topics show only three reserved keys).
    fn display(meta: Metadata) -> Metadata {
        match Self::KIND {
            SourceKind::Queue => meta,
            SourceKind::Topic => meta
                .into_iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "_dead_letter_queue"
                            | "_dead_letter_queue_messages_ttl"
                            | "_max_claim_count"
                            | "_enable_encrypt_messages"
                    )
                })
                .collect(),
        }
    }

    /// Stats body (topics have no claimed/free counts once they hold messages).
    fn stats(view: StatsView) -> Value {
        let mut v = serde_json::to_value(view).unwrap_or_default();
        if Self::KIND == SourceKind::Topic && v["messages"]["total"].as_u64().unwrap_or(0) > 0 {
            if let Some(m) = v["messages"].as_object_mut() {
                m.remove("claimed");
                m.remove("free");
            }
        }
        v
    }
}

pub(super) struct Queues;
pub(super) struct Topics;

impl Kind for Queues {
    const KIND: SourceKind = SourceKind::Queue;
    const COLLECTION: &'static str = "/v2/queues";
    const PLURAL: &'static str = "queues";
    const WITH_COUNT: bool = true;
}

impl Kind for Topics {
    const KIND: SourceKind = SourceKind::Topic;
    const COLLECTION: &'static str = "/v2/topics";
    const PLURAL: &'static str = "topics";
    const WITH_COUNT: bool = false;
}

// ----- versions, home, ping, health ---------------------------------------------------

pub(super) async fn versions() -> Response {
    (StatusCode::MULTIPLE_CHOICES, json_body(&wire::versions())).into_response()
}

pub(super) async fn home(State(s): St) -> Response {
    let doc = wire::home_document(s.admin_mode, s.pooling);
    let mut resp = json_body(&doc).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json-home"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=86400"),
    );
    resp
}

pub(super) async fn ping(State(s): St) -> Response {
    if s.service.ping().await {
        no_content()
    } else {
        StatusCode::SERVICE_UNAVAILABLE.into_response()
    }
}

pub(super) async fn ping_head() -> Response {
    no_content()
}

pub(super) async fn health(State(s): St) -> Result<Response> {
    let health = s.service.health().await?;
    Ok(json_body(&wire::health(&health)).into_response())
}

// ----- queues -------------------------------------------------------------------------

/// Values of metadata filters are compared as integers when they parse as one.
fn filter_value(v: &str) -> Value {
    v.parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::from(v))
}

pub(super) async fn list_queues<K: Kind>(
    State(s): St,
    Extension(id): Id,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let project = K::project(&id);
    const KNOWN: [&str; 5] = ["marker", "limit", "detailed", "name", "with_count"];
    let q = Query::parse(raw.as_deref());
    let mut filter = QueueFilter {
        name_contains: q.string("name"),
        metadata: Vec::new(),
    };
    for (k, v) in q.pairs() {
        if !KNOWN.contains(&k) {
            filter.metadata.push((k.to_string(), filter_value(v)));
        }
    }
    let detailed = q.flag("detailed")?;
    let with_count = K::WITH_COUNT && q.flag("with_count")?;
    let params = QueueListParams {
        marker: q.string("marker"),
        limit: q.int("limit")?,
        detailed,
        with_count,
        filter,
    };
    let listing = s.service.list_queues(K::ctx(&id, &project), params).await?;
    let next = listing.queues.last().map(|(name, _)| {
        let mut params: Vec<(&str, String)> = vec![("marker", name.clone())];
        for (k, v) in q.pairs() {
            // Booleans are rendered `true`/`false`, whatever spelling was sent.
            let v = match k {
                "marker" => continue,
                "detailed" => detailed.to_string(),
                "with_count" => with_count.to_string(),
                _ => v.to_string(),
            };
            params.push((k, v));
        }
        href(K::COLLECTION, &params)
    });
    let queues: Vec<Value> = listing
        .queues
        .into_iter()
        .map(|(name, meta)| {
            let mut o = json!({"href": format!("{}/{name}", K::COLLECTION), "name": name});
            if let Some(m) = meta {
                o["metadata"] = Value::Object(K::display(m));
            }
            o
        })
        .collect();
    let mut doc = json!({ "links": next_links(next) });
    doc[K::PLURAL] = Value::Array(queues);
    if let Some(c) = listing.count {
        doc["count"] = json!(c);
    }
    Ok(json_body(&doc).into_response())
}

pub(super) async fn create_queue<K: Kind>(
    State(s): St,
    Extension(id): Id,
    Path(queue): Path<String>,
    body: Body,
) -> Result<Response> {
    let project = K::project(&id);
    let max = s.service.limits().max_queue_metadata;
    let body = read_body(body, max)
        .await?
        .ok_or_else(|| Error::invalid(format!("Queue metadata is too large. Max size: {max}")))?;
    if s.service
        .create_queue(K::ctx(&id, &project), &queue, &body)
        .await?
    {
        let mut resp = StatusCode::CREATED.into_response();
        location(&mut resp, &format!("{}/{queue}", K::COLLECTION));
        Ok(resp)
    } else {
        Ok(no_content())
    }
}

pub(super) async fn get_queue<K: Kind>(
    State(s): St,
    Extension(id): Id,
    Path(queue): Path<String>,
) -> Result<Response> {
    let project = K::project(&id);
    let meta = s.service.get_queue(K::ctx(&id, &project), &queue).await?;
    Ok(json_body(&K::display(meta)).into_response())
}

pub(super) async fn head_queue<K: Kind>(
    State(s): St,
    Extension(id): Id,
    Path(queue): Path<String>,
) -> Result<Response> {
    let project = K::project(&id);
    if s.service
        .queue_exists(K::ctx(&id, &project), &queue)
        .await?
    {
        Ok(no_content())
    } else {
        Ok(StatusCode::NOT_FOUND.into_response())
    }
}

fn is_patch_media_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(PATCH_MEDIA_TYPE))
}

pub(super) async fn patch_queue<K: Kind>(
    State(s): St,
    Extension(id): Id,
    Path(queue): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let project = K::project(&id);
    if !is_patch_media_type(&headers) {
        return Err(Error::UnsupportedMediaType(format!(
            "Accepted media type for PATCH: {PATCH_MEDIA_TYPE}."
        ))
        .into());
    }
    let max = s.service.limits().max_queue_metadata;
    let body = read_body(body, max)
        .await?
        .ok_or_else(|| Error::invalid(format!("Queue metadata is too large. Max size: {max}")))?;
    let meta = s
        .service
        .patch_queue(K::ctx(&id, &project), &queue, &body)
        .await?;
    Ok(json_body(&K::display(meta)).into_response())
}

pub(super) async fn delete_queue<K: Kind>(
    State(s): St,
    Extension(id): Id,
    Path(queue): Path<String>,
) -> Result<Response> {
    let project = K::project(&id);
    s.service
        .delete_queue(K::ctx(&id, &project), &queue)
        .await?;
    Ok(no_content())
}

pub(super) async fn queue_stats<K: Kind>(
    State(s): St,
    Extension(id): Id,
    Path(queue): Path<String>,
) -> Result<Response> {
    let project = K::project(&id);
    let stats = s.service.queue_stats(K::ctx(&id, &project), &queue).await?;
    let view = StatsView::under(
        &format!("{}/{queue}", K::COLLECTION),
        &stats,
        s.service.now(),
    );
    Ok(json_body(&K::stats(view)).into_response())
}

pub(super) async fn purge_queue<K: Kind>(
    State(s): St,
    Extension(id): Id,
    Path(queue): Path<String>,
    body: Body,
) -> Result<Response> {
    let project = K::project(&id);
    let body = small_body(body).await?;
    s.service
        .purge_queue(K::ctx(&id, &project), &queue, &body)
        .await?;
    Ok(no_content())
}

pub(super) async fn share_queue(
    State(s): St,
    Extension(id): Id,
    Path(queue): Path<String>,
    body: Body,
) -> Result<Response> {
    let body = small_body(body).await?;
    let share = s.service.share(id.ctx(), &queue, &body).await?;
    let doc = json!({
        "project": share.project,
        "paths": share.paths,
        "methods": share.methods,
        "expires": share.expires,
        "signature": share.signature,
    });
    Ok(json_body(&doc).into_response())
}

// ----- messages -----------------------------------------------------------------------

pub(super) async fn post_messages<K: Kind>(
    State(s): St,
    Extension(id): Id,
    Path(queue): Path<String>,
    body: Body,
) -> Result<Response> {
    let project = K::project(&id);
    let max = s.service.limits().max_messages_post_size;
    let body = read_body(body, max).await?.ok_or_else(|| {
        Error::invalid(format!(
            "Message collection size is too large. Max size {max}"
        ))
    })?;
    let ids = s
        .service
        .post_messages(K::ctx(&id, &project), &queue, &body)
        .await?;
    let resources: Vec<String> = ids
        .iter()
        .map(|m| format!("{}/{queue}/messages/{m}", K::COLLECTION))
        .collect();
    let mut resp = (
        StatusCode::CREATED,
        json_body(&json!({ "resources": resources })),
    )
        .into_response();
    location(
        &mut resp,
        &format!("{}/{queue}/messages?ids={}", K::COLLECTION, ids.join(",")),
    );
    Ok(resp)
}

pub(super) async fn get_messages<K: Kind>(
    State(s): St,
    Extension(id): Id,
    Path(queue): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let project = K::project(&id);
    let q = Query::parse(raw.as_deref());
    let now = s.service.now();
    if let Some(ids) = q.list("ids") {
        let found = s
            .service
            .get_messages(K::ctx(&id, &project), &queue, &ids)
            .await?;
        let views: Vec<MessageView<'_>> = found
            .iter()
            .map(|m| MessageView::under(&format!("{}/{queue}", K::COLLECTION), m, now))
            .collect();
        return Ok(json_body(&json!({ "messages": views })).into_response());
    }
    let params = MessageListParams {
        marker: q.string("marker"),
        limit: q.int("limit")?,
        echo: q.flag("echo")?,
        include_claimed: q.flag("include_claimed")?,
        include_delayed: q.flag("include_delayed")?,
    };
    let listing = s
        .service
        .list_messages_wait(
            K::ctx(&id, &project),
            &queue,
            params.clone(),
            q.int("wait")?,
        )
        .await?;
    let next = listing.next_marker.map(|marker| {
        let mut p: Vec<(&str, String)> = vec![("marker", marker)];
        if let Some(l) = params.limit {
            p.push(("limit", l.to_string()));
        }
        for (name, value) in [
            ("echo", params.echo),
            ("include_claimed", params.include_claimed),
            ("include_delayed", params.include_delayed),
        ] {
            if q.get(name).is_some() {
                p.push((name, value.to_string()));
            }
        }
        href(&format!("{}/{queue}/messages", K::COLLECTION), &p)
    });
    let views: Vec<MessageView<'_>> = listing
        .messages
        .iter()
        .map(|m| MessageView::under(&format!("{}/{queue}", K::COLLECTION), m, now))
        .collect();
    let links: Vec<Link> = next_links(next);
    Ok(json_body(&json!({ "messages": views, "links": links })).into_response())
}

pub(super) async fn delete_messages<K: Kind>(
    State(s): St,
    Extension(id): Id,
    Path(queue): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let project = K::project(&id);
    let q = Query::parse(raw.as_deref());
    let req = BulkDelete {
        ids: q.list("ids"),
        claim_ids: q.list("claim_ids"),
        pop: q.int("pop")?,
    };
    match s
        .service
        .delete_messages(K::ctx(&id, &project), &queue, req)
        .await?
    {
        Some(popped) => {
            let now = s.service.now();
            let views: Vec<PoppedView<'_>> =
                popped.iter().map(|m| PoppedView::new(m, now)).collect();
            Ok(json_body(&json!({ "messages": views })).into_response())
        }
        None => Ok(no_content()),
    }
}

pub(super) async fn get_message<K: Kind>(
    State(s): St,
    Extension(id): Id,
    Path((queue, message_id)): Path<(String, String)>,
) -> Result<Response> {
    let project = K::project(&id);
    let m = s
        .service
        .get_message(K::ctx(&id, &project), &queue, &message_id)
        .await?;
    let view = MessageView::under(&format!("{}/{queue}", K::COLLECTION), &m, s.service.now());
    Ok(json_body(&view).into_response())
}

pub(super) async fn delete_message<K: Kind>(
    State(s): St,
    Extension(id): Id,
    Path((queue, message_id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let project = K::project(&id);
    let q = Query::parse(raw.as_deref());
    s.service
        .delete_message(
            K::ctx(&id, &project),
            &queue,
            &message_id,
            q.get("claim_id"),
        )
        .await?;
    Ok(no_content())
}

/// `POST /v2/queues/{queue}/x-redrive` (extension): moves messages of a dead-letter queue back
/// to their source queues, or to `target`.
pub(super) async fn redrive(
    State(s): St,
    Extension(id): Id,
    Path(queue): Path<String>,
    body: Body,
) -> Result<Response> {
    let body = small_body(body).await?;
    let outcome = s.service.redrive(id.ctx(), &queue, &body).await?;
    let doc =
        json!({"moved": outcome.moved, "skipped": outcome.skipped, "targets": outcome.targets});
    Ok(json_body(&doc).into_response())
}

// ----- claims -------------------------------------------------------------------------

pub(super) async fn create_claim(
    State(s): St,
    Extension(id): Id,
    Path(queue): Path<String>,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Result<Response> {
    let q = Query::parse(raw.as_deref());
    let limit = q.int("limit")?;
    let wait = q.int("wait")?;
    let body = small_body(body).await?;
    match s
        .service
        .create_claim_wait(id.ctx(), &queue, limit, &body, wait)
        .await?
    {
        None => Ok(no_content()),
        Some(claim) => {
            let now = s.service.now();
            let views: Vec<MessageView<'_>> = claim
                .messages
                .iter()
                .map(|m| MessageView::new(&queue, m, now))
                .collect();
            let mut resp = (
                StatusCode::CREATED,
                json_body(&json!({ "messages": views })),
            )
                .into_response();
            location(
                &mut resp,
                &format!("/v2/queues/{queue}/claims/{}", claim.id),
            );
            Ok(resp)
        }
    }
}

pub(super) async fn get_claim(
    State(s): St,
    Extension(id): Id,
    Path((queue, claim_id)): Path<(String, String)>,
) -> Result<Response> {
    let claim = s.service.get_claim(id.ctx(), &queue, &claim_id).await?;
    let view = ClaimView::new(&queue, &claim, s.service.now());
    Ok(json_body(&view).into_response())
}

pub(super) async fn update_claim(
    State(s): St,
    Extension(id): Id,
    Path((queue, claim_id)): Path<(String, String)>,
    body: Body,
) -> Result<Response> {
    let body = small_body(body).await?;
    s.service
        .update_claim(id.ctx(), &queue, &claim_id, &body)
        .await?;
    Ok(no_content())
}

pub(super) async fn delete_claim(
    State(s): St,
    Extension(id): Id,
    Path((queue, claim_id)): Path<(String, String)>,
) -> Result<Response> {
    s.service.delete_claim(id.ctx(), &queue, &claim_id).await?;
    Ok(no_content())
}

// ----- subscriptions (queues and topics) ---------------------------------------------------

pub(super) async fn list_subscriptions<K: Kind>(
    State(s): St,
    Extension(id): Id,
    Path(source): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let q = Query::parse(raw.as_deref());
    let ctx = id.ctx();
    let limit = q.int("limit")?;
    let subs = s
        .service
        .list_subscriptions(ctx, K::KIND, &source, q.get("marker"), limit)
        .await?;
    let now = s.service.now();
    let next = subs.last().map(|last| {
        let mut p: Vec<(&str, String)> = vec![("marker", last.id.clone())];
        if let Some(l) = limit {
            p.push(("limit", l.to_string()));
        }
        href(&format!("{}/{source}/subscriptions", K::COLLECTION), &p)
    });
    let items: Vec<Value> = subs.iter().map(|x| wire::subscription(x, now)).collect();
    Ok(json_body(&json!({"subscriptions": items, "links": next_links(next)})).into_response())
}

pub(super) async fn create_subscription<K: Kind>(
    State(s): St,
    Extension(id): Id,
    Path(source): Path<String>,
    body: Body,
) -> Result<Response> {
    let body = small_body(body).await?;
    let collection = format!("{}/{source}/subscriptions", K::COLLECTION);
    match s
        .service
        .create_subscription(id.ctx(), K::KIND, &source, &body)
        .await?
    {
        Created::Created(sid) => {
            let mut resp = (
                StatusCode::CREATED,
                json_body(&json!({ "subscription_id": sid })),
            )
                .into_response();
            location(&mut resp, &collection);
            Ok(resp)
        }
        Created::Conflict => {
            let mut resp = super::error::respond(Error::Conflict(
                "Such subscription already exists. Subscriptions are unique by project + queue + subscriber URI."
                    .into(),
            ));
            location(&mut resp, &collection);
            Ok(resp)
        }
    }
}

pub(super) async fn get_subscription<K: Kind>(
    State(s): St,
    Extension(id): Id,
    Path((source, sid)): Path<(String, String)>,
) -> Result<Response> {
    let sub = s
        .service
        .get_subscription(id.ctx(), K::KIND, &source, &sid)
        .await?;
    Ok(json_body(&wire::subscription(&sub, s.service.now())).into_response())
}

pub(super) async fn update_subscription<K: Kind>(
    State(s): St,
    Extension(id): Id,
    Path((source, sid)): Path<(String, String)>,
    body: Body,
) -> Result<Response> {
    let body = small_body(body).await?;
    s.service
        .update_subscription(id.ctx(), K::KIND, &source, &sid, &body)
        .await?;
    let mut resp = no_content();
    location(
        &mut resp,
        &format!("{}/{source}/subscriptions/{sid}", K::COLLECTION),
    );
    Ok(resp)
}

pub(super) async fn delete_subscription<K: Kind>(
    State(s): St,
    Extension(id): Id,
    Path((source, sid)): Path<(String, String)>,
) -> Result<Response> {
    s.service
        .delete_subscription(id.ctx(), K::KIND, &source, &sid)
        .await?;
    Ok(no_content())
}

pub(super) async fn confirm_subscription<K: Kind>(
    State(s): St,
    Extension(id): Id,
    Path((source, sid)): Path<(String, String)>,
    body: Body,
) -> Result<Response> {
    let body = small_body(body).await?;
    s.service
        .confirm_subscription(id.ctx(), K::KIND, &source, &sid, &body)
        .await?;
    let mut resp = no_content();
    location(
        &mut resp,
        &format!("{}/{source}/subscriptions/{sid}/confirm", K::COLLECTION),
    );
    Ok(resp)
}
