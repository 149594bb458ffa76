-- The head of the audit hash chain (entry count and newest hash), kept beside the log
-- and updated in the same transaction as every entry, so `erpd audit verify` also
-- notices entries cut off the end of the log, not only edited or removed ones in between.
CREATE TABLE audit_head (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    entries   INTEGER NOT NULL,
    hash      TEXT NOT NULL
) STRICT;

INSERT INTO audit_head (singleton, entries, hash)
SELECT 1, count(*),
       COALESCE((SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1),
                '0000000000000000000000000000000000000000000000000000000000000000')
FROM audit_log;
