--[[
Every queue operation of the Redis adapter in one script, loaded once per
server (EVALSHA, re-loaded after NOSCRIPT):

    EVALSHA <sha> 1 <P> <command> <args...>

P = "{<namespace>:<queue>}" is the only key passed. It is its own hash tag,
and every key of the queue starts with it, so Redis Cluster routes the call
by P and each call stays in one slot. The keys, all named from P:

  P:ready     ZSET   claimable messages. score = priority, member =
                     <seq><uuid> where <seq> is the per-queue submission
                     counter as 16 hex digits. Redis orders equal scores by
                     member, so within a priority the zero-padded seq gives
                     FIFO; across priorities the score is exact for any
                     |priority| <= 2^53 (the client refuses larger ones).
  P:delayed   ZSET   messages waiting for their time. score = ready_at (ms
                     since the epoch), member = uuid.
  P:leased    ZSET   claimed messages. score = lease expiry (ms, server
                     clock), member = uuid.
  P:dead      ZSET   dead letters, ordered like ready: score = priority,
                     member = <seq at dead-lettering><uuid>.
  P:seq       STRING the submission counter (INCR); dropped once the queue
                     is entirely empty, so an unused queue leaves no key.
  P:m:<uuid>  HASH   a live message: p priority, s seq (16 hex digits),
                     r ready_at, d claims since the last reschedule, t lease
                     token (only while leased), b payload.
  P:x:<uuid>  HASH   a dead letter: k its member in P:dead, r ready_at,
                     b payload.
  P:unique    HASH   unique keys: field = key, value = "<expiry>:<uuid>" of
                     the message holding it (expiry in ms, server clock, 0
                     for none). A key whose window ended or whose holder is
                     no longer live is free, whatever the field says; purge
                     and an emptied queue drop the whole hash.
  P:j:<uuid>  HASH   the join of the chord whose callback is <uuid> (a
                     message of this queue): member index -> the member's
                     outcome. Dropped once the callback has settled.

A live message is in exactly one of ready, delayed and leased. Submitting and
rescheduling PUBLISH on the channel P:wake, so that blocked claimers look
again. Every clock reading is the server's (TIME), so leases and delays mean
the same to every host. A claim first moves expired leases and due delayed
messages back to ready, so nothing else has to sweep.
]]

local prefix, command = KEYS[1], ARGV[1]
local ready, delayed, leased = prefix .. ':ready', prefix .. ':delayed', prefix .. ':leased'
local dead, seq = prefix .. ':dead', prefix .. ':seq'
local unique = prefix .. ':unique'

local function clock()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function message_key(uuid)
    return prefix .. ':m:' .. uuid
end

local function hex(n)
    return string.format('%016x', n)
end

local function enqueue(uuid, priority, s, ready_at, now)
    if tonumber(ready_at) <= now then
        redis.call('ZADD', ready, priority, s .. uuid)
    else
        redis.call('ZADD', delayed, ready_at, uuid)
    end
end

local function wake()
    redis.call('PUBLISH', prefix .. ':wake', '')
end

-- back to ready, at the place its priority and seq give it
local function requeue(uuid)
    local f = redis.call('HMGET', message_key(uuid), 'p', 's')
    if f[1] then
        redis.call('ZADD', ready, f[1], f[2] .. uuid)
    end
end

-- whether `token` still holds a live lease on the message
local function holds(uuid, token, now)
    if redis.call('HGET', message_key(uuid), 't') ~= token then
        return false
    end
    local expiry = redis.call('ZSCORE', leased, uuid)
    return expiry and tonumber(expiry) > now
end

-- ms until the next delayed message is due or lease expires; -1 if none
local function wake_in(now)
    local soonest = -1
    for _, zset in ipairs({delayed, leased}) do
        local first = redis.call('ZRANGE', zset, 0, 0, 'WITHSCORES')
        if first[2] then
            local wait = tonumber(first[2]) - now
            if soonest < 0 or wait < soonest then
                soonest = wait
            end
        end
    end
    return soonest
end

