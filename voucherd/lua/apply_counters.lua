-- Check every guard of a redemption (or a session lock), then move every counter
-- and append the event, in one atomic step. Nothing moves unless its guards hold.
--
-- All KEYS share one project's hash tag ({p:<project>}), so this stays a single-slot
-- script on Redis Cluster. (A deployment that sharded one project's vouchers across
-- slots would split a multi-code redemption into per-slot reservations made with
-- mode LOCK under one session key, then commit each slot with that key; a failed
-- reservation releases the others. One slot per project keeps that unnecessary.)
--
-- ARGV[1]  mode: ALL (any failing group fails every group), PARTIAL (failing groups are
--          left out), or LOCK (record reservations under the session instead of moving counters)
-- ARGV[2]  now, epoch milliseconds (locks that expired before it are discarded)
-- ARGV[3]  session key, or "" (its own reservations do not count against it, and a
--          commit consumes them)
-- ARGV[4]  session expiry, epoch ms (LOCK mode)
-- ARGV[5]  stream KEYS index for the event, or 0 for none
-- ARGV[6]  the event's common JSON part (an object's inside, without braces)
-- ARGV[7]  number of groups G
-- then for each group g = 1..G:
--   reason key reported if the group fails (e.g. quantity_exceeded)
--   the group's event JSON (an object), appended to "applied" when the group applies
--   number of ops N, then N ops of 9 values each:
--     key index, field, delta, max, max field, min, lock zset key index, lock amounts key index,
--     the op's own reason key when it fails ("" = the group's)
--   where "" means absent; max/min bound the field's value after the delta; a max field
--   names a field of the same hash holding the max ("" there means unlimited); a lock
--   key pair makes live reservations of other sessions count as already taken.
--
-- Returns a JSON array: for each group, "ok" or its reason key.

local mode, now, session = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local lock_until, stream_index, common = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]

local groups = {}
local pos = 8
for g = 1, tonumber(ARGV[7]) do
  local group = { reason = ARGV[pos], event = ARGV[pos + 1], ops = {} }
  local n = tonumber(ARGV[pos + 2])
  pos = pos + 3
  for i = 1, n do
    group.ops[i] = {
      key = KEYS[tonumber(ARGV[pos])], field = ARGV[pos + 1], delta = tonumber(ARGV[pos + 2]),
      max = tonumber(ARGV[pos + 3]), max_field = ARGV[pos + 4], min = tonumber(ARGV[pos + 5]),
      zkey = ARGV[pos + 6] ~= '' and KEYS[tonumber(ARGV[pos + 6])] or nil,
      akey = ARGV[pos + 7] ~= '' and KEYS[tonumber(ARGV[pos + 7])] or nil,
      reason = ARGV[pos + 8],
    }
    pos = pos + 9
  end
  groups[g] = group
end

-- Reservations held by other live sessions (absolute amounts), per lock key pair and field.
local reserved_cache = {}
local function reserved(zkey, akey, field)
  local cache_key = akey .. '\0' .. field
  if reserved_cache[cache_key] ~= nil then return reserved_cache[cache_key] end
  local expired = redis.call('ZRANGEBYSCORE', zkey, '-inf', '(' .. now)
  if #expired > 0 then
    redis.call('ZREM', zkey, unpack(expired))
    redis.call('HDEL', akey, unpack(expired))
  end
  local total = 0
  local amounts = redis.call('HGETALL', akey)
  for i = 1, #amounts, 2 do
    if amounts[i] ~= session then
      local held = cjson.decode(amounts[i + 1])
      total = total + (tonumber(held[field]) or 0)
    end
  end
  reserved_cache[cache_key] = total
  return total
end

local function current(op)
  return tonumber(redis.call('HGET', op.key, op.field) or '0') or 0
end

-- Returns nil when every guard holds, else the reason of the first that does not.
local function check(group)
  for _, op in ipairs(group.ops) do
    local after = current(op) + op.delta
    local held = 0
    if op.zkey then held = reserved(op.zkey, op.akey, op.field) end
    local max = op.max
    if op.max_field ~= '' then
      local raw = redis.call('HGET', op.key, op.max_field)
      if raw and raw ~= '' then
        local from_field = tonumber(raw)
        if max == nil or from_field < max then max = from_field end
      end
    end
    -- A max bounds growth (e.g. redeemed <= quantity): others' reservations count as taken.
    local failed = (max ~= nil and op.delta > 0 and after + held > max)
    -- A min bounds spending (e.g. balance >= 0): others' reservations are already spoken for.
    failed = failed or (op.min ~= nil and op.delta < 0 and after - held < op.min)
    if failed then
      if op.reason ~= '' then return op.reason end
      return group.reason
    end
  end
  return nil
end

local function apply(group)
  for _, op in ipairs(group.ops) do
    if mode == 'LOCK' then
      if op.zkey then
        redis.call('ZADD', op.zkey, lock_until, session)
        local held = cjson.decode(redis.call('HGET', op.akey, session) or '{}')
        held[op.field] = math.abs(op.delta)
        redis.call('HSET', op.akey, session, cjson.encode(held))
      end
    else
      redis.call('HINCRBY', op.key, op.field, op.delta)
      if session ~= '' and op.zkey then
        redis.call('ZREM', op.zkey, session)
        redis.call('HDEL', op.akey, session)
      end
    end
  end
end

local results, applied = {}, {}
local all_ok = true
for g, group in ipairs(groups) do
  local failure = check(group)
  if failure == nil then
    results[g] = 'ok'
  else
    results[g] = failure
    all_ok = false
  end
end

if mode == 'ALL' and not all_ok then
  for g, r in ipairs(results) do
    if r == 'ok' then results[g] = 'preceding_validation_failed' end
  end
  return cjson.encode(results)
end

for g, group in ipairs(groups) do
  if results[g] == 'ok' then
    -- In PARTIAL mode an earlier group may have used what this one checked against.
    local failure = nil
    if g > 1 and mode == 'PARTIAL' then failure = check(group) end
    if failure ~= nil then
      results[g] = failure
    else
      apply(group)
      table.insert(applied, group.event)
    end
  end
end

if stream_index > 0 and #applied > 0 then
  local event = '{' .. common .. ',"applied":[' .. table.concat(applied, ',') .. ']}'
  redis.call('XADD', KEYS[stream_index], '*', 'data', event)
end
return cjson.encode(results)
