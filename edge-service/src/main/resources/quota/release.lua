-- release: frees an open reservation (the upstream call failed, nothing to bill). Idempotent.
-- KEYS: 1 res hash, 2 deadline zset, 3 gc zset, 4 reserved
-- ARGV: 1 nowMs, 2 id, 3 retentionMs
-- Returns {status}
local now, id = tonumber(ARGV[1]), ARGV[2]
local rec = redis.call('HGET', KEYS[1], id)
if not rec then return { 'UNKNOWN_RESERVATION' } end
local r = decode(rec)
if r.state == 'S' then return { 'ALREADY_SETTLED' } end
if r.state == 'R' then return { 'ALREADY_RELEASED' } end
if r.state == 'O' then
  redis.call('ZREM', KEYS[2], id)
  if r.route == 'S' and redis.call('EXISTS', KEYS[4]) == 1 then
    redis.call('DECRBY', KEYS[4], fmt(r.est))
  end
end
r.state = 'R'
redis.call('HSET', KEYS[1], id, encode(r))
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), id)
return { 'RELEASED' }
