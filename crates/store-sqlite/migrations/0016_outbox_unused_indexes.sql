-- Two indexes of the outbox that no statement reads, though every event written enters both
-- (and, on PostgreSQL, `outbox_by_type` again when the event is fanned out): `outbox_pending`
-- served the dispatcher before the partial indexes of migrations 0007 and 0014 took over its
-- reads; `outbox_by_type` served no query of the product (only the dispatcher reads the
-- outbox, by its partial indexes and by primary key).
DROP INDEX outbox_pending;
DROP INDEX outbox_by_type;
