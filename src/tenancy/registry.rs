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
        let fresh = records
            .into_iter()
            .map(|r| (r.id.clone(), Arc::new(r)))
            .collect();
        *self.map.write().unwrap_or_else(|p| p.into_inner()) = fresh;
    }

    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
