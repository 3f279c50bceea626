-- Settled events (fanned out to webhooks and dispatched) are purged by the worker once they are
-- older than the outbox retention (`CASEGATE_OUTBOX_RETENTION_DAYS`, `outbox::purge_settled`);
-- until then nothing deleted an outbox row and the table grew by one row per move for ever.
-- The purge reads them from this index in the order they settled; an event enters it once,
-- with the update that settles it.
CREATE INDEX outbox_settled ON outbox (dispatched_at)
    WHERE fanned_out_at IS NOT NULL AND dispatched_at IS NOT NULL;
