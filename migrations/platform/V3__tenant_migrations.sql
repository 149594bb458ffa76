-- Per-tenant status of fleet migrations (`erpd migrate`): what ran, from which version to
-- which, where the snapshot taken before it is, and how it ended. A rerun after a crash
-- skips tenants already migrated; `erpd migrate --rollback` puts the snapshot back.
CREATE TABLE tenant_migrations (
    tenant       TEXT PRIMARY KEY,
    from_version INTEGER NOT NULL,
    to_version   INTEGER NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed', 'rolled_back')),
    snapshot     TEXT,
    error        TEXT,
    updated_at   TEXT NOT NULL
) STRICT;
