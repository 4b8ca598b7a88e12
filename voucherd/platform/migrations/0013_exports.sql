-- Exports (``exp_``): CSV files of vouchers, redemptions, customers, orders, publications, points
-- expirations, voucher transactions, products and SKUs, written by the worker (an async action) and downloaded
-- from any server process.
--
-- The file lives in PostgreSQL, as numbered chunks of about a megabyte, and not in a directory of one
-- host: every server host can stream it without shared storage, it is as durable as the rows it was
-- made from, a project's deletion takes its files along (cascade), and no cleaner has to match files
-- to rows. A large object would do the same but needs its own unlink on every delete path; chunk rows
-- go with their export by foreign key. All chunks and the DONE status are written in one transaction,
-- so a download never sees half a file.
CREATE TABLE exports (
    id               text PRIMARY KEY,
    project_id       text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    exported_object  text NOT NULL,
    parameters       jsonb NOT NULL DEFAULT '{}'::jsonb,   -- as the API echoes them
    scope            jsonb NOT NULL DEFAULT '{}'::jsonb,   -- fixed conditions of a per-resource export
    channel          text NOT NULL DEFAULT 'API',
    status           text NOT NULL DEFAULT 'SCHEDULED'
                     CHECK (status IN ('SCHEDULED', 'IN_PROGRESS', 'DONE', 'ERROR')),
    token            text NOT NULL,                        -- the download's secret
    row_count        bigint,
    byte_size        bigint,
    error            jsonb,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at       timestamptz
);
CREATE INDEX exports_project_created ON exports (project_id, created_at DESC, id DESC);

CREATE TABLE export_chunks (
    export_id  text NOT NULL REFERENCES exports (id) ON DELETE CASCADE,
    seq        integer NOT NULL,
    data       bytea NOT NULL,
    PRIMARY KEY (export_id, seq)
);
-- CSV is written once and read whole: compressing it costs the writer more CPU than it saves.
ALTER TABLE export_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
