-- Audit trail: one hash chain per tenant (DESIGN.md "Audit trail", docs/audit-format.md).
-- `record` holds the RFC 8785 canonical JSON that was hashed, byte for byte; the other columns
-- are indexes for filtering, checked against the record by verification.
CREATE TABLE audit_heads (
    tenant_id  TEXT NOT NULL PRIMARY KEY REFERENCES tenants (id),
    seq        INTEGER NOT NULL,
    hash       TEXT NOT NULL
) STRICT;

CREATE TABLE audit_events (
    tenant_id    TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    event_id     TEXT NOT NULL,
    occurred_at  TEXT NOT NULL,
    actor        TEXT NOT NULL,
    actor_id     TEXT,
    action       TEXT NOT NULL,
    entity_type  TEXT NOT NULL,
    entity_id    TEXT,
    record       TEXT NOT NULL,
    hash         TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
) STRICT;
CREATE INDEX audit_by_entity ON audit_events (tenant_id, entity_type, entity_id, seq);
CREATE INDEX audit_by_actor ON audit_events (tenant_id, actor, seq);
CREATE INDEX audit_by_action ON audit_events (tenant_id, action, seq);
CREATE INDEX audit_by_time ON audit_events (tenant_id, occurred_at, seq);

-- Append-only, enforced by the database as well as the code.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;

CREATE TABLE audit_checkpoints (
    tenant_id  TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    hash       TEXT NOT NULL,
    signed_at  TEXT NOT NULL,
    signature  TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
) STRICT;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
