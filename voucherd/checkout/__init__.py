"""The hot path: validation, redemption, sessions, rollbacks, qualifications, live state, counters and
their Lua scripts. One read round trip, the pure engine, one atomic commit; nothing waits for PostgreSQL.

May import: voucherd.loyalty, voucherd.catalog, voucherd.definitions, voucherd.platform and engine."""
