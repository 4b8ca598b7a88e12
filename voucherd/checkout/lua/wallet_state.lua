-- What qualifications need from Redis, in one round trip when the caller's copy of the wallet is current.
--
-- The caller keeps each customer's wallet compiled (voucherd/checkout/wallet_cache.py) together with
-- the fingerprint this script gave for the state it was built from. The fingerprint covers everything
-- of the wallet's codes the answer reads: each code's state hash and the amounts live sessions hold on
-- it (which change as locks expire, without any write). So an unchanged fingerprint means the copy is
-- exactly what a fresh read would build, and only the fingerprint crosses the wire.
--
-- KEYS[1]  the project's definitions version    KEYS[2]  customer segments (HASH)
-- KEYS[3]  customer ids by source_id (HASH)    KEYS[4]  customers' wallets (HASH customer id -> JSON codes)
-- KEYS[5 + 3(i-1) ..]  per code i of the wallet the caller holds: state HASH, lock ZSET, lock amounts HASH
-- ARGV[1]  now, epoch ms    ARGV[2] customer id or ""    ARGV[3] customer source_id or ""
-- ARGV[4]  SHA-1 of the wallet JSON the code keys were taken from ("": none given)
-- ARGV[5]  the fingerprint of the caller's copy ("": none)    ARGV[6] the definitions version it was built under
-- ARGV[7]  "1" when the wallet is wanted, "0" when only the customer is
--
-- Returns {version, customer id or false, segments JSON or false, wallet JSON or false, status,
--          fingerprint or false, state_1, held_1, ...} where status is
--   'none'   the customer holds no codes (or is unknown)
--   'keys'   the wallet is not the one the keys were taken from: call again with its codes' keys
--   'same'   the fingerprint and the definitions version are the caller's: nothing follows
--   'fresh'  the state follows as read_state gives it (state flat list, held JSON) per code
-- The wallet JSON is returned only with 'keys' (the caller already holds the one it named).
local now = tonumber(ARGV[1])
local customer_id, source_id = ARGV[2], ARGV[3]

local version = redis.call('GET', KEYS[1]) or '0'
local segments = false
if customer_id == '' and source_id ~= '' then
  customer_id = redis.call('HGET', KEYS[3], source_id)
end
if customer_id and customer_id ~= '' then
  segments = redis.call('HGET', KEYS[2], 'id:' .. customer_id)
end
if not segments and source_id ~= '' then
  segments = redis.call('HGET', KEYS[2], 'src:' .. source_id)
end
if customer_id == '' then customer_id = false end

local wallet = false
if customer_id and ARGV[7] == '1' then wallet = redis.call('HGET', KEYS[4], customer_id) end
if not wallet then
  return { version, customer_id, segments, false, 'none', false }
end
if redis.sha1hex(wallet) ~= ARGV[4] then
  return { version, customer_id, segments, wallet, 'keys', false }
end

-- The amounts live sessions hold on a code: its lock ZSET's members still live, summed.
local function held_on(k)
  local held = {}
  local live = redis.call('ZRANGEBYSCORE', KEYS[k + 1], '(' .. now, '+inf')
  for _, member in ipairs(live) do
    local amounts = redis.call('HGET', KEYS[k + 2], member)
    if amounts then
      for field, amount in pairs(cjson.decode(amounts)) do
        held[field] = (held[field] or 0) + amount
      end
    end
  end
  if next(held) == nil then return '{}' end
  return cjson.encode(held)
end

-- Most wallets have no code locked by a session at all: one EXISTS over every lock key says so.
local locks = {}
for k = 6, #KEYS, 3 do locks[#locks + 1] = KEYS[k] end
local any_lock = #locks > 0 and redis.call('EXISTS', unpack(locks)) > 0

-- The fingerprint text: per code the last ten bytes of DUMP of its state hash (the RDB version and the
-- CRC64 of the serialized fields and values) and its held amounts, each part of a fixed length or free
-- of NULs, so the text reads back one way. A change of a hash changes its CRC64 (surely when the change
-- spans 64 bits or fewer, else but for odds of 2^-64). DUMP hands Lua one short string where HGETALL
-- built a table of every field and value, which was most of the script's cost. A hash laid out anew
-- without a change (a rehash) only makes the next call 'fresh'.
local ABSENT = '----------'  -- ten bytes no DUMP tail starts with (its first byte is the RDB version)
local parts = {}
for k = 5, #KEYS, 3 do
  local dumped = redis.call('DUMP', KEYS[k])
  parts[#parts + 1] = dumped and string.sub(dumped, -10) or ABSENT
  parts[#parts + 1] = any_lock and held_on(k) or '{}'
end
local fingerprint = redis.sha1hex(table.concat(parts, '\0'))
if fingerprint == ARGV[5] and version == ARGV[6] then
  return { version, customer_id, segments, false, 'same', fingerprint }
end
local reply = { version, customer_id, segments, false, 'fresh', fingerprint }
for k = 5, #KEYS, 3 do
  table.insert(reply, redis.call('HGETALL', KEYS[k]))
  table.insert(reply, any_lock and held_on(k) or '{}')
end
return reply
