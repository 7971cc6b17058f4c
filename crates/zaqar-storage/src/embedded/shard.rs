//! One shard of the embedded store: a redb file plus a writer thread that applies write jobs in
//! group commits.
//!
//! Every write goes through [`Shard::write`]: the job is queued to the writer thread, which drains
//! whatever jobs are waiting, runs them one after another inside a single write transaction, and
//! commits once (one fsync) for all of them. Only then does each caller get its result, so an
//! acknowledged write is on disk, and concurrent writers share the cost of the fsync.
//!
//! Rule for jobs: a job that returns a *domain* error (`Invalid`, `NotFound`, `DeleteForbidden`,
//! ...) must not have changed anything before returning it. A job that returns `Unavailable` or
//! `Internal` (a storage failure, possibly after partial changes), or panics, aborts the whole
//! transaction: every job of that batch fails with 503 and nothing of the batch is kept.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use redb::{Database, ReadTransaction, WriteTransaction};
use tokio::sync::{mpsc, oneshot};

use zaqar_core::error::{Error, Result};

/// The most jobs committed together.
const MAX_BATCH: usize = 512;
/// Jobs waiting for the writer before callers are made to wait for room.
const QUEUE_DEPTH: usize = 8192;

pub(crate) fn storage_error(e: impl std::fmt::Display) -> Error {
    tracing::error!(error = %e, "embedded store failure");
    Error::Unavailable(
        "The storage backend failed to complete the operation. Please try again in a few seconds."
            .into(),
    )
}

fn stopped() -> Error {
    Error::Unavailable("The storage backend is shutting down.".into())
}

trait Job: Send {
    fn run(self: Box<Self>, txn: &WriteTransaction) -> Box<dyn Done>;
    fn fail(self: Box<Self>, e: Error);
}

trait Done: Send {
    /// Whether the job hit a storage failure that makes the transaction unusable.
    fn poisoned(&self) -> bool;
    fn deliver(self: Box<Self>, commit: Result<()>);
}

struct TypedJob<F, R> {
    f: F,
    tx: oneshot::Sender<Result<R>>,
}

struct TypedDone<R> {
    result: Result<R>,
    tx: oneshot::Sender<Result<R>>,
}

impl<F, R> Job for TypedJob<F, R>
where
    F: FnOnce(&WriteTransaction) -> Result<R> + Send + 'static,
    R: Send + 'static,
{
    fn run(self: Box<Self>, txn: &WriteTransaction) -> Box<dyn Done> {
        let TypedJob { f, tx } = *self;
        let result = catch_unwind(AssertUnwindSafe(|| f(txn))).unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %what, "embedded store write job panicked");
            Err(Error::Internal(
                "The storage operation failed unexpectedly.".into(),
            ))
        });
        Box::new(TypedDone { result, tx })
    }

    fn fail(self: Box<Self>, e: Error) {
        let _ = self.tx.send(Err(e));
    }
}

impl<R: Send + 'static> Done for TypedDone<R> {
    fn poisoned(&self) -> bool {
        matches!(self.result, Err(Error::Unavailable(_) | Error::Internal(_)))
    }

    fn deliver(self: Box<Self>, commit: Result<()>) {
        let out = match commit {
            Ok(()) => self.result,
            Err(e) => Err(e),
        };
        let _ = self.tx.send(out);
    }
}

enum Msg {
    Job(Box<dyn Job>),
    Shutdown,
}

pub(crate) struct Shard {
    pub(crate) db: Arc<Database>,
    tx: mpsc::Sender<Msg>,
    /// How many write transactions were aborted or failed to commit: a job may keep state
    /// derived from its transaction (see `sub_cache::SubCache`) only together with this count.
    aborts: Arc<AtomicU64>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Shard {
    pub(crate) fn open(path: &Path, cache_bytes: usize, index: usize) -> Result<Shard> {
        let db = redb::Builder::new()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(|e| {
                Error::Unavailable(format!(
                    "cannot open the embedded store file {}: {e}",
                    path.display()
                ))
            })?;
        let db = Arc::new(db);
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let writer_db = db.clone();
        let aborts = Arc::new(AtomicU64::new(0));
        let writer_aborts = aborts.clone();
        let writer = std::thread::Builder::new()
            .name(format!("zaqar-store-{index}"))
            .spawn(move || writer_loop(writer_db, rx, &writer_aborts))
            .map_err(|e| Error::Internal(format!("cannot start the store writer: {e}")))?;
        Ok(Shard {
            db,
            tx,
            aborts,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Runs `f` inside a group-committed write transaction; resolves once the commit is durable.
    pub(crate) async fn write<R, F>(&self, f: F) -> Result<R>
    where
        F: FnOnce(&WriteTransaction) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Job(Box::new(TypedJob { f, tx })))
            .await
            .map_err(|_| stopped())?;
        rx.await
            .map_err(|_| Error::Internal("The storage writer stopped unexpectedly.".into()))?
    }

    /// The shard's count of aborted transactions (read it inside a write job).
    pub(crate) fn aborts(&self) -> Arc<AtomicU64> {
        self.aborts.clone()
    }

    /// A consistent snapshot of committed data.
    pub(crate) fn read(&self) -> Result<ReadTransaction> {
        use redb::ReadableDatabase;
        self.db.begin_read().map_err(storage_error)
    }

    /// Lets queued jobs finish, then stops the writer thread.
    pub(crate) async fn shutdown(&self) {
        let _ = self.tx.send(Msg::Shutdown).await;
        let handle = self.writer.lock().unwrap().take();
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
    }
}

fn writer_loop(db: Arc<Database>, mut rx: mpsc::Receiver<Msg>, aborts: &AtomicU64) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    loop {
        let mut shutdown = false;
        match rx.blocking_recv() {
            Some(Msg::Job(j)) => batch.push(j),
            Some(Msg::Shutdown) | None => shutdown = true,
        }
        while !shutdown && batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Job(j)) => batch.push(j),
                Ok(Msg::Shutdown) => shutdown = true,
                Err(_) => break,
            }
        }
        if shutdown {
            // Refuse new jobs, but finish every job already accepted.
            rx.close();
            while let Ok(m) = rx.try_recv() {
                if let Msg::Job(j) = m {
                    batch.push(j);
                }
            }
        }
        if !batch.is_empty() && commit_batch(&db, std::mem::take(&mut batch)).is_err() {
            aborts.fetch_add(1, Ordering::AcqRel);
        }
        if shutdown {
            return;
        }
    }
}

/// Runs and commits one batch; `Err` when nothing of it was kept.
fn commit_batch(db: &Database, jobs: Vec<Box<dyn Job>>) -> Result<()> {
    let txn = match db.begin_write() {
        Ok(t) => t,
        Err(e) => {
            let err = storage_error(e);
            for j in jobs {
                j.fail(err.clone());
            }
            return Err(err);
        }
    };
    let mut done: Vec<Box<dyn Done>> = Vec::with_capacity(jobs.len());
    let mut poisoned = false;
    for j in jobs {
        if poisoned {
            j.fail(storage_error("transaction aborted by an earlier failure"));
            continue;
        }
        let d = j.run(&txn);
        poisoned |= d.poisoned();
        done.push(d);
    }
    let outcome = if poisoned {
        let _ = txn.abort();
        Err(storage_error("transaction aborted"))
    } else {
        txn.commit().map_err(storage_error)
    };
    for d in done {
        d.deliver(outcome.clone());
    }
    outcome
}
