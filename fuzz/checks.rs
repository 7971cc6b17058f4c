//! What every fuzz target checks, shared by the cargo-fuzz targets (`fuzz/fuzz_targets/`, on
//! nightly) and the stable, generator-driven tests (`tests/fuzz_inputs.rs`), which include this
//! file with `#[path]`. Each function takes arbitrary bytes and panics only on a real defect:
//! a panic inside the code under test, or a broken property (an error that is not a client
//! error, a result that breaks a documented rule, a round trip that does not come back).

#![allow(dead_code)] // Each cargo-fuzz target uses one function.

use std::sync::OnceLock;

use serde_json::{json, Map, Value};
use zaqar_api::http::query::{href, Query};
use zaqar_api::ws::protocol::{self, Format};
use zaqar_core::clock::SystemClock;
use zaqar_core::error::Error;
use zaqar_core::service::{patch, validate, Service};
use zaqar_core::signing;
use zaqar_core::store::DataStore;
use zaqar_server::config::{Config, Origin, RawConfig};

/// A client error: what malformed input must produce (never a 5xx, never a panic).
fn assert_client_error(e: &Error, input: &[u8]) {
    let status = e.status();
    assert!(
        (400..500).contains(&status),
        "status {status} ({e:?}) for input {:?}",
        String::from_utf8_lossy(input)
    );
}

/// A service over an embedded store in a temporary directory, built once per process (only
/// `parse_new_messages` is called on it: nothing is stored).
fn service() -> &'static Service {
    struct Held {
        service: Service,
        _runtime: tokio::runtime::Runtime,
        _dir: tempfile::TempDir,
    }
    static HELD: OnceLock<Held> = OnceLock::new();
    &HELD
        .get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a Tokio runtime");
            let dir = tempfile::tempdir().expect("a temporary directory");
            let cfg = zaqar_server::config::EmbeddedStoreConfig {
                path: dir.path().to_path_buf(),
                shards: 1,
                cache_size_mb: 4,
                gc_interval_secs: 3600,
            };
            let store: std::sync::Arc<dyn DataStore> = {
                let _guard = runtime.enter();
                zaqar_storage::embedded::EmbeddedStore::open(&cfg, std::sync::Arc::new(SystemClock))
                    .expect("the embedded store opens")
            };
            let service = Service::new(
                Config::defaults().limits,
                store,
                std::sync::Arc::new(SystemClock),
            );
            Held {
                service,
                _runtime: runtime,
                _dir: dir,
            }
        })
        .service
}

/// Queue settings a message POST is validated against, picked by the input's length so that
/// each input is checked against one of them.
fn queue_settings(selector: usize) -> Map<String, Value> {
    let v = match selector % 3 {
        0 => json!({}),
        1 => json!({"_default_message_ttl": 60, "_default_message_delay": 5}),
        _ => json!({"_max_messages_post_size": 1024, "_default_message_ttl": 0}),
    };
    match v {
        Value::Object(m) => m,
        _ => unreachable!("an object literal"),
    }
}

/// The body of `POST /v2/queues/{q}/messages`: the preflight scan, then the service's parse
/// and validation. Accepted messages keep the rules: TTL within the limits, delay within the
/// TTL, a body that is valid JSON.
pub(super) fn message_post(data: &[u8]) {
    let service = service();
    let limits = service.limits();
    let meta = queue_settings(data.len());
    match service.parse_new_messages("fuzz", data, &meta) {
        Ok(messages) => {
            assert!(!messages.is_empty(), "an empty batch was accepted");
            for m in &messages {
                assert!(
                    m.ttl >= 60 && m.ttl <= limits.max_message_ttl,
                    "ttl {}",
                    m.ttl
                );
                assert!(m.delay >= 0 && m.delay <= m.ttl, "delay {}", m.delay);
                serde_json::from_str::<Value>(m.body.get()).expect("a stored body is JSON");
            }
        }
        Err(e) => assert_client_error(&e, data),
    }
}

fn sample_metadata() -> Map<String, Value> {
    match json!({"color": "red", "nested": {"a": [1, 2, 3]}, "_default_message_ttl": 3600}) {
        Value::Object(m) => m,
        _ => unreachable!("an object literal"),
    }
}

/// The body of `PATCH /v2/queues/{q}` (`application/openstack-messaging-v2.0-json-patch`):
/// parse the document, parse the operations, apply them to sample metadata, validate the
/// result, render it.
pub(super) fn json_patch(data: &[u8]) {
    let limits = Config::defaults().limits;
    let doc = match validate::parse_document(data) {
        Ok(d) => d,
        Err(e) => return assert_client_error(&e, data),
    };
    let ops = match patch::parse(doc) {
        Ok(ops) => ops,
        Err(e) => return assert_client_error(&e, data),
    };
    let mut meta = sample_metadata();
    if let Err(e) = patch::apply(&mut meta, &ops) {
        return assert_client_error(&e, data);
    }
    if let Err(e) = validate::queue_metadata(&meta, &limits) {
        return assert_client_error(&e, data);
    }
    let shown = validate::display_metadata(&meta, &limits);
    serde_json::to_vec(&shown).expect("metadata serialises");
}

