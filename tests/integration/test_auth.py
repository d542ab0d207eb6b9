"""Who is asking (issue 24), against the real servers: the stack's coupon-fcgi with
auth_mode = jwt (coupon-fcgi-auth) behind its own nginx and lighttpd, tokens signed by
tools/coupon-token with the keys the runner made (stack_up, scripts/lib/layout.sh, as for
scripts/up).

Every count is exact: each refused request is checked for 401/403/404 and for having
changed nothing (the coupon's stats and the user's issuance afterwards)."""

import base64
import http.client
import http.server
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import fcgi_client
import harness

SERVERS = ("auth-nginx", "auth-lighttpd")


def routes():
    """(method, path template, access) of every route, from coupon-fcgi --print-routes."""
    binary = os.path.join(harness.env["BUILD_DIR"], "fcgi-app", "coupon-fcgi")
    out = subprocess.run([binary, "--print-routes"], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    return [tuple(line.split()) for line in out.splitlines() if line.strip()]


def user_routes():
    return [r for r in routes() if r[2] in ("claim", "read", "redeem")]


def fill(path, coupon_id, user):
    return path.replace("{id}", str(coupon_id)).replace("{user}", str(user))


def stats(coupon_id):
    r = harness.http("GET", "/api/admin/coupons/%d/stats" % coupon_id,
                     headers=harness.admin_headers())
    assert r.status == 200, r
    return r.json()


def claim(server, coupon_id, tok, body=None):
    return harness.http("POST", "/api/coupons/%d/issue" % coupon_id,
                        body={} if body is None else body, headers=harness.bearer(tok),
                        server=server)


def wait_persisted(coupon_id, user, timeout=30):
    harness.wait_until(lambda: harness.sql(
        "SELECT COUNT(*) FROM coupon_issue WHERE coupon_id=%d AND user_id=%d"
        % (coupon_id, user)) == [("1",)], timeout=timeout,
        message="issuance of user %d persisted" % user)


def public_pem():
    """The RSA development key's public half as PEM (the algorithm-confusion secret)."""
    path = os.path.join(harness.env["STATE_DIR"], "rs256.pub.pem")
    if not os.path.exists(path):
        subprocess.run(["openssl", "pkey", "-in",
                        os.path.join(harness.env["JWT_KEY_DIR"], "rs256.pem"),
                        "-pubout", "-out", path], check=True, capture_output=True)
    return path


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class NoToken(unittest.TestCase):
    """No credentials: 401 on every user route and method the router has."""

    def test_every_user_route_answers_401_without_a_token(self):
        table = user_routes()
        # The router's routes, not a list kept here: claims, reads, redemptions.
        self.assertGreaterEqual(len(table), 7, table)
        cid = harness.create_coupon(totalQuantity=10)
        seen = 0
        for server in SERVERS:
            for method, path, _access in table:
                for user in ("me", harness.new_user()):
                    body = {"orderId": "o-1"} if "redemption" in path else {}
                    if path == "/api/redemptions":
                        body = {"code": "W185-1Y4X-DJQW", "orderId": "o-1"}
                    if path == "/api/coupons/issue":
                        body = {"couponId": cid, "userId": 5}
                    r = harness.http(method, fill(path, cid, user),
                                     body=None if method in ("GET", "HEAD") else body,
                                     server=server)
                    self.assertEqual(r.status, 401, (server, method, path, r))
                    self.assertIn("Bearer", r.headers.get("www-authenticate", ""))
                    if method != "HEAD":
                        self.assertEqual(r.json()["code"], "UNAUTHORIZED")
                    seen += 1
        self.assertEqual(seen, len(SERVERS) * len(table) * 2)
        self.assertEqual(stats(cid)["issued"], 0)

    def test_public_routes_need_no_token(self):
        cid = harness.create_coupon(totalQuantity=3)
        for server in SERVERS:
            self.assertEqual(harness.http("GET", "/api/coupons/%d" % cid, server=server).status,
                             200)
            r = harness.http("GET", "/api/health", server=server)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["auth"], {"mode": "jwt"})


