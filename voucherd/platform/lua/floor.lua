-- The floor of the performance report: the cheapest call a request can make to Redis.
--
-- KEYS[1]  any key (read only; it need not exist)
--
-- Returns 1 when the key exists, else 0. It exists so that `GET /_floor` costs exactly one EVALSHA round trip,
-- like the one state read every validation starts with, and nothing else.
return redis.call('EXISTS', KEYS[1])
