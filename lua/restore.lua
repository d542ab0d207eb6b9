-- restore.lua - merges one chunk of issuances read back from MariaDB into a
-- coupon's Redis state (coupon-admin rebuild-redis). Existing entries win
-- (HSETNX), so a chunk replayed twice changes nothing.
--
-- KEYS[1] coupon:{ID}:users   KEYS[2] coupon:{ID}:seq
-- ARGV[1] highest sequence in the chunk
-- ARGV[2..] pairs: userId, "<sequence>:<issuedAtMs>"
-- Reply: number of entries added.
local added = 0
for i = 2, #ARGV, 2 do
  added = added + redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])
end
local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[1]) > cur then
  redis.call('SET', KEYS[2], ARGV[1])
end
return added
