-- handover: takes over what a user's month decided in Postgres while Redis was unavailable (FAIL_TO_DATABASE,
-- ADR 0072), before Redis answers for it again: the settles made there and the reservations still open or expired
-- there. Applied once per handover sequence number (the marker), so a handover whose Postgres commit failed after
-- this ran is not counted twice when it is repeated. Counters only change when present: a missing counter is
-- rebuilt with SET from Postgres (rebuild.lua), whose baseline then includes what was settled in Postgres; a
-- missing reserved sum is recomputed from the records written here.
-- KEYS: 1 res hash, 2 deadline zset, 3 gc zset, 4 reserved, 5 settled (month), 6 personal (month), 7 handover marker (month),
--       8 key-budget hash
-- The month's key spends are dropped (ADR 0081): Postgres settled per key meanwhile, so each is rebuilt from
-- Postgres at its key's next reserve (rebuild_key.lua), with the open reservations written here.
-- ARGV: 1 nowMs, 2 seq, 3 settledNanoUsd, 4 personalNanoUsd, 5 retentionMs, 6 monthTtlMs, 7 month (yyyy-MM),
--       then per reservation: id, state (O/E), route (S/P), estimateNanoUsd, estimateTokens, deadlineMs
-- Returns {'APPLIED' | 'SKIPPED', reservationsWritten}
local seq = tonumber(ARGV[2])
if tonumber(redis.call('GET', KEYS[7]) or '0') >= seq then return { 'SKIPPED', 0 } end
if tonumber(ARGV[3]) > 0 and redis.call('EXISTS', KEYS[5]) == 1 then redis.call('INCRBY', KEYS[5], ARGV[3]) end
if tonumber(ARGV[4]) > 0 and redis.call('EXISTS', KEYS[6]) == 1 then redis.call('INCRBY', KEYS[6], ARGV[4]) end
local now, written = tonumber(ARGV[1]), 0
for i = 8, #ARGV, 6 do
  local id = ARGV[i]
  local r = { state = ARGV[i + 1], route = ARGV[i + 2], est = tonumber(ARGV[i + 3]), est_tokens = tonumber(ARGV[i + 4]),
              actual = 0, actual_tokens = 0 }
  if redis.call('HSETNX', KEYS[1], id, encode(r)) == 1 then
    written = written + 1
    if r.state == 'O' then
      redis.call('ZADD', KEYS[2], tonumber(ARGV[i + 5]), id)
      if r.route == 'S' and redis.call('EXISTS', KEYS[4]) == 1 then redis.call('INCRBY', KEYS[4], fmt(r.est)) end
    else
      redis.call('ZADD', KEYS[3], now + tonumber(ARGV[5]), id)
    end
  end
end
local prefix = ARGV[7] .. ':'
for _, f in ipairs(redis.call('HKEYS', KEYS[8])) do
  if string.sub(f, 1, #prefix) == prefix then redis.call('HDEL', KEYS[8], f) end
end
redis.call('SET', KEYS[7], ARGV[2], 'PX', ARGV[6])
return { 'APPLIED', written }
