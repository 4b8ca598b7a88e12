-- Check every guard of a redemption (or a session lock), then move every counter
-- and append the event, in one atomic step. Nothing moves unless its guards hold.
--
-- All KEYS share one project's hash tag ({p:<project>}), so this stays a single-slot
-- script on Redis Cluster. (A deployment that sharded one project's vouchers across
-- slots would split a multi-code redemption into per-slot reservations made with
-- mode LOCK under one session key, then commit each slot with that key; a failed
-- reservation releases the others. One slot per project keeps that unnecessary.)
--
-- ARGV[1]  the plan, one JSON object (one argument packs far cheaper than a hundred):
--   mode     ALL (any failing group fails every group), PARTIAL (failing groups are left out),
--            or LOCK (record reservations under the session instead of moving counters)
--   now      epoch ms, as a string (locks that expired before it are discarded)
--   session  the request's session key or "" (its own reservations do not count against it,
--            and a commit consumes them)
--   until    session expiry, epoch ms as a string (LOCK mode)
--   stream   KEYS index of the stream for the event, 0 for none
--   record   KEYS index of the commit record, 0 for none; record_ms its lifetime (ms, a string).
--            The outcome is stored there in the same atomic step, and a second run with the same
--            record answers it without moving anything: a commit retried after a lost reply
--            (voucherd.platform.redis_client) is applied once.
--   groups   [{reason, ops: [[key index, field, delta, max, max field, min, lock zset key index,
--            lock amounts key index, reason], ...], adds: [key index, field, delta, ...]}, ...]
--            adds are moves without any guard or lock (most redemption counts), flat: three entries
--            each, cheaper to decode than an op; they never fail and LOCK mode leaves them alone.
--            Numbers are strings ("" = absent). max/min bound the field's value after the delta;
--            a max field names a field of the same hash holding the max ("" there = unlimited);
--            a lock key pair makes live reservations of other sessions count as taken; an op's
--            reason is reported when its guard fails ("" = the group's).
--   pending  (optional, read-your-writes) KEYS index of the pending-events HASH, 0 or absent for none;
--            with it: pending_home (the field that holds the event), pending_refs (fields that hold
--            "@" .. home) and pending_ids (per group: an id that holds "@" .. home if the group applied)
-- ARGV[2]  the event's common JSON part (an object's inside, without braces)
-- ARGV[2 + g]  group g's event JSON (an object), appended to "applied" when the group applies
--
-- Returns a JSON array: for each group, "ok" or its reason key.

local plan = cjson.decode(ARGV[1])
local mode, now, session = plan.mode, tonumber(plan.now), plan.session
local lock_until, stream_index, common = plan['until'], tonumber(plan.stream), ARGV[2]
local record_index = tonumber(plan.record or 0)

if record_index > 0 then
  local first = redis.call('GET', KEYS[record_index])
  if first then return first end
end

local function finish(results)
  local encoded = cjson.encode(results)
  if record_index > 0 then
    redis.call('SET', KEYS[record_index], encoded, 'PX', plan.record_ms)
  end
  return encoded
end

local function num(value)
  if value == nil or value == '' then return nil end
  return tonumber(value)
end

local groups = {}
for g, spec in ipairs(plan.groups) do
  local group = { reason = spec.reason, event = ARGV[2 + g], ops = {}, adds = spec.adds or {} }
  for i, op in ipairs(spec.ops) do
    group.ops[i] = {
      key = KEYS[op[1]], field = op[2], delta_raw = op[3], delta = tonumber(op[3]),
      max = num(op[4]), max_field = op[5], min = num(op[6]),
      zkey = op[7] ~= 0 and KEYS[op[7]] or nil,
      akey = op[8] ~= 0 and KEYS[op[8]] or nil,
      reason = op[9],
    }
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
-- The reason an op's guard fails for, '' for its group's, or nil when it holds.
local function check_op(op)
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
  if failed then return op.reason end
  return nil
end

-- Returns nil when every guard holds, else the reason of the first that does not.
local function check(group)
  for _, op in ipairs(group.ops) do
    -- An op without bounds (most redemption counts) cannot fail, so its value is not read.
    if op.max ~= nil or op.max_field ~= '' or op.min ~= nil then
      local failure = check_op(op)
      if failure ~= nil then
        if failure ~= '' then return failure end
        return group.reason
      end
    end
  end
  return nil
end

local function apply(group)
  if mode ~= 'LOCK' then
    local adds = group.adds
    for i = 1, #adds, 3 do
      redis.call('HINCRBY', KEYS[adds[i]], adds[i + 1], adds[i + 2])
    end
  end
  for _, op in ipairs(group.ops) do
    if mode == 'LOCK' then
      if op.zkey then
        redis.call('ZADD', op.zkey, lock_until, session)
        local held = cjson.decode(redis.call('HGET', op.akey, session) or '{}')
        held[op.field] = math.abs(op.delta)
        redis.call('HSET', op.akey, session, cjson.encode(held))
      end
    else
      redis.call('HINCRBY', op.key, op.field, op.delta_raw)
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
  return finish(results)
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
  -- Read-your-writes (issue 17): the event is readable by its ids until the worker has persisted it.
  local pending = tonumber(plan.pending) or 0
  if pending > 0 then
    local ref = '@' .. plan.pending_home
    local fields = { plan.pending_home, event }
    for _, field in ipairs(plan.pending_refs) do
      table.insert(fields, field)
      table.insert(fields, ref)
    end
    for g, id in ipairs(plan.pending_ids) do
      if results[g] == 'ok' and id ~= '' then
        table.insert(fields, id)
        table.insert(fields, ref)
      end
    end
    redis.call('HSET', KEYS[pending], unpack(fields))
  end
end
return finish(results)
