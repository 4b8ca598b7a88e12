-- Redemptions and rollbacks, written behind by the worker from the project streams.
-- Ids come from the hot path (r_, rf_, rr_, rrf_), so replays of a stream message
-- insert nothing twice. `body` is the API object as answered; columns serve filters.
CREATE TABLE redemptions (
    id                   text PRIMARY KEY,
    project_id           text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    object               text NOT NULL CHECK (object IN ('redemption', 'redemption_rollback')),
    parent_id            text,
    result               text NOT NULL CHECK (result IN ('SUCCESS', 'FAILURE')),
    status               text NOT NULL CHECK (status IN ('SUCCEEDED', 'FAILED', 'ROLLED_BACK')),
    customer_id          text,
    voucher_code         text,
    campaign_id          text,
    campaign_name        text,
    related_object_type  text,
    related_object_id    text,
    order_id             text,
    failure_code         text,
    tracking_id          text,
    date                 timestamptz NOT NULL,
    body                 jsonb NOT NULL,
    persisted_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX redemptions_project_date ON redemptions (project_id, date DESC, id DESC);
CREATE INDEX redemptions_project_code ON redemptions (project_id, voucher_code, date DESC);
CREATE INDEX redemptions_project_parent ON redemptions (project_id, parent_id);
CREATE INDEX redemptions_project_customer ON redemptions (project_id, customer_id, date DESC);
CREATE INDEX redemptions_project_campaign ON redemptions (project_id, campaign_id, date DESC);
