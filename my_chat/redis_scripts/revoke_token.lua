-- Revoke one session token: kept in Redis for processes that start later, and announced on
-- the events stream so that every running process applies it (and closes its streams).
-- KEYS[1]: the sorted set of revoked tokens (token id -> expiry, ms)
-- KEYS[2]: the events stream
-- ARGV[1]: the token id
-- ARGV[2]: its expiry, ms
-- ARGV[3]: the user
-- ARGV[4]: the events stream's approximate maximum length
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'kind', 'revoke', 'user', ARGV[3],
    'token', ARGV[1], 'expires', ARGV[2])
return 1
