//! Notification delivery (spec §6): leases pending batches from the store's durable outbox and
//! delivers them to each subscriber — webhooks (`http`, `https`), e-mail (`mailto`), and
//! WebSocket connections (through a node's notification listener, or in process).
//!
//! - Each subscriber has its own queue of batches and one delivery at a time, so delivery is in
//!   order per subscriber, and a slow or dead endpoint only delays itself. A semaphore
//!   (`max_notifier_workers`) bounds deliveries in flight overall. Producers never wait.
//! - A batch is finished per subscriber only after delivery (or after every retry failed), so a
//!   crash re-delivers rather than loses (at least once).
//! - Retries follow spec §6.3 (all four backoff functions), on connection errors, timeouts, 429
//!   and 5xx — never on other 4xx. A delivery that exhausts its retries is counted on the
//!   subscription with its last error.
//! - Webhook bodies are signed: `X-Zaqar-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//!   "<t>.<body>" with the subscription's secret>` (see docs/notifications.md).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use tokio::sync::{mpsc, Notify, Semaphore};

use zaqar_core::model::{
    DeliveryOutcome, FinishedDelivery, NotifiedMessage, PendingNotification, Subscription,
};
use zaqar_core::secret::Secret;
use zaqar_core::service::crypto::Encryptor;
use zaqar_core::service::notifications::{Notifications, PushConnections};
use zaqar_core::service::subscriptions::{
    mailto_address, mailto_params, split_project, SourceKind,
};
use zaqar_core::store::DataStore;

/// How long a leased batch is reserved for this node (renewed while it is being delivered).
const LEASE_MS: i64 = 60_000;
/// Longest pause between looks at the outbox (other nodes' posts do not wake this node).
const POLL: Duration = Duration::from_secs(1);
/// Shortest time between two reads of the outbox after wake-ups: every post wakes the worker,
/// and this coalesces a burst of posts into one read.
const MIN_WAKE_GAP: Duration = Duration::from_millis(2);
/// The most finished deliveries recorded by one store call.
const FINISH_BATCH: usize = 1024;
/// Deliveries (subscriber x batch) held in memory at most; past it the worker stops leasing
/// and the backlog waits in the store, so a burst of posts cannot grow memory without bound,
/// and leasing never rescans a long run of batches already being delivered.
const MAX_IN_FLIGHT: usize = 10_000;

/// How e-mail leaves this server (`[notification] smtp_mode`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SmtpMode {
    /// Pipe the message to `smtp_command` (the reference's `third_part`).
    #[default]
    Command,
    /// Speak SMTP to `smtp_host` (the reference's `self_local`).
    Smtp,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SmtpTls {
    /// TLS from the first byte (the reference's `self_local`, port 465).
    #[default]
    Implicit,
    StartTls,
    None,
}

/// An e-mail template (subject, body with `{0}` source, `{1}` project, `{2}` link, sender).
#[derive(Debug, Clone, Default)]
pub struct EmailTemplate {
    pub topic: String,
    pub body: String,
    pub sender: String,
}

/// `[notification]` settings.
#[derive(Debug, Clone, Default)]
pub struct NotifierConfig {
    pub require_confirmation: bool,
    pub max_workers: usize,
    pub webhook_timeout_secs: u64,
    pub smtp_mode: SmtpMode,
    pub smtp_command: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_tls: SmtpTls,
    pub smtp_user: String,
    pub smtp_password: Secret,
    pub external_confirmation_url: Option<String>,
    /// Public base URL of the HTTP API, put in confirmation messages.
    pub public_url: Option<String>,
    pub confirmation_template: EmailTemplate,
    pub unsubscribe_template: EmailTemplate,
}

