//! Subscription confirmation (spec §6.4): the message with a pre-signed link to
//! `PUT .../confirm`, sent by e-mail from a template or delivered like a notification.

use serde_json::{json, Map, Value};

use zaqar_core::model::Subscription;
use zaqar_core::service::subscriptions::{mailto_address, SourceKind};

use crate::{Notifier, RetryPolicy};

impl Notifier {
    /// Sends a subscription confirmation (or, with `subscribe = false`, an unsubscribe
    /// confirmation) to the subscriber, with a pre-signed link to `PUT .../confirm`.
    pub(crate) async fn confirm(
        &self,
        project: &str,
        kind: SourceKind,
        sub: &Subscription,
        subscribe: bool,
    ) {
        let Some(key) = &self.signing_key else {
            tracing::warn!(
                subscription = %sub.id,
                "confirmation not sent: [signed_url] secret_key is not set"
            );
            return;
        };
        let path = format!(
            "/v2/{}/{}/subscriptions/{}/confirm",
            kind.segment(),
            sub.source,
            sub.id
        );
        let expires_ms = if subscribe {
            sub.expires
        } else {
            chrono::Utc::now().timestamp_millis() + 3_600_000
        };
        let expires = chrono::DateTime::from_timestamp_millis(expires_ms)
            .map(zaqar_core::signing::format_expires)
            .unwrap_or_default();
        let methods = vec!["PUT".to_string()];
        let signature = zaqar_core::signing::sign(
            key,
            std::slice::from_ref(&path),
            &methods,
            Some(project),
            &expires,
        );
        let what = match kind {
            SourceKind::Queue => "queue",
            SourceKind::Topic => "topic",
        };
        let (message_type, message) = if subscribe {
            (
                "SubscriptionConfirmation",
                format!("You have chosen to subscribe to the {what}: {}", sub.source),
            )
        } else {
            (
                "UnsubscribeConfirmation",
                format!(
                    "You have unsubscribed successfully to the {what}: {}, you can resubscribe it by using confirmed=True.",
                    sub.source
                ),
            )
        };
        let mut payload = Map::new();
        payload.insert("Message_Type".into(), json!(message_type));
        payload.insert("Message".into(), json!(message));
        payload.insert("URL-Signature".into(), json!(signature));
        payload.insert("URL-Methods".into(), json!("PUT"));
        payload.insert("URL-Paths".into(), json!(path));
        payload.insert("X-Project-ID".into(), json!(project));
        payload.insert("URL-Expires".into(), json!(expires));
        payload.insert("SubscribeBody".into(), json!({"confirmed": true}));
        payload.insert("UnsubscribeBody".into(), json!({"confirmed": false}));
        if let Some(base) = &self.cfg.public_url {
            payload.insert(
                "WSGISubscribeURL".into(),
                json!(format!("{}{path}", base.trim_end_matches('/'))),
            );
        }
        payload.insert("queue_name".into(), json!(sub.source));
        let payload = Value::Object(payload);
        let uri = sub.subscriber.to_ascii_lowercase();
        let result = if uri.starts_with("mailto:") {
            let Some(external) = &self.cfg.external_confirmation_url else {
                tracing::warn!(
                    subscription = %sub.id,
                    "confirmation e-mail not sent: [notification] external_confirmation_url is not set"
                );
                return;
            };
            let t = if subscribe {
                &self.cfg.confirmation_template
            } else {
                &self.cfg.unsubscribe_template
            };
            let link = format!(
                "{external}?Signature={signature}&Methods=PUT&Paths={path}&Project={project}&Expires={expires}&Url={}&Queue={}",
                payload["WSGISubscribeURL"].as_str().unwrap_or(""),
                sub.source
            );
            let body = t
                .body
                .replace("{0}", &sub.source)
                .replace("{1}", project)
                .replace("{2}", &link);
            self.send_mail(&mailto_address(&sub.subscriber), &t.sender, &t.topic, &body)
                .await
                .map_err(|e| e.message)
        } else {
            self.deliver_with_retries(sub, &payload, &RetryPolicy::default())
                .await
        };
        if let Err(e) = result {
            tracing::warn!(subscription = %sub.id, error = %e, "confirmation not delivered");
        }
    }
}
