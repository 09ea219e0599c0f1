-- Rate and concurrency limits (alsek_backends/redis/limits.py): one key per
-- call, hash-tagged, so a Redis Cluster can hold them.
--
--   {<namespace>:limit:<bucket>}:rate   string: the bucket's theoretical
--                                       arrival time (ms): when it would be
--                                       full again; expires then
--   {<namespace>:limit:<group>}:slots   sorted set: holder -> end of its
--                                       lease (ms); expires with the last one
--
-- Times are the server's clock (TIME), so hosts need not agree on theirs.
-- ARGV[1] is the command:
--   TAKE rate_per_s burst           -> ms until the reserved token is due (0: now)
--   ACQUIRE holder limit lease_ms   -> 1 if holder holds a slot now, else 0
--   RELEASE holder                  -> 1 if it held one, else 0

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local command = ARGV[1]

if command == 'TAKE' then
    local interval = 1000 / tonumber(ARGV[2])
    local burst = tonumber(ARGV[3])
    local tat = tonumber(redis.call('GET', KEYS[1]) or now)
    if tat < now then
        tat = now
    end
    tat = tat + interval
    redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.max(1, math.ceil(tat - now)))
    return math.max(0, math.ceil(tat - now - burst * interval))
end

if command == 'ACQUIRE' then
    local holder, limit, lease = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
    if not redis.call('ZSCORE', KEYS[1], holder) and redis.call('ZCARD', KEYS[1]) >= limit then
        return 0
    end
    redis.call('ZADD', KEYS[1], now + lease, holder)
    local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
    redis.call('PEXPIRE', KEYS[1], math.max(1, tonumber(last[2]) - now))
    return 1
end

if command == 'RELEASE' then
    return redis.call('ZREM', KEYS[1], ARGV[2])
end

return redis.error_reply('limits.lua: unknown command ' .. tostring(command))