class Attacks(unittest.TestCase):
    """The JWT attack corpus: each token refused with 401 invalid_token, nothing claimed."""

    def corpus(self, user):
        keys = harness.env["JWT_KEY_DIR"]
        es_kid = harness.token_tool("jwks", os.path.join(keys, "es256.pem"))
        es_kid = json.loads("".join(es_kid))["keys"][0]["kid"]
        good = harness.token(user)
        h, p, s = good.split(".")
        now = int(time.time())
        payload = {"sub": str(user), "iss": "coupon-dev", "aud": "coupon-api",
                   "iat": now, "exp": now + 600}
        rs_kid = json.loads(b64url_decode(h))["kid"]
        tampered = json.loads(b64url_decode(p))
        tampered["sub"] = str(user + 1)
        dup_payload = ('{"sub":"%d","iss":"coupon-dev","aud":"coupon-api","exp":%d,'
                       '"sub":"%d"}' % (user, now + 600, user + 1))
        return {
            "alg none": harness.token(user, alg="none"),
            "alg none with a signature": harness.token(user, alg="none") + s,
            "HS256 keyed with the RSA public key": harness.token(
                user, alg="HS256", hmac_key_file=public_pem()),
            "expired": harness.token(user, ttl=-120),
            "nbf in the future": harness.token(user, nbf_in=3600),
            "wrong iss": harness.token(user, iss="someone-else"),
            "wrong aud": harness.token(user, aud="another-api"),
            "unknown kid": harness.token(user, kid="no-such-key"),
            "kid of another key type": harness.token(user, kid=es_kid),
            "tampered payload": h + "." + b64url(json.dumps(tampered).encode()) + "." + s,
            "stripped signature": h + "." + p + ".",
            "bad base64url": h + "." + p + "." + s[:-2] + "*!",
            "duplicate key in payload": harness.token(user, payload_json=dup_payload),
            "duplicate key in header": harness.token(
                user, header_json='{"alg":"RS256","alg":"RS256","kid":"%s","typ":"JWT"}'
                % rs_kid),
            "crit header": harness.token(
                user, header_json='{"alg":"RS256","kid":"%s","crit":["exp"]}' % rs_kid),
            "over the size limit": harness.token(
                user, payload_json=json.dumps(dict(payload, pad="x" * 2400))),
            "no exp": harness.token(user, payload_json=json.dumps(
                {k: v for k, v in payload.items() if k != "exp"})),
            "non-numeric user": harness.token(user, payload_json=json.dumps(
                dict(payload, sub="alice"))),
        }

    def test_every_attack_token_is_refused_and_changes_nothing(self):
        cid = harness.create_coupon(totalQuantity=100)
        user = harness.new_user()
        corpus = self.corpus(user)
        self.assertEqual(len(corpus), 18)
        refused = 0
        for server in SERVERS:
            for name, tok in corpus.items():
                r = claim(server, cid, tok)
                self.assertEqual(r.status, 401, (server, name, r))
                self.assertIn('error="invalid_token"', r.headers["www-authenticate"],
                              (server, name))
                r = harness.http("GET", "/api/users/me/coupons", headers=harness.bearer(tok),
                                 server=server)
                self.assertEqual(r.status, 401, (server, name, r))
                refused += 2
        self.assertEqual(refused, 2 * 2 * 18)
        self.assertEqual(stats(cid)["issued"], 0)
        # The same user's real token works: the refusals were about the tokens.
        self.assertEqual(claim("auth-nginx", cid, harness.token(user)).status, 201)
        self.assertEqual(stats(cid)["issued"], 1)

    def test_token_in_the_query_string_is_refused(self):
        cid = harness.create_coupon(totalQuantity=5)
        user = harness.new_user()
        tok = harness.token(user, key="es256")  # short enough for the 512-byte query limit
        for server in SERVERS:
            r = harness.http("POST", "/api/coupons/%d/issue?access_token=%s" % (cid, tok),
                             body={}, server=server)
            self.assertEqual(r.status, 401, r)
            # Even beside a valid header: a URL is no place for a token.
            r = harness.http("GET", "/api/users/me/coupons?access_token=%s" % tok,
                             headers=harness.bearer(tok), server=server)
            self.assertEqual(r.status, 401, r)
        self.assertEqual(stats(cid)["issued"], 0)


