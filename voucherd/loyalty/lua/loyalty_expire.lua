-- Expire a loyalty card's points that fell due, once.
--
-- KEYS[1]  the card's state HASH
-- ARGV[1]  points that were added with an expiry date up to now (all such buckets, ever)
--
-- Spending takes the soonest-expiring points first, so everything that ever left the card
-- (points_total - points: spent, removed, transferred out, expired) covers those buckets first; what
-- is left of them expires now. Running it again finds nothing left, so no guard is needed.
-- Returns {1, expired, balance} or {0} when the card has no state (load it and retry).

local key, due = KEYS[1], tonumber(ARGV[1])
if redis.call('EXISTS', key) == 0 or redis.call('HEXISTS', key, 'missing') == 1 then return {0} end
local points = tonumber(redis.call('HGET', key, 'points') or '0') or 0
local total = tonumber(redis.call('HGET', key, 'points_total') or '0') or 0
local expire = due - (total - points)
if expire > points then expire = points end
if expire <= 0 then return {1, 0, points} end
points = redis.call('HINCRBY', key, 'points', -expire)
return {1, expire, points}
