-- Campaigns, their vouchers (codes) and the gift/loyalty balance transactions of vouchers.
--
-- A voucher of a campaign inherits the campaign's voucher template: its own `discount`, `gift`,
-- `loyalty_card` and validity columns stay NULL unless the voucher overrides them, so updating
-- the campaign's template changes every inheriting code without rewriting millions of rows.
-- Live counters (redeemed quantity, gift balance, loyalty points) have their own columns; Redis
-- holds their live value (voucherd/voucher_state.py) and PostgreSQL receives every change.
--
-- `deleted_at` marks rows moved to the bin: they vanish from reads and listings; a campaign's name
-- becomes reusable, a code stays reserved until the row is deleted for good (force=true).

CREATE TABLE campaigns (
    id                          text PRIMARY KEY,
    project_id                  text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name                        text NOT NULL,
    description                 text,
    campaign_type               text NOT NULL CHECK (campaign_type IN
                                    ('DISCOUNT_COUPONS', 'GIFT_VOUCHERS', 'LOYALTY_PROGRAM', 'PROMOTION',
                                     'REFERRAL_PROGRAM')),
    type                        text NOT NULL CHECK (type IN ('AUTO_UPDATE', 'STATIC', 'STANDALONE')),
    voucher                     jsonb,
    auto_join                   boolean NOT NULL DEFAULT false,
    join_once                   boolean NOT NULL DEFAULT false,
    use_voucher_metadata_schema boolean NOT NULL DEFAULT false,
    vouchers_count              integer NOT NULL DEFAULT 0,
    start_date                  timestamptz,
    expiration_date             timestamptz,
    validity_timeframe          jsonb,
    validity_day_of_week        jsonb,
    validity_hours              jsonb,
    activity_duration_after_publishing text,
    active                      boolean NOT NULL DEFAULT true,
    metadata                    jsonb NOT NULL DEFAULT '{}'::jsonb,
    category_id                 text,
    creation_status             text NOT NULL DEFAULT 'DONE',
    vouchers_generation_status  text NOT NULL DEFAULT 'DONE',
    protected                   boolean NOT NULL DEFAULT false,
    referral_program            jsonb,
    loyalty_tiers_expiration    jsonb,
    access_settings             jsonb,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz,
    deleted_at                  timestamptz
);
CREATE UNIQUE INDEX campaigns_project_name ON campaigns (project_id, name) WHERE deleted_at IS NULL;
CREATE INDEX campaigns_project_created ON campaigns (project_id, created_at, id) WHERE deleted_at IS NULL;

-- No foreign keys here: their per-row checks would triple the cost of bulk generation (COPY of a
-- million codes). The worker removes a deleted campaign's codes; a deleted project's go by trigger.
CREATE TABLE vouchers (
    id                   text PRIMARY KEY,
    project_id           text NOT NULL,
    code                 text NOT NULL,
    campaign_id          text,
    category_id          text,
    type                 text NOT NULL CHECK (type IN ('DISCOUNT_VOUCHER', 'GIFT_VOUCHER', 'LOYALTY_CARD')),
    discount             jsonb,
    gift                 jsonb,
    loyalty_card         jsonb,
    start_date           timestamptz,
    expiration_date      timestamptz,
    validity_timeframe   jsonb,
    validity_day_of_week jsonb,
    validity_hours       jsonb,
    active               boolean NOT NULL DEFAULT true,
    additional_info      text,
    metadata             jsonb NOT NULL DEFAULT '{}'::jsonb,
    is_referral_code     boolean NOT NULL DEFAULT false,
    holder_id            text,
    referrer_id          text,
    redemption_quantity  integer,                       -- NULL: unlimited
    redeemed_quantity    integer NOT NULL DEFAULT 0,
    redeemed_points      bigint NOT NULL DEFAULT 0,
    gift_amount          bigint,                        -- lifetime credits (gift cards)
    gift_balance         bigint,
    gift_subtracted      bigint NOT NULL DEFAULT 0,
    loyalty_points       bigint,                        -- lifetime points (loyalty cards)
    loyalty_balance      bigint,
    loyalty_subtracted   bigint NOT NULL DEFAULT 0,
    publish_count        integer NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz,
    deleted_at           timestamptz
);
-- Codes are unique per project, across campaigns, standalone codes and the bin.
CREATE UNIQUE INDEX vouchers_project_code ON vouchers (project_id, code);
CREATE INDEX vouchers_campaign_created ON vouchers (campaign_id, created_at, id);
CREATE INDEX vouchers_project_created ON vouchers (project_id, created_at, id);

CREATE FUNCTION voucherd_delete_project_vouchers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM vouchers WHERE project_id = OLD.id;
    RETURN OLD;
END $$;
CREATE TRIGGER projects_delete_vouchers AFTER DELETE ON projects
    FOR EACH ROW EXECUTE FUNCTION voucherd_delete_project_vouchers();

CREATE TABLE voucher_transactions (
    id              text PRIMARY KEY,
    project_id      text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    voucher_id      text NOT NULL REFERENCES vouchers (id) ON DELETE CASCADE,
    campaign_id     text,
    source_id       text,
    source          text,
    reason          text,
    type            text NOT NULL,
    details         jsonb NOT NULL DEFAULT '{}'::jsonb,
    related_transaction_id text,
    seq             bigserial,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX voucher_transactions_voucher ON voucher_transactions (voucher_id, seq);
