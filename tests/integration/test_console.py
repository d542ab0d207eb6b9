"""The operator console and its admin endpoints against the real stack.

- The browser suite (tests/browser/console.mjs: Debian's Chromium, headless, driven by
  playwright-core) through nginx and through lighttpd: wrong token, token, a wrong field
  with the API's message, create, 30 claims seen in numbers and chart within 2 s, PATCH,
  lookup, redemptions and holds seen as exact redeemed / held counts, the list. Screenshots go to <build>/tests/integration/screenshots/<server>/.
- The static files as served: types, CSP, caching, methods, through both servers.
- GET /api/admin/coupons (keyset pagination, live numbers, redeemed and held as MariaDB
  has them, also in .../stats) and
  GET /api/admin/coupons/{id}/series: exact answers, and 400 problem+json on bad input.
"""

import glob
import os
import re
import subprocess
import time
import unittest

from harness import admin_headers, create_coupon, env, http, new_user, sql, wait_until

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SERVERS = ("nginx", "lighttpd")
UPLOT = "vendor/uPlot-1.6.32.iife.min.js"


def shots_dir(server):
    return os.path.join(env["BUILD_DIR"], "tests", "integration", "screenshots", server)


def claim(coupon_id, user, server="nginx"):
    r = http("POST", "/api/coupons/%d/issue" % coupon_id, {"userId": user}, server=server)
    return r.status


def checkout(method, coupon_id, user, what, body):
    return http(method, "/api/coupons/%d/issues/%d/%s" % (coupon_id, user, what), body).status


class BrowserTest(unittest.TestCase):
    STEPS = 12

    def run_browser(self, server):
        addr = env["HTTP_NGINX" if server == "nginx" else "HTTP_LIGHTTPD"]
        script = os.path.join(env["SRC_DIR"], "tests", "browser", "console.mjs")
        run_env = dict(os.environ, CONSOLE_BASE="http://" + addr,
                       ADMIN_TOKEN=env["ADMIN_TOKEN"], SHOT_DIR=shots_dir(server),
                       PLAYWRIGHT_CORE=os.path.join(env["BUILD_DIR"], "console-site", "npm",
                                                    "node_modules", "playwright-core"))
        for old in glob.glob(os.path.join(shots_dir(server), "*.png")):
            os.unlink(old)
        p = subprocess.run(["node", script], env=run_env, capture_output=True, text=True,
                           timeout=180, check=False)
        print("\n[%s]\n%s%s" % (server, p.stdout, p.stderr))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        oks = re.findall(r"^ok \d+ - ", p.stdout, re.M)
        self.assertEqual(len(oks), self.STEPS, p.stdout)
        self.assertNotIn("not ok", p.stdout)
        shots = sorted(os.path.basename(f) for f in glob.glob(shots_dir(server) + "/*.png"))
        self.assertEqual(shots, ["1-wrong-token.png", "2-field-error.png",
                                 "3-after-30-claims.png", "4-checkout.png",
                                 "5-campaign-mid-sale.png", "6-list.png"])
        print("screenshots in", shots_dir(server))
        # The token went in headers only: never in an access log line.
        for log in glob.glob(os.path.join(env["LOG_DIR"], "*access*.log")):
            with open(log, encoding="utf-8", errors="replace") as f:
                self.assertNotIn(env["ADMIN_TOKEN"], f.read(), log)

    def test_console_in_chromium_through_nginx(self):
        self.run_browser("nginx")

    def test_console_in_chromium_through_lighttpd(self):
        self.run_browser("lighttpd")


