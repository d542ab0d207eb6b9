-- meta_update.lua - changes a coupon's issuance parameters (admin PATCH) without
-- racing the issue script: the new total is refused when more users already hold
-- the coupon, checked and written in one atomic step.
--
-- KEYS[1] coupon:{ID}:meta   KEYS[2] coupon:{ID}:users
-- ARGV[1] total (-1 = unlimited)   ARGV[2] start_ms   ARGV[3] end_ms
--
-- Reply {1, issued} when written, {0, issued} when the total is below issued.
local issued = redis.call('HLEN', KEYS[2])
local total = tonumber(ARGV[1])
if total >= 0 and issued > total then
  return {0, issued}
end
redis.call('HSET', KEYS[1], 'total', ARGV[1], 'start_ms', ARGV[2], 'end_ms', ARGV[3])
return {1, issued}
