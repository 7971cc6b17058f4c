//! Transport-neutral validation: names, Client-IDs, JSON documents, reserved metadata keys.

use serde_json::{Map, Value};

use super::limits::{ClientIdMode, Limits};
use crate::error::{Error, Result};
use crate::model::Metadata;

pub const MAX_NAME_LEN: usize = 64;
pub const MAX_PROJECT_LEN: usize = 256;
pub const MIN_MESSAGE_TTL: i64 = 60;
pub const MIN_CLAIM_TTL: i64 = 60;
pub const MIN_CLAIM_GRACE: i64 = 60;

/// Queue (and topic) names: `^[a-zA-Z0-9_\-.]+$`, 1 to 64 characters.
pub fn queue_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(
            "Invalid queue identification",
            "The format of the submitted queue name or project id is not valid.",
        ))
    }
}

/// The project id must be present, non-empty and at most 256 characters.
pub fn project_id(project: Option<&str>) -> Result<&str> {
    match project {
        None => Err(Error::bad_request(
            "Project-Id Missing",
            "The header X-PROJECT-ID was missing",
        )),
        Some("") => Err(Error::bad_request(
            "Empty project header not allowed",
            "X-PROJECT-ID cannot be an empty string. Specify the right header X-PROJECT-ID and retry.",
        )),
        Some(p) if p.chars().count() > MAX_PROJECT_LEN => Err(Error::bad_request(
            "Invalid queue identification",
            "The format of the submitted queue name or project id is not valid.",
        )),
        Some(p) => Ok(p),
    }
}

/// Parses a UUID the way Python's `uuid.UUID(str)` does: an optional `urn:`/`uuid:` prefix,
/// optional braces, hyphens anywhere, then exactly 32 hex digits. Returns the canonical
/// lowercase hyphenated form.
pub fn parse_python_uuid(raw: &str) -> Option<String> {
    let s = raw.replace("urn:", "").replace("uuid:", "");
    let s = s.trim_matches(|c| c == '{' || c == '}').replace('-', "");
    if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    uuid::Uuid::parse_str(&s)
        .ok()
        .map(|u| u.hyphenated().to_string())
}

/// Validates a `Client-ID` header and returns the form used for comparisons (echo).
pub fn client_id(raw: Option<&str>, limits: &Limits) -> Result<String> {
    let Some(raw) = raw else {
        return Err(Error::bad_request(
            "Missing header value",
            "The \"Client-Id\" header is required.",
        ));
    };
    match limits.client_id_uuid_safe {
        ClientIdMode::Strict => parse_python_uuid(raw)
            .ok_or_else(|| Error::bad_request("Wrong UUID value", "Malformed hexadecimal UUID.")),
        ClientIdMode::Off => {
            let n = raw.chars().count();
            if n < limits.min_length_client_id || n > limits.max_length_client_id {
                let msg = format!(
                    "Length of client id must be at least {} and no greater than {}.",
                    limits.min_length_client_id, limits.max_length_client_id
                );
                Err(Error::BadRequest {
                    title: msg.clone().into(),
                    description: msg,
                })
            } else {
                Ok(raw.to_string())
            }
        }
    }
}

/// Deepest nesting of arrays and objects accepted in a request document. serde_json refuses to
/// build a `Value` deeper than this; message bodies, which are kept as raw text, are held to the
/// same bound so that anything stored can always be parsed again.
pub const MAX_JSON_DEPTH: usize = 127;

/// What one pass over a JSON text found.
#[derive(Debug, Default, PartialEq, Eq)]
struct Scan {
    /// Arrays and objects nest deeper than the limit.
    too_deep: bool,
    /// An integer literal lies outside the signed 64-bit range.
    oversized_integer: bool,
    /// A number with a fraction or exponent is too large for a 64-bit float (e.g. `1e400`).
    /// Kept as raw text it would be stored, then fail to decode wherever a body is parsed.
    oversized_float: bool,
    /// A string holds a `\uD800`-`\uDFFF` escape that is not half of a surrogate pair.
    /// serde_json refuses it when it decodes the string, but not when it keeps the text
    /// (`RawValue`, as message bodies are), which would store text no strict parser reads back.
    lone_surrogate: bool,
}

/// The UTF-16 unit of a `\uXXXX` escape starting at `text[at]` (the backslash).
fn unicode_escape(text: &[u8], at: usize) -> Option<u16> {
    if text.get(at + 1) != Some(&b'u') {
        return None;
    }
    let hex = text.get(at + 2..at + 6)?;
    if !hex.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
}

