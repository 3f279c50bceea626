-- Cases, alerts and the investigation record (docs/cases.md). Keyed by tenant first; the
-- investigation record (comments, attachments, activities, status history, relations) is
-- append-only, enforced by triggers.

-- A case type: its custom-field definitions and lifecycle document (JSON).
CREATE TABLE case_types (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    key         TEXT NOT NULL,
    name        TEXT NOT NULL,
    builtin     INTEGER NOT NULL,
    fields      TEXT NOT NULL,
    workflow    TEXT NOT NULL,
    version     INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, key)
) STRICT;

-- The last reference number handed out per tenant and year (CASE-<year>-<n>).
CREATE TABLE case_counters (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    year       INTEGER NOT NULL,
    last       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, year)
) STRICT;

-- `rid` is a stable integer key for the FTS5 index (a plain rowid may change on VACUUM).
-- `parent_case_id` is an alert's `case_id`: the case it was escalated into.
-- `entry_seq` orders the case's record (comments, attachments, activities, history).
CREATE TABLE cases (
    tenant_id           TEXT NOT NULL,
    id                  TEXT NOT NULL,
    rid                 INTEGER NOT NULL UNIQUE,
    reference           TEXT NOT NULL,
    case_type           TEXT NOT NULL,
    title               TEXT NOT NULL,
    status              TEXT NOT NULL,
    priority            TEXT NOT NULL CHECK (priority IN ('low', 'medium', 'high', 'critical')),
    score               REAL,
    assigned_to         TEXT,
    business_unit       TEXT,
    fields              TEXT NOT NULL,
    reasons             TEXT NOT NULL,
    notes               TEXT,
    source              TEXT,
    screening_id        TEXT,
    subject_id          TEXT,
    parent_case_id      TEXT,
    disposition         TEXT,
    disposition_reason  TEXT,
    escalated           INTEGER NOT NULL DEFAULT 0,
    escalated_to        TEXT,
    detected_at         TEXT,
    created_by          TEXT,
    created_by_label    TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    version             INTEGER NOT NULL,
    entry_seq           INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, reference),
    FOREIGN KEY (tenant_id, case_type) REFERENCES case_types (tenant_id, key),
    FOREIGN KEY (tenant_id, assigned_to) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, escalated_to) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, parent_case_id) REFERENCES cases (tenant_id, id)
) STRICT;
CREATE INDEX cases_by_created ON cases (tenant_id, created_at DESC, id DESC);
CREATE INDEX cases_by_updated ON cases (tenant_id, updated_at DESC, id DESC);
CREATE INDEX cases_by_status ON cases (tenant_id, status, created_at DESC, id DESC);
CREATE INDEX cases_by_assignee ON cases (tenant_id, assigned_to, created_at DESC, id DESC);
CREATE INDEX cases_by_type ON cases (tenant_id, case_type, created_at DESC, id DESC);
CREATE INDEX cases_by_priority ON cases (tenant_id, priority, created_at DESC, id DESC);
CREATE INDEX cases_by_parent ON cases (tenant_id, parent_case_id) WHERE parent_case_id IS NOT NULL;

-- Values of the custom fields a case type marks `indexed`, as JSON text, for equality filters.
CREATE TABLE case_field_values (
    tenant_id  TEXT NOT NULL,
    case_type  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    case_id    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, case_type, key, value, case_id),
    FOREIGN KEY (tenant_id, case_id) REFERENCES cases (tenant_id, id)
) STRICT, WITHOUT ROWID;
CREATE INDEX case_field_values_by_case ON case_field_values (tenant_id, case_id);

CREATE TABLE case_comments (
    tenant_id     TEXT NOT NULL,
    id            TEXT NOT NULL,
    rid           INTEGER NOT NULL UNIQUE,
    case_id       TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    author_id     TEXT,
    author_label  TEXT NOT NULL,
    content       TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, case_id, seq),
    FOREIGN KEY (tenant_id, case_id) REFERENCES cases (tenant_id, id)
) STRICT;

CREATE TABLE case_attachments (
    tenant_id          TEXT NOT NULL,
    id                 TEXT NOT NULL,
    case_id            TEXT NOT NULL,
    seq                INTEGER NOT NULL,
    name               TEXT NOT NULL,
    media_type         TEXT NOT NULL,
    url                TEXT,
    sha256             TEXT,
    size               INTEGER,
    stored             INTEGER NOT NULL,
    uploaded_by        TEXT,
    uploaded_by_label  TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, case_id, seq),
    FOREIGN KEY (tenant_id, case_id) REFERENCES cases (tenant_id, id)
) STRICT;

-- Escalations, dispositions, overrides, reopenings, assignments…: what was done, by whom.
CREATE TABLE case_activities (
    tenant_id    TEXT NOT NULL,
    id           TEXT NOT NULL,
    case_id      TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    actor_id     TEXT,
    actor_label  TEXT NOT NULL,
    data         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, case_id, seq),
    FOREIGN KEY (tenant_id, case_id) REFERENCES cases (tenant_id, id)
) STRICT;