class StaticFilesTest(unittest.TestCase):
    def test_types_csp_and_caching(self):
        rows = [("/console/", "text/html; charset=utf-8", "no-cache"),
                ("/console/console.js", "text/javascript; charset=utf-8", "no-cache"),
                ("/console/console.css", "text/css; charset=utf-8", "no-cache"),
                ("/console/" + UPLOT, "text/javascript; charset=utf-8",
                 "public, max-age=31536000, immutable"),
                ("/console/vendor/uPlot-1.6.32.min.css", "text/css; charset=utf-8",
                 "public, max-age=31536000, immutable")]
        for server in SERVERS:
            for path, ctype, cache in rows:
                with self.subTest(server=server, path=path):
                    r = http("GET", path, server=server)
                    self.assertEqual(r.status, 200)
                    self.assertEqual(r.headers["content-type"].lower(), ctype)
                    self.assertEqual(r.headers["cache-control"], cache)
                    self.assertEqual(r.headers["content-security-policy"], CSP)
                    self.assertEqual(r.headers["x-content-type-options"], "nosniff")
                    self.assertEqual(r.headers["x-frame-options"], "DENY")
                    self.assertIn("etag", r.headers)

    def test_index_has_no_inline_script_or_style(self):
        body = http("GET", "/console/").text
        self.assertEqual(re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", body), [])
        self.assertNotIn(" style=", body)
        self.assertNotIn("<style", body)
        self.assertNotIn("http://", body)
        self.assertNotIn("https://", body)  # no CDN
        self.assertIn('src="%s"' % UPLOT, body)

    def test_redirect_and_methods(self):
        for server in SERVERS:
            with self.subTest(server=server):
                r = http("GET", "/console", server=server)
                self.assertEqual(r.status, 301)
                self.assertTrue(r.headers["location"].endswith("/console/"))
                self.assertEqual(http("POST", "/console/", "x", server=server).status, 403)
                r = http("GET", "/console/missing.js", server=server)
                self.assertEqual(r.status, 404)


class CampaignListTest(unittest.TestCase):
    def test_pages_newest_first_with_live_numbers(self):
        ids = [create_coupon(totalQuantity=50) for _ in range(3)]
        users = [new_user() for _ in range(4)]
        for u in users:
            self.assertEqual(claim(ids[1], u), 201)
        r = http("GET", "/api/admin/coupons?limit=2", headers=admin_headers())
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"], "application/json")
        page = r.json()
        self.assertEqual([c["id"] for c in page["items"]], [ids[2], ids[1]])
        self.assertEqual(page["next"], str(ids[1]))
        item = page["items"][1]
        self.assertEqual(sorted(item), ["endAt", "held", "id", "issued", "pending", "persisted",
                                        "redeemed", "remaining", "startAt", "title",
                                        "totalQuantity"])
        self.assertEqual((item["redeemed"], item["held"]), (0, 0))
        self.assertEqual(item["issued"], 4)
        self.assertEqual(item["remaining"], 46)
        self.assertEqual(item["totalQuantity"], 50)
        self.assertRegex(item["startAt"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")
        # The consumer persists them; pending drains to 0.
        def settled():
            p = http("GET", "/api/admin/coupons?limit=1&after=%d" % ids[2],
                     headers=admin_headers()).json()
            c = p["items"][0]
            return c if c["persisted"] == 4 and c["pending"] == 0 else None
        self.assertEqual(wait_until(settled, 30)["id"], ids[1])
        nxt = http("GET", "/api/admin/coupons?limit=2&after=" + page["next"],
                   headers=admin_headers()).json()
        self.assertEqual(nxt["items"][0]["id"], ids[0])
        self.assertTrue(all(c["id"] < ids[1] for c in nxt["items"]))

    def test_redeemed_and_held_as_mariadb_has_them(self):
        # ids[1]: 3 redeemed; 2 held for 10 minutes; one held for 1 s (lapses: not held);
        # one held, then released; one held, then redeemed by its order => 4 redeemed,
        # 2 held. ids[0] and ids[2], the page's neighbours: one redemption, nothing.
        ids = [create_coupon(totalQuantity=20) for _ in range(3)]
        users = [new_user() for _ in range(8)]
        for u in users:
            self.assertEqual(claim(ids[1], u), 201)
        self.assertEqual(claim(ids[0], users[0]), 201)
        def order(i):
            return "console-%d-%d" % (ids[1], i)
        wants = [("POST", 0, "redemption", {"orderId": order(0)}, 201),
                 ("POST", 1, "redemption", {"orderId": order(1)}, 201),
                 ("POST", 2, "redemption", {"orderId": order(2)}, 201),
                 ("POST", 3, "hold", {"orderId": order(3), "ttlSeconds": 600}, 201),
                 ("POST", 4, "hold", {"orderId": order(4), "ttlSeconds": 600}, 201),
                 ("POST", 5, "hold", {"orderId": order(5), "ttlSeconds": 1}, 201),
                 ("POST", 6, "hold", {"orderId": order(6), "ttlSeconds": 600}, 201),
                 ("DELETE", 6, "hold", {"orderId": order(6)}, 204),
                 ("POST", 7, "hold", {"orderId": order(7), "ttlSeconds": 600}, 201),
                 ("POST", 7, "redemption", {"orderId": order(7)}, 201)]
        for method, i, what, body, status in wants:
            self.assertEqual(checkout(method, ids[1], users[i], what, body), status,
                             (method, i, what))
        self.assertEqual(checkout("POST", ids[0], users[0], "redemption",
                                  {"orderId": "console-other-%d" % ids[0]}), 201)
        lapse_at = time.time() + 1.0

        # Every change applied: one version per change (the lapse is written by the
        # applier's sweep in its own time, so user 5 counts as at least its hold).
        def applied():
            rows = sql("SELECT coupon_id, user_id, checkout_version FROM coupon_issue WHERE "
                       "coupon_id IN (%d, %d)" % (ids[0], ids[1]))
            v = {(int(c), int(u)): int(n) for c, u, n in rows}
            want = {(ids[1], u): w for u, w in zip(users, [1, 1, 1, 1, 1, 1, 2, 2])}
            want[(ids[0], users[0])] = 1
            return all(v.get(k, 0) >= w for k, w in want.items())
        wait_until(applied, 30, message="the checkout changes in MariaDB")
        time.sleep(max(0.0, lapse_at - time.time()) + 0.2)
        counted = sql("SELECT coupon_id, COUNT(used_at), SUM(hold_order_id IS NOT NULL AND "
                      "hold_expires_at > NOW(3)) FROM coupon_issue WHERE coupon_id IN "
                      "(%d, %d) GROUP BY coupon_id ORDER BY coupon_id" % (ids[0], ids[1]))
        self.assertEqual(counted, [(str(ids[0]), "1", "0"), (str(ids[1]), "4", "2")])
        page = http("GET", "/api/admin/coupons?limit=3&after=%d" % (ids[2] + 1),
                    headers=admin_headers()).json()
        got = [(c["id"], c["redeemed"], c["held"]) for c in page["items"]]
        self.assertEqual(got, [(ids[2], 0, 0), (ids[1], 4, 2), (ids[0], 1, 0)])
        one = http("GET", "/api/admin/coupons?limit=1&after=%d" % ids[2],
                   headers=admin_headers()).json()["items"]
        self.assertEqual([(c["id"], c["redeemed"], c["held"]) for c in one], [(ids[1], 4, 2)])
        st = http("GET", "/api/admin/coupons/%d/stats" % ids[1], headers=admin_headers()).json()
        self.assertEqual((st["redeemed"], st["held"]), (4, 2))

    def test_last_page_has_no_next(self):
        r = http("GET", "/api/admin/coupons?limit=50&after=2", headers=admin_headers()).json()
        self.assertEqual([c["id"] for c in r["items"]], [1])
        self.assertIsNone(r["next"])

    def test_bad_input_is_400_problem(self):
        rows = [("limit=0", "limit must be an integer in 1..50"),
                ("limit=51", "limit must be an integer in 1..50"),
                ("limit=abc", "limit must be an integer in 1..50"),
                ("limit=1&limit=2", "limit given more than once"),
                ("after=0", "after must be the next cursor of an earlier page"),
                ("after=x", "after must be the next cursor of an earlier page"),
                ("after=1&after=2", "after given more than once"),
                ("page=2", "unknown query parameter 'page'"),
                ("limit=2&token=x", "unknown query parameter 'token'")]
        for server in SERVERS:
            for query, detail in rows:
                with self.subTest(server=server, query=query):
                    r = http("GET", "/api/admin/coupons?" + query, headers=admin_headers(),
                             server=server)
                    self.assertEqual(r.status, 400)
                    self.assertEqual(r.headers["content-type"], "application/problem+json")
                    self.assertEqual(r.json()["code"], "INVALID_REQUEST")
                    self.assertEqual(r.json()["detail"], detail)

    def test_needs_the_admin_token(self):
        r = http("GET", "/api/admin/coupons")
        self.assertEqual((r.status, r.json()["code"]), (401, "UNAUTHORIZED"))
        r = http("GET", "/api/admin/coupons", headers={"Authorization": "Bearer nope"})
        self.assertEqual((r.status, r.json()["code"]), (403, "FORBIDDEN"))
        r = http("GET", "/api/admin/coupons/1/series", headers={"Authorization": "Bearer x"})
        self.assertEqual((r.status, r.json()["code"]), (403, "FORBIDDEN"))


class SeriesTest(unittest.TestCase):
    def test_claims_and_answers_per_second(self):
        cid = create_coupon(totalQuantity=5)
        users = [new_user() for _ in range(5)]
        statuses = [claim(cid, u) for u in users]
        statuses.append(claim(cid, users[0]))     # 409
        statuses.append(claim(cid, new_user()))   # 410
        self.assertEqual(statuses, [201] * 5 + [409, 410])
        t0 = time.monotonic()

        def seen():
            r = http("GET", "/api/admin/coupons/%d/series?seconds=30" % cid,
                     headers=admin_headers())
            self.assertEqual(r.status, 200)
            s = r.json()
            return s if sum(s["claims"]) == 5 else None
        s = wait_until(seen, 3)
        self.assertLess(time.monotonic() - t0, 2.5)
        self.assertEqual(s["seconds"], 30)
        self.assertEqual(len(s["claims"]), 30)
        self.assertEqual(s["intervalSeconds"], 1)
        self.assertTrue(s["tracked"])
        self.assertRegex(s["end"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")
        self.assertLessEqual(abs(s["endEpochSeconds"] - (time.time() - 1)), 3)
        by = {a["status"]: a["values"] for a in s["answers"]}
        self.assertGreaterEqual(sum(by["201"]), 5)
        self.assertGreaterEqual(sum(by["409"]), 1)
        self.assertGreaterEqual(sum(by["410"]), 1)
        self.assertTrue(all(len(v) == 30 for v in by.values()))
        # Another campaign's page does not show these claims.
        other = create_coupon()
        o = http("GET", "/api/admin/coupons/%d/series" % other, headers=admin_headers()).json()
        self.assertEqual(o["seconds"], 120)
        self.assertEqual(sum(o["claims"]), 0)
        self.assertFalse(o["tracked"])

    def test_bad_input_is_400_problem_and_unknown_coupon_404(self):
        cid = create_coupon()
        rows = [("seconds=9", "seconds must be an integer in 10..300"),
                ("seconds=301", "seconds must be an integer in 10..300"),
                ("seconds=-1", "seconds must be an integer in 10..300"),
                ("seconds=1e2", "seconds must be an integer in 10..300"),
                ("seconds=10&seconds=20", "seconds given more than once"),
                ("window=10", "unknown query parameter 'window'")]
        for query, detail in rows:
            with self.subTest(query=query):
                r = http("GET", "/api/admin/coupons/%d/series?%s" % (cid, query),
                         headers=admin_headers())
                self.assertEqual(r.status, 400)
                self.assertEqual(r.headers["content-type"], "application/problem+json")
                self.assertEqual(r.json()["detail"], detail)
        r = http("GET", "/api/admin/coupons/999999999/series", headers=admin_headers())
        self.assertEqual((r.status, r.json()["code"]), (404, "COUPON_NOT_EXIST"))
        r = http("GET", "/api/admin/coupons/0/series", headers=admin_headers())
        self.assertEqual((r.status, r.json()["code"]), (400, "INVALID_REQUEST"))


if __name__ == "__main__":
    unittest.main()
