-- --8<-- [start:append-script]
-- Append one message with the next id. One script, so that taking the next id and adding
-- the entry are one step: no other process can add id 8 while this one still holds id 7,
-- and the stream is always in id order. The request token makes the script safe to send
-- twice (redis-py retries a command when the connection breaks, even if Redis had already
-- run it): the second run returns the first id.
-- KEYS[1]: the message id counter
-- KEYS[2]: the messages stream
-- KEYS[3]: this request's token
-- ARGV[1]: the stream's approximate maximum length (0: no cap)
-- ARGV[2]: how long the token is kept, in seconds
-- ARGV[3]: the sender
-- ARGV[4]: the text
-- ARGV[5]: the timestamp, ms
-- ARGV[6]: the recipient ('' for the room)
-- Returns the message id.
local done = redis.call('GET', KEYS[3])
if done then return tonumber(done) end
local id = redis.call('INCR', KEYS[1])
local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)[1]
if top then
    local top_id = tonumber(string.match(top[1], '^(%d+)'))
    if top_id >= id then  -- the counter was lost but the stream was not: continue after it
        id = top_id + 1
        redis.call('SET', KEYS[1], id)
    end
end
local args = {KEYS[2]}
if tonumber(ARGV[1]) > 0 then
    for _, word in ipairs({'MAXLEN', '~', ARGV[1]}) do args[#args + 1] = word end
end
for _, word in ipairs({id .. '-0', 'from', ARGV[3], 'text', ARGV[4], 'ts', ARGV[5]}) do
    args[#args + 1] = word
end
if ARGV[6] ~= '' then
    args[#args + 1] = 'to'
    args[#args + 1] = ARGV[6]
end
redis.call('XADD', unpack(args))
redis.call('SET', KEYS[3], id, 'EX', ARGV[2])
return id
-- --8<-- [end:append-script]
