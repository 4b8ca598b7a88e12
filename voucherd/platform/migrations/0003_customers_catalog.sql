-- Customers, their activity and segments; the product catalog; orders; metadata schemas; publications.
-- Every table is keyed by (project_id, id): ids such as the built-in shipping product repeat across projects.

CREATE TABLE customers (
    project_id      text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    id              text NOT NULL,
    source_id       text,
    name            text,
    description     text,
    email           text,
    phone           text,
    birthdate       date,
    birthday        date,
    address         jsonb,
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- summary.redemptions, kept by the redemption pipeline
    redemptions_total_redeemed          integer NOT NULL DEFAULT 0,
    redemptions_total_failed            integer NOT NULL DEFAULT 0,
    redemptions_total_succeeded         integer NOT NULL DEFAULT 0,
    redemptions_total_rolled_back       integer NOT NULL DEFAULT 0,
    redemptions_total_rollback_failed   integer NOT NULL DEFAULT 0,
    redemptions_total_rollback_succeeded integer NOT NULL DEFAULT 0,
    gift_redeemed_amount                bigint NOT NULL DEFAULT 0,
    gift_amount_to_go                   bigint NOT NULL DEFAULT 0,
    loyalty_redeemed_points             bigint NOT NULL DEFAULT 0,
    loyalty_points_to_go                bigint NOT NULL DEFAULT 0,
    -- summary.orders, recomputed from the orders table whenever one of the customer's orders changes
    orders_total_amount     bigint NOT NULL DEFAULT 0,
    orders_total_count      integer NOT NULL DEFAULT 0,
    orders_last_amount      bigint NOT NULL DEFAULT 0,
    orders_last_date        timestamptz,
    loyalty         jsonb NOT NULL DEFAULT '{"points": 0, "referred_customers": 0, "campaigns": {}}'::jsonb,
    referrals       jsonb NOT NULL DEFAULT '{"total": 0, "campaigns": []}'::jsonb,
    system_metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz,
    PRIMARY KEY (project_id, id),
    UNIQUE (project_id, source_id)
);
CREATE INDEX customers_created ON customers (project_id, created_at, id);
CREATE INDEX customers_email ON customers (project_id, email);

-- Customer activity (evcus_): lifecycle entries and custom events (type customer.custom_event, data.event = name).
CREATE TABLE customer_activity (
    project_id      text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    id              text NOT NULL,
    seq             bigserial,
    customer_id     text NOT NULL,
    type            text NOT NULL,
    event_name      text,
    data            jsonb NOT NULL DEFAULT '{}'::jsonb,
    group_id        text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, id)
);
CREATE INDEX customer_activity_by_customer ON customer_activity (project_id, customer_id, seq);
CREATE INDEX customer_activity_events ON customer_activity (project_id, customer_id, event_name)
    WHERE event_name IS NOT NULL;

CREATE TABLE segments (
    project_id      text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    id              text NOT NULL,
    name            text NOT NULL,
    type            text NOT NULL CHECK (type IN ('static', 'auto-update', 'passive')),
    filter          jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz,
    PRIMARY KEY (project_id, id)
);

CREATE TABLE segment_members (
    project_id      text NOT NULL,
    segment_id      text NOT NULL,
    customer_id     text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, segment_id, customer_id),
    FOREIGN KEY (project_id, segment_id) REFERENCES segments (project_id, id) ON DELETE CASCADE
);
CREATE INDEX segment_members_by_customer ON segment_members (project_id, customer_id);

CREATE TABLE products (
    project_id      text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    id              text NOT NULL,
    source_id       text,
    name            text,
    price           bigint,
    attributes      jsonb NOT NULL DEFAULT '[]'::jsonb,
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    image_url       text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz,
    PRIMARY KEY (project_id, id),
    UNIQUE (project_id, source_id)
);
CREATE INDEX products_created ON products (project_id, created_at, id);

CREATE TABLE skus (
    project_id      text NOT NULL,
    id              text NOT NULL,
    product_id      text NOT NULL,
    source_id       text,
    sku             text,
    price           bigint,
    currency        text,
    attributes      jsonb NOT NULL DEFAULT '{}'::jsonb,
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    image_url       text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz,
    PRIMARY KEY (project_id, id),
    UNIQUE (project_id, source_id),
    FOREIGN KEY (project_id, product_id) REFERENCES products (project_id, id) ON DELETE CASCADE
);
CREATE INDEX skus_by_product ON skus (project_id, product_id, created_at, id);

CREATE TABLE product_collections (
    project_id      text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    id              text NOT NULL,
    name            text NOT NULL,
    type            text NOT NULL CHECK (type IN ('STATIC', 'AUTO_UPDATE')),
    filter          jsonb,
    products        jsonb NOT NULL DEFAULT '[]'::jsonb,  -- STATIC: [{id, product_id?, object}]
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz,
    PRIMARY KEY (project_id, id)
);

-- The built-in shipping product exists in every project (free shipping = UNIT discount on it).
CREATE FUNCTION voucherd_shipping_product() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO products (project_id, id, source_id, name)
    VALUES (NEW.id, 'prod_5h1pp1ng', '5h1pp1ng', 'Shipping')
    ON CONFLICT DO NOTHING;
    RETURN NEW;
END $$;
CREATE TRIGGER projects_shipping_product AFTER INSERT ON projects
    FOR EACH ROW EXECUTE FUNCTION voucherd_shipping_product();
INSERT INTO products (project_id, id, source_id, name)
    SELECT id, 'prod_5h1pp1ng', '5h1pp1ng', 'Shipping' FROM projects
    ON CONFLICT DO NOTHING;

CREATE TABLE orders (
    project_id      text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    id              text NOT NULL,
    source_id       text,
    status          text NOT NULL DEFAULT 'CREATED' CHECK (status IN ('CREATED', 'PAID', 'CANCELED', 'FULFILLED')),
    amount          bigint,
    initial_amount  bigint,
    discount_amount bigint NOT NULL DEFAULT 0,
    items_discount_amount bigint NOT NULL DEFAULT 0,
    items           jsonb NOT NULL DEFAULT '[]'::jsonb,
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    customer_id     text,
    referrer_id     text,
    redemptions     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz,
    PRIMARY KEY (project_id, id),
    UNIQUE (project_id, source_id)
);
CREATE INDEX orders_created ON orders (project_id, created_at, id);
CREATE INDEX orders_by_customer ON orders (project_id, customer_id);

CREATE TABLE metadata_schemas (
    project_id      text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    id              text NOT NULL,
    related_object  text NOT NULL,
    allow_defined_only boolean NOT NULL DEFAULT false,
    properties      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz,
    PRIMARY KEY (project_id, id),
    UNIQUE (project_id, related_object)
);

CREATE TABLE publications (
    project_id      text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    id              text NOT NULL,
    source_id       text,
    customer_id     text NOT NULL,
    campaign_id     text,
    voucher_codes   text[] NOT NULL,
    channel         text NOT NULL DEFAULT 'API',
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, id),
    UNIQUE (project_id, source_id)
);
CREATE INDEX publications_created ON publications (project_id, created_at, id);
CREATE INDEX publications_by_customer ON publications (project_id, customer_id);
