-- redeem.lua - the one atomic checkout decision of an issuance: redeem, hold,
-- release, cancel, and the lapse of holds nobody released (issue 26).
--
-- KEYS[1] coupon:{ID}:users    hash userId -> "<sequence>:<issuedAtMs>" (issue.lua's)
-- KEYS[2] coupon:{ID}:redeem   hash userId -> "<ver>:<S>:<atMs>:<untilMs>:<orderId>"
--                              S = R redeemed (at atMs by orderId), H held (by orderId
--                              until untilMs), F free again (cancelled or released);
--                              ver counts the issuance's checkout changes, 1, 2, ...
-- KEYS[3] coupon:{ID}:holds    zset userId by untilMs: the holds that can lapse
-- KEYS[4] coupon:{ID}:rpending hash "<userId>:<ver>" -> "<T>:<atMs>:<untilMs>:<orderId>"
--                              the change the consumer still owes MariaDB (its outbox):
--                              T = R redeemed, C cancelled, H held, X hold released,
--                              L hold lapsed
-- ARGV[1] operation: redeem | hold | release | cancel | sweep
-- redeem/hold/release/cancel:
--   ARGV[2] userId (decimal text, a hash field - never a Lua number)
--   ARGV[3] orderId (1..64 of [A-Za-z0-9._:-], checked by the caller)
--   ARGV[4] hold: ttl in ms (1..900000, checked by the caller); others: 0
--   ARGV[5] usable ms after issuedAt (-1 = no limit)
--   ARGV[6] usable until, ms since the epoch (-1 = no limit)
--   ARGV[7] outbox bound: the most records rpending may hold before new changes are
--           refused (the consumer is behind); lapses and the changes a request
--           undoes (release, cancel) are never refused
-- sweep: ARGV[2] the most lapsed holds to release in this call
--
-- Replies {code, a, b, sequence, issuedAtMs} (the last two: the issuance's, 0 for -1):
--    1 changed      redeem {1, redeemedAtMs, ver} · hold {1, holdUntilMs, ver}
--                   release/cancel {1, atMs, ver}
--    2 replay       redeem: this order redeemed it {2, redeemedAtMs, 0}
--                   hold: this order holds it {2, holdUntilMs, 0} (extends nothing)
--    0 nothing to do (release: not held; cancel: not redeemed) {0, 0, 0}
--   -1 not issued to this user
--   -6 too many pending records (the consumer is behind): nothing changed
--   -7 expired {-7, usableUntilMs, 0}
--   -8 redeemed by another order (hold: redeemed at all) {-8, redeemedAtMs, 0}
--   -9 held by another order {-9, holdUntilMs, 0}
--  -10 release/cancel by an order that does not hold / did not redeem it
--  sweep: {lapsed, records in rpending after it, 0}
-- A hold past its untilMs is lapsed whoever looks first: this script (any operation on
-- that user, or sweep) turns it into F and records the lapse (L) before anything else,
-- so the events of one issuance are always in ver order and every held has its end.
-- All keys share the {ID} hash tag (Redis Cluster). The clock is Redis' TIME.
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)

local function parse(rec)
  if not rec then
    return 0, 'F', 0, 0, ''
  end
  local a = string.find(rec, ':', 1, true)
  local b = string.find(rec, ':', a + 1, true)
  local c = string.find(rec, ':', b + 1, true)
  local d = string.find(rec, ':', c + 1, true)
  return tonumber(string.sub(rec, 1, a - 1)), string.sub(rec, a + 1, b - 1),
    tonumber(string.sub(rec, b + 1, c - 1)), tonumber(string.sub(rec, c + 1, d - 1)),
    string.sub(rec, d + 1)
end

-- Writes state S of version ver and its outbox record of type T.
local function put(user, ver, s, at, untl, order, typ)
  redis.call('HSET', KEYS[2], user, ver .. ':' .. s .. ':' .. at .. ':' .. untl .. ':' .. order)
  redis.call('HSET', KEYS[4], user .. ':' .. ver, typ .. ':' .. at .. ':' .. untl .. ':' .. order)
end

-- The user's state after any lapse: ver, S, atMs, untilMs, orderId.
local function current(user)
  local ver, s, at, untl, order = parse(redis.call('HGET', KEYS[2], user))
  if s == 'H' and untl <= now then
    ver = ver + 1
    put(user, ver, 'F', now, untl, order, 'L')
    redis.call('ZREM', KEYS[3], user)
    return ver, 'F', now, untl, order
  end
  return ver, s, at, untl, order
end

local op = ARGV[1]
if op ~= 'redeem' and op ~= 'hold' and op ~= 'release' and op ~= 'cancel' and op ~= 'sweep' then
  return redis.error_reply('redeem.lua: unknown operation')
end
if op == 'sweep' then
  local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
  local lapsed = 0
  for _, user in ipairs(due) do
    local ver, s = parse(redis.call('HGET', KEYS[2], user))
    current(user)
    if s == 'H' then
      lapsed = lapsed + 1
    end
    redis.call('ZREM', KEYS[3], user)
  end
  return {lapsed, redis.call('HLEN', KEYS[4]), 0}
end

local user, order = ARGV[2], ARGV[3]
local issued = redis.call('HGET', KEYS[1], user)
if not issued then
  return {-1, 0, 0, 0, 0}
end
local sep = string.find(issued, ':', 1, true)
local sequence = tonumber(string.sub(issued, 1, sep - 1))
local issued_at = tonumber(string.sub(issued, sep + 1))
local function reply(code, a, b)
  return {code, a, b, sequence, issued_at}
end
local ver, s, at, untl, holder = current(user)

if op == 'release' then
  if s ~= 'H' then
    return reply(0, 0, 0)
  end
  if holder ~= order then
    return reply(-10, 0, 0)
  end
  put(user, ver + 1, 'F', now, untl, order, 'X')
  redis.call('ZREM', KEYS[3], user)
  return reply(1, now, ver + 1)
end

if op == 'cancel' then
  if s ~= 'R' then
    return reply(0, 0, 0)
  end
  if holder ~= order then
    return reply(-10, 0, 0)
  end
  put(user, ver + 1, 'F', now, 0, order, 'C')
  return reply(1, now, ver + 1)
end

-- redeem or hold
if s == 'R' then
  if op == 'redeem' and holder == order then
    return reply(2, at, 0)
  end
  return reply(-8, at, 0)
end
if s == 'H' and holder ~= order then
  return reply(-9, untl, 0)
end
if s == 'H' and op == 'hold' then
  return reply(2, untl, 0)
end
local usable_ms, usable_until = tonumber(ARGV[5]), tonumber(ARGV[6])
local deadline = -1
if usable_ms >= 0 then
  deadline = issued_at + usable_ms
end
if usable_until >= 0 and (deadline < 0 or usable_until < deadline) then
  deadline = usable_until
end
if deadline >= 0 and now >= deadline then
  return reply(-7, deadline, 0)
end
if redis.call('HLEN', KEYS[4]) >= tonumber(ARGV[7]) then
  return reply(-6, 0, 0)
end
if op == 'hold' then
  local until_ms = now + tonumber(ARGV[4])
  put(user, ver + 1, 'H', now, until_ms, order, 'H')
  redis.call('ZADD', KEYS[3], until_ms, user)
  return reply(1, until_ms, ver + 1)
end
-- redeem: free, or held by this order (the hold is confirmed)
if s == 'H' then
  redis.call('ZREM', KEYS[3], user)
end
put(user, ver + 1, 'R', now, 0, order, 'R')
return reply(1, now, ver + 1)
