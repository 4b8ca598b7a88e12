-- Campaign templates (``camp_tpl_``), locations (``loc_``) and the trash bin (``tbe_``), issue 17.

-- A template keeps a campaign's set-up (a campaign create body without name, category and code
-- count) and a copy of its validation rule set; each campaign or tier made from it gets a new rule set.
CREATE TABLE campaign_templates (
    id               text PRIMARY KEY,
    project_id       text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name             text NOT NULL,
    description      text,
    campaign_type    text NOT NULL CHECK (campaign_type IN ('DISCOUNT_COUPONS', 'GIFT_VOUCHERS')),
    setup            jsonb NOT NULL,
    validation_rule  jsonb,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at       timestamptz,
    UNIQUE (project_id, name)
);
CREATE INDEX campaign_templates_project ON campaign_templates (project_id, id);

-- Geographic areas validation rules can name; the API only reads them.
CREATE TABLE locations (
    id          text PRIMARY KEY,
    project_id  text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        text NOT NULL,
    shape       jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at  timestamptz
);
CREATE INDEX locations_project_created ON locations (project_id, created_at, id);

-- The bin is what carries ``deleted_at``: campaigns, and codes deleted one by one (a binned campaign's
-- codes go with it, not as entries of their own). An entry's id is ordered by the time it was binned,
-- and stable, so cursors over the bin hold. Nothing is copied: moving back out is clearing deleted_at.
CREATE INDEX campaigns_binned ON campaigns (project_id) WHERE deleted_at IS NOT NULL;
CREATE INDEX vouchers_binned ON vouchers (project_id) WHERE deleted_at IS NOT NULL;

CREATE VIEW trash_bin AS
SELECT 'tbe_' || lpad(to_hex((extract(epoch FROM c.deleted_at) * 1000000)::bigint), 14, '0')
           || left(md5(c.id), 4) AS id,
       c.project_id, c.deleted_at AS created_at, c.id AS resource_id, 'campaign'::text AS resource_type,
       c.name AS resource_name, NULL::text AS resource_parent_id
FROM campaigns c
WHERE c.deleted_at IS NOT NULL
UNION ALL
SELECT 'tbe_' || lpad(to_hex((extract(epoch FROM v.deleted_at) * 1000000)::bigint), 14, '0')
           || left(md5(v.id), 4),
       v.project_id, v.deleted_at, v.id, 'voucher', v.code, v.campaign_id
FROM vouchers v
LEFT JOIN campaigns c ON c.id = v.campaign_id
WHERE v.deleted_at IS NOT NULL AND (v.campaign_id IS NULL OR (c.id IS NOT NULL AND c.deleted_at IS NULL));
