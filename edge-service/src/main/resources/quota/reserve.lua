-- reserve: one atomic decision per call. Account status, rate limits (GCRA, per user and per API key,
-- requests and tokens), credit check, reservation write with expiry bookkeeping, thresholds.
-- KEYS: 1 res hash, 2 deadline zset, 3 gc zset, 4 reserved (open service-credit estimates),
--       5 settled (month), 6 personal-key usage (month), 7 thresholds set (month),
--       8 user req TAT, 9 user token TAT, 10 key req TAT, 11 key token TAT, 12 key-budget hash
-- ARGV: 1 nowMs, 2 reservation id, 3 estimateNanoUsd, 4 estimateTokens, 5 status, 6 creditNanoUsd,
--       7 user rpm, 8 user tpm, 9 key rpm, 10 key tpm, 11 hasPersonalKey (0/1), 12 ttlMs,
--       13 retentionMs, 14 sweepLimit, 15 monthTtlMs, 16 softLimitPercent (0 = none),
--       17 key-budget field (<yyyy-MM>:<apiKeyId>), 18 key's monthly budget nano-USD (-1 = none),
--       19 tenant budget: '' none, '1' the estimate is reserved in the tenant's slot (tenant_reserve.lua, same id),
--          '0' the tenant's budget refused it
-- The key's month spend (ADR 0081: its service-credit settles plus open estimates) is counted whenever its field
-- exists, and must exist when the key has a budget; a call must fit both the user's credit and the key's budget.
-- Past either, it goes to the user's own key like past the credit, else KEY_BUDGET_EXCEEDED / CREDIT_EXHAUSTED.
-- A call the tenant's budget refused (ARGV 19 '0') goes the same way (TENANT_BUDGET_EXCEEDED); the engine releases
-- the tenant reservation of a call this script refuses or sends to the user's own key.
-- Returns {'REBUILD'} when the month's counters are missing, {'REBUILD_KEY'} when the key's spend is, else
--   {'OK', route, reason, remainingCredit, reqLimit, reqRemaining, reqResetMs, tokLimit, tokRemaining,
--    tokResetMs, retryMs, softState (0 below, 1 reached, 2 crossed now), thresholds...}
local now = tonumber(ARGV[1])
-- One MGET each for the counters and the four arrival times: fewer commands is most of a script's cost.
local counters = redis.call('MGET', KEYS[5], KEYS[4])
if not counters[1] or not counters[2] then
  return { 'REBUILD' }
end
local kb_field, key_budget = ARGV[17], tonumber(ARGV[18])
if key_budget >= 0 and redis.call('HEXISTS', KEYS[12], kb_field) == 0 then
  return { 'REBUILD_KEY' }
end
local settled, reserved = tonumber(counters[1]), tonumber(counters[2])
if expire_stale(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[12], now, tonumber(ARGV[13]), tonumber(ARGV[14])) > 0 then
  reserved = tonumber(redis.call('GET', KEYS[4]))
end

local id, est, est_tokens = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local credit = tonumber(ARGV[6])
local tats = redis.call('MGET', KEYS[8], KEYS[9], KEYS[10], KEYS[11])

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

local rl = rate_limits(tats, u_rpm, u_tpm, k_rpm, k_tpm, 1, est_tokens, now)
local req, tok = rl.req, rl.tok
if rl.reason ~= '' then
  return result('REJECTED', rl.reason, settled + reserved, req, tok, rl.retry, {}, soft_reached(settled + reserved))
end

local key_spent = redis.call('HGET', KEYS[12], kb_field)
local fits_credit = settled + reserved + est <= credit
local fits_key = key_budget < 0 or tonumber(key_spent) + est <= key_budget
local fits_tenant = ARGV[19] ~= '0'
local route
local exhausted = not fits_credit
if fits_credit and fits_key and fits_tenant then
  route = 'S'
elseif ARGV[11] == '1' then
  route = 'P'
end
local month_ttl = tonumber(ARGV[15])
if not route then
  local thr, soft_state = crossed(KEYS[7], settled + reserved, credit, exhausted, month_ttl, soft)
  local reason = 'CREDIT_EXHAUSTED'
  if fits_credit then reason = fits_key and 'TENANT_BUDGET_EXCEEDED' or 'KEY_BUDGET_EXCEEDED' end
  return result('REJECTED', reason, settled + reserved, req, tok, 0, thr, soft_state)
end

-- Admitted: charge the rate limits and write the reservation.
set_tat(KEYS[8], rl.ur, now)
set_tat(KEYS[10], rl.kr, now)
-- The record keeps where each token charge ended, so settle and release can give back exactly what is still owed.
local charged_u, charged_k = nil, nil
if est_tokens > 0 then
  set_tat(KEYS[9], rl.ut, now)
  set_tat(KEYS[11], rl.kt, now)
  charged_u, charged_k = rl.ut, rl.kt
end
local counted = route == 'S' and key_spent ~= false
redis.call('HSET', KEYS[1], id, encode({ state = 'O', route = route, est = est, est_tokens = est_tokens, actual = 0,
                                         actual_tokens = 0, u_tat = charged_u, k_tat = charged_k, kb = counted,
                                         tb = route == 'S' and ARGV[19] == '1' }))
if counted then redis.call('HINCRBY', KEYS[12], kb_field, ARGV[3]) end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[12]), id)
if route == 'S' then
  reserved = redis.call('INCRBY', KEYS[4], ARGV[3])
end
local thr, soft_state = crossed(KEYS[7], settled + reserved, credit, exhausted, month_ttl, soft)
return result(route == 'S' and 'SERVICE_CREDIT' or 'PERSONAL_KEY', '', settled + reserved, req, tok, 0, thr, soft_state)
