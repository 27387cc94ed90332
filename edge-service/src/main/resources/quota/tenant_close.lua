-- tenant_close: the tenant's true-up after the user's settle or release (ADR 0081), or the release of a tenant
-- reservation the user's reserve refused or sent to the user's own key. Idempotent by the record's state.
-- Settle: an open reservation's estimate is replaced by the actual cost; an expired one (estimate already freed)
-- adds the actual cost. Release: an open reservation's estimate comes off; an expired one changes nothing.
-- KEYS: 1 spend hash, 2 tenant res hash, 3 deadline zset, 4 gc zset
-- ARGV: 1 nowMs, 2 reservation id, 3 actualNanoUsd (-1 = release), 4 closedRetentionMs
-- Returns {status}: SETTLED, SETTLED_AFTER_EXPIRY, RELEASED, ALREADY_SETTLED, ALREADY_RELEASED, UNKNOWN_RESERVATION
local now, id, actual = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local rec = redis.call('HGET', KEYS[2], id)
if not rec then return { 'UNKNOWN_RESERVATION' } end
local state, est = string.sub(rec, 1, 1), tonumber(string.sub(rec, 3))
if state == 'S' then return { 'ALREADY_SETTLED' } end
if state == 'R' then return { 'ALREADY_RELEASED' } end
local delta, status = 0, 'RELEASED'
if state == 'O' then
  redis.call('ZREM', KEYS[3], id)
  if actual >= 0 then delta, status = actual - est, 'SETTLED' else delta = -est end
elseif actual >= 0 then
  delta, status = actual, 'SETTLED_AFTER_EXPIRY'
end
key_spend(KEYS[1], id_month(id), delta)
redis.call('HSET', KEYS[2], id, (actual >= 0 and 'S' or 'R') .. '|0')
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[4]), id)
return { status }
