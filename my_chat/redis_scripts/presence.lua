-- --8<-- [start:presence-script]
-- Report how many streams users have on this process, and announce who came online or
-- went offline anywhere. Runs after common.lua.
-- KEYS[1]: the sorted set of processes (process id -> deadline, ms)
-- KEYS[2]: the events stream
-- ARGV[1]: the prefix of each process's hash (user -> connections)
-- ARGV[2]: this process's id
-- ARGV[3]: the ttl in ms (this process's new deadline is now + ttl)
-- ARGV[4]: the events stream's approximate maximum length
-- ARGV[5]: the mode: 'set' reports those users only, 'replace' reports every user of
--          this process, 'leave' removes the process
-- ARGV[6..]: user, connections, user, connections, ... Connections 'grace' lists a user
--          whose last stream here closed less than the grace period ago.
-- Returns how many changes it announced.
local processes, events = KEYS[1], KEYS[2]
local prefix, me, ttl, maxlen, mode = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local now = now_ms()
local mine = prefix .. me
local others = {}
for _, process in ipairs(live_processes(processes, now)) do
    if process ~= me then others[#others + 1] = prefix .. process end
end
local function elsewhere(user)
    for _, key in ipairs(others) do
        if redis.call('HEXISTS', key, user) == 1 then return true end
    end
    return false
end
-- Were this process's users counted as online until now? Not if its deadline had passed.
local deadline = redis.call('ZSCORE', processes, me)
local counted = deadline ~= false and tonumber(deadline) >= now
local wanted = {}
for i = 6, #ARGV, 2 do wanted[ARGV[i]] = ARGV[i + 1] end
local known = redis.call('HGETALL', mine)
for i = 1, #known, 2 do
    local user = known[i]
    if wanted[user] == nil then
        if mode ~= 'set' then
            wanted[user] = '0'
        elseif not counted then
            wanted[user] = known[i + 1]  -- coming back to life: all of them count again
        end
    end
end
local changes = {}
for user, count in pairs(wanted) do
    -- 'grace': no connection here, but still online until the grace period is over.
    local grace = count == 'grace'
    if grace then count = '0' end
    local online_now = mode ~= 'leave' and (grace or tonumber(count) > 0)
    if not elsewhere(user) then
        local online_before = counted and redis.call('HEXISTS', mine, user) == 1
        if online_before ~= online_now then changes[#changes + 1] = {user, online_now} end
    end
    if online_now then
        redis.call('HSET', mine, user, count)
    else
        redis.call('HDEL', mine, user)
    end
end
if mode == 'leave' then
    redis.call('DEL', mine)
    redis.call('ZREM', processes, me)
else
    redis.call('ZADD', processes, now + ttl, me)
    redis.call('PEXPIRE', mine, ttl * 10)
end
for _, change in ipairs(changes) do
    announce(events, maxlen, change[1], change[2] and '1' or '0')
end
return #changes
-- --8<-- [end:presence-script]
