-- Deliveries are claimed per registration, oldest due first (see `webhooks::claim_due`): this
-- index lets each registration's walk stop after one batch instead of sorting the whole
-- queue, so a claim costs the same with 50 or 50,000 deliveries waiting.
DROP INDEX webhook_deliveries_due;
CREATE INDEX webhook_deliveries_due
    ON webhook_deliveries (tenant_id, webhook_id, next_attempt_at, created_at, event_id)
    WHERE state IN ('pending', 'failed');
