//! `Db`: one SQLite file behind a small r2d2 pool, used from async code.
//!
//! Every call runs on tokio's blocking pool (never on a worker thread), carries the
//! caller's tracing span, and is bounded three ways: a per-file concurrency limit (so a hot
//! tenant cannot take every blocking thread), a per-file writer lock (SQLite has one writer
//! per file; queueing writers here beats spinning on `SQLITE_BUSY`), and a statement time
//! limit enforced with SQLite's progress handler.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags};
use scheduled_thread_pool::ScheduledThreadPool;
use tokio::sync::{Mutex, Semaphore};
use tracing::Span;

use crate::error::{Error, Result};

mod group;

pub type Pool = r2d2::Pool<SqliteConnectionManager>;

/// How long a statement waits for another connection's lock before `SQLITE_BUSY`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How connections to one file are made and bounded. Shared by every tenant pool.
#[derive(Clone, Debug)]
pub struct DbOptions {
    /// `synchronous=FULL` fsyncs the WAL on every commit (power-loss durable);
    /// `NORMAL` is durable against a process crash, which is the default promise.
    pub synchronous_full: bool,
    /// Connections per file: also the per-file concurrency limit.
    pub max_connections: u32,
    /// Page cache per connection in KiB: the memory knob (SQLITE-NOTES C1/C2).
    pub cache_kib: u32,
    /// Runaway statements are interrupted after this long.
    pub statement_timeout: Duration,
    /// How long a checkout waits for a connection before failing with 503.
    pub checkout_timeout: Duration,
    /// Per-file size quota (`PRAGMA max_page_count`): a write that would grow the file
    /// past it fails with SQLITE_FULL (507); reads keep working. `None`: unlimited.
    pub max_file_bytes: Option<u64>,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            synchronous_full: false,
            max_connections: 4,
            cache_kib: 2048,
            statement_timeout: Duration::from_secs(10),
            checkout_timeout: Duration::from_secs(5),
            max_file_bytes: None,
        }
    }
}

/// Open one connection with erpd's pragmas, outside any pool (CLI, provisioning, checks).
pub fn open_connection(path: &Path, opts: &DbOptions) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    apply_pragmas(&conn, opts)?;
    Ok(conn)
}

/// Create (or open) a file, e.g. the platform catalog.
pub fn create_connection(path: &Path, opts: &DbOptions) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    apply_pragmas(&conn, opts)?;
    Ok(conn)
}

/// Prepared statements kept per connection. rusqlite's default (16) is far below the
/// distinct statements one document request runs (an order's create + confirm touches
/// ~40), so the cache thrashed and every statement was parsed again on every request.
const STATEMENT_CACHE: usize = 160;

fn apply_pragmas(conn: &Connection, opts: &DbOptions) -> rusqlite::Result<()> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let sync = if opts.synchronous_full {
        "FULL"
    } else {
        "NORMAL"
    };
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous={sync}; PRAGMA foreign_keys=ON; \
         PRAGMA cache_size=-{}; PRAGMA temp_store=MEMORY;",
        opts.cache_kib
    ))?;
    // Defence in depth against absurd statements built from input.
    conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_SQL_LENGTH, 1_000_000)?;
    conn.set_limit(
        rusqlite::limits::Limit::SQLITE_LIMIT_VARIABLE_NUMBER,
        10_000,
    )?;
    if let Some(bytes) = opts.max_file_bytes {
        let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let pages = (bytes / page_size.max(512) as u64).max(1);
        // SQLite never lowers the limit below the file's current size: a file already
        // over quota stays readable and refuses growth.
        conn.query_row(&format!("PRAGMA max_page_count={pages}"), [], |_| Ok(()))?;
    }
    Ok(())
}

