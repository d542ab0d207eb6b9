-- issue.lua -- POST /api/coupons/{id}/issue {"userId": N} with a new user per request.
--
-- Usage: wrk ... -s bench/issue.lua URL -- COUPON_ID [USER_BASE]
-- User ids are USER_BASE + tid * 10^9 + n (n = 1, 2, ... per wrk thread), so threads never
-- share a user and every answer is a fresh issuance (201), or 410 once a coupon with a
-- stock is sold out. `sent` counts the requests started (see report.lua).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

local path, base
local headers = { ["Content-Type"] = "application/json" }
sent = 0

function init(args)
   local id = assert(tonumber(args[1]), "usage: -- COUPON_ID [USER_BASE]")
   path = string.format("/api/coupons/%d/issue", id)
   base = (tonumber(args[2]) or 0) + (tid or 0) * 1000000000
end

function request()
   sent = sent + 1
   return wrk.format("POST", path, headers, string.format('{"userId":%d}', base + sent))
end
