"""Checkout decided in Redis (issue 26) on the real stack: redemption and holds right
after the claim, exactly one winner among concurrent orders, holds that lapse by
themselves, release, confirm, cancel, and every change landing in MariaDB exactly once
and in order - also while the consumer is stopped, SIGKILLed, or MariaDB is down.

Counts are exact and checked at the source: MariaDB rows (used_at, redeemed_order_id,
hold_order_id, checkout_version, event_outbox) and the coupon.redemption topic."""

import collections
import concurrent.futures
import signal
import threading
import time
import unittest

import harness

TOPIC = "coupon.redemption"


def new_user():
    return harness.new_user()


def path(cid, uid, what):
    return "/api/coupons/%d/issues/%s/%s" % (cid, uid, what)


def redeem(cid, uid, order):
    return harness.http("POST", path(cid, uid, "redemption"), {"orderId": order})


def cancel(cid, uid, order):
    return harness.http("DELETE", path(cid, uid, "redemption"), {"orderId": order})


def hold(cid, uid, order, ttl=60):
    return harness.http("POST", path(cid, uid, "hold"), {"orderId": order, "ttlSeconds": ttl})


def release(cid, uid, order):
    return harness.http("DELETE", path(cid, uid, "hold"), {"orderId": order})


def issue(cid, uid):
    r = harness.http("POST", "/api/coupons/%d/issue" % cid, {"userId": uid})
    assert r.status == 201, r
    return r.json()


def state(cid, uid):
    """(used?, redeemed_order_id, hold_order_id, checkout_version) of the row, or None."""
    rows = harness.sql("SELECT used_at IS NOT NULL, redeemed_order_id, hold_order_id, "
                       "checkout_version FROM coupon_issue WHERE coupon_id = %d AND user_id = %d"
                       % (cid, uid))
    if not rows:
        return None
    used, order, held, version = rows[0]
    return (used == "1", order, held, int(version))


def applied(cid, uid, version):
    s = state(cid, uid)
    return s is not None and s[3] >= version


def wait_applied(cid, uid, version, timeout=30):
    harness.wait_until(lambda: applied(cid, uid, version), timeout=timeout,
                       message="checkout version %d of %d/%d in MariaDB" % (version, cid, uid))


def rpending(cid):
    return int(harness.redis("HLEN", "coupon:{%d}:rpending" % cid))


def events(cid):
    import json
    out = []
    for m in harness.kafka_messages(TOPIC):
        if m["key"] == str(cid):
            out.append(json.loads(m["value"]))
    return out


def settled_events(cid, n, timeout=60):
    harness.wait_until(lambda: rpending(cid) == 0, timeout=timeout,
                       message="coupon %d's checkout records applied" % cid)
    harness.wait_until(lambda: harness.sql(
        "SELECT COUNT(*) FROM event_outbox WHERE topic = '%s' AND msg_key = '%d'"
        % (TOPIC, cid))[0][0] == "0", timeout=timeout, message="outbox relayed")
    harness.wait_until(lambda: len(events(cid)) >= n, timeout=timeout,
                       message="%d events of coupon %d" % (n, cid))
    time.sleep(1)
    return events(cid)


def concurrently(n, fn):
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait()
        return fn(i)
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


