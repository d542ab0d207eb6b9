-- redeem.lua -- POST /api/coupons/{id}/issues/{userId}/redemption {"orderId": "..."}:
-- many users, each redeeming their own persisted issuance once.
--
-- Usage: wrk ... -s bench/redeem.lua URL -- COUPON_ID
-- User ids are tid * 10^9 + n (n = 1, 2, ... per wrk thread), the issuances scripts/bench
-- inserted for the scenario, so every answer is a first redemption (201): one conditional
-- UPDATE, one outbox INSERT and one commit in MariaDB. A thread that runs out of prepared
-- issuances gets 404s (counted apart in the report).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

local id
local headers = { ["Content-Type"] = "application/json" }
sent = 0

function init(args)
   id = assert(tonumber(args[1]), "usage: -- COUPON_ID")
end

function request()
   sent = sent + 1
   local user = (tid or 0) * 1000000000 + sent
   return wrk.format("POST", string.format("/api/coupons/%d/issues/%d/redemption", id, user),
                     headers, string.format('{"orderId":"bench-%d"}', user))
end
