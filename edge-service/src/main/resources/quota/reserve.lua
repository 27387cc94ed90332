-- reserve: one atomic decision per call. Account status, rate limits (GCRA, per user and per API key,
-- requests and tokens), credit check, reservation write with expiry bookkeeping, thresholds.
-- KEYS: 1 res hash, 2 deadline zset, 3 gc zset, 4 reserved (open service-credit estimates),
--       5 settled (month), 6 personal-key usage (month), 7 thresholds set (month),
--       8 user req TAT, 9 user token TAT, 10 key req TAT, 11 key token TAT
-- ARGV: 1 nowMs, 2 reservation id, 3 estimateNanoUsd, 4 estimateTokens, 5 status, 6 creditNanoUsd,
--       7 user rpm, 8 user tpm, 9 key rpm, 10 key tpm, 11 hasPersonalKey (0/1), 12 ttlMs,
--       13 retentionMs, 14 sweepLimit, 15 monthTtlMs, 16 softLimitPercent (0 = none)
-- Returns {'REBUILD'} when the month's counters are missing, else
--   {'OK', route, reason, remainingCredit, reqLimit, reqRemaining, reqResetMs, tokLimit, tokRemaining,
--    tokResetMs, retryMs, softState (0 below, 1 reached, 2 crossed now), thresholds...}
local now = tonumber(ARGV[1])
-- One MGET each for the counters and the four arrival times: fewer commands is most of a script's cost.
local counters = redis.call('MGET', KEYS[5], KEYS[4])
if not counters[1] or not counters[2] then
  return { 'REBUILD' }
end
local settled, reserved = tonumber(counters[1]), tonumber(counters[2])
if expire_stale(KEYS[1], KEYS[2], KEYS[3], KEYS[4], now, tonumber(ARGV[13]), tonumber(ARGV[14])) > 0 then
  reserved = tonumber(redis.call('GET', KEYS[4]))
end

local id, est, est_tokens = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local credit = tonumber(ARGV[6])
local tats = redis.call('MGET', KEYS[8], KEYS[9], KEYS[10], KEYS[11])

-- GCRA: capacity `limit` units per 60 s, refilled continuously; no fixed window, so no 2x burst
-- at a minute boundary. `stored`: the key's arrival time (false when absent). Returns ok, newTat,
-- remaining, resetMs, retryMs.
local function gcra(stored, limit, cost)
  local period = 60000
  local t = period / limit
  cost = charged(cost, limit)
  local tat = tonumber(stored or now)
  if tat < now then tat = now end
  local new_tat = tat + cost * t
  local allow_at = new_tat - period
  if allow_at > now then
    local rem = math.floor((period - (tat - now)) / t)
    if rem < 0 then rem = 0 end
    return false, tat, rem, math.ceil(tat - now), math.ceil(allow_at - now)
  end
  local rem = math.floor((period - (new_tat - now)) / t)
  if rem < 0 then rem = 0 end
  return true, new_tat, rem, math.ceil(new_tat - now), 0
end

local soft = tonumber(ARGV[16])
-- Rejections before the credit check report whether the soft limit is reached; they cross nothing.
local function soft_reached(committed)
  if soft > 0 and credit > 0 and committed * 100 >= credit * soft then return 1 end
  return 0
end

local function result(route, reason, committed, req, tok, retry, thr, soft_state)
  local remaining = credit - committed
  if remaining < 0 then remaining = 0 end
  local out = { 'OK', route, reason, remaining, req[1], req[2], req[3], tok[1], tok[2], tok[3], retry, soft_state }
  for _, p in ipairs(thr) do out[#out + 1] = p end
  return out
end

local u_rpm, u_tpm, k_rpm, k_tpm = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
if ARGV[5] ~= 'ACTIVE' then
  return result('REJECTED', 'ACCOUNT_DISABLED', settled + reserved, { u_rpm, 0, 0 }, { u_tpm, 0, 0 }, 0, {}, soft_reached(settled + reserved))
end

local ur_ok, ur_tat, ur_rem, ur_reset, ur_retry = gcra(tats[1], u_rpm, 1)
local kr_ok, kr_tat, kr_rem, kr_reset, kr_retry = gcra(tats[3], k_rpm, 1)
local ut_ok, ut_tat, ut_rem, ut_reset, ut_retry = gcra(tats[2], u_tpm, est_tokens)
local kt_ok, kt_tat, kt_rem, kt_reset, kt_retry = gcra(tats[4], k_tpm, est_tokens)
-- Headers show the tighter of the user's and the key's limit.
local req = { u_rpm, ur_rem, ur_reset }
if kr_rem < ur_rem then req = { k_rpm, kr_rem, kr_reset } end
local tok = { u_tpm, ut_rem, ut_reset }
if kt_rem < ut_rem then tok = { k_tpm, kt_rem, kt_reset } end

if not (ur_ok and kr_ok) then
  return result('REJECTED', 'RATE_LIMITED_REQUESTS', settled + reserved, req, tok, math.max(ur_retry, kr_retry), {}, soft_reached(settled + reserved))
end
if not (ut_ok and kt_ok) then
  return result('REJECTED', 'RATE_LIMITED_TOKENS', settled + reserved, req, tok, math.max(ut_retry, kt_retry), {}, soft_reached(settled + reserved))
end

local route
local exhausted = false
if settled + reserved + est <= credit then
  route = 'S'
else
  exhausted = true
  if ARGV[11] == '1' then route = 'P' end
end
local month_ttl = tonumber(ARGV[15])
if not route then
  local thr, soft_state = crossed(KEYS[7], settled + reserved, credit, true, month_ttl, soft)
  return result('REJECTED', 'CREDIT_EXHAUSTED', settled + reserved, req, tok, 0, thr, soft_state)
end

-- Admitted: charge the rate limits and write the reservation.
set_tat(KEYS[8], ur_tat, now)
set_tat(KEYS[10], kr_tat, now)
-- The record keeps where each token charge ended, so settle and release can give back exactly what is still owed.
local charged_u, charged_k = nil, nil
if est_tokens > 0 then
  set_tat(KEYS[9], ut_tat, now)
  set_tat(KEYS[11], kt_tat, now)
  charged_u, charged_k = ut_tat, kt_tat
end
redis.call('HSET', KEYS[1], id, encode({ state = 'O', route = route, est = est, est_tokens = est_tokens, actual = 0,
                                         actual_tokens = 0, u_tat = charged_u, k_tat = charged_k }))
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[12]), id)
if route == 'S' then
  reserved = redis.call('INCRBY', KEYS[4], ARGV[3])
end
local thr, soft_state = crossed(KEYS[7], settled + reserved, credit, exhausted, month_ttl, soft)
return result(route == 'S' and 'SERVICE_CREDIT' or 'PERSONAL_KEY', '', settled + reserved, req, tok, 0, thr, soft_state)
