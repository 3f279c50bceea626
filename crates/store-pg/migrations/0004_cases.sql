-- Cases, alerts and the investigation record (docs/cases.md). Keyed by tenant first; the
-- investigation record (comments, attachments, activities, status history, relations) is
-- append-only, enforced by triggers.

-- A case type: its custom-field definitions and lifecycle document.
CREATE TABLE case_types (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    key         text NOT NULL,
    name        text NOT NULL,
    builtin     boolean NOT NULL,
    fields      jsonb NOT NULL,
    workflow    jsonb NOT NULL,
    version     bigint NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

-- The last reference number handed out per tenant and year (CASE-<year>-<n>).
CREATE TABLE case_counters (
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    year       integer NOT NULL,
    last       bigint NOT NULL,
    PRIMARY KEY (tenant_id, year)
);

-- `parent_case_id` is an alert's `case_id`: the case it was escalated into.
-- `entry_seq` orders the case's record (comments, attachments, activities, history).
-- `search` is the full-text document of title and notes: split on every character that is not a
-- letter or digit, lowercased, no stemming (`simple`), exactly as SQLite's FTS5 `unicode61`
-- tokenizer and the query side (`casegate_service::cases::words_of`) split, so both backends
-- find the same cases.
CREATE TABLE cases (
    tenant_id           uuid NOT NULL,
    id                  uuid NOT NULL,
    reference           text NOT NULL,
    case_type           text NOT NULL,
    title               text NOT NULL,
    status              text NOT NULL,
    priority            text NOT NULL CHECK (priority IN ('low', 'medium', 'high', 'critical')),
    score               double precision,
    assigned_to         uuid,
    business_unit       text,
    fields              jsonb NOT NULL,
    reasons             jsonb NOT NULL,
    notes               text,
    source              jsonb,
    screening_id        text,
    subject_id          text,
    parent_case_id      uuid,
    disposition         text,
    disposition_reason  text,
    escalated           boolean NOT NULL DEFAULT false,
    escalated_to        uuid,
    detected_at         timestamptz,
    created_by          uuid,
    created_by_label    text NOT NULL,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    version             bigint NOT NULL,
    entry_seq           bigint NOT NULL DEFAULT 0,
    search              tsvector GENERATED ALWAYS AS (to_tsvector('simple',
                            regexp_replace(title || ' ' || coalesce(notes, ''), '[^[:alnum:]]+', ' ', 'g'))) STORED,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, reference),
    FOREIGN KEY (tenant_id, case_type) REFERENCES case_types (tenant_id, key),
    FOREIGN KEY (tenant_id, assigned_to) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, escalated_to) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, parent_case_id) REFERENCES cases (tenant_id, id)
);
CREATE INDEX cases_by_created ON cases (tenant_id, created_at DESC, id DESC);
CREATE INDEX cases_by_updated ON cases (tenant_id, updated_at DESC, id DESC);
CREATE INDEX cases_by_status ON cases (tenant_id, status, created_at DESC, id DESC);
CREATE INDEX cases_by_assignee ON cases (tenant_id, assigned_to, created_at DESC, id DESC);
CREATE INDEX cases_by_type ON cases (tenant_id, case_type, created_at DESC, id DESC);
CREATE INDEX cases_by_priority ON cases (tenant_id, priority, created_at DESC, id DESC);
CREATE INDEX cases_by_parent ON cases (tenant_id, parent_case_id) WHERE parent_case_id IS NOT NULL;
CREATE INDEX cases_search ON cases USING gin (search);

-- Values of the custom fields a case type marks `indexed`, as JSON text, for equality filters.
CREATE TABLE case_field_values (
    tenant_id  uuid NOT NULL,
    case_type  text NOT NULL,
    key        text NOT NULL,
    value      text NOT NULL,
    case_id    uuid NOT NULL,
    PRIMARY KEY (tenant_id, case_type, key, value, case_id),
    FOREIGN KEY (tenant_id, case_id) REFERENCES cases (tenant_id, id)
);
CREATE INDEX case_field_values_by_case ON case_field_values (tenant_id, case_id);

