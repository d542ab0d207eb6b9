"""A coupon's whole life (issue 13) on the real stack: redeem exactly once under
concurrency, idempotent replays, cancel and redeem again, expiry after issuance, the code
of every issuance and redemption by code, redemption of an issuance not yet persisted
(decided in Redis since issue 26, in MariaDB once the consumer has both), bad bodies, and
the transactional outbox: every coupon.redemption event exactly once by event id in
Kafka, also when the relay is SIGKILLed between publishing and deleting.

Counts are exact and checked at the source: MariaDB rows (used_at, redeemed_order_id,
event_outbox) and the coupon.redemption topic read with kcat."""

import collections
import concurrent.futures
import datetime
import hashlib
import hmac
import json
import os
import signal
import struct
import threading
import time
import unittest

import harness

_user = [int(time.time() * 1000) % 1000000 * 1000 + 300000000]
TOPIC = "coupon.redemption"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_user():
    _user[0] += 1
    return _user[0]


def expected_code(coupon_id, user_id, sequence):
    """The code as common/issuecode.h defines it, computed here independently."""
    mac = hmac.new(harness.env["CODE_SECRET"].encode(),
                   b"cpn-code-v1" + struct.pack(">qqq", coupon_id, user_id, sequence),
                   hashlib.sha256).digest()
    top = int.from_bytes(mac[:8], "big") >> 4
    return "".join(CROCKFORD[(top >> (55 - 5 * i)) & 31] for i in range(12))


def path(cid, uid):
    return "/api/coupons/%d/issues/%d/redemption" % (cid, uid)


def redeem(cid, uid, order, server="nginx"):
    return harness.http("POST", path(cid, uid), {"orderId": order}, server=server)


def cancel(cid, uid, order):
    return harness.http("DELETE", path(cid, uid), {"orderId": order})


def issue(cid, uid):
    r = harness.http("POST", "/api/coupons/%d/issue" % cid, {"userId": uid})
    assert r.status == 201, r
    return r.json()


def row(cid, uid):
    rows = harness.sql("SELECT used_at, redeemed_order_id, code, usable_until FROM coupon_issue "
                       "WHERE coupon_id = %d AND user_id = %d" % (cid, uid))
    return rows[0] if rows else None


def wait_persisted(cid, uid):
    harness.wait_until(lambda: row(cid, uid) is not None, timeout=30,
                       message="issuance %d/%d persisted" % (cid, uid))


def checkout_applied(cid):
    """Waits until the consumer's applier moved the coupon's checkout changes (decided
    in Redis by lua/redeem.lua) into MariaDB."""
    harness.wait_until(lambda: int(harness.redis("HLEN", "coupon:{%d}:rpending" % cid)) == 0,
                       timeout=30, message="checkout changes of coupon %d applied" % cid)


def outbox_rows(cid):
    return [int(i) for (i,) in harness.sql(
        "SELECT id FROM event_outbox WHERE topic = '%s' AND msg_key = '%d' ORDER BY id"
        % (TOPIC, cid))]


def events(cid):
    """coupon.redemption messages of the coupon (key = coupon id), in partition order."""
    out = []
    for m in harness.kafka_messages(TOPIC):
        if m["key"] == str(cid):
            v = json.loads(m["value"])
            v["_partition"], v["_offset"] = m["partition"], m["offset"]
            v["_header"] = m["headers"].get("event-id")
            out.append(v)
    return out


def settled_events(cid, n):
    """Waits until the relay published the coupon's outbox rows and n events are in
    Kafka, then a moment more (a duplicate would show); returns them."""
    harness.wait_until(lambda: not outbox_rows(cid), timeout=30,
                       message="outbox of coupon %d relayed" % cid)
    harness.wait_until(lambda: len(events(cid)) >= n, timeout=30,
                       message="%d events of coupon %d in Kafka" % (n, cid))
    time.sleep(1)
    return events(cid)


def issued_and_persisted(**coupon):
    cid = harness.create_coupon(**coupon)
    uid = new_user()
    body = issue(cid, uid)
    wait_persisted(cid, uid)
    return cid, uid, body


