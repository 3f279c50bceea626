-- The full-text index of a case's title and notes is rewritten only when one of them changes.
-- `AFTER UPDATE OF title, notes` matches any update that sets them, even to the same value, and
-- the store's update used to set every column: a status change deleted and re-inserted the
-- case's FTS5 entries. PostgreSQL's 0015 moves its search vector off the case row for the same
-- reason.
DROP TRIGGER cases_fts_update;
CREATE TRIGGER cases_fts_update AFTER UPDATE OF title, notes ON cases
WHEN old.title IS NOT new.title OR old.notes IS NOT new.notes
BEGIN
    INSERT INTO cases_fts (cases_fts, rowid, title, notes) VALUES ('delete', old.rid, old.title, old.notes);
    INSERT INTO cases_fts (rowid, title, notes) VALUES (new.rid, new.title, new.notes);
END;
