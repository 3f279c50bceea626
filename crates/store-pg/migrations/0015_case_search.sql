-- A case's full-text document moves off the case row into `case_search`, written only when the
-- title or notes change. As a stored generated column it was computed again, and its GIN
-- entries inserted again, on every update of the case: a status change cannot be a HOT update
-- (status and `updated_at` are indexed), so each new row version enters every index. Measured
-- with pgbench (`-M prepared -c 8`, an update of status, `updated_at` and version; 17,700
-- cases): with 3.5 kB of notes, 1,960 updates/s with the generated column and 4,370-4,880 with
-- this table (docs/benchmarks.md, Transitions run 11). The tokenisation is unchanged (see
-- `cases.search` in 0004): split on every character that is not a letter or digit, lowercased,
-- no stemming, as SQLite's FTS5 and the query side split.
CREATE FUNCTION case_search_document(title text, notes text) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN to_tsvector('simple', regexp_replace(title || ' ' || coalesce(notes, ''), '[^[:alnum:]]+', ' ', 'g'));

CREATE TABLE case_search (
    tenant_id  uuid NOT NULL,
    case_id    uuid NOT NULL,
    search     tsvector NOT NULL,
    PRIMARY KEY (tenant_id, case_id),
    FOREIGN KEY (tenant_id, case_id) REFERENCES cases (tenant_id, id) ON DELETE CASCADE
);
INSERT INTO case_search (tenant_id, case_id, search)
    SELECT tenant_id, id, case_search_document(title, notes) FROM cases;
CREATE INDEX case_search_words ON case_search USING gin (search);
DROP INDEX cases_search;
ALTER TABLE cases DROP COLUMN search;

-- Kept in step by triggers, as SQLite's `cases_fts` is: once per insert statement, from its
-- transition table (a bulk insert writes its documents in one statement); on an update only
-- when the title or notes differ (`UPDATE OF` alone matches any update that sets them, even to
-- the same value). The update upserts, so a row missing for any reason (triggers bypassed by a
-- restore, say) comes back with the case's next edit.
CREATE FUNCTION case_search_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO case_search (tenant_id, case_id, search)
        SELECT tenant_id, id, case_search_document(title, notes) FROM inserted;
    RETURN NULL;
END
$$;
CREATE TRIGGER cases_search_insert AFTER INSERT ON cases REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION case_search_insert();

CREATE FUNCTION case_search_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO case_search (tenant_id, case_id, search)
        VALUES (NEW.tenant_id, NEW.id, case_search_document(NEW.title, NEW.notes))
        ON CONFLICT (tenant_id, case_id) DO UPDATE SET search = EXCLUDED.search;
    RETURN NULL;
END
$$;
CREATE TRIGGER cases_search_update AFTER UPDATE OF title, notes ON cases
    FOR EACH ROW WHEN (OLD.title IS DISTINCT FROM NEW.title OR OLD.notes IS DISTINCT FROM NEW.notes)
    EXECUTE FUNCTION case_search_update();
