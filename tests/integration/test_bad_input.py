"""Bad input over every endpoint (issue #8), through nginx and through lighttpd: each case
gets its exact 4xx with `application/problem+json` and a stable `code`, never a 5xx and
never a crash, and the whole suite leaves Redis and MariaDB exactly as it found them.

Cases rejected by the web server itself (oversized headers, a request line it cannot
parse) are answered by the deploy configs' own problem documents; for those the suite
checks the status class and that nothing reached the program's state."""

import hashlib
import socket
import unittest

import harness

BIG = 2 ** 63
JSON = {"Content-Type": "application/json"}


def raw_request(server, data, timeout=10):
    """Send raw bytes; returns (status, headers, body) of the answer, or (None, ...) when
    the server closed the connection without answering."""
    host, _, port = harness.env["HTTP_NGINX" if server == "nginx" else "HTTP_LIGHTTPD"] \
        .rpartition(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(data)
        buf = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            buf += chunk
            head, sep, body = buf.partition(b"\r\n\r\n")
            if sep:
                hdrs = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    k, _, v = line.partition(":")
                    hdrs[k.strip().lower()] = v.strip()
                if len(body) >= int(hdrs.get("content-length", "0")):
                    break
    if not buf:
        return None, {}, b""
    status = int(buf.split(b" ", 2)[1])
    return status, hdrs, buf.partition(b"\r\n\r\n")[2]


def build_cases(cid):
    """(name, method, path, body, headers, status, code). code None = any problem code."""
    issue = "/api/coupons/%d/issue" % cid
    ref = "/api/coupons/issue"
    cases = []

    def add(name, method, path, body=None, headers=None, status=400, code="INVALID_REQUEST"):
        cases.append((name, method, path, body, JSON if headers is None else headers, status,
                      code))

    # --- wrong methods: 405 + Allow, on every endpoint
    for path, methods in ((issue, ("GET", "PUT", "DELETE", "PATCH")),
                          (ref, ("GET", "PUT", "DELETE")),
                          ("/api/coupons/%d" % cid, ("POST", "PUT", "DELETE")),
                          ("/api/coupons", ("GET", "PUT", "DELETE", "PATCH")),
                          ("/api/coupons/%d/issues/5" % cid, ("POST", "DELETE")),
                          ("/api/users/5/coupons", ("POST", "PUT")),
                          ("/api/admin/coupons/%d/stats" % cid, ("POST", "DELETE")),
                          ("/api/health", ("POST", "DELETE")),
                          ("/metrics", ("POST",))):
        for m in methods:
            add("%s %s" % (m, path), m, path, b"{}" if m in ("POST", "PUT", "PATCH") else None,
                status=405, code="METHOD_NOT_ALLOWED")

    # --- unknown paths
    for path in ("/api", "/api/", "/api/coupon", "/api/coupons/%d/issue/extra" % cid,
                 "/api/coupons/%d/issues" % cid, "/api/users/5", "/api/users/5/coupons/x",
                 "/api/admin/coupons/%d" % cid, "/api/coupons//issue", "/api/coupons/%d//issue"
                 % cid, "/API/coupons/%d" % cid, "/api/coupons/%d/" % cid, "/nothing",
                 "/api/health/x"):
        add("unknown path %s" % path, "GET", path, status=404, code="NOT_FOUND")

    # --- ids in paths
    for bad in ("0", "-1", "01", "1.5", "1e3", "abc", str(BIG), "99999999999999999999",
                "+1", " 1", "1%00", "0x10", "%EF%BC%91"):
        add("coupon id %r" % bad, "GET", "/api/coupons/" + bad.replace(" ", "%20"))
        add("issue path id %r" % bad, "POST", "/api/coupons/%s/issue" % bad.replace(" ", "%20"),
            b'{"userId":1}')
    for bad in ("0", "-5", "x", str(BIG)):
        add("status user id %r" % bad, "GET", "/api/coupons/%d/issues/%s" % (cid, bad))
        add("user coupons id %r" % bad, "GET", "/api/users/%s/coupons" % bad)

    # --- issue bodies (both paths)
    bodies = [
        ("empty body", b""),
        ("whitespace", b"   "),
        ("null", b"null"),
        ("array", b"[1]"),
        ("string", b'"x"'),
        ("number", b"1"),
        ("empty object", b"{}"),
        ("userId missing", b'{"couponId":1}'),
        ("userId zero", b'{"userId":0}'),
        ("userId negative", b'{"userId":-7}'),
        ("userId float", b'{"userId":1.0}'),
        ("userId exponent", b'{"userId":1e3}'),
        ("userId string", b'{"userId":"7"}'),
        ("userId bool", b'{"userId":true}'),
        ("userId null", b'{"userId":null}'),
        ("userId object", b'{"userId":{"id":7}}'),
        ("userId array", b'{"userId":[7]}'),
        ("userId 2^63", b'{"userId":9223372036854775808}'),
        ("userId huge", b'{"userId":123456789012345678901234567890}'),
        ("userId -2^63", b'{"userId":-9223372036854775808}'),
        ("userId leading zero", b'{"userId":07}'),
        ("userId hex", b'{"userId":0x7}'),
        ("userId NaN", b'{"userId":NaN}'),
        ("userId Infinity", b'{"userId":Infinity}'),
        ("extra member", b'{"userId":7,"admin":true}'),
        ("duplicate key", b'{"userId":7,"userId":8}'),
        ("trailing garbage", b'{"userId":7}x'),
        ("trailing object", b'{"userId":7}{}'),
        ("truncated", b'{"userId":7'),
        ("single quotes", b"{'userId':7}"),
        ("unquoted key", b"{userId:7}"),
        ("comment", b'{"userId":7 /* hi */}'),
        ("trailing comma", b'{"userId":7,}'),
        ("NUL in body", b'{"userId":7}\x00'),
        ("NUL in key", b'{"user\x00Id":7}'),
        ("invalid UTF-8", b'{"userId":7,"\xff\xfe":1}'),
        ("overlong UTF-8", b'{"\xc0\xafuserId":7}'),
        ("deep nesting", b'{"userId":' + b"[" * 100 + b"]" * 100 + b"}"),
        ("deeper nesting", b'{"a":' + b'{"a":' * 500 + b"1" + b"}" * 501),
        ("BOM", b'\xef\xbb\xbf{"userId":7}'),
    ]
    for name, body in bodies:
        add("issue: " + name, "POST", issue, body)
    for name, body in (("couponId missing", b'{"userId":7}'),
                       ("couponId zero", b'{"couponId":0,"userId":7}'),
                       ("couponId string", b'{"couponId":"%d","userId":7}' % cid),
                       ("couponId float", b'{"couponId":%d.0,"userId":7}' % cid),
                       ("couponId 2^63", b'{"couponId":9223372036854775808,"userId":7}'),
                       ("couponId null", b'{"couponId":null,"userId":7}'),
                       ("both ids wrong type", b'{"couponId":[],"userId":{}}'),
                       ("duplicate couponId", b'{"couponId":%d,"couponId":%d,"userId":7}'
                        % (cid, cid)),
                       ("reference: extra member", b'{"couponId":%d,"userId":7,"x":1}' % cid),
                       ("reference: empty", b""),
                       ("reference: garbage", b"couponId=1&userId=7")):
        add("reference: " + name, "POST", ref, body)

    # --- content types
    for ct in ("text/plain", "application/x-www-form-urlencoded", "application/xml",
               "multipart/form-data; boundary=x", "application/jsonx", "json", ""):
        add("issue content type %r" % ct, "POST", issue, b'{"userId":7}',
            {"Content-Type": ct} if ct else {}, status=415, code="UNSUPPORTED_MEDIA_TYPE")
    add("admin create content type", "POST", "/api/coupons", b"{}",
        dict(harness.admin_headers(), **{"Content-Type": "text/plain"}), status=415,
        code="UNSUPPORTED_MEDIA_TYPE")

    # --- sizes
    big_body = b'{"userId":7,"pad":"' + b"x" * 5000 + b'"}'
    add("issue body over the limit", "POST", issue, big_body, status=413, code=None)
    add("reference body over the limit", "POST", ref, big_body, status=413, code=None)
    add("admin body over the limit", "POST", "/api/coupons", b"{" + b" " * 8000 + b"}",
        dict(harness.admin_headers(), **JSON), status=413, code=None)

    # --- query strings on the list endpoint
    for q in ("limit=0", "limit=-1", "limit=101", "limit=1000000000000000000000", "limit=1.5",
              "limit=abc", "limit=", "after=0", "after=-1", "after=abc",
              "after=" + str(BIG), "limit=1&limit=1", "after=1&after=2"):
        add("user coupons ?%s" % q, "GET", "/api/users/5/coupons?" + q)

    # --- admin without and with a wrong token (must not change anything)
    for method, path, body in (("POST", "/api/coupons", b"{}"),
                               ("PATCH", "/api/coupons/%d" % cid, b'{"title":"x"}'),
                               ("GET", "/api/admin/coupons/%d/stats" % cid, None)):
        add("admin no token %s %s" % (method, path), method, path, body, JSON, 401,
            "UNAUTHORIZED")
        add("admin wrong token %s %s" % (method, path), method, path, body,
            dict(JSON, Authorization="Bearer not-the-token"), 403, "FORBIDDEN")
        # Servers strip the trailing space: "Bearer" alone carries no credentials.
        add("admin empty bearer %s %s" % (method, path), method, path, body,
            dict(JSON, Authorization="Bearer "), 401, "UNAUTHORIZED")

    # --- admin bodies that are not valid documents
    admin = dict(harness.admin_headers(), **JSON)
    for name, body in (("create empty", b""), ("create array", b"[]"),
                       ("create duplicate keys", b'{"title":"a","title":"b"}'),
                       ("create nested", b'{"title":{"a":{"b":{"c":{"d":1}}}}}'),
                       ("create NUL", b'{"title":"a\x00b"}'),
                       ("create invalid UTF-8", b'{"title":"\xff"}'),
                       ("create unknown only", b'{"x":1}')):
        add(name, "POST", "/api/coupons", body, admin)
    for name, body in (("patch empty object", b"{}"), ("patch array", b"[]"),
                       ("patch unknown", b'{"couponType":"GENERAL"}'),
                       ("patch null title", b'{"title":null}'),
                       ("patch quantity string", b'{"totalQuantity":"5"}'),
                       ("patch endAt number", b'{"endAt":5}'),
                       ("patch garbage", b"title=x")):
        add(name, "PATCH", "/api/coupons/%d" % cid, body, admin)
    return cases


def snapshot():
    """Digest of every issuance-relevant Redis key and of the MariaDB tables. Excluded:
    coupon:*:doc (the L2 read cache reads may fill), coupon:metrics:* (the consumer's
    heartbeat)."""
    h = hashlib.sha256()
    keys = sorted(k for k in harness.redis("KEYS", "coupon:*")
                  if not k.endswith(":doc") and not k.endswith(":lock")
                  and not k.startswith("coupon:metrics:"))
    for k in keys:
        t = harness.redis("TYPE", k)
        h.update(("%s %s\n" % (k, t)).encode())
        if t == "hash":
            h.update(repr(sorted(harness.redis("HGETALL", k))).encode())
        elif t == "string":
            h.update(repr(harness.redis("GET", k)).encode())
        elif t == "set":
            h.update(repr(sorted(harness.redis("SMEMBERS", k))).encode())
        elif t == "zset":
            h.update(repr(harness.redis("ZRANGE", k, "0", "-1", "WITHSCORES")).encode())
    db = harness.sql("SELECT (SELECT COUNT(*) FROM coupon), (SELECT COUNT(*) FROM coupon_issue); "
                     "CHECKSUM TABLE coupon, coupon_issue")
    return h.hexdigest(), db


class BadInput(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.coupon = harness.create_coupon(totalQuantity=5)
        # Let the consumer settle whatever other suites left, so the snapshot is stable.
        harness.wait_until(lambda: harness.sql(
            "SELECT COUNT(*) FROM coupon_issue")[0][0] == harness.sql(
            "SELECT COALESCE(SUM(issued_quantity), 0) FROM coupon")[0][0], timeout=60)

    def test_every_case_through_both_servers(self):
        cases = build_cases(self.coupon)
        self.assertGreaterEqual(len(cases), 150)
        before = snapshot()
        for server in ("nginx", "lighttpd"):
            for name, method, path, body, headers, status, code in cases:
                with self.subTest(server=server, case=name):
                    r = harness.http(method, path, body, headers, server=server)
                    self.assertLess(r.status, 500, r)
                    self.assertEqual(r.status, status, r)
                    ct = r.headers.get("content-type", "")
                    if method != "HEAD":
                        self.assertTrue(ct.startswith("application/problem+json"), (ct, r))
                        p = r.json()
                        self.assertEqual(p["status"], status)
                        if code is not None:
                            self.assertEqual(p["code"], code, r)
                    if status == 405:
                        self.assertTrue(r.headers.get("allow"), r.headers)
        after = snapshot()
        self.assertEqual(before, after, "bad input changed Redis or MariaDB")
        print("\n  %d cases x 2 servers" % len(cases))

    def test_oversized_headers_and_query_are_refused_by_both_servers(self):
        before = snapshot()
        for server in ("nginx", "lighttpd"):
            with self.subTest(server=server):
                huge = b"x" * 20000
                for req in (
                        b"GET /api/coupons/1 HTTP/1.1\r\nHost: t\r\nX-Big: " + huge + b"\r\n\r\n",
                        b"GET /api/users/5/coupons?limit=" + huge + b" HTTP/1.1\r\nHost: t\r\n\r\n",
                        b"GET /api/coupons/" + b"9" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n",
                        b"POST /api/coupons/1/issue HTTP/1.1\r\nHost: t\r\n"
                        b"Content-Type: application/json\r\nContent-Length: 999999999\r\n\r\n",
                        b"GET /api/coupons/1\x00 HTTP/1.1\r\nHost: t\r\n\r\n",
                        b"GARBAGE\r\n\r\n"):
                    status, _, _ = raw_request(server, req)
                    if status is not None:
                        self.assertGreaterEqual(status, 400, req[:60])
                        self.assertLess(status, 500, req[:60])
        self.assertEqual(before, snapshot())


if __name__ == "__main__":
    unittest.main()
