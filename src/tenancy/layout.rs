//! Where things live in the data directory. The only place that turns ids into paths,
//! and it only accepts a validated [`TenantId`].

use std::path::{Path, PathBuf};

use super::TenantId;

/// The data directory layout of DESIGN.md.
#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
}

/// Suffix of files being provisioned; never a valid tenant file name, removed at start.
pub const PARTIAL_SUFFIX: &str = ".partial";

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn platform_db(&self) -> PathBuf {
        self.root.join("platform.db")
    }

    pub fn tenants_dir(&self) -> PathBuf {
        self.root.join("tenants")
    }

    pub fn tenant_file(&self, id: &TenantId) -> PathBuf {
        self.tenants_dir().join(format!("{id}.db"))
    }

    /// A unique scratch name beside the tenant file, so the final `rename` is atomic.
    pub fn tenant_partial(&self, id: &TenantId) -> PathBuf {
        let nonce = uuid::Uuid::new_v4().simple();
        self.tenants_dir()
            .join(format!(".{id}.{nonce}{PARTIAL_SUFFIX}"))
    }

    pub fn trash_dir(&self) -> PathBuf {
        self.root.join("trash")
    }

    /// `trash/<id>.<UTC timestamp>.db`
    pub fn trash_file(&self, id: &TenantId, stamp: &str) -> PathBuf {
        self.trash_dir().join(format!("{id}.{stamp}.db"))
    }

    pub fn backups_dir(&self) -> PathBuf {
        self.root.join("backups")
    }

    pub fn templates_dir(&self) -> PathBuf {
        self.root.join("templates")
    }

    /// The pre-migrated tenant template for one schema version.
    pub fn template_file(&self, schema_version: i64) -> PathBuf {
        self.templates_dir()
            .join(format!("tenant-v{schema_version}.db"))
    }

    /// Held exclusively by `erpd serve` so that offline-only commands can refuse.
    pub fn serve_lock(&self) -> PathBuf {
        self.root.join("erpd.lock")
    }

    /// Create the directory tree (idempotent).
    pub fn ensure(&self) -> std::io::Result<()> {
        for dir in [
            self.root.clone(),
            self.tenants_dir(),
            self.trash_dir(),
            self.backups_dir(),
            self.templates_dir(),
        ] {
            std::fs::create_dir_all(dir)?;
        }
        Ok(())
    }
}

/// The tenant id encoded in a tenant file name (`<id>.db`), if it is one.
pub fn tenant_id_of_file(path: &Path) -> Option<TenantId> {
    let name = path.file_name()?.to_str()?;
    TenantId::parse(name.strip_suffix(".db")?).ok()
}

/// fsync a file and its directory so a rename or create survives power loss.
pub fn sync_file_and_dir(file: &Path) -> std::io::Result<()> {
    std::fs::File::open(file)?.sync_all()?;
    if let Some(dir) = file.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
