-- Audit exports (produced by the worker) and the transactional outbox of domain events.

-- One requested export. The file itself lives in the content-addressed blob store under the
-- data directory, named by `sha256`; this row holds its signature and the worker's claim.
CREATE TABLE audit_exports (
    tenant_id           uuid NOT NULL REFERENCES tenants (id),
    id                  uuid NOT NULL,
    format              text NOT NULL CHECK (format IN ('json', 'csv', 'pdf')),
    from_at             timestamptz NOT NULL,
    to_at               timestamptz NOT NULL,
    entity_type         text,
    include_hash_chain  boolean NOT NULL,
    status              text NOT NULL CHECK (status IN ('queued', 'running', 'ready', 'failed')),
    requested_by        uuid,
    requested_by_label  text NOT NULL,
    requested_at        timestamptz NOT NULL,
    attempts            bigint NOT NULL DEFAULT 0,
    lease_until         timestamptz,
    started_at          timestamptz,
    finished_at         timestamptz,
    event_count         bigint,
    first_seq           bigint,
    last_seq            bigint,
    size_bytes          bigint,
    sha256              text,
    signature           text,
    key_id              text,
    error               text,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX audit_exports_by_requested ON audit_exports (tenant_id, requested_at DESC, id DESC);
CREATE INDEX audit_exports_pending ON audit_exports (status, requested_at) WHERE status IN ('queued', 'running');

-- Domain events written in the transaction of the change they announce; the dispatcher
-- (webhooks, notifications) delivers them after commit. `data` is the webhook body's `data`.
CREATE TABLE outbox (
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    id            uuid NOT NULL,
    event_type    text NOT NULL,
    created_at    timestamptz NOT NULL,
    data          jsonb NOT NULL,
    dispatched_at timestamptz,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX outbox_pending ON outbox (created_at, id) WHERE dispatched_at IS NULL;
CREATE INDEX outbox_by_type ON outbox (tenant_id, event_type, created_at);
