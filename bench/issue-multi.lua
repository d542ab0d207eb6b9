-- issue-multi.lua -- POST /api/coupons/{id}/issue {"userId": N} over several hot coupons:
-- request k of a thread goes to coupon k mod #ids, always with a new user.
--
-- Usage: wrk ... -s bench/issue-multi.lua URL -- COUPON_ID[,COUPON_ID...] [USER_BASE]
-- User ids are USER_BASE + tid * 10^9 + k, so threads never share a user and every
-- answer is a fresh issuance (201) while stock lasts. The URL's path is not used.
-- `sent` counts the requests started (see report.lua).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

local paths = {}
local base
local headers = { ["Content-Type"] = "application/json" }
sent = 0

function init(args)
   for id in string.gmatch(args[1] or "", "[^,]+") do
      table.insert(paths, string.format("/api/coupons/%d/issue", assert(tonumber(id))))
   end
   assert(#paths > 0, "usage: -- COUPON_ID[,COUPON_ID...] [USER_BASE]")
   base = (tonumber(args[2]) or 0) + (tid or 0) * 1000000000
end

function request()
   sent = sent + 1
   return wrk.format("POST", paths[sent % #paths + 1], headers,
                     string.format('{"userId":%d}', base + sent))
end
