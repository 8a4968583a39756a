-- Revoke every session of a user ("sign out everywhere"): their generation goes up, and
-- the events stream tells every running process.
-- KEYS[1]: the hash of generations (username -> generation)
-- KEYS[2]: the events stream
-- ARGV[1]: the user
-- ARGV[2]: the events stream's approximate maximum length
-- Returns the new generation.
local generation = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'kind', 'revoke_all',
    'user', ARGV[1], 'generation', generation)
return generation
