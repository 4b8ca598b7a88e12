-- Adjust a gift card's balance (credits) or a loyalty card's points atomically.
--
-- KEYS[1]  the voucher's state key
-- ARGV[1]  balance field ("balance" for gift cards, "points" for loyalty cards)
-- ARGV[2]  lifetime total field ("amount" for gift cards, "points_total" for loyalty cards)
-- ARGV[3]  delta (integer; negative removes)
--
-- Returns {1, new balance, new total} on success, {0} when the key is absent or a "missing" marker
-- (load it and retry), {-1, balance} when the balance would drop below zero.

local key, bfield, tfield, delta = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('EXISTS', key) == 0 or redis.call('HEXISTS', key, 'missing') == 1 then return {0} end
local balance = tonumber(redis.call('HGET', key, bfield) or '0') or 0
if balance + delta < 0 then return {-1, balance} end
balance = redis.call('HINCRBY', key, bfield, delta)
local total = tonumber(redis.call('HGET', key, tfield) or '0') or 0
if delta > 0 then total = redis.call('HINCRBY', key, tfield, delta) end
return {1, balance, total}
