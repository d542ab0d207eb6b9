-- ratelimit.lua -- per-client token bucket for lighttpd's mod_magnet, the counterpart
-- of nginx's `limit_req zone=coupon_issue burst=20 nodelay` (rate 10r/s) on the issue
-- endpoints. coupon.conf runs it only for those URLs and only for clients that are not
-- exempt (loopback), so it does not test either itself.
--
-- Each client address owns a bucket of BURST tokens, refilled at RATE tokens per
-- second; a request takes one token or, when the bucket is empty, is answered 429
-- problem+json with Retry-After. lighttpd is one process with one event loop, so the
-- script never runs twice at once and the table needs no locking.
--
-- State: mod_magnet gives every run a fresh environment that reads through to the
-- script's global table; the buckets are stored in that global table (rawset), which
-- lives as long as the cached script: until lighttpd restarts or this file changes.
-- Time: lighty.c.time() has whole seconds only, so tokens come back once per second
-- (RATE at a time); over any few seconds the average rate is the configured one.
-- Memory: buckets that are full again are dropped every SWEEP_S seconds; if more than
-- MAX_CLIENTS addresses are tracked at once, new addresses pass unlimited until the
-- next sweep (fail open: the program behind enforces the real invariants).
--
-- Requires mod_magnet: Debian package lighttpd-modules-lua.

local RATE = 10 -- tokens per second (nginx: rate=10r/s)
local BURST = 20 -- bucket size (nginx: burst=20)
local MAX_CLIENTS = 100000
local SWEEP_S = 10

local st = coupon_ratelimit
if st == nil then
    st = { tokens = {}, last = {}, count = 0, swept = 0 }
    rawset(_G, "coupon_ratelimit", st)
end

local now = lighty.c.time()
local ip = lighty.r.req_attr["request.remote-addr"] or ""

if now - st.swept >= SWEEP_S then
    local full_after = math.ceil(BURST / RATE)
    for k, t in pairs(st.last) do
        if now - t >= full_after then
            st.last[k] = nil
            st.tokens[k] = nil
            st.count = st.count - 1
        end
    end
    st.swept = now
end

local tokens
local last = st.last[ip]
if last == nil then
    if st.count >= MAX_CLIENTS then
        return 0
    end
    st.count = st.count + 1
    tokens = BURST
else
    tokens = math.min(BURST, st.tokens[ip] + (now - last) * RATE)
end
st.last[ip] = now

if tokens >= 1 then
    st.tokens[ip] = tokens - 1
    return 0 -- go on: mod_fastcgi sends the request to coupon-fcgi
end
st.tokens[ip] = tokens

lighty.r.resp_header["Content-Type"] = "application/problem+json"
lighty.r.resp_header["Retry-After"] = "1"
lighty.r.resp_body.set({
    '{"type":"https://coupon.example/problems/TOO_MANY_REQUESTS",'
        .. '"title":"Too many requests","status":429,"code":"TOO_MANY_REQUESTS",'
        .. '"detail":"request rate limit exceeded for this client; retry later"}\n',
})
return 429
