-- rollback.lua - undoes one reservation whose Kafka event was certainly not
-- persisted (librdkafka said NOT_PERSISTED), so the stock comes back.
--
-- KEYS[1] coupon:{ID}:users   KEYS[2] coupon:{ID}:free   KEYS[3] coupon:{ID}:pending
-- ARGV[1] userId   ARGV[2] the sequence that reservation received
--
-- Reply 1 if the reservation was removed, 0 if it was not there (already rolled
-- back, or the entry belongs to another reservation - never touch that one).
-- The sequence goes to the free set so the numbering stays within 1..total, and
-- the pending record written by issue.lua goes with the reservation.
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then
  return 0
end
local sep = string.find(v, ':', 1, true)
if string.sub(v, 1, sep - 1) ~= ARGV[2] then
  return 0
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[2])
return 1
