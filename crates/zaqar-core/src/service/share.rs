//! Pre-signed URLs (spec §1.12, §3.3.8): signing a grant for a queue's sub-resources, and
//! verifying the signature a request carries instead of a token.

use serde_json::Value;

use super::validate::parse_object;
use super::{Ctx, Service};
use crate::error::{Error, Result};

/// A pre-signed URL grant (`POST .../share`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub project: Option<String>,
    pub paths: Vec<String>,
    pub methods: Vec<String>,
    pub expires: String,
    pub signature: String,
}

/// The signature headers of a request (HTTP: comma-separated strings; WebSocket: arrays).
#[derive(Debug, Clone)]
pub struct SignedRequest<'a> {
    pub signature: &'a str,
    pub expires: &'a str,
    pub methods: Vec<String>,
    pub paths: Vec<String>,
    pub project: Option<&'a str>,
}

impl Service {
    /// `POST .../share`: signs a grant for the queue's sub-resources (spec §3.3.8).
    pub async fn share(&self, ctx: Ctx<'_>, name: &str, body: &[u8]) -> Result<Share> {
        use crate::signing;
        let q = ctx.queue(name)?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::body("Request body can not be empty"));
        }
        let doc = parse_object(body)?;
        let unknown: Vec<&str> = doc
            .keys()
            .map(String::as_str)
            .filter(|k| !matches!(*k, "methods" | "paths" | "expires"))
            .collect();
        if !unknown.is_empty() {
            return Err(Error::invalid(format!(
                "Unknown keys: {}",
                unknown.join(", ")
            )));
        }
        let strings = |key: &str, default: &str| -> Result<Vec<String>> {
            match doc.get(key) {
                None => Ok(vec![default.to_string()]),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| {
                        i.as_str().map(str::to_string).ok_or_else(|| {
                            Error::invalid(format!("{key} must be a list of strings."))
                        })
                    })
                    .collect(),
                Some(_) => Err(Error::invalid(format!("{key} must be a list of strings."))),
            }
        };
        let methods = strings("methods", "GET")?;
        let rel_paths = strings("paths", "messages")?;
        let bad: Vec<&str> = rel_paths
            .iter()
            .map(String::as_str)
            .filter(|p| !signing::SHAREABLE.contains(p))
            .collect();
        if !bad.is_empty() {
            return Err(Error::invalid(format!("Invalid paths: {}", bad.join(", "))));
        }
        let now = self.clock.now();
        let expires = match doc.get("expires") {
            None => chrono::DateTime::from_timestamp_millis(now + 86_400_000)
                .ok_or_else(|| Error::Internal("clock out of range".into()))?,
            Some(Value::String(text)) => signing::parse_expires(text).ok_or_else(|| {
                Error::invalid(format!(
                    "Invalid expires value: {text}. It must be an ISO 8601 date-time."
                ))
            })?,
            Some(_) => return Err(Error::invalid("expires must be an ISO 8601 string.")),
        };
        if signing::millis(expires) <= now {
            return Err(Error::invalid("Expiration date must be in the future."));
        }
        let key = self.options.signing_key.as_ref().ok_or_else(|| {
            Error::invalid("Pre-signed URLs are not available: [signed_url] secret_key is not set.")
        })?;
        let mut paths: Vec<String> = rel_paths
            .iter()
            .map(|p| format!("/v2/queues/{}/{p}", q.name))
            .collect();
        paths.sort();
        paths.dedup();
        let mut methods = methods;
        methods.sort();
        let expires = signing::format_expires(expires);
        let signature = signing::sign(key, &paths, &methods, Some(q.project), &expires);
        Ok(Share {
            project: Some(q.project.to_string()),
            paths,
            methods,
            expires,
            signature,
        })
    }

    /// Verifies a pre-signed request for `method` on `path` (spec §1.12, with segment-wise path
    /// coverage). The error is `NotFound`, as the reference answers over HTTP.
    pub fn verify_signed(&self, req: &SignedRequest<'_>, method: &str, path: &str) -> Result<()> {
        use crate::signing;
        let refuse = || Error::not_found("The requested resource could not be found.");
        let key = self.options.signing_key.as_ref().ok_or_else(refuse)?;
        if !req.methods.iter().any(|m| m == method) {
            return Err(refuse());
        }
        if !req.paths.iter().any(|p| signing::path_covers(p, path)) {
            return Err(refuse());
        }
        let expires = signing::parse_expires(req.expires).ok_or_else(refuse)?;
        if signing::millis(expires) <= self.clock.now() {
            return Err(refuse());
        }
        let formatted = signing::format_expires(expires);
        if !signing::verify(
            key,
            &req.paths,
            &req.methods,
            req.project,
            &formatted,
            req.signature,
        ) {
            return Err(refuse());
        }
        Ok(())
    }
}
