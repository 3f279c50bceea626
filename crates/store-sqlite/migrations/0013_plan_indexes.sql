-- Indexes that answer frequent reads by a search whatever the planner knows. SQLite has
-- statistics only when asked (the server asks after migrations and then hourly); without them it
-- took `tenant_id = ?` to match about ten rows and chose indexes by shape, reading whole tenants. Checked with EXPLAIN QUERY PLAN and SQLite's VM step
-- counts on a database of 33,000 cases.

-- A case's linked alerts (`alert_ids` of every case read or listed: the alerts whose
-- `parent_case_id` is the case, in creation order), one index range with the order in it. With
-- only (tenant_id, parent_case_id), SQLite preferred `cases_by_created`, which gives the order
-- but reads every case of the tenant: each case read cost a scan of the tenant (0.4 ms at 3,000
-- cases, growing with the table; 6 µs now).
DROP INDEX cases_by_parent;
CREATE INDEX cases_by_parent ON cases (tenant_id, parent_case_id, created_at, id)
    WHERE parent_case_id IS NOT NULL;

-- The open tasks holding one case in a status (checked on every transition): by case and status,
-- instead of every open task of the tenant through `tasks_by_status` (10,063 steps at 2,000 open
-- tasks; 35 now).
DROP INDEX tasks_by_case;
CREATE INDEX tasks_by_case ON tasks (tenant_id, case_id, status, created_at, id);

-- A user's unread notifications (counted on every `GET /notifications`): only the unread rows,
-- instead of every notification the user ever had.
CREATE INDEX notifications_unread ON notifications (tenant_id, user_id, created_at DESC, id DESC)
    WHERE read_at IS NULL;

-- The audit trail of one entity within a time window: both in one range (before, the window's
-- range over `audit_by_time` won and read every event of the window).
DROP INDEX audit_by_entity;
CREATE INDEX audit_by_entity ON audit_events (tenant_id, entity_type, entity_id, occurred_at, seq);

-- The audit trail filtered by the actor's user id (`actor=<uuid>`), which had no index: its
-- count and pages read the tenant's whole trail on both databases.
CREATE INDEX audit_by_actor_id ON audit_events (tenant_id, actor_id, seq);