/// One linear pass over the text, stopping at the first nesting or integer problem.
fn scan(text: &[u8], max_depth: usize) -> Scan {
    let mut out = Scan::default();
    let mut depth = 0usize;
    let mut i = 0;
    let n = text.len();
    while i < n {
        match text[i] {
            b'"' => {
                i += 1;
                // A high surrogate escape waiting for its low half.
                let mut high = false;
                while i < n {
                    match text[i] {
                        b'\\' => match unicode_escape(text, i) {
                            Some(0xD800..=0xDBFF) => {
                                out.lone_surrogate |= high;
                                high = true;
                                i += 6;
                            }
                            Some(0xDC00..=0xDFFF) => {
                                out.lone_surrogate |= !high;
                                high = false;
                                i += 6;
                            }
                            _ => {
                                out.lone_surrogate |= high;
                                high = false;
                                i += 2;
                            }
                        },
                        b'"' => break,
                        _ => {
                            out.lone_surrogate |= high;
                            high = false;
                            i += 1;
                        }
                    }
                }
                out.lone_surrogate |= high;
                i += 1;
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    out.too_deep = true;
                    return out;
                }
                i += 1;
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                let mut integer = true;
                while i < n {
                    match text[i] {
                        b'0'..=b'9' | b'-' | b'+' => i += 1,
                        b'.' | b'e' | b'E' => {
                            integer = false;
                            i += 1;
                        }
                        _ => break,
                    }
                }
                let tok = std::str::from_utf8(&text[start..i]).unwrap_or("");
                if integer && tok.parse::<i64>().is_err() {
                    out.oversized_integer = true;
                    return out;
                }
                if !integer && tok.parse::<f64>().is_ok_and(f64::is_infinite) {
                    out.oversized_float = true;
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// True if the JSON text contains an integer literal outside the signed 64-bit range.
pub fn has_oversized_integer(text: &[u8]) -> bool {
    scan(text, usize::MAX).oversized_integer
}

/// True if the JSON text nests arrays and objects more than `max` levels deep.
pub fn nests_deeper_than(text: &[u8], max: usize) -> bool {
    scan(text, max).too_deep
}

/// Checks a JSON document's text for problems serde would not report the way Zaqar does.
pub fn json_preflight(text: &[u8]) -> Result<()> {
    if text.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Error::body("Request body can not be empty"));
    }
    let found = scan(text, MAX_JSON_DEPTH);
    if found.too_deep {
        return Err(Error::body("JSON nesting is too deep."));
    }
    if found.oversized_integer {
        return Err(Error::body("JSON contains integer that is too large."));
    }
    if found.oversized_float {
        return Err(Error::body("JSON contains a number that is too large."));
    }
    if found.lone_surrogate {
        return Err(Error::body("Request body could not be parsed."));
    }
    Ok(())
}

/// Parses a JSON document that must be an object or an array.
pub fn parse_document(text: &[u8]) -> Result<Value> {
    json_preflight(text)?;
    let v: Value = serde_json::from_slice(text)
        .map_err(|_| Error::body("Request body could not be parsed."))?;
    match v {
        Value::Object(_) | Value::Array(_) => Ok(v),
        _ => Err(Error::body("Document type not supported.")),
    }
}

/// Parses a JSON document that must be an object.
pub fn parse_object(text: &[u8]) -> Result<Map<String, Value>> {
    match parse_document(text)? {
        Value::Object(m) => Ok(m),
        _ => Err(Error::body("Document type not supported.")),
    }
}

/// An integer field (booleans and floats are not integers).
pub fn int_field(v: &Value, name: &str) -> Result<i64> {
    v.as_i64()
        .ok_or_else(|| Error::body(format!("The value of the \"{name}\" field must be a int.")))
}

fn is_falsy(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// The reserved keys always displayed on queues, with their defaults (spec §1.2).
pub const DISPLAYED_RESERVED: [&str; 7] = [
    "_max_messages_post_size",
    "_default_message_ttl",
    "_default_message_delay",
    "_dead_letter_queue",
    "_dead_letter_queue_messages_ttl",
    "_max_claim_count",
    "_enable_encrypt_messages",
];

fn reserved_default(key: &str, limits: &Limits) -> Value {
    match key {
        "_max_messages_post_size" => Value::from(limits.max_messages_post_size as u64),
        "_default_message_ttl" => Value::from(limits.default_message_ttl),
        "_default_message_delay" => Value::from(limits.default_message_delay),
        "_enable_encrypt_messages" => Value::Bool(false),
        _ => Value::Null,
    }
}

/// True for keys a `replace`/`remove` may target even when not stored.
pub fn is_displayed_reserved(key: &str) -> bool {
    DISPLAYED_RESERVED.contains(&key)
}

/// Metadata as shown to clients: the seven reserved keys are always present, and any that is
/// missing or falsy shows its default.
pub fn display_metadata(stored: &Metadata, limits: &Limits) -> Metadata {
    let mut out = stored.clone();
    for key in DISPLAYED_RESERVED {
        if out.get(key).is_none_or(is_falsy) {
            out.insert(key.to_string(), reserved_default(key, limits));
        }
    }
    out
}

fn int_in(meta: &Metadata, key: &str, min: i64, max: i64, range_msg: &str) -> Result<()> {
    match meta.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(v) => {
            let n = v
                .as_i64()
                .ok_or_else(|| Error::invalid(format!("{key} must be integer.")))?;
            if n < min || n > max {
                Err(Error::invalid(range_msg.to_string()))
            } else {
                Ok(())
            }
        }
    }
}

/// Validates the reserved (`_`-prefixed) keys of queue metadata (spec §1.2). Values of the
/// wrong type are rejected whatever their truthiness.
pub fn queue_metadata(meta: &Metadata, limits: &Limits) -> Result<()> {
    int_in(
        meta,
        "_default_message_ttl",
        MIN_MESSAGE_TTL,
        limits.max_message_ttl,
        &format!(
            "_default_message_ttl can not exceed {} seconds, and must be at least {} seconds long.",
            limits.max_message_ttl, MIN_MESSAGE_TTL
        ),
    )?;
    int_in(
        meta,
        "_max_messages_post_size",
        1,
        limits.max_messages_post_size as i64,
        &format!(
            "_max_messages_post_size can not exceed {}, and must be at least greater than 0.",
            limits.max_messages_post_size
        ),
    )?;
    int_in(
        meta,
        "_default_message_delay",
        0,
        limits.max_message_delay,
        &format!(
            "The TTL can not exceed {} seconds, and must be at least 0 seconds long.",
            limits.max_message_delay
        ),
    )?;
    int_in(
        meta,
        "_dead_letter_queue_messages_ttl",
        MIN_MESSAGE_TTL,
        limits.max_message_ttl,
        &format!(
            "The TTL for a message may not exceed {} seconds, and must be at least {} seconds long.",
            limits.max_message_ttl, MIN_MESSAGE_TTL
        ),
    )?;
    int_in(
        meta,
        "_max_claim_count",
        0,
        i64::MAX,
        "_max_claim_count must not be negative.",
    )?;
    match meta.get("_dead_letter_queue") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => queue_name(s)
            .map_err(|_| Error::invalid("_dead_letter_queue must be a valid queue name."))?,
        Some(_) => return Err(Error::invalid("_dead_letter_queue must be a string.")),
    }
    match meta.get("_enable_encrypt_messages") {
        None | Some(Value::Null) | Some(Value::Bool(_)) => {}
        Some(_) => return Err(Error::invalid("_enable_encrypt_messages must be boolean.")),
    }
    match meta.get("_flavor") {
        None | Some(Value::Null) | Some(Value::String(_)) => {}
        Some(_) => return Err(Error::invalid("_flavor must be a string.")),
    }
    if let Some(policy) = meta.get("_retry_policy") {
        retry_policy(policy)?;
    }
    Ok(())
}

/// Validates a webhook retry policy (spec §6.3).
pub fn retry_policy(policy: &Value) -> Result<()> {
    let Value::Object(p) = policy else {
        return Err(Error::invalid("_retry_policy must be a dict."));
    };
    for key in [
        "retries_with_no_delay",
        "minimum_delay_retries",
        "minimum_delay",
        "maximum_delay",
        "maximum_delay_retries",
    ] {
        if let Some(v) = p.get(key) {
            if v.as_i64().filter(|n| *n >= 0).is_none() {
                return Err(Error::invalid(format!(
                    "{key} must be a non-negative integer."
                )));
            }
        }
    }
    if let Some(v) = p.get("retry_backoff_function") {
        match v.as_str() {
            Some("linear" | "arithmetic" | "geometric" | "exponential") => {}
            _ => return Err(Error::invalid(
                "retry_backoff_function must be one of linear, arithmetic, geometric, exponential.",
            )),
        }
    }
    if let Some(v) = p.get("ignore_subscription_override") {
        if !v.is_boolean() {
            return Err(Error::invalid(
                "ignore_subscription_override must be a boolean.",
            ));
        }
    }
    let min = p.get("minimum_delay").and_then(Value::as_i64).unwrap_or(5);
    let max = p.get("maximum_delay").and_then(Value::as_i64).unwrap_or(30);
    if max < min || max - min < 10 {
        return Err(Error::invalid(
            "maximum_delay must be at least 10 seconds greater than minimum_delay.",
        ));
    }
    Ok(())
}

/// Checks a page-size parameter: `1 <= limit <= max`.
pub fn limit(value: Option<i64>, default: i64, max: i64) -> Result<usize> {
    let v = value.unwrap_or(default);
    if v < 1 || v > max {
        Err(Error::invalid(format!(
            "Limit must be at least 1 and may not be greater than {max}."
        )))
    } else {
        Ok(v as usize)
    }
}

/// oslo.config's boolean spellings.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "t" | "y" => Some(true),
        "false" | "0" | "no" | "off" | "f" | "n" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits() -> Limits {
        Limits::default()
    }

    #[test]
    fn queue_names() {
        assert!(queue_name("a-b_c.d9").is_ok());
        assert!(queue_name(&"x".repeat(64)).is_ok());
        assert!(queue_name(&"x".repeat(65)).is_err());
        assert!(queue_name("").is_err());
        assert!(queue_name("a b").is_err());
        assert!(queue_name("ü").is_err());
    }

    #[test]
    fn python_uuid_forms_are_accepted_and_normalised() {
        let canon = "3381af92-2b9e-11e3-b191-71861300734c";
        for form in [
            canon,
            "3381AF922B9E11E3B19171861300734C",
            "{3381af92-2b9e-11e3-b191-71861300734c}",
            "urn:uuid:3381af92-2b9e-11e3-b191-71861300734c",
            "3381af92-2b9e11e3-b19171861300734c",
        ] {
            assert_eq!(parse_python_uuid(form).as_deref(), Some(canon), "{form}");
        }
        for bad in [
            "",
            "not-a-uuid",
            "3381af92-2b9e-11e3-b191-71861300734",
            "g381af922b9e11e3b19171861300734c",
        ] {
            assert_eq!(parse_python_uuid(bad), None, "{bad}");
        }
    }

    #[test]
    fn client_id_modes() {
        let mut l = limits();
        assert!(client_id(None, &l).is_err());
        assert!(client_id(Some("abc"), &l).is_err());
        l.client_id_uuid_safe = ClientIdMode::Off;
        assert!(client_id(Some("abc"), &l).is_err());
        assert_eq!(client_id(Some("0123456789"), &l).unwrap(), "0123456789");
        assert!(client_id(Some(&"x".repeat(37)), &l).is_err());
    }

    #[test]
    fn oversized_integers() {
        assert!(!has_oversized_integer(
            br#"{"a": 9223372036854775807, "b": -9223372036854775808}"#
        ));
        assert!(has_oversized_integer(br#"{"a": 9223372036854775808}"#));
        assert!(has_oversized_integer(br#"[1, -99999999999999999999]"#));
        assert!(!has_oversized_integer(
            br#"{"a": 1e300, "b": 1.5, "c": "99999999999999999999"}"#
        ));
        assert!(!has_oversized_integer(br#"{"a\"": "x\\", "n": 12}"#));
    }

    #[test]
    fn nesting_depth() {
        let nested = |d: usize| format!("{}{}", "[".repeat(d), "]".repeat(d));
        assert!(!nests_deeper_than(nested(127).as_bytes(), 127));
        assert!(nests_deeper_than(nested(128).as_bytes(), 127));
        assert!(!nests_deeper_than(br#"[{"a": "[[[[\"[[["}]"#, 2));
        assert!(nests_deeper_than(br#"{"a": {"b": [1]}}"#, 2));
        assert!(parse_document(nested(127).as_bytes()).is_ok());
        assert!(matches!(
            parse_document(nested(100_000).as_bytes()),
            Err(Error::InvalidBody(_))
        ));
    }

    #[test]
    fn documents() {
        assert!(matches!(parse_document(b""), Err(Error::InvalidBody(_))));
        assert!(matches!(parse_document(b"{"), Err(Error::InvalidBody(_))));
        assert!(matches!(parse_document(b"3"), Err(Error::InvalidBody(_))));
        assert!(parse_document(b"[]").is_ok());
        assert!(parse_object(b"[]").is_err());
    }

    #[test]
    fn display_rule_fills_missing_and_falsy_reserved_keys() {
        let stored = json!({"x": 1, "_default_message_delay": 0, "_max_claim_count": 0, "_default_message_ttl": 120})
            .as_object()
            .cloned()
            .unwrap();
        let d = display_metadata(&stored, &limits());
        assert_eq!(d["x"], 1);
        assert_eq!(d["_default_message_ttl"], 120);
        assert_eq!(d["_default_message_delay"], 0);
        assert_eq!(d["_max_claim_count"], Value::Null);
        assert_eq!(d["_max_messages_post_size"], 262144);
        assert_eq!(d["_enable_encrypt_messages"], false);
        assert_eq!(d["_dead_letter_queue"], Value::Null);
        assert!(!d.contains_key("_retry_policy"));
    }

    #[test]
    fn reserved_key_rules() {
        let l = limits();
        let check = |v: Value| queue_metadata(v.as_object().unwrap(), &l);
        assert!(check(json!({"_default_message_ttl": 60})).is_ok());
        assert!(check(json!({"_default_message_ttl": 59})).is_err());
        assert!(check(json!({"_default_message_ttl": 0})).is_err());
        assert!(check(json!({"_default_message_ttl": "60"})).is_err());
        assert!(check(json!({"_default_message_ttl": false})).is_err());
        assert!(check(json!({"_max_messages_post_size": 0})).is_err());
        assert!(check(json!({"_max_messages_post_size": 262144})).is_ok());
        assert!(check(json!({"_max_messages_post_size": 262145})).is_err());
        assert!(check(json!({"_default_message_delay": 900})).is_ok());
        assert!(check(json!({"_default_message_delay": 901})).is_err());
        assert!(check(json!({"_enable_encrypt_messages": "yes"})).is_err());
        assert!(check(json!({"_dead_letter_queue": 3})).is_err());
        assert!(check(json!({"_max_claim_count": 3, "_dead_letter_queue": "dlq"})).is_ok());
        assert!(
            check(json!({"_retry_policy": {"minimum_delay": 5, "maximum_delay": 10}})).is_err()
        );
        assert!(check(json!({"_retry_policy": {"retry_backoff_function": "cubic"}})).is_err());
        assert!(check(json!({"_retry_policy": {}})).is_ok());
        assert!(check(json!({"anything": [1, 2]})).is_ok());
    }

    #[test]
    fn lone_surrogate_escapes_are_refused() {
        // Found by fuzzing (fuzz/regressions/message_post): message bodies are kept as raw
        // text, which serde_json does not check for unpaired surrogates.
        for bad in [
            r#"{"a": "\ud800"}"#,
            r#"{"a": "\udfff\ud800"}"#,
            r#"{"a": "x\uDC00"}"#,
            r#"{"a": "\ud800x"}"#,
            r#"{"a": "\ud800\n"}"#,
            r#"{"a": "\ud800\ud800\udc00"}"#,
        ] {
            let e = json_preflight(bad.as_bytes()).unwrap_err();
            assert_eq!(e.status(), 400, "{bad}");
        }
        for good in [
            r#"{"a": "\ud83d\ude00", "b": "\u00e9\\ud800"}"#,
            r#"{"a": "ud800", "\ud800\udc00": 1}"#,
            r#"["\uD83D\uDE00"]"#,
        ] {
            assert!(json_preflight(good.as_bytes()).is_ok(), "{good}");
        }
    }

    #[test]
    fn floats_beyond_f64_are_refused() {
        // Found by fuzzing (fuzz/regressions/message_post): serde_json keeps `1e400` as raw
        // text but cannot decode it, so the WebSocket transport showed such a body as null.
        for bad in [r#"{"a": 1e400}"#, r#"[-1.5E+309]"#, r#"[1000.0e306]"#] {
            let e = json_preflight(bad.as_bytes()).unwrap_err();
            assert_eq!(e.status(), 400, "{bad}");
        }
        for good in [
            r#"{"a": 1e-400}"#,
            r#"[1.7976931348623157e308]"#,
            r#"["1e400"]"#,
        ] {
            assert!(json_preflight(good.as_bytes()).is_ok(), "{good}");
        }
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(limit(None, 10, 20).unwrap(), 10);
        assert!(limit(Some(0), 10, 20).is_err());
        assert!(limit(Some(21), 10, 20).is_err());
        assert_eq!(limit(Some(20), 10, 20).unwrap(), 20);
    }
}
