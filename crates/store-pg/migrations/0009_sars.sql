-- Suspicious activity reports. A SAR is worked as a case of type SAR_FILING (its status,
-- history and approval gate are that case's); this row holds what only a report has. `id` is
-- the work item's case id; `case_id` the case the report comes from.
CREATE TABLE sars (
    tenant_id           uuid NOT NULL REFERENCES tenants (id),
    id                  uuid NOT NULL,
    case_id             uuid NOT NULL,
    filing_type         text NOT NULL CHECK (filing_type IN ('initial', 'correct_prior', 'continuing_activity')),
    jurisdiction        text NOT NULL,
    prior_report_id     text,
    prior_filed_on      text,
    detected_on         text NOT NULL,
    opened_on           text NOT NULL,
    -- The end of the deadline day (UTC) and how it was computed.
    deadline_at         timestamptz NOT NULL,
    deadline            jsonb NOT NULL,
    content             jsonb NOT NULL,
    -- The last document check per format (`{"fincen_xml": {...}}`).
    checks              jsonb NOT NULL DEFAULT '{}',
    transmitter         text,
    filing_reference    text,
    submitted_at        timestamptz,
    submitted_by        uuid,
    bsa_id              text,
    acknowledgement     jsonb,
    acknowledged_at     timestamptz,
    -- How many deadline warnings went out (see casegate_domain::sar::warning_dates).
    warnings_sent       bigint NOT NULL DEFAULT 0,
    created_by          uuid,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    version             bigint NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, id) REFERENCES cases (tenant_id, id),
    FOREIGN KEY (tenant_id, case_id) REFERENCES cases (tenant_id, id)
);
CREATE INDEX sars_case ON sars (tenant_id, case_id);
-- The deadline sweep reads across tenants; lists filter by tenant first.
CREATE INDEX sars_deadline ON sars (deadline_at);

-- Who files, who transmits, whom the regulator calls: one profile per tenant.
CREATE TABLE filing_profiles (
    tenant_id   uuid NOT NULL PRIMARY KEY REFERENCES tenants (id),
    profile     jsonb NOT NULL,
    version     bigint NOT NULL,
    updated_by  uuid,
    updated_at  timestamptz NOT NULL
);
