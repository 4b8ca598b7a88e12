-- Validation rule sets and their assignments, promotion tiers and stacks, project stacking rules.
-- Campaigns, vouchers and earning rules live in other migrations: they are referenced by plain text
-- ids (no foreign keys), so each resource can be created, moved to the bin or deleted on its own.

CREATE TABLE validation_rules (
    id              text PRIMARY KEY,
    project_id      text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name            text,
    rules           jsonb NOT NULL DEFAULT '{}'::jsonb,
    bundle_rules    jsonb NOT NULL DEFAULT '{}'::jsonb,
    error           jsonb,
    applicable_to   jsonb NOT NULL DEFAULT '{"excluded": [], "included": [], "included_all": false}'::jsonb,
    type            text NOT NULL DEFAULT 'expression',
    context_type    text NOT NULL DEFAULT 'global',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz
);
CREATE INDEX validation_rules_project_created ON validation_rules (project_id, created_at, id);

-- related_object_id is the id of a voucher, campaign, promotion tier, earning rule, reward assignment
-- or distribution; the hot path looks rule sets up by it.
CREATE TABLE validation_rules_assignments (
    id                  text PRIMARY KEY,
    project_id          text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    rule_id             text NOT NULL REFERENCES validation_rules (id) ON DELETE CASCADE,
    related_object_type text NOT NULL CHECK (related_object_type IN
                            ('voucher', 'campaign', 'promotion_tier', 'earning_rule', 'reward_assignment',
                             'distribution')),
    related_object_id   text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, rule_id, related_object_id)
);
CREATE INDEX validation_rules_assignments_object ON validation_rules_assignments (project_id, related_object_id);
CREATE INDEX validation_rules_assignments_rule ON validation_rules_assignments (rule_id, created_at);

CREATE TABLE promotion_tiers (
    id                   text PRIMARY KEY,
    project_id           text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    campaign_id          text NOT NULL,
    name                 text NOT NULL,
    banner               text,
    action               jsonb NOT NULL,
    metadata             jsonb NOT NULL DEFAULT '{}'::jsonb,
    hierarchy            integer NOT NULL DEFAULT 1,
    active               boolean NOT NULL DEFAULT true,
    start_date           timestamptz,
    expiration_date      timestamptz,
    validity_timeframe   jsonb,
    validity_day_of_week jsonb,
    validity_hours       jsonb,
    category_id          text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz
);
CREATE INDEX promotion_tiers_campaign ON promotion_tiers (project_id, campaign_id, hierarchy);
CREATE INDEX promotion_tiers_project_created ON promotion_tiers (project_id, created_at, id);

CREATE TABLE promotion_stacks (
    id              text PRIMARY KEY,
    project_id      text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    campaign_id     text NOT NULL,
    name            text NOT NULL,
    tier_ids        jsonb NOT NULL,
    hierarchy_mode  text NOT NULL DEFAULT 'MANUAL',
    category_id     text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz
);
CREATE INDEX promotion_stacks_campaign ON promotion_stacks (project_id, campaign_id, created_at);
CREATE INDEX promotion_stacks_project_created ON promotion_stacks (project_id, created_at, id);

-- One row per project at most; `settings` holds only the fields the project set (defaults apply to the rest).
CREATE TABLE stacking_rules (
    id              text PRIMARY KEY,
    project_id      text NOT NULL UNIQUE REFERENCES projects (id) ON DELETE CASCADE,
    settings        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz
);
