-- Add gift credits to a gift card at most once per guard field (referral rewards, issue 9).
--
-- KEYS[1]  the project's once-guard HASH (field -> 1 once applied)
-- KEYS[2]  the gift card's state HASH
-- ARGV[1]  guard field
-- ARGV[2]  credits to add (positive integer)
--
-- Returns {1, balance, amount} when added; {0} when the card has no state (load it and retry);
-- {2} when the guard field was already set (nothing moved).

local guard, delta = ARGV[1], tonumber(ARGV[2])
if redis.call('HEXISTS', KEYS[1], guard) == 1 then return {2} end
if redis.call('EXISTS', KEYS[2]) == 0 or redis.call('HEXISTS', KEYS[2], 'missing') == 1 then return {0} end
local balance = redis.call('HINCRBY', KEYS[2], 'balance', delta)
local amount = redis.call('HINCRBY', KEYS[2], 'amount', delta)
redis.call('HSET', KEYS[1], guard, 1)
return {1, balance, amount}