/// The retry policy of spec §6.3.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub retries_with_no_delay: u32,
    pub minimum_delay_retries: u32,
    pub minimum_delay: u64,
    pub maximum_delay: u64,
    pub maximum_delay_retries: u32,
    pub backoff: String,
    pub ignore_subscription_override: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries_with_no_delay: 3,
            minimum_delay_retries: 3,
            minimum_delay: 5,
            maximum_delay: 30,
            maximum_delay_retries: 3,
            backoff: "linear".into(),
            ignore_subscription_override: false,
        }
    }
}

impl RetryPolicy {
    fn from_value(v: Option<&Value>) -> Option<RetryPolicy> {
        let o = v?.as_object()?;
        if o.is_empty() {
            return None;
        }
        let d = RetryPolicy::default();
        let int = |k: &str, def: u64| o.get(k).and_then(Value::as_u64).unwrap_or(def);
        Some(RetryPolicy {
            retries_with_no_delay: int("retries_with_no_delay", d.retries_with_no_delay as u64)
                as u32,
            minimum_delay_retries: int("minimum_delay_retries", d.minimum_delay_retries as u64)
                as u32,
            minimum_delay: int("minimum_delay", d.minimum_delay),
            maximum_delay: int("maximum_delay", d.maximum_delay),
            maximum_delay_retries: int("maximum_delay_retries", d.maximum_delay_retries as u64)
                as u32,
            backoff: o
                .get("retry_backoff_function")
                .and_then(Value::as_str)
                .unwrap_or("linear")
                .to_string(),
            ignore_subscription_override: o
                .get("ignore_subscription_override")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    /// The effective policy (spec §6.3): the queue's if either says to ignore the
    /// subscription's, else the subscription's, else the queue's, else the defaults.
    pub fn effective(queue: Option<&Value>, subscription: Option<&Value>) -> RetryPolicy {
        let q = Self::from_value(queue);
        let s = Self::from_value(subscription);
        let ignore = q.as_ref().is_some_and(|p| p.ignore_subscription_override)
            || s.as_ref().is_some_and(|p| p.ignore_subscription_override);
        match (ignore, q, s) {
            (true, Some(q), _) => q,
            (true, None, _) => RetryPolicy::default(),
            (false, _, Some(s)) => s,
            (false, Some(q), None) => q,
            (false, None, None) => RetryPolicy::default(),
        }
    }

    /// The delays of the backoff phase (step 3 of §6.3), in seconds.
    pub fn backoff_delays(&self) -> Vec<u64> {
        const I: u64 = 5;
        let (min, max) = (
            self.minimum_delay,
            self.maximum_delay.max(self.minimum_delay),
        );
        let n = ((max - min) / I) as usize;
        let floor = |x: f64| (x + 1e-9).floor() as u64;
        match self.backoff.as_str() {
            "geometric" | "exponential" if n >= 2 && min > 0 => {
                let k = (max as f64 / min as f64).powf(1.0 / (n as f64 - 1.0));
                (1..=n)
                    .map(|a| {
                        if self.backoff == "geometric" {
                            floor(min as f64 * k.powi(a as i32 - 1))
                        } else {
                            floor(min as f64 / k * k.powi(a as i32))
                        }
                    })
                    .collect()
            }
            "arithmetic" if n >= 2 => {
                let delta = 2.0 * (max - min) as f64 / (n as f64 * (n as f64 - 1.0));
                (1..=n)
                    .map(|a| floor(min as f64 + ((a - 1) * a) as f64 * delta / 2.0))
                    .collect()
            }
            _ => (0..)
                .map(|i| min + i * I)
                .take_while(|d| *d < max)
                .collect(),
        }
    }

    /// Every pause before a retry, in order (the first attempt is immediate).
    pub fn schedule(&self) -> Vec<u64> {
        let mut s = vec![0; self.retries_with_no_delay as usize];
        s.extend(std::iter::repeat_n(
            self.minimum_delay,
            self.minimum_delay_retries as usize,
        ));
        s.extend(self.backoff_delays());
        s.extend(std::iter::repeat_n(
            self.maximum_delay,
            self.maximum_delay_retries as usize,
        ));
        s
    }
}

/// Why one attempt failed, and whether to try again.
#[derive(Debug)]
struct AttemptError {
    message: String,
    retry: bool,
}

struct Job {
    key: String,
    project: String,
    source: String,
    messages: Arc<Vec<NotifiedMessage>>,
    sub: Subscription,
}

pub struct Notifier {
    store: Arc<dyn DataStore>,
    encryptor: Option<Arc<Encryptor>>,
    signing_key: Option<Vec<u8>>,
    cfg: NotifierConfig,
    http: reqwest::Client,
    wake: Arc<Notify>,
    permits: Arc<Semaphore>,
    queues: Mutex<HashMap<String, mpsc::UnboundedSender<Job>>>,
    in_flight: Mutex<HashSet<(String, String)>>,
    /// Set when leasing stopped at [`MAX_IN_FLIGHT`].
    throttled: AtomicBool,
    /// Deliveries done, on their way to [`Notifier::finish_loop`].
    finished_tx: mpsc::UnboundedSender<FinishedDelivery>,
    finished_rx: Mutex<Option<mpsc::UnboundedReceiver<FinishedDelivery>>>,
    /// This node's WebSocket connections that receive pushed notifications.
    connections: Arc<PushConnections>,
    /// Tests: record retry pauses instead of sleeping them (controlled time).
    recorded_pauses: Mutex<Option<Vec<u64>>>,
    /// Trust-scoped tokens for `trust+http(s)` subscribers.
    keystone: Option<Arc<dyn zaqar_core::identity::IdentityProvider>>,
}

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
    pub fn new(
        store: Arc<dyn DataStore>,
        encryptor: Option<Arc<Encryptor>>,
        signing_key: Option<Vec<u8>>,
        cfg: NotifierConfig,
        keystone: Option<Arc<dyn zaqar_core::identity::IdentityProvider>>,
        wake: Arc<Notify>,
        connections: Arc<PushConnections>,
    ) -> Notifier {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(cfg.webhook_timeout_secs.max(1)))
            .connect_timeout(Duration::from_secs(cfg.webhook_timeout_secs.clamp(1, 10)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        let (finished_tx, finished_rx) = mpsc::unbounded_channel();
        Notifier {
            store,
            encryptor,
            signing_key,
            permits: Arc::new(Semaphore::new(cfg.max_workers.max(1))),
            cfg,
            http,
            wake,
            queues: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashSet::new()),
            throttled: AtomicBool::new(false),
            finished_tx,
            finished_rx: Mutex::new(Some(finished_rx)),
            connections,
            recorded_pauses: Mutex::new(None),
            keystone,
        }
    }

    /// Tests: retry pauses are recorded (see [`Notifier::recorded_pauses`]) instead of slept.
    #[doc(hidden)]
    pub fn record_pauses_instead_of_sleeping(&self) {
        *self.recorded_pauses.lock().unwrap() = Some(Vec::new());
    }

    #[doc(hidden)]
    pub fn recorded_pauses(&self) -> Vec<u64> {
        self.recorded_pauses
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_default()
    }

    async fn pause(&self, secs: u64) {
        if let Some(rec) = self.recorded_pauses.lock().unwrap().as_mut() {
            rec.push(secs);
            return;
        }
        tokio::time::sleep(Duration::from_secs(secs)).await;
    }

    /// Something may be waiting in the outbox.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Starts the delivery loop (one per process).
    pub fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        if let Some(rx) = self.finished_rx.lock().unwrap().take() {
            let me = self.clone();
            tokio::spawn(async move { me.finish_loop(rx).await });
        }
        let me = self.clone();
        tokio::spawn(async move { me.run().await })
    }

    async fn run(self: Arc<Self>) {
        let Some(_) = self.store.subscriptions() else {
            return;
        };
        let mut renew = tokio::time::interval(Duration::from_millis((LEASE_MS / 3) as u64));
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_read = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = self.wake.notified() => {
                    tokio::time::sleep_until(last_read + MIN_WAKE_GAP).await;
                }
                _ = tokio::time::sleep(POLL) => {}
                _ = renew.tick() => { self.renew_leases().await; continue; }
            }
            last_read = tokio::time::Instant::now();
            loop {
                let Some(subs) = self.store.subscriptions() else {
                    return;
                };
                if self.in_flight.lock().unwrap().len() >= MAX_IN_FLIGHT {
                    // The finisher wakes this loop once deliveries drain.
                    self.throttled.store(true, Ordering::Release);
                    break;
                }
                match subs.lease_notifications(64, LEASE_MS).await {
                    Ok(batch) if batch.is_empty() => break,
                    Ok(batch) => {
                        let n = batch.len();
                        for b in batch {
                            self.dispatch(b);
                        }
                        if n < 64 {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the notification outbox");
                        break;
                    }
                }
            }
        }
    }

