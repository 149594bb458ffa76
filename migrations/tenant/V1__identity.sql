-- A tenant file's identity and its people. application_id marks the file as an erpd
-- tenant, so a restore can refuse any other SQLite file.
PRAGMA application_id = 1701998692; -- 'erpd'

-- Exactly one row, written when the tenant is provisioned (the template has none).
CREATE TABLE tenant (
    singleton     INTEGER PRIMARY KEY CHECK (singleton = 1),
    tenant_id     TEXT NOT NULL,
    name          TEXT NOT NULL,
    base_currency TEXT NOT NULL,
    created_at    TEXT NOT NULL
) STRICT;

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    name          TEXT NOT NULL,
    password_hash TEXT,                          -- argon2id PHC string; NULL: token-only
    active        INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    version       INTEGER NOT NULL DEFAULT 1,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    deleted_at    TEXT
) STRICT;
CREATE UNIQUE INDEX users_email_live ON users (lower(email)) WHERE deleted_at IS NULL;

CREATE TABLE user_roles (
    user_id TEXT NOT NULL REFERENCES users (id),
    role    TEXT NOT NULL,
    PRIMARY KEY (user_id, role)
) STRICT, WITHOUT ROWID;

CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    name       TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,             -- sha256 hex; the token itself is never stored
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT
) STRICT;