class ActsForItself(unittest.TestCase):
    """A user's token acts for that user only; 'me' is the caller."""

    def test_me_routes_and_the_reference_body(self):
        for server in SERVERS:
            cid = harness.create_coupon(totalQuantity=5)
            user = harness.new_user()
            tok = harness.token(user)
            r = claim(server, cid, tok)
            self.assertEqual(r.status, 201, r)
            self.assertEqual(r.json()["userId"], user)
            wait_persisted(cid, user)  # a user's list is read from MariaDB
            r = harness.http("GET", "/api/coupons/%d/issues/me" % cid,
                             headers=harness.bearer(tok), server=server)
            self.assertEqual((r.status, r.json()["userId"]), (200, user))
            r = harness.http("GET", "/api/users/me/coupons", headers=harness.bearer(tok),
                             server=server)
            self.assertEqual(r.status, 200, r)
            self.assertEqual([c["couponId"] for c in r.json()["items"]], [cid])
            # The reference path with the caller's own userId still works.
            cid2 = harness.create_coupon(totalQuantity=5)
            r = harness.http("POST", "/api/coupons/issue",
                             body={"couponId": cid2, "userId": user},
                             headers=harness.bearer(tok), server=server)
            self.assertEqual(r.status, 201, r)

    def test_another_users_resources_are_refused_and_unchanged(self):
        cid = harness.create_coupon(totalQuantity=10)
        a, b = harness.new_user(), harness.new_user()
        ta, tb = harness.token(a), harness.token(b)
        r = claim("auth-nginx", cid, tb)
        self.assertEqual(r.status, 201, r)
        code_b = r.json()["code"]
        wait_persisted(cid, b)
        refused = 0
        for server in SERVERS:
            cases = [
                ("POST", "/api/coupons/%d/issue" % cid, {"userId": b}, 403),
                ("POST", "/api/coupons/issue", {"couponId": cid, "userId": b}, 403),
                ("GET", "/api/coupons/%d/issues/%d" % (cid, b), None, 403),
                ("GET", "/api/users/%d/coupons" % b, None, 403),
                ("POST", "/api/coupons/%d/issues/%d/redemption" % (cid, b),
                 {"orderId": "evil-1"}, 403),
                ("DELETE", "/api/coupons/%d/issues/%d/redemption" % (cid, b),
                 {"orderId": "evil-1"}, 403),
                ("POST", "/api/coupons/%d/issues/%d/hold" % (cid, b),
                 {"orderId": "evil-1", "ttlSeconds": 60}, 403),
                ("DELETE", "/api/coupons/%d/issues/%d/hold" % (cid, b),
                 {"orderId": "evil-1"}, 403),
                # Another user's code is no code at all for this caller.
                ("POST", "/api/redemptions", {"code": code_b, "orderId": "evil-2"}, 404),
                ("POST", "/api/redemptions/hold",
                 {"code": code_b, "orderId": "evil-2", "ttlSeconds": 60}, 404),
            ]
            for method, path, body, status in cases:
                r = harness.http(method, path, body=body, headers=harness.bearer(ta),
                                 server=server)
                self.assertEqual(r.status, status, (server, method, path, r))
                self.assertEqual(r.json()["code"], "FORBIDDEN" if status == 403
                                 else "COUPON_CODE_NOT_FOUND")
                refused += 1
        self.assertEqual(refused, 20)
        # Nothing happened to b's coupon, and a holds nothing.
        r = harness.http("GET", "/api/coupons/%d/issues/me" % cid, headers=harness.bearer(tb),
                         server="auth-nginx")
        self.assertEqual(r.status, 200, r)
        self.assertNotEqual(r.json()["status"], "REDEEMED")
        self.assertEqual(stats(cid)["issued"], 1)
        self.assertEqual(harness.sql("SELECT COUNT(*) FROM coupon_issue WHERE coupon_id=%d "
                                     "AND used_at IS NOT NULL" % cid), [("0",)])
        # b redeems its own, by code.
        r = harness.http("POST", "/api/redemptions", body={"code": code_b, "orderId": "ok-1"},
                         headers=harness.bearer(tb), server="auth-lighttpd")
        self.assertEqual(r.status, 201, r)


