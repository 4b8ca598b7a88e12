-- Write one voucher's live-state HASH (see voucherd/definitions/voucher_state.py for the fields).
--
-- KEYS[1]  the voucher's state key  vd:{p:<project>}:v:<code>
-- ARGV[1]  mode:
--            replace    a new code: drop whatever is there (a stale hash or a "missing" marker), write the fields
--            if_absent  a reload from PostgreSQL: write only if the key is absent or only a "missing" marker,
--                       so counters that moved meanwhile are never clobbered
--            missing    remember an unknown code: write {missing=1} with a TTL, only if the key is absent
-- ARGV[2]  TTL in milliseconds for mode "missing" (ignored otherwise)
-- ARGV[3..] field, value pairs (modes replace and if_absent)
--
-- Returns 1 when written, 0 when left alone.

local key, mode = KEYS[1], ARGV[1]
local exists = redis.call('EXISTS', key) == 1
if mode == 'missing' then
  if exists then return 0 end
  redis.call('HSET', key, 'missing', '1')
  redis.call('PEXPIRE', key, tonumber(ARGV[2]))
  return 1
end
if mode == 'if_absent' and exists and redis.call('HEXISTS', key, 'missing') == 0 then
  return 0
end
if exists then redis.call('DEL', key) end
redis.call('HSET', key, unpack(ARGV, 3))
return 1
