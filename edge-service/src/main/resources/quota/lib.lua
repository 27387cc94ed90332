-- Shared prelude, prepended to every quota script at load time (QuotaScripts). Redis 6.2 has no
-- FUNCTION LOAD, so the helpers travel with each script; the scripts stay generic (keys and
-- arguments only). Amounts are integer nano-USD below 2^53 (checked in Java), so Lua's doubles
-- hold them exactly; counters change with INCRBY/DECRBY, which Redis does in 64-bit integers.
-- Reservation record (one hash field per reservation id):
--   state|route|estimateNanoUsd|estimateTokens|actualNanoUsd|actualTokens
--   state: O open, S settled, R released, E expired (freed by expiry); route: S service credit, P personal key

local function fmt(n) return string.format('%.0f', n) end

local function decode(s)
  local t = {}
  for f in string.gmatch(s, '([^|]+)') do t[#t + 1] = f end
  return { state = t[1], route = t[2], est = tonumber(t[3]), est_tokens = tonumber(t[4]),
           actual = tonumber(t[5]), actual_tokens = tonumber(t[6]) }
end

local function encode(r)
  return r.state .. '|' .. r.route .. '|' .. fmt(r.est) .. '|' .. fmt(r.est_tokens) .. '|' ..
         fmt(r.actual) .. '|' .. fmt(r.actual_tokens)
end

-- Frees open reservations whose deadline has passed (at most `limit`) and purges closed records
-- whose retention has passed. Expired records stay as tombstones so a late settle still counts.
local function expire_stale(res_key, dl_key, gc_key, reserved_key, now, retention, limit)
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
        r.state = 'E'
        redis.call('HSET', res_key, id, encode(r))
        redis.call('ZADD', gc_key, now + retention, id)
      end
    end
  end
  local old = redis.call('ZRANGEBYSCORE', gc_key, '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(old) do
    redis.call('HDEL', res_key, id)
    redis.call('ZREM', gc_key, id)
  end
  return #ids
end

-- Thresholds (percent of credit) newly reached by `committed`; each one is reported once per
-- month because SADD answers 1 only the first time. `exhausted` forces 100 (a call was refused credit).
local function crossed(thr_key, committed, credit, exhausted, month_ttl_ms)
  local out = {}
  if credit <= 0 and not exhausted then return out end
  for _, p in ipairs({ 50, 80, 100 }) do
    if committed * 100 >= credit * p or (exhausted and p == 100) then
      if redis.call('SADD', thr_key, p) == 1 then
        out[#out + 1] = p
        redis.call('PEXPIRE', thr_key, month_ttl_ms)
      end
    end
  end
  return out
end
