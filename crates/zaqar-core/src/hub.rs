//! Long-polling wake-ups: waiters register interest in a queue, writers signal it.
//!
//! A waiter costs one registration in a map and one `Notified` future: no thread, no timer
//! beyond its own deadline, no polling loop. A signal wakes every waiter of that queue. Drivers
//! shared by several nodes relay signals between nodes by calling [`Hub::notify`] for events
//! that happened elsewhere.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Notify;

type Key = (String, String);

#[derive(Default)]
pub struct Hub {
    queues: Mutex<HashMap<Key, Weak<Notify>>>,
    /// Signalled (once, coalescing) on every notify of any queue: the notification worker's
    /// wake-up, so that messages posted through other nodes are delivered without waiting for
    /// its poll.
    writes: Arc<Notify>,
}

impl Hub {
    pub fn new() -> Arc<Hub> {
        Arc::new(Hub::default())
    }

    /// The signal of a queue; keep the `Arc` while waiting.
    pub fn watch(&self, project: &str, queue: &str) -> Arc<Notify> {
        let mut map = self.queues.lock().unwrap();
        let key = (project.to_string(), queue.to_string());
        if let Some(n) = map.get(&key).and_then(Weak::upgrade) {
            return n;
        }
        // Drop entries whose waiters are all gone before the map grows.
        if map.len() >= 1024 && map.len().is_power_of_two() {
            map.retain(|_, w| w.strong_count() > 0);
        }
        let n = Arc::new(Notify::new());
        map.insert(key, Arc::downgrade(&n));
        n
    }

    /// The signal every [`Hub::notify`] also gives, whatever the queue.
    pub fn writes(&self) -> Arc<Notify> {
        self.writes.clone()
    }

    /// Wakes every current waiter of the queue, and signals [`Hub::writes`].
    pub fn notify(&self, project: &str, queue: &str) {
        self.writes.notify_one();
        let n = {
            let map = self.queues.lock().unwrap();
            map.get(&(project.to_string(), queue.to_string()))
                .and_then(Weak::upgrade)
        };
        if let Some(n) = n {
            n.notify_waiters();
        }
    }

    /// Number of queues with live waiters (for metrics and tests).
    pub fn watched_queues(&self) -> usize {
        self.queues
            .lock()
            .unwrap()
            .values()
            .filter(|w| w.strong_count() > 0)
            .count()
    }
}
