-- Compare-and-delete for a lock's release: KEYS[1] is deleted only while it
-- holds ARGV[1] (the encoded value). Returns 1 if it was deleted, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
