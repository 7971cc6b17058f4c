//! The WebSocket envelope (spec §4.2): decoding frames (JSON text or MessagePack binary),
//! the request schema of every action, and encoding responses in the request's format.

use std::io::Cursor;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use zaqar_core::service::validate;

/// How a frame is encoded. A response always uses the format of its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Text frame, JSON (UTF-8).
    Json,
    /// Binary frame, MessagePack.
    MsgPack,
}

impl Format {
    fn pack_name(self) -> &'static str {
        match self {
            Format::Json => "text (JSON)",
            Format::MsgPack => "binary (MessagePack)",
        }
    }
}

/// Nesting depth accepted in a MessagePack frame (JSON frames have serde_json's limit of 128).
const MAX_MSGPACK_DEPTH: usize = 128;

/// The status and body of a protocol-level 400.
pub fn protocol_error(text: impl Into<String>) -> (u16, Value) {
    (400, json!({ "error": text.into() }))
}

/// Decodes a frame into a JSON value. `Err` carries the text of Zaqar's 400 response:
/// `Can't decode <format> request. <ExcType>: <detail>`.
pub fn decode(format: Format, data: &[u8]) -> Result<Value, String> {
    let fail = |kind: &str, detail: &dyn std::fmt::Display| {
        format!(
            "Can't decode {} request. {kind}: {detail}",
            format.pack_name()
        )
    };
    match format {
        Format::Json => serde_json::from_slice(data).map_err(|e| fail("JSONDecodeError", &e)),
        Format::MsgPack => {
            let mut de = rmp_serde::Deserializer::new(Cursor::new(data));
            de.set_max_depth(MAX_MSGPACK_DEPTH);
            let v = Value::deserialize(&mut de).map_err(|e| fail("UnpackValueError", &e))?;
            let used = de.position() as usize;
            if used != data.len() {
                return Err(fail(
                    "ExtraData",
                    &format!(
                        "unpack(b) received extra data ({} bytes).",
                        data.len() - used
                    ),
                ));
            }
            Ok(v)
        }
    }
}

/// Encodes a response document.
pub fn encode(format: Format, doc: &Value) -> Vec<u8> {
    match format {
        // Serialising a `Value` cannot fail (its map keys are strings).
        Format::Json => serde_json::to_vec(doc).unwrap_or_default(),
        Format::MsgPack => rmp_serde::to_vec(doc).unwrap_or_default(),
    }
}

/// The `request` object echoed in every response: `{"action", "body", "headers", "api"}`,
/// built from the decoded payload (`None` when the frame could not be decoded into an object).
pub fn echo(payload: Option<Map<String, Value>>) -> Value {
    let Some(mut p) = payload else {
        return json!({"action": null, "body": {}, "headers": {}, "api": "v2"});
    };
    // As the reference builds it: a missing body is `{}`, missing or empty headers are `{}`.
    let headers = match p.remove("headers") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => json!({}),
        Some(Value::String(s)) if s.is_empty() => json!({}),
        Some(Value::Array(a)) if a.is_empty() => json!({}),
        Some(h) => h,
    };
    json!({
        "action": p.remove("action").unwrap_or(Value::Null),
        "body": p.remove("body").unwrap_or_else(|| json!({})),
        "headers": headers,
        "api": "v2",
    })
}

/// Builds a response document.
pub fn response(request: Value, status: u16, body: Value) -> Value {
    json!({"request": request, "headers": {"status": status}, "body": body})
}

// ----- the request schema (the reference's `zaqar/api/v2/request.py`) ------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Str,
    Int,
    Bool,
    Array,
    /// An array of strings (ids).
    Strings,
    Object,
}

impl Ty {
    fn accepts(self, v: &Value) -> bool {
        match self {
            Ty::Str => v.is_string(),
            // JSON-schema draft 4: an integer is a number without a fraction (not a bool,
            // not 1.0), and it must fit the int64 the service works with.
            Ty::Int => v.is_i64(),
            Ty::Bool => v.is_boolean(),
            Ty::Array => v.is_array(),
            Ty::Strings => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            Ty::Object => v.is_object(),
        }
    }
}

