//! Access policy: the default rules of spec §2.4, overridable by an oslo.policy-style file.
//!
//! A rule is an expression over the caller's roles:
//! - `""` or `"@"`: anyone; `"!"`: no one;
//! - `role:<name>`: callers with that role (case-insensitive);
//! - `rule:<name>`: another rule;
//! - `A or B`, `A and B`, `not A`, and parentheses (`and` binds tighter than `or`).
//!
//! The file (`[oslo_policy] policy_file`) is a JSON object, or a YAML mapping of one
//! `"name": "expression"` per line, as oslo.policy writes them. Its rules replace the defaults of
//! the same name; the others keep their defaults.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};

/// The default rules (spec §2.4).
pub const DEFAULTS: &[(&str, &str)] = &[
    ("context_is_admin", "role:admin"),
    ("pools:get_all", "rule:context_is_admin"),
    ("pools:create", "rule:context_is_admin"),
    ("pools:get", "rule:context_is_admin"),
    ("pools:update", "rule:context_is_admin"),
    ("pools:delete", "rule:context_is_admin"),
    ("flavors:create", "rule:context_is_admin"),
    ("flavors:update", "rule:context_is_admin"),
    ("flavors:delete", "rule:context_is_admin"),
    ("flavors:get_all", ""),
    ("flavors:get", ""),
    ("health:get", "rule:context_is_admin"),
    ("quotas:get_all", "rule:context_is_admin"),
    ("quotas:get", "rule:context_is_admin"),
    ("quotas:update", "rule:context_is_admin"),
    ("quotas:delete", "rule:context_is_admin"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expr {
    Always,
    Never,
    Role(String),
    Rule(String),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

#[derive(Debug, Clone)]
pub struct Policy {
    rules: HashMap<String, Expr>,
}

fn tokenize(text: &str) -> Vec<String> {
    let spaced = text.replace('(', " ( ").replace(')', " ) ");
    spaced.split_whitespace().map(str::to_string).collect()
}

struct Parser {
    tokens: Vec<String>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.pos).map(String::as_str)
    }

    fn or(&mut self) -> std::result::Result<Expr, String> {
        let mut items = vec![self.and()?];
        while self.peek().is_some_and(|t| t.eq_ignore_ascii_case("or")) {
            self.pos += 1;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap()
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self) -> std::result::Result<Expr, String> {
        let mut items = vec![self.unary()?];
        while self.peek().is_some_and(|t| t.eq_ignore_ascii_case("and")) {
            self.pos += 1;
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap()
        } else {
            Expr::And(items)
        })
    }

    fn unary(&mut self) -> std::result::Result<Expr, String> {
        let tok = self.peek().ok_or("unexpected end of rule")?.to_string();
        self.pos += 1;
        if tok.eq_ignore_ascii_case("not") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if tok == "(" {
            let e = self.or()?;
            if self.peek() != Some(")") {
                return Err("missing )".into());
            }
            self.pos += 1;
            return Ok(e);
        }
        match tok.split_once(':') {
            _ if tok == "@" => Ok(Expr::Always),
            _ if tok == "!" => Ok(Expr::Never),
            Some(("role", r)) if !r.is_empty() => Ok(Expr::Role(r.to_ascii_lowercase())),
            Some(("rule", r)) if !r.is_empty() => Ok(Expr::Rule(r.to_string())),
            _ => Err(format!("unsupported check {tok:?}")),
        }
    }
}

fn parse_rule(text: &str) -> std::result::Result<Expr, String> {
    let tokens = tokenize(text);
    if tokens.is_empty() {
        return Ok(Expr::Always);
    }
    let mut p = Parser { tokens, pos: 0 };
    let e = p.or()?;
    if p.pos != p.tokens.len() {
        return Err(format!("unexpected {:?}", p.tokens[p.pos]));
    }
    Ok(e)
}

/// Reads `"name": "rule"` pairs from JSON or from a flat YAML mapping.
fn parse_file(text: &str) -> std::result::Result<Vec<(String, String)>, String> {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) {
        return map
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok((k, s)),
                _ => Err(format!("rule {k:?} must be a string")),
            })
            .collect();
    }
    let unquote = |s: &str| -> String {
        let s = s.trim();
        if s.len() >= 2
            && ((s.starts_with('"') && s.ends_with('"'))
                || (s.starts_with('\'') && s.ends_with('\'')))
        {
            s[1..s.len() - 1].to_string()
        } else {
            s.to_string()
        }
    };
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed == "---" {
            continue;
        }
        // Split on the first `:` that is outside quotes (rule names contain `:`).
        let mut in_quote: Option<char> = None;
        let mut split = None;
        for (i, c) in trimmed.char_indices() {
            match (in_quote, c) {
                (None, '"' | '\'') => in_quote = Some(c),
                (Some(q), c) if c == q => in_quote = None,
                (None, ':') if trimmed[i + 1..].starts_with(' ') || i + 1 == trimmed.len() => {
                    split = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let i = split.ok_or_else(|| format!("line {}: expected `\"name\": \"rule\"`", n + 1))?;
        out.push((unquote(&trimmed[..i]), unquote(&trimmed[i + 1..])));
    }
    Ok(out)
}

impl Default for Policy {
    fn default() -> Self {
        Self::with_overrides(&[]).expect("default rules parse")
    }
}

impl Policy {
    fn with_overrides(overrides: &[(String, String)]) -> std::result::Result<Policy, String> {
        let mut rules = HashMap::new();
        for (name, text) in DEFAULTS {
            rules.insert(name.to_string(), parse_rule(text)?);
        }
        for (name, text) in overrides {
            let e = parse_rule(text).map_err(|why| format!("rule {name:?}: {why}"))?;
            rules.insert(name.clone(), e);
        }
        Ok(Policy { rules })
    }

    /// Loads the defaults overridden by `file`.
    pub fn load(file: Option<&Path>) -> std::result::Result<Policy, String> {
        let Some(path) = file else {
            return Ok(Policy::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read policy file {}: {e}", path.display()))?;
        let overrides =
            parse_file(&text).map_err(|e| format!("policy file {}: {e}", path.display()))?;
        Self::with_overrides(&overrides).map_err(|e| format!("policy file {}: {e}", path.display()))
    }

    fn eval(&self, e: &Expr, roles: &[String], depth: usize) -> bool {
        if depth > 16 {
            return false; // a rule cycle never grants access
        }
        match e {
            Expr::Always => true,
            Expr::Never => false,
            Expr::Role(r) => roles.iter().any(|x| x.eq_ignore_ascii_case(r)),
            Expr::Rule(name) => self
                .rules
                .get(name)
                .is_some_and(|e| self.eval(e, roles, depth + 1)),
            Expr::Not(e) => !self.eval(e, roles, depth + 1),
            Expr::And(es) => es.iter().all(|e| self.eval(e, roles, depth + 1)),
            Expr::Or(es) => es.iter().any(|e| self.eval(e, roles, depth + 1)),
        }
    }

    /// Whether a caller with `roles` may perform `action` (unknown actions are allowed, as
    /// oslo.policy's default rule is empty).
    pub fn allows(&self, action: &str, roles: &[String]) -> bool {
        match self.rules.get(action) {
            Some(e) => self.eval(e, roles, 0),
            None => true,
        }
    }

    /// `Err(NotAuthorized)` unless allowed.
    pub fn enforce(&self, action: &str, roles: &[String]) -> Result<()> {
        if self.allows(action, roles) {
            Ok(())
        } else {
            Err(Error::NotAuthorized)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults() {
        let p = Policy::default();
        assert!(p.allows("queues:create", &[]));
        assert!(p.allows("messages:get_all", &roles(&["member"])));
        assert!(!p.allows("health:get", &roles(&["member"])));
        assert!(p.allows("health:get", &roles(&["Admin"])));
        assert!(!p.allows("pools:create", &[]));
        assert!(p.allows("flavors:get_all", &[]));
    }

    #[test]
    fn expressions() {
        let p = Policy::with_overrides(&[
            ("a".into(), "role:x or (role:y and not role:z)".into()),
            ("b".into(), "!".into()),
            ("c".into(), "rule:a and role:w".into()),
            ("loop".into(), "rule:loop".into()),
        ])
        .unwrap();
        assert!(p.allows("a", &roles(&["x"])));
        assert!(p.allows("a", &roles(&["y"])));
        assert!(!p.allows("a", &roles(&["y", "z"])));
        assert!(!p.allows("b", &roles(&["admin"])));
        assert!(p.allows("c", &roles(&["x", "w"])));
        assert!(!p.allows("c", &roles(&["x"])));
        assert!(!p.allows("loop", &[]));
        assert!(Policy::with_overrides(&[("d".into(), "role:".into())]).is_err());
        assert!(Policy::with_overrides(&[("d".into(), "user:bob".into())]).is_err());
        assert!(Policy::with_overrides(&[("d".into(), "(role:a".into())]).is_err());
    }

    #[test]
    fn files() {
        let json = r#"{"queues:delete": "role:admin", "health:get": ""}"#;
        let yaml = "# overrides\n\"queues:delete\": \"role:admin\"\n'health:get': ''\n";
        for text in [json, yaml] {
            let rules = parse_file(text).unwrap();
            let p = Policy::with_overrides(&rules).unwrap();
            assert!(!p.allows("queues:delete", &roles(&["member"])));
            assert!(p.allows("queues:delete", &roles(&["admin"])));
            assert!(p.allows("health:get", &[]));
            assert!(p.allows("queues:create", &[]), "other defaults stay");
        }
        assert!(parse_file("just words").is_err());
    }
}
