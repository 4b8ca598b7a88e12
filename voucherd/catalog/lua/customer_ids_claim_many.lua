-- Claim customer ids for many source_ids at once (voucherd.jobs.imports): the id already mapped, else the candidate.
--
-- KEYS[1]    the project's HASH source_id -> customer id (keys.customer_ids)
-- ARGV       source_id, candidate id, source_id, candidate id, ...
--
-- Returns the id of each source_id, in order.

local out = {}
for i = 1, #ARGV, 2 do
  redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])
  out[#out + 1] = redis.call('HGET', KEYS[1], ARGV[i])
end
return out
