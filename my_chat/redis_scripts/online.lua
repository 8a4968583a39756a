-- Everyone online on a live process. Runs after common.lua.
-- KEYS[1]: the sorted set of processes (process id -> deadline, ms)
-- ARGV[1]: the prefix of each process's hash (user -> connections)
-- Returns the sorted online list.
local names = online_list(ARGV[1], KEYS[1], now_ms())
return names
