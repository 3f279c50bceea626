-- Webhook registrations, their deliveries (one per event per registration, fanned out from the
-- outbox) and every delivery attempt. The outbox learns whether an event has been fanned out.

-- A receiver of events. `secret` signs deliveries; during a rotation's overlap
-- `previous_secret` signs too, until `previous_secret_until`.
CREATE TABLE webhooks (
    tenant_id              TEXT NOT NULL REFERENCES tenants (id),
    id                     TEXT NOT NULL,
    url                    TEXT NOT NULL,
    description            TEXT,
    events                 TEXT NOT NULL,
    active                 INTEGER NOT NULL,
    disabled_reason        TEXT,
    secret                 TEXT NOT NULL,
    previous_secret        TEXT,
    previous_secret_until  TEXT,
    -- Circuit breaker: failures in a row, and no attempt before this time.
    consecutive_failures   INTEGER NOT NULL DEFAULT 0,
    circuit_open_until     TEXT,
    created_by             TEXT,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL,
    deleted_at             TEXT,
    version                INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE INDEX webhooks_active ON webhooks (tenant_id) WHERE active = 1 AND deleted_at IS NULL;

-- One event for one registration. `body` holds the exact bytes sent (redelivery repeats them).
-- `ordering_key` (the case) keeps a case's events in order per registration.
CREATE TABLE webhook_deliveries (
    tenant_id        TEXT NOT NULL REFERENCES tenants (id),
    id               TEXT NOT NULL,
    webhook_id       TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    body             TEXT NOT NULL,
    ordering_key     TEXT,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed', 'dead')),
    attempt          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT,
    status_code      INTEGER,
    error            TEXT,
    duration_ms      INTEGER,
    redelivery_of    TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, webhook_id) REFERENCES webhooks (tenant_id, id)
) STRICT;
-- Fan-out is idempotent: one first delivery per event per registration.
CREATE UNIQUE INDEX webhook_deliveries_once ON webhook_deliveries (tenant_id, webhook_id, event_id)
    WHERE redelivery_of IS NULL;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE state IN ('pending', 'failed');
CREATE INDEX webhook_deliveries_by_hook ON webhook_deliveries (tenant_id, webhook_id, created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_in_order ON webhook_deliveries (tenant_id, webhook_id, ordering_key, created_at)
    WHERE state IN ('pending', 'failed');

-- Every attempt at a delivery.
CREATE TABLE webhook_attempts (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    delivery_id  TEXT NOT NULL,
    attempt      INTEGER NOT NULL,
    started_at   TEXT NOT NULL,
    status_code  INTEGER,
    duration_ms  INTEGER NOT NULL,
    error        TEXT,
    PRIMARY KEY (tenant_id, delivery_id, attempt)
) STRICT;

ALTER TABLE outbox ADD COLUMN fanned_out_at TEXT;
-- Events older than webhooks have nobody to go to.
UPDATE outbox SET fanned_out_at = created_at;
CREATE INDEX outbox_to_fan_out ON outbox (created_at, id) WHERE fanned_out_at IS NULL;
