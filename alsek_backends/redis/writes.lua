--[[
The plain writes of a settle batch (results, statuses and their
notifications, see settle.py) in one call, inside the batch's MULTI/EXEC on a
single Redis: one command and one reply for the batch instead of one per
write, which is most of a client's work in a batch of small outcomes.

    EVALSHA <sha> <n> <key 1> .. <key n> <op 1> <value 1> <px 1> .. <op n> <value n> <px n>

op is SET (overwrite), SETNX (SET ... NX: a result, written once) or PUBLISH
(value is the message, px unused); px is the expiry in ms, or '' for none.
Returns the number of writes made.
]]

local done = 0
for i = 1, #KEYS do
    local op, value, px = ARGV[3 * i - 2], ARGV[3 * i - 1], ARGV[3 * i]
    if op == 'PUBLISH' then
        redis.call('PUBLISH', KEYS[i], value)
    else
        local args = {KEYS[i], value}
        if px ~= '' then
            args[#args + 1] = 'PX'
            args[#args + 1] = px
        end
        if op == 'SETNX' then
            args[#args + 1] = 'NX'
        end
        redis.call('SET', unpack(args))
    end
    done = done + 1
end
return done
