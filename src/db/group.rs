//! Group commit: the writes of one file that arrive while a transaction is running are
//! run together in the next one, each inside its own SAVEPOINT, and committed once.
//!
//! Why: SQLite has one writer per file, and a commit costs far more than most requests'
//! statements (the WAL frames of every page the transaction touched, the checkpoints).
//! Requests that share a commit share those pages and that cost. Nothing changes for a
//! caller: its closure sees the effects of the writes before it (it runs after them, in
//! order), its own error rolls back only its own savepoint, and it gets its result only
//! after the commit that made it durable. If SQLite rolls the whole transaction back
//! under a failing write (an interrupt, a full disk), the writes batched before it were
//! not acknowledged yet: they fail too, with a retryable error, and nothing is lost.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::{Semaphore, oneshot};
use tracing::Span;

use super::{Pool, busy, closed, with_deadline};
use crate::error::{Error, Result};

/// At most this many writes share one transaction (bounds the latency of the first).
const MAX_BATCH: usize = 64;

/// What the leader does with a write after the commit: hand over its result, or (`Some`)
/// the reason its work did not survive or never ran.
type Finish = Box<dyn FnOnce(Option<Error>) + Send>;
/// One queued write: runs in the batch's transaction (`Some`), or is refused without
/// running (`None`), and returns its [`Finish`].
type Job = Box<dyn FnOnce(Option<&Connection>) -> Finish + Send>;

/// Why a write whose own work succeeded is not acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lost {
    /// The commit failed (e.g. the disk is full).
    CommitFailed { storage_full: bool },
    /// Another write of the batch made SQLite roll the whole transaction back.
    RolledBack,
}

impl Lost {
    fn error(self) -> Error {
        match self {
            Lost::CommitFailed { storage_full: true } => {
                Error::Io(std::io::Error::from(std::io::ErrorKind::StorageFull))
            }
            Lost::CommitFailed {
                storage_full: false,
            } => Error::Unavailable {
                detail: "the write could not be committed; try again".into(),
                retry_after_secs: 1,
            },
            Lost::RolledBack => Error::Unavailable {
                detail: "the write was rolled back with another request's failure; try again"
                    .into(),
                retry_after_secs: 1,
            },
        }
    }
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// A leader task is draining the queue.
    leading: bool,
}

/// The per-file writer: a queue and the leader that drains it.
pub struct Writer {
    queue: Arc<Mutex<Queue>>,
}

impl Default for Writer {
    fn default() -> Self {
        Self {
            queue: Arc::new(Mutex::new(Queue::default())),
        }
    }
}

/// What the leader needs of the file.
#[derive(Clone)]
pub struct Target {
    pub pool: Pool,
    pub permits: Arc<Semaphore>,
    pub lock: Arc<tokio::sync::Mutex<()>>,
    pub statement_timeout: Duration,
}

impl Writer {
    /// Queue `f` and wait for the commit that makes it durable.
    pub async fn write<T, F>(&self, target: &Target, f: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let span = Span::current();
        let job: Job = Box::new(move |conn: Option<&Connection>| {
            let out = conn.map(|c| span.in_scope(|| in_savepoint(c, f)));
            Box::new(move |fate: Option<Error>| {
                let result = match (out, fate) {
                    (Some(Err(e)), _) => Err(e),
                    (Some(Ok(v)), None) => Ok(v),
                    (_, Some(e)) => Err(e),
                    (None, None) => Err(Error::Other(anyhow::anyhow!("the write did not run"))),
                };
                let _ = tx.send(result);
            })
        });
        let lead = {
            let mut q = lock(&self.queue);
            q.jobs.push_back(job);
            !std::mem::replace(&mut q.leading, true)
        };
        if lead {
            // A task of its own: a cancelled request must not strand the queue.
            tokio::spawn(drain(self.queue.clone(), target.clone()));
        }
        rx.await.map_err(|_| {
            Error::Other(anyhow::anyhow!("the write was dropped before it finished"))
        })?
    }
}

#[cfg(test)]
impl Writer {
    /// Writes waiting for the next batch.
    pub fn queued(&self) -> usize {
        lock(&self.queue).jobs.len()
    }
}

fn lock(q: &Mutex<Queue>) -> std::sync::MutexGuard<'_, Queue> {
    // The queue holds no invariant a panic could break halfway.
    q.lock().unwrap_or_else(|p| p.into_inner())
}

