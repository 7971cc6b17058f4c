//! Long polling: the `wait` parameter of message listings and claims, and the loop that sleeps
//! on a queue's signal until something arrives or the wait runs out.

use std::time::Duration;

use super::Service;
use crate::error::{Error, Result};
use crate::model::QueueRef;

impl Service {
    /// Validates a `wait` parameter (seconds).
    pub(super) fn check_wait(&self, wait: Option<i64>) -> Result<Option<Duration>> {
        match wait {
            None | Some(0) => Ok(None),
            Some(w) if w < 0 || w > self.options.max_wait => Err(Error::invalid(format!(
                "wait must be at least 0 and no greater than {} seconds.",
                self.options.max_wait
            ))),
            Some(w) => Ok(Some(Duration::from_secs(w as u64))),
        }
    }

    /// Runs `attempt` until its result is not empty or `wait` runs out, sleeping on the queue's
    /// signal in between (no polling).
    pub(super) async fn long_poll<T, F, Fut>(
        &self,
        q: QueueRef<'_>,
        wait: Option<Duration>,
        mut attempt: F,
        empty: impl Fn(&T) -> bool,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let Some(wait) = wait else {
            return attempt().await;
        };
        let deadline = tokio::time::Instant::now() + wait;
        let signal = self.hub.watch(q.project, q.name);
        loop {
            let notified = signal.notified();
            tokio::pin!(notified);
            // Register before looking, so a post between the look and the sleep is not missed.
            notified.as_mut().enable();
            let out = attempt().await?;
            if !empty(&out) {
                return Ok(out);
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(out),
            }
        }
    }
}
