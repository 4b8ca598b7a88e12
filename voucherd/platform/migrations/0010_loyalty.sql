-- Loyalty programs: rewards and their assignments, earning rules, pending points, points buckets
-- (for expiry), and the triggers (order paid, custom events, redemptions) the worker turns into points.
--
-- A card's spendable points live in Redis (voucherd/voucher_state.py, field `points`); every row here
-- is written after the Lua script that moved them, with ids derived from what caused the move, so a
-- replay inserts nothing twice and moves PostgreSQL's copies only once.

CREATE TABLE rewards (
    id          text PRIMARY KEY,
    project_id  text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        text,
    type        text NOT NULL CHECK (type IN ('CAMPAIGN', 'COIN', 'MATERIAL')),
    parameters  jsonb NOT NULL DEFAULT '{}'::jsonb,
    stock       integer,
    redeemed    integer NOT NULL DEFAULT 0,
    attributes  jsonb,
    metadata    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz
);
CREATE INDEX rewards_project_created ON rewards (project_id, created_at, id);

CREATE TABLE reward_assignments (
    id           text PRIMARY KEY,
    project_id   text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    reward_id    text NOT NULL REFERENCES rewards (id) ON DELETE CASCADE,
    campaign_id  text NOT NULL,
    points       bigint,
    auto_redeem  boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz,
    UNIQUE (project_id, reward_id, campaign_id)
);
CREATE INDEX reward_assignments_campaign ON reward_assignments (project_id, campaign_id, created_at);

CREATE TABLE earning_rules (
    id                   text PRIMARY KEY,
    project_id           text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    campaign_id          text NOT NULL,
    event                text NOT NULL,
    loyalty              jsonb NOT NULL,
    custom_event         jsonb,
    segment              jsonb,
    loyalty_tier         jsonb,
    pending_points       jsonb,
    expiration_rules     jsonb,
    source               jsonb NOT NULL DEFAULT '{}'::jsonb,
    validation_rule_id   text,
    active               boolean NOT NULL DEFAULT true,
    start_date           timestamptz,
    expiration_date      timestamptz,
    validity_timeframe   jsonb,
    validity_day_of_week jsonb,
    validity_hours       jsonb,
    metadata             jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz
);
CREATE INDEX earning_rules_campaign ON earning_rules (project_id, campaign_id, created_at, id);

-- Points earned but not spendable yet; activated (moved into the card in Redis) once, when due or on request.
CREATE TABLE loyalty_pending_points (
    id            text PRIMARY KEY,
    project_id    text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    voucher_id    text NOT NULL,
    code          text NOT NULL,
    campaign_id   text,
    customer_id   text,
    order_id      text,
    points        bigint NOT NULL,
    status        text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'ACTIVATED', 'CANCELED')),
    activates_at  timestamptz NOT NULL,
    expires_at    timestamptz,          -- when its points expire once active (program rules at earning time)
    details       jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz
);
CREATE INDEX loyalty_pending_points_card ON loyalty_pending_points (project_id, voucher_id, created_at);
CREATE INDEX loyalty_pending_points_due ON loyalty_pending_points (activates_at) WHERE status = 'PENDING';

-- Points added to a card with an expiry date. What expires by a date is what was added with an
-- expiry up to then, less what was used meanwhile (spending takes the soonest-expiring points first).
CREATE TABLE loyalty_points_buckets (
    id          text PRIMARY KEY,
    project_id  text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    voucher_id  text NOT NULL,
    code        text NOT NULL,
    points      bigint NOT NULL,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX loyalty_points_buckets_card ON loyalty_points_buckets (project_id, code, expires_at);
CREATE INDEX loyalty_points_buckets_due ON loyalty_points_buckets (expires_at);

-- What the worker still has to turn into points (and transactions): written in the transaction of
-- the fact (a persisted redemption, a paid order, a custom event), done once.
CREATE TABLE loyalty_triggers (
    id           text PRIMARY KEY,
    project_id   text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    kind         text NOT NULL,          -- order.paid | custom_event | customer.segment.entered
    customer_id  text,
    data         jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    done_at      timestamptz
);
CREATE INDEX loyalty_triggers_todo ON loyalty_triggers (project_id, created_at) WHERE done_at IS NULL;

ALTER TABLE vouchers ADD COLUMN loyalty_expired bigint NOT NULL DEFAULT 0;
