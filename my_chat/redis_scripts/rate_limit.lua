-- One token bucket shared by every process: take a token for one key, or only look.
-- Redis's clock, not the callers': the processes of several hosts agree on it.
-- KEYS[1]: the bucket, a hash: tokens (may be fractional), at (ms of the last update)
-- ARGV[1]: burst, the tokens a full bucket holds
-- ARGV[2]: rate, the tokens that come back per second
-- ARGV[3]: 1 to take a token, 0 to only look
-- Returns the milliseconds until a token is free: 0 if one is (with ARGV[3] = 1, it is taken).
-- A bucket that has refilled is the same as none, so it expires then: no key lives longer.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local burst = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2]) / 1000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil or at == nil then
    tokens, at = burst, now
end
tokens = math.min(burst, tokens + math.max(0, now - at) * per_ms)
local wait = 0
if tokens < 1 then
    wait = math.ceil((1 - tokens) / per_ms)
elseif ARGV[3] == '1' then
    tokens = tokens - 1
end
if ARGV[3] == '1' then
    redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
    redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / per_ms) + 1000)
end
return wait
