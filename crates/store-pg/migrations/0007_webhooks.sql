-- Webhook registrations, their deliveries (one per event per registration, fanned out from the
-- outbox) and every delivery attempt. The outbox learns whether an event has been fanned out.

-- A receiver of events. `secret` signs deliveries; during a rotation's overlap
-- `previous_secret` signs too, until `previous_secret_until`.
CREATE TABLE webhooks (
    tenant_id              uuid NOT NULL REFERENCES tenants (id),
    id                     uuid NOT NULL,
    url                    text NOT NULL,
    description            text,
    events                 jsonb NOT NULL,
    active                 boolean NOT NULL,
    disabled_reason        text,
    secret                 text NOT NULL,
    previous_secret        text,
    previous_secret_until  timestamptz,
    -- Circuit breaker: failures in a row, and no attempt before this time.
    consecutive_failures   integer NOT NULL DEFAULT 0,
    circuit_open_until     timestamptz,
    created_by             uuid,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL,
    deleted_at             timestamptz,
    version                bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX webhooks_active ON webhooks (tenant_id) WHERE active AND deleted_at IS NULL;

-- One event for one registration. `body` holds the exact bytes sent (redelivery repeats them).
-- `ordering_key` (the case) keeps a case's events in order per registration.
CREATE TABLE webhook_deliveries (
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    id               uuid NOT NULL,
    webhook_id       uuid NOT NULL,
    event_id         uuid NOT NULL,
    event_type       text NOT NULL,
    body             text NOT NULL,
    ordering_key     text,
    state            text NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed', 'dead')),
    attempt          integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    status_code      integer,
    error            text,
    duration_ms      bigint,
    redelivery_of    uuid,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, webhook_id) REFERENCES webhooks (tenant_id, id)
);
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
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    delivery_id  uuid NOT NULL,
    attempt      integer NOT NULL,
    started_at   timestamptz NOT NULL,
    status_code  integer,
    duration_ms  bigint NOT NULL,
    error        text,
    PRIMARY KEY (tenant_id, delivery_id, attempt)
);

ALTER TABLE outbox ADD COLUMN fanned_out_at timestamptz;
-- Events older than webhooks have nobody to go to.
UPDATE outbox SET fanned_out_at = created_at;
CREATE INDEX outbox_to_fan_out ON outbox (created_at, id) WHERE fanned_out_at IS NULL;
