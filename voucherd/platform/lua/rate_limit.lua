-- A fixed-window request counter, shared by every server process.
--
-- KEYS[1]  the counter of one client (IP) and window
-- ARGV[1]  requests allowed per window    ARGV[2] window length, ms
--
-- Returns {1, remaining} when the request may go on, {0, ms until the window ends} when not.
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if count > tonumber(ARGV[1]) then
  return { 0, redis.call('PTTL', KEYS[1]) }
end
return { 1, tonumber(ARGV[1]) - count }
