-- Audit trail: one hash chain per tenant (DESIGN.md "Audit trail", docs/audit-format.md).
-- `record` holds the RFC 8785 canonical JSON that was hashed, byte for byte (text, not jsonb,
-- which would normalise it); the other columns are indexes, checked against the record.
CREATE TABLE audit_heads (
    tenant_id  uuid PRIMARY KEY REFERENCES tenants (id),
    seq        bigint NOT NULL,
    hash       text NOT NULL
);

CREATE TABLE audit_events (
    tenant_id    uuid NOT NULL,
    seq          bigint NOT NULL,
    event_id     uuid NOT NULL,
    occurred_at  timestamptz NOT NULL,
    actor        text NOT NULL,
    actor_id     uuid,
    action       text NOT NULL,
    entity_type  text NOT NULL,
    entity_id    text,
    record       text NOT NULL,
    hash         text NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_by_entity ON audit_events (tenant_id, entity_type, entity_id, seq);
CREATE INDEX audit_by_actor ON audit_events (tenant_id, actor, seq);
CREATE INDEX audit_by_action ON audit_events (tenant_id, action, seq);
CREATE INDEX audit_by_time ON audit_events (tenant_id, occurred_at, seq);

-- Append-only, enforced by the database as well as the code: UPDATE, DELETE and TRUNCATE fail.
CREATE FUNCTION casegate_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are append-only (% refused)', TG_TABLE_NAME, TG_OP;
END
$$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION casegate_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION casegate_append_only();

CREATE TABLE audit_checkpoints (
    tenant_id  uuid NOT NULL,
    seq        bigint NOT NULL,
    hash       text NOT NULL,
    signed_at  timestamptz NOT NULL,
    signature  text NOT NULL,
    key_id     text NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION casegate_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION casegate_append_only();
