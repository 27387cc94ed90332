-- tenant_reserve: the tenant's half of a reserve under a tenant budget (ADR 0081), run before the user's reserve.lua
-- with the same reservation id. Checks `spent + estimate <= budget` and counts the estimate, atomically, so
-- concurrent reserves of all the tenant's users never admit more than the budget. Idempotent by reservation id (a
-- retry of the same reserve answers what the first did and counts nothing twice).
-- KEYS: 1 spend hash, 2 tenant res hash, 3 deadline zset, 4 gc zset (all under {t:<tenant>})
-- ARGV: 1 nowMs, 2 reservation id, 3 estimateNanoUsd, 4 budgetNanoUsd, 5 ttlMs, 6 retentionMs, 7 sweepLimit,
--       8 month (yyyy-MM)
-- Returns {'REBUILD', 0} when the month's spend is missing, else {'OK' | 'EXCEEDED' | 'CLOSED', spendAfter}
local now, id, est, budget, month = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[8]
if redis.call('HEXISTS', KEYS[1], month) == 0 then return { 'REBUILD', 0 } end
tenant_expire(KEYS[1], KEYS[2], KEYS[3], KEYS[4], now, tonumber(ARGV[6]), tonumber(ARGV[7]))
local spent = tonumber(redis.call('HGET', KEYS[1], month))
local rec = redis.call('HGET', KEYS[2], id)
if rec then
  return { string.sub(rec, 1, 1) == 'O' and 'OK' or 'CLOSED', spent }
end
if spent + est > budget then return { 'EXCEEDED', spent } end
redis.call('HINCRBY', KEYS[1], month, ARGV[3])
redis.call('HSET', KEYS[2], id, 'O|' .. ARGV[3])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[5]), id)
return { 'OK', spent + est }