/// Which headers an action requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// `Client-ID` and `X-Project-ID`.
    Identity,
    /// `X-Project-ID` and `X-Auth-Token` (`authenticate`).
    Token,
    /// Nothing (`get_home_doc`, `check_node_health`, `ping_node`).
    Nothing,
}

/// What the schema of one action says.
#[derive(Debug)]
pub struct ActionSpec {
    pub name: &'static str,
    pub needs: Needs,
    /// Whether `body` is required (it must be an object whenever present).
    pub body: bool,
    /// Typed body fields.
    pub fields: &'static [(&'static str, Ty)],
    /// Required body fields.
    pub required: &'static [&'static str],
}

const fn spec(
    name: &'static str,
    needs: Needs,
    body: bool,
    fields: &'static [(&'static str, Ty)],
    required: &'static [&'static str],
) -> ActionSpec {
    ActionSpec {
        name,
        needs,
        body,
        fields,
        required,
    }
}

use Needs::*;
use Ty::*;

const Q: (&str, Ty) = ("queue_name", Str);

/// Every action of the v2 WebSocket API, with its schema. Field types follow the reference,
/// plus the type rules of spec §4.2 (`metadata` is an object, `include_delayed` a boolean).
pub static ACTIONS: &[ActionSpec] = &[
    spec("get_home_doc", Nothing, false, &[], &[]),
    spec("check_node_health", Nothing, false, &[], &[]),
    spec("ping_node", Nothing, false, &[], &[]),
    spec("authenticate", Token, false, &[], &[]),
    // Queues
    spec(
        "queue_list",
        Identity,
        false,
        &[("marker", Str), ("limit", Int), ("detailed", Bool)],
        &[],
    ),
    spec(
        "queue_create",
        Identity,
        true,
        &[Q, ("metadata", Object)],
        &["queue_name"],
    ),
    spec("queue_delete", Identity, true, &[Q], &["queue_name"]),
    spec("queue_get", Identity, true, &[Q], &["queue_name"]),
    spec("queue_get_stats", Identity, true, &[Q], &["queue_name"]),
    spec(
        "queue_purge",
        Identity,
        true,
        &[Q, ("resource_types", Array)],
        &["queue_name"],
    ),
    // Messages
    spec(
        "message_list",
        Identity,
        true,
        &[
            Q,
            ("marker", Str),
            ("limit", Int),
            ("echo", Bool),
            ("include_claimed", Bool),
            ("include_delayed", Bool),
            ("wait", Int),
        ],
        &["queue_name"],
    ),
    spec(
        "message_get",
        Identity,
        true,
        &[Q, ("message_id", Str)],
        &["queue_name", "message_id"],
    ),
    spec(
        "message_get_many",
        Identity,
        true,
        &[Q, ("message_ids", Strings)],
        &["queue_name", "message_ids"],
    ),
    spec(
        "message_post",
        Identity,
        true,
        &[Q, ("messages", Array)],
        &["queue_name", "messages"],
    ),
    spec(
        "message_delete",
        Identity,
        true,
        &[Q, ("message_id", Str), ("claim_id", Str)],
        &["queue_name", "message_id"],
    ),
    spec(
        "message_delete_many",
        Identity,
        true,
        &[
            Q,
            ("message_ids", Strings),
            ("claim_ids", Strings),
            ("pop", Int),
        ],
        &["queue_name"],
    ),
    // Claims
    spec(
        "claim_create",
        Identity,
        true,
        &[
            Q,
            ("limit", Int),
            ("ttl", Int),
            ("grace", Int),
            ("wait", Int),
        ],
        &["queue_name"],
    ),
    spec(
        "claim_get",
        Identity,
        true,
        &[Q, ("claim_id", Str)],
        &["queue_name", "claim_id"],
    ),
    spec(
        "claim_update",
        Identity,
        true,
        &[Q, ("claim_id", Str), ("ttl", Int), ("grace", Int)],
        &["queue_name", "claim_id"],
    ),
    spec(
        "claim_delete",
        Identity,
        true,
        &[Q, ("claim_id", Str)],
        &["queue_name", "claim_id"],
    ),
    // Subscriptions
    spec(
        "subscription_list",
        Identity,
        true,
        &[Q, ("marker", Str), ("limit", Int)],
        &["queue_name"],
    ),
    spec(
        "subscription_create",
        Identity,
        true,
        &[Q, ("subscriber", Str), ("ttl", Int), ("options", Object)],
        &["queue_name"],
    ),
    spec(
        "subscription_get",
        Identity,
        true,
        &[Q, ("subscription_id", Str)],
        &["queue_name", "subscription_id"],
    ),
    spec(
        "subscription_delete",
        Identity,
        true,
        &[Q, ("subscription_id", Str)],
        &["queue_name", "subscription_id"],
    ),
    // Pools
    spec(
        "pool_list",
        Identity,
        true,
        &[
            ("pool_name", Str),
            ("limit", Int),
            ("marker", Str),
            ("detailed", Bool),
        ],
        &[],
    ),
    spec(
        "pool_create",
        Identity,
        true,
        &[
            ("pool_name", Str),
            ("weight", Int),
            ("uri", Str),
            ("options", Object),
            ("flavor", Str),
        ],
        &["pool_name"],
    ),
    spec(
        "pool_get",
        Identity,
        true,
        &[("pool_name", Str), ("detailed", Bool)],
        &["pool_name"],
    ),
    spec(
        "pool_get_detail",
        Identity,
        true,
        &[("pool_name", Str)],
        &["pool_name"],
    ),
    spec(
        "pool_update",
        Identity,
        true,
        &[
            ("pool_name", Str),
            ("weight", Int),
            ("uri", Str),
            ("options", Object),
            ("flavor", Str),
        ],
        &["pool_name"],
    ),
    spec(
        "pool_delete",
        Identity,
        true,
        &[("pool_name", Str)],
        &["pool_name"],
    ),
    // Flavors
    spec(
        "flavor_list",
        Identity,
        true,
        &[
            ("flavor_name", Str),
            ("limit", Int),
            ("marker", Str),
            ("detailed", Bool),
        ],
        &[],
    ),
    spec(
        "flavor_create",
        Identity,
        true,
        &[
            ("flavor_name", Str),
            ("pool_name", Str),
            ("pool_list", Array),
            ("capabilities", Object),
        ],
        &["flavor_name"],
    ),
    spec(
        "flavor_get",
        Identity,
        true,
        &[("flavor_name", Str), ("detailed", Bool)],
        &["flavor_name"],
    ),
    spec(
        "flavor_update",
        Identity,
        true,
        &[
            ("flavor_name", Str),
            ("pool_name", Str),
            ("pool_list", Array),
            ("capabilities", Object),
        ],
        &["flavor_name"],
    ),
    spec(
        "flavor_delete",
        Identity,
        true,
        &[("flavor_name", Str)],
        &["flavor_name"],
    ),
    // Per-project limits (this server's extension, as `/v2/quotas`; `quota` is the PUT body)
    spec(
        "quota_list",
        Identity,
        false,
        &[("limit", Int), ("marker", Str)],
        &[],
    ),
    spec(
        "quota_get",
        Identity,
        true,
        &[("project_id", Str)],
        &["project_id"],
    ),
    spec(
        "quota_set",
        Identity,
        true,
        &[("project_id", Str), ("quota", Object)],
        &["project_id", "quota"],
    ),
    spec(
        "quota_delete",
        Identity,
        true,
        &[("project_id", Str)],
        &["project_id"],
    ),
];

