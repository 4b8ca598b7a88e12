-- Add codes to a customer's wallet (the codes published to them), keeping each once.
--
-- KEYS[1]  the project's wallets HASH (customer id -> JSON list of codes)
-- ARGV[1]  customer id, ARGV[2..] the codes
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local codes = raw and cjson.decode(raw) or {}
local seen = {}
for _, code in ipairs(codes) do seen[code] = true end
for i = 2, #ARGV do
  if not seen[ARGV[i]] then
    table.insert(codes, ARGV[i])
    seen[ARGV[i]] = true
  end
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(codes))
return #codes