    async fn renew_leases(&self) {
        let keys: HashSet<String> = self
            .in_flight
            .lock()
            .unwrap()
            .iter()
            .map(|(k, _)| k.clone())
            .collect();
        if let Some(subs) = self.store.subscriptions() {
            for k in keys {
                let _ = subs.renew_notification_lease(&k, LEASE_MS).await;
            }
        }
    }

    /// Hands each pending subscriber of a batch to that subscriber's queue.
    fn dispatch(self: &Arc<Self>, b: PendingNotification) {
        let messages = Arc::new(b.messages);
        for sub in b.subscribers {
            if !self
                .in_flight
                .lock()
                .unwrap()
                .insert((b.key.clone(), sub.id.clone()))
            {
                continue; // already queued here (a lease renewed or re-taken)
            }
            let job = Job {
                key: b.key.clone(),
                project: b.project.clone(),
                source: b.source.clone(),
                messages: messages.clone(),
                sub,
            };
            let mut queues = self.queues.lock().unwrap();
            let id = job.sub.id.clone();
            let job = match queues.get(&id) {
                Some(tx) => match tx.send(job) {
                    Ok(()) => continue,
                    Err(mpsc::error::SendError(job)) => job,
                },
                None => job,
            };
            let (tx, rx) = mpsc::unbounded_channel();
            let _ = tx.send(job);
            queues.insert(id.clone(), tx);
            let me = self.clone();
            tokio::spawn(async move { me.subscriber_loop(id, rx).await });
        }
    }

