//! One WebSocket request: envelope checks, authorization, then exactly one service call per
//! action and its rendering (spec §4.4). Validation and every rule of the spec stay in the
//! service; bodies it takes as raw JSON are rebuilt from the WebSocket body's fields.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::auth::{self, Caller};
use super::protocol::{self, Format, Request};
use super::{operations, Connection, WsState};
use crate::wire;
use crate::wire::ws as shapes;
use zaqar_core::error::{Error, Result};
use zaqar_core::service::{validate, BulkDelete, Ctx, MessageListParams, QueueListParams};

/// A status and a response body.
type Reply = (u16, Value);

/// The response body of a service error: `{"error": <title>, "exception": <description>}`.
fn error_reply(e: &Error) -> Reply {
    if e.status() >= 500 {
        tracing::warn!(status = e.status(), error = %e, "websocket request failed");
    }
    (
        e.status(),
        json!({"error": e.title(), "exception": e.description()}),
    )
}

/// Handles one decoded-or-not frame and returns the complete response document.
pub(super) async fn respond(
    state: &WsState,
    conn: &Connection,
    format: Format,
    data: &[u8],
) -> Value {
    if format == Format::Json && protocol::json_has_oversized_integer(data) {
        let e = Error::body("JSON contains integer that is too large.");
        let (status, body) = error_reply(&e);
        return protocol::response(protocol::echo(None), status, body);
    }
    let payload = match protocol::decode(format, data) {
        Ok(v) => v,
        Err(text) => {
            let (status, body) = protocol::protocol_error(text);
            return protocol::response(protocol::echo(None), status, body);
        }
    };
    let Value::Object(payload) = payload else {
        let (status, body) =
            protocol::protocol_error("Unexpected body type. Expected dict or dict like.");
        return protocol::response(protocol::echo(None), status, body);
    };
    let (authenticate, (status, body)) = match protocol::validate(&payload) {
        Err(text) => (false, protocol::protocol_error(text)),
        Ok(req) => {
            let reply = handle(state, conn, format, &req).await;
            zaqar_core::metrics::websocket_request(req.action(), reply.0);
            (req.action() == "authenticate", reply)
        }
    };
    let request = if authenticate {
        // As the reference answers `authenticate`: the token is not echoed back.
        protocol::echo(Some(
            [("action".to_string(), json!("authenticate"))]
                .into_iter()
                .collect(),
        ))
    } else {
        protocol::echo(Some(payload))
    };
    protocol::response(request, status, body)
}

async fn handle(state: &WsState, conn: &Connection, format: Format, req: &Request<'_>) -> Reply {
    if req.action() == "authenticate" {
        let current = conn.auth_state();
        let (next, status, body) = auth::authenticate(&state.service, &current, req).await;
        conn.set_auth_state(next);
        return (status, body);
    }
    let caller = match auth::authorize(&state.service, &conn.auth_state(), req) {
        Ok(c) => c,
        Err(reply) => return reply,
    };
    // The same policy and rate limit as over HTTP (an admin action that does not exist outside
    // admin mode is "not found" before it is "not allowed", as its HTTP route is).
    let exists = (state.admin_mode || req.action() != "check_node_health")
        && (state.pooling || !is_pooling_action(req.action()))
        && (state.admin_mode || !is_quota_action(req.action()));
    // Every action of the protocol has an operation (a test enumerates them); a name
    // without one is refused, never served unchecked.
    let Some(operation) = operations::operation_of(req.action()) else {
        return error_reply(&Error::NotAuthorized);
    };
    let checked = if exists {
        state.service.authorize(operation, &caller.roles)
    } else {
        Ok(())
    };
    let checked = match (
        checked,
        caller
            .project
            .as_deref()
            .or_else(|| req.header("X-Project-ID")),
    ) {
        (Ok(()), Some(p)) => state.service.admit(p).await,
        (other, _) => other,
    };
    if let Err(e) = checked {
        return error_reply(&e);
    }
    if req.action().starts_with("subscription_") {
        return match subscription_action(state, conn, format, req, &caller).await {
            Ok(reply) => reply,
            Err(e) => error_reply(&e),
        };
    }
    match dispatch(state, req, &caller).await {
        Ok(reply) => reply,
        Err(e) => error_reply(&e),
    }
}

