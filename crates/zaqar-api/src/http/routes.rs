//! The route table of the v2 API: every route is registered with the [`Operation`] it
//! performs, so the router and the operation lookup of the request guard are built from the
//! same list and cannot disagree. A request whose route and method name no operation is
//! refused before any handler runs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter};
use axum::Router;
use zaqar_core::operation::Operation;

use super::handlers::{self, Kind};
use super::{pools, quotas, AppState};

/// Which operation each (route template, method) performs.
#[derive(Debug, Default)]
pub struct OperationTable {
    ops: HashMap<(String, Method), Operation>,
}

impl OperationTable {
    /// The operation of a request, by its matched route template and method. `HEAD` is the
    /// `GET` of the same route unless the route has a `HEAD` of its own (HTTP semantics: the
    /// same resource without a body).
    pub fn lookup(&self, route: &str, method: &Method) -> Option<Operation> {
        let key = (route.to_string(), method.clone());
        if let Some(op) = self.ops.get(&key) {
            return Some(*op);
        }
        if method == Method::HEAD {
            return self.ops.get(&(route.to_string(), Method::GET)).copied();
        }
        None
    }

    /// Every registered (route template, method, operation), sorted.
    pub fn entries(&self) -> Vec<(String, Method, Operation)> {
        let mut all: Vec<_> = self
            .ops
            .iter()
            .map(|((r, m), op)| (r.clone(), m.clone(), *op))
            .collect();
        all.sort_by(|a, b| (&a.0, a.1.as_str()).cmp(&(&b.0, b.1.as_str())));
        all
    }
}

/// Routes being registered: one method router per path, and the operation table.
pub(super) struct Routes {
    paths: BTreeMap<String, MethodRouter<Arc<AppState>>>,
    table: OperationTable,
}

impl Routes {
    fn new() -> Routes {
        Routes {
            paths: BTreeMap::new(),
            table: OperationTable::default(),
        }
    }

    /// Registers `handler` for `method` on `path` as `op`.
    fn add<H, T>(&mut self, method: Method, path: &str, op: Operation, handler: H)
    where
        H: Handler<T, Arc<AppState>>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone())
            .unwrap_or_else(|_| panic!("no method filter for {method}"));
        let routed = self
            .paths
            .remove(path)
            .unwrap_or_default()
            .on(filter, handler);
        self.paths.insert(path.to_string(), routed);
        let previous = self
            .table
            .ops
            .insert((path.to_string(), method.clone()), op);
        assert!(previous.is_none(), "{method} {path} is registered twice");
    }

    /// The router of the registered routes (without state or layers) and their table.
    pub(super) fn finish(self) -> (Router<Arc<AppState>>, OperationTable) {
        let router = self
            .paths
            .into_iter()
            .fold(Router::new(), |r, (path, routed)| r.route(&path, routed));
        (router, self.table)
    }
}

/// The routes of `/v2` for a server with `admin_mode` and `pooling` as given.
pub(super) fn v2_routes(admin_mode: bool, pooling: bool) -> Routes {
    use handlers::*;
    use Method as M;
    use Operation as Op;
    let mut r = Routes::new();
    r.add(M::GET, "/v2", Op::Home, home);
    r.add(M::GET, "/v2/", Op::Home, home);
    r.add(M::GET, "/v2/ping", Op::Ping, ping);
    r.add(M::HEAD, "/v2/ping", Op::Ping, ping_head);
    let claims = "/v2/queues/{queue}/claims";
    r.add(M::POST, claims, Op::ClaimCreate, create_claim);
    let claim = "/v2/queues/{queue}/claims/{claim_id}";
    r.add(M::GET, claim, Op::ClaimGet, get_claim);
    r.add(M::PATCH, claim, Op::ClaimUpdate, update_claim);
    r.add(M::DELETE, claim, Op::ClaimDelete, delete_claim);
    r.add(
        M::POST,
        "/v2/queues/{queue}/share",
        Op::QueueShare,
        share_queue,
    );
    r.add(
        M::POST,
        "/v2/queues/{queue}/x-redrive",
        Op::QueueRedrive,
        redrive,
    );
    sources::<Queues>(&mut r, "/v2/queues", "{queue}");
    sources::<Topics>(&mut r, "/v2/topics", "{topic}");
    if admin_mode {
        r.add(M::GET, "/v2/health", Op::Health, health);
        r.add(M::GET, "/v2/quotas", Op::QuotaList, quotas::list_quotas);
        let quota = "/v2/quotas/{project_id}";
        r.add(M::PUT, quota, Op::QuotaUpdate, quotas::put_quota);
        r.add(M::GET, quota, Op::QuotaGet, quotas::get_quota);
        r.add(M::DELETE, quota, Op::QuotaDelete, quotas::delete_quota);
    }
    if admin_mode && pooling {
        pool_routes(&mut r);
    }
    r
}