/// Header keys whose values must be strings when present.
const KNOWN_HEADERS: [&str; 6] = [
    "User-Agent",
    "Date",
    "Accept",
    "Client-ID",
    "X-Project-ID",
    "X-Auth-Token",
];

/// A request that passed the schema: its action, headers and body (an empty object when the
/// action takes none).
#[derive(Debug)]
pub struct Request<'a> {
    pub spec: &'static ActionSpec,
    pub headers: &'a Map<String, Value>,
    pub body: &'a Map<String, Value>,
}

impl Request<'_> {
    pub fn action(&self) -> &'static str {
        self.spec.name
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(Value::as_str)
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        self.body.get(name).and_then(Value::as_str)
    }

    /// A string field the schema made required.
    pub fn req_str(&self, name: &str) -> &str {
        self.str(name).unwrap_or_default()
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        self.body.get(name).and_then(Value::as_i64)
    }

    pub fn bool(&self, name: &str) -> Option<bool> {
        self.body.get(name).and_then(Value::as_bool)
    }

    /// A list of strings (the schema checked the element type).
    pub fn strings(&self, name: &str) -> Option<Vec<String>> {
        self.body.get(name).and_then(Value::as_array).map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
    }
}

/// The name an action is reported under in `<action> is not a valid action` (Python's
/// `str()` of the value).
fn action_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "None".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(true)) => "True".to_string(),
        Some(Value::Bool(false)) => "False".to_string(),
        Some(other) => other.to_string(),
    }
}

