//! Delivering one batch to one subscriber: the subscription's filter, the notification
//! payload, the transport chosen by the subscriber's scheme, and the retries of spec §6.3.

use std::time::Duration;

use serde_json::{json, Value};

use zaqar_core::model::{DeliveryOutcome, NotifiedMessage, Subscription};
use zaqar_core::service::subscriptions::{mailto_address, mailto_params};

use crate::{Job, Notifier, RetryPolicy};

/// Why one attempt failed, and whether to try again.
#[derive(Debug)]
pub(crate) struct AttemptError {
    pub(crate) message: String,
    pub(crate) retry: bool,
}

impl Notifier {
    /// Waits before a retry, or only notes the pause when a test asked for controlled time
    /// (see [`Notifier::record_pauses_instead_of_sleeping`]).
    async fn pause(&self, secs: u64) {
        if let Some(rec) = self.recorded_pauses.lock().unwrap().as_mut() {
            rec.push(secs);
            return;
        }
        tokio::time::sleep(Duration::from_secs(secs)).await;
    }

    fn plain_body(&self, project: &str, m: &NotifiedMessage) -> Option<Value> {
        if !m.encrypted {
            return serde_json::from_str(m.body.get()).ok();
        }
        let token: String = serde_json::from_str(m.body.get()).ok()?;
        let text = self.encryptor.as_ref()?.decrypt(project, &token).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub(crate) async fn deliver_job(&self, job: &Job) -> DeliveryOutcome {
        let sub = &job.sub;
        if self.cfg.require_confirmation && !sub.confirmed {
            return DeliveryOutcome::Skipped;
        }
        let queue_meta = self
            .store
            .get_queue(zaqar_core::model::QueueRef::new(&job.project, &job.source))
            .await
            .ok()
            .flatten()
            .map(|i| i.metadata)
            .unwrap_or_default();
        let policy = RetryPolicy::effective(
            queue_meta.get("_retry_policy"),
            sub.options.get("_retry_policy"),
        );
        let filter = sub.options.get("filter_policy");
        let mut sent = 0;
        let mut last_error = None;
        for m in job.messages.iter() {
            let Some(body) = self.plain_body(&job.project, m) else {
                last_error = Some("the message body could not be read".to_string());
                continue;
            };
            if let Some(f) = filter {
                if !zaqar_core::service::filter::matches(f, &body) {
                    continue;
                }
            }
            let mut payload = json!({
                "body": body,
                "ttl": m.ttl,
                "queue_name": job.source,
                "Message_Type": "Notification",
                "message_id": m.id,
            });
            if m.delay > 0 {
                payload["delay"] = json!(m.delay);
            }
            let _permit = self.permits.clone().acquire_owned().await;
            let kind = sub
                .subscriber
                .split(':')
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            match self.deliver_with_retries(sub, &payload, &policy).await {
                Ok(()) => {
                    sent += 1;
                    zaqar_core::metrics::notification_delivered(&kind);
                }
                Err(e) => {
                    last_error = Some(e);
                    zaqar_core::metrics::notification_failed(&kind);
                }
            }
        }
        match (sent, last_error) {
            (_, Some(e)) => DeliveryOutcome::GaveUp(e),
            (0, None) => DeliveryOutcome::Skipped,
            _ => DeliveryOutcome::Delivered,
        }
    }

    pub(crate) async fn deliver_with_retries(
        &self,
        sub: &Subscription,
        payload: &Value,
        policy: &RetryPolicy,
    ) -> Result<(), String> {
        let mut last = match self.attempt(sub, payload).await {
            Ok(()) => return Ok(()),
            Err(e) if !e.retry => return Err(e.message),
            Err(e) => e.message,
        };
        for pause in policy.schedule() {
            if pause > 0 {
                self.pause(pause).await;
            }
            match self.attempt(sub, payload).await {
                Ok(()) => return Ok(()),
                Err(e) if !e.retry => return Err(e.message),
                Err(e) => last = e.message,
            }
        }
        tracing::warn!(subscription = %sub.id, error = %last, "notification given up after every retry");
        Err(last)
    }

    async fn attempt(&self, sub: &Subscription, payload: &Value) -> Result<(), AttemptError> {
        let uri = sub.subscriber.as_str();
        let scheme = uri.split(':').next().unwrap_or("").to_ascii_lowercase();
        match scheme.as_str() {
            "http" | "https" => {
                if let Some(conn) = self.connections.local_connection_of(uri) {
                    return self.push_local(&conn, payload);
                }
                self.post_webhook(uri, sub, payload, None).await
            }
            "trust+http" | "trust+https" => {
                let token = self.trust_token(sub).await?;
                self.post_webhook(&uri["trust+".len()..], sub, payload, Some(&token))
                    .await
            }
            "mailto" => {
                let params = mailto_params(uri);
                let subject = params
                    .get("subject")
                    .cloned()
                    .or_else(|| {
                        sub.options
                            .get("subject")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .unwrap_or_default();
                let from = sub
                    .options
                    .get("from")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                self.send_mail(&mailto_address(uri), &from, &subject, &payload.to_string())
                    .await
            }
            other => Err(AttemptError {
                message: format!("unsupported subscriber scheme {other:?}"),
                retry: false,
            }),
        }
    }
}
