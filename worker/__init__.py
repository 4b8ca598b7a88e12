"""voucherd's background worker: consumes Redis streams and writes behind to PostgreSQL."""
