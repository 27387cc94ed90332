-- reconcile: raises the month's settled usage to Postgres's value when Postgres is ahead (Redis lost
-- settles); never lowers it (Redis ahead = the sink's normal lag). SET, not INCRBY.
-- KEYS: 1 settled (month)
-- ARGV: 1 postgresSettledNanoUsd
-- Returns {status, redisValueBefore}: MISSING (rebuild will handle it), RAISED, OK
local cur = redis.call('GET', KEYS[1])
if not cur then return { 'MISSING', -1 } end
local pg = tonumber(ARGV[1])
if pg > tonumber(cur) then
  redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
  return { 'RAISED', tonumber(cur) }
end
return { 'OK', tonumber(cur) }
