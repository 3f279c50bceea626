-- Deliveries are claimed per registration, oldest due first (see `webhooks::claim_due`): this
-- index lets each registration's walk stop after one batch instead of sorting the whole
-- queue, so a claim costs the same with 50 or 50,000 deliveries waiting.
DROP INDEX webhook_deliveries_due;
CREATE INDEX webhook_deliveries_due
    ON webhook_deliveries (tenant_id, webhook_id, next_attempt_at, created_at, event_id)
    WHERE state IN ('pending', 'failed');

-- Queue tables: every row is updated twice or more on its way through (claimed, finished), so
-- their indexes gather dead entries and their statistics go stale far faster than the 20 %
-- autovacuum default notices at scale. Vacuum and analyse them early: the claim's plan depends
-- on current statistics for the per-case order check.
ALTER TABLE webhook_deliveries SET (autovacuum_vacuum_scale_factor = 0.02,
                                    autovacuum_analyze_scale_factor = 0.01);
ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0.02,
                        autovacuum_analyze_scale_factor = 0.01);
