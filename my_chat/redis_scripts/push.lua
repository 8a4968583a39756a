-- Put a pushed or broadcast frame on the events stream, and count the connections it is
-- for on all live processes ("queued", see my_chat/redis_broker.py). Runs after common.lua.
-- KEYS[1]: the sorted set of processes (process id -> deadline, ms)
-- KEYS[2]: the events stream
-- KEYS[3]: this request's token (a second run with it returns the first run's answer)
-- ARGV[1]: the prefix of each process's hash (user -> connections)
-- ARGV[2]: the events stream's approximate maximum length
-- ARGV[3]: how long the token is kept, in seconds
-- ARGV[4]: the kind, 'push' or 'broadcast'
-- ARGV[5]: the frame
-- ARGV[6]: the users, as a JSON list (empty for a broadcast)
-- Returns "queued".
local processes, events, token = KEYS[1], KEYS[2], KEYS[3]
local prefix, maxlen, token_ttl, kind, frame = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local done = redis.call('GET', token)
if done then return tonumber(done) end
local queued = 0
local users = cjson.decode(ARGV[6])
local unique, seen = {}, {}
for _, user in ipairs(users) do
    if not seen[user] then
        seen[user] = true
        unique[#unique + 1] = user
    end
end
for _, process in ipairs(live_processes(processes, now_ms())) do
    local key = prefix .. process
    if kind == 'broadcast' then
        for _, count in ipairs(redis.call('HVALS', key)) do queued = queued + tonumber(count) end
    else
        for _, user in ipairs(unique) do
            local count = redis.call('HGET', key, user)
            if count then queued = queued + tonumber(count) end
        end
    end
end
redis.call('XADD', events, 'MAXLEN', '~', maxlen, '*', 'kind', kind, 'frame', frame,
    'users', ARGV[6])
redis.call('SET', token, queued, 'EX', token_ttl)
return queued
