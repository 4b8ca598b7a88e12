-- Asynchronous actions: every operation the API answers with an async_action_id.
-- Parameters (and uploaded files) live here until processed, so any worker host can run them.
CREATE TABLE async_actions (
    id               text PRIMARY KEY,
    project_id       text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    type             text NOT NULL,
    status           text NOT NULL DEFAULT 'ENQUEUED'
                     CHECK (status IN ('ENQUEUED', 'IN_PROGRESS', 'DONE', 'FAILED')),
    operation_status text NOT NULL DEFAULT 'UNKNOWN' CHECK (operation_status IN ('FAILED', 'SUCCESS', 'UNKNOWN')),
    params           jsonb NOT NULL DEFAULT '{}'::jsonb,
    upload           bytea,
    result           jsonb,
    progress         integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    request_id       text,
    attempts         integer NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz,
    started_at       timestamptz,
    finished_at      timestamptz
);
CREATE INDEX async_actions_project_created ON async_actions (project_id, created_at DESC, id DESC);
