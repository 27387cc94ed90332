-- tenant_rebuild: writes a missing tenant month spend (ADR 0081) only where absent: the tenant's service-credit
-- spend settled in Postgres plus the estimates of its open tenant reservations of that month (a second rebuild
-- racing the first changes nothing). Fields of months before the previous one are dropped.
-- KEYS: 1 spend hash, 2 tenant res hash
-- ARGV: 1 month (yyyy-MM), 2 settledNanoUsd (Postgres), 3 hashTtlMs, 4 oldest month kept (yyyy-MM)
-- Returns 1 when written, 0 when the field was there
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
local sum = tonumber(ARGV[2])
local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all, 2 do
  local id, v = all[i], all[i + 1]
  if string.sub(v, 1, 1) == 'O' and id_month(id) == ARGV[1] then sum = sum + tonumber(string.sub(v, 3)) end
end
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if f < ARGV[4] then redis.call('HDEL', KEYS[1], f) end
end
redis.call('HSET', KEYS[1], ARGV[1], fmt(sum))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
