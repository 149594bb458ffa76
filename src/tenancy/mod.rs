//! Tenancy: turning a tenant id into an open, checked, migrated tenant file, and the
//! tenant lifecycle (create, suspend, delete, restore) shared by the API and the CLI.
//!
//! Nothing here knows about HTTP. A `Tenancy` is built once per process and shared.

pub mod backup;
pub mod id;
pub mod layout;
pub mod lifecycle;
pub mod pools;
pub mod provision;
pub mod reconcile;
pub mod registry;
pub mod schedule;
pub mod trash;

use std::collections::HashSet;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use id::TenantId;
pub use layout::DataDir;
pub use pools::{MigratePolicy, TenantDb, TenantPools};

use crate::db::{self, Db, DbOptions};
use crate::error::{Error, Result};
use crate::platform::model::{TenantRecord, TenantStatus};
use crate::platform::store as platform_store;
use crate::reference::Reference;
use registry::Registry;

pub struct Tenancy {
    pub layout: DataDir,
    pub opts: DbOptions,
    /// `platform.db`: the catalog, platform tokens and the platform audit log.
    pub platform: Db,
    /// Open tenant files.
    pub pools: TenantPools,
    /// The catalog's tenants, in memory.
    pub registry: Registry,
    /// The pre-migrated template new tenants are copied from.
    template: PathBuf,
    /// Platform reference data (currencies, units, tax categories), read-only.
    pub reference: Reference,
    /// Tenants with a restore or purge in progress: a second one is refused (409).
    busy: std::sync::Mutex<HashSet<TenantId>>,
    /// Why a tenant's last scheduled backup failed (cleared by a success); shown in health.
    backup_failures: std::sync::Mutex<std::collections::HashMap<TenantId, String>>,
}

impl Tenancy {
    /// Create the data dir if needed, migrate `platform.db`, build the template and load
    /// the catalog.
    pub async fn open(
        layout: DataDir,
        opts: DbOptions,
        policy: MigratePolicy,
        max_open_tenants: NonZeroUsize,
    ) -> Result<Arc<Self>> {
        let (l, o) = (layout.clone(), opts.clone());
        let (template, reference) = db::blocking(move || {
            l.ensure()?;
            let mut conn = db::create_connection(&l.platform_db(), &o)?;
            crate::schema::migrate_platform(&mut conn)?;
            let reference = Reference::load(&conn)?;
            Ok((provision::ensure_template(&l, &o)?, reference))
        })
        .await?;
        let platform_opts = DbOptions {
            max_connections: 4,
            max_file_bytes: None,
            ..opts.clone()
        };
        let pool = db::build_pool(
            &layout.platform_db(),
            &platform_opts,
            Arc::new(scheduled_thread_pool::ScheduledThreadPool::new(1)),
        );
        let tenancy = Arc::new(Self {
            pools: TenantPools::new(layout.clone(), opts.clone(), policy, max_open_tenants),
            platform: Db::new(pool, &platform_opts),
            registry: Registry::default(),
            layout,
            opts,
            template,
            reference,
            busy: Default::default(),
            backup_failures: Default::default(),
        });
        tenancy.reload_registry().await?;
        Ok(tenancy)
    }

    /// Pick up catalog rows changed since the last look (by this or another process).
    pub async fn refresh_registry(&self) -> Result<()> {
        let since = self.registry.refresh_from();
        let changed = self
            .platform
            .read(move |c| platform_store::tenants_changed_since(c, &since))
            .await?;
        self.registry.merge(changed);
        Ok(())
    }

    pub async fn reload_registry(&self) -> Result<()> {
        let all = self.platform.read(platform_store::all_tenants).await?;
        self.registry.replace_all(all);
        Ok(())
    }

    /// The gate of every tenant request: unknown and deleted tenants are 404, suspended
    /// ones 423.
    pub fn resolve(&self, id: &TenantId) -> Result<Arc<TenantRecord>> {
        let record = self.registry.get(id).ok_or(Error::NotFound)?;
        match record.status {
            TenantStatus::Active => Ok(record),
            TenantStatus::Suspended => Err(Error::Suspended),
            TenantStatus::Deleted => Err(Error::NotFound),
        }
    }

    /// The open tenant file, after the gate.
    pub async fn tenant_db(&self, id: &TenantId) -> Result<Arc<TenantDb>> {
        let handle = self.pools.get(id).await?;
        if let Some(version) = handle.migrated_to {
            self.record_schema_version(id, version).await;
        }
        Ok(handle)
    }

    async fn record_schema_version(&self, id: &TenantId, version: i64) {
        let current = self.registry.get(id).map(|r| r.schema_version);
        if current == Some(version) {
            return;
        }
        let tid = id.clone();
        let updated = self
            .platform
            .write(move |tx| {
                platform_store::set_schema_version(tx, &tid, version)?;
                platform_store::get_tenant(tx, &tid)
            })
            .await;
        match updated {
            Ok(record) => self.registry.put(record),
            Err(e) => tracing::warn!(tenant = %id, error = %e, "could not record schema version"),
        }
    }

    /// Follow `platform.db` changes made by other processes until `shutdown` resolves.
    pub async fn watch_catalog(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let path = self.layout.platform_db();
        let opts = self.opts.clone();
        let conn = match db::blocking(move || Ok(db::open_connection(&path, &opts)?)).await {
            Ok(c) => Arc::new(std::sync::Mutex::new(c)),
            Err(e) => {
                tracing::error!(error = %e, "cannot watch platform.db");
                return;
            }
        };
        let mut last: Option<i64> = None;
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let c = conn.clone();
            let version = db::blocking(move || {
                let c = c.lock().unwrap_or_else(|p| p.into_inner());
                Ok(c.query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0))?)
            })
            .await;
            match version {
                Ok(v) if last != Some(v) => {
                    if let Err(e) = self.refresh_registry().await {
                        tracing::warn!(error = %e, "catalog reload failed");
                        continue;
                    }
                    last = Some(v);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "catalog watch failed"),
            }
        }
    }
}