class Scopes(unittest.TestCase):
    """coupon:checkout redeems for anybody and nothing else; coupon:admin is an admin."""

    def test_checkout_service_redeems_for_any_user_but_cannot_claim_or_administer(self):
        cid = harness.create_coupon(totalQuantity=10)
        u1, u2 = harness.new_user(), harness.new_user()
        self.assertEqual(claim("auth-nginx", cid, harness.token(u1)).status, 201)
        r = claim("auth-nginx", cid, harness.token(u2))
        self.assertEqual(r.status, 201)
        code2 = r.json()["code"]
        wait_persisted(cid, u1)
        wait_persisted(cid, u2)
        svc = harness.token(900000001, scope="coupon:checkout")
        r = harness.http("POST", "/api/coupons/%d/issues/%d/redemption" % (cid, u1),
                         body={"orderId": "shop-1"}, headers=harness.bearer(svc),
                         server="auth-nginx")
        self.assertEqual(r.status, 201, r)
        r = harness.http("POST", "/api/redemptions", body={"code": code2, "orderId": "shop-2"},
                         headers=harness.bearer(svc), server="auth-lighttpd")
        self.assertEqual(r.status, 201, r)
        r = harness.http("DELETE", "/api/coupons/%d/issues/%d/redemption" % (cid, u1),
                         body={"orderId": "shop-1"}, headers=harness.bearer(svc),
                         server="auth-nginx")
        self.assertEqual(r.status, 204, r)
        # Refused: a claim, an admin route, another user's reads.
        r = claim("auth-nginx", cid, svc)
        self.assertEqual((r.status, r.json()["code"]), (403, "FORBIDDEN"))
        for method, path in (("GET", "/api/admin/coupons"),
                             ("GET", "/api/admin/coupons/%d/stats" % cid)):
            r = harness.http(method, path, headers=harness.bearer(svc), server="auth-nginx")
            self.assertEqual(r.status, 403, (path, r))
        r = harness.http("GET", "/api/users/%d/coupons" % u1, headers=harness.bearer(svc),
                         server="auth-nginx")
        self.assertEqual(r.status, 403, r)
        self.assertEqual(stats(cid)["issued"], 2)

    def test_admin_scope_and_the_static_token_open_the_admin_api(self):
        cid = harness.create_coupon(totalQuantity=3)
        adm = harness.token(900000002, scope="coupon:admin")
        user = harness.token(harness.new_user())
        for server in SERVERS:
            path = "/api/admin/coupons/%d/stats" % cid
            self.assertEqual(harness.http("GET", path, headers=harness.bearer(adm),
                                          server=server).status, 200)
            self.assertEqual(harness.http("GET", path, headers=harness.admin_headers(),
                                          server=server).status, 200)
            r = harness.http("GET", path, headers=harness.bearer(user), server=server)
            self.assertEqual((r.status, r.json()["code"]), (403, "FORBIDDEN"))
            self.assertEqual(harness.http("GET", path, server=server).status, 401)
            # An admin reads any user's coupons (and claims nothing for them).
            u = harness.new_user()
            r = harness.http("GET", "/api/users/%d/coupons" % u, headers=harness.bearer(adm),
                             server=server)
            self.assertEqual(r.status, 200, r)


