-- Tasks, post-action runs and in-app notifications; the outbox learns to carry work for the
-- dispatcher (DESIGN.md principle 3: post-transition actions run from the outbox, at least once,
-- idempotently, keyed by the event id).

-- A piece of work on a case. `mandatory` tasks block leaving `blocks_status` until done.
CREATE TABLE tasks (
    tenant_id           TEXT NOT NULL REFERENCES tenants (id),
    id                  TEXT NOT NULL,
    case_id             TEXT NOT NULL,
    title               TEXT NOT NULL,
    description         TEXT,
    status              TEXT NOT NULL CHECK (status IN ('open', 'done')),
    mandatory           INTEGER NOT NULL,
    blocks_status       TEXT,
    assignee_role       TEXT,
    assigned_to         TEXT,
    due_at              TEXT,
    source              TEXT NOT NULL CHECK (source IN ('manual', 'workflow', 'post_action')),
    -- Idempotency key of generated tasks (`<event id>#<action index>` for post-actions).
    source_key          TEXT,
    created_by          TEXT,
    created_by_label    TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    completed_at        TEXT,
    completed_by        TEXT,
    completed_by_label  TEXT,
    completion_note     TEXT,
    version             INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, case_id) REFERENCES cases (tenant_id, id),
    FOREIGN KEY (tenant_id, assigned_to) REFERENCES users (tenant_id, id),
    CHECK (NOT mandatory OR blocks_status IS NOT NULL)
) STRICT;
CREATE UNIQUE INDEX tasks_by_source ON tasks (tenant_id, source_key) WHERE source_key IS NOT NULL;
CREATE INDEX tasks_by_case ON tasks (tenant_id, case_id, created_at, id);
CREATE INDEX tasks_by_status ON tasks (tenant_id, status, created_at, id);
CREATE INDEX tasks_by_assignee ON tasks (tenant_id, assigned_to, status, created_at);

-- One post-action of one outbox event, once it has run (or failed for good). Written in the
-- action's own transaction: a retried event skips the actions that already ran.
CREATE TABLE post_action_runs (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    event_id     TEXT NOT NULL,
    idx          INTEGER NOT NULL,
    action_type  TEXT NOT NULL,
    case_id      TEXT NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('done', 'failed')),
    error        TEXT,
    ran_at       TEXT NOT NULL,
    PRIMARY KEY (tenant_id, event_id, idx)
) STRICT;

-- A message for one person (the in-app inbox).
CREATE TABLE notifications (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    id          TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    message     TEXT NOT NULL,
    case_id     TEXT,
    data        TEXT NOT NULL,
    -- Idempotency key: the same source never notifies the same person twice.
    source_key  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    read_at     TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id),
    UNIQUE (tenant_id, user_id, source_key)
) STRICT;
CREATE INDEX notifications_by_user ON notifications (tenant_id, user_id, created_at DESC, id DESC);

-- Work the dispatcher does for an event (post-actions), and its retry state.
ALTER TABLE outbox ADD COLUMN actions TEXT;
ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN next_attempt_at TEXT;
ALTER TABLE outbox ADD COLUMN last_error TEXT;
