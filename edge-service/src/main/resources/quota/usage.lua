-- usage: frees stale reservations, then reads the month's counters (real-time view).
-- KEYS: 1 res hash, 2 deadline zset, 3 gc zset, 4 reserved, 5 settled (month), 6 personal (month), 7 key-budget hash
-- ARGV: 1 nowMs, 2 retentionMs, 3 sweepLimit
-- Returns {'REBUILD'} or {'OK', settled, reserved, personal, expiredNow}
if redis.call('EXISTS', KEYS[5]) == 0 or redis.call('EXISTS', KEYS[4]) == 0 then return { 'REBUILD' } end
local n = expire_stale(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[7], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
return { 'OK', tonumber(redis.call('GET', KEYS[5])), tonumber(redis.call('GET', KEYS[4])),
         tonumber(redis.call('GET', KEYS[6]) or '0'), n }
