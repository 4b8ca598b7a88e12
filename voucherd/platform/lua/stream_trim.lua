-- Drop a stream's entries that the worker has finished with and that are older than the retention.
--
-- The consumer group acknowledges an entry once its task has run (a redemption's event once
-- PostgreSQL has it); acknowledged entries were kept for ever, so a busy stream grew by every event.
-- An entry may go only when it is before all of: the retention cutoff, the id after the group's last
-- delivered one (entries after that are not delivered yet) and the oldest entry still pending (delivered, not
-- acknowledged). One script, so nothing is delivered or claimed between the read and the trim.
--
-- KEYS[1]  the stream    ARGV[1] the consumer group    ARGV[2] the cutoff, epoch ms
-- Returns the number of entries removed.
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end

local function before(a, b)  -- stream id a < stream id b
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end

local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
if not ok then return 0 end  -- no stream (yet)
local last = nil
for _, group in ipairs(groups) do
  local fields = {}
  for i = 1, #group, 2 do fields[group[i]] = group[i + 1] end
  if fields['name'] == ARGV[1] then last = fields['last-delivered-id'] end
end
if last == nil then return 0 end  -- without the group nothing is known to be done

-- The first id after the last delivered one: what the group has seen ends just before it.
local last_ms, last_seq = parse(last)
local after_last = last_ms .. '-' .. (last_seq + 1)
local limit = ARGV[2] .. '-0'
if before(after_last, limit) then limit = after_last end
local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
if tonumber(pending[1]) > 0 and before(pending[2], limit) then limit = pending[2] end
return redis.call('XTRIM', KEYS[1], 'MINID', limit)