pub const SCHEMA_FAILED: &str = "Schema validation failed.";

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

/// Checks a decoded payload against the schema of its action. `Err` is the text of the 400.
pub fn validate(payload: &Map<String, Value>) -> Result<Request<'_>, String> {
    let action = payload.get("action");
    let spec = action
        .and_then(Value::as_str)
        .and_then(|a| ACTIONS.iter().find(|s| s.name == a))
        .ok_or_else(|| format!("{} is not a valid action", action_text(action)))?;
    let schema_failed = || SCHEMA_FAILED.to_string();
    let headers = match payload.get("headers") {
        Some(Value::Object(h)) => h,
        _ => return Err(schema_failed()),
    };
    for key in KNOWN_HEADERS {
        if headers.get(key).is_some_and(|v| !v.is_string()) {
            return Err(schema_failed());
        }
    }
    let required_headers: &[&str] = match spec.needs {
        Identity => &["Client-ID", "X-Project-ID"],
        Token => &["X-Project-ID", "X-Auth-Token"],
        Nothing => &[],
    };
    if required_headers.iter().any(|h| !headers.contains_key(*h)) {
        return Err(schema_failed());
    }
    let body = match payload.get("body") {
        None if !spec.body => &*EMPTY,
        Some(Value::Object(b)) => b,
        _ => return Err(schema_failed()),
    };
    for (name, ty) in spec.fields {
        if body.get(*name).is_some_and(|v| !ty.accepts(v)) {
            return Err(schema_failed());
        }
    }
    if spec.required.iter().any(|f| !body.contains_key(*f)) {
        return Err(schema_failed());
    }
    Ok(Request {
        spec,
        headers,
        body,
    })
}