/// The identity of a request: validated `Client-ID` and project, as over HTTP.
struct Who {
    project: String,
    client_id: String,
    user: Option<std::sync::Arc<zaqar_core::identity::UserToken>>,
}

impl Who {
    fn of(state: &WsState, req: &Request<'_>, caller: &Caller) -> Result<Who> {
        let client_id = validate::client_id(req.header("Client-ID"), state.service.limits())?;
        let project = match &caller.project {
            Some(p) => p.clone(),
            None => validate::project_id(req.header("X-Project-ID"))?.to_string(),
        };
        Ok(Who {
            project,
            client_id,
            user: caller.user.clone(),
        })
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            project: &self.project,
            client_id: &self.client_id,
            user: self.user.as_deref(),
        }
    }
}

/// A JSON document made of the given body fields (only those present), as a service
/// function reading a raw body expects it.
fn document(req: &Request<'_>, fields: &[&str]) -> Vec<u8> {
    let doc: BTreeMap<&str, &Value> = fields
        .iter()
        .filter_map(|f| req.body.get(*f).map(|v| (*f, v)))
        .collect();
    if doc.is_empty() {
        Vec::new()
    } else {
        serde_json::to_vec(&doc).unwrap_or_default()
    }
}

/// `subscription_*` (spec §4.4, §4.6). A `subscription_create` without `subscriber`
/// subscribes this connection: notifications of the queue are pushed to it, in the frame format
/// of that request, until it closes.
async fn subscription_action(
    state: &WsState,
    conn: &Connection,
    format: Format,
    req: &Request<'_>,
    caller: &Caller,
) -> Result<Reply> {
    use zaqar_core::service::subscriptions::{Created, SourceKind};
    let service = &state.service;
    let who = Who::of(state, req, caller)?;
    let ctx = who.ctx();
    let queue = req.req_str("queue_name");
    let now = service.now();
    Ok(match req.action() {
        "subscription_create" => {
            let created = match req.str("subscriber") {
                Some(_) => {
                    let body = document(req, &["subscriber", "ttl", "options"]);
                    match service
                        .create_subscription(ctx, SourceKind::Queue, queue, &body)
                        .await?
                    {
                        Created::Created(id) => Some(id),
                        Created::Conflict => None,
                    }
                }
                None => {
                    let uri = service
                        .push_connections()
                        .connection_uri(&conn.id)
                        .ok_or_else(|| {
                            Error::unavailable(
                                "This node cannot push notifications to connections.",
                            )
                        })?;
                    let options = match req.body.get("options") {
                        Some(Value::Object(o)) => o.clone(),
                        _ => Default::default(),
                    };
                    let ttl = zaqar_core::service::subscriptions::body_ttl(req.body)?;
                    let id = service
                        .create_connection_subscription(
                            ctx,
                            SourceKind::Queue,
                            queue,
                            &uri,
                            ttl,
                            options,
                        )
                        .await?;
                    conn.subscribed(
                        state,
                        format,
                        super::conn::OwnSubscription {
                            project: who.project.clone(),
                            client_id: who.client_id.clone(),
                            kind: SourceKind::Queue,
                            source: queue.to_string(),
                            id: id.clone(),
                        },
                    );
                    Some(id)
                }
            };
            match created {
                Some(id) => (
                    201,
                    json!({"subscription_id": id, "message": format!("Subscription {queue} created.")}),
                ),
                None => (409, json!(format!("Subscription {queue} not created."))),
            }
        }
        "subscription_list" => {
            let subs = service
                .list_subscriptions(
                    ctx,
                    SourceKind::Queue,
                    queue,
                    req.str("marker"),
                    req.int("limit"),
                )
                .await?;
            let items: Vec<Value> = subs.iter().map(|x| wire::subscription(x, now)).collect();
            (200, json!({ "subscriptions": items }))
        }
        "subscription_get" => {
            let id = req.req_str("subscription_id");
            let sub = service
                .get_subscription(ctx, SourceKind::Queue, queue, id)
                .await?;
            (200, wire::subscription(&sub, now))
        }
        "subscription_delete" => {
            let id = req.req_str("subscription_id");
            service
                .delete_subscription(ctx, SourceKind::Queue, queue, id)
                .await?;
            conn.forget_subscription(id);
            (204, json!(format!("Subscription {id} removed.")))
        }
        other => (
            400,
            json!({ "error": format!("{other} is not a valid action") }),
        ),
    })
}