/// Run batches until the queue is empty. Between batches the file's writer lock is
/// released, so an online backup waiting for it gets its turn (tokio's mutex is fair).
async fn drain(queue: Arc<Mutex<Queue>>, target: Target) {
    loop {
        let guard = target.lock.clone().lock_owned().await;
        let jobs: Vec<Job> = {
            let mut q = lock(&queue);
            if q.jobs.is_empty() {
                q.leading = false;
                return;
            }
            let n = q.jobs.len().min(MAX_BATCH);
            q.jobs.drain(..n).collect()
        };
        // How many writes shared a commit (no tenant label: one series for the process).
        metrics::histogram!("erpd_write_batch_size").record(jobs.len() as f64);
        let permit = match target.permits.clone().acquire_owned().await {
            Ok(p) => p,
            Err(e) => {
                // The file is closing: every queued write fails the same way.
                for job in jobs {
                    fail(job, closed(&e));
                }
                continue;
            }
        };
        let t = target.clone();
        let span = Span::current();
        // A panic cannot escape run_batch (jobs are unwound inside their savepoint), and
        // if the thread died anyway its jobs' senders drop and their callers get 500s.
        let _ = tokio::task::spawn_blocking(move || span.in_scope(|| run_batch(&t, jobs))).await;
        drop(permit);
        drop(guard);
    }
}

/// Refuse a job without running it; its caller gets `err`.
fn fail(job: Job, err: Error) {
    job(None)(Some(err));
}

fn run_batch(t: &Target, jobs: Vec<Job>) {
    let conn = match t.pool.get() {
        Ok(c) => c,
        Err(e) => {
            let err = busy(e);
            let detail = err.to_string();
            for job in jobs {
                fail(
                    job,
                    Error::Unavailable {
                        detail: detail.clone(),
                        retry_after_secs: 1,
                    },
                );
            }
            return;
        }
    };
    let mut pending: Vec<Finish> = Vec::with_capacity(jobs.len());
    let mut jobs = jobs.into_iter();
    loop {
        if let Err(e) = control(&conn, "BEGIN IMMEDIATE") {
            tracing::error!(error = %e, "could not begin a write transaction");
            let storage_full = e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull);
            // Run nothing outside a transaction: the rest are told to retry.
            for job in jobs.by_ref() {
                fail(job, Lost::CommitFailed { storage_full }.error());
            }
            return;
        }
        let mut restart = false;
        for job in jobs.by_ref() {
            // (If the time limit cannot even be set, the job is dropped unrun and its
            // caller sees a failed write.)
            let Ok(finish) = with_deadline(&conn, t.statement_timeout, |c| Ok(job(Some(c)))) else {
                continue;
            };
            pending.push(finish);
            if conn.is_autocommit() {
                // SQLite rolled the whole transaction back under this write (interrupt,
                // I/O error, full disk): the writes before it are gone as well.
                for f in pending.drain(..) {
                    f(Some(Lost::RolledBack.error()));
                }
                restart = true;
                break;
            }
        }
        if restart {
            continue;
        }
        let lost = match control(&conn, "COMMIT") {
            Ok(()) => None,
            Err(e) => {
                tracing::error!(error = %e, "a group commit failed");
                let storage_full = e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull);
                let _ = conn.execute_batch("ROLLBACK");
                Some(Lost::CommitFailed { storage_full })
            }
        };
        for f in pending.drain(..) {
            f(lost.map(Lost::error));
        }
        return;
    }
}

/// Run one of the fixed transaction-control statements (prepared once per connection:
/// they run several times per write).
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Run `f` inside a savepoint: released on `Ok`, rolled back on `Err` or panic.
fn in_savepoint<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    control(conn, "SAVEPOINT erpd_write")?;
    let out = match std::panic::catch_unwind(AssertUnwindSafe(|| f(conn))) {
        Ok(out) => out,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(Error::Other(anyhow::anyhow!("a write panicked: {what}")))
        }
    };
    if conn.is_autocommit() {
        // SQLite already rolled everything back; there is no savepoint left.
        return out;
    }
    if out.is_err() {
        control(conn, "ROLLBACK TO erpd_write")?;
    }
    control(conn, "RELEASE erpd_write")?;
    out
}
