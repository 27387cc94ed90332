-- admit: charges `requests` and `tokens` to a caller's rate limits without a reservation, with the same
-- GCRA limits as reserve (lib.lua rate_limits): batch ingest (one request per event, the events' tokens)
-- and bad-input rejections (one request, no tokens) count against the limits a proxied call does, so a
-- flood of either is cut off like any other. All four limits allow it and all are charged, or nothing is.
-- KEYS: 1 user req TAT, 2 user token TAT, 3 key req TAT, 4 key token TAT
-- ARGV: 1 nowMs, 2 requests, 3 tokens, 4 user rpm, 5 user tpm, 6 key rpm, 7 key tpm
-- Returns {reason ('' = admitted), reqLimit, reqRemaining, reqResetMs, tokLimit, tokRemaining, tokResetMs, retryMs}
local now = tonumber(ARGV[1])
local requests, tokens = tonumber(ARGV[2]), tonumber(ARGV[3])
local tats = redis.call('MGET', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
local rl = rate_limits(tats, tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), requests, tokens, now)
if rl.reason == '' then
  if requests > 0 then
    set_tat(KEYS[1], rl.ur, now)
    set_tat(KEYS[3], rl.kr, now)
  end
  if tokens > 0 then
    set_tat(KEYS[2], rl.ut, now)
    set_tat(KEYS[4], rl.kt, now)
  end
end
return { rl.reason, rl.req[1], rl.req[2], rl.req[3], rl.tok[1], rl.tok[2], rl.tok[3], rl.retry }
