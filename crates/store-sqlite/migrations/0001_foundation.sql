-- Foundation: tenants, users, API keys, sessions. Every tenant-scoped table is keyed by
-- tenant_id first and every foreign key includes it (DESIGN.md principle 2).
-- Conventions: UUIDs as hyphenated lowercase TEXT, times as RFC 3339 TEXT with six fractional
-- digits and Z (text order = time order), JSON as TEXT, booleans as INTEGER 0/1.
CREATE TABLE tenants (
    id          TEXT NOT NULL PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    settings    TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL
) STRICT;

CREATE TABLE users (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    id            TEXT NOT NULL,
    email         TEXT NOT NULL,
    name          TEXT NOT NULL,
    roles         TEXT NOT NULL,
    password_hash TEXT,
    active        INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, email)
) STRICT;
CREATE INDEX users_by_email ON users (email);
CREATE INDEX users_by_created ON users (tenant_id, created_at DESC, id DESC);

CREATE TABLE api_keys (
    tenant_id    TEXT NOT NULL,
    id           TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    created_by   TEXT,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, created_by) REFERENCES users (tenant_id, id)
) STRICT;
CREATE INDEX api_keys_by_created ON api_keys (tenant_id, created_at DESC, id DESC);

CREATE TABLE sessions (
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    csrf_hash   TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
) STRICT;
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
CREATE INDEX sessions_by_user ON sessions (tenant_id, user_id);
