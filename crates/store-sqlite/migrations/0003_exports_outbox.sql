-- Audit exports (produced by the worker) and the transactional outbox of domain events.
-- Conventions as in 0001.

-- One requested export. The file itself lives in the content-addressed blob store under the
-- data directory, named by `sha256`; this row holds its signature and the worker's claim.
CREATE TABLE audit_exports (
    tenant_id           TEXT NOT NULL REFERENCES tenants (id),
    id                  TEXT NOT NULL,
    format              TEXT NOT NULL CHECK (format IN ('json', 'csv', 'pdf')),
    from_at             TEXT NOT NULL,
    to_at               TEXT NOT NULL,
    entity_type         TEXT,
    include_hash_chain  INTEGER NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('queued', 'running', 'ready', 'failed')),
    requested_by        TEXT,
    requested_by_label  TEXT NOT NULL,
    requested_at        TEXT NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 0,
    lease_until         TEXT,
    started_at          TEXT,
    finished_at         TEXT,
    event_count         INTEGER,
    first_seq           INTEGER,
    last_seq            INTEGER,
    size_bytes          INTEGER,
    sha256              TEXT,
    signature           TEXT,
    key_id              TEXT,
    error               TEXT,
    PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE INDEX audit_exports_by_requested ON audit_exports (tenant_id, requested_at DESC, id DESC);
CREATE INDEX audit_exports_pending ON audit_exports (status, requested_at) WHERE status IN ('queued', 'running');

-- Domain events written in the transaction of the change they announce; the dispatcher
-- (webhooks, notifications) delivers them after commit. `data` is the webhook body's `data`.
CREATE TABLE outbox (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    id            TEXT NOT NULL,
    event_type    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    data          TEXT NOT NULL,
    dispatched_at TEXT,
    PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE INDEX outbox_pending ON outbox (created_at, id) WHERE dispatched_at IS NULL;
CREATE INDEX outbox_by_type ON outbox (tenant_id, event_type, created_at);
