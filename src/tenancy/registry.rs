//! The in-memory view of the platform catalog's `tenants` table.
//!
//! Every tenant request consults it (exists? suspended?) without touching disk. It is
//! written through by this process's own changes and refreshed when another process (an
//! `erpd tenant …` or `erpd token …` command run beside the server) commits to
//! `platform.db`, detected cheaply with `PRAGMA data_version`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::TenantId;
use crate::platform::model::TenantRecord;

#[derive(Default)]
pub struct Registry {
    map: RwLock<HashMap<TenantId, Arc<TenantRecord>>>,
    /// The newest `updated_at` seen: refreshes read only rows changed since (minus a margin).
    high_water: std::sync::Mutex<String>,
}

impl Registry {
    pub fn get(&self, id: &TenantId) -> Option<Arc<TenantRecord>> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    pub fn put(&self, record: TenantRecord) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        map.insert(record.id.clone(), Arc::new(record));
    }

    pub fn replace_all(&self, records: Vec<TenantRecord>) {
        self.note(&records);
        let fresh = records
            .into_iter()
            .map(|r| (r.id.clone(), Arc::new(r)))
            .collect();
        *self.map.write().unwrap_or_else(|p| p.into_inner()) = fresh;
    }

    /// Apply rows changed since the last refresh. A row older than what this process
    /// already holds (a snapshot read before one of its own changes committed) is ignored,
    /// so a refresh never undoes a create, suspend or delete made here.
    pub fn merge(&self, records: Vec<TenantRecord>) {
        self.note(&records);
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        for r in records {
            let newer = map.get(&r.id).is_none_or(|cur| {
                (r.version, r.updated_at.as_str()) > (cur.version, cur.updated_at.as_str())
            });
            if newer {
                map.insert(r.id.clone(), Arc::new(r));
            }
        }
    }

    fn note(&self, records: &[TenantRecord]) {
        let mut hw = self.high_water.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(max) = records.iter().map(|r| &r.updated_at).max()
            && *max > *hw
        {
            *hw = max.clone();
        }
    }

    /// Where the next incremental refresh starts: the high-water mark minus a margin, so a
    /// transaction that committed late with an earlier timestamp is still seen.
    pub fn refresh_from(&self) -> String {
        let hw = self
            .high_water
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        crate::clock::parse(&hw)
            .map(|t| crate::clock::format(t - time::Duration::seconds(10)))
            .unwrap_or_default()
    }

    pub fn remove(&self, id: &TenantId) {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::model::TenantStatus;

    fn record(version: i64, at: &str, status: TenantStatus) -> TenantRecord {
        TenantRecord {
            id: TenantId::parse("acme").unwrap(),
            name: "Acme".into(),
            status,
            base_currency: "EUR".into(),
            modules: vec![],
            schema_version: 1,
            version,
            created_at: at.into(),
            updated_at: at.into(),
            deleted_at: None,
            trash_file: None,
            last_backup_at: None,
        }
    }

    #[test]
    fn a_stale_snapshot_never_undoes_a_newer_local_change() {
        let r = Registry::default();
        let id = TenantId::parse("acme").unwrap();
        r.put(record(2, "2026-11-27T10:00:01Z", TenantStatus::Suspended));
        r.merge(vec![record(
            1,
            "2026-11-27T10:00:00Z",
            TenantStatus::Active,
        )]);
        assert_eq!(r.get(&id).unwrap().status, TenantStatus::Suspended);
        r.merge(vec![record(
            3,
            "2026-11-27T10:00:02Z",
            TenantStatus::Active,
        )]);
        assert_eq!(r.get(&id).unwrap().status, TenantStatus::Active);
    }
}
