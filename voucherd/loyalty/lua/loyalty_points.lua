-- Move loyalty points on one or more cards atomically, at most once per guard field.
--
-- KEYS[1]  the project's once-guard HASH (field -> 1 once applied)
-- KEYS[2 + 3(i-1) ..]  per card i: state HASH, session lock ZSET, session amounts HASH
-- ARGV[1]  now, epoch ms (reservations of sessions that expired before it do not count)
-- ARGV[2]  guard field, or "" for none
-- ARGV[3]  number of cards N, then N pairs: points delta, add to lifetime total (1/0)
--
-- A negative delta may not take a card below what other live sessions reserved on it, nor below 0.
-- Returns {1, balance_1, total_1, ..., balance_N, total_N} when moved; {0, i} when card i has no
-- state (load it and retry); {-1, i, spendable_i} when card i lacks the points; {2} when the guard
-- field was already set (nothing moved).

local now, guard, n = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
if guard ~= '' and redis.call('HEXISTS', KEYS[1], guard) == 1 then return {2} end

local function held(zkey, akey)
  local total = 0
  local live = redis.call('ZRANGEBYSCORE', zkey, '(' .. now, '+inf')
  for _, member in ipairs(live) do
    local amounts = redis.call('HGET', akey, member)
    if amounts then total = total + (tonumber(cjson.decode(amounts)['points']) or 0) end
  end
  return total
end

for i = 1, n do
  local key = KEYS[2 + 3 * (i - 1)]
  if redis.call('EXISTS', key) == 0 or redis.call('HEXISTS', key, 'missing') == 1 then return {0, i} end
  local delta = tonumber(ARGV[3 + 2 * i - 1])
  if delta < 0 then
    local spendable = (tonumber(redis.call('HGET', key, 'points') or '0') or 0)
      - held(KEYS[3 + 3 * (i - 1)], KEYS[4 + 3 * (i - 1)])
    if spendable + delta < 0 then return {-1, i, spendable} end
  end
end

local out = {1}
for i = 1, n do
  local key = KEYS[2 + 3 * (i - 1)]
  local delta, add_total = tonumber(ARGV[3 + 2 * i - 1]), ARGV[3 + 2 * i]
  local balance = redis.call('HINCRBY', key, 'points', delta)
  local total = tonumber(redis.call('HGET', key, 'points_total') or '0') or 0
  if add_total == '1' and delta > 0 then total = redis.call('HINCRBY', key, 'points_total', delta) end
  table.insert(out, balance)
  table.insert(out, total)
end
if guard ~= '' then redis.call('HSET', KEYS[1], guard, 1) end
return out