class KeyRotation(unittest.TestCase):
    """A new key in the JWKS file is used within 1 s of the change, a removed one's
    tokens are refused, without a restart."""

    def write_jwks(self, *pems):
        doc = "".join(harness.token_tool("jwks", *pems))
        path = os.path.join(harness.env["JWT_KEY_DIR"], "jwks.json")
        tmp = path + ".new"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(doc)
        os.replace(tmp, path)
        return time.monotonic()

    def accepted_within(self, tok, want, limit_s):
        """Seconds until reads with TOK answer WANT (200 or 401) in every worker: a round
        is 10 reads through each server (nginx's kept connections reach both workers, and
        each worker checks the file on its own), and every read of the round must agree."""
        t0 = time.monotonic()
        while True:
            statuses = {harness.http("GET", "/api/users/me/coupons", headers=harness.bearer(tok),
                                     server=s).status for s in SERVERS for _ in range(10)}
            if statuses == {want}:
                return time.monotonic() - t0
            if time.monotonic() - t0 > limit_s:
                self.fail("still %r after %.1f s, want %d" % (statuses, limit_s, want))
            time.sleep(0.05)

    def test_new_key_accepted_and_removed_key_refused_within_a_second(self):
        keys = harness.env["JWT_KEY_DIR"]
        rs, es = os.path.join(keys, "rs256.pem"), os.path.join(keys, "es256.pem")
        tmp = tempfile.mkdtemp(prefix="rotate-", dir=harness.env["STATE_DIR"])
        new = os.path.join(tmp, "new.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-out", new], check=True,
                       capture_output=True)
        user = harness.new_user()
        old_tok = harness.token(user)
        new_tok = harness.token_tool("sign", "--key", new, user)[0]
        try:
            self.assertEqual(harness.http("GET", "/api/users/me/coupons",
                                          headers=harness.bearer(new_tok),
                                          server="auth-nginx").status, 401)
            self.write_jwks(rs, es, new)
            took = self.accepted_within(new_tok, 200, 1.5)
            print("\n  new key accepted %.2f s after the file changed" % took)
            self.assertLessEqual(took, 1.0)
            self.assertEqual(harness.http("GET", "/api/users/me/coupons",
                                          headers=harness.bearer(old_tok),
                                          server="auth-nginx").status, 200)
            # The RSA key leaves the set: its (cached) tokens stop working too.
            self.write_jwks(es, new)
            took = self.accepted_within(old_tok, 401, 1.5)
            print("  removed key refused %.2f s after the file changed" % took)
            self.assertLessEqual(took, 1.0)
        finally:
            self.write_jwks(rs, es)
            self.accepted_within(old_tok, 200, 5)
            shutil.rmtree(tmp, ignore_errors=True)


class Limits(unittest.TestCase):
    """One user over the per-user limit gets 429; 50 other users all get their 201."""

    def test_one_user_hammering_is_limited_and_others_are_not(self):
        coupons = [harness.create_coupon(totalQuantity=100) for _ in range(3)]
        hammer = harness.new_user()
        htok = harness.token(hammer)
        others = [harness.new_user() for _ in range(50)]
        otoks = {u: harness.token(u) for u in others}
        results = {"hammer": [], "others": []}
        lock = threading.Lock()

        def hammering():
            for i in range(40):
                r = claim("auth-nginx", coupons[i % 3], htok)
                with lock:
                    results["hammer"].append((r.status, r.headers.get("retry-after")))

        def one(u):
            r = claim("auth-nginx", coupons[0], otoks[u])
            with lock:
                results["others"].append(r.status)

        t = threading.Thread(target=hammering)
        t.start()
        threads = [threading.Thread(target=one, args=(u,)) for u in others]
        for th in threads:
            th.start()
        for th in threads + [t]:
            th.join()
        limited = [h for h in results["hammer"] if h[0] == 429]
        print("\n  hammering user: %d x 429 of 40; others: %r" % (
            len(limited), sorted(set(results["others"]))))
        self.assertEqual(results["others"], [201] * 50)
        self.assertGreater(len(limited), 0)
        self.assertTrue(all(ra is not None and int(ra) >= 1 for _s, ra in limited))
        # The hammering user got one issuance per coupon at most (201), the rest 409/429.
        ok = [s for s, _ in results["hammer"] if s == 201]
        self.assertEqual(len(ok), 3)
        self.assertEqual(stats(coupons[0])["issued"], 51)