/// A JSON text frame with an integer beyond int64 is refused, as over HTTP (§7 item 49),
/// before serde_json would silently turn it into a float.
pub fn json_has_oversized_integer(data: &[u8]) -> bool {
    validate::has_oversized_integer(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    const H: &str = r#"{"Client-ID": "c", "X-Project-ID": "p"}"#;

    fn check(doc: &str) -> Result<&'static str, String> {
        let v: Value = serde_json::from_str(doc).unwrap();
        let m = obj(v);
        validate(&m).map(|r| r.action())
    }

    #[test]
    fn schema_rules() {
        assert_eq!(
            check(&format!(r#"{{"action": "queue_list", "headers": {H}}}"#)),
            Ok("queue_list")
        );
        assert_eq!(
            check(r#"{"action": "queue_glorify", "headers": {}}"#).unwrap_err(),
            "queue_glorify is not a valid action"
        );
        assert_eq!(
            check(r#"{"headers": {}}"#).unwrap_err(),
            "None is not a valid action"
        );
        assert_eq!(
            check(r#"{"action": 5, "headers": {}}"#).unwrap_err(),
            "5 is not a valid action"
        );
        // Missing headers, a missing required header, a header of the wrong type.
        for doc in [
            r#"{"action": "queue_list"}"#.to_string(),
            r#"{"action": "queue_list", "headers": {"Client-ID": "c"}}"#.to_string(),
            r#"{"action": "queue_list", "headers": {"Client-ID": 1, "X-Project-ID": "p"}}"#
                .to_string(),
            // body required, missing; required field missing; wrong types.
            format!(r#"{{"action": "queue_create", "headers": {H}}}"#),
            format!(r#"{{"action": "queue_create", "headers": {H}, "body": {{}}}}"#),
            format!(r#"{{"action": "queue_create", "headers": {H}, "body": []}}"#),
            format!(r#"{{"action": "queue_get", "headers": {H}, "body": {{"queue_name": 1}}}}"#),
            format!(
                r#"{{"action": "claim_create", "headers": {H}, "body": {{"queue_name": "q", "ttl": "60"}}}}"#
            ),
            format!(
                r#"{{"action": "claim_create", "headers": {H}, "body": {{"queue_name": "q", "ttl": 60.0}}}}"#
            ),
            format!(
                r#"{{"action": "message_list", "headers": {H}, "body": {{"queue_name": "q", "echo": "yes"}}}}"#
            ),
            format!(
                r#"{{"action": "queue_create", "headers": {H}, "body": {{"queue_name": "q", "metadata": []}}}}"#
            ),
            format!(
                r#"{{"action": "message_get_many", "headers": {H}, "body": {{"queue_name": "q", "message_ids": ["a", 1]}}}}"#
            ),
        ] {
            assert_eq!(check(&doc).unwrap_err(), SCHEMA_FAILED, "{doc}");
        }
        // Unknown body keys and headers are allowed; actions without body need none.
        assert!(check(
            r#"{"action": "queue_get", "headers": {"Client-ID": "c", "X-Project-ID": "p", "URL-x": 1}, "body": {"queue_name": "q", "extra": 1}}"#
        )
        .is_ok());
        assert!(check(r#"{"action": "ping_node", "headers": {}}"#).is_ok());
        assert_eq!(
            check(r#"{"action": "authenticate", "headers": {"X-Project-ID": "p"}}"#).unwrap_err(),
            SCHEMA_FAILED
        );
    }

    #[test]
    fn decoding_errors_name_the_format() {
        let e = decode(Format::Json, b"foo").unwrap_err();
        assert!(
            e.starts_with("Can't decode text (JSON) request. JSONDecodeError: "),
            "{e}"
        );
        let e = decode(Format::MsgPack, b"123").unwrap_err();
        assert!(
            e.starts_with("Can't decode binary (MessagePack) request. ExtraData: "),
            "{e}"
        );
        let e = decode(Format::MsgPack, &[0xc1]).unwrap_err();
        assert!(
            e.starts_with("Can't decode binary (MessagePack) request."),
            "{e}"
        );
        let packed = rmp_serde::to_vec(&json!({"action": "ping_node", "n": [1, -2, 1.5]})).unwrap();
        assert_eq!(
            decode(Format::MsgPack, &packed).unwrap(),
            json!({"action": "ping_node", "n": [1, -2, 1.5]})
        );
    }

    #[test]
    fn echo_follows_the_reference() {
        assert_eq!(
            echo(None),
            json!({"action": null, "body": {}, "headers": {}, "api": "v2"})
        );
        let p = obj(json!({"action": "x", "headers": null}));
        assert_eq!(
            echo(Some(p)),
            json!({"action": "x", "body": {}, "headers": {}, "api": "v2"})
        );
    }
}
