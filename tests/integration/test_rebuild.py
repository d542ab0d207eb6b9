"""Recovery after Redis loses its data (issue #8): flush Redis in the middle of a sale;
the issue path refuses (503) rather than risk a second coupon for someone; `coupon-admin
rebuild-redis` restores every issuance from MariaDB; the sale goes on with no oversell
and no duplicate, counted exactly in Redis and MariaDB."""

import concurrent.futures
import os
import subprocess
import unittest

import harness





def issue(cid, u):
    return harness.http("POST", "/api/coupons/%d/issue" % cid, {"userId": u})


def rows(cid):
    return int(harness.sql("SELECT COUNT(*) FROM coupon_issue WHERE coupon_id = %d" % cid)[0][0])


class RebuildRedis(unittest.TestCase):

    def test_flush_mid_campaign_then_rebuild_and_continue(self):
        cid = harness.create_coupon(totalQuantity=50)
        first = [harness.new_user() for _ in range(20)]
        for u in first:
            self.assertEqual(issue(cid, u).status, 201)
        harness.wait_until(lambda: rows(cid) == 20, timeout=30, message="20 rows persisted")

        harness.redis("FLUSHALL")
        r = issue(cid, harness.new_user())
        self.assertEqual((r.status, r.json()["code"]), (503, "SERVICE_UNAVAILABLE"), r)
        self.assertEqual(harness.redis("HLEN", "coupon:{%d}:users" % cid), 0)

        tool = os.path.join(harness.env["BUILD_DIR"], "consumer", "coupon-admin")
        out = subprocess.run([tool, "-c", harness.env["CONFIG"], "rebuild-redis"],
                             capture_output=True, text=True, timeout=120, check=False)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("coupon %d: meta written, 20 issuances in MariaDB, 20 restored" % cid,
                      out.stdout)
        self.assertEqual(harness.redis("HLEN", "coupon:{%d}:users" % cid), 20)
        # Running it again changes nothing.
        again = subprocess.run([tool, "-c", harness.env["CONFIG"], "rebuild-redis", "--coupon",
                                str(cid)], capture_output=True, text=True, timeout=60,
                               check=False)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertIn("20 issuances in MariaDB, 0 restored", again.stdout)

        # Everyone who had the coupon still has it; the rest of the stock sells exactly.
        for u in first[:5]:
            self.assertEqual(issue(cid, u).status, 409)
        newcomers = [harness.new_user() for _ in range(60)]
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(lambda u: issue(cid, u).status, newcomers))
        self.assertEqual(statuses.count(201), 30, statuses)
        self.assertEqual(statuses.count(410), 30, statuses)
        self.assertEqual(harness.redis("HLEN", "coupon:{%d}:users" % cid), 50)
        harness.wait_until(lambda: rows(cid) == 50, timeout=60, message="50 rows persisted")
        self.assertEqual(harness.sql(
            "SELECT COUNT(DISTINCT user_id), COUNT(DISTINCT sequence), MAX(sequence), "
            "(SELECT issued_quantity FROM coupon WHERE id = %d) FROM coupon_issue "
            "WHERE coupon_id = %d" % (cid, cid)), [("50", "50", "50", "50")])

    def test_rebuild_restores_redemptions_and_holds(self):
        # A redeemed or held issuance must stay so after Redis lost its data: otherwise
        # it could be redeemed a second time (issue 26).
        cid = harness.create_coupon(totalQuantity=10)
        users = [harness.new_user() for _ in range(3)]
        for u in users:
            self.assertEqual(issue(cid, u).status, 201)
        path = "/api/coupons/%d/issues/%d/%s"
        self.assertEqual(harness.http("POST", path % (cid, users[0], "redemption"),
                                      {"orderId": "kept-1"}).status, 201)
        self.assertEqual(harness.http("POST", path % (cid, users[1], "hold"),
                                      {"orderId": "kept-2", "ttlSeconds": 600}).status, 201)
        harness.wait_until(lambda: int(harness.sql(
            "SELECT COUNT(*) FROM coupon_issue WHERE coupon_id = %d AND checkout_version = 1"
            % cid)[0][0]) == 2, timeout=30, message="both changes applied to MariaDB")
        harness.redis("FLUSHALL")
        tool = os.path.join(harness.env["BUILD_DIR"], "consumer", "coupon-admin")
        out = subprocess.run([tool, "-c", harness.env["CONFIG"], "rebuild-redis", "--coupon",
                              str(cid)], capture_output=True, text=True, timeout=60, check=False)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("3 issuances in MariaDB, 3 restored, 2 checkout states restored", out.stdout)
        r = harness.http("POST", path % (cid, users[0], "redemption"), {"orderId": "again"})
        self.assertEqual((r.status, r.json()["code"]), (409, "COUPON_ALREADY_REDEEMED"), r)
        self.assertEqual(harness.http("POST", path % (cid, users[0], "redemption"),
                                      {"orderId": "kept-1"}).status, 200)
        r = harness.http("POST", path % (cid, users[1], "redemption"), {"orderId": "other"})
        self.assertEqual((r.status, r.json()["code"]), (409, "COUPON_HELD"), r)
        # The versions go on from MariaDB's: a cancel is version 2 and lands.
        self.assertEqual(harness.http("DELETE", path % (cid, users[0], "redemption"),
                                      {"orderId": "kept-1"}).status, 204)
        harness.wait_until(lambda: harness.sql(
            "SELECT checkout_version, used_at IS NULL FROM coupon_issue WHERE coupon_id = %d "
            "AND user_id = %d" % (cid, users[0]))[0] == ("2", "1"), timeout=30,
            message="the cancel applied after the rebuild")
        self.assertEqual(harness.http("POST", path % (cid, users[2], "redemption"),
                                      {"orderId": "fresh"}).status, 201)

    def test_unknown_command_and_coupon_fail_clearly(self):
        tool = os.path.join(harness.env["BUILD_DIR"], "consumer", "coupon-admin")
        bad = subprocess.run([tool, "-c", harness.env["CONFIG"], "rebuild-everything"],
                             capture_output=True, text=True, timeout=30, check=False)
        self.assertEqual(bad.returncode, 2)
        missing = subprocess.run([tool, "-c", harness.env["CONFIG"], "rebuild-redis",
                                  "--coupon", "987654321987"], capture_output=True, text=True,
                                 timeout=30, check=False)
        self.assertEqual(missing.returncode, 1)
        self.assertIn("does not exist", missing.stderr)


if __name__ == "__main__":
    unittest.main()
