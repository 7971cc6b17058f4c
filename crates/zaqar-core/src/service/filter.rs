//! Subscription filter policies (`options.filter_policy`, an extension in the spirit of SNS):
//! only messages whose body matches are delivered to the subscriber.
//!
//! A policy is a JSON object. Each key names a field of the (object) message body; nested
//! objects in the policy match nested objects in the body. Each leaf is a list of conditions,
//! any of which may match:
//! - a string, number, boolean or null: equality;
//! - `{"prefix": "abc"}`: a string starting with `abc`;
//! - `{"numeric": [">=", 10, "<", 20]}`: a number within the given bounds (`=`, `<`, `<=`,
//!   `>`, `>=`, one or two comparisons);
//! - `{"exists": true|false}`: the field is present or absent;
//! - `{"anything-but": [values...]}`: present and equal to none of the values.
//!
//! All keys of a policy must match. A body that is not an object matches only an empty policy.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

fn bad(why: impl std::fmt::Display) -> Error {
    Error::invalid(format!("Invalid filter_policy: {why}"))
}

fn validate_condition(c: &Value) -> Result<()> {
    match c {
        Value::Object(o) if o.len() == 1 => {
            let (k, v) = o.iter().next().expect("one entry");
            match (k.as_str(), v) {
                ("prefix", Value::String(_)) => Ok(()),
                ("exists", Value::Bool(_)) => Ok(()),
                ("anything-but", Value::Array(items))
                    if items.iter().all(|i| !i.is_object() && !i.is_array()) =>
                {
                    Ok(())
                }
                ("numeric", Value::Array(items)) => {
                    if items.len() != 2 && items.len() != 4 {
                        return Err(bad("numeric takes one or two comparisons"));
                    }
                    for pair in items.chunks(2) {
                        match (&pair[0], &pair[1]) {
                            (Value::String(op), Value::Number(_))
                                if matches!(op.as_str(), "=" | "<" | "<=" | ">" | ">=") => {}
                            _ => return Err(bad("numeric comparisons are [\"op\", number] pairs")),
                        }
                    }
                    Ok(())
                }
                (other, _) => Err(bad(format!("unknown or malformed condition {other:?}"))),
            }
        }
        Value::Object(_) | Value::Array(_) => {
            Err(bad("a condition is a value or a one-key object"))
        }
        _ => Ok(()),
    }
}

/// Checks a policy's shape.
pub fn validate(policy: &Value) -> Result<()> {
    let Value::Object(map) = policy else {
        return Err(bad("it must be a JSON object"));
    };
    for (key, rule) in map {
        match rule {
            Value::Array(conditions) if !conditions.is_empty() => {
                for c in conditions {
                    validate_condition(c)?;
                }
            }
            Value::Object(_) => validate(rule)?,
            _ => {
                return Err(bad(format!(
                    "{key:?} must map to a non-empty list of conditions or to a nested policy"
                )))
            }
        }
    }
    Ok(())
}

fn numeric_ok(ops: &[Value], n: f64) -> bool {
    ops.chunks(2).all(|pair| {
        let bound = pair[1].as_f64().unwrap_or(f64::NAN);
        match pair[0].as_str() {
            Some("=") => n == bound,
            Some("<") => n < bound,
            Some("<=") => n <= bound,
            Some(">") => n > bound,
            Some(">=") => n >= bound,
            _ => false,
        }
    })
}

fn condition_matches(c: &Value, field: Option<&Value>) -> bool {
    match c {
        Value::Object(o) => {
            let Some((k, v)) = o.iter().next() else {
                return false;
            };
            match k.as_str() {
                "exists" => v.as_bool() == Some(field.is_some()),
                "prefix" => {
                    matches!((field, v), (Some(Value::String(s)), Value::String(p)) if s.starts_with(p.as_str()))
                }
                "numeric" => match (field.and_then(Value::as_f64), v.as_array()) {
                    (Some(n), Some(ops)) => numeric_ok(ops, n),
                    _ => false,
                },
                "anything-but" => match (field, v.as_array()) {
                    (Some(f), Some(items)) => !items.iter().any(|i| values_equal(i, f)),
                    _ => false,
                },
                _ => false,
            }
        }
        literal => field.is_some_and(|f| values_equal(literal, f)),
    }
}

/// Equality where numbers compare by value (1 == 1.0).
fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn object_matches(policy: &Map<String, Value>, body: &Map<String, Value>) -> bool {
    policy.iter().all(|(key, rule)| {
        let field = body.get(key);
        match rule {
            Value::Object(nested) => match field {
                Some(Value::Object(inner)) => object_matches(nested, inner),
                _ => false,
            },
            Value::Array(conditions) => {
                // A field holding a list matches when any of its elements matches.
                match field {
                    Some(Value::Array(items)) => items
                        .iter()
                        .any(|item| conditions.iter().any(|c| condition_matches(c, Some(item)))),
                    _ => conditions.iter().any(|c| condition_matches(c, field)),
                }
            }
            _ => false,
        }
    })
}

/// Whether a message body matches a (validated) policy.
pub fn matches(policy: &Value, body: &Value) -> bool {
    match (policy, body) {
        (Value::Object(p), _) if p.is_empty() => true,
        (Value::Object(p), Value::Object(b)) => object_matches(p, b),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validation() {
        assert!(validate(&json!({"kind": ["a", 1, true, null]})).is_ok());
        assert!(validate(&json!({"price": [{"numeric": [">=", 10, "<", 20]}]})).is_ok());
        assert!(validate(&json!({"a": {"b": [{"prefix": "x"}]}})).is_ok());
        for bad in [
            json!([1]),
            json!({"a": []}),
            json!({"a": "x"}),
            json!({"a": [{"numeric": [">", "ten"]}]}),
            json!({"a": [{"numeric": ["~", 1]}]}),
            json!({"a": [{"regex": "x"}]}),
            json!({"a": [{"prefix": 1}]}),
            json!({"a": [[1]]}),
        ] {
            assert!(validate(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matching() {
        let p = json!({
            "kind": ["order", "refund"],
            "price": [{"numeric": [">=", 10, "<", 20]}],
            "customer": {"tier": [{"prefix": "gold"}]},
            "coupon": [{"exists": false}],
            "region": [{"anything-but": ["eu"]}],
        });
        let ok = json!({"kind": "order", "price": 10.0, "customer": {"tier": "gold-plus"}, "region": "us"});
        assert!(matches(&p, &ok));
        for (field, value) in [
            ("kind", json!("other")),
            ("price", json!(20)),
            ("customer", json!({"tier": "silver"})),
            ("coupon", json!("X")),
            ("region", json!("eu")),
        ] {
            let mut b = ok.clone();
            b[field] = value;
            assert!(!matches(&p, &b), "{field}");
        }
        assert!(matches(
            &json!({"tags": ["a"]}),
            &json!({"tags": ["b", "a"]})
        ));
        assert!(!matches(&json!({"k": [1]}), &json!("not an object")));
        assert!(matches(&json!({}), &json!("anything")));
        assert!(matches(&json!({"n": [1]}), &json!({"n": 1.0})));
    }
}
