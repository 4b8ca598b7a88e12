-- Take over the pending messages of a consumer that is gone (voucherd.platform.heartbeats, worker.loop).
--
-- KEYS[1]  the stream
-- ARGV[1]  the consumer group   ARGV[2]  the gone consumer   ARGV[3]  the consumer taking over
-- ARGV[4]  how many at most
--
-- The gone consumer may carry the claimer's own name (an earlier process that had the same pid,
-- as in a restarted container): its entries are claimed afresh, and the consumer stays.
--
-- Only entries still pending for the gone consumer move, and in the same atomic step as the look-up,
-- so two workers taking over at once never take an entry from each other. XCLAIM counts a delivery,
-- so a message that keeps killing its worker still reaches the dead-letter stream. Once the gone
-- consumer holds nothing, it leaves the group.
--
-- Returns {entries found, claimed entries as {id, {field, value, ...}}, ...}.
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', ARGV[4], ARGV[2])
local ids = {}
for i, entry in ipairs(pending) do ids[i] = entry[1] end
local claimed = {}
if #ids > 0 then
  claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, unpack(ids))
end
if #ids < tonumber(ARGV[4]) and ARGV[2] ~= ARGV[3] then
  redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
end
return { #ids, claimed }
