"""Background work: imports (JSON and CSV), bulk and metadata updates, exports, webhooks and their
outbox, the write-behind of redemptions, and rebuilding Redis from PostgreSQL.

May import every context below it: checkout, loyalty, catalog, definitions, platform, and engine."""
