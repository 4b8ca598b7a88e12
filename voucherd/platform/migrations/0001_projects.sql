-- Projects, their API keys, management keys, and categories (the first resource).
CREATE TABLE projects (
    id              text PRIMARY KEY,
    name            text NOT NULL,
    description     text,
    timezone        text NOT NULL DEFAULT 'UTC',
    currency        text NOT NULL DEFAULT 'USD',
    case_sensitive_codes boolean NOT NULL DEFAULT true,
    settings        jsonb NOT NULL DEFAULT '{}'::jsonb,
    is_default      boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz
);
CREATE UNIQUE INDEX projects_one_default ON projects (is_default) WHERE is_default;

-- kind: 'application' (X-App-Id/X-App-Token) or 'client' (X-Client-Application-Id/X-Client-Token).
-- Tokens are random UUIDs, so a plain SHA-256 is enough: there is nothing to brute-force.
CREATE TABLE api_keys (
    key_id          text PRIMARY KEY,
    project_id      text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('application', 'client')),
    token_hash      bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_project ON api_keys (project_id);

CREATE TABLE management_keys (
    key_id          text PRIMARY KEY,
    token_hash      bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE categories (
    id              text PRIMARY KEY,
    project_id      text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name            text NOT NULL,
    hierarchy       integer NOT NULL DEFAULT 0 CHECK (hierarchy >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz,
    UNIQUE (project_id, name)
);
