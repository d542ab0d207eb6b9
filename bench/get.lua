-- get.lua -- a fixed GET (the URL given to wrk): the ceiling and the read path.
-- No request() function: wrk then builds the request once and reuses it, the cheapest
-- way to load a server.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")
