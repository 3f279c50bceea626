-- Tasks, post-action runs and in-app notifications; the outbox learns to carry work for the
-- dispatcher (DESIGN.md principle 3: post-transition actions run from the outbox, at least once,
-- idempotently, keyed by the event id).

-- A piece of work on a case. `mandatory` tasks block leaving `blocks_status` until done.
CREATE TABLE tasks (
    tenant_id           uuid NOT NULL REFERENCES tenants (id),
    id                  uuid NOT NULL,
    case_id             uuid NOT NULL,
    title               text NOT NULL,
    description         text,
    status              text NOT NULL CHECK (status IN ('open', 'done')),
    mandatory           boolean NOT NULL,
    blocks_status       text,
    assignee_role       text,
    assigned_to         uuid,
    due_at              timestamptz,
    source              text NOT NULL CHECK (source IN ('manual', 'workflow', 'post_action')),
    -- Idempotency key of generated tasks (`<event id>#<action index>` for post-actions).
    source_key          text,
    created_by          uuid,
    created_by_label    text NOT NULL,
    created_at          timestamptz NOT NULL,
    completed_at        timestamptz,
    completed_by        uuid,
    completed_by_label  text,
    completion_note     text,
    version             bigint NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, case_id) REFERENCES cases (tenant_id, id),
    FOREIGN KEY (tenant_id, assigned_to) REFERENCES users (tenant_id, id),
    CHECK (NOT mandatory OR blocks_status IS NOT NULL)
);
CREATE UNIQUE INDEX tasks_by_source ON tasks (tenant_id, source_key) WHERE source_key IS NOT NULL;
CREATE INDEX tasks_by_case ON tasks (tenant_id, case_id, created_at, id);
CREATE INDEX tasks_by_status ON tasks (tenant_id, status, created_at, id);
CREATE INDEX tasks_by_assignee ON tasks (tenant_id, assigned_to, status, created_at);

-- One post-action of one outbox event, once it has run (or failed for good). Written in the
-- action's own transaction: a retried event skips the actions that already ran.
CREATE TABLE post_action_runs (
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    event_id     uuid NOT NULL,
    idx          integer NOT NULL,
    action_type  text NOT NULL,
    case_id      uuid NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('done', 'failed')),
    error        text,
    ran_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, event_id, idx)
);

-- A message for one person (the in-app inbox).
CREATE TABLE notifications (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    id          uuid NOT NULL,
    user_id     uuid NOT NULL,
    kind        text NOT NULL,
    message     text NOT NULL,
    case_id     uuid,
    data        jsonb NOT NULL,
    -- Idempotency key: the same source never notifies the same person twice.
    source_key  text NOT NULL,
    created_at  timestamptz NOT NULL,
    read_at     timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id),
    UNIQUE (tenant_id, user_id, source_key)
);
CREATE INDEX notifications_by_user ON notifications (tenant_id, user_id, created_at DESC, id DESC);

-- Work the dispatcher does for an event (post-actions), and its retry state.
ALTER TABLE outbox ADD COLUMN actions jsonb;
ALTER TABLE outbox ADD COLUMN attempts integer NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN next_attempt_at timestamptz;
ALTER TABLE outbox ADD COLUMN last_error text;
