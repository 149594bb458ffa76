//! `TenantPools`: the bounded cache of open tenant files.
//!
//! An LRU of per-tenant [`Db`]s bounded by `--max-open-tenants`. A miss opens the file on a
//! blocking thread, checks its schema against the migrate policy, and inserts the handle.
//! Concurrent first requests for one tenant open it once (a per-tenant gate). Evicted
//! handles that requests still hold stay reachable through a weak map, so one tenant never
//! has two pools in this process (and so one writer queue). A dropped handle checkpoints
//! and closes its connections on a blocking thread.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use lru::LruCache;
use scheduled_thread_pool::ScheduledThreadPool;

use super::{DataDir, TenantId};
use crate::db::{self, Db, DbOptions};
use crate::error::{Error, Result};
use crate::schema::{self, SchemaState};

/// How long a request waits for a fenced tenant before it is answered 503.
pub const FENCE_WAIT: Duration = Duration::from_secs(5);

/// What to do with a tenant whose file has pending migrations when it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MigratePolicy {
    /// Migrate (one transaction) and then serve.
    OnOpen,
    /// Answer 503 until an operator runs `erpd migrate`.
    Explicit,
}

/// An open tenant file. Requests hold an `Arc` for their duration.
pub struct TenantDb {
    pub id: TenantId,
    pub db: Db,
    /// Set when opening migrated the file: the catalog's schema_version needs updating.
    pub migrated_to: Option<i64>,
    stats: Arc<Stats>,
    /// Pools of this tenant whose connections are not closed yet (see [`Inner::alive`]).
    alive: Arc<Mutex<HashMap<TenantId, usize>>>,
}

impl Drop for TenantDb {
    fn drop(&mut self) {
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
        // Closing the last connection checkpoints the WAL: file IO, so keep it off the
        // async workers when there is a runtime.
        let pool = self.db.pool().clone();
        let id = self.id.clone();
        let alive = self.alive.clone();
        let close = move || {
            if let Some(conn) = pool.try_get() {
                let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
            }
            drop(pool);
            // Only now are the connections closed (the last one may have deleted the WAL
            // by name): a fence may move the file from here on.
            let mut alive = lock(&alive);
            if let Some(n) = alive.get_mut(&id) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    alive.remove(&id);
                }
            }
            drop(alive);
            tracing::debug!(tenant = %id, "tenant pool closed");
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(close)),
            Err(_) => close(),
        }
    }
}

/// Counters behind `/metrics`; totals since start.
#[derive(Default)]
pub struct Stats {
    pub open: AtomicI64,
    pub opens: AtomicU64,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub evictions: AtomicU64,
}

#[derive(Clone)]
pub struct TenantPools {
    inner: Arc<Inner>,
}

struct Inner {
    layout: DataDir,
    opts: DbOptions,
    policy: MigratePolicy,
    /// The strong references: at most `cap` tenants are kept open when idle.
    cache: Mutex<LruCache<TenantId, Arc<TenantDb>>>,
    /// Every live handle, including evicted ones still held by requests.
    live: Mutex<HashMap<TenantId, Weak<TenantDb>>>,
    /// Per-tenant single-flight gates for opening.
    opening: Mutex<HashMap<TenantId, Arc<tokio::sync::Mutex<()>>>>,
    /// Tenants being deleted or restored: no new handle may be opened.
    fenced: Mutex<HashSet<TenantId>>,
    /// Woken when a fence is lifted, so requests that arrived during it carry on.
    unfenced: tokio::sync::Notify,
    /// One scheduler for every r2d2 pool (r2d2 would start 3 threads per pool).
    scheduler: Arc<ScheduledThreadPool>,
    stats: Arc<Stats>,
    /// Per tenant, pools opened and not yet closed. A handle's strong count reaching zero
    /// is not enough before moving a file: its connections close afterwards on a blocking
    /// thread, and SQLite's last close deletes `<file>-wal` *by name* — which, after a
    /// restore's rename, would be the new file's WAL.
    alive: Arc<Mutex<HashMap<TenantId, usize>>>,
}

