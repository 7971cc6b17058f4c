//! Policy fails closed: with a policy file that refuses every rule, every route of the router
//! and every WebSocket action of the protocol answers 403 — except the operations that are
//! public by design (versions, home document, authentication). Routes and actions are
//! enumerated from the route table and the action schema, not listed here by hand.

use reqwest::Method;
use serde_json::{json, Value};
use zaqar_api::http::routes::operation_table;
use zaqar_api::ws::operations::operation_of;
use zaqar_api::ws::protocol::{Ty, ACTIONS};
use zaqar_core::operation::{Access, Operation};

use zaqar_testkit as common;

use common::ws::WsClient;
use common::{TestServer, CLIENT, PROJECT};

/// A server in admin mode with pooling (so every route exists) whose policy refuses every
/// rule to every role.
async fn deny_all() -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.json");
    let rules: serde_json::Map<String, Value> = Operation::ALL
        .iter()
        .filter_map(|op| op.rule())
        .map(|rule| (rule.to_string(), json!("!")))
        .collect();
    std::fs::write(&path, Value::Object(rules).to_string()).unwrap();
    let s = TestServer::start_with(&[
        ("DEFAULT", "admin_mode", "true"),
        ("DEFAULT", "pooling", "true"),
        ("oslo_policy", "policy_file", path.to_str().unwrap()),
    ])
    .await;
    (s, dir)
}

/// A concrete path for a route template (valid names and ids for every parameter).
fn concrete(template: &str) -> String {
    template
        .replace("{queue}", "q1")
        .replace("{topic}", "t1")
        .replace("{message_id}", "000000000000000100000000000000aa")
        .replace("{claim_id}", "0123456789abcdef0123456789abcdef")
        .replace("{subscription_id}", "0123456789abcdef0123456789abcdef")
        .replace("{pool}", "p1")
        .replace("{flavor}", "f1")
        .replace("{project_id}", "other-project")
}

#[tokio::test]
async fn every_route_is_guarded_by_its_operation() {
    let (s, _dir) = deny_all().await;
    let table = operation_table(true, true).entries();
    assert!(table.len() > 60, "only {} routes", table.len());
    let public: Vec<String> = table
        .iter()
        .filter(|(_, _, op)| op.access() == Access::Public)
        .map(|(t, m, _)| format!("{m} {t}"))
        .collect();
    assert_eq!(
        public,
        ["GET /", "GET /v2", "GET /v2/"],
        "only the documents are public"
    );
    for (template, method, op) in table {
        let path = concrete(&template);
        let r = s
            .http
            .request(method.clone(), s.url(&path))
            .header("Client-ID", CLIENT)
            .header("X-Project-ID", PROJECT)
            .header("X-Roles", "admin")
            .header("Content-Type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        match op.access() {
            Access::Public => assert_ne!(status, 403, "{method} {path} ({op:?}) is public"),
            Access::Rule(rule) => {
                assert_eq!(
                    status, 403,
                    "{method} {path} ({op:?}) is not guarded by {rule}"
                )
            }
        }
    }
}

#[tokio::test]
async fn a_method_a_route_does_not_serve_is_refused_before_anything_runs() {
    let (s, _dir) = deny_all().await;
    // No operation: 405, whatever the credentials (the policy is never asked).
    let r = s
        .req(Method::PUT, "/v2/queues/q1/stats")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    // HEAD is the GET of the same resource.
    let r = s
        .req(Method::HEAD, "/v2/queues/q1/stats")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
}

/// A body with every required field of an action, of the right type.
fn body_for(required: &[&str], fields: &[(&str, Ty)]) -> Value {
    let mut body = serde_json::Map::new();
    for name in required {
        let ty = fields
            .iter()
            .find(|(f, _)| f == name)
            .map(|(_, t)| *t)
            .unwrap_or(Ty::Str);
        let v = match ty {
            Ty::Str => json!("q1"),
            Ty::Int => json!(1),
            Ty::Bool => json!(true),
            Ty::Array => json!([{"body": 1}]),
            Ty::Strings => json!(["0123456789abcdef0123456789abcdef"]),
            Ty::Object => json!({}),
        };
        body.insert(name.to_string(), v);
    }
    Value::Object(body)
}

#[tokio::test]
async fn every_websocket_action_is_guarded_by_its_operation() {
    let (s, _dir) = deny_all().await;
    let mut ws = WsClient::to(&s).await;
    let mut checked = 0;
    for spec in ACTIONS {
        let op = operation_of(spec.name)
            .unwrap_or_else(|| panic!("action {} has no operation", spec.name));
        if op.access() == Access::Public {
            continue;
        }
        let body = body_for(spec.required, spec.fields);
        ws.send_json(&json!({
            "action": spec.name,
            "headers": {"Client-ID": CLIENT, "X-Project-ID": PROJECT, "X-Roles": "admin"},
            "body": body,
        }))
        .await;
        let reply = ws.recv().await;
        assert_eq!(
            reply.status, 403,
            "{} ({op:?}) answered {} {}",
            spec.name, reply.status, reply.body
        );
        checked += 1;
    }
    assert!(checked > 30, "only {checked} actions checked");
}

#[tokio::test]
async fn an_unacceptable_accept_header_gets_406_on_every_route_before_any_lookup() {
    let s = TestServer::start_with(&[
        ("DEFAULT", "admin_mode", "true"),
        ("DEFAULT", "pooling", "true"),
    ])
    .await;
    // Nothing exists: a lookup would answer 404, so a 406 proves the check came first.
    for (template, method, _) in operation_table(true, true).entries() {
        let path = concrete(&template);
        let r = s
            .http
            .request(method.clone(), s.url(&path))
            .header("Client-ID", CLIENT)
            .header("X-Project-ID", PROJECT)
            .header("X-Roles", "admin")
            .header("Accept", "text/html")
            .header("Content-Type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 406, "{method} {path}");
    }
}

#[tokio::test]
async fn an_unacceptable_accept_header_gets_406_on_routes_that_do_not_exist_here_either() {
    // The reference's media-type test: no project header, `Accept: application/xml`, and
    // `/v2/health`, which exists only in admin mode here.
    let s = TestServer::start().await;
    for (method, path) in [
        (Method::GET, "/v2/queues"),
        (Method::GET, "/v2/queues/nonexistent/stats"),
        (Method::POST, "/v2/queues/nonexistent/messages"),
        (Method::GET, "/v2/queues/nonexistent/messages/deadbeaf"),
        (Method::POST, "/v2/queues/nonexistent/claims"),
        (Method::GET, "/v2/queues/nonexistent/claims/0ad"),
        (Method::GET, "/v2/health"),
        (Method::GET, "/v2/no-such-resource"),
    ] {
        let r = s
            .http
            .request(method.clone(), s.url(path))
            .header("Client-ID", CLIENT)
            .header("Accept", "application/xml")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 406, "{method} {path}");
    }
    let r = s.req(Method::GET, "/v2/health").send().await.unwrap();
    assert_eq!(
        r.status().as_u16(),
        404,
        "JSON accepted: the route does not exist"
    );
}
