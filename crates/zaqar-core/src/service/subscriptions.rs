//! Subscriptions (spec §1.9, §3.6) and topics (§1.10, §3.7) in the service layer.
//!
//! Topics are a namespace of their own: a topic `t` of project `p` is stored as the queue `t`
//! of the internal project `p` + `\u{1}topics`. No request can name that project (control
//! characters cannot appear in headers), so topics never meet queues, while every storage
//! operation (lazy creation, metadata, messages, stats, purge, subscriptions) works unchanged.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::validate::{int_field, parse_object, queue_name, retry_policy};
use super::{Ctx, Service};
use crate::error::{Error, Result};
use crate::model::{
    Metadata, NewSubscription, QueueRef, Subscription, SubscriptionCreated, SubscriptionUpdate,
};
use crate::store::SubscriptionStore;

pub const MIN_SUBSCRIPTION_TTL: i64 = 60;

/// Queue or topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Queue,
    Topic,
}

impl SourceKind {
    /// The collection path segment (`queues` or `topics`).
    pub fn segment(self) -> &'static str {
        match self {
            SourceKind::Queue => "queues",
            SourceKind::Topic => "topics",
        }
    }
}

const TOPIC_SUFFIX: &str = "\u{1}topics";

/// The internal project holding a project's topics.
pub fn topic_project(project: &str) -> String {
    format!("{project}{TOPIC_SUFFIX}")
}

/// The real project and kind of a stored project id.
pub fn split_project(stored: &str) -> (&str, SourceKind) {
    match stored.strip_suffix(TOPIC_SUFFIX) {
        Some(p) => (p, SourceKind::Topic),
        None => (stored, SourceKind::Queue),
    }
}

/// What `POST .../subscriptions` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// 201 with the id (new, or an unconfirmed duplicate).
    Created(String),
    /// 409: a confirmed subscription with that subscriber exists.
    Conflict,
}

fn scheme(uri: &str) -> Option<String> {
    let (scheme, _) = uri.split_once(':')?;
    let ok = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.');
    ok.then(|| scheme.to_ascii_lowercase())
}

impl Service {
    fn subs(&self) -> Result<&dyn SubscriptionStore> {
        self.store.subscriptions().ok_or_else(|| {
            Error::unavailable(
                "Subscriptions are not available with this message store driver yet.",
            )
        })
    }