CREATE TABLE case_status_history (
    tenant_id              TEXT NOT NULL,
    id                     TEXT NOT NULL,
    case_id                TEXT NOT NULL,
    seq                    INTEGER NOT NULL,
    from_status            TEXT,
    to_status              TEXT NOT NULL,
    rule_id                TEXT,
    request_id             TEXT,
    actor_id               TEXT,
    actor_label            TEXT NOT NULL,
    reason                 TEXT,
    approvals              TEXT NOT NULL,
    requested_at           TEXT NOT NULL,
    approval_requested_at  TEXT,
    approval_completed_at  TEXT,
    effective_at           TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, case_id, seq),
    FOREIGN KEY (tenant_id, case_id) REFERENCES cases (tenant_id, id)
) STRICT;

-- People, organisations, accounts, devices and addresses that cases are about.
CREATE TABLE parties (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    id           TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('person', 'organisation', 'account', 'device', 'address')),
    name         TEXT NOT NULL,
    identifiers  TEXT NOT NULL,
    created_by   TEXT,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE INDEX parties_by_name ON parties (tenant_id, name);

-- Links from a case to another case, an alert, a party or (later) a SAR, for link analysis.
CREATE TABLE case_relations (
    tenant_id         TEXT NOT NULL,
    id                TEXT NOT NULL,
    case_id           TEXT NOT NULL,
    seq               INTEGER NOT NULL,
    target_type       TEXT NOT NULL CHECK (target_type IN ('case', 'alert', 'party', 'sar')),
    target_id         TEXT NOT NULL,
    relation          TEXT NOT NULL,
    created_by        TEXT,
    created_by_label  TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, case_id, seq),
    UNIQUE (tenant_id, case_id, target_type, target_id, relation),
    FOREIGN KEY (tenant_id, case_id) REFERENCES cases (tenant_id, id)
) STRICT;
CREATE INDEX case_relations_by_target ON case_relations (tenant_id, target_type, target_id);

CREATE TRIGGER case_comments_no_update BEFORE UPDATE ON case_comments
BEGIN SELECT RAISE(ABORT, 'case comments are append-only'); END;
CREATE TRIGGER case_comments_no_delete BEFORE DELETE ON case_comments
BEGIN SELECT RAISE(ABORT, 'case comments are append-only'); END;
CREATE TRIGGER case_attachments_no_update BEFORE UPDATE ON case_attachments
BEGIN SELECT RAISE(ABORT, 'case attachments are append-only'); END;
CREATE TRIGGER case_attachments_no_delete BEFORE DELETE ON case_attachments
BEGIN SELECT RAISE(ABORT, 'case attachments are append-only'); END;
CREATE TRIGGER case_activities_no_update BEFORE UPDATE ON case_activities
BEGIN SELECT RAISE(ABORT, 'case activities are append-only'); END;
CREATE TRIGGER case_activities_no_delete BEFORE DELETE ON case_activities
BEGIN SELECT RAISE(ABORT, 'case activities are append-only'); END;
CREATE TRIGGER case_status_history_no_update BEFORE UPDATE ON case_status_history
BEGIN SELECT RAISE(ABORT, 'case status history is append-only'); END;
CREATE TRIGGER case_status_history_no_delete BEFORE DELETE ON case_status_history
BEGIN SELECT RAISE(ABORT, 'case status history is append-only'); END;
CREATE TRIGGER case_relations_no_update BEFORE UPDATE ON case_relations
BEGIN SELECT RAISE(ABORT, 'case relations are append-only'); END;
CREATE TRIGGER case_relations_no_delete BEFORE DELETE ON case_relations
BEGIN SELECT RAISE(ABORT, 'case relations are append-only'); END;

-- Full-text search (FTS5, external content kept in step by triggers): a case's title and
-- notes, and each comment. Tokens are runs of Unicode letters and digits, lowercased, accents
-- kept, no stemming: the same split as the PostgreSQL columns and the query side.
CREATE VIRTUAL TABLE cases_fts USING fts5(
    title, notes, content = 'cases', content_rowid = 'rid', tokenize = 'unicode61 remove_diacritics 0');
CREATE TRIGGER cases_fts_insert AFTER INSERT ON cases BEGIN
    INSERT INTO cases_fts (rowid, title, notes) VALUES (new.rid, new.title, new.notes);
END;
CREATE TRIGGER cases_fts_update AFTER UPDATE OF title, notes ON cases BEGIN
    INSERT INTO cases_fts (cases_fts, rowid, title, notes) VALUES ('delete', old.rid, old.title, old.notes);
    INSERT INTO cases_fts (rowid, title, notes) VALUES (new.rid, new.title, new.notes);
END;
CREATE TRIGGER cases_fts_delete AFTER DELETE ON cases BEGIN
    INSERT INTO cases_fts (cases_fts, rowid, title, notes) VALUES ('delete', old.rid, old.title, old.notes);
END;
CREATE VIRTUAL TABLE case_comments_fts USING fts5(
    content, content = 'case_comments', content_rowid = 'rid', tokenize = 'unicode61 remove_diacritics 0');
CREATE TRIGGER case_comments_fts_insert AFTER INSERT ON case_comments BEGIN
    INSERT INTO case_comments_fts (rowid, content) VALUES (new.rid, new.content);
END;
