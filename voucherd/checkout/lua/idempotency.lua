-- Idempotency keys for redemptions and rollbacks (beyond Voucherify).
--
-- KEYS[1]  the key's HASH: fingerprint, state (pending|done), status, body
-- ARGV[1]  begin | finish | abandon
-- ARGV[2]  the request's fingerprint (method, path and body digest)
-- ARGV[3]  (begin) how long a pending claim lives, ms; (finish) how long the answer is kept, ms
-- ARGV[4], ARGV[5]  (finish) HTTP status and response body
--
-- begin returns {"new"} (the caller goes ahead), {"mismatch"}, {"pending"}, or
-- {"done", status, body} (the caller answers that again).
local op = ARGV[1]
if op == 'begin' then
  if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('HSET', KEYS[1], 'fingerprint', ARGV[2], 'state', 'pending')
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return { 'new' }
  end
  local found = redis.call('HMGET', KEYS[1], 'fingerprint', 'state', 'status', 'body')
  if found[1] ~= ARGV[2] then return { 'mismatch' } end
  if found[2] ~= 'done' then return { 'pending' } end
  return { 'done', found[3], found[4] }
elseif op == 'finish' then
  if redis.call('HGET', KEYS[1], 'fingerprint') == ARGV[2] then
    redis.call('HSET', KEYS[1], 'state', 'done', 'status', ARGV[4], 'body', ARGV[5])
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
  end
  return { 'ok' }
else
  if redis.call('HGET', KEYS[1], 'fingerprint') == ARGV[2] and redis.call('HGET', KEYS[1], 'state') == 'pending' then
    redis.call('DEL', KEYS[1])
  end
  return { 'ok' }
end