async fn dispatch(state: &WsState, req: &Request<'_>, caller: &Caller) -> Result<Reply> {
    let service = &state.service;
    let action = req.action();
    // Actions that act in no project.
    match action {
        "get_home_doc" => return Ok((200, state.home_document())),
        "ping_node" => {
            return Ok(if service.ping().await {
                (204, json!({}))
            } else {
                error_reply(&Error::unavailable("The storage is not reachable."))
            })
        }
        "check_node_health" => {
            if !state.admin_mode {
                return Ok((
                    404,
                    json!({"error": "check_node_health is only available in admin mode."}),
                ));
            }
            return Ok((200, wire::health(&service.health().await?)));
        }
        _ => {}
    }
    if is_pooling_action(action) {
        if !state.pooling {
            // Without admin mode and pooling (spec §4.4: "<action> is not implemented").
            return Ok((
                501,
                json!({ "error": format!("{action} is not implemented") }),
            ));
        }
        return pooling_action(state, req, caller).await;
    }
    if is_quota_action(action) {
        if !state.admin_mode {
            return Ok((
                501,
                json!({ "error": format!("{action} is not implemented") }),
            ));
        }
        return quota_action(state, req).await;
    }
    let family = action.split('_').next().unwrap_or("");
    match family {
        "queue" => queue_action(state, req, caller).await,
        "message" => message_action(state, req, caller).await,
        _ => claim_action(state, req, caller).await,
    }
}

/// `queue_*`.
async fn queue_action(state: &WsState, req: &Request<'_>, caller: &Caller) -> Result<Reply> {
    let service = &state.service;
    let action = req.action();
    let who = Who::of(state, req, caller)?;
    let ctx = who.ctx();
    let queue = req.req_str("queue_name");
    let now = || service.now();
    Ok(match action {
        // ----- queues
        "queue_list" => {
            let p = QueueListParams {
                marker: req.str("marker").map(str::to_string),
                limit: req.int("limit"),
                detailed: req.bool("detailed").unwrap_or(false),
                ..Default::default()
            };
            (
                200,
                shapes::queues(&service.list_queues_stored(ctx, p).await?),
            )
        }
        "queue_create" => {
            let created = service
                .create_queue(ctx, queue, &document_of(req.body.get("metadata")))
                .await?;
            let status = if created { 201 } else { 204 };
            (status, json!(format!("Queue {queue} created.")))
        }
        "queue_delete" => {
            service.delete_queue(ctx, queue).await?;
            (204, json!(format!("Queue {queue} removed.")))
        }
        "queue_get" => (
            200,
            Value::Object(service.get_queue_stored(ctx, queue).await?),
        ),
        "queue_get_stats" => match service.queue_stats_if_exists(ctx, queue).await? {
            Some(stats) => (200, shapes::stats(&stats, now())),
            None => (404, shapes::missing_queue_stats()),
        },
        "queue_purge" => {
            service
                .purge_queue(ctx, queue, &document(req, &["resource_types"]))
                .await?;
            (204, json!({}))
        }
        // The schema table and these matches list the same actions; a new schema entry
        // without a handler is answered, never dropped.
        other => (
            501,
            json!({ "error": format!("{other} is not implemented") }),
        ),
    })
}

