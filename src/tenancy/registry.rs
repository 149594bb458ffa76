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

    /// Apply rows changed since the last refresh.
    pub fn merge(&self, records: Vec<TenantRecord>) {
        self.note(&records);
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        for r in records {
            map.insert(r.id.clone(), Arc::new(r));
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

    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
