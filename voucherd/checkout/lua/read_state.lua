-- Everything validation needs from Redis, in one round trip (all keys in the project's slot).
--
-- KEYS[1]  the project's definitions version          KEYS[2]  customer segments (HASH)
-- KEYS[3]  customer ids by source_id (HASH)          KEYS[4]  order ids by source_id (HASH)
-- KEYS[5]  redemption counts (HASH, see voucherd/checkout/redemption_counters.py)
-- KEYS[6]  customers' wallets (HASH customer id -> JSON list of codes)
-- KEYS[7 + 3(i-1) ..]  per voucher i: state HASH, session lock ZSET, session amounts HASH
-- ARGV[1]  now, epoch ms    ARGV[2] the request's session key or ""
-- ARGV[3]  customer id or ""    ARGV[4] customer source_id or ""
-- ARGV[5]  id to give an unknown customer source_id ("" = do not create one)
-- ARGV[6]  order source_id or ""    ARGV[7] id to give it when unknown ("" = do not create one)
-- ARGV[8..10]  the day, week and month field suffixes (":d:2026-11-26", ":w:2026-W48", ":m:2026-11")
-- ARGV[11] number of promotion tier scopes T, then the T tier ids
--
-- Returns {version, customer id or false, segments JSON or false, order id or false, wallet JSON or false,
--          state_1, held_1, counts_1, ..., tier counts_1, ..., tier counts_T}
-- where counts are {customer total, day, week, month, everyone total, day, week, month} of the
-- voucher's scope (its campaign, else itself) or the tier (false where unknown).
-- where state_i is the voucher hash as a flat list (empty when absent) and held_i is a JSON
-- object of the amounts other live sessions hold on it ({"redeemed": 1, "balance": 500}).
local now, session = tonumber(ARGV[1]), ARGV[2]
local customer_id, source_id, proposed = ARGV[3], ARGV[4], ARGV[5]

local version = redis.call('GET', KEYS[1]) or '0'
local segments = false
if customer_id == '' and source_id ~= '' then
  customer_id = redis.call('HGET', KEYS[3], source_id)
  if not customer_id and proposed ~= '' then
    redis.call('HSETNX', KEYS[3], source_id, proposed)
    customer_id = redis.call('HGET', KEYS[3], source_id)
  end
end
if customer_id and customer_id ~= '' then
  segments = redis.call('HGET', KEYS[2], 'id:' .. customer_id)
end
if not segments and source_id ~= '' then
  segments = redis.call('HGET', KEYS[2], 'src:' .. source_id)
end
if customer_id == '' then customer_id = false end

local order_id = false
if ARGV[6] ~= '' then
  order_id = redis.call('HGET', KEYS[4], ARGV[6])
  if not order_id and ARGV[7] ~= '' then
    redis.call('HSETNX', KEYS[4], ARGV[6], ARGV[7])
    order_id = redis.call('HGET', KEYS[4], ARGV[6])
  end
end

local suffixes = { '', ARGV[8], ARGV[9], ARGV[10] }
local function counts(scope)
  local names = {}
  for i, suffix in ipairs(suffixes) do
    names[i] = customer_id and ('c:' .. customer_id .. ':' .. scope .. suffix) or ('-')
    names[i + 4] = 'i:' .. scope .. suffix
  end
  return redis.call('HMGET', KEYS[5], unpack(names))
end

local wallet = false
if customer_id then wallet = redis.call('HGET', KEYS[6], customer_id) end

local out = { version, customer_id, segments, order_id, wallet }
local tier_count = tonumber(ARGV[11])
for k = 7, #KEYS, 3 do
  table.insert(out, redis.call('HGETALL', KEYS[k]))
  local held = {}
  local live = redis.call('ZRANGEBYSCORE', KEYS[k + 1], '(' .. now, '+inf')
  for _, member in ipairs(live) do
    if member ~= session then
      local amounts = redis.call('HGET', KEYS[k + 2], member)
      if amounts then
        for field, amount in pairs(cjson.decode(amounts)) do
          held[field] = (held[field] or 0) + amount
        end
      end
    end
  end
  if next(held) == nil then
    table.insert(out, '{}')
  else
    table.insert(out, cjson.encode(held))
  end
  local state = out[#out - 1]
  local scope = false
  for i = 1, #state, 2 do
    if state[i] == 'campaign_id' and state[i + 1] ~= '' then scope = state[i + 1] end
    if state[i] == 'id' and not scope then scope = state[i + 1] end
  end
  table.insert(out, scope and counts(scope) or {})
end
for t = 1, tier_count do
  table.insert(out, counts(ARGV[11 + t]))
end
return out