    /// The stored (project, source) of a queue or topic, after checking the name.
    pub(crate) fn source_ref<'a>(
        &self,
        ctx: Ctx<'_>,
        kind: SourceKind,
        name: &'a str,
        shadow: &'a mut String,
    ) -> Result<QueueRef<'a>> {
        queue_name(name).map_err(|e| match kind {
            SourceKind::Queue => e,
            SourceKind::Topic => Error::bad_request(
                "Invalid topic identification",
                "The format of the submitted topic name or project id is not valid.",
            ),
        })?;
        *shadow = match kind {
            SourceKind::Queue => ctx.project.to_string(),
            SourceKind::Topic => topic_project(ctx.project),
        };
        Ok(QueueRef::new(shadow.as_str(), name))
    }

    fn check_subscriber(&self, uri: &str) -> Result<()> {
        let types = &self.limits.subscriber_types;
        let bad = || {
            Error::invalid(format!(
                "The subscriber type of subscription must be supported in the list {types:?}."
            ))
        };
        let scheme = scheme(uri).ok_or_else(bad)?;
        if !types.iter().any(|t| t.eq_ignore_ascii_case(&scheme)) {
            return Err(bad());
        }
        match scheme.as_str() {
            "http" | "https" => {
                let url = url::Url::parse(uri)
                    .map_err(|e| Error::invalid(format!("Invalid subscriber URI: {e}.")))?;
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(Error::invalid("Invalid subscriber URI: it has no host."));
                }
            }
            "mailto" => {
                let addr = mailto_address(uri);
                if !addr.contains('@') || addr.starts_with('@') || addr.ends_with('@') {
                    return Err(Error::invalid(
                        "Invalid subscriber URI: mailto needs an e-mail address.",
                    ));
                }
            }
            "trust+http" | "trust+https" => {
                if !self.auth_required() {
                    return Err(Error::invalid(
                        "trust+http(s) subscribers need Keystone (auth_strategy = keystone).",
                    ));
                }
                let url = url::Url::parse(&uri["trust+".len()..])
                    .map_err(|e| Error::invalid(format!("Invalid subscriber URI: {e}.")))?;
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(Error::invalid("Invalid subscriber URI: it has no host."));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn check_sub_ttl(ttl: &Value) -> Result<i64> {
        let ttl = ttl
            .as_i64()
            .ok_or_else(|| Error::invalid("TTL must be an integer."))?;
        if ttl < MIN_SUBSCRIPTION_TTL {
            return Err(Error::invalid(format!(
                "The TTL for a subscription must be at least {MIN_SUBSCRIPTION_TTL} seconds long."
            )));
        }
        // Expiry must stay a representable date (milliseconds in an i64, year < 9999).
        if ttl > 250_000_000_000 {
            return Err(Error::invalid(
                "The TTL seconds for a subscription plus current time must be a valid date.",
            ));
        }
        Ok(ttl)
    }

    fn check_options(options: &Value) -> Result<Metadata> {
        let Value::Object(o) = options else {
            return Err(Error::invalid("Options must be a dict."));
        };
        if let Some(p) = o.get("_retry_policy") {
            retry_policy(p)?;
        }
        if let Some(f) = o.get("filter_policy") {
            super::filter::validate(f)?;
        }
        if let Some(h) = o.get("post_headers") {
            let ok = h
                .as_object()
                .is_some_and(|m| m.values().all(Value::is_string));
            if !ok {
                return Err(Error::invalid(
                    "post_headers must be an object of string values.",
                ));
            }
        }
        if let Some(d) = o.get("post_data") {
            if !d.is_string() {
                return Err(Error::invalid("post_data must be a string."));
            }
        }
        Ok(o.clone())
    }

    /// `POST .../subscriptions`.
    pub async fn create_subscription(
        &self,
        ctx: Ctx<'_>,
        kind: SourceKind,
        name: &str,
        body: &[u8],
    ) -> Result<Created> {
        let mut shadow = String::new();
        let q = self.source_ref(ctx, kind, name, &mut shadow)?;
        // The reference creates the source first, even if the subscription is then refused.
        self.store.create_queue(q, Map::new()).await?;
        // No body is an empty document (so the missing subscriber is named, as the reference
        // answers); white space is a document that does not parse.
        let doc = if body.is_empty() {
            Map::new()
        } else if body.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::body("Request body could not be parsed."));
        } else {
            parse_object(body)?
        };
        let subscriber = match doc.get("subscriber") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(Error::invalid("The subscriber must be a string.")),
            None => return Err(Error::invalid("Missing parameter subscriber in body.")),
        };
        self.check_subscriber(&subscriber)?;
        let ttl = match doc.get("ttl") {
            None | Some(Value::Null) => self.limits.default_subscription_ttl,
            Some(v) => Self::check_sub_ttl(v)?,
        };
        let mut options = match doc.get("options") {
            None | Some(Value::Null) => Map::new(),
            Some(v) => Self::check_options(v)?,
        };
        if is_trust(&subscriber) {
            let trust = self.create_trust(ctx, ttl).await?;
            options.insert(TRUST_ID.into(), Value::String(trust));
        }
        let created = self
            .subs()?
            .create_subscription(
                q.project,
                q.name,
                NewSubscription {
                    subscriber,
                    ttl,
                    options,
                    confirmed: false,
                },
            )
            .await?;
        let id = match created {
            SubscriptionCreated::ExistingConfirmed(_) => return Ok(Created::Conflict),
            SubscriptionCreated::New(id) | SubscriptionCreated::ExistingUnconfirmed(id) => id,
        };
        if self.options.require_confirmation {
            if let Some(sub) = self
                .subs()?
                .get_subscription(q.project, q.name, &id)
                .await?
            {
                self.notifications()
                    .send_confirmation(ctx.project, kind, &sub, true)
                    .await;
            }
        }
        self.notifications().wake();
        Ok(Created::Created(id))
    }

    /// Subscribes a WebSocket connection (or any internal endpoint) without the subscriber-type
    /// rules: it is confirmed at once (spec §4.6 SHOULD).
    pub async fn create_connection_subscription(
        &self,
        ctx: Ctx<'_>,
        kind: SourceKind,
        name: &str,
        subscriber: &str,
        ttl: Option<i64>,
        options: Metadata,
    ) -> Result<String> {
        let mut shadow = String::new();
        let q = self.source_ref(ctx, kind, name, &mut shadow)?;
        self.store.create_queue(q, Map::new()).await?;
        let ttl = match ttl {
            None => self.limits.default_subscription_ttl,
            Some(t) => Self::check_sub_ttl(&Value::from(t))?,
        };
        let created = self
            .subs()?
            .create_subscription(
                q.project,
                q.name,
                NewSubscription {
                    subscriber: subscriber.to_string(),
                    ttl,
                    options,
                    confirmed: true,
                },
            )
            .await?;
        Ok(match created {
            SubscriptionCreated::New(id)
            | SubscriptionCreated::ExistingUnconfirmed(id)
            | SubscriptionCreated::ExistingConfirmed(id) => id,
        })
    }

    pub async fn list_subscriptions(
        &self,
        ctx: Ctx<'_>,
        kind: SourceKind,
        name: &str,
        marker: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Vec<Subscription>> {
        let mut shadow = String::new();
        let q = self.source_ref(ctx, kind, name, &mut shadow)?;
        let limit = super::validate::limit(limit, 10, self.limits.max_subscriptions_per_page)?;
        self.subs()?
            .list_subscriptions(q.project, q.name, marker, limit)
            .await
    }

    pub async fn get_subscription(
        &self,
        ctx: Ctx<'_>,
        kind: SourceKind,
        name: &str,
        id: &str,
    ) -> Result<Subscription> {
        let mut shadow = String::new();
        let q = self.source_ref(ctx, kind, name, &mut shadow)?;
        self.subs()?
            .get_subscription(q.project, q.name, id)
            .await?
            .ok_or_else(|| Error::not_found(format!("Subscription {id} could not be found.")))
    }

    /// `PATCH .../subscriptions/{id}`.
    pub async fn update_subscription(
        &self,
        ctx: Ctx<'_>,
        kind: SourceKind,
        name: &str,
        id: &str,
        body: &[u8],
    ) -> Result<()> {
        let mut shadow = String::new();
        let q = self.source_ref(ctx, kind, name, &mut shadow)?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::invalid("No subscription to create."));
        }
        let doc = match super::validate::parse_document(body)? {
            Value::Object(o) => o,
            _ => return Err(Error::invalid("Subscriptions must be a dict.")),
        };
        if doc.is_empty() {
            return Err(Error::invalid("No subscription to create."));
        }
        let mut update = SubscriptionUpdate::default();
        if let Some(v) = doc.get("subscriber") {
            let s = v
                .as_str()
                .ok_or_else(|| Error::invalid("The subscriber must be a string."))?;
            self.check_subscriber(s)?;
            update.subscriber = Some(s.to_string());
        }
        if let Some(v) = doc.get("ttl") {
            update.ttl = Some(Self::check_sub_ttl(v)?);
        }
        if let Some(v) = doc.get("options") {
            update.options = Some(Self::check_options(v)?);
        }
        if update == SubscriptionUpdate::default() {
            return Err(Error::invalid(
                "No recognised field to update: use subscriber, ttl or options.",
            ));
        }
        self.keep_trust(ctx, q, id, &mut update).await?;
        self.subs()?
            .update_subscription(q.project, q.name, id, update)
            .await
    }

    /// A trust from the request's user to this service, for a `trust+` subscriber living `ttl`
    /// seconds from now.
    async fn create_trust(&self, ctx: Ctx<'_>, ttl: i64) -> Result<String> {
        let keystone = self.options.identity.as_ref().ok_or_else(|| {
            Error::invalid("trust+http(s) subscribers need Keystone (auth_strategy = keystone).")
        })?;
        let user = ctx.user.ok_or_else(|| {
            Error::invalid(
                "trust+http(s) subscribers must be created with a Keystone token (not a pre-signed URL).",
            )
        })?;
        // Keystone judges the trust's expiry by its own (wall) clock.
        let expires = chrono::Utc::now()
            .timestamp_millis()
            .saturating_add(ttl.saturating_mul(1000));
        keystone.create_trust(user, Some(expires)).await
    }

    /// On update of a subscription whose subscriber is (or becomes) `trust+`: a new trust when
    /// the subscriber or the ttl changes (a trust cannot be extended), otherwise the stored
    /// trust id survives a replacement of `options`.
    async fn keep_trust(
        &self,
        ctx: Ctx<'_>,
        q: QueueRef<'_>,
        id: &str,
        update: &mut SubscriptionUpdate,
    ) -> Result<()> {
        // Unknown subscription: the store's update answers 404.
        let Some(current) = self.subs()?.get_subscription(q.project, q.name, id).await? else {
            return Ok(());
        };
        let subscriber = update.subscriber.as_ref().unwrap_or(&current.subscriber);
        if !is_trust(subscriber) {
            return Ok(());
        }
        let changed = update.ttl.is_some() || !current.subscriber.eq_ignore_ascii_case(subscriber);
        let trust = if changed {
            Some(
                self.create_trust(ctx, update.ttl.unwrap_or(current.ttl))
                    .await?,
            )
        } else {
            current
                .options
                .get(TRUST_ID)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let Some(trust) = trust else { return Ok(()) };
        let mut options = update.options.take().unwrap_or(current.options);
        options.insert(TRUST_ID.into(), Value::String(trust));
        update.options = Some(options);
        Ok(())
    }

    pub async fn delete_subscription(
        &self,
        ctx: Ctx<'_>,
        kind: SourceKind,
        name: &str,
        id: &str,
    ) -> Result<()> {
        let mut shadow = String::new();
        let q = self.source_ref(ctx, kind, name, &mut shadow)?;
        self.subs()?
            .delete_subscription(q.project, q.name, id)
            .await
    }

    /// `PUT .../subscriptions/{id}/confirm`.
    pub async fn confirm_subscription(
        &self,
        ctx: Ctx<'_>,
        kind: SourceKind,
        name: &str,
        id: &str,
        body: &[u8],
    ) -> Result<()> {
        let mut shadow = String::new();
        let q = self.source_ref(ctx, kind, name, &mut shadow)?;
        let doc = parse_object(body)?;
        let confirmed = match doc.get("confirmed") {
            Some(Value::Bool(b)) => *b,
            _ => return Err(Error::invalid("The 'confirmed' should be boolean.")),
        };
        if !self
            .subs()?
            .confirm_subscription(q.project, q.name, id, confirmed)
            .await?
        {
            return Err(Error::not_found(format!(
                "Subscription {id} could not be found."
            )));
        }
        if !confirmed && self.options.require_confirmation {
            if let Some(sub) = self.subs()?.get_subscription(q.project, q.name, id).await? {
                self.notifications()
                    .send_confirmation(ctx.project, kind, &sub, false)
                    .await;
            }
        }
        if confirmed {
            self.notifications().wake();
        }
        Ok(())
    }
}

