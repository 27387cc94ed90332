-- release: frees an open reservation (the upstream call failed, nothing to bill) and gives its token
-- estimate back to the token-rate limits (no tokens were used). The request itself stays counted by
-- the request-rate limits (it was made). Idempotent.
-- KEYS: 1 res hash, 2 deadline zset, 3 gc zset, 4 reserved, 5 user token TAT, 6 API key token TAT, 7 key-budget hash
-- ARGV: 1 nowMs, 2 id, 3 closedRetentionMs (how long the released record stays), 4 user tpm, 5 key tpm (0 = leave that limit alone)
-- Returns {status, tenant (1 = the record holds a tenant reservation: the engine releases it next)}
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
  if r.kb then key_spend(KEYS[7], key_field(id), -r.est) end
end
local limits, ends = { tonumber(ARGV[4]), tonumber(ARGV[5]) }, { r.u_tat, r.k_tat }
for i = 1, 2 do
  if limits[i] > 0 then
    gcra_refund(KEYS[4 + i], limits[i], charged(r.est_tokens, limits[i]), ends[i], now)
  end
end
r.state = 'R'
redis.call('HSET', KEYS[1], id, closed_record(r))
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), id)
return { 'RELEASED', r.tb and 1 or 0 }
