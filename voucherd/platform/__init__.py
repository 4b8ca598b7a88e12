"""The platform under every context: settings, PostgreSQL and Redis access, Lua loading, keys, ids,
errors, time, metrics, logs, projects and keys, async-action records, the local stack.

Imports nothing of voucherd's own contexts (only the standard library, third-party packages and itself)."""