class Checkout(unittest.TestCase):

    stopped_consumer = False

    def tearDown(self):
        if self.stopped_consumer:
            harness.consumers_stop()
            harness.consumer_start()
            harness.wait_until(harness.consumer_holds_all_partitions, timeout=60,
                               interval=0.5, message="the consumer holds every partition")

    def assert_problem(self, r, status, code):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.headers.get("content-type"), "application/problem+json", r)
        self.assertEqual(r.json()["code"], code, r)

    def test_claim_then_redeem_at_once_for_200_users(self):
        cid = harness.create_coupon(totalQuantity=200)
        users = [new_user() for _ in range(200)]

        def claim_and_redeem(i):
            issue(cid, users[i])
            return redeem(cid, users[i], "now-%d" % i)
        answers = concurrently(20, lambda k: [claim_and_redeem(i) for i in range(k, 200, 20)])
        statuses = collections.Counter(r.status for batch in answers for r in batch)
        self.assertEqual(statuses, {201: 200}, statuses)
        evs = settled_events(cid, 200)
        self.assertEqual(harness.sql("SELECT COUNT(*), COUNT(used_at), COUNT(DISTINCT "
                                     "redeemed_order_id) FROM coupon_issue WHERE coupon_id = %d"
                                     % cid)[0], ("200", "200", "200"))
        redeemed = collections.Counter(e["userId"] for e in evs if e["type"] == "coupon.redeemed")
        self.assertEqual(len(evs), 200, collections.Counter(e["type"] for e in evs))
        self.assertEqual(set(redeemed), set(users))
        self.assertEqual(set(redeemed.values()), {1})

    def test_50_concurrent_holds_one_wins_and_one_event(self):
        cid = harness.create_coupon()
        uid = new_user()
        issue(cid, uid)
        answers = concurrently(50, lambda i: hold(cid, uid, "cart-%d" % i, ttl=120))
        statuses = collections.Counter(r.status for r in answers)
        self.assertEqual(statuses, {201: 1, 409: 49}, statuses)
        winner = next(r.json() for r in answers if r.status == 201)
        self.assertEqual(winner["status"], "HELD")
        for r in answers:
            if r.status == 409:
                self.assert_problem(r, 409, "COUPON_HELD")
        # the same order again: 200, and the hold is not extended
        again = hold(cid, uid, winner["orderId"], ttl=900)
        self.assertEqual(again.status, 200, again)
        self.assertEqual(again.json()["holdExpiresAt"], winner["holdExpiresAt"])
        self.assert_problem(redeem(cid, uid, "someone-else"), 409, "COUPON_HELD")
        evs = settled_events(cid, 1)
        self.assertEqual([(e["type"], e["orderId"]) for e in evs],
                         [("coupon.held", winner["orderId"])])
        self.assertEqual(state(cid, uid), (False, None, winner["orderId"], 1))

    def test_50_concurrent_redemptions_right_after_the_claim(self):
        cid = harness.create_coupon()
        uid = new_user()
        issue(cid, uid)
        answers = concurrently(50, lambda i: redeem(cid, uid, "order-%d" % i))
        statuses = collections.Counter(r.status for r in answers)
        self.assertEqual(statuses, {201: 1, 409: 49}, statuses)
        winner = next(r.json() for r in answers if r.status == 201)
        evs = settled_events(cid, 1)
        self.assertEqual([(e["type"], e["orderId"], e["version"]) for e in evs],
                         [("coupon.redeemed", winner["orderId"], 1)])
        self.assertEqual(state(cid, uid), (True, winner["orderId"], None, 1))

    def test_hold_confirm_cancel_redeem_by_another_order_in_order(self):
        cid = harness.create_coupon()
        uid = new_user()
        issue(cid, uid)
        self.assertEqual(hold(cid, uid, "o-1").status, 201)
        r = redeem(cid, uid, "o-1")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["status"], "REDEEMED")
        self.assert_problem(cancel(cid, uid, "o-2"), 409, "REDEMPTION_ORDER_MISMATCH")
        self.assertEqual(cancel(cid, uid, "o-1").status, 204)
        self.assertEqual(cancel(cid, uid, "o-1").status, 204)  # idempotent
        self.assertEqual(redeem(cid, uid, "o-2").status, 201)
        self.assertEqual(redeem(cid, uid, "o-2").status, 200)
        evs = settled_events(cid, 4)
        self.assertEqual([(e["type"], e["orderId"], e["version"]) for e in evs],
                         [("coupon.held", "o-1", 1), ("coupon.redeemed", "o-1", 2),
                          ("coupon.redemption_cancelled", "o-1", 3),
                          ("coupon.redeemed", "o-2", 4)])
        self.assertEqual(state(cid, uid), (True, "o-2", None, 4))

    def test_a_hold_lapses_by_itself_and_another_order_wins(self):
        cid = harness.create_coupon()
        uid, other = new_user(), new_user()
        issue(cid, uid)
        issue(cid, other)
        self.assertEqual(hold(cid, uid, "slow-payer", ttl=1).status, 201)
        self.assertEqual(hold(cid, other, "nobody-comes", ttl=1).status, 201)
        time.sleep(1.2)
        # No request touches `other`: the applier's sweep lets its hold lapse.
        r = hold(cid, uid, "fast-payer")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(redeem(cid, uid, "fast-payer").status, 201)
        self.assert_problem(redeem(cid, uid, "slow-payer"), 409, "COUPON_ALREADY_REDEEMED")
        evs = settled_events(cid, 6)
        mine = [(e["type"], e["orderId"], e.get("reason")) for e in evs if e["userId"] == uid]
        self.assertEqual(mine, [("coupon.held", "slow-payer", None),
                                ("coupon.hold_released", "slow-payer", "lapsed"),
                                ("coupon.held", "fast-payer", None),
                                ("coupon.redeemed", "fast-payer", None)])
        theirs = [(e["type"], e.get("reason")) for e in evs if e["userId"] == other]
        self.assertEqual(theirs, [("coupon.held", None), ("coupon.hold_released", "lapsed")])
        self.assertEqual(state(cid, other), (False, None, None, 2))

    def test_release_frees_and_is_idempotent(self):
        cid = harness.create_coupon()
        uid = new_user()
        issue(cid, uid)
        self.assertEqual(hold(cid, uid, "a").status, 201)
        self.assert_problem(release(cid, uid, "b"), 409, "REDEMPTION_ORDER_MISMATCH")
        self.assertEqual(release(cid, uid, "a").status, 204)
        self.assertEqual(release(cid, uid, "a").status, 204)
        self.assertEqual(hold(cid, uid, "b").status, 201)
        evs = settled_events(cid, 3)
        self.assertEqual([(e["type"], e["orderId"], e.get("reason")) for e in evs],
                         [("coupon.held", "a", None), ("coupon.hold_released", "a", "released"),
                          ("coupon.held", "b", None)])

    def test_hold_bodies_and_codes(self):
        cid = harness.create_coupon()
        uid = new_user()
        body = issue(cid, uid)
        for bad in ({"orderId": "x"}, {"orderId": "x", "ttlSeconds": 0},
                    {"orderId": "x", "ttlSeconds": 901}, {"orderId": "x", "ttlSeconds": "60"},
                    {"orderId": "x y", "ttlSeconds": 60}, {"orderId": "x", "ttlSeconds": 60,
                                                           "extra": 1}):
            self.assert_problem(harness.http("POST", path(cid, uid, "hold"), bad), 400,
                                "INVALID_REQUEST")
        self.assert_problem(hold(cid, new_user(), "x"), 404, "COUPON_ISSUE_NOT_FOUND")
        self.assertEqual(rpending(cid), 0)
        harness.wait_until(lambda: state(cid, uid) is not None, timeout=30,
                           message="issuance persisted (codes are found in MariaDB)")
        r = harness.http("POST", "/api/redemptions/hold",
                         {"code": body["code"], "orderId": "by-code", "ttlSeconds": 30})
        self.assertEqual(r.status, 201, r)
        self.assertEqual((r.json()["couponId"], r.json()["userId"]), (cid, uid))
        # Validation sees the hold (Redis' checkout state), and writes nothing.
        r = harness.http("POST", "/api/redemptions/validate",
                         {"code": body["code"], "orderAmount": "20.00"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json()["valid"], r.json()["reason"]), (False, "COUPON_HELD"))
        r = harness.http("POST", "/api/redemptions", {"code": body["code"], "orderId": "by-code"})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(settled_events(cid, 2)[-1]["type"], "coupon.redeemed")

    def test_consumer_stopped_then_sigkilled_loses_no_change(self):
        cid = harness.create_coupon()
        users = [new_user() for _ in range(40)]
        self.stopped_consumer = True
        harness.consumers_stop()
        for i, uid in enumerate(users):
            issue(cid, uid)
            self.assertEqual(redeem(cid, uid, "offline-%d" % i).status, 201)
        for uid in users[:10]:
            self.assertEqual(cancel(cid, uid, "offline-%d" % users.index(uid)).status, 204)
        self.assertEqual(rpending(cid), 50)
        time.sleep(2)
        self.assertEqual(harness.sql("SELECT COUNT(*) FROM coupon_issue WHERE coupon_id = %d"
                                     % cid)[0][0], "0")
        p = harness.consumer_start()
        harness.wait_until(lambda: harness.sql("SELECT COUNT(*) FROM coupon_issue WHERE "
                                               "coupon_id = %d AND checkout_version > 0" % cid)
                           [0][0] != "0", timeout=60, message="the applier started")
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
        harness.consumers_stop()
        harness.consumer_start()
        harness.wait_until(harness.consumer_holds_all_partitions, timeout=60, interval=0.5,
                           message="the restarted consumer holds every partition")
        evs = settled_events(cid, 50)
        self.assertEqual(harness.sql("SELECT COUNT(*), COUNT(used_at), SUM(checkout_version) "
                                     "FROM coupon_issue WHERE coupon_id = %d" % cid)[0],
                         ("40", "30", "50"))
        by_version = collections.Counter((e["userId"], e["version"]) for e in evs)
        self.assertEqual(len(by_version), 50)  # every change once by (issuance, version)
        self.assertEqual(set(by_version.values()), {1})

    def test_mariadb_down_10s_checkout_goes_on_and_lands_after(self):
        cid = harness.create_coupon()
        users = [new_user() for _ in range(30)]
        for uid in users:
            issue(cid, uid)
        # The campaign's terms come from its document: cached in L2 (Redis) by a read.
        self.assertEqual(harness.http("GET", "/api/coupons/%d" % cid).status, 200)
        harness.server_stop("mariadb")
        try:
            t0 = time.monotonic()
            answers = [redeem(cid, uid, "db-down-%d" % uid) for uid in users]
            self.assertEqual(collections.Counter(r.status for r in answers), {201: 30})
            time.sleep(max(0.0, 10 - (time.monotonic() - t0)))
        finally:
            harness.server_start("mariadb")
        evs = settled_events(cid, 30, timeout=90)
        self.assertEqual(harness.sql("SELECT COUNT(used_at) FROM coupon_issue WHERE coupon_id = %d"
                                     % cid)[0][0], "30")
        self.assertEqual(len(evs), 30)


if __name__ == "__main__":
    unittest.main()
