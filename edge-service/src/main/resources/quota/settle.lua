-- settle: replaces a reservation's estimate with the actual cost and trues up the token-rate limits
-- with the actual tokens. Idempotent: a settled record answers ALREADY_SETTLED and changes nothing. A
-- reservation freed by expiry still counts its actual cost and tokens (the call happened). Counters are
-- only changed when present: a missing counter is rebuilt from Postgres with SET (rebuild.lua), never
-- created here by an increment.
-- KEYS: 1 res hash, 2 deadline zset, 3 gc zset, 4 reserved, 5 settled (month), 6 personal (month), 7 thresholds (month),
--       8 user token TAT, 9 API key token TAT, 10 key-budget hash
-- ARGV: 1 nowMs, 2 id, 3 actualNanoUsd, 4 actualTokens, 5 closedRetentionMs (how long the settled record stays), 6 creditNanoUsd (-1 = unknown), 7 monthTtlMs,
--       8 user tpm, 9 key tpm (0 = no true-up of that limit), 10 softLimitPercent (0 = none),
--       11 id carries an API key (1/0: ids issued before it did have no key spend)
-- Returns {status, route, settledAfter, softState, tenant (1 = the record holds a tenant reservation: the engine
-- settles it in the tenant's slot next, tenant_close.lua), thresholds...}
local now, id = tonumber(ARGV[1]), ARGV[2]
local rec = redis.call('HGET', KEYS[1], id)
if not rec then return { 'UNKNOWN_RESERVATION', '', -1, 0, 0 } end
local r = decode(rec)
local route = r.route == 'S' and 'SERVICE_CREDIT' or 'PERSONAL_KEY'
if r.state == 'S' then return { 'ALREADY_SETTLED', route, -1, 0, 0 } end
if r.state == 'R' then return { 'ALREADY_RELEASED', route, -1, 0, 0 } end
local status = 'SETTLED'
if r.state == 'O' then
  redis.call('ZREM', KEYS[2], id)
  if r.route == 'S' and redis.call('EXISTS', KEYS[4]) == 1 then
    redis.call('DECRBY', KEYS[4], fmt(r.est))
  end
else
  status = 'SETTLED_AFTER_EXPIRY'
end
-- The key's month spend (ADR 0081): the actual cost replaces the estimate counted at reserve (none when not counted).
if r.route == 'S' and ARGV[11] == '1' then
  key_spend(KEYS[10], key_field(id), tonumber(ARGV[3]) - (r.kb and r.est or 0))
end
local target = r.route == 'S' and KEYS[5] or KEYS[6]
local after = -1
if redis.call('EXISTS', target) == 1 then
  after = redis.call('INCRBY', target, ARGV[3])
end
local actual_tokens = tonumber(ARGV[4])
-- Token limits were charged the estimate at reserve; charge the excess or give back the unused part.
local limits, ends = { tonumber(ARGV[8]), tonumber(ARGV[9]) }, { r.u_tat, r.k_tat }
for i = 1, 2 do
  local limit = limits[i]
  if limit > 0 then
    local diff = charged(actual_tokens, limit) - charged(r.est_tokens, limit)
    if diff > 0 then
      gcra_charge(KEYS[7 + i], limit, diff, now)
    elseif diff < 0 then
      gcra_refund(KEYS[7 + i], limit, -diff, ends[i], now)
    end
  end
end
r.state = 'S'
redis.call('HSET', KEYS[1], id, closed_record(r))
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[5]), id)
local out = { status, route, after, 0, r.tb and 1 or 0 }
local credit = tonumber(ARGV[6])
if r.route == 'S' and after >= 0 and credit >= 0 then
  local reserved = tonumber(redis.call('GET', KEYS[4]) or '0')
  local thr, soft_state = crossed(KEYS[7], after + reserved, credit, false, tonumber(ARGV[7]), tonumber(ARGV[10]))
  out[4] = soft_state
  for _, p in ipairs(thr) do out[#out + 1] = p end
end
return out