    async fn subscriber_loop(self: Arc<Self>, id: String, mut rx: mpsc::UnboundedReceiver<Job>) {
        loop {
            let job = match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
                Ok(Some(job)) => job,
                // Idle or closed: retire this subscriber's task.
                _ => {
                    let mut queues = self.queues.lock().unwrap();
                    if rx.is_empty() {
                        queues.remove(&id);
                        return;
                    }
                    continue;
                }
            };
            let outcome = self.deliver_job(&job).await;
            // Recorded by the finisher, together with whatever else finished meanwhile; this
            // subscriber goes on with its next batch at once.
            let _ = self.finished_tx.send(FinishedDelivery {
                key: job.key,
                subscription_id: job.sub.id,
                outcome,
            });
        }
    }

    /// Records finished deliveries in the store: everything that finished while the previous
    /// write was under way goes in one call, so the cost of recording is per write, not per
    /// subscriber (a post to a source with 100 subscribers finishes 100 deliveries).
    async fn finish_loop(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<FinishedDelivery>) {
        let mut buf = Vec::with_capacity(FINISH_BATCH);
        while rx.recv_many(&mut buf, FINISH_BATCH).await > 0 {
            let done = std::mem::take(&mut buf);
            let keys: Vec<(String, String)> = done
                .iter()
                .map(|d| (d.key.clone(), d.subscription_id.clone()))
                .collect();
            if let Some(subs) = self.store.subscriptions() {
                if let Err(e) = subs.finish_notifications(done).await {
                    // The batches stay pending and are delivered again once their lease
                    // lapses (at least once).
                    tracing::warn!(error = %e, "cannot record notification deliveries");
                }
            }
            let room = {
                let mut in_flight = self.in_flight.lock().unwrap();
                for k in &keys {
                    in_flight.remove(k);
                }
                in_flight.len() < MAX_IN_FLIGHT / 2
            };
            if room && self.throttled.swap(false, Ordering::AcqRel) {
                self.wake.notify_one();
            }
        }
    }

    fn plain_body(&self, project: &str, m: &NotifiedMessage) -> Option<Value> {
        if !m.encrypted {
            return serde_json::from_str(m.body.get()).ok();
        }
        let token: String = serde_json::from_str(m.body.get()).ok()?;
        let text = self.encryptor.as_ref()?.decrypt(project, &token).ok()?;
        serde_json::from_str(&text).ok()
    }

    async fn deliver_job(&self, job: &Job) -> DeliveryOutcome {
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

    async fn deliver_with_retries(
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

    /// A token acting for the creator of a `trust+` subscription.
    async fn trust_token(&self, sub: &Subscription) -> Result<String, AttemptError> {
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

    async fn post_webhook(
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

    async fn send_mail(
        &self,
        to: &str,
        from: &str,
        subject: &str,
        text: &str,
    ) -> Result<(), AttemptError> {
        use lettre::message::{header::ContentType, Mailbox};
        let perm = |m: String| AttemptError {
            message: m,
            retry: false,
        };
        let to: Mailbox = to
            .parse()
            .map_err(|e| perm(format!("bad recipient {to:?}: {e}")))?;
        let from: Mailbox = if from.is_empty() {
            "Zaqar Notifications <no-reply@localhost>"
                .parse()
                .expect("valid")
        } else {
            from.parse()
                .or_else(|_| format!("{from} <no-reply@localhost>").parse())
                .map_err(|e| perm(format!("bad sender {from:?}: {e}")))?
        };
        let msg = lettre::Message::builder()
            .from(from)
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(text.to_string())
            .map_err(|e| perm(format!("cannot build the e-mail: {e}")))?;
        match self.cfg.smtp_mode {
            SmtpMode::Command => self.send_with_command(&msg.formatted()).await,
            SmtpMode::Smtp => self.send_with_smtp(msg).await,
        }
    }

    async fn send_with_command(&self, raw: &[u8]) -> Result<(), AttemptError> {
        use tokio::io::AsyncWriteExt;
        let mut parts = self.cfg.smtp_command.split_whitespace();
        let Some(program) = parts.next() else {
            return Err(AttemptError {
                message: "[notification] smtp_command is empty".into(),
                retry: false,
            });
        };
        let mut child = tokio::process::Command::new(program)
            .args(parts)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| AttemptError {
                message: format!("cannot run {program}: {e}"),
                retry: true,
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(raw).await;
        }
        let out = child.wait_with_output().await.map_err(|e| AttemptError {
            message: format!("{program}: {e}"),
            retry: true,
        })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(AttemptError {
                message: format!(
                    "{program} exited with {}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                retry: true,
            })
        }
    }

    async fn send_with_smtp(&self, msg: lettre::Message) -> Result<(), AttemptError> {
        use lettre::transport::smtp::authentication::Credentials;
        use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
        let host = self.cfg.smtp_host.as_str();
        let builder = match self.cfg.smtp_tls {
            SmtpTls::Implicit => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
            SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
            SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                host,
            )),
        }
        .map_err(|e| AttemptError {
            message: format!("SMTP {host}: {e}"),
            retry: false,
        })?;
        let mut builder = builder
            .port(self.cfg.smtp_port)
            .timeout(Some(Duration::from_secs(
                self.cfg.webhook_timeout_secs.max(1),
            )));
        if !self.cfg.smtp_user.is_empty() {
            builder = builder.credentials(Credentials::new(
                self.cfg.smtp_user.clone(),
                self.cfg.smtp_password.0.clone(),
            ));
        }
        builder
            .build()
            .send(msg)
            .await
            .map(|_| ())
            .map_err(|e| AttemptError {
                retry: !e.is_permanent(),
                message: format!("SMTP {host}:{}: {e}", self.cfg.smtp_port),
            })
    }

    // ----- WebSocket connections --------------------------------------------------------

    fn push_local(&self, conn_id: &str, payload: &Value) -> Result<(), AttemptError> {
        let mut frame = payload.clone();
        if let Some(o) = frame.as_object_mut() {
            o.remove("message_id");
        }
        if self.connections.push_local_frame(conn_id, frame) {
            Ok(())
        } else {
            Err(AttemptError {
                message: "the WebSocket connection is not reading".into(),
                retry: true,
            })
        }
    }

    // ----- confirmation (spec §6.4) ------------------------------------------------------

    /// Sends a subscription confirmation (or, with `subscribe = false`, an unsubscribe
    /// confirmation) to the subscriber, with a pre-signed link to `PUT .../confirm`.
    async fn confirm(&self, project: &str, kind: SourceKind, sub: &Subscription, subscribe: bool) {
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

#[async_trait::async_trait]
impl Notifications for Notifier {
    fn wake(&self) {
        Notifier::wake(self);
    }

    async fn send_confirmation(
        &self,
        project: &str,
        kind: SourceKind,
        sub: &Subscription,
        subscribe: bool,
    ) {
        self.confirm(project, kind, sub, subscribe).await;
    }
}

/// The real project of a batch's stored project (topics live in a shadow project).
pub fn real_project(stored: &str) -> &str {
    split_project(stored).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_functions_match_the_spec() {
        let p = |f: &str| RetryPolicy {
            backoff: f.into(),
            ..Default::default()
        };
        assert_eq!(p("linear").backoff_delays(), vec![5, 10, 15, 20, 25]);
        assert_eq!(p("geometric").backoff_delays(), vec![5, 7, 12, 19, 30]);
        assert_eq!(p("exponential").backoff_delays(), vec![5, 7, 12, 19, 30]);
        assert_eq!(p("arithmetic").backoff_delays(), vec![5, 7, 12, 20, 30]);
        assert_eq!(
            p("linear").schedule(),
            vec![0, 0, 0, 5, 5, 5, 5, 10, 15, 20, 25, 30, 30, 30]
        );
    }

    #[test]
    fn effective_policy() {
        let q = json!({"retries_with_no_delay": 1});
        let s = json!({"retries_with_no_delay": 2});
        assert_eq!(
            RetryPolicy::effective(Some(&q), Some(&s)).retries_with_no_delay,
            2
        );
        assert_eq!(
            RetryPolicy::effective(Some(&q), None).retries_with_no_delay,
            1
        );
        let q_ignore = json!({"retries_with_no_delay": 1, "ignore_subscription_override": true});
        assert_eq!(
            RetryPolicy::effective(Some(&q_ignore), Some(&s)).retries_with_no_delay,
            1
        );
        assert_eq!(RetryPolicy::effective(None, None), RetryPolicy::default());
    }

    #[test]
    fn mailto_parsing() {
        assert_eq!(
            mailto_address("mailto:a%40b@example.com?subject=Hi"),
            "a@b@example.com"
        );
        assert_eq!(mailto_address("mailto:ops@example.com"), "ops@example.com");
        let p = mailto_params("mailto:x@y?Subject=Hello%20there&cc=z");
        assert_eq!(p["subject"], "Hello there");
    }

    #[test]
    fn webhook_signatures() {
        let s = sign_webhook("k", 1700000000, b"{}");
        assert!(s.starts_with("t=1700000000,v1="));
        assert_eq!(s.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(s, sign_webhook("other", 1700000000, b"{}"));
    }
}
