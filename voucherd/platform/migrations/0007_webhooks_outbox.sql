-- Project webhooks (wh_), the outbox of events to deliver, and every delivery (whs_) with its attempts.
--
-- The outbox is written in the same transaction as the change it describes (redemption write-behind,
-- segment membership), so a webhook is sent only for committed data and never lost for it. Rows are
-- written only when an active webhook of the project subscribes to the event type, so projects without
-- webhooks pay one index probe. The worker fans each outbox row out into one delivery per subscribed
-- webhook, then sends deliveries until they succeed or run out of attempts (the webhook is then disabled).

CREATE TABLE webhooks (
    id                   text PRIMARY KEY,
    project_id           text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    target_url           text NOT NULL,
    events               text[] NOT NULL,
    active               boolean NOT NULL DEFAULT true,
    secret               text NOT NULL,
    disabled_reason      text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz
);
CREATE INDEX webhooks_project ON webhooks (project_id, created_at, id);

CREATE TABLE webhook_outbox (
    id                   bigserial PRIMARY KEY,
    project_id           text NOT NULL,
    event_id             text NOT NULL UNIQUE,   -- replays of the change insert nothing twice
    type                 text NOT NULL,
    entity_id            text,
    group_id             text,
    channel              text NOT NULL DEFAULT 'API',
    data                 jsonb NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    fanned_out_at        timestamptz
);
CREATE INDEX webhook_outbox_pending ON webhook_outbox (id) WHERE fanned_out_at IS NULL;

CREATE TABLE webhook_deliveries (
    id                   text PRIMARY KEY,
    project_id           text NOT NULL,
    webhook_id           text NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    outbox_id            bigint NOT NULL,
    type                 text NOT NULL,
    body                 bytea NOT NULL,          -- the exact bytes signed and sent
    status               text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED')),
    attempts             integer NOT NULL DEFAULT 0,
    next_attempt_at      timestamptz NOT NULL DEFAULT now(),
    last_status_code     integer,
    last_error           text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz,
    delivered_at         timestamptz,
    UNIQUE (webhook_id, outbox_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at);

CREATE TABLE webhook_attempts (
    delivery_id          text NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt              integer NOT NULL,
    status_code          integer,
    error                text,
    duration_ms          integer NOT NULL,
    attempted_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (delivery_id, attempt)
);

-- Wake the dispatchers when an outbox row commits (NOTIFY is delivered at commit, never before).
CREATE FUNCTION voucherd_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('voucherd_webhooks', NEW.project_id);
    RETURN NULL;
END $$;
CREATE TRIGGER webhook_outbox_notify AFTER INSERT ON webhook_outbox
    FOR EACH ROW EXECUTE FUNCTION voucherd_outbox_notify();

-- customer.segment.entered / left: voucherd.segments records them as customer activity inside the
-- transaction that changed membership; this trigger puts them in the outbox in that same transaction.
CREATE FUNCTION voucherd_segment_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    customer jsonb;
    segment jsonb;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.project_id = NEW.project_id AND w.active
                   AND NEW.type = ANY (w.events)) THEN
        RETURN NULL;
    END IF;
    SELECT jsonb_build_object('id', c.id, 'source_id', c.source_id, 'name', c.name, 'email', c.email,
                              'metadata', c.metadata, 'object', 'customer')
      INTO customer FROM customers c WHERE c.project_id = NEW.project_id AND c.id = NEW.customer_id;
    SELECT jsonb_build_object('id', s.id, 'name', s.name, 'type', s.type, 'object', 'segment')
      INTO segment FROM segments s WHERE s.project_id = NEW.project_id AND s.id = NEW.data #>> '{segment,id}';
    INSERT INTO webhook_outbox (project_id, event_id, type, entity_id, group_id, channel, data)
    VALUES (NEW.project_id, NEW.id, NEW.type, NEW.customer_id, NEW.group_id, 'INTERNAL',
            jsonb_build_object('customer', COALESCE(customer, NEW.data -> 'customer'),
                               'segment', COALESCE(segment, NEW.data -> 'segment')))
    ON CONFLICT (event_id) DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER customer_activity_segment_outbox AFTER INSERT ON customer_activity
    FOR EACH ROW WHEN (NEW.type IN ('customer.segment.entered', 'customer.segment.left'))
    EXECUTE FUNCTION voucherd_segment_outbox();