/// The option holding the Keystone trust of a `trust+` subscriber (the reference's name).
pub const TRUST_ID: &str = "trust_id";

/// Whether the subscriber is delivered with a Keystone trust.
pub fn is_trust(subscriber: &str) -> bool {
    subscriber
        .get(..6)
        .is_some_and(|p| p.eq_ignore_ascii_case("trust+"))
}

/// `ttl` of a WebSocket `subscription_create` body (an integer, if present).
pub fn body_ttl(body: &Map<String, Value>) -> Result<Option<i64>> {
    body.get("ttl").map(|v| int_field(v, "ttl")).transpose()
}

/// The address of a `mailto:` URI (query parameters and percent-encoding removed).
pub fn mailto_address(uri: &str) -> String {
    let rest = uri.get(7..).unwrap_or("");
    let addr = rest.split('?').next().unwrap_or("");
    percent_decode(addr)
}

fn percent_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The query parameters of a `mailto:` URI, keys lowercased.
pub fn mailto_params(uri: &str) -> HashMap<String, String> {
    uri.split_once('?')
        .map(|(_, q)| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_projects_round_trip() {
        let shadow = topic_project("p1");
        assert_eq!(split_project(&shadow), ("p1", SourceKind::Topic));
        assert_eq!(split_project("p1"), ("p1", SourceKind::Queue));
    }

    #[test]
    fn schemes() {
        assert_eq!(scheme("HTTP://x").as_deref(), Some("http"));
        assert_eq!(scheme("trust+https://x").as_deref(), Some("trust+https"));
        assert_eq!(scheme("mailto:a@b").as_deref(), Some("mailto"));
        assert_eq!(scheme("nocolon"), None);
        assert_eq!(scheme(":x"), None);
    }
}
