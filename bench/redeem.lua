-- redeem.lua -- the checkout of a flash sale: each new user claims the coupon, then
-- redeems it (or holds it, then confirms the hold by redeeming with the same order).
--
-- Usage: wrk ... -s bench/redeem.lua URL -- COUPON_ID STEPS LAG
--   STEPS 2: POST /api/coupons/{id}/issue {"userId": u}, then
--            POST /api/coupons/{id}/issues/u/redemption {"orderId": "bench-u"}
--   STEPS 3: claim, POST .../issues/u/hold {"orderId": "bench-u", "ttlSeconds": 900},
--            then the redemption with the holding order (confirms the hold)
-- The requests of one thread go round the steps: request k does step k mod STEPS for
-- user (k / STEPS) - step * LAG. wrk does not say which connection a request goes to, so
-- the user's next step follows LAG users behind the claim - about LAG * STEPS requests
-- of this thread later (LAG = 16 x the thread's connections: a second or two
-- at full speed, when the claim's 201 has long arrived). Steps for users below 1 (the
-- first LAG users of a thread) are claims of extra users instead. User ids are
-- tid * 10^9 + n, so threads never share a user; every answer is expected to be a 201.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

local id, steps, lag, base
local extra = 500000000 -- the extra claims' users: far from the main sequence
local headers = { ["Content-Type"] = "application/json" }
sent = 0

function init(args)
   id = assert(tonumber(args[1]), "usage: -- COUPON_ID STEPS LAG")
   steps = assert(tonumber(args[2]), "usage: -- COUPON_ID STEPS LAG")
   lag = assert(tonumber(args[3]), "usage: -- COUPON_ID STEPS LAG")
   base = (tid or 0) * 1000000000
end

local function claim(user)
   return wrk.format("POST", string.format("/api/coupons/%d/issue", id), headers,
                     string.format('{"userId":%d}', user))
end

function request()
   local k = sent
   sent = sent + 1
   local step = k % steps
   local n = math.floor(k / steps) + 1
   if step == 0 then
      return claim(base + n)
   end
   local user = n - step * lag
   if user < 1 then
      return claim(base + extra + k)
   end
   user = base + user
   local what = (steps == 3 and step == 1) and "hold" or "redemption"
   local body = what == "hold"
      and string.format('{"orderId":"bench-%d","ttlSeconds":900}', user)
      or string.format('{"orderId":"bench-%d"}', user)
   return wrk.format("POST", string.format("/api/coupons/%d/issues/%d/%s", id, user, what),
                     headers, body)
end