/// Parameter names the handlers read.
const PARAMS: [&str; 16] = [
    "limit",
    "marker",
    "echo",
    "include_claimed",
    "include_delayed",
    "detailed",
    "wait",
    "ids",
    "pop",
    "claim_id",
    "name",
    "with_count",
    "paths",
    "methods",
    "expires",
    "signature",
];

/// A request's query string as the handlers read it: every accessor on every parameter
/// name, the limit rule, and the round trip through `href` (which the `next` links use).
pub(super) fn query_string(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    let q = Query::parse(Some(&raw));
    for name in PARAMS {
        let _ = q.get(name);
        let _ = q.string(name);
        let _ = q.list(name);
        match q.int(name) {
            Ok(value) => {
                if let Err(e) = validate::limit(value, 10, 20) {
                    assert_client_error(&e, data);
                }
            }
            Err(e) => assert_client_error(&e, data),
        }
        if let Err(e) = q.bool(name) {
            assert_client_error(&e, data);
        }
        if let Err(e) = q.flag(name) {
            assert_client_error(&e, data);
        }
    }
    let pairs: Vec<(String, String)> = q
        .pairs()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let params: Vec<(&str, String)> = pairs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let link = href("/v2/queues/q/messages", &params);
    let (_, query) = link.split_once('?').expect("href always has a query");
    let back: Vec<(String, String)> = Query::parse(Some(query))
        .pairs()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(back, pairs, "href round trip of {raw:?}");
}

/// Pre-signed URL verification, the way `Service::verify_signed` composes it: the input is
/// split on newlines into key, paths (comma-separated), methods, project, expires, signature
/// and request path. Properties: no panic; a signature made with `sign` verifies (in either
/// case of hex); any other signature does not; a formatted expiry parses back to itself.
pub(super) fn signed_url(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut fields = text.split('\n');
    let key = fields.next().unwrap_or("").as_bytes().to_vec();
    let paths: Vec<String> = fields
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::to_string)
        .collect();
    let methods: Vec<String> = fields
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::to_string)
        .collect();
    let project = fields.next();
    let expires_text = fields.next().unwrap_or("");
    let signature = fields.next().unwrap_or("");
    let request_path = fields.next().unwrap_or("/v2/queues/q/messages");
    for p in &paths {
        let _ = signing::path_covers(p, request_path);
    }
    let Some(expires) = signing::parse_expires(expires_text) else {
        return;
    };
    let formatted = signing::format_expires(expires);
    let _ = signing::millis(expires);
    if let Some(again) = signing::parse_expires(&formatted) {
        assert_eq!(
            signing::format_expires(again),
            formatted,
            "expires {expires_text:?}"
        );
    }
    let good = signing::sign(&key, &paths, &methods, project, &formatted);
    assert!(signing::verify(
        &key, &paths, &methods, project, &formatted, &good
    ));
    assert!(signing::verify(
        &key,
        &paths,
        &methods,
        project,
        &formatted,
        &good.to_uppercase()
    ));
    let verified = signing::verify(&key, &paths, &methods, project, &formatted, signature);
    if !signature.trim().eq_ignore_ascii_case(&good) {
        assert!(!verified, "signature {signature:?} verified");
    }
}

/// One WebSocket frame, as a text (JSON) and as a binary (MessagePack) frame, through what
/// the connection does before an action runs: the integer check, decoding, the object check,
/// the schema of the action, the echoed request, and encoding the response, which must
/// decode again.
pub(super) fn ws_frame(data: &[u8]) {
    for format in [Format::Json, Format::MsgPack] {
        // Text frames reach the protocol only as valid UTF-8 (the WebSocket layer checks).
        if format == Format::Json
            && (std::str::from_utf8(data).is_err() || protocol::json_has_oversized_integer(data))
        {
            continue;
        }
        let payload = match protocol::decode(format, data) {
            Ok(Value::Object(p)) => p,
            Ok(_) => continue,
            Err(text) => {
                assert!(text.starts_with("Can't decode"), "{text}");
                continue;
            }
        };
        let (status, body) = match protocol::validate(&payload) {
            Ok(req) => {
                // The accessors the actions use.
                let _ = (req.action(), req.header("Client-ID"), req.str("queue_name"));
                let _ = (
                    req.int("limit"),
                    req.bool("echo"),
                    req.strings("message_ids"),
                );
                (200, json!({}))
            }
            Err(text) => protocol::protocol_error(text),
        };
        let response = protocol::response(protocol::echo(Some(payload)), status, body);
        let bytes = protocol::encode(format, &response);
        assert!(!bytes.is_empty(), "an empty response frame");
        protocol::decode(format, &bytes).expect("a response decodes");
    }
}

/// A `zaqar.conf`: INI parsing, then the typed configuration. Invalid input is an error
/// naming what is wrong, never a panic.
pub(super) fn config_ini(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut raw = RawConfig::default();
    if raw.load_str(&text, Origin::Cli).is_err() {
        return;
    }
    for strict in [false, true] {
        match Config::from_raw(&raw, strict) {
            Ok((config, _warnings)) => {
                let _ = format!("{config:?}");
            }
            Err(e) => assert!(!e.0.is_empty(), "an empty configuration error"),
        }
    }
}
