//! The trash: files of deleted tenants and files replaced by a restore, named
//! `trash/<id>.<UTC stamp>.db`. They are kept for the retention period (`serve
//! --trash-retention`, default 30 days) and then purged; `erpd tenant purge ID` purges one
//! tenant's now. The stamp in the name (not the mtime, which `rename` keeps from the old
//! file) says when a file went to the trash.
//!
//! Purging the trash file of a deleted tenant also removes its catalog row (with a
//! `tenant.purge` audit entry), so the id can be used again.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::lifecycle::Actor;
use super::{DataDir, Tenancy, TenantId, provision};
use crate::db;
use crate::error::Result;
use crate::platform::model::TenantStatus;
use crate::platform::store;

/// One file in the trash.
#[derive(Debug, Clone)]
pub struct TrashEntry {
    pub path: PathBuf,
    pub id: TenantId,
    pub trashed_at: OffsetDateTime,
}

/// Parse `<id>.<YYYYMMDDTHHMMSSZ>[-n].db`.
pub fn parse_name(name: &str) -> Option<(TenantId, OffsetDateTime)> {
    let (id, stamp) = name.strip_suffix(".db")?.rsplit_once('.')?;
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let at = PrimitiveDateTime::parse(stamp.get(..16)?, format).ok()?;
    Some((TenantId::parse(id).ok()?, at.assume_utc()))
}

/// Blocking: every recognisable trash file, oldest first.
pub fn list(layout: &DataDir) -> Result<Vec<TrashEntry>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(layout.trash_dir())? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some((id, trashed_at)) = parse_name(name) {
            out.push(TrashEntry {
                path,
                id,
                trashed_at,
            });
        }
    }
    out.sort_by_key(|e| e.trashed_at);
    Ok(out)
}

impl Tenancy {
    /// Remove trash files older than `older_than`, or (with `only`) every trash file of
    /// one tenant. Deleted tenants whose file went are removed from the catalog. Returns
    /// the files removed.
    pub async fn purge_trash(
        &self,
        older_than: Option<Duration>,
        only: Option<&TenantId>,
        actor: &Actor,
    ) -> Result<Vec<PathBuf>> {
        let _busy = only.map(|id| self.begin_busy(id)).transpose()?;
        let layout = self.layout.clone();
        let only_id = only.cloned();
        let removed = db::blocking(move || {
            let now = OffsetDateTime::now_utc();
            let mut removed = Vec::new();
            for e in list(&layout)? {
                let expired = older_than.is_some_and(|age| now - e.trashed_at >= age);
                if only_id.as_ref() == Some(&e.id) || (only_id.is_none() && expired) {
                    provision::remove_db_files(&e.path);
                    removed.push(e);
                }
            }
            Ok(removed)
        })
        .await?;
        let names: Vec<String> = removed
            .iter()
            .map(|e| e.path.display().to_string())
            .collect();
        let mut ids: Vec<TenantId> = removed.iter().map(|e| e.id.clone()).collect();
        if only.is_none() {
            // Also deleted tenants whose trash file went earlier: a purge that ran between a
            // delete's rename and its catalog update found no catalog row to forget yet.
            let all = self.platform.read(store::all_tenants).await?;
            ids.extend(
                all.into_iter()
                    .filter(|r| r.status == TenantStatus::Deleted)
                    .map(|r| r.id),
            );
        }
        let layout = self.layout.clone();
        let a = actor.clone();
        let forgotten = self
            .platform
            .write(move |tx| {
                let mut forgotten = Vec::new();
                let mut seen = std::collections::HashSet::new();
                for id in ids.iter().filter(|id| seen.insert((*id).clone())) {
                    let Some(r) = store::find_tenant(tx, id)? else {
                        continue;
                    };
                    let gone = r
                        .trash_file
                        .as_ref()
                        .is_none_or(|t| names.contains(t) || !std::path::Path::new(t).exists());
                    // A restore from the trash links the live file before it removes the
                    // trash one: while the live file exists, the tenant is not forgotten.
                    let live = layout.tenant_file(id).exists();
                    if r.status == TenantStatus::Deleted
                        && gone
                        && !live
                        && store::delete_tenant_row(tx, id)?
                    {
                        let files: Vec<&String> = names
                            .iter()
                            .filter(|n| n.contains(&format!("/{id}.")))
                            .collect();
                        store::record_audit(
                            tx,
                            &a.name,
                            "tenant.purge",
                            Some(id),
                            json!({ "files": files }),
                            a.request_id.as_deref(),
                        )?;
                        forgotten.push(id.clone());
                    }
                }
                Ok(forgotten)
            })
            .await?;
        if !forgotten.is_empty() {
            self.reload_registry().await?;
        }
        if !removed.is_empty() {
            metrics::counter!("erpd_trash_purged_total").increment(removed.len() as u64);
            tracing::info!(
                files = removed.len(),
                tenants_forgotten = forgotten.len(),
                "trash purged"
            );
        }
        Ok(removed.into_iter().map(|e| e.path).collect())
    }

    /// Serve-time loop: purge expired trash every `every` until shutdown.
    pub async fn purge_trash_periodically(
        self: std::sync::Arc<Self>,
        retention: Duration,
        every: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let actor = Actor {
            name: "erpd:trash-retention".into(),
            request_id: None,
        };
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            if let Err(e) = self.purge_trash(Some(retention), None, &actor).await {
                tracing::warn!(error = %e, "trash purge failed");
            }
        }
    }
}

/// Parse `30d`, `12h`, `15m`, `90s` (or bare seconds).
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30d, 12h, 15m or 90s"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("{s:?}: the unit must be s, m, h or d")),
    };
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trash_names_carry_id_and_time() {
        let (id, at) = parse_name("acme.20261127T100000Z.db").unwrap();
        assert_eq!(id.as_str(), "acme");
        assert_eq!(at.hour(), 10);
        assert!(parse_name("acme.20261127T100000Z-2.db").is_some());
        assert!(parse_name("acme.db").is_none());
        assert!(parse_name("notes.txt").is_none());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3w").is_err());
    }
}