CREATE TABLE case_comments (
    tenant_id     uuid NOT NULL,
    id            uuid NOT NULL,
    case_id       uuid NOT NULL,
    seq           bigint NOT NULL,
    author_id     uuid,
    author_label  text NOT NULL,
    content       text NOT NULL,
    created_at    timestamptz NOT NULL,
    search        tsvector GENERATED ALWAYS AS
                      (to_tsvector('simple', regexp_replace(content, '[^[:alnum:]]+', ' ', 'g'))) STORED,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, case_id, seq),
    FOREIGN KEY (tenant_id, case_id) REFERENCES cases (tenant_id, id)
);
CREATE INDEX case_comments_search ON case_comments USING gin (search);

CREATE TABLE case_attachments (
    tenant_id          uuid NOT NULL,
    id                 uuid NOT NULL,
    case_id            uuid NOT NULL,
    seq                bigint NOT NULL,
    name               text NOT NULL,
    media_type         text NOT NULL,
    url                text,
    sha256             text,
    size               bigint,
    stored             boolean NOT NULL,
    uploaded_by        uuid,
    uploaded_by_label  text NOT NULL,
    created_at         timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, case_id, seq),
    FOREIGN KEY (tenant_id, case_id) REFERENCES cases (tenant_id, id)
);

-- Escalations, dispositions, overrides, reopenings, assignments…: what was done, by whom.
CREATE TABLE case_activities (
    tenant_id    uuid NOT NULL,
    id           uuid NOT NULL,
    case_id      uuid NOT NULL,
    seq          bigint NOT NULL,
    kind         text NOT NULL,
    actor_id     uuid,
    actor_label  text NOT NULL,
    data         jsonb NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, case_id, seq),
    FOREIGN KEY (tenant_id, case_id) REFERENCES cases (tenant_id, id)
);

CREATE TABLE case_status_history (
    tenant_id              uuid NOT NULL,
    id                     uuid NOT NULL,
    case_id                uuid NOT NULL,
    seq                    bigint NOT NULL,
    from_status            text,
    to_status              text NOT NULL,
    rule_id                text,
    request_id             uuid,
    actor_id               uuid,
    actor_label            text NOT NULL,
    reason                 text,
    approvals              jsonb NOT NULL,
    requested_at           timestamptz NOT NULL,
    approval_requested_at  timestamptz,
    approval_completed_at  timestamptz,
    effective_at           timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, case_id, seq),
    FOREIGN KEY (tenant_id, case_id) REFERENCES cases (tenant_id, id)
);

-- People, organisations, accounts, devices and addresses that cases are about.
CREATE TABLE parties (
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    id           uuid NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('person', 'organisation', 'account', 'device', 'address')),
    name         text NOT NULL,
    identifiers  jsonb NOT NULL,
    created_by   uuid,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX parties_by_name ON parties (tenant_id, name);

-- Links from a case to another case, an alert, a party or (later) a SAR, for link analysis.
CREATE TABLE case_relations (
    tenant_id         uuid NOT NULL,
    id                uuid NOT NULL,
    case_id           uuid NOT NULL,
    seq               bigint NOT NULL,
    target_type       text NOT NULL CHECK (target_type IN ('case', 'alert', 'party', 'sar')),
    target_id         uuid NOT NULL,
    relation          text NOT NULL,
    created_by        uuid,
    created_by_label  text NOT NULL,
    created_at        timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, case_id, seq),
    UNIQUE (tenant_id, case_id, target_type, target_id, relation),
    FOREIGN KEY (tenant_id, case_id) REFERENCES cases (tenant_id, id)
);
CREATE INDEX case_relations_by_target ON case_relations (tenant_id, target_type, target_id);

CREATE TRIGGER case_comments_append_only BEFORE UPDATE OR DELETE ON case_comments
    FOR EACH ROW EXECUTE FUNCTION casegate_append_only();
CREATE TRIGGER case_attachments_append_only BEFORE UPDATE OR DELETE ON case_attachments
    FOR EACH ROW EXECUTE FUNCTION casegate_append_only();
CREATE TRIGGER case_activities_append_only BEFORE UPDATE OR DELETE ON case_activities
    FOR EACH ROW EXECUTE FUNCTION casegate_append_only();
CREATE TRIGGER case_status_history_append_only BEFORE UPDATE OR DELETE ON case_status_history
    FOR EACH ROW EXECUTE FUNCTION casegate_append_only();
CREATE TRIGGER case_relations_append_only BEFORE UPDATE OR DELETE ON case_relations
    FOR EACH ROW EXECUTE FUNCTION casegate_append_only();
