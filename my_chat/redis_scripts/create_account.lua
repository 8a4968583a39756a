-- Create an account only if neither its lowercased name nor its look-alike skeleton is
-- taken, all in one step: two processes signing up "alice" and "aIice" at the same moment
-- cannot both succeed. Nothing is written until every check has passed.
-- KEYS[1]: the accounts hash (lowercased name -> JSON record)
-- KEYS[2]: the skeletons hash (skeleton -> lowercased name)
-- ARGV[1]: the lowercased name
-- ARGV[2]: its skeleton
-- ARGV[3]: the JSON record
-- Returns 1 if the account was created, 0 if the name is taken.
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 0 end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[3]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
return 1