-- an empty queue needs no counter: FIFO order only matters among messages
local function forget_if_empty()
    if redis.call('EXISTS', ready, delayed, leased, dead) == 0 then
        redis.call('DEL', seq, unique)
    end
end

local commands = {}

-- ARGV[2..]: uuid, priority, ready_at, payload for each message.
-- Returns how many were new: a uuid already live is skipped.
function commands.submit()
    local n = (#ARGV - 1) / 4
    local last = redis.call('INCRBY', seq, n)
    local now = clock()
    -- one ZADD per zset for the whole call: most of a submit's cost is calls
    local ready_pairs, delayed_pairs = {}, {}
    for i = 0, n - 1 do
        local at = 2 + i * 4
        local uuid, priority, ready_at = ARGV[at], ARGV[at + 1], ARGV[at + 2]
        local key = message_key(uuid)
        if redis.call('EXISTS', key) == 0 then
            local s = hex(last - n + i + 1)
            redis.call('HSET', key, 'p', priority, 's', s, 'r', ready_at, 'd', 0, 'b', ARGV[at + 3])
            if tonumber(ready_at) <= now then
                ready_pairs[#ready_pairs + 1] = priority
                ready_pairs[#ready_pairs + 1] = s .. uuid
            else
                delayed_pairs[#delayed_pairs + 1] = ready_at
                delayed_pairs[#delayed_pairs + 1] = uuid
            end
        end
    end
    if #ready_pairs > 0 then
        redis.call('ZADD', ready, unpack(ready_pairs))
    end
    if #delayed_pairs > 0 then
        redis.call('ZADD', delayed, unpack(delayed_pairs))
    end
    local added = (#ready_pairs + #delayed_pairs) / 2
    if added > 0 then
        wake()
    end
    return added
end

-- the uuid holding unique key `key` now, or nil
local function unique_holder(key, now)
    local held = redis.call('HGET', unique, key)
    if not held then
        return nil
    end
    local sep = string.find(held, ':', 1, true)
    local expiry, uuid = tonumber(string.sub(held, 1, sep - 1)), string.sub(held, sep + 1)
    if (expiry == 0 or expiry > now) and redis.call('EXISTS', message_key(uuid)) == 1 then
        return uuid
    end
    return nil
end

-- ARGV[2] key, ARGV[3] window ms (0: none), ARGV[4..7] uuid, priority,
-- ready_at, payload. Queues the message and makes it the key's holder,
-- unless a live message holds the key: returns that one's uuid, or the
-- message's own when its uuid is live already; false when queued.
function commands.submit_unique()
    local now = clock()
    local holder = unique_holder(ARGV[2], now)
    if holder then
        return holder
    end
    local uuid, priority, ready_at = ARGV[4], ARGV[5], ARGV[6]
    local key = message_key(uuid)
    if redis.call('EXISTS', key) == 1 then
        return uuid
    end
    local s = hex(redis.call('INCR', seq))
    redis.call('HSET', key, 'p', priority, 's', s, 'r', ready_at, 'd', 0, 'b', ARGV[7])
    enqueue(uuid, priority, s, ready_at, now)
    local window = tonumber(ARGV[3])
    local expiry = window > 0 and now + window or 0
    redis.call('HSET', unique, ARGV[2], string.format('%.0f', expiry) .. ':' .. uuid)
    wake()
    return false
end

-- ARGV[2] key, ARGV[3] uuid. Frees the key if that uuid holds it.
function commands.release_unique()
    local held = redis.call('HGET', unique, ARGV[2])
    if held and string.sub(held, string.find(held, ':', 1, true) + 1) == ARGV[3] then
        return redis.call('HDEL', unique, ARGV[2])
    end
    return 0
end

-- ARGV[2] limit, ARGV[3] lease_ms, ARGV[4] token prefix.
-- Returns {wake_in, uuid, payload, token, deliveries, ...}; wake_in is -1
-- when something was claimed (the caller has no need to wait).
function commands.claim()
    local limit, lease_ms, token = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
    local now = clock()
    for _, uuid in ipairs(redis.call('ZRANGEBYSCORE', leased, '-inf', now)) do
        redis.call('HDEL', message_key(uuid), 't')
        requeue(uuid)
    end
    redis.call('ZREMRANGEBYSCORE', leased, '-inf', now)
    for _, uuid in ipairs(redis.call('ZRANGEBYSCORE', delayed, '-inf', now)) do
        requeue(uuid)
    end
    redis.call('ZREMRANGEBYSCORE', delayed, '-inf', now)
    local out = {-1}
    local popped = redis.call('ZPOPMIN', ready, limit)
    for i = 1, #popped, 2 do
        local uuid = string.sub(popped[i], 17)
        local key = message_key(uuid)
        local payload = redis.call('HGET', key, 'b')
        if payload then
            local t = token .. ':' .. ((i + 1) / 2)
            local deliveries = redis.call('HINCRBY', key, 'd', 1)
            redis.call('HSET', key, 't', t)
            redis.call('ZADD', leased, now + lease_ms, uuid)
            table.insert(out, uuid)
            table.insert(out, payload)
            table.insert(out, t)
            table.insert(out, deliveries)
        end
    end
    if #out == 1 then
        out[1] = wake_in(now)
    end
    return out
end

-- drops a live message; whether there was one
local function remove(uuid)
    local key = message_key(uuid)
    local s = redis.call('HGET', key, 's')
    if not s then
        return false
    end
    redis.call('ZREM', ready, s .. uuid)
    redis.call('ZREM', delayed, uuid)
    redis.call('ZREM', leased, uuid)
    redis.call('DEL', key)
    return true
end

-- ARGV[2..] uuids. Idempotent; needs no lease. Returns how many were live.
function commands.ack()
    local removed = 0
    for i = 2, #ARGV do
        if remove(ARGV[i]) then
            removed = removed + 1
        end
    end
    if removed > 0 then
        forget_if_empty()
    end
    return removed
end

-- A chord member's share (ports.ChordJoin). ARGV[2] the callback's uuid,
-- ARGV[3] the member's index, ARGV[4] the chord's size, ARGV[5] the member's
-- outcome, ARGV[6] '1' to drop the callback (the member failed the chord),
-- ARGV[7] the ready_at of a parked message. An index already recorded
-- changes nothing (a rerun); the call that records the last one makes the
-- callback ready if it is still parked. Returns 1 if it released it.
function commands.join()
    local uuid, index, size, data = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
    if ARGV[6] == '1' then
        if remove(uuid) then
            forget_if_empty()  -- the dropped callback may have been its queue's last message
        end
    end
    local join = prefix .. ':j:' .. uuid
    if redis.call('HSETNX', join, index, data) == 0 or redis.call('HLEN', join) < size then
        return 0
    end
    local key = message_key(uuid)
    local f = redis.call('HMGET', key, 'p', 's', 'r')
    if f[3] ~= ARGV[7] then
        return 0
    end
    redis.call('ZREM', delayed, uuid)
    redis.call('HSET', key, 'r', clock())
    redis.call('ZADD', ready, f[1], f[2] .. uuid)
    wake()
    return 1
end

-- ARGV[2] a chord callback's uuid. Returns {index, outcome, ...}.
function commands.joined()
    return redis.call('HGETALL', prefix .. ':j:' .. ARGV[2])
end

-- ARGV[2] a chord callback's uuid.
function commands.forget_join()
    return redis.call('DEL', prefix .. ':j:' .. ARGV[2])
end

-- ARGV[2] uuid, ARGV[3] token, ARGV[4] lease_ms. 0 when the lease was lost.
function commands.extend()
    local uuid, token, lease_ms = ARGV[2], ARGV[3], tonumber(ARGV[4])
    local now = clock()
    if not holds(uuid, token, now) then
        return 0
    end
    redis.call('ZADD', leased, 'XX', now + lease_ms, uuid)
    return 1
end

-- ARGV[2] uuid, ARGV[3] token, ARGV[4] payload, ARGV[5] ready_at.
-- Releases the lease; the message goes behind its priority's current
-- messages (a new seq) and its delivery count starts again.
function commands.reschedule()
    local uuid, token, payload, ready_at = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
    local now = clock()
    if not holds(uuid, token, now) then
        return 0
    end
    local key = message_key(uuid)
    local s = hex(redis.call('INCR', seq))
    redis.call('ZREM', leased, uuid)
    redis.call('HDEL', key, 't')
    redis.call('HSET', key, 's', s, 'r', ready_at, 'd', 0, 'b', payload)
    enqueue(uuid, redis.call('HGET', key, 'p'), s, ready_at, now)
    wake()
    return 1
end

-- ARGV[2] uuid, ARGV[3] token, ARGV[4] payload. 0 when the lease was lost.
-- A later dead letter of the same uuid replaces the earlier one.
function commands.dead_letter()
    local uuid, token, payload = ARGV[2], ARGV[3], ARGV[4]
    if not holds(uuid, token, clock()) then
        return 0
    end
    local key = message_key(uuid)
    local f = redis.call('HMGET', key, 'p', 'r')
    local dead_key = prefix .. ':x:' .. uuid
    local previous = redis.call('HGET', dead_key, 'k')
    if previous then
        redis.call('ZREM', dead, previous)
    end
    local member = hex(redis.call('INCR', seq)) .. uuid
    redis.call('HSET', dead_key, 'k', member, 'r', f[2], 'b', payload)
    redis.call('ZADD', dead, f[1], member)
    redis.call('ZREM', leased, uuid)
    redis.call('DEL', key)
    return 1
end

-- ARGV[2] uuid. 1 if a dead letter was removed.
function commands.remove_dead()
    local dead_key = prefix .. ':x:' .. ARGV[2]
    local member = redis.call('HGET', dead_key, 'k')
    if not member then
        return 0
    end
    redis.call('ZREM', dead, member)
    redis.call('DEL', dead_key)
    forget_if_empty()
    return 1
end

-- Returns {ready, delayed, in_flight, dead}; a due delayed message counts as
-- ready and an expired lease as ready, as a claim would see them.
function commands.counts()
    local now = clock()
    local due = redis.call('ZCOUNT', delayed, '-inf', now)
    local expired = redis.call('ZCOUNT', leased, '-inf', now)
    return {
        redis.call('ZCARD', ready) + due + expired,
        redis.call('ZCARD', delayed) - due,
        redis.call('ZCARD', leased) - expired,
        redis.call('ZCARD', dead),
    }
end

-- Returns {uuid, priority, seq, ready_at, state, ...} for every live message,
-- unordered; payloads are fetched by the caller in pages.
function commands.listing()
    local now = clock()
    local out = {}
    local function add(uuid, state)
        local f = redis.call('HMGET', message_key(uuid), 'p', 's', 'r')
        if f[1] then
            if state == nil then
                state = tonumber(f[3]) > now and 'delayed' or 'ready'
            end
            for _, v in ipairs({uuid, f[1], f[2], f[3], state}) do
                table.insert(out, v)
            end
        end
    end
    for _, member in ipairs(redis.call('ZRANGE', ready, 0, -1)) do
        add(string.sub(member, 17), 'ready')
    end
    for _, uuid in ipairs(redis.call('ZRANGE', delayed, 0, -1)) do
        add(uuid, nil)
    end
    local held = redis.call('ZRANGE', leased, 0, -1, 'WITHSCORES')
    for i = 1, #held, 2 do
        add(held[i], tonumber(held[i + 1]) > now and 'in_flight' or nil)
    end
    return out
end

-- Drops every live message; returns how many.
function commands.purge()
    local n = 0
    for _, member in ipairs(redis.call('ZRANGE', ready, 0, -1)) do
        redis.call('DEL', message_key(string.sub(member, 17)))
        n = n + 1
    end
    for _, zset in ipairs({delayed, leased}) do
        for _, uuid in ipairs(redis.call('ZRANGE', zset, 0, -1)) do
            redis.call('DEL', message_key(uuid))
            n = n + 1
        end
    end
    redis.call('DEL', ready, delayed, leased, unique)
    forget_if_empty()
    return n
end

return commands[command]()
