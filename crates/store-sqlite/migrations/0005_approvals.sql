-- Transition requests: moves waiting for approval (DESIGN.md "Transition request"). The
-- approval state (tiers, slots, decisions, deadlines) is one JSON document written whole under
-- the row's version; the columns beside it serve the inbox, the one-pending-per-case rule and
-- the timer.
CREATE TABLE transition_requests (
    tenant_id              TEXT NOT NULL REFERENCES tenants (id),
    id                     TEXT NOT NULL,
    case_id                TEXT NOT NULL,
    case_version           INTEGER NOT NULL,
    from_status            TEXT NOT NULL,
    to_status              TEXT NOT NULL,
    rule_id                TEXT,
    requested_by           TEXT NOT NULL,
    requested_by_label     TEXT NOT NULL,
    reason                 TEXT,
    status                 TEXT NOT NULL CHECK (status IN
        ('pending', 'approved', 'applied', 'rejected', 'expired', 'cancelled', 'superseded')),
    current_tier           INTEGER NOT NULL,
    approval               TEXT NOT NULL,
    post_actions           TEXT NOT NULL,
    requested_at           TEXT NOT NULL,
    approval_requested_at  TEXT NOT NULL,
    approval_completed_at  TEXT,
    effective_at           TEXT,
    next_due_at            TEXT,
    updated_at             TEXT NOT NULL,
    version                INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, case_id) REFERENCES cases (tenant_id, id)
) STRICT;
-- One pending request per case: the database settles two racing requesters.
CREATE UNIQUE INDEX transition_requests_one_pending
    ON transition_requests (tenant_id, case_id) WHERE status = 'pending';
CREATE INDEX transition_requests_by_status
    ON transition_requests (tenant_id, status, requested_at, id);
CREATE INDEX transition_requests_by_case
    ON transition_requests (tenant_id, case_id, requested_at);
-- The timer's work list, across tenants.
CREATE INDEX transition_requests_due
    ON transition_requests (next_due_at) WHERE status = 'pending' AND next_due_at IS NOT NULL;