/// Build a lazy pool for one existing file. No connection is opened until first use, and
/// all pools share one scheduler thread pool (r2d2's default is 3 threads per pool).
pub fn build_pool(path: &Path, opts: &DbOptions, scheduler: Arc<ScheduledThreadPool>) -> Pool {
    let init_opts = opts.clone();
    let manager = SqliteConnectionManager::file(path)
        .with_flags(OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .with_init(move |c| apply_pragmas(c, &init_opts));
    r2d2::Pool::builder()
        .max_size(opts.max_connections)
        .min_idle(Some(0))
        .test_on_check_out(false)
        .connection_timeout(opts.checkout_timeout)
        .idle_timeout(Some(Duration::from_secs(120)))
        .thread_pool(scheduler)
        .build_unchecked(manager)
}

/// An async handle on one SQLite file. Cheap to share behind an `Arc`.
pub struct Db {
    pool: Pool,
    /// Bounds concurrent blocking work on this file (readers and the writer).
    permits: Arc<Semaphore>,
    /// Held by the group-commit leader while it runs a batch (and by an online backup):
    /// writers never contend inside SQLite.
    writer: Arc<Mutex<()>>,
    /// The queue of writes waiting for the next group commit.
    group: group::Writer,
    statement_timeout: Duration,
}

impl Db {
    pub fn new(pool: Pool, opts: &DbOptions) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(opts.max_connections as usize)),
            writer: Arc::new(Mutex::new(())),
            group: group::Writer::default(),
            statement_timeout: opts.statement_timeout,
            pool,
        }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn clone_pool(&self) -> Pool {
        self.pool.clone()
    }

    /// Run `f` inside one read transaction (all reads of a request see one snapshot and
    /// pay the transaction overhead once; SQLITE-NOTES R4).
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let _permit = self.permits.acquire().await.map_err(|e| closed(&e))?;
        let pool = self.pool.clone();
        let limit = self.statement_timeout;
        blocking(move || {
            let conn = pool.get().map_err(busy)?;
            with_deadline(&conn, limit, |conn| {
                let tx = conn.unchecked_transaction()?;
                let out = f(&tx)?;
                tx.finish()?;
                Ok(out)
            })
        })
        .await
    }

    /// Run `f` in a `BEGIN IMMEDIATE` transaction, committed when `f` returns `Ok` (and
    /// rolled back when it returns `Err`). Writes arriving together share one commit
    /// (see [`group`]); `f` returns only once its commit is durable.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let target = group::Target {
            pool: self.pool.clone(),
            permits: self.permits.clone(),
            lock: self.writer.clone(),
            statement_timeout: self.statement_timeout,
        };
        self.group.write(&target, f).await
    }

    /// Run `f` with a plain connection (no transaction): checkpoints, `quick_check`.
    pub async fn with_conn<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let _permit = self.permits.acquire().await.map_err(|e| closed(&e))?;
        let pool = self.pool.clone();
        let limit = self.statement_timeout;
        blocking(move || {
            let conn = pool.get().map_err(busy)?;
            with_deadline(&conn, limit, f)
        })
        .await
    }

    /// Run `f` on a pooled connection (no transaction, no statement time limit) holding
    /// this file's writer lock. `f` gets the lock as a [`WriterLock`] and drops it as soon
    /// as writers may continue: an online backup needs writers held off only while it
    /// checkpoints and pins its snapshot, not while it copies.
    pub async fn with_writer_lock<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Connection, WriterLock) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let lock = WriterLock {
            _guard: self.writer.clone().lock_owned().await,
        };
        let _permit = self.permits.acquire().await.map_err(|e| closed(&e))?;
        let pool = self.pool.clone();
        blocking(move || {
            let conn = pool.get().map_err(busy)?;
            f(&conn, lock)
        })
        .await
    }

    /// Blocking: checkpoint the WAL into the main file and truncate it. Used on eviction
    /// and shutdown so the closed file is complete on its own.
    pub fn checkpoint_blocking(&self) -> Result<()> {
        let conn = self.pool.get().map_err(busy)?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

/// This process's writer lock on one file, held until dropped (see
/// [`Db::with_writer_lock`]).
pub struct WriterLock {
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

fn with_deadline<T>(
    conn: &Connection,
    limit: Duration,
    f: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    let deadline = Instant::now() + limit;
    // Checked every few thousand VM steps: cheap, and bounds a runaway query.
    conn.progress_handler(4_000, Some(move || Instant::now() > deadline))?;
    let out = f(conn);
    conn.progress_handler(0, None::<fn() -> bool>)?;
    out
}

fn busy(e: r2d2::Error) -> Error {
    tracing::warn!(error = %e, "connection checkout timed out");
    Error::Unavailable {
        detail: "tenant is busy; try again".into(),
        retry_after_secs: 1,
    }
}

fn closed(_: &tokio::sync::AcquireError) -> Error {
    Error::Unavailable {
        detail: "tenant is closing".into(),
        retry_after_secs: 1,
    }
}

/// Run blocking work on tokio's blocking pool, inside the caller's span; re-raise panics.
pub async fn blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    let span = Span::current();
    match tokio::task::spawn_blocking(move || span.in_scope(f)).await {
        Ok(out) => out,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(Error::Other(anyhow::anyhow!(
            "blocking task cancelled: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let opts = DbOptions {
            statement_timeout: Duration::from_millis(200),
            ..Default::default()
        };
        create_connection(&path, &opts).unwrap();
        let pool = build_pool(&path, &opts, Arc::new(ScheduledThreadPool::new(1)));
        (dir, Db::new(pool, &opts))
    }

    #[tokio::test]
    async fn write_commits_on_ok_and_rolls_back_on_err() {
        let (_dir, db) = temp_db();
        db.write(|tx| Ok(tx.execute_batch("CREATE TABLE t (x INTEGER)")?))
            .await
            .unwrap();
        db.write(|tx| Ok(tx.execute("INSERT INTO t VALUES (1)", []).map(|_| ())?))
            .await
            .unwrap();
        let failed: Result<()> = db
            .write(|tx| {
                tx.execute("INSERT INTO t VALUES (2)", [])?;
                Err(Error::Conflict("no".into()))
            })
            .await;
        assert!(failed.is_err());
        let n: i64 = db
            .read(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(n, 1);
    }

    #[tokio::test]
    async fn runaway_statements_are_interrupted() {
        let (_dir, db) = temp_db();
        let r = db
            .read(|c| {
                Ok(c.query_row(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n) SELECT count(*) FROM n",
                    [],
                    |r| r.get::<_, i64>(0),
                )?)
            })
            .await;
        let err = r.unwrap_err();
        assert_eq!(err.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_saturated_tenant_does_not_hold_up_another() {
        let (_a_dir, a) = temp_db();
        let (_b_dir, b) = temp_db();
        let a = Arc::new(a);
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = Arc::new(std::sync::Mutex::new(release_rx));
        // Occupy every connection of tenant A with blocked reads.
        let mut holders = Vec::new();
        for _ in 0..DbOptions::default().max_connections {
            let (a, rx) = (a.clone(), release_rx.clone());
            holders.push(tokio::spawn(async move {
                a.read(move |_| {
                    let _ = rx.lock().unwrap().recv();
                    Ok(())
                })
                .await
            }));
        }
        while a.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        // A is saturated: its next call queues in async land, not on a blocking thread...
        let queued = tokio::spawn({
            let a = a.clone();
            async move {
                a.read(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
                    .await
            }
        });
        // ...while B is served.
        let one = b
            .read(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
            .await
            .unwrap();
        assert_eq!(one, 1);
        assert!(!queued.is_finished());
        for _ in 0..holders.len() {
            release_tx.send(()).unwrap();
        }
        for h in holders {
            h.await.unwrap().unwrap();
        }
        assert_eq!(queued.await.unwrap().unwrap(), 1);
    }

    async fn count(db: &Db) -> i64 {
        db.read(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?))
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_queued_behind_a_running_one_share_one_commit() {
        let (_dir, db) = temp_db();
        let db = Arc::new(db);
        db.write(|c| Ok(c.execute_batch("CREATE TABLE t (x INTEGER)")?))
            .await
            .unwrap();
        let commits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        let hook = |commits: Arc<std::sync::atomic::AtomicUsize>| {
            move || {
                commits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                false
            }
        };
        // The first write holds its batch open until released...
        let first = tokio::spawn({
            let (db, commits) = (db.clone(), commits.clone());
            async move {
                db.write(move |c| {
                    c.commit_hook(Some(hook(commits)))?;
                    c.execute("INSERT INTO t VALUES (0)", [])?;
                    let _ = started_tx.send(());
                    let _ = release_rx.recv();
                    Ok(())
                })
                .await
            }
        });
        while started_rx.try_recv().is_err() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // ...while ten more queue up: they run together in the next transaction.
        let mut rest = Vec::new();
        for i in 1..=10 {
            let (db, commits) = (db.clone(), commits.clone());
            rest.push(tokio::spawn(async move {
                db.write(move |c| {
                    c.commit_hook(Some(hook(commits)))?;
                    c.execute("INSERT INTO t VALUES (?1)", [i])?;
                    // Each write sees the ones queued before it.
                    Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))?)
                })
                .await
            }));
        }
        for _ in 0..500 {
            if db.group.queued() == 10 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(db.group.queued(), 10);
        release_tx.send(()).unwrap();
        first.await.unwrap().unwrap();
        let mut seen = Vec::new();
        for r in rest {
            seen.push(r.await.unwrap().unwrap());
        }
        seen.sort();
        assert_eq!(seen, (2..=11).collect::<Vec<i64>>());
        assert_eq!(count(&db).await, 11);
        assert_eq!(
            commits.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "one commit for the first write, one for the ten"
        );
        db.write(|c| {
            c.commit_hook(None::<fn() -> bool>)?;
            Ok(())
        })
        .await
        .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_or_panicking_write_in_a_batch_takes_back_only_its_own_work() {
        let (_dir, db) = temp_db();
        let db = Arc::new(db);
        db.write(|c| Ok(c.execute_batch("CREATE TABLE t (x INTEGER)")?))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..60i64 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                db.write(move |c| {
                    c.execute("INSERT INTO t VALUES (?1)", [i])?;
                    match i % 10 {
                        3 => Err(Error::Conflict("refused".into())),
                        7 => panic!("write {i} panics"),
                        _ => Ok(i),
                    }
                })
                .await
            }));
        }
        let mut ok = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(i) => ok.push(i),
                Err(e) => assert!(matches!(e, Error::Conflict(_) | Error::Other(_)), "{e:?}"),
            }
        }
        ok.sort();
        let stored: Vec<i64> = db
            .read(|c| {
                let mut s = c.prepare("SELECT x FROM t ORDER BY x")?;
                let rows = s.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
            .unwrap();
        assert_eq!(stored, ok);
        assert_eq!(ok.len(), 48);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_interrupted_write_loses_nothing_that_was_acknowledged() {
        let (_dir, db) = temp_db();
        let db = Arc::new(db);
        db.write(|c| Ok(c.execute_batch("CREATE TABLE t (x INTEGER)")?))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..40i64 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                db.write(move |c| {
                    c.execute("INSERT INTO t VALUES (?1)", [i])?;
                    if i % 13 == 5 {
                        // A runaway write: the time limit interrupts it, and SQLite rolls
                        // back the whole transaction it shared.
                        c.execute(
                            "INSERT INTO t WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n) \
                             SELECT -i FROM n",
                            [],
                        )?;
                    }
                    Ok(i)
                })
                .await
            }));
        }
        let mut ok = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(i) => ok.push(i),
                Err(e) => assert_eq!(
                    e.status(),
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "{e:?}"
                ),
            }
        }
        ok.sort();
        let stored: Vec<i64> = db
            .read(|c| {
                let mut s = c.prepare("SELECT x FROM t ORDER BY x")?;
                let rows = s.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
            .unwrap();
        assert_eq!(stored, ok, "exactly the acknowledged writes are stored");
        // Batch-mates of a runaway write fail with it (retryable 503); the rest commit.
        assert!(!ok.is_empty() && ok.iter().all(|i| i % 13 != 5), "{ok:?}");
    }
}
