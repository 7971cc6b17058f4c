//! The JSON-patch subset of queue metadata updates (spec §3.3.4).

use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::Metadata;

use super::validate::is_displayed_reserved;

#[derive(Debug, Clone, PartialEq)]
pub enum PatchOp {
    Add(String, Value),
    Replace(String, Value),
    Remove(String),
}

const OPS: &str = "add, remove, replace";

fn validate_pointer(pointer: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::invalid(format!("Pointer `{pointer}` {why}")));
    if !pointer.starts_with('/') {
        return bad("does not start with \"/\".");
    }
    // Adjacent slashes, possibly with only whitespace between them.
    let rest = &pointer[1..];
    let mut last_slash: Option<usize> = None;
    for (i, c) in rest.char_indices() {
        if c == '/' {
            if let Some(j) = last_slash {
                if rest[j + 1..i].trim().is_empty() {
                    return bad("contains adjacent \"/\".");
                }
            }
            last_slash = Some(i);
        }
    }
    if rest.trim_start().starts_with('/') {
        return bad("contains adjacent \"/\".");
    }
    if pointer.len() > 1 && pointer.ends_with('/') {
        return bad("ends with \"/\".");
    }
    let bytes = pointer.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'~' && !matches!(bytes.get(i + 1), Some(b'0') | Some(b'1')) {
            return bad("contains \"~\" not part of a recognized escape sequence.");
        }
    }
    Ok(())
}

fn decode_pointer(pointer: &str) -> Result<Vec<String>> {
    validate_pointer(pointer)?;
    Ok(pointer
        .trim_start_matches('/')
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~").trim().to_string())
        .collect())
}

/// Parses and validates the operations of a PATCH body.
pub fn parse(doc: Value) -> Result<Vec<PatchOp>> {
    let Value::Array(items) = doc else {
        return Err(Error::invalid(
            "Request body must be a JSON array of operation objects.",
        ));
    };
    let mut ops = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(mut obj) = item else {
            return Err(Error::invalid("Operations must be JSON objects."));
        };
        let op = match obj.get("op") {
            None => {
                return Err(Error::invalid(format!(
                    "Unable to find `op` in JSON Schema change. It must be one of the following: {OPS}."
                )))
            }
            Some(Value::String(s)) if matches!(s.as_str(), "add" | "remove" | "replace") => {
                s.clone()
            }
            Some(other) => {
                let shown = other.as_str().map(str::to_string).unwrap_or(other.to_string());
                return Err(Error::invalid(format!(
                    "Invalid operation: `{shown}`. It must be one of the following: {OPS}."
                )));
            }
        };
        let path = match obj.get("path") {
            None => {
                return Err(Error::invalid(
                    "Unable to find 'path' in JSON Schema change",
                ))
            }
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(Error::invalid("The 'path' of a change must be a string.")),
        };
        let tokens = decode_pointer(&path)?;
        if tokens.len() != 2 {
            return Err(Error::invalid(format!(
                "Invalid JSON pointer for this resource: '/{}', e.g /metadata/key",
                tokens.join("/")
            )));
        }
        if !tokens[0].eq_ignore_ascii_case("metadata") {
            return Err(Error::invalid(
                "The root of path must be metadata, e.g /metadata/key.",
            ));
        }
        let key = tokens[1].clone();
        let op = match op.as_str() {
            "remove" => PatchOp::Remove(key),
            kind => {
                let value = obj.remove("value").ok_or_else(|| {
                    Error::invalid(format!(
                        "Operation \"{kind}\" requires a member named \"value\"."
                    ))
                })?;
                if kind == "add" {
                    PatchOp::Add(key, value)
                } else {
                    PatchOp::Replace(key, value)
                }
            }
        };
        ops.push(op);
    }
    Ok(ops)
}

/// Applies the operations in order to the stored metadata.
pub fn apply(meta: &mut Metadata, ops: &[PatchOp]) -> Result<()> {
    for op in ops {
        match op {
            PatchOp::Add(k, v) => {
                meta.insert(k.clone(), v.clone());
            }
            PatchOp::Replace(k, v) => {
                if !meta.contains_key(k) && !is_displayed_reserved(k) {
                    return Err(Error::Conflict(format!(
                        "Can't replace non-existent object {k}."
                    )));
                }
                meta.insert(k.clone(), v.clone());
            }
            PatchOp::Remove(k) => {
                if meta.remove(k).is_none() && !is_displayed_reserved(k) {
                    return Err(Error::Conflict(format!(
                        "Can't remove non-existent object {k}."
                    )));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_valid_operations() {
        let ops = parse(json!([
            {"op": "add", "path": "/metadata/a", "value": 1},
            {"op": "replace", "path": "/METADATA/ b ", "value": null},
            {"op": "remove", "path": "/metadata/x~1y~0z"}
        ]))
        .unwrap();
        assert_eq!(
            ops,
            vec![
                PatchOp::Add("a".into(), json!(1)),
                PatchOp::Replace("b".into(), Value::Null),
                PatchOp::Remove("x/y~z".into()),
            ]
        );
    }

    #[test]
    fn rejects_malformed_operations() {
        for bad in [
            json!({"op": "add"}),
            json!([1]),
            json!([{"path": "/metadata/a", "value": 1}]),
            json!([{"op": "move", "path": "/metadata/a"}]),
            json!([{"op": "add", "value": 1}]),
            json!([{"op": "add", "path": "/metadata/a"}]),
            json!([{"op": "add", "path": "metadata/a", "value": 1}]),
            json!([{"op": "add", "path": "/metadata//a", "value": 1}]),
            json!([{"op": "add", "path": "/metadata/a/", "value": 1}]),
            json!([{"op": "add", "path": "/metadata/a~2", "value": 1}]),
            json!([{"op": "add", "path": "/metadata/a/b", "value": 1}]),
            json!([{"op": "add", "path": "/meta/a", "value": 1}]),
            json!([{"op": "remove", "path": "/metadata"}]),
        ] {
            assert!(
                matches!(parse(bad.clone()), Err(Error::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn replace_and_remove_need_existing_or_reserved_keys() {
        let mut m = json!({"a": 1}).as_object().cloned().unwrap();
        apply(&mut m, &[PatchOp::Replace("a".into(), json!(2))]).unwrap();
        assert_eq!(m["a"], 2);
        assert!(matches!(
            apply(&mut m, &[PatchOp::Replace("b".into(), json!(2))]),
            Err(Error::Conflict(_))
        ));
        assert!(matches!(
            apply(&mut m, &[PatchOp::Remove("b".into())]),
            Err(Error::Conflict(_))
        ));
        apply(&mut m, &[PatchOp::Remove("_max_claim_count".into())]).unwrap();
        apply(
            &mut m,
            &[PatchOp::Replace("_default_message_ttl".into(), json!(100))],
        )
        .unwrap();
        assert_eq!(m["_default_message_ttl"], 100);
    }
}
