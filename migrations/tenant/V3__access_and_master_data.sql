-- Access control, idempotency, settings, and the master and reference data.
-- Every described entity table has the system columns id, version, created_at,
-- updated_at, deleted_at (soft delete) and owner_id (the user who created it: record
-- rules key off it). Money is INTEGER minor units of its currency; quantities and rates
-- INTEGER scaled by 10^6. Unique business keys are unique among live rows only, so a
-- deleted row never blocks a new one.

CREATE TABLE roles (
    name        TEXT PRIMARY KEY,
    permissions TEXT NOT NULL,                   -- JSON array of grants
    version     INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;

CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

-- POST replay: the first response to a key is returned to every repeat (24 h).
CREATE TABLE idempotency_keys (
    key          TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    request_hash TEXT NOT NULL,                  -- method, path and body
    status       INTEGER NOT NULL,
    response     TEXT NOT NULL,
    location     TEXT,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (user_id, key)
) STRICT;
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);


CREATE TABLE price_lists (
    id TEXT PRIMARY KEY, version INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    deleted_at TEXT, owner_id TEXT,
    name     TEXT NOT NULL,
    currency TEXT NOT NULL
) STRICT;

CREATE TABLE price_list_items (
    price_list_id TEXT NOT NULL REFERENCES price_lists (id),
    product_id    TEXT NOT NULL REFERENCES products (id),
    min_quantity  INTEGER NOT NULL CHECK (min_quantity >= 0),   -- x 10^6
    unit_price    INTEGER NOT NULL CHECK (unit_price >= 0),     -- minor units of the list's currency
    PRIMARY KEY (price_list_id, product_id, min_quantity)
) STRICT, WITHOUT ROWID;

CREATE TABLE customers (
    id TEXT PRIMARY KEY, version INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    deleted_at TEXT, owner_id TEXT,
    name               TEXT NOT NULL,
    email              TEXT,
    phone              TEXT,
    address            TEXT,
    currency           TEXT NOT NULL,
    tax_id             TEXT,
    price_list_id      TEXT REFERENCES price_lists (id),
    credit_limit       INTEGER CHECK (credit_limit >= 0),
    payment_terms_days INTEGER CHECK (payment_terms_days >= 0)
) STRICT;
CREATE INDEX customers_name ON customers (name, id);
CREATE INDEX customers_owner ON customers (owner_id);

CREATE TABLE suppliers (
    id TEXT PRIMARY KEY, version INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    deleted_at TEXT, owner_id TEXT,
    name               TEXT NOT NULL,
    email              TEXT,
    phone              TEXT,
    address            TEXT,
    currency           TEXT NOT NULL,
    tax_id             TEXT,
    price_list_id      TEXT REFERENCES price_lists (id),
    credit_limit       INTEGER CHECK (credit_limit >= 0),
    payment_terms_days INTEGER CHECK (payment_terms_days >= 0)
) STRICT;
CREATE INDEX suppliers_name ON suppliers (name, id);
CREATE INDEX suppliers_owner ON suppliers (owner_id);

CREATE TABLE products (
    id TEXT PRIMARY KEY, version INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    deleted_at TEXT, owner_id TEXT,
    sku          TEXT NOT NULL,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('goods', 'service')),
    uom          TEXT NOT NULL,
    list_price   INTEGER NOT NULL CHECK (list_price >= 0),     -- base currency minor units
    cost         INTEGER NOT NULL DEFAULT 0 CHECK (cost >= 0), -- moving-average cost, base currency
    tax_category TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX products_sku ON products (sku) WHERE deleted_at IS NULL;
CREATE INDEX products_name ON products (name, id);

CREATE TABLE warehouses (
    id TEXT PRIMARY KEY, version INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    deleted_at TEXT, owner_id TEXT,
    code TEXT NOT NULL,
    name TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX warehouses_code ON warehouses (code) WHERE deleted_at IS NULL;

CREATE TABLE tenant_currencies (
    code       TEXT PRIMARY KEY,
    enabled    INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE exchange_rates (
    id TEXT PRIMARY KEY, version INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    deleted_at TEXT, owner_id TEXT,
    "from" TEXT NOT NULL,
    "to"   TEXT NOT NULL,
    rate   INTEGER NOT NULL CHECK (rate > 0),       -- x 10^9
    date   TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX exchange_rates_pair_date ON exchange_rates ("from", "to", date) WHERE deleted_at IS NULL;

-- A tenant's override of a platform tax category's default rate.
CREATE TABLE tax_rules (
    category   TEXT PRIMARY KEY,
    rate       INTEGER NOT NULL CHECK (rate >= 0),  -- x 10^6
    version    INTEGER NOT NULL DEFAULT 1,
    updated_at TEXT NOT NULL
) STRICT;
