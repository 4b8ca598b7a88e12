-- Referral programs (issue 9): who holds a referral code (the referrer it was published to, the
-- referees who converted or were added), and each conversion, once per referee and program.
--
-- A conversion row is written in the transaction of its cause (a persisted redemption of the code,
-- or a custom event naming it) together with a ``loyalty_triggers`` row of kind
-- ``referral.conversion``; the worker's loyalty task then hands out the referee and referrer rewards.

CREATE TABLE referral_holders (
    id           text PRIMARY KEY,
    project_id   text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    voucher_id   text NOT NULL,
    code         text NOT NULL,
    campaign_id  text NOT NULL,
    customer_id  text NOT NULL,
    holder_role  text NOT NULL CHECK (holder_role IN ('REFERRER', 'REFEREE')),
    metadata     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, voucher_id, customer_id, holder_role)
);
CREATE INDEX referral_holders_voucher ON referral_holders (project_id, voucher_id, created_at, id);

CREATE TABLE referral_conversions (
    id           text PRIMARY KEY,
    project_id   text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    campaign_id  text NOT NULL,
    voucher_id   text NOT NULL,
    code         text NOT NULL,
    referrer_id  text NOT NULL,
    referee_id   text NOT NULL,
    source_type  text NOT NULL CHECK (source_type IN ('redemption', 'custom_event')),
    source_id    text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, campaign_id, referee_id)
);

-- Loyalty tiers (``ltr_``) of a loyalty program: a member is in the tier whose points range holds the
-- card's spendable balance (qualification by balance); the tier maps earning rules (ern_ ids) and reward
-- assignments (rewa_ ids) to {type: MULTIPLY, multiplier} or {type: CUSTOM, points}.
CREATE TABLE loyalty_tiers (
    id             text PRIMARY KEY,
    project_id     text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    campaign_id    text NOT NULL,
    name           text NOT NULL,
    points_from    bigint NOT NULL,
    points_to      bigint,
    earning_rules  jsonb NOT NULL DEFAULT '{}'::jsonb,
    rewards        jsonb NOT NULL DEFAULT '{}'::jsonb,
    metadata       jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz
);
CREATE INDEX loyalty_tiers_campaign ON loyalty_tiers (project_id, campaign_id, points_from);
