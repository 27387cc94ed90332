-- Shared prelude, prepended to every quota script at load time (QuotaScripts). Redis 6.2 has no
-- FUNCTION LOAD, so the helpers travel with each script; the scripts stay generic (keys and
-- arguments only). Amounts are integer nano-USD below 2^53 (checked in Java), so Lua's doubles
-- hold them exactly; counters change with INCRBY/DECRBY, which Redis does in 64-bit integers.
-- Reservation record (one hash field per reservation id):
--   state|route|estimateNanoUsd|estimateTokens|actualNanoUsd|actualTokens|userTokenTat|keyTokenTat|keyBudgetFlag
--   state: O open, S settled, R released, E expired (freed by expiry); route: S service credit, P personal key
--   userTokenTat/keyTokenTat: the token limits' arrival times right after this call's estimate was
--   charged ('-' when nothing was charged; absent in records written before they existed)
--   keyBudgetFlag: '1' when the estimate is counted in the key's month spend (the user's key-budget hash, ADR 0081),
--   '0' or absent when not (then a settle adds the whole actual cost, a release or expiry takes nothing off)
--   tenantFlag: '1' when the call holds a reservation of the same id in its tenant's slot (tenant budget, ADR 0081):
--   settle and release answer it so the engine trues the tenant up after the user; '0' or absent when not
-- A settled or released record keeps only state|route (closed_record, ADR 0067): all a repeated settle or
-- release reads from it. Open and expired records keep every field (a late settle needs the estimate).

local function fmt(n) return string.format('%.0f', n) end

local function decode(s)
  local t = {}
  for f in string.gmatch(s, '([^|]+)') do t[#t + 1] = f end
  return { state = t[1], route = t[2], est = tonumber(t[3]), est_tokens = tonumber(t[4]),
           actual = tonumber(t[5]), actual_tokens = tonumber(t[6]), u_tat = tonumber(t[7] or '-'),
           k_tat = tonumber(t[8] or '-'), kb = t[9] == '1', tb = t[10] == '1' }
end

local function tat_field(v)
  if v then return string.format('%.3f', v) end
  return '-'
end

local function encode(r)
  return r.state .. '|' .. r.route .. '|' .. fmt(r.est) .. '|' .. fmt(r.est_tokens) .. '|' ..
         fmt(r.actual) .. '|' .. fmt(r.actual_tokens) .. '|' .. tat_field(r.u_tat) .. '|' .. tat_field(r.k_tat) .. '|' ..
         (r.kb and '1' or '0') .. '|' .. (r.tb and '1' or '0')
end

-- The key-budget hash field of a reservation (ADR 0081): '<yyyy-MM>:<apiKeyId>' from its id
-- '{u:<user>}:<yyyy-MM>:<origin>:<apiKeyId>:<uuid>' (QuotaKeys); only asked for ids that carry a key.
local function key_field(id)
  local close = string.find(id, '}:', 1, true)
  local rest = string.sub(id, close + 12)
  return string.sub(id, close + 2, close + 8) .. ':' .. string.sub(rest, 1, #rest - 37)
end

-- Changes a key's month spend by `delta` when the field exists (a missing field is rebuilt from Postgres with
-- the open reservations, rebuild_key.lua, never created by an increment). Also a tenant's month spend (field <yyyy-MM>
-- of its spend hash, tenant_rebuild.lua).
local function key_spend(kb_key, field, delta)
  if delta ~= 0 and redis.call('HEXISTS', kb_key, field) == 1 then
    redis.call('HINCRBY', kb_key, field, fmt(delta))
  end
end

-- The record of a settled (S) or released (R) reservation: what a repeat needs to answer ALREADY_SETTLED /
-- ALREADY_RELEASED with the route, nothing more (~70 bytes fewer per call than the full record).
local function closed_record(r)
  return r.state .. '|' .. r.route
end

