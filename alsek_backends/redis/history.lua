-- The job history of one queue and kind (succeeded or failed), kept within a
-- time and a count bound, in one atomic call.
--
-- KEYS[1]           <ns>:history:{<ns>:<queue>}:<kind>  zset: uuid -> finished_at (ms)
-- KEYS[1] .. ':e'                                       hash: uuid -> entry (serialized)
--   (the hash is named after the zset, so both share the queue's Cluster slot)
-- ARGV[1] now (ms), ARGV[2] keep_ms, ARGV[3] keep_max,
-- then per entry: uuid, finished_at, entry.
-- Both keys expire keep_ms after the last write, so a queue whose pools
-- stopped loses its history on time too.

local index = KEYS[1]
local entries = index .. ':e'
local now, keep_ms, keep_max = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])

for i = 4, #ARGV, 3 do
  redis.call('ZADD', index, ARGV[i + 1], ARGV[i])
  redis.call('HSET', entries, ARGV[i], ARGV[i + 2])
end

local function drop(uuids)
  for i = 1, #uuids, 1000 do
    local chunk = {unpack(uuids, i, math.min(i + 999, #uuids))}
    redis.call('HDEL', entries, unpack(chunk))
    redis.call('ZREM', index, unpack(chunk))
  end
end

drop(redis.call('ZRANGEBYSCORE', index, '-inf', '(' .. (now - keep_ms)))
local excess = redis.call('ZCARD', index) - keep_max
if excess > 0 then
  drop(redis.call('ZRANGE', index, 0, excess - 1))
end
redis.call('PEXPIRE', index, keep_ms)
redis.call('PEXPIRE', entries, keep_ms)
return redis.call('ZCARD', index)
