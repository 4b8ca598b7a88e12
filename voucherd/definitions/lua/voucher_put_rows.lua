-- Write the live-state HASHes of many imported codes, each with its own fields (voucherd.jobs.imports).
--
-- KEYS[i]    the state key of the i-th code (all of one project: one hash tag, one slot)
-- ARGV[1]    mode: "replace" (a new code: drop a stale hash or "missing" marker, but keep one holding the
--            same voucher id, which a validation loaded from the committed row) or "if_absent" (a code an
--            earlier attempt of the same import wrote to PostgreSQL: never clobber counters that moved since)
-- ARGV[1+i]  the i-th code's fields as a JSON object of strings {field: value, ...}
--
-- Returns the number of hashes written.

local mode, written = ARGV[1], 0
for i = 1, #KEYS do
  local key = KEYS[i]
  local fields = cjson.decode(ARGV[1 + i])
  local exists = redis.call('EXISTS', key) == 1
  local loaded = exists and fields['id'] ~= nil and redis.call('HGET', key, 'id') == fields['id']
  if not loaded and (mode == 'replace' or not exists or redis.call('HEXISTS', key, 'missing') == 1) then
    if exists then redis.call('DEL', key) end
    local flat = {}
    for field, value in pairs(fields) do
      flat[#flat + 1] = field
      flat[#flat + 1] = value
    end
    redis.call('HSET', key, unpack(flat))
    written = written + 1
  end
end
return written
