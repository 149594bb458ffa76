//! Scheduled backups while serving: `serve --backup-dir D --backup-every 1h --backup-keep 24`.
//!
//! Every `every`, the tenants whose file changed since their last backup are backed up
//! into `D`, one after another and spread over the interval (not all at once), each with
//! the same consistent online copy as `GET …/backup`. After each copy only the newest
//! `keep` backups of that tenant stay in `D`. A failure is logged, counted in
//! `erpd_backups_total{result="failed"}` and reported by the tenant's health until its next
//! successful backup.
//!
//! "Changed" is read from the file system: the newest mtime of `<id>.db` and `<id>.db-wal`
//! after the start of the tenant's last backup (or its recorded `last_backup_at` after a
//! restart). A tenant whose file was reopened (its `-wal` recreated) may be copied once
//! more without a change; a change is never missed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::lifecycle::Actor;
use super::{DataDir, Tenancy, TenantId, backup};
use crate::db;
use crate::platform::model::{TenantRecord, TenantStatus};

/// What `serve --backup-*` asked for.
#[derive(Debug, Clone)]
pub struct BackupSchedule {
    pub dir: PathBuf,
    pub every: Duration,
    pub keep: usize,
}

impl Tenancy {
    /// Run the schedule until shutdown.
    pub async fn run_backup_schedule(
        self: Arc<Self>,
        schedule: BackupSchedule,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let actor = Actor {
            name: "erpd:scheduled-backup".into(),
            request_id: None,
        };
        if let Err(e) = std::fs::create_dir_all(&schedule.dir) {
            tracing::error!(dir = %schedule.dir.display(), error = %e, "cannot create the backup dir");
            return;
        }
        let mut started: HashMap<TenantId, SystemTime> = HashMap::new();
        let mut tick = tokio::time::interval(schedule.every);
        // A round that overran its interval starts the next one late, never a burst.
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let due = match self.due_for_backup(&started).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "scheduled backup: listing tenants failed");
                    continue;
                }
            };
            if due.is_empty() {
                continue;
            }
            // Spread the copies over most of the interval.
            let gap = schedule.every.mul_f64(0.8) / due.len() as u32;
            for (n, id) in due.into_iter().enumerate() {
                if n > 0 {
                    tokio::select! {
                        _ = tokio::time::sleep(gap) => {}
                        _ = shutdown.changed() => return,
                    }
                }
                let at = SystemTime::now();
                let dest = schedule.dir.join(backup::default_backup_name(&id));
                if dest.exists() {
                    continue; // copied within this second already
                }
                match self.backup_to(&id, &dest, true, &actor).await {
                    Ok(_) => {
                        started.insert(id.clone(), at);
                        self.set_backup_failure(&id, None);
                        let (dir, keep, tid) = (schedule.dir.clone(), schedule.keep, id.clone());
                        let pruned = db::blocking(move || Ok(prune(&dir, &tid, keep)?)).await;
                        if let Err(e) = pruned {
                            tracing::warn!(tenant = %id, error = %e, "pruning old backups failed");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(tenant = %id, error = %e, "scheduled backup failed");
                        self.set_backup_failure(&id, Some(e.to_string()));
                    }
                }
            }
        }
    }

    async fn due_for_backup(
        &self,
        started: &HashMap<TenantId, SystemTime>,
    ) -> crate::error::Result<Vec<TenantId>> {
        let all = self
            .platform
            .read(crate::platform::store::all_tenants)
            .await?;
        let layout = self.layout.clone();
        let started = started.clone();
        db::blocking(move || {
            Ok(all
                .into_iter()
                .filter(|r| r.status != TenantStatus::Deleted)
                .filter(|r| changed_since_backup(&layout, r, started.get(&r.id)))
                .map(|r| r.id)
                .collect())
        })
        .await
    }

    /// Remember (or clear) why a tenant's last scheduled backup failed; health shows it.
    fn set_backup_failure(&self, id: &TenantId, error: Option<String>) {
        let mut failures = self
            .backup_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match error {
            Some(e) => {
                failures.insert(id.clone(), e);
            }
            None => {
                failures.remove(id);
            }
        }
    }

    /// Why the tenant's last scheduled backup failed, if it did.
    pub fn backup_failure(&self, id: &TenantId) -> Option<String> {
        self.backup_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }
}

fn changed_since_backup(layout: &DataDir, r: &TenantRecord, started: Option<&SystemTime>) -> bool {
    let since = match (
        started,
        r.last_backup_at.as_deref().and_then(crate::clock::parse),
    ) {
        (Some(t), _) => *t,
        (None, Some(at)) => SystemTime::from(at),
        (None, None) => return true,
    };
    let main = layout.tenant_file(&r.id);
    let mut wal = main.as_os_str().to_owned();
    wal.push("-wal");
    [main, PathBuf::from(wal)]
        .iter()
        .filter_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .any(|m| m > since)
}

/// Keep the newest `keep` backups of `id` in `dir` (`<id>-<stamp>.db`); returns how many
/// were removed.
pub fn prune(dir: &Path, id: &TenantId, keep: usize) -> std::io::Result<usize> {
    let mut mine: Vec<(String, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_owned();
            let (owner, stamp) = split_backup_name(&name)?;
            (owner == id.as_str()).then(|| (stamp.to_owned(), p))
        })
        .collect();
    mine.sort();
    let excess = mine.len().saturating_sub(keep);
    for (_, p) in mine.iter().take(excess) {
        std::fs::remove_file(p)?;
    }
    Ok(excess)
}

/// `<id>-<YYYYMMDDTHHMMSSZ>.db` → (id, stamp).
fn split_backup_name(name: &str) -> Option<(&str, &str)> {
    let stem = name.strip_suffix(".db")?;
    let cut = stem.len().checked_sub(17)?;
    let (owner, dash_stamp) = stem.split_at(cut);
    let stamp = dash_stamp.strip_prefix('-')?;
    (stamp.len() == 16 && stamp.as_bytes()[8] == b'T' && stamp.ends_with('Z'))
        .then_some((owner, stamp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_names_split_even_when_ids_share_a_prefix() {
        assert_eq!(
            split_backup_name("acme-2-20261127T100000Z.db"),
            Some(("acme-2", "20261127T100000Z"))
        );
        assert_eq!(split_backup_name("acme.db"), None);
    }

    #[test]
    fn prune_keeps_the_newest_of_one_tenant_only() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "acme-20261127T100000Z.db",
            "acme-20261127T110000Z.db",
            "acme-20261127T120000Z.db",
            "acme-2-20261127T090000Z.db",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let acme = TenantId::parse("acme").unwrap();
        assert_eq!(prune(dir.path(), &acme, 2).unwrap(), 1);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "acme-2-20261127T090000Z.db",
                "acme-20261127T110000Z.db",
                "acme-20261127T120000Z.db"
            ]
        );
    }
}
