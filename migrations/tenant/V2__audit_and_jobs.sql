-- The tenant's audit log (append-only, hash-chained) and its background job queue: both
-- travel with the file, so a backup carries its own history and pending work.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    entity     TEXT NOT NULL,
    entity_id  TEXT,
    changes    TEXT NOT NULL DEFAULT '{}',
    request_id TEXT,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
) STRICT;
CREATE INDEX audit_log_entity ON audit_log (entity, entity_id, id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

CREATE TABLE jobs (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    payload    TEXT NOT NULL DEFAULT '{}',
    actor      TEXT,
    attempts   INTEGER NOT NULL DEFAULT 0,
    run_after  TEXT NOT NULL,
    error      TEXT,
    result     TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
CREATE INDEX jobs_runnable ON jobs (status, run_after);
