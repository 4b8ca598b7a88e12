-- Write the live-state HASHes of many new codes that share their fields (bulk generation), replacing
-- any stale hash or "missing" marker under those keys. A hash that already holds the same voucher id
-- stays: a validation loaded it from the row this batch just committed (codes are unique per project,
-- the bin included, so nothing else can hold that id), and its counters may have moved since.
--
-- KEYS[i]    the state key of the i-th new code (all of one project: one hash tag, one slot)
-- ARGV[1]    C, the number of shared field/value pairs
-- ARGV[2 .. 1+2C]       the shared field, value pairs
-- ARGV[2+2C .. 1+2C+#KEYS]  the voucher id of the i-th code (field "id")
--
-- Returns the number of hashes written.

local c = tonumber(ARGV[1])
local shared = {}
for i = 2, 1 + 2 * c do shared[#shared + 1] = ARGV[i] end
local base, written = 1 + 2 * c, 0
for i = 1, #KEYS do
  local id = ARGV[base + i]
  if redis.call('HGET', KEYS[i], 'id') ~= id then
    redis.call('DEL', KEYS[i])
    redis.call('HSET', KEYS[i], 'id', id, unpack(shared))
    written = written + 1
  end
end
return written