/// `message_*`.
async fn message_action(state: &WsState, req: &Request<'_>, caller: &Caller) -> Result<Reply> {
    let service = &state.service;
    let action = req.action();
    let who = Who::of(state, req, caller)?;
    let ctx = who.ctx();
    let queue = req.req_str("queue_name");
    let now = || service.now();
    Ok(match action {
        // ----- messages
        "message_list" => {
            let p = MessageListParams {
                marker: req.str("marker").map(str::to_string),
                limit: req.int("limit"),
                echo: req.bool("echo").unwrap_or(false),
                include_claimed: req.bool("include_claimed").unwrap_or(false),
                include_delayed: req.bool("include_delayed").unwrap_or(false),
            };
            // `wait` (long polling, an extension) parks only this request: the connection keeps
            // serving its other requests meanwhile.
            let listing = service
                .list_messages_wait(ctx, queue, p, req.int("wait"))
                .await?;
            (
                200,
                json!({ "messages": shapes::messages(&listing.messages, now()) }),
            )
        }
        "message_get" => {
            let m = service
                .get_message(ctx, queue, req.req_str("message_id"))
                .await?;
            (200, json!({ "messages": shapes::message(&m, now()) }))
        }
        "message_get_many" => {
            let ids = req.strings("message_ids").unwrap_or_default();
            let found = match service.get_messages(ctx, queue, &ids).await {
                Ok(found) => found,
                // Over WebSocket, none found is an empty list (§4.4).
                Err(Error::NotFound(_)) => Vec::new(),
                Err(e) => return Err(e),
            };
            (200, json!({ "messages": shapes::messages(&found, now()) }))
        }
        "message_post" => {
            let ids = service
                .post_messages(ctx, queue, &document(req, &["messages"]))
                .await?;
            (201, json!({ "message_ids": ids }))
        }
        "message_delete" => {
            service
                .delete_message(ctx, queue, req.req_str("message_id"), req.str("claim_id"))
                .await?;
            (204, json!({}))
        }
        "message_delete_many" => {
            let bulk = BulkDelete {
                ids: req.strings("message_ids"),
                claim_ids: req.strings("claim_ids"),
                pop: req.int("pop"),
            };
            match service.delete_messages(ctx, queue, bulk).await? {
                Some(popped) => {
                    let now = now();
                    let views: Vec<Value> = popped.iter().map(|m| shapes::popped(m, now)).collect();
                    (200, json!({ "messages": views }))
                }
                None => (204, json!({})),
            }
        }
        // The schema table and these matches list the same actions; a new schema entry
        // without a handler is answered, never dropped.
        other => (
            501,
            json!({ "error": format!("{other} is not implemented") }),
        ),
    })
}

/// `claim_*` (and any other action of the schema: answered as not implemented).
async fn claim_action(state: &WsState, req: &Request<'_>, caller: &Caller) -> Result<Reply> {
    let service = &state.service;
    let action = req.action();
    let who = Who::of(state, req, caller)?;
    let ctx = who.ctx();
    let queue = req.req_str("queue_name");
    let now = || service.now();
    Ok(match action {
        // ----- claims
        "claim_create" => {
            let claim = service
                .create_claim_wait(
                    ctx,
                    queue,
                    req.int("limit"),
                    &document(req, &["ttl", "grace"]),
                    req.int("wait"),
                )
                .await?;
            match claim {
                Some(c) => (
                    201,
                    json!({"claim_id": c.id, "messages": shapes::messages(&c.messages, now())}),
                ),
                None => (204, json!({ "claim_id": null })),
            }
        }
        "claim_get" => {
            let claim_id = req.req_str("claim_id");
            let c = service.get_claim(ctx, queue, claim_id).await?;
            (200, shapes::claim(&c, now()))
        }
        "claim_update" => {
            let claim_id = req.req_str("claim_id");
            let mut body = document(req, &["ttl", "grace"]);
            if body.is_empty() {
                // The reference renews with the default TTL when none is given.
                body = b"{}".to_vec();
            }
            service.update_claim(ctx, queue, claim_id, &body).await?;
            (204, json!(format!("Claim {claim_id} updated.")))
        }
        "claim_delete" => {
            let claim_id = req.req_str("claim_id");
            service.delete_claim(ctx, queue, claim_id).await?;
            (204, json!(format!("Claim {claim_id} deleted.")))
        }
        // The schema table and these matches list the same actions; a new schema entry
        // without a handler is answered, never dropped.
        other => (
            501,
            json!({ "error": format!("{other} is not implemented") }),
        ),
    })
}

fn is_pooling_action(action: &str) -> bool {
    action.starts_with("pool_") || action.starts_with("flavor_")
}

fn is_quota_action(action: &str) -> bool {
    action.starts_with("quota_")
}

