-- E-mail copies of in-app notifications (issue: webhooks and notifications). The notification
-- row is the durable record; the worker's mailer sends the copy after commit, at least once,
-- with retries, and records the outcome on the row.
--   email_state: 'pending'; 'sent'; 'failed' (gave up, the server refused the address for
--   good, or the reader was disabled); 'expired' (still unsent a day after the notification
--   was written, e.g. SMTP was configured later: old news is not mailed); NULL for
--   notifications written before this migration (no copy).
ALTER TABLE notifications ADD COLUMN email_state TEXT
    CHECK (email_state IN ('pending', 'sent', 'failed', 'expired'));
ALTER TABLE notifications ADD COLUMN email_attempts INTEGER NOT NULL DEFAULT 0;
-- When the copy is next due (also the end of a sender's claim on it).
ALTER TABLE notifications ADD COLUMN email_next_at TEXT;
ALTER TABLE notifications ADD COLUMN email_error TEXT;
ALTER TABLE notifications ADD COLUMN emailed_at TEXT;
CREATE INDEX notifications_email_due ON notifications (email_next_at)
    WHERE email_state = 'pending';
