-- restore_checkout.lua - puts a chunk of issuances' checkout states read back from
-- MariaDB into a coupon's Redis state (coupon-admin rebuild-redis, after Redis lost
-- its data): a redeemed or held issuance must stay so, or it could be redeemed twice.
-- Existing entries win (HSETNX: Redis' own state is newer than MariaDB's), so a chunk
-- replayed twice changes nothing.
--
-- KEYS[1] coupon:{ID}:redeem   KEYS[2] coupon:{ID}:holds
-- ARGV pairs: userId, "<ver>:<S>:<atMs>:<untilMs>:<orderId>" (redeem.lua's format)
-- Reply: number of states added. A restored hold (S = H) goes back into holds with its
-- end, so it lapses as any other (its lapse is then recorded and applied).
local added = 0
for i = 1, #ARGV, 2 do
  local user, state = ARGV[i], ARGV[i + 1]
  if redis.call('HSETNX', KEYS[1], user, state) == 1 then
    added = added + 1
    local a = string.find(state, ':', 1, true)
    if string.sub(state, a + 1, a + 1) == 'H' then
      local b = string.find(state, ':', a + 1, true)
      local c = string.find(state, ':', b + 1, true)
      local d = string.find(state, ':', c + 1, true)
      redis.call('ZADD', KEYS[2], 'NX', tonumber(string.sub(state, c + 1, d - 1)), user)
    end
  end
end
return added
