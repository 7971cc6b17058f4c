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

mod config;
mod confirm;
mod deliver;
mod email;
mod push;
mod retry;
mod webhook;

pub use config::{EmailTemplate, NotifierConfig, SmtpMode, SmtpTls};
pub use retry::RetryPolicy;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, Notify, Semaphore};

use zaqar_core::model::{FinishedDelivery, NotifiedMessage, PendingNotification, Subscription};
use zaqar_core::service::crypto::Encryptor;
use zaqar_core::service::notifications::{Notifications, PushConnections};
use zaqar_core::service::subscriptions::{split_project, SourceKind};
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
