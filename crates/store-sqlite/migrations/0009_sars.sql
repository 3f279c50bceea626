-- Suspicious activity reports. A SAR is worked as a case of type SAR_FILING (its status,
-- history and approval gate are that case's); this row holds what only a report has. `id` is
-- the work item's case id; `case_id` the case the report comes from.
CREATE TABLE sars (
    tenant_id           TEXT NOT NULL REFERENCES tenants (id),
    id                  TEXT NOT NULL,
    case_id             TEXT NOT NULL,
    filing_type         TEXT NOT NULL CHECK (filing_type IN ('initial', 'correct_prior', 'continuing_activity')),
    jurisdiction        TEXT NOT NULL,
    prior_report_id     TEXT,
    prior_filed_on      TEXT,
    detected_on         TEXT NOT NULL,
    opened_on           TEXT NOT NULL,
    -- The end of the deadline day (UTC) and how it was computed.
    deadline_at         TEXT NOT NULL,
    deadline            TEXT NOT NULL,
    content             TEXT NOT NULL,
    -- The last document check per format (`{"fincen_xml": {...}}`).
    checks              TEXT NOT NULL DEFAULT '{}',
    transmitter         TEXT,
    filing_reference    TEXT,
    submitted_at        TEXT,
    submitted_by        TEXT,
    bsa_id              TEXT,
    acknowledgement     TEXT,
    acknowledged_at     TEXT,
    -- How many deadline warnings went out (see casegate_domain::sar::warning_dates).
    warnings_sent       INTEGER NOT NULL DEFAULT 0,
    created_by          TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    version             INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, id) REFERENCES cases (tenant_id, id),
    FOREIGN KEY (tenant_id, case_id) REFERENCES cases (tenant_id, id)
) STRICT;
CREATE INDEX sars_case ON sars (tenant_id, case_id);
-- The deadline sweep reads across tenants; lists filter by tenant first.
CREATE INDEX sars_deadline ON sars (deadline_at);

-- Who files, who transmits, whom the regulator calls: one profile per tenant.
CREATE TABLE filing_profiles (
    tenant_id   TEXT NOT NULL PRIMARY KEY REFERENCES tenants (id),
    profile     TEXT NOT NULL,
    version     INTEGER NOT NULL,
    updated_by  TEXT,
    updated_at  TEXT NOT NULL
) STRICT;
