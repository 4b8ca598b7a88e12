-- Record many generated codes compactly instead of writing a state HASH per code (large generations):
-- each code becomes one field of a bucket HASH, "<template id>|<voucher id>", and the fields the codes
-- share are stored once as the template. voucher_materialise.lua turns an entry into the code's state
-- HASH on first read. A key already under a code is handled as voucher_put_many.lua does: a hash holding
-- the same voucher id stays (a validation loaded it from the committed row; its counters may have moved)
-- and gets no entry; anything else there (a "missing" marker, a stale hash) is dropped.
--
-- KEYS[1]             the project's templates HASH
-- KEYS[2 .. 1+B]      the bucket HASHes of this batch
-- KEYS[2+B ..]        the state key of each code, grouped by bucket in the order of KEYS[2 .. 1+B]
-- ARGV[1] template id   ARGV[2] template: JSON list of the shared field, value pairs
-- ARGV[3] B             ARGV[4] length of the state keys' prefix (what follows it is the code)
-- ARGV[4+b]           the number of codes in bucket b
-- ARGV[5+B ..]        the voucher id of each code, in the order of the state keys
--
-- Returns the number of codes recorded.

local tpl_id, buckets, prefix = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('HSET', KEYS[1], tpl_id, ARGV[2])
local ids = 4 + buckets
local i, recorded = 0, 0
for b = 1, buckets do
  local entries = {}
  for _ = 1, tonumber(ARGV[4 + b]) do
    i = i + 1
    local key, id = KEYS[1 + buckets + i], ARGV[ids + i]
    local fresh = true
    if redis.call('EXISTS', key) == 1 then
      if redis.call('HGET', key, 'id') == id then fresh = false else redis.call('DEL', key) end
    end
    if fresh then
      entries[#entries + 1] = string.sub(key, prefix + 1)
      entries[#entries + 1] = tpl_id .. '|' .. id
      if #entries >= 2000 then
        redis.call('HSET', KEYS[1 + b], unpack(entries))
        recorded, entries = recorded + #entries / 2, {}
      end
    end
  end
  if #entries > 0 then
    redis.call('HSET', KEYS[1 + b], unpack(entries))
    recorded = recorded + #entries / 2
  end
end
return recorded