/// `quota_*` (admin mode): the service functions of `/v2/quotas`, with its bodies.
async fn quota_action(state: &WsState, req: &Request<'_>) -> Result<Reply> {
    use crate::wire::quota_json;
    let service = &state.service;
    let project = req.str("project_id").unwrap_or("");
    Ok(match req.action() {
        "quota_list" => {
            let items: Vec<Value> = service
                .list_quotas(req.str("marker"), req.int("limit"))
                .await?
                .iter()
                .map(quota_json)
                .collect();
            (200, json!({ "quotas": items }))
        }
        "quota_get" => (200, quota_json(&service.get_quota(project).await?)),
        "quota_set" => {
            let body = serde_json::to_vec(req.body.get("quota").unwrap_or(&Value::Null))
                .unwrap_or_default();
            (200, quota_json(&service.put_quota(project, &body).await?))
        }
        "quota_delete" => {
            service.delete_quota(project).await?;
            (204, json!(format!("Limits of project {project} removed.")))
        }
        other => (
            501,
            json!({ "error": format!("{other} is not implemented") }),
        ),
    })
}

/// `pool_*` and `flavor_*` (spec §3.8, §3.9 over WebSocket): the same service functions as
/// `/v2/pools` and `/v2/flavors`; bodies are the HTTP objects.
async fn pooling_action(state: &WsState, req: &Request<'_>, caller: &Caller) -> Result<Reply> {
    use crate::wire::{flavor_json, pool_json};
    let service = &state.service;
    let detailed = req.bool("detailed").unwrap_or(false);
    let pool = req.str("pool_name").unwrap_or("");
    let flavor = req.str("flavor_name").unwrap_or("");
    Ok(match req.action() {
        "pool_list" => {
            let pools = service
                .list_pools(req.str("marker"), req.int("limit"))
                .await?;
            let items: Vec<Value> = pools.iter().map(|p| pool_json(p, detailed)).collect();
            (200, json!({ "pools": items }))
        }
        "pool_create" => {
            let body = document(req, &["weight", "uri", "flavor", "options"]);
            let p = service.put_pool(pool, &body).await?;
            (201, pool_json(&p, true))
        }
        "pool_get" => (200, pool_json(&service.get_pool(pool).await?, detailed)),
        "pool_get_detail" => (200, pool_json(&service.get_pool(pool).await?, true)),
        "pool_update" => {
            let body = document(req, &["weight", "uri", "flavor", "options"]);
            let body = if body.is_empty() {
                b"{}".to_vec()
            } else {
                body
            };
            (
                200,
                pool_json(&service.patch_pool(pool, &body).await?, false),
            )
        }
        "pool_delete" => {
            service.delete_pool(pool).await?;
            (204, json!(format!("Pool {pool} removed.")))
        }
        _ => {
            let who = Who::of(state, req, caller)?;
            let project = who.project.as_str();
            // `pool_name` (Zaqar's older single-pool form) stands for a one-pool list.
            let flavor_body = || -> Vec<u8> {
                match (req.body.get("pool_list"), req.str("pool_name")) {
                    (None, Some(p)) => {
                        serde_json::to_vec(&json!({ "pool_list": [p] })).unwrap_or_default()
                    }
                    _ => {
                        let b = document(req, &["pool_list", "capabilities"]);
                        if b.is_empty() {
                            b"{}".to_vec()
                        } else {
                            b
                        }
                    }
                }
            };
            match req.action() {
                "flavor_list" => {
                    let flavors = service
                        .list_flavors(project, req.str("marker"), req.int("limit"))
                        .await?;
                    let items: Vec<Value> = flavors
                        .iter()
                        .map(|f| flavor_json(f, detailed, false))
                        .collect();
                    (200, json!({ "flavors": items }))
                }
                "flavor_create" => {
                    let f = service.put_flavor(project, flavor, &flavor_body()).await?;
                    (201, flavor_json(&f, true, true))
                }
                "flavor_get" => (
                    200,
                    flavor_json(&service.get_flavor(project, flavor).await?, true, true),
                ),
                "flavor_update" => {
                    let f = service
                        .patch_flavor(project, flavor, &flavor_body())
                        .await?;
                    (200, flavor_json(&f, true, true))
                }
                "flavor_delete" => {
                    service.delete_flavor(project, flavor).await?;
                    (204, json!(format!("Flavor {flavor} removed.")))
                }
                other => (
                    501,
                    json!({ "error": format!("{other} is not implemented") }),
                ),
            }
        }
    })
}

/// The raw body for `create_queue`: the `metadata` object, or nothing.
fn document_of(metadata: Option<&Value>) -> Vec<u8> {
    match metadata {
        None => Vec::new(),
        Some(m) => serde_json::to_vec(m).unwrap_or_default(),
    }
}