-- Deletes closed (and expired) records whose retention has passed, at most `limit`: a user's or a tenant's.
local function purge_closed(res_key, gc_key, now, limit)
  local old = redis.call('ZRANGEBYSCORE', gc_key, '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(old) do
    redis.call('HDEL', res_key, id)
    redis.call('ZREM', gc_key, id)
  end
end

-- Frees open reservations whose deadline has passed (at most `limit`) and purges closed records
-- whose retention has passed. Expired records stay as tombstones so a late settle still counts.
-- `kb_key`: the user's key-budget hash (the estimate of a counted reservation comes off its key's spend too).
local function expire_stale(res_key, dl_key, gc_key, reserved_key, kb_key, now, retention, limit)
  local ids = redis.call('ZRANGEBYSCORE', dl_key, '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do
    redis.call('ZREM', dl_key, id)
    local rec = redis.call('HGET', res_key, id)
    if rec then
      local r = decode(rec)
      if r.state == 'O' then
        if r.route == 'S' and redis.call('EXISTS', reserved_key) == 1 then
          redis.call('DECRBY', reserved_key, fmt(r.est))
        end
        if r.kb then key_spend(kb_key, key_field(id), -r.est) end
        r.state, r.kb = 'E', false
        redis.call('HSET', res_key, id, encode(r))
        redis.call('ZADD', gc_key, now + retention, id)
      end
    end
  end
  purge_closed(res_key, gc_key, now, limit)
  return #ids
end

-- Thresholds (percent of credit) newly reached by `committed`; each one is reported once per
-- month because SADD answers 1 only the first time. `exhausted` forces 100 (a call was refused credit,
-- or sent to the user's own key). The soft limit (`soft` percent of the credit, 0 = none) is member 's'
-- of the same set: reported once per month like the thresholds, and forced by `exhausted` as well.
-- Returns the list of newly crossed thresholds and the soft-limit state: 0 below, 1 reached earlier,
-- 2 crossed by this call.
local function crossed(thr_key, committed, credit, exhausted, month_ttl_ms, soft)
  local out = {}
  local soft_state = 0
  if credit <= 0 and not exhausted then return out, soft_state end
  for _, p in ipairs({ 50, 80, 100 }) do
    if committed * 100 >= credit * p or (exhausted and p == 100) then
      if redis.call('SADD', thr_key, p) == 1 then
        out[#out + 1] = p
        redis.call('PEXPIRE', thr_key, month_ttl_ms)
      end
    end
  end
  if soft > 0 and (committed * 100 >= credit * soft or exhausted) then
    soft_state = 1
    if redis.call('SADD', thr_key, 's') == 1 then
      soft_state = 2
      redis.call('PEXPIRE', thr_key, month_ttl_ms)
    end
  end
  return out, soft_state
end

-- GCRA arrival times (rate limits: `limit` units per 60 s, one unit every 60000 / limit ms). A key
-- lives until its arrival time has passed (then the bucket is full and the key is not needed).
local function set_tat(key, tat, now)
  redis.call('SET', key, string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 1000)
end

-- Units one call is charged: a call larger than the whole per-minute limit counts as the full
-- bucket (it empties it, it is not impossible); the same cap at reserve and at settle.
local function charged(units, limit)
  if units > limit then return limit end
  return units
end

-- GCRA: capacity `limit` units per 60 s, refilled continuously; no fixed window, so no 2x burst
-- at a minute boundary. `stored`: the key's arrival time (false when absent). Returns ok, newTat,
-- remaining, resetMs, retryMs.
local function gcra(stored, limit, cost, now)
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

-- The four rate limits of one call (or batch): requests and tokens, per user and per API key, checked
-- together. `tats`: the arrival times {user req, user tok, key req, key tok}. Returns a table: reason
-- ('' when all four allow it, else RATE_LIMITED_REQUESTS or RATE_LIMITED_TOKENS), retry (ms), req and tok
-- ({limit, remaining, resetMs}: the tighter of the user's and the key's, for the headers) and the new
-- arrival times to write when the caller goes ahead (ur, ut, kr, kt). Writes nothing itself.
-- Shared by reserve (one call) and admit (batch ingest, bad-input rejections): one rate, one algorithm.
local function rate_limits(tats, u_rpm, u_tpm, k_rpm, k_tpm, requests, tokens, now)
  local ur_ok, ur_tat, ur_rem, ur_reset, ur_retry = gcra(tats[1], u_rpm, requests, now)
  local kr_ok, kr_tat, kr_rem, kr_reset, kr_retry = gcra(tats[3], k_rpm, requests, now)
  local ut_ok, ut_tat, ut_rem, ut_reset, ut_retry = gcra(tats[2], u_tpm, tokens, now)
  local kt_ok, kt_tat, kt_rem, kt_reset, kt_retry = gcra(tats[4], k_tpm, tokens, now)
  local out = { reason = '', retry = 0, ur = ur_tat, ut = ut_tat, kr = kr_tat, kt = kt_tat }
  out.req = { u_rpm, ur_rem, ur_reset }
  if kr_rem < ur_rem then out.req = { k_rpm, kr_rem, kr_reset } end
  out.tok = { u_tpm, ut_rem, ut_reset }
  if kt_rem < ut_rem then out.tok = { k_tpm, kt_rem, kt_reset } end
  if not (ur_ok and kr_ok) then
    out.reason, out.retry = 'RATE_LIMITED_REQUESTS', math.max(ur_retry, kr_retry)
  elseif not (ut_ok and kt_ok) then
    out.reason, out.retry = 'RATE_LIMITED_TOKENS', math.max(ut_retry, kt_retry)
  end
  return out
end

-- Charges `units` more to a GCRA limit (settle of a call that used more tokens than its estimate).
-- The tokens were used, so the charge is not checked against the limit: the next calls wait instead.
local function gcra_charge(key, limit, units, now)
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  set_tat(key, tat + units * 60000 / limit, now)
end

-- Gives back `units` of a charge whose arrival time right after charging was `charge_end` (settle
-- below the estimate, release). Time repays a GCRA's debt oldest first, so of that charge only the
-- part after `now` is still owed, and only that part is given back: capacity that has refilled
-- already is not granted a second time. Later calls' charges move earlier by what is given back,
-- as if this call had been charged less from the start.
local function gcra_refund(key, limit, units, charge_end, now)
  if not charge_end or charge_end <= now or units <= 0 then return end
  local give = math.min(units * 60000 / limit, charge_end - now)
  local tat = tonumber(redis.call('GET', key) or now)
  local new_tat = tat - give
  if new_tat <= now then
    redis.call('DEL', key)
  else
    set_tat(key, new_tat, now)
  end
end

-- Tenant budgets (ADR 0081): the tenant's month spend lives in its own slot {t:<tenant>}: a hash field per month
-- (<yyyy-MM> = service-credit settles plus open estimates of all its users), a reservation hash keyed by the user's
-- reservation id (record 'state|estimateNanoUsd', state O open, E expired, S settled, R released), a deadline zset
-- and a purge zset. The month of a tenant reservation is the one in its id ('{u:<user>}:<yyyy-MM>:...').
local function id_month(id)
  local close = string.find(id, '}:', 1, true)
  return string.sub(id, close + 2, close + 8)
end

-- Tenant-side lazy expiry: frees the estimate of open tenant reservations past their deadline (an edge that died
-- between the tenant's and the user's script, or a settle that never came) and purges closed records.
local function tenant_expire(spend_key, res_key, dl_key, gc_key, now, retention, limit)
  local ids = redis.call('ZRANGEBYSCORE', dl_key, '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do
    redis.call('ZREM', dl_key, id)
    local rec = redis.call('HGET', res_key, id)
    if rec and string.sub(rec, 1, 1) == 'O' then
      local est = string.sub(rec, 3)
      key_spend(spend_key, id_month(id), -tonumber(est))
      redis.call('HSET', res_key, id, 'E|' .. est)
      redis.call('ZADD', gc_key, now + retention, id)
    end
  end
  purge_closed(res_key, gc_key, now, limit)
  return #ids
end