class IdentityService(http.server.BaseHTTPRequestHandler):
    """A stand-in for oauth2-proxy's /oauth2/auth: 'Authorization: Bearer session-N' is
    user N (202 + X-Auth-Request-User: N); anything else 401."""

    def do_GET(self):
        got = self.headers.get("Authorization", "")
        if got.startswith("Bearer session-") and got[15:].isdigit():
            self.send_response(202)
            self.send_header("X-Auth-Request-User", got[15:])
        else:
            self.send_response(401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway(unittest.TestCase):
    """auth_mode = gateway: the id comes from a parameter the web server sets; a header a
    client sends (HTTP_*) never counts. A master of its own, spoken to over FastCGI
    directly and through nginx with deploy/nginx/coupon-gateway.*.conf in front of a
    stand-in identity service."""

    @classmethod
    def start_master(cls, sock, log, **env):
        """A gateway-mode coupon-fcgi on SOCK, stopped at the end of the class - also when
        setUpClass fails after it (class cleanups always run)."""
        binary = os.path.join(harness.env["BUILD_DIR"], "fcgi-app", "coupon-fcgi")
        penv = dict(os.environ, COUPON_AUTH_MODE="gateway", COUPON_WORKERS="1", **env)
        proc = subprocess.Popen([binary, "-c", harness.env["CONFIG"], "--listen",
                                 "unix:" + sock], env=penv, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

        def stop():
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        cls.addClassCleanup(stop)

    @classmethod
    def start_web(cls, server, port, sock, knob, value):
        """nginx or lighttpd from deploy/ with the gateway part KNOB=VALUE (web.sh)."""
        os.environ[knob] = value
        try:
            harness._stack("web_start", server, cls.webdir, port, sock, lib="web.sh")
        finally:
            del os.environ[knob]
        cls.addClassCleanup(harness._stack, "web_stop", server, cls.webdir, lib="web.sh")

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="gw-", dir=harness.env["STATE_DIR"])
        cls.sock = os.path.join(cls.tmp, "fcgi.sock")
        cls.log = open(os.path.join(harness.env["LOG_DIR"], "coupon-fcgi-gateway.log"), "ab")
        cls.addClassCleanup(cls.log.close)
        cls.start_master(cls.sock, cls.log, COUPON_METRICS_PATH=os.path.join(cls.tmp, "m1"))
        # lighttpd's mod_auth names the user in REMOTE_USER: a second master reads that.
        cls.sock2 = os.path.join(cls.tmp, "fcgi-remote-user.sock")
        cls.start_master(cls.sock2, cls.log, COUPON_AUTH_GATEWAY_PARAM="REMOTE_USER",
                         COUPON_METRICS_PATH=os.path.join(cls.tmp, "m2"))
        harness.wait_until(lambda: os.path.exists(cls.sock) and os.path.exists(cls.sock2),
                           timeout=30, message="the gateway-mode masters' sockets")
        cls.idp = http.server.ThreadingHTTPServer(("127.0.0.1", 0), IdentityService)
        threading.Thread(target=cls.idp.serve_forever, daemon=True).start()
        cls.addClassCleanup(cls.idp.shutdown)
        cls.webdir = os.path.join(cls.tmp, "web")
        os.makedirs(os.path.join(cls.webdir, "logs"))
        os.makedirs(os.path.join(cls.webdir, "pids"))
        cls.port = free_port()
        cls.start_web("nginx", cls.port, cls.sock, "COUPON_WEB_GATEWAY_URL",
                      "http://127.0.0.1:%d/oauth2/auth" % cls.idp.server_address[1])
        cls.user_l = harness.new_user()
        cls.htpasswd = os.path.join(cls.tmp, "users.htpasswd")
        hashed = subprocess.run(["openssl", "passwd", "-apr1", "s3cret"], check=True,
                                capture_output=True, text=True).stdout.strip()
        with open(cls.htpasswd, "w", encoding="utf-8") as f:
            f.write("%d:%s\n" % (cls.user_l, hashed))
        os.chmod(cls.htpasswd, 0o644)
        cls.lport = free_port()
        cls.start_web("lighttpd", cls.lport, cls.sock2, "COUPON_WEB_GATEWAY_HTPASSWD",
                      cls.htpasswd)

    def test_through_lighttpd_only_the_user_mod_auth_verified_counts(self):
        cid = harness.create_coupon(totalQuantity=10)
        user, victim = self.user_l, harness.new_user()
        good = {"Authorization": "Basic " + base64.b64encode(
            b"%d:s3cret" % user).decode()}
        bad = {"Authorization": "Basic " + base64.b64encode(
            b"%d:wrong" % user).decode()}
        spoof = {"Remote-User": str(victim), "X-Auth-Request-User": str(victim),
                 "Coupon-User-Id": str(victim)}
        for hdrs in ({}, bad, spoof):
            r = self.web("POST", "/api/coupons/%d/issue" % cid, {}, hdrs, port=self.lport)
            self.assertEqual(r.status, 401, (hdrs, r))
        r = self.web("POST", "/api/coupons/%d/issue" % cid, {}, dict(spoof, **good),
                     port=self.lport)
        self.assertEqual((r.status, r.json()["userId"]), (201, user), r)
        r = self.web("POST", "/api/coupons/%d/issue" % cid, {"userId": victim}, good,
                     port=self.lport)
        self.assertEqual((r.status, r.json()["code"]), (403, "FORBIDDEN"), r)
        r = self.web("GET", "/api/users/%d/coupons" % victim, headers=good, port=self.lport)
        self.assertEqual(r.status, 403, r)
        self.assertEqual(self.web("GET", "/api/health", port=self.lport).status, 200)
        self.assertEqual(stats(cid)["issued"], 1)

    def web(self, method, path, body=None, headers=None, port=None):
        conn = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=10)
        try:
            hdrs = dict(headers or {})
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                hdrs["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            return harness.Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def test_through_nginx_only_the_identity_services_answer_counts(self):
        cid = harness.create_coupon(totalQuantity=10)
        user, victim = harness.new_user(), harness.new_user()
        session = {"Authorization": "Bearer session-%d" % user}
        # No session: nginx answers 401 problem+json itself.
        r = self.web("POST", "/api/coupons/%d/issue" % cid, {})
        self.assertEqual((r.status, r.json()["code"]), (401, "UNAUTHORIZED"), r)
        # Headers naming the victim, with or without a session, never make the victim.
        spoof = {"X-Auth-Request-User": str(victim), "Coupon-User-Id": str(victim),
                 "Remote-User": str(victim)}
        r = self.web("POST", "/api/coupons/%d/issue" % cid, {}, spoof)
        self.assertEqual(r.status, 401, r)
        r = self.web("POST", "/api/coupons/%d/issue" % cid, {}, dict(spoof, **session))
        self.assertEqual((r.status, r.json()["userId"]), (201, user), r)
        r = self.web("POST", "/api/coupons/%d/issue" % cid, {"userId": victim}, session)
        self.assertEqual((r.status, r.json()["code"]), (403, "FORBIDDEN"), r)
        r = self.web("GET", "/api/coupons/%d/issues/me" % cid, headers=session)
        self.assertEqual((r.status, r.json()["userId"]), (200, user), r)
        r = self.web("GET", "/api/coupons/%d/issues/%d" % (cid, victim), headers=session)
        self.assertEqual(r.status, 403, r)
        # Health and the admin API do not go through the identity service.
        self.assertEqual(self.web("GET", "/api/health").status, 200)
        self.assertEqual(self.web("GET", "/api/admin/coupons/%d/stats" % cid,
                                  headers=harness.admin_headers()).status, 200)
        self.assertEqual(stats(cid)["issued"], 1)

    def call(self, method, path, body=None, headers=None, params=None):
        data = json.dumps(body).encode() if body is not None else b""
        status, hdrs, out = fcgi_client.request(self.sock, method, path, data,
                                                headers=headers, params=params)
        return harness.Resp(status, hdrs, out)

    def test_identity_from_the_server_parameter_only(self):
        cid = harness.create_coupon(totalQuantity=10)
        user, victim = harness.new_user(), harness.new_user()
        r = self.call("POST", "/api/coupons/%d/issue" % cid, {},
                      params={"COUPON_USER_ID": str(user)})
        self.assertEqual((r.status, r.json()["userId"]), (201, user))
        # A client's header of that name (or any spelling) is an HTTP_ parameter: ignored.
        for hdr in ("Coupon-User-Id", "Coupon_User_Id", "X-Auth-Request-User", "Remote-User"):
            r = self.call("POST", "/api/coupons/%d/issue" % cid, {"userId": victim},
                          headers={hdr: str(victim)})
            self.assertEqual(r.status, 401, (hdr, r))
        # With the server's identity, another user in the body is refused.
        r = self.call("POST", "/api/coupons/%d/issue" % cid, {"userId": victim},
                      params={"COUPON_USER_ID": str(user)}, headers={"Coupon-User-Id":
                                                                     str(victim)})
        self.assertEqual(r.status, 403, r)
        r = self.call("GET", "/api/users/%d/coupons" % victim,
                      params={"COUPON_USER_ID": str(user)})
        self.assertEqual(r.status, 403, r)
        # A value that is not a user id is no identity.
        r = self.call("GET", "/api/users/me/coupons", params={"COUPON_USER_ID": "7; drop"})
        self.assertEqual(r.status, 401, r)
        self.assertEqual(stats(cid)["issued"], 1)


if __name__ == "__main__":
    unittest.main()
