-- Shared by the presence scripts (presence, reap, online, push): Redis's clock, the
-- processes whose deadline is ahead, and the online list they make up. The loader puts
-- this file in front of each of them; it has no KEYS or ARGV of its own.
local function now_ms()
    local clock = redis.call('TIME')
    return tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
end
local function live_processes(processes, now)
    return redis.call('ZRANGEBYSCORE', processes, now, '+inf')
end
local function online_list(prefix, processes, now)
    local seen, names = {}, {}
    for _, process in ipairs(live_processes(processes, now)) do
        for _, user in ipairs(redis.call('HKEYS', prefix .. process)) do
            if not seen[user] then
                seen[user] = true
                names[#names + 1] = user
            end
        end
    end
    table.sort(names)
    return names, seen
end
local function announce(events, maxlen, user, online)
    redis.call('XADD', events, 'MAXLEN', '~', maxlen, '*', 'kind', 'presence',
        'user', user, 'online', online)
end
