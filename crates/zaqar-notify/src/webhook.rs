//! Webhook delivery (`http`, `https`, `trust+http`, `trust+https`): the signed POST, and the
//! Keystone trust token that `trust+` subscribers are called with.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use zaqar_core::model::Subscription;

use crate::deliver::AttemptError;
use crate::Notifier;

/// The `X-Zaqar-Signature` of a webhook body: the time and the HMAC-SHA256 of `<t>.<body>`
/// with the subscription's secret, so that the receiver can check both the sender and that the
/// request is recent.
fn sign_webhook(secret: &str, t: i64, body: &[u8]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    let hex: String = m
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={hex}")
}

impl Notifier {
    /// A token acting for the creator of a `trust+` subscription.
    pub(crate) async fn trust_token(&self, sub: &Subscription) -> Result<String, AttemptError> {
        let keystone = self.keystone.as_ref().ok_or_else(|| AttemptError {
            message: "trust+ subscribers need Keystone (auth_strategy = keystone)".into(),
            retry: false,
        })?;
        let trust = sub
            .options
            .get(zaqar_core::service::subscriptions::TRUST_ID)
            .and_then(Value::as_str)
            .ok_or_else(|| AttemptError {
                message: "the subscription has no Keystone trust".into(),
                retry: false,
            })?;
        keystone.trust_token(trust).await.map_err(|e| AttemptError {
            message: e.message,
            retry: e.retry,
        })
    }

    pub(crate) async fn post_webhook(
        &self,
        uri: &str,
        sub: &Subscription,
        payload: &Value,
        auth_token: Option<&str>,
    ) -> Result<(), AttemptError> {
        let payload_text = payload.to_string();
        let body = match sub.options.get("post_data").and_then(Value::as_str) {
            Some(template) => template.replace("\"$zaqar_message$\"", &payload_text),
            None => payload_text,
        };
        let t = chrono::Utc::now().timestamp();
        let mut req = self
            .http
            .post(uri)
            .header("Content-Type", "application/json")
            .header(
                "X-Zaqar-Signature",
                sign_webhook(&sub.secret, t, body.as_bytes()),
            );
        if let Some(Value::Object(h)) = sub.options.get("post_headers") {
            for (k, v) in h {
                if auth_token.is_some() && k.eq_ignore_ascii_case("x-auth-token") {
                    continue;
                }
                if let Some(v) = v.as_str() {
                    req = req.header(k.as_str(), v);
                }
            }
        }
        if let Some(token) = auth_token {
            req = req.header("X-Auth-Token", token);
        }
        match req.body(body).send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                if status < 400 {
                    Ok(())
                } else {
                    Err(AttemptError {
                        message: format!("{uri} answered {status}"),
                        retry: status >= 500 || status == 429,
                    })
                }
            }
            Err(e) => Err(AttemptError {
                message: format!(
                    "{uri}: {}",
                    if e.is_timeout() {
                        "timed out".to_string()
                    } else {
                        e.to_string()
                    }
                ),
                retry: true,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_signatures() {
        let s = sign_webhook("k", 1700000000, b"{}");
        assert!(s.starts_with("t=1700000000,v1="));
        assert_eq!(s.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(s, sign_webhook("other", 1700000000, b"{}"));
    }
}
