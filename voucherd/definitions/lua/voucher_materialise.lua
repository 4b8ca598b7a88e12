-- The state HASH of a code, written from its generated entry (voucher_put_generated.lua) when absent.
--
-- KEYS[1]  the code's state key    KEYS[2]  the code's bucket HASH    KEYS[3]  the project's templates HASH
-- ARGV[1]  the code
--
-- Returns the state HASH as a flat list: what is there (a hash or a "missing" marker), else the one written
-- from the entry (which is then removed), else an empty list (not generated: the caller asks PostgreSQL).

local state = redis.call('HGETALL', KEYS[1])
if #state > 0 then return state end
local entry = redis.call('HGET', KEYS[2], ARGV[1])
if not entry then return state end
redis.call('HDEL', KEYS[2], ARGV[1])
local bar = string.find(entry, '|', 1, true)
local template = redis.call('HGET', KEYS[3], string.sub(entry, 1, bar - 1))
if not template then return state end
redis.call('HSET', KEYS[1], 'id', string.sub(entry, bar + 1), unpack(cjson.decode(template)))
return redis.call('HGETALL', KEYS[1])
