-- reference.lua -- the reference project's k6 scenario, in wrk:
--   POST /api/coupons/issue {"userId": <random in [0, 1e6)>, "couponId": <id>}
-- Usage: wrk ... -s bench/reference.lua URL -- COUPON_ID
-- Random users collide (409 for the second claim of a user) and userId 0 is rejected
-- (400, about once per million requests), exactly as in the reference. Each thread
-- seeds its own generator, or every thread would replay the same users.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

local coupon
local headers = { ["Content-Type"] = "application/json" }
sent = 0

function init(args)
   coupon = assert(tonumber(args[1]), "usage: -- COUPON_ID")
   math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
end

function request()
   sent = sent + 1
   return wrk.format("POST", "/api/coupons/issue", headers,
                     string.format('{"userId":%d,"couponId":%d}', math.random(0, 999999), coupon))
end
