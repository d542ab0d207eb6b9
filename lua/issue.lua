-- issue.lua - the one atomic first-come-first-served decision.
--
-- KEYS[1] coupon:{ID}:meta     hash total (-1 = unlimited), start_ms, end_ms
-- KEYS[2] coupon:{ID}:users    hash userId -> "<sequence>:<issuedAtMs>"   (no TTL, ever)
-- KEYS[3] coupon:{ID}:seq      highest sequence handed out so far
-- KEYS[4] coupon:{ID}:free     zset of sequences released by rollback, reused first
-- KEYS[5] coupon:{ID}:pending  hash userId -> "<eventId>:<sequence>:<issuedAtMs>"
-- ARGV[1] userId (decimal text; used as a hash field, never as a Lua number)
-- ARGV[2] eventId of the coupon.issue event the caller will produce
-- ARGV[3] outbox bound: the most pending records this coupon may hold
--
-- Reply {code, a, b}:
--   1 issued {1, sequence, issuedAtMs}
--   0 meta missing (caller loads it from MariaDB and retries)
--  -2 duplicate {-2, sequence, issuedAtMs of the existing issuance}
--  -3 sold out     {-3, 0, ms until endAt}   (how long "sold out" stays the answer)
--  -4 not started  {-4, 0, ms until startAt} (how long "not started" stays the answer)
--  -5 ended | -6 too many pending records (Kafka behind): refuse, nothing recorded
-- Order: window, then duplicate, then the outbox bound, then stock - a holder always
-- learns their sequence (409), never "sold out".
-- An accepted claim is recorded as pending in the same step: until Kafka acknowledged
-- the event and the record is removed, the consumer's reconciler can re-produce the
-- event, so a worker that dies (or loses this reply) between the decision and the
-- acknowledgement cannot leave a reservation without its event.
-- Common path cost: HMGET, TIME, HGET, HLEN x2, INCR (ZCARD only when a rollback left
-- free sequences), HSET x2 - every call O(1).
-- All keys share the {ID} hash tag, so the script runs unchanged on Redis Cluster.
-- The clock is Redis' own (TIME), never a cached snapshot of the caller's.
local meta = redis.call('HMGET', KEYS[1], 'total', 'start_ms', 'end_ms')
if not meta[1] then
  return {0, 0, 0}
end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local start_ms = tonumber(meta[2])
if now < start_ms then
  return {-4, 0, start_ms - now}
end
local end_ms = tonumber(meta[3])
if now >= end_ms then
  return {-5, 0, 0}
end
local prior = redis.call('HGET', KEYS[2], ARGV[1])
if prior then
  local sep = string.find(prior, ':', 1, true)
  return {-2, tonumber(string.sub(prior, 1, sep - 1)), tonumber(string.sub(prior, sep + 1))}
end
if redis.call('HLEN', KEYS[5]) >= tonumber(ARGV[3]) then
  return {-6, 0, 0}
end
local total = tonumber(meta[1])
if total >= 0 and redis.call('HLEN', KEYS[2]) >= total then
  return {-3, 0, end_ms - now}
end
local seq
if redis.call('EXISTS', KEYS[4]) == 1 then
  seq = tonumber(redis.call('ZPOPMIN', KEYS[4])[1])
else
  seq = redis.call('INCR', KEYS[3])
end
local issued = seq .. ':' .. now
redis.call('HSET', KEYS[2], ARGV[1], issued)
redis.call('HSET', KEYS[5], ARGV[1], ARGV[2] .. ':' .. issued)
return {1, seq, now}
