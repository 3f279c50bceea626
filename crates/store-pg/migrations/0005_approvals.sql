-- Transition requests: moves waiting for approval (DESIGN.md "Transition request"). The
-- approval state (tiers, slots, decisions, deadlines) is one JSON document written whole under
-- the row's version; the columns beside it serve the inbox, the one-pending-per-case rule and
-- the timer.
CREATE TABLE transition_requests (
    tenant_id              uuid NOT NULL REFERENCES tenants (id),
    id                     uuid NOT NULL,
    case_id                uuid NOT NULL,
    case_version           bigint NOT NULL,
    from_status            text NOT NULL,
    to_status              text NOT NULL,
    rule_id                text,
    requested_by           uuid NOT NULL,
    requested_by_label     text NOT NULL,
    reason                 text,
    status                 text NOT NULL CHECK (status IN
        ('pending', 'approved', 'applied', 'rejected', 'expired', 'cancelled', 'superseded')),
    current_tier           integer NOT NULL,
    approval               jsonb NOT NULL,
    post_actions           jsonb NOT NULL,
    requested_at           timestamptz NOT NULL,
    approval_requested_at  timestamptz NOT NULL,
    approval_completed_at  timestamptz,
    effective_at           timestamptz,
    next_due_at            timestamptz,
    updated_at             timestamptz NOT NULL,
    version                bigint NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, case_id) REFERENCES cases (tenant_id, id)
);
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
