-- Retire the processes whose deadline has passed, and announce offline the users that
-- were online only there. Runs after common.lua.
-- KEYS[1]: the sorted set of processes (process id -> deadline, ms)
-- KEYS[2]: the events stream
-- ARGV[1]: the prefix of each process's hash (user -> connections)
-- ARGV[2]: the events stream's approximate maximum length
-- Returns how many processes it removed.
local processes, events, prefix, maxlen = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local now = now_ms()
local dead = redis.call('ZRANGEBYSCORE', processes, '-inf', '(' .. now)
if #dead == 0 then return 0 end
local gone = {}
for _, process in ipairs(dead) do
    for _, user in ipairs(redis.call('HKEYS', prefix .. process)) do gone[user] = true end
    redis.call('DEL', prefix .. process)
    redis.call('ZREM', processes, process)
end
local _, online = online_list(prefix, processes, now)
for user in pairs(gone) do
    if not online[user] then announce(events, maxlen, user, '0') end
end
return #dead
