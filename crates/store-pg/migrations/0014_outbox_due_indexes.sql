-- The dispatcher's poll (`outbox::due`, every delivery tick) and its claims, each from an index
-- that holds only the rows it asks about. Both walked `outbox_pending`, which also holds every
-- event not yet fanned out: when the answer was "none", each poll read all of those (a backlog,
-- say, while no worker runs). Both indexes stay near empty: an event without post-actions is
-- marked dispatched by the update that fans it out, so it never enters `outbox_to_settle`
-- (only rows an earlier version fanned out without settling do), and `outbox_work` holds the
-- events whose post-actions have not yet run.
CREATE INDEX outbox_work ON outbox (created_at, id)
    WHERE dispatched_at IS NULL AND actions IS NOT NULL;
CREATE INDEX outbox_to_settle ON outbox (created_at, id)
    WHERE dispatched_at IS NULL AND actions IS NULL AND fanned_out_at IS NOT NULL;
