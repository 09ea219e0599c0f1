-- The job history of one queue and kind (succeeded or failed): a stream,
-- kept within a count and a time bound, in one atomic call per batch.
--
-- KEYS[1]  <ns>:history:{<ns>:<queue>}:<kind>  stream; each entry: u = uuid, e = the rest of the
--          entry but its queue (HistoryEntry.to_row, serialized)
-- ARGV[1] keep_ms, ARGV[2] keep_max, then uuid and entry for each one.
--
-- Entry IDs are the server's clock, so the time bound is a trim by ID
-- (XTRIM MINID, Redis 6.2+); the count bound is an exact XTRIM MAXLEN once
-- per batch (cheaper than a MAXLEN on each XADD), inside this script, so no
-- reader ever sees more than keep_max entries. The key expires keep_ms after
-- the last write: a queue whose pools stopped loses its history on time too.

local stream = KEYS[1]
local keep_ms, keep_max = tonumber(ARGV[1]), ARGV[2]

for i = 3, #ARGV, 2 do
  redis.call('XADD', stream, '*', 'u', ARGV[i], 'e', ARGV[i + 1])
end
redis.call('XTRIM', stream, 'MAXLEN', keep_max)
local now = redis.call('TIME')
local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - keep_ms
redis.call('XTRIM', stream, 'MINID', oldest)
redis.call('PEXPIRE', stream, keep_ms)
return redis.call('XLEN', stream)
