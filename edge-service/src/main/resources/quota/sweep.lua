-- sweep: the periodic sweeper's per-user step (the same lazy expiry reserve runs).
-- KEYS: 1 res hash, 2 deadline zset, 3 gc zset, 4 reserved, 5 key-budget hash
-- ARGV: 1 nowMs, 2 retentionMs, 3 limit
-- Returns number of reservations freed.
return expire_stale(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
