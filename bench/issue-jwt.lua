-- issue-jwt.lua -- POST /api/coupons/{id}/issue {} as the user of a bearer token (issue
-- 24): the tokens come from a file, one per line and one user each (scripts/bench makes
-- it with tools/coupon-token sign --count), and each is used USES times in a row (1: a
-- fresh token and a new user per request; 3: a user retrying, 201 then 409 twice).
--
-- Usage: wrk ... -s bench/issue-jwt.lua URL -- COUPON_ID TOKEN_FILE [USES] [THREADS]
-- Thread t of THREADS (wrk's -t, default 2) takes lines t, t+THREADS, ...: threads never
-- share a user. A thread that used up its tokens starts again from its first, which
-- shows as 409 answers (the report counts every answer other than 201).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

local path, tokens, uses, count
sent = 0

function init(args)
   local id = assert(tonumber(args[1]), "usage: -- COUPON_ID TOKEN_FILE [USES] [THREADS]")
   path = string.format("/api/coupons/%d/issue", id)
   uses = tonumber(args[3]) or 1
   local nthreads = tonumber(args[4]) or 2
   local me = tid or 0
   tokens = {}
   local i = 0
   local file = assert(args[2], "usage: -- COUPON_ID TOKEN_FILE [USES] [THREADS]")
   for line in io.lines(file) do
      if i % nthreads == me then
         tokens[#tokens + 1] = "Bearer " .. line
      end
      i = i + 1
   end
   count = #tokens
   assert(count > 0, "no tokens for thread " .. me)
end

function request()
   local k = math.floor(sent / uses) % count + 1
   sent = sent + 1
   return wrk.format("POST", path, { ["Content-Type"] = "application/json",
                                     ["Authorization"] = tokens[k] }, "{}")
end
