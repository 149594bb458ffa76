-- Double-entry accounting: chart of accounts, journal entries and their lines, gapless
-- numbering, closed fiscal periods. Amounts are INTEGER minor units of the tenant's base
-- currency (debit/credit); foreign-currency lines keep their original amount, currency and
-- rate beside the base amounts.

CREATE TABLE accounts (
    id TEXT PRIMARY KEY, version INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    deleted_at TEXT, owner_id TEXT,
    code       TEXT NOT NULL,
    name       TEXT NOT NULL,
    type       TEXT NOT NULL CHECK (type IN ('asset', 'liability', 'equity', 'income', 'expense')),
    active     INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    system_key TEXT                                   -- what the posting API books to (receivable, rounding, …)
) STRICT;
CREATE UNIQUE INDEX accounts_code ON accounts (code) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX accounts_system_key ON accounts (system_key) WHERE system_key IS NOT NULL;

-- A small-business chart of accounts, seeded into every tenant.
INSERT INTO accounts (id, version, created_at, updated_at, code, name, type, system_key) VALUES
 ('acc-1000', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '1000', 'Cash', 'asset', 'cash'),
 ('acc-1100', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '1100', 'Bank', 'asset', 'bank'),
 ('acc-1200', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '1200', 'Accounts receivable', 'asset', 'receivable'),
 ('acc-1300', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '1300', 'Inventory', 'asset', 'inventory'),
 ('acc-1400', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '1400', 'VAT receivable', 'asset', 'tax_receivable'),
 ('acc-2000', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '2000', 'Accounts payable', 'liability', 'payable'),
 ('acc-2100', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '2100', 'VAT payable', 'liability', 'tax_payable'),
 ('acc-2200', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '2200', 'Goods received not invoiced', 'liability', 'grni'),
 ('acc-3000', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '3000', 'Owner''s equity', 'equity', 'equity'),
 ('acc-3100', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '3100', 'Retained earnings', 'equity', 'retained_earnings'),
 ('acc-4000', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '4000', 'Sales revenue', 'income', 'revenue'),
 ('acc-4100', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '4100', 'Exchange gains', 'income', 'fx_gain'),
 ('acc-5000', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '5000', 'Cost of goods sold', 'expense', 'cogs'),
 ('acc-6000', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '6000', 'Operating expenses', 'expense', 'expenses'),
 ('acc-6100', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '6100', 'Exchange losses', 'expense', 'fx_loss'),
 ('acc-6200', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '6200', 'Rounding differences', 'expense', 'rounding'),
 ('acc-6300', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '6300', 'Inventory adjustments', 'expense', 'inventory_adjustment');

CREATE TABLE journal_entries (
    id TEXT PRIMARY KEY, version INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    deleted_at TEXT, owner_id TEXT,
    date        TEXT NOT NULL,
    memo        TEXT,
    status      TEXT NOT NULL CHECK (status IN ('draft', 'posted')),
    number      TEXT,                                -- gapless per fiscal year, set at posting
    fiscal_year INTEGER,
    seq         INTEGER,
    source      TEXT NOT NULL DEFAULT 'manual',      -- manual, invoice, payment, delivery, …
    source_id   TEXT,
    reversal_of TEXT REFERENCES journal_entries (id),
    reversed_by TEXT REFERENCES journal_entries (id),
    posted_at   TEXT
) STRICT;
CREATE UNIQUE INDEX journal_entries_number ON journal_entries (fiscal_year, seq) WHERE seq IS NOT NULL;
CREATE INDEX journal_entries_date ON journal_entries (date, id);

CREATE TABLE journal_lines (
    entry_id    TEXT NOT NULL REFERENCES journal_entries (id),
    line_no     INTEGER NOT NULL,
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    debit       INTEGER NOT NULL DEFAULT 0 CHECK (debit >= 0),   -- base currency minor units
    credit      INTEGER NOT NULL DEFAULT 0 CHECK (credit >= 0),
    currency    TEXT NOT NULL,                                    -- the line's own currency
    amount      INTEGER NOT NULL CHECK (amount >= 0),             -- minor units of `currency`
    rate        INTEGER NOT NULL CHECK (rate > 0),                -- currency → base, x 10^9
    memo        TEXT,
    date        TEXT NOT NULL,                                    -- the entry's date, for reports
    posted      INTEGER NOT NULL DEFAULT 0 CHECK (posted IN (0, 1)),
    PRIMARY KEY (entry_id, line_no),
    CHECK (NOT (debit > 0 AND credit > 0))
) STRICT;
-- Reports sum posted lines per account up to a date: this index answers them.
CREATE INDEX journal_lines_report ON journal_lines (posted, account_id, date, debit, credit);

-- Gapless counters (journal entries, invoices, …) per scope and fiscal year.
CREATE TABLE number_sequences (
    scope TEXT NOT NULL,
    year  INTEGER NOT NULL,
    last  INTEGER NOT NULL,
    PRIMARY KEY (scope, year)
) STRICT;

-- Closed periods: nothing posts on a date inside one.
CREATE TABLE fiscal_periods (
    id         TEXT PRIMARY KEY,                     -- '2026-11' (month) or '2026' (year)
    kind       TEXT NOT NULL CHECK (kind IN ('month', 'year')),
    start_date TEXT NOT NULL,
    end_date   TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    closing_entry_id TEXT REFERENCES journal_entries (id),
    version    INTEGER NOT NULL DEFAULT 1,
    updated_at TEXT NOT NULL
) STRICT;