impl TenantPools {
    pub fn new(layout: DataDir, opts: DbOptions, policy: MigratePolicy, cap: NonZeroUsize) -> Self {
        Self {
            inner: Arc::new(Inner {
                layout,
                opts,
                policy,
                cache: Mutex::new(LruCache::new(cap)),
                live: Mutex::new(HashMap::new()),
                opening: Mutex::new(HashMap::new()),
                fenced: Mutex::new(HashSet::new()),
                unfenced: tokio::sync::Notify::new(),
                scheduler: Arc::new(
                    ScheduledThreadPool::builder()
                        .num_threads(1)
                        .thread_name_pattern("erpd-r2d2-{}")
                        .build(),
                ),
                stats: Arc::new(Stats::default()),
                alive: Arc::new(Mutex::new(HashMap::new())),
            }),
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    pub fn capacity(&self) -> usize {
        lock(&self.inner.cache).cap().get()
    }

    /// The handle for a tenant, opening its file if needed.
    pub async fn get(&self, id: &TenantId) -> Result<Arc<TenantDb>> {
        self.wait_unfenced(id).await;
        if let Some(h) = self.lookup(id)? {
            self.inner.stats.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(h);
        }
        let gate = lock(&self.inner.opening)
            .entry(id.clone())
            .or_default()
            .clone();
        let _open_guard = gate.lock().await;
        let result = match self.lookup(id)? {
            Some(h) => {
                self.inner.stats.hits.fetch_add(1, Ordering::Relaxed);
                Ok(h)
            }
            None => {
                self.inner.stats.misses.fetch_add(1, Ordering::Relaxed);
                self.open(id).await
            }
        };
        lock(&self.inner.opening).remove(id);
        result
    }

    fn lookup(&self, id: &TenantId) -> Result<Option<Arc<TenantDb>>> {
        if lock(&self.inner.fenced).contains(id) {
            return Err(Error::Unavailable {
                detail: format!("tenant {id} is under maintenance"),
                retry_after_secs: 2,
            });
        }
        if let Some(h) = lock(&self.inner.cache).get(id) {
            return Ok(Some(h.clone()));
        }
        let revived = lock(&self.inner.live).get(id).and_then(Weak::upgrade);
        if let Some(h) = revived {
            self.insert(h.clone());
            return Ok(Some(h));
        }
        Ok(None)
    }

    async fn open(&self, id: &TenantId) -> Result<Arc<TenantDb>> {
        let path = self.inner.layout.tenant_file(id);
        let opts = self.inner.opts.clone();
        let policy = self.inner.policy;
        let scheduler = self.inner.scheduler.clone();
        let tenant = id.clone();
        let (db, migrated_to) =
            db::blocking(move || open_tenant(&tenant, path, &opts, policy, scheduler)).await?;
        *lock(&self.inner.alive).entry(id.clone()).or_default() += 1;
        self.inner.stats.opens.fetch_add(1, Ordering::Relaxed);
        self.inner.stats.open.fetch_add(1, Ordering::Relaxed);
        let handle = Arc::new(TenantDb {
            id: id.clone(),
            db,
            migrated_to,
            stats: self.inner.stats.clone(),
            alive: self.inner.alive.clone(),
        });
        {
            let mut live = lock(&self.inner.live);
            if live.len() > 2 * self.capacity() + 64 {
                live.retain(|_, w| w.strong_count() > 0);
            }
            live.insert(id.clone(), Arc::downgrade(&handle));
        }
        self.insert(handle.clone());
        tracing::debug!(tenant = %id, "tenant opened");
        Ok(handle)
    }

    fn insert(&self, handle: Arc<TenantDb>) {
        let key = handle.id.clone();
        let pushed_out = lock(&self.inner.cache).push(key.clone(), handle);
        // `push` returns the old value of the same key, or the evicted LRU entry.
        if let Some((old_key, old)) = pushed_out {
            if old_key != key {
                self.inner.stats.evictions.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(tenant = %old_key, "tenant evicted");
            }
            drop(old); // closes on a blocking thread once no request holds it
        }
    }

    /// Stop serving a tenant and wait until every handle on its file is gone, so the file
    /// can be moved. New opens get 503 until [`TenantPools::unfence`].
    pub async fn fence_and_close(&self, id: &TenantId, wait: Duration) -> Result<()> {
        lock(&self.inner.fenced).insert(id.clone());
        lock(&self.inner.cache).pop(id);
        let weak = lock(&self.inner.live).remove(id);
        let deadline = Instant::now() + wait;
        loop {
            let handles_gone = weak.as_ref().is_none_or(|w| w.strong_count() == 0);
            if handles_gone && !lock(&self.inner.alive).contains_key(id) {
                break;
            }
            if Instant::now() > deadline {
                if let Some(h) = weak.as_ref().and_then(Weak::upgrade) {
                    lock(&self.inner.live).insert(id.clone(), Arc::downgrade(&h));
                }
                self.unfence(id);
                return Err(Error::Unavailable {
                    detail: format!("tenant {id} is still in use; try again"),
                    retry_after_secs: 2,
                });
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The last Drop checkpoints on a blocking thread; a final synchronous pass makes
        // sure the file is complete before anyone moves it.
        let path = self.inner.layout.tenant_file(id);
        let opts = self.inner.opts.clone();
        let checkpointed = db::blocking(move || {
            if path.exists() {
                let conn = db::open_connection(&path, &opts)?;
                // Every committed frame must be in the main file before it moves: a busy
                // checkpoint (column 0) is retried, and never ignored.
                for attempt in 0.. {
                    let busy: i64 =
                        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
                    if busy == 0 {
                        break;
                    }
                    if attempt == 200 {
                        return Err(Error::Unavailable {
                            detail: "the tenant file could not be checkpointed; try again".into(),
                            retry_after_secs: 2,
                        });
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            Ok(())
        })
        .await;
        if checkpointed.is_err() {
            self.unfence(id);
        }
        checkpointed
    }

    pub fn unfence(&self, id: &TenantId) {
        lock(&self.inner.fenced).remove(id);
        self.inner.unfenced.notify_waiters();
    }

    /// A request arriving while its tenant is fenced (a restore swapping the file, a
    /// delete) waits up to [`FENCE_WAIT`] for the fence to lift rather than failing at
    /// once; past that, `lookup` answers 503 with `Retry-After`.
    async fn wait_unfenced(&self, id: &TenantId) {
        let deadline = tokio::time::Instant::now() + FENCE_WAIT;
        loop {
            let notified = self.inner.unfenced.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !lock(&self.inner.fenced).contains(id) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }

    /// Shutdown: drop every cached handle and checkpoint each file.
    pub async fn close_all(&self) {
        let handles: Vec<_> = {
            let mut cache = lock(&self.inner.cache);
            let mut v = Vec::with_capacity(cache.len());
            while let Some((_, h)) = cache.pop_lru() {
                v.push(h);
            }
            v
        };
        let n = handles.len();
        let _ = db::blocking(move || {
            for h in handles {
                if let Err(e) = h.db.checkpoint_blocking() {
                    tracing::warn!(tenant = %h.id, error = %e, "checkpoint at shutdown failed");
                }
            }
            Ok(())
        })
        .await;
        tracing::info!(tenants = n, "tenant pools closed");
    }
}

/// Blocking: open one tenant file, check identity and schema, apply the migrate policy.
fn open_tenant(
    id: &TenantId,
    path: PathBuf,
    opts: &DbOptions,
    policy: MigratePolicy,
    scheduler: Arc<ScheduledThreadPool>,
) -> Result<(Db, Option<i64>)> {
    if !path.is_file() {
        tracing::error!(tenant = %id, path = %path.display(), "tenant file is missing");
        return Err(Error::NotFound);
    }
    let pool = db::build_pool(&path, opts, scheduler);
    let mut conn = pool.get()?;
    let mut migrated_to = None;
    match schema::tenant_state(&conn)? {
        SchemaState::Current => {}
        SchemaState::Pending { found, target } => match policy {
            MigratePolicy::OnOpen => {
                tracing::info!(tenant = %id, from = found, to = target, "migrating tenant at open");
                migrated_to = Some(schema::migrate_tenant(&mut conn)?);
            }
            MigratePolicy::Explicit => {
                return Err(Error::Unavailable {
                    detail: format!(
                        "tenant {id} has pending migrations (schema {found}, this erpd needs {target}); \
                         an operator must run `erpd migrate {id}`"
                    ),
                    retry_after_secs: 60,
                });
            }
        },
    }
    let owner: Option<String> = conn
        .query_row("SELECT tenant_id FROM tenant", [], |r| r.get(0))
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })?;
    if owner.as_deref() != Some(id.as_str()) {
        tracing::error!(tenant = %id, file_owner = ?owner, "tenant file belongs to another tenant");
        return Err(Error::Other(anyhow::anyhow!(
            "tenant file {} carries identity {owner:?}, not {id}",
            path.display()
        )));
    }
    drop(conn);
    Ok((Db::new(pool, opts), migrated_to))
}

/// Poison-tolerant lock: a panic elsewhere must not take the whole cache down.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
