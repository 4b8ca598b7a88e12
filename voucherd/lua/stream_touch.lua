-- Keep a live consumer's messages in hand from looking idle (worker.loop, every heartbeat).
--
-- KEYS[1]  the stream
-- ARGV[1]  the consumer group   ARGV[2]  the consumer   ARGV[3..]  the ids it is working on
--
-- Resets the idle time of those ids still pending for this consumer (XCLAIM to itself, JUSTID:
-- no delivery counted), so the idle-timeout re-claim of other workers never takes a batch that
-- is still being worked on, however long a PostgreSQL outage keeps it in hand. Ids another
-- consumer holds by now are left alone.
--
-- Returns how many ids were touched.
local claim = { 'XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0 }
for i = 3, #ARGV do
  local entry = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #entry > 0 then claim[#claim + 1] = ARGV[i] end
end
local touched = #claim - 5
if touched > 0 then
  claim[#claim + 1] = 'JUSTID'
  redis.call(unpack(claim))
end
return touched
