-- rebuild_key: writes a missing key month spend (ADR 0081) with SET semantics, only where absent: the key's
-- service-credit spend settled in Postgres plus every open reservation's estimate in Redis (counted before or not:
-- the field is gone), each marked as counted so its settle, release or expiry trues the spend up. Fields of months before the previous one are
-- dropped (they are not read any more), so the hash holds at most two months of each key.
-- KEYS: 1 res hash, 2 key-budget hash
-- ARGV: 1 field (<yyyy-MM>:<apiKeyId>), 2 settledNanoUsd (Postgres), 3 hashTtlMs, 4 oldest month kept (yyyy-MM)
-- Returns 1 when written, 0 when the field was there
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
local sum = tonumber(ARGV[2])
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local id, v = all[i], all[i + 1]
  local r = decode(v)
  if r.state == 'O' and r.route == 'S' and key_field(id) == ARGV[1] then
    sum = sum + r.est
    if not r.kb then
      r.kb = true
      redis.call('HSET', KEYS[1], id, encode(r))
    end
  end
end
for _, f in ipairs(redis.call('HKEYS', KEYS[2])) do
  if string.sub(f, 1, 7) < ARGV[4] then redis.call('HDEL', KEYS[2], f) end
end
redis.call('HSET', KEYS[2], ARGV[1], fmt(sum))
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
