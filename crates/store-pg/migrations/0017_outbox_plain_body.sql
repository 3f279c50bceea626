-- Two costs every event paid on insert for nothing (issue 4, docs/benchmarks.md "Transitions",
-- run 14; a status change writes one event).
--
-- `data` becomes `json`: the body is written once, read back whole (by the fan-out, for the
-- events a webhook or a notification wants) and never queried inside. As `jsonb` PostgreSQL
-- parsed every body into its binary form on insert and printed it back to text on read; `json`
-- checks the text is JSON and keeps it as sent. The server sends the body as text cast to
-- `json` (a `jsonb` parameter would be parsed as `jsonb` first).
--
-- The foreign key to `tenants` goes: tenants are never deleted or re-keyed, so it could not
-- fail for an id the server writes, yet each insert checked it with a query on `tenants` that
-- takes a KEY SHARE lock on the tenant's row, so every writer of a tenant locked the same row
-- (concurrent lockers become a multixact). The audit trail, the record that matters, has no such
-- key either. SQLite keeps its declared key: dropping it there rebuilds the table, and SQLite
-- checks it without a lock (one writer at a time).
ALTER TABLE outbox DROP CONSTRAINT outbox_tenant_id_fkey;
ALTER TABLE outbox ALTER COLUMN data TYPE json USING data::json;