/// `/v2/pools` and `/v2/flavors` (admin mode with pooling).
fn pool_routes(r: &mut Routes) {
    use Method as M;
    use Operation as Op;
    r.add(M::GET, "/v2/pools", Op::PoolList, pools::list_pools);
    let pool = "/v2/pools/{pool}";
    r.add(M::PUT, pool, Op::PoolCreate, pools::put_pool);
    r.add(M::GET, pool, Op::PoolGet, pools::get_pool);
    r.add(M::PATCH, pool, Op::PoolUpdate, pools::patch_pool);
    r.add(M::DELETE, pool, Op::PoolDelete, pools::delete_pool);
    r.add(M::GET, "/v2/flavors", Op::FlavorList, pools::list_flavors);
    let flavor = "/v2/flavors/{flavor}";
    r.add(M::PUT, flavor, Op::FlavorCreate, pools::put_flavor);
    r.add(M::GET, flavor, Op::FlavorGet, pools::get_flavor);
    r.add(M::PATCH, flavor, Op::FlavorUpdate, pools::patch_flavor);
    r.add(M::DELETE, flavor, Op::FlavorDelete, pools::delete_flavor);
}

/// The operations that differ between queues and topics (the rest are shared).
struct SourceOps {
    list: Operation,
    create: Operation,
    get: Operation,
    update: Operation,
    delete: Operation,
    stats: Operation,
    purge: Operation,
}

fn source_ops<K: Kind>() -> SourceOps {
    use Operation as Op;
    match K::KIND {
        zaqar_core::service::subscriptions::SourceKind::Queue => SourceOps {
            list: Op::QueueList,
            create: Op::QueueCreate,
            get: Op::QueueGet,
            update: Op::QueueUpdate,
            delete: Op::QueueDelete,
            stats: Op::QueueStats,
            purge: Op::QueuePurge,
        },
        zaqar_core::service::subscriptions::SourceKind::Topic => SourceOps {
            list: Op::TopicList,
            create: Op::TopicCreate,
            get: Op::TopicGet,
            update: Op::TopicUpdate,
            delete: Op::TopicDelete,
            stats: Op::TopicStats,
            purge: Op::TopicPurge,
        },
    }
}

/// The routes queues and topics share (spec §3.7).
fn sources<K: Kind>(r: &mut Routes, base: &str, param: &str) {
    use handlers::*;
    use Method as M;
    use Operation as Op;
    let ops = source_ops::<K>();
    let item = format!("{base}/{param}");
    r.add(M::GET, base, ops.list, list_queues::<K>);
    r.add(M::PUT, &item, ops.create, create_queue::<K>);
    r.add(M::GET, &item, ops.get, get_queue::<K>);
    r.add(M::HEAD, &item, ops.get, head_queue::<K>);
    r.add(M::PATCH, &item, ops.update, patch_queue::<K>);
    r.add(M::DELETE, &item, ops.delete, delete_queue::<K>);
    r.add(
        M::GET,
        &format!("{item}/stats"),
        ops.stats,
        queue_stats::<K>,
    );
    r.add(
        M::POST,
        &format!("{item}/purge"),
        ops.purge,
        purge_queue::<K>,
    );
    let messages = format!("{item}/messages");
    r.add(M::POST, &messages, Op::MessagePost, post_messages::<K>);
    r.add(M::GET, &messages, Op::MessageList, get_messages::<K>);
    r.add(
        M::DELETE,
        &messages,
        Op::MessageDeleteMany,
        delete_messages::<K>,
    );
    let message = format!("{item}/messages/{{message_id}}");
    r.add(M::GET, &message, Op::MessageGet, get_message::<K>);
    r.add(M::DELETE, &message, Op::MessageDelete, delete_message::<K>);
    let subs = format!("{item}/subscriptions");
    r.add(M::GET, &subs, Op::SubscriptionList, list_subscriptions::<K>);
    r.add(
        M::POST,
        &subs,
        Op::SubscriptionCreate,
        create_subscription::<K>,
    );
    let sub = format!("{item}/subscriptions/{{subscription_id}}");
    r.add(M::GET, &sub, Op::SubscriptionGet, get_subscription::<K>);
    r.add(
        M::PATCH,
        &sub,
        Op::SubscriptionUpdate,
        update_subscription::<K>,
    );
    r.add(
        M::DELETE,
        &sub,
        Op::SubscriptionDelete,
        delete_subscription::<K>,
    );
    let confirm = format!("{sub}/confirm");
    r.add(
        M::PUT,
        &confirm,
        Op::SubscriptionConfirm,
        confirm_subscription::<K>,
    );
}

impl OperationTable {
    /// Adds `GET /`, the versions document (served outside `/v2`, without its checks).
    pub(super) fn insert_versions(&mut self) {
        self.ops
            .insert(("/".to_string(), Method::GET), Operation::Versions);
    }
}

/// The route table of a server with `admin_mode` and `pooling` as given (`GET /` included).
pub fn operation_table(admin_mode: bool, pooling: bool) -> OperationTable {
    let (_, mut table) = v2_routes(admin_mode, pooling).finish();
    table.insert_versions();
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_one_operation_and_head_follows_get() {
        let t = operation_table(true, true);
        assert_eq!(
            t.lookup("/v2/queues/{queue}/stats", &Method::HEAD),
            Some(Operation::QueueStats)
        );
        assert_eq!(t.lookup("/v2/queues/{queue}/stats", &Method::PUT), None);
        assert_eq!(t.lookup("/v2/ping", &Method::HEAD), Some(Operation::Ping));
        // Without admin mode the admin routes do not exist at all.
        let plain = operation_table(false, false);
        assert!(plain
            .entries()
            .iter()
            .all(|(r, _, _)| !r.contains("pools") && !r.contains("quotas") && r != "/v2/health"));
        assert!(t.entries().len() > plain.entries().len());
    }
}
