//! The wire shapes of the API. Both transports render from here: the shapes they share (the
//! home document, health, subscriptions, pools, flavors, quotas) in this module, and each
//! transport's own message, claim and stats shapes in [`http`] and [`ws`]. Domain types are
//! not `Serialize`; these functions are the only way they reach a client.

pub mod http;
pub mod ws;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};

use zaqar_core::clock::{age_secs, Millis};
use zaqar_core::service::pools::FlavorView;
use zaqar_core::service::quota::{Limits, QuotaView};
use zaqar_core::service::{Health, PoolHealth, ProbeStep};
use zaqar_core::store::management::Pool;

/// Every byte but `A-Za-z0-9-._~` is percent-encoded in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes one path segment (hrefs built from stored names).
pub fn path_segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// The versions document of `GET /` (served with 300 Multiple Choices).
pub fn versions() -> Value {
    json!({"versions": [{
        "id": "2",
        "status": "CURRENT",
        "updated": "2014-9-24T04:06:47Z",
        "media-types": [{"base": "application/json",
                         "type": "application/vnd.openstack.messaging-v2+json"}],
        "links": [{"href": "/v2/", "rel": "self"}],
    }]})
}

/// One templated resource of the home document: its name (after `rel/`), its `href-template`,
/// its `href-vars` and the methods it allows.
type Resource = (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

/// The resources every server offers.
const RESOURCES: &[Resource] = &[
    (
        "queues",
        "/v2/queues{?marker,limit,detailed}",
        &["marker", "limit", "detailed"],
        &["GET"],
    ),
    (
        "queue",
        "/v2/queues/{queue_name}",
        &["queue_name"],
        &["GET", "PUT", "DELETE", "PATCH"],
    ),
    (
        "queue_stats",
        "/v2/queues/{queue_name}/stats",
        &["queue_name"],
        &["GET"],
    ),
    (
        "queue_share",
        "/v2/queues/{queue_name}/share",
        &["queue_name"],
        &["POST"],
    ),
    (
        "queue_purge",
        "/v2/queues/{queue_name}/purge",
        &["queue_name"],
        &["POST"],
    ),
    (
        "messages",
        "/v2/queues/{queue_name}/messages{?marker,limit,echo,include_claimed}",
        &["queue_name", "marker", "limit", "echo", "include_claimed"],
        &["GET"],
    ),
    (
        "post_messages",
        "/v2/queues/{queue_name}/messages",
        &["queue_name"],
        &["POST"],
    ),
    (
        "messages_delete",
        "/v2/queues/{queue_name}/messages{?ids,pop}",
        &["queue_name", "ids", "pop"],
        &["DELETE"],
    ),
    (
        "message_delete",
        "/v2/queues/{queue_name}/messages/{message_id}{?claim}",
        &["queue_name", "message_id", "claim"],
        &["DELETE"],
    ),
    (
        "message_get",
        "/v2/queues/{queue_name}/messages/{message_id}",
        &["queue_name", "message_id"],
        &["GET"],
    ),
    (
        "claim",
        "/v2/queues/{queue_name}/claims/{claim_id}",
        &["queue_name", "claim_id"],
        &["GET"],
    ),
    (
        "post_claim",
        "/v2/queues/{queue_name}/claims{?limit}",
        &["queue_name", "limit"],
        &["POST"],
    ),
    (
        "patch_claim",
        "/v2/queues/{queue_name}/claims/{claim_id}",
        &["queue_name", "claim_id"],
        &["PATCH"],
    ),
    (
        "delete_claim",
        "/v2/queues/{queue_name}/claims/{claim_id}",
        &["queue_name", "claim_id"],
        &["DELETE"],
    ),
    (
        "subscriptions_get",
        "/v2/queues/{queue_name}/subscriptions{?marker,limit}",
        &["queue_name", "marker", "limit"],
        &["GET"],
    ),
    (
        "subscriptions_post",
        "/v2/queues/{queue_name}/subscriptions",
        &["queue_name"],
        &["POST"],
    ),
    (
        "subscription",
        "/v2/queues/{queue_name}/subscriptions/{subscriptions_id}",
        &["queue_name", "subscriptions_id"],
        &["GET", "DELETE"],
    ),
    (
        "subscription_patch",
        "/v2/queues/{queue_name}/subscriptions/{subscriptions_id}",
        &["queue_name", "subscriptions_id"],
        &["PATCH"],
    ),
    ("ping", "/v2/ping", &[], &["GET"]),
];

/// The resources of `admin_mode` with `pooling`.
const POOLING_RESOURCES: &[Resource] = &[
    (
        "pools",
        "/v2/pools{?detailed,limit,marker}",
        &["detailed", "limit", "marker"],
        &["GET"],
    ),
    (
        "pool",
        "/v2/pools/{pool_name}",
        &["pool_name"],
        &["GET", "PUT", "PATCH", "DELETE"],
    ),
    (
        "flavors",
        "/v2/flavors{?detailed,limit,marker}",
        &["detailed", "limit", "marker"],
        &["GET"],
    ),
    (
        "flavor",
        "/v2/flavors/{flavor_name}",
        &["flavor_name"],
        &["GET", "PUT", "PATCH", "DELETE"],
    ),
];

/// The templated resources of `admin_mode` (health, with a plain `href`, is added apart).
const ADMIN_RESOURCES: &[Resource] = &[
    (
        "quotas",
        "/v2/quotas{?limit,marker}",
        &["limit", "marker"],
        &["GET"],
    ),
    (
        "quota",
        "/v2/quotas/{project_id}",
        &["project_id"],
        &["GET", "PUT", "DELETE"],
    ),
];

/// Adds each resource as `rel/{name}`. Every variable is a `param/{name}`, and the resources
/// that allow POST also tell which media type they accept.
fn add_resources(r: &mut Map<String, Value>, resources: &[Resource]) {
    for &(name, template, vars, allow) in resources {
        let vars: Map<String, Value> = vars
            .iter()
            .map(|v| (v.to_string(), Value::from(format!("param/{v}"))))
            .collect();
        let mut hints = json!({"allow": allow, "formats": {"application/json": {}}});
        if allow.contains(&"POST") {
            hints["accept-post"] = json!(["application/json"]);
        }
        r.insert(
            format!("rel/{name}"),
            json!({"href-template": template, "href-vars": vars, "hints": hints}),
        );
    }
}

/// The JSON-home document of `GET /v2/` and of the WebSocket `get_home_doc` action: the admin
/// resources appear with `admin_mode` (pools and flavors also need `pooling`).
pub fn home_document(admin_mode: bool, pooling: bool) -> Value {
    let mut r = Map::new();
    add_resources(&mut r, RESOURCES);
    if admin_mode && pooling {
        add_resources(&mut r, POOLING_RESOURCES);
    }
    if admin_mode {
        r.insert(
            "rel/health".into(),
            json!({"href": "/v2/health", "hints": {"allow": ["GET"], "formats": {"application/json": {}}}}),
        );
        add_resources(&mut r, ADMIN_RESOURCES);
    }
    json!({ "resources": r })
}

fn operation_status(steps: &[ProbeStep]) -> Map<String, Value> {
    steps
        .iter()
        .map(|st| {
            (
                st.name.to_string(),
                json!({"succeeded": st.succeeded, "seconds": st.seconds, "ref": st.reference}),
            )
        })
        .collect()
}

/// The body of `GET /v2/health` (and `check_node_health`): the probe's steps, or with pooling
/// `catalog_reachable` and one object per pool (spec §3.2.3).
pub fn health(health: &Health) -> Value {
    match health {
        Health::Store(steps) => {
            json!({"storage_reachable": true, "operation_status": operation_status(steps)})
        }
        Health::Pooled(pools) => pooled_health(pools),
    }
}

fn pooled_health(pools: &[PoolHealth]) -> Value {
    let mut doc = json!({"catalog_reachable": true});
    for p in pools {
        doc[p.name.as_str()] = json!({
            "storage_reachable": p.reachable,
            "operation_status": operation_status(&p.steps),
        });
    }
    doc
}

/// A subscription (spec §3.6), plus our delivery counters and the webhook signing secret.
pub fn subscription(s: &zaqar_core::model::Subscription, now: Millis) -> Value {
    json!({
        "id": s.id,
        "source": s.source,
        "subscriber": s.subscriber,
        "ttl": s.ttl,
        "age": age_secs(s.created, now),
        "options": s.options,
        "confirmed": s.confirmed,
        "signing_secret": s.secret,
        "delivery": {"delivered": s.delivered, "failed": s.failed, "last_error": s.last_error},
    })
}

/// The wire shape of a pool (`options` only when detailed).
pub fn pool_json(p: &Pool, detailed: bool) -> Value {
    let mut o = json!({
        "name": p.name,
        "uri": p.uri,
        "weight": p.weight,
        "flavor": p.flavor,
        "href": format!("/v2/pools/{}", p.name),
    });
    if detailed {
        o["options"] = Value::Object(p.options.clone());
    }
    o
}

/// The wire shape of a flavor: `pool_list` when non-empty (or `always`), `capabilities` when
/// detailed (or `always`).
pub fn flavor_json(f: &FlavorView, detailed: bool, always: bool) -> Value {
    let mut o = json!({"name": f.name, "href": format!("/v2/flavors/{}", f.name)});
    if always || !f.pool_list.is_empty() {
        o["pool_list"] = json!(f.pool_list);
    }
    if always || detailed {
        o["capabilities"] = json!(f.capabilities);
    }
    o
}

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
        "href": format!("/v2/quotas/{}", path_segment(&v.project)),
    });
    if let Some(u) = v.usage {
        out["usage"] = json!({"queues": u.queues, "topics": u.topics, "bytes": u.bytes});
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(crate::wire::path_segment("a b/c-d"), "a%20b%2Fc-d");
        assert_eq!(rate(2.0), json!(2));
        assert_eq!(rate(0.5), json!(0.5));
        let v = QuotaView {
            project: "p".into(),
            entry: zaqar_core::store::management::ProjectQuota {
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
