-- The platform catalog: which tenants exist, platform tokens, the platform audit log.
-- Tenant data never lives here.
PRAGMA application_id = 1701998704; -- 'erpp' (erpd platform)

CREATE TABLE tenants (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'deleted')),
    base_currency  TEXT NOT NULL,
    modules        TEXT NOT NULL DEFAULT '[]',  -- JSON array of module names
    schema_version INTEGER NOT NULL,
    version        INTEGER NOT NULL DEFAULT 1,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    deleted_at     TEXT,
    trash_file     TEXT,                        -- where a deleted tenant's file sits
    last_backup_at TEXT
) STRICT;

CREATE TABLE platform_tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,            -- sha256 hex; the token itself is never stored
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT
) STRICT;

CREATE TABLE platform_audit (
    id         INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    tenant     TEXT,
    details    TEXT NOT NULL DEFAULT '{}',
    request_id TEXT
) STRICT;
CREATE INDEX platform_audit_tenant ON platform_audit (tenant, id);

CREATE TRIGGER platform_audit_no_update BEFORE UPDATE ON platform_audit
BEGIN SELECT RAISE(ABORT, 'the platform audit log is append-only'); END;
CREATE TRIGGER platform_audit_no_delete BEFORE DELETE ON platform_audit
BEGIN SELECT RAISE(ABORT, 'the platform audit log is append-only'); END;
