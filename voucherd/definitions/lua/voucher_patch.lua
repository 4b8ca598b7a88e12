-- Update definition fields (never counters) of a voucher's live-state HASH that is present.
-- An absent key is left absent: voucher_state.load() rebuilds it from PostgreSQL when it is next read.
--
-- KEYS[1]  the voucher's state key
-- ARGV     field, value pairs
--
-- Returns 1 when updated, 0 when the key is absent or a "missing" marker.

local key = KEYS[1]
if redis.call('EXISTS', key) == 0 or redis.call('HEXISTS', key, 'missing') == 1 then return 0 end
redis.call('HSET', key, unpack(ARGV))
return 1
