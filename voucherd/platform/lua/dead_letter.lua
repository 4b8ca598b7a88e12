-- Move one pending stream message to its dead-letter stream, atomically.
--
-- KEYS[1]  the stream (same hash tag as KEYS[2])
-- KEYS[2]  its dead-letter stream
-- ARGV[1]  consumer group
-- ARGV[2]  message id
-- ARGV[3]  reason (last error)
-- ARGV[4]  delivery count
--
-- Returns the dead-letter entry id, or false when the message is gone
-- (already acknowledged, or trimmed): then there is nothing to move.
local entries = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if #entries == 0 then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  return false
end
local fields = entries[1][2]
table.insert(fields, '_origin_id')
table.insert(fields, ARGV[2])
table.insert(fields, '_reason')
table.insert(fields, ARGV[3])
table.insert(fields, '_tries')
table.insert(fields, ARGV[4])
local dead_id = redis.call('XADD', KEYS[2], '*', unpack(fields))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return dead_id