def concurrently(n, fn):
    """fn(i) from n threads released together; returns the results in order."""
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait()
        return fn(i)
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def metric(name_and_labels):
    for line in harness.http("GET", "/metrics").text.splitlines():
        if line.startswith(name_and_labels + " "):
            return float(line.split()[-1])
    return 0.0


class Redemption(unittest.TestCase):

    stopped_consumer = False

    def tearDown(self):
        if self.stopped_consumer:
            # Leave exactly one healthy consumer for the suites after this one.
            harness.consumers_stop()
            harness.consumer_start()
            harness.wait_until(harness.consumer_holds_all_partitions, timeout=60,
                               interval=0.5, message="the consumer holds every partition")

    def assert_problem(self, r, status, code):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.headers.get("content-type"), "application/problem+json", r)
        self.assertEqual(r.json()["code"], code, r)

    def test_50_concurrent_redemptions_with_50_orders_redeem_exactly_once(self):
        cid, uid, _ = issued_and_persisted()
        before = metric('coupon_redemptions_total{outcome="redeemed"}')
        answers = concurrently(50, lambda i: redeem(cid, uid, "order-%d" % i))
        statuses = collections.Counter(r.status for r in answers)
        self.assertEqual(statuses, {201: 1, 409: 49}, statuses)
        winner = next(r.json() for r in answers if r.status == 201)
        for r in answers:
            if r.status == 409:
                self.assert_problem(r, 409, "COUPON_ALREADY_REDEEMED")
                self.assertNotIn(winner["orderId"], r.text)  # names nothing of the winner
        checkout_applied(cid)
        used = harness.sql("SELECT COUNT(used_at), MAX(redeemed_order_id) FROM coupon_issue "
                           "WHERE coupon_id = %d" % cid)[0]
        self.assertEqual(used, ("1", winner["orderId"]))
        self.assertEqual(winner["discount"], {"type": "PERCENTAGE", "value": 10})
        evs = settled_events(cid, 1)
        self.assertEqual(len(evs), 1, evs)
        self.assertEqual((evs[0]["type"], evs[0]["orderId"], evs[0]["userId"]),
                         ("coupon.redeemed", winner["orderId"], uid))
        self.assertEqual(str(evs[0]["eventId"]), evs[0]["_header"])
        stats = harness.http("GET", "/api/admin/coupons/%d/stats" % cid,
                             headers=harness.admin_headers()).json()
        self.assertEqual((stats["persisted"], stats["redeemed"]), (1, 1))
        self.assertEqual(metric('coupon_redemptions_total{outcome="redeemed"}') - before, 1)

    def test_the_same_order_from_20_connections_is_one_redemption(self):
        cid, uid, _ = issued_and_persisted()
        answers = concurrently(20, lambda i: redeem(cid, uid, "checkout-77"))
        statuses = collections.Counter(r.status for r in answers)
        self.assertEqual(statuses, {201: 1, 200: 19}, statuses)
        bodies = {json.dumps(r.json(), sort_keys=True) for r in answers}
        self.assertEqual(len(bodies), 1, bodies)  # the replays answer the same redemption
        checkout_applied(cid)
        self.assertEqual(harness.sql("SELECT COUNT(used_at) FROM coupon_issue WHERE "
                                     "coupon_id = %d" % cid)[0][0], "1")
        self.assertEqual(len(settled_events(cid, 1)), 1)

    def test_redeem_cancel_redeem_exact_states_and_three_events_in_order(self):
        cid, uid, _ = issued_and_persisted()
        status = lambda: harness.http("GET", "/api/coupons/%d/issues/%d" % (cid, uid)).json()
        self.assertEqual(status()["status"], "PERSISTED")
        r = redeem(cid, uid, "o-1")
        self.assertEqual(r.status, 201, r)
        first = r.json()
        checkout_applied(cid)
        s = status()
        self.assertEqual((s["status"], s["orderId"], s["redeemedAt"]),
                         ("REDEEMED", "o-1", first["redeemedAt"]))
        self.assert_problem(cancel(cid, uid, "o-2"), 409, "REDEMPTION_ORDER_MISMATCH")
        self.assertEqual(cancel(cid, uid, "o-1").status, 204)
        checkout_applied(cid)
        self.assertEqual(row(cid, uid)[:2], (None, None))
        s = status()
        self.assertEqual((s["status"], s["orderId"], s["redeemedAt"]), ("PERSISTED", None, None))
        self.assertEqual(cancel(cid, uid, "o-1").status, 204)  # idempotent: nothing written
        r = redeem(cid, uid, "o-2")
        self.assertEqual(r.status, 201, r)
        checkout_applied(cid)
        self.assertEqual(row(cid, uid)[1], "o-2")
        self.assertEqual(redeem(cid, uid, "o-2").status, 200)
        self.assert_problem(redeem(cid, uid, "o-1"), 409, "COUPON_ALREADY_REDEEMED")
        listed = [i for i in harness.http("GET", "/api/users/%d/coupons" % uid).json()["items"]
                  if i["couponId"] == cid]
        self.assertEqual((listed[0]["status"], listed[0]["orderId"]), ("REDEEMED", "o-2"))
        evs = settled_events(cid, 3)
        self.assertEqual([(e["type"], e["orderId"]) for e in evs],
                         [("coupon.redeemed", "o-1"), ("coupon.redemption_cancelled", "o-1"),
                          ("coupon.redeemed", "o-2")])
        self.assertEqual(len({e["_partition"] for e in evs}), 1)  # key = coupon: one partition
        ids = [e["eventId"] for e in evs]
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(len(set(ids)), 3)

    def test_relay_sigkilled_between_publish_and_delete_loses_and_repeats_nothing_by_id(self):
        cid = harness.create_coupon()
        users = [new_user() for _ in range(30)]
        for uid in users:
            issue(cid, uid)
        for uid in users:
            wait_persisted(cid, uid)
        harness.wait_until(lambda: harness.sql("SELECT COUNT(*) FROM event_outbox")[0][0] == "0",
                           timeout=30, message="outbox empty before the relay is stopped")
        for uid in users:
            self.assertEqual(redeem(cid, uid, "kill-%d" % uid).status, 201)
        checkout_applied(cid)
        settled_events(cid, 30)
        self.stopped_consumer = True
        harness.consumers_stop()
        # Rows committed while no relay runs (between commit and publish): the applier
        # writes exactly such rows; here 30 more are written as it would, so that the
        # relay meets them all at once when it starts.
        for uid in users:
            harness.sql("INSERT INTO event_outbox (topic, msg_key, payload) VALUES ('%s', '%d', "
                        "'{\"type\":\"coupon.redemption_cancelled\",\"couponId\":%d,"
                        "\"userId\":%d,\"sequence\":1,\"orderId\":\"kill-%d\","
                        "\"cancelledAt\":\"2026-12-08T00:00:00.000Z\"}')"
                        % (TOPIC, cid, cid, uid, uid))
        expected = outbox_rows(cid)
        self.assertEqual(len(expected), 30)
        self.assertEqual([e for e in events(cid) if e["type"] != "coupon.redeemed"], [])
        # The relay publishes one batch of 10, has the broker's acks, and SIGKILLs its
        # process before deleting them (COUPON_TEST_RELAY_KILL_AFTER_BATCHES).
        p = harness.consumer_start({"COUPON_TEST_RELAY_KILL_AFTER_BATCHES": "1",
                                    "COUPON_RELAY_BATCH_MAX": "10"})
        self.assertEqual(p.wait(timeout=60), -signal.SIGKILL)
        published = {e["eventId"] for e in events(cid) if e["type"] != "coupon.redeemed"}
        self.assertEqual(published, set(expected[:10]))
        self.assertEqual(outbox_rows(cid), expected)  # acknowledged but not deleted
        harness.consumers_stop()
        harness.consumer_start()
        evs = [e for e in settled_events(cid, 70) if e["type"] != "coupon.redeemed"]
        # The killed member held partitions until the broker evicted it (session
        # timeout): later suites need the whole topic consumed again.
        harness.wait_until(harness.consumer_holds_all_partitions, timeout=60, interval=0.5,
                           message="the restarted consumer holds every partition")
        by_id = collections.Counter(e["eventId"] for e in evs)
        self.assertEqual(set(by_id), set(expected))  # none missing, none foreign
        self.assertEqual(sorted(k for k, v in by_id.items() if v > 1), expected[:10])
        self.assertEqual(len(evs), 40)  # the 10 published twice, at least once
        once = {e["eventId"]: e for e in evs}
        self.assertEqual({once[i]["userId"] for i in expected}, set(users))
        print("\n  killed after 10 of 30 acknowledged; 10 re-published, %d distinct ids"
              % len(by_id))

    def test_expired_issuance_is_410_and_nothing_is_written(self):
        now = datetime.datetime.now(datetime.timezone.utc)
        until = now + datetime.timedelta(seconds=4)
        cid, uid, _ = issued_and_persisted(usableUntil=until)
        s = harness.http("GET", "/api/coupons/%d/issues/%d" % (cid, uid)).json()
        self.assertEqual(s["usableUntil"], until.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
        self.assertEqual(s["status"], "PERSISTED")
        time.sleep(max(0.0, (until - datetime.datetime.now(datetime.timezone.utc))
                       .total_seconds()) + 0.3)
        self.assert_problem(redeem(cid, uid, "late-1"), 410, "COUPON_EXPIRED")
        self.assertEqual(row(cid, uid)[:2], (None, None))
        self.assertEqual(outbox_rows(cid), [])
        self.assertEqual(harness.http("GET", "/api/coupons/%d/issues/%d" % (cid, uid))
                         .json()["status"], "EXPIRED")
        time.sleep(1)
        self.assertEqual(events(cid), [])

    def test_usable_days_give_each_issuance_its_own_deadline(self):
        r = harness.http("GET", "/api/coupons/%d" % harness.create_coupon(usableDays=2))
        self.assertEqual(r.json()["usableDays"], 2)
        cid, uid, body = issued_and_persisted(usableDays=2)
        issued = datetime.datetime.strptime(body["issuedAt"], "%Y-%m-%dT%H:%M:%S.%fZ")
        self.assertEqual(row(cid, uid)[3], (issued + datetime.timedelta(days=2))
                         .strftime("%Y-%m-%d %H:%M:%S.%f")[:-3])
        self.assertEqual(redeem(cid, uid, "in-time").status, 201)

    def test_code_of_every_issuance_and_redemption_by_code(self):
        cid, uid, body = issued_and_persisted()
        code = body["code"]
        self.assertEqual(code, expected_code(cid, uid, body["sequence"]))
        self.assertEqual(row(cid, uid)[2], code)  # the consumer stored the same code
        s = harness.http("GET", "/api/coupons/%d/issues/%d" % (cid, uid)).json()
        self.assertEqual(s["code"], code)
        listed = [i for i in harness.http("GET", "/api/users/%d/coupons" % uid).json()["items"]
                  if i["couponId"] == cid]
        self.assertEqual(listed[0]["code"], code)
        wrong = ("0" if code[0] != "0" else "1") + code[1:]
        r = harness.http("POST", "/api/redemptions", {"code": wrong, "orderId": "c-1"})
        self.assert_problem(r, 404, "COUPON_CODE_NOT_FOUND")
        self.assertNotIn(wrong, r.text)
        typed = "-".join(code[i:i + 4] for i in (0, 4, 8)).lower()
        r = harness.http("POST", "/api/redemptions", {"code": typed, "orderId": "c-1"},
                         server="lighttpd")
        self.assertEqual(r.status, 201, r)
        self.assertEqual((r.json()["couponId"], r.json()["userId"], r.json()["code"]),
                         (cid, uid, code))
        r = harness.http("POST", "/api/redemptions", {"code": code, "orderId": "c-1"})
        self.assertEqual(r.status, 200, r)
        r = harness.http("POST", "/api/redemptions", {"code": code, "orderId": "c-2"})
        self.assert_problem(r, 409, "COUPON_ALREADY_REDEEMED")
        self.assertEqual(harness.http("POST", "/api/redemptions",
                                      {"code": "ZZZZZZZZZZZZ", "orderId": "c-1"}).status, 404)

    def test_issued_but_not_yet_persisted_redeems_at_once_and_lands_later(self):
        cid = harness.create_coupon()
        uid = new_user()
        self.stopped_consumer = True
        harness.consumers_stop()
        body = issue(cid, uid)
        s = harness.http("GET", "/api/coupons/%d/issues/%d" % (cid, uid)).json()
        self.assertEqual((s["status"], s["code"], s["redeemedAt"]), ("ISSUED", body["code"], None))
        # Redis has the claim from its 201 on, and decides the redemption (issue 26).
        r = redeem(cid, uid, "early-1")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["code"], body["code"])
        self.assertEqual(redeem(cid, uid, "early-1").status, 200)
        self.assertEqual(cancel(cid, uid, "early-1").status, 204)
        self.assertEqual(redeem(cid, uid, "early-2").status, 201)
        # By code, the issuance is found once MariaDB has its row.
        self.assert_problem(harness.http("POST", "/api/redemptions",
                                         {"code": body["code"], "orderId": "early-2"}),
                            404, "COUPON_CODE_NOT_FOUND")
        self.assertIsNone(row(cid, uid))
        harness.consumer_start()
        wait_persisted(cid, uid)
        checkout_applied(cid)
        self.assertEqual(row(cid, uid)[1], "early-2")
        self.assertEqual([(e["type"], e["orderId"]) for e in settled_events(cid, 3)],
                         [("coupon.redeemed", "early-1"), ("coupon.redemption_cancelled", "early-1"),
                          ("coupon.redeemed", "early-2")])
        r = harness.http("POST", "/api/redemptions", {"code": body["code"], "orderId": "early-2"})
        self.assertEqual(r.status, 200, r)

    def test_not_issued_is_404(self):
        cid = harness.create_coupon()
        self.assert_problem(redeem(cid, new_user(), "o-1"), 404, "COUPON_ISSUE_NOT_FOUND")
        self.assert_problem(cancel(cid, new_user(), "o-1"), 404, "COUPON_ISSUE_NOT_FOUND")
        self.assert_problem(redeem(9123456789012, 1, "o-1"), 404, "COUPON_ISSUE_NOT_FOUND")

    def test_bad_bodies_are_400_problems_on_both_servers(self):
        cid, uid, _ = issued_and_persisted()
        bad = ["", "{", "[]", "{}", '{"orderId":""}', '{"orderId":7}', '{"orderId":null}',
               '{"orderId":"a b"}', '{"orderId":"%s"}' % ("x" * 65), '{"orderId":"\\u00e9"}',
               '{"orderId":"o","x":1}', '{"orderId":"o","orderId":"p"}', '{"orderId":"o"} x']
        bad_code = ['{"orderId":"o"}', '{"code":"0123456789AB"}',
                    '{"code":"0123456789A","orderId":"o"}', '{"code":"UUUUUUUUUUUU","orderId":"o"}',
                    '{"code":1,"orderId":"o"}', '{"code":"0123456789AB","orderId":"o o"}']
        hdr = {"Content-Type": "application/json"}
        for server in ("nginx", "lighttpd"):
            for b in bad:
                for method in ("POST", "DELETE"):
                    r = harness.http(method, path(cid, uid), b, hdr, server=server)
                    self.assert_problem(r, 400, "INVALID_REQUEST")
            for b in bad_code:
                r = harness.http("POST", "/api/redemptions", b, hdr, server=server)
                self.assert_problem(r, 400, "INVALID_REQUEST")
            r = harness.http("POST", path(cid, uid), '{"orderId":"o"}',
                             {"Content-Type": "text/plain"}, server=server)
            self.assert_problem(r, 415, "UNSUPPORTED_MEDIA_TYPE")
            r = harness.http("GET", path(cid, uid), server=server)
            self.assert_problem(r, 405, "METHOD_NOT_ALLOWED")
            self.assertEqual(r.headers.get("allow"), "POST, DELETE")
        self.assertEqual(row(cid, uid)[:2], (None, None))
        self.assertEqual(outbox_rows(cid), [])


if __name__ == "__main__":
    unittest.main()
