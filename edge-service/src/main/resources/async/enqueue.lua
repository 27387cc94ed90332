-- Queues one async job in one round trip (ADR 0090): the tenant's place, the job's hash, the stream entry.
-- KEYS[1] the tenant's counter of jobs queued or running, KEYS[2] the job's hash, KEYS[3] the stream
--   (all three share the stream's hash slot: JobStore names them so).
-- ARGV[1] ASYNC_MAX_QUEUED_PER_TENANT, ARGV[2] the hash's TTL in ms, ARGV[3] n = fields of the hash (pairs),
-- ARGV[4 .. 3+2n] the hash's field/value pairs, the rest the stream entry's field/value pairs.
-- Returns the entry id; 'full' when the tenant's queue is full (nothing written); 'duplicate' when the job's
-- hash exists already (the same job id queued twice: nothing written).
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 'duplicate'
end
local queued = tonumber(redis.call('GET', KEYS[1]) or '0')
if queued >= tonumber(ARGV[1]) then
  return 'full'
end
local n = tonumber(ARGV[3])
local hash = {}
for i = 4, 3 + 2 * n do
  hash[#hash + 1] = ARGV[i]
end
local entry = {}
for i = 4 + 2 * n, #ARGV do
  entry[#entry + 1] = ARGV[i]
end
redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[2], unpack(hash))
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return redis.call('XADD', KEYS[3], '*', unpack(entry))
