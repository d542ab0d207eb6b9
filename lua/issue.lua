-- issue.lua - the one atomic first-come-first-served decision.
--
-- KEYS[1] coupon:{ID}:meta     hash total (-1 = unlimited), start_ms, end_ms
-- KEYS[2] coupon:{ID}:users    hash userId -> "<sequence>:<issuedAtMs>"   (no TTL, ever)
-- KEYS[3] coupon:{ID}:seq      highest sequence handed out so far
-- KEYS[4] coupon:{ID}:free     zset of sequences released by rollback, reused first
-- KEYS[5] coupon:{ID}:pending  hash userId -> "<eventId>:<sequence>:<issuedAtMs>"
-- ARGV[1] userId (decimal text; used as a hash field, never as a Lua number)
-- ARGV[2] eventId of the coupon.issue event the caller will produce
--
-- Reply {code, sequence, issuedAtMs}:
--   1 issued | 0 meta missing (caller loads it from MariaDB and retries)
--  -2 duplicate (sequence/issuedAt of the existing issuance) | -3 sold out
--  -4 not started | -5 ended
-- An accepted claim is recorded as pending in the same step: until the caller has
-- Kafka's acknowledgement and removes the entry, the consumer's reconciler can
-- re-produce the event, so a worker that dies (or loses this reply) between the
-- decision and the acknowledgement cannot leave a reservation without its event.
-- All keys share the {ID} hash tag, so the script runs unchanged on Redis Cluster.
-- The clock is Redis' own (TIME), never a cached snapshot of the caller's.
local meta = redis.call('HMGET', KEYS[1], 'total', 'start_ms', 'end_ms')
if not meta[1] then
  return {0, 0, 0}
end
local total = tonumber(meta[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now < tonumber(meta[2]) then
  return {-4, 0, 0}
end
if now >= tonumber(meta[3]) then
  return {-5, 0, 0}
end
local prior = redis.call('HGET', KEYS[2], ARGV[1])
if prior then
  local sep = string.find(prior, ':', 1, true)
  return {-2, tonumber(string.sub(prior, 1, sep - 1)), tonumber(string.sub(prior, sep + 1))}
end
if total >= 0 and redis.call('HLEN', KEYS[2]) >= total then
  return {-3, 0, 0}
end
local seq
local freed = redis.call('ZPOPMIN', KEYS[4])
if #freed > 0 then
  seq = tonumber(freed[1])
else
  seq = redis.call('INCR', KEYS[3])
end
redis.call('HSET', KEYS[2], ARGV[1], string.format('%.0f:%.0f', seq, now))
redis.call('HSET', KEYS[5], ARGV[1], string.format('%s:%.0f:%.0f', ARGV[2], seq, now))
return {1, seq, now}
