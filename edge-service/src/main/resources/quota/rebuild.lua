-- rebuild: writes missing counters with SET, never by adding increments, and only where absent, so a
-- second rebuild racing the first changes nothing. Settled and personal-key usage come from Postgres
-- (the truth); the open-reservation sum is recomputed from the reservation records that survived.
-- KEYS: 1 res hash, 2 reserved, 3 settled (month), 4 personal (month)
-- ARGV: 1 settledNanoUsd (Postgres), 2 personalNanoUsd (Postgres), 3 monthTtlMs
-- Returns {settledWritten (0/1), reservedWritten (0/1)}
local ttl = tonumber(ARGV[3])
local s = redis.call('SET', KEYS[3], ARGV[1], 'PX', ttl, 'NX') and 1 or 0
redis.call('SET', KEYS[4], ARGV[2], 'PX', ttl, 'NX')
local w = 0
if redis.call('EXISTS', KEYS[2]) == 0 then
  local sum = 0
  local vals = redis.call('HVALS', KEYS[1])
  for _, v in ipairs(vals) do
    local r = decode(v)
    if r.state == 'O' and r.route == 'S' then sum = sum + r.est end
  end
  redis.call('SET', KEYS[2], fmt(sum))
  w = 1
end
return { s, w }
