"""Validation and exact money (issue 26) on the real stack: POST /api/redemptions/validate
through the auth master (auth_mode = jwt, nginx and lighttpd) as a table of requests with
exact expected answers - half-even rounding, caps, minimum, exponents 0/2/3, expired,
redeemed, not issued, claimed but not yet persisted, codes (own, another user's, unknown,
a checkout service's, the admin's), bad inputs - then the proof that validation wrote
nothing (coupon_issue rows, the outbox's auto-increment, Redis' claims), the validation
counters of /metrics, the campaign fields on create and read, and discountAmount on the
redemption answers.

Every expected amount is written out, never computed here (the half-even ties were
checked independently with Python's decimal module)."""

import datetime
import json
import time
import unittest

import harness

NOW = datetime.datetime.now(datetime.timezone.utc)
SERVERS = ("auth-nginx", "auth-lighttpd")
_tokens = {}


def tok(user, **opts):
    key = (user, tuple(sorted(opts.items())))
    if key not in _tokens:
        _tokens[key] = harness.token(user, **opts)
    return _tokens[key]


def validate(body, headers, server="auth-nginx"):
    return harness.http("POST", "/api/redemptions/validate", body=body, headers=headers,
                        server=server)


def claim(cid, uid):
    """A claim through the stack's auth_mode = none master (the body names the user)."""
    r = harness.http("POST", "/api/coupons/%d/issue" % cid, {"userId": uid})
    assert r.status == 201, r
    return r.json()["code"]


def persisted(cid, uid):
    harness.wait_until(lambda: harness.sql(
        "SELECT COUNT(*) FROM coupon_issue WHERE coupon_id=%d AND user_id=%d"
        % (cid, uid)) == [("1",)], timeout=30, message="issuance %d/%d persisted" % (cid, uid))


def metric(name, server="auth-nginx"):
    for line in harness.http("GET", "/metrics", server=server).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def outbox_next_id():
    return harness.sql("SELECT AUTO_INCREMENT FROM information_schema.TABLES "
                       "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'event_outbox'")[0][0]


class Validate(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        c = cls.cid = {}
        c["pct10"] = harness.create_coupon(discountValue=10)
        c["pct20cap"] = harness.create_coupon(discountValue=20, maxDiscountAmount="5.00")
        c["amt10min"] = harness.create_coupon(discountType="AMOUNT", discountValue=10,
                                              minOrderAmount="50.00", currency="EUR")
        c["jpy15"] = harness.create_coupon(discountValue=15, currency="JPY")
        c["jpy500"] = harness.create_coupon(discountType="AMOUNT", discountValue=500,
                                            currency="JPY", minOrderAmount="1000")
        c["bhd1.5"] = harness.create_coupon(discountType="AMOUNT", discountValue=1.5,
                                            currency="BHD")
        c["bhd12.5"] = harness.create_coupon(discountValue=12.5, currency="BHD",
                                             maxDiscountAmount="0.500")
        c["expired"] = harness.create_coupon(startAt=NOW - datetime.timedelta(minutes=5),
                                             usableUntil=NOW - datetime.timedelta(minutes=1))
        c["redeemed"] = harness.create_coupon()
        c["unclaimed"] = harness.create_coupon()
        c["redis_only"] = harness.create_coupon()
        c["redis_only_expired"] = harness.create_coupon(
            startAt=NOW - datetime.timedelta(minutes=5),
            usableUntil=NOW - datetime.timedelta(minutes=1))
        cls.u1, cls.u2 = harness.new_user(), harness.new_user()
        cls.codes = {}
        for name in ("pct10", "pct20cap", "amt10min", "jpy15", "jpy500", "bhd1.5", "bhd12.5",
                     "expired", "redeemed"):
            cls.codes[name] = claim(c[name], cls.u1)
        cls.code_u2 = claim(c["pct10"], cls.u2)
        for name in cls.codes:
            persisted(c[name], cls.u1)
        persisted(c["pct10"], cls.u2)
        r = harness.http("POST", "/api/coupons/%d/issues/%d/redemption"
                         % (c["redeemed"], cls.u1), {"orderId": "done-1"})
        assert r.status == 201, r
        # Claimed moments ago and not yet persisted: Redis holds the claim, MariaDB has no
        # row (the claim is written the way lua/issue.lua writes it; no event exists, so
        # the consumer never persists it).
        for name in ("redis_only", "redis_only_expired"):
            harness.redis("HSET", "coupon:{%d}:users" % c[name], str(cls.u1),
                          "1:%d" % int(time.time() * 1000))

    def row(self, body, user, want, server="auth-nginx", headers=None):
        r = validate(body, headers or harness.bearer(tok(user)), server=server)
        if isinstance(want, tuple):  # a problem: (status, code)
            self.assertEqual((r.status, r.headers.get("content-type")),
                             (want[0], "application/problem+json"), (body, r))
            self.assertEqual(r.json()["code"], want[1], (body, r))
            return r
        self.assertEqual(r.status, 200, (body, r))
        got = r.json()
        self.assertEqual({k: got[k] for k in ("valid", "discountAmount", "reason")}, want,
                         (body, r))
        return r

    def test_validation_table_exact_answers_and_nothing_written(self):
        c, u1, u2 = self.cid, self.u1, self.u2
        admin = harness.admin_headers()
        svc = harness.bearer(tok(900000002, scope="coupon:checkout"))

        def ok(amount):
            return {"valid": True, "discountAmount": amount, "reason": None}

        def no(reason, zero="0.00"):
            return {"valid": False, "discountAmount": zero, "reason": reason}

        table = [
            # rounding (10 %: ties go to the even cent)
            ({"couponId": c["pct10"], "orderAmount": "100.00"}, u1, ok("10.00")),
            ({"couponId": c["pct10"], "orderAmount": "12.25"}, u1, ok("1.22")),
            ({"couponId": c["pct10"], "orderAmount": "12.35"}, u1, ok("1.24")),
            ({"couponId": c["pct10"], "orderAmount": "12.34"}, u1, ok("1.23")),
            ({"couponId": c["pct10"], "orderAmount": "12.5"}, u1, ok("1.25")),
            ({"couponId": c["pct10"], "orderAmount": "0"}, u1, ok("0.00")),
            ({"couponId": c["pct10"], "orderAmount": "999999999999.99"}, u1,
             ok("100000000000.00")),
            # the cap
            ({"couponId": c["pct20cap"], "orderAmount": "100.00"}, u1, ok("5.00")),
            ({"couponId": c["pct20cap"], "orderAmount": "24.99"}, u1, ok("5.00")),
            ({"couponId": c["pct20cap"], "orderAmount": "20.00"}, u1, ok("4.00")),
            # the minimum; AMOUNT
            ({"couponId": c["amt10min"], "orderAmount": "49.99"}, u1,
             no("ORDER_BELOW_MINIMUM")),
            ({"couponId": c["amt10min"], "orderAmount": "50.00"}, u1, ok("10.00")),
            ({"couponId": c["amt10min"], "orderAmount": "60"}, u1, ok("10.00")),
            # exponent 0
            ({"couponId": c["jpy15"], "orderAmount": "1250"}, u1, ok("188")),
            ({"couponId": c["jpy15"], "orderAmount": "1270"}, u1, ok("190")),
            ({"couponId": c["jpy500"], "orderAmount": "999"}, u1,
             no("ORDER_BELOW_MINIMUM", "0")),
            ({"couponId": c["jpy500"], "orderAmount": "1000"}, u1, ok("500")),
            # exponent 3; AMOUNT above the order
            ({"couponId": c["bhd1.5"], "orderAmount": "1.250"}, u1, ok("1.250")),
            ({"couponId": c["bhd1.5"], "orderAmount": "2"}, u1, ok("1.500")),
            ({"couponId": c["bhd12.5"], "orderAmount": "1.005"}, u1, ok("0.126")),
            ({"couponId": c["bhd12.5"], "orderAmount": "10.000"}, u1, ok("0.500")),
            # the issuance's state
            ({"couponId": c["expired"], "orderAmount": "100.00"}, u1, no("COUPON_EXPIRED")),
            ({"couponId": c["redeemed"], "orderAmount": "100.00"}, u1,
             no("COUPON_ALREADY_REDEEMED")),
            ({"couponId": c["unclaimed"], "orderAmount": "100.00"}, u1,
             no("COUPON_NOT_ISSUED")),
            ({"couponId": c["pct20cap"], "orderAmount": "100.00"}, u2,
             no("COUPON_NOT_ISSUED")),
            ({"couponId": c["redis_only"], "orderAmount": "100.00"}, u1, ok("10.00")),
            ({"couponId": c["redis_only_expired"], "orderAmount": "100.00"}, u1,
             no("COUPON_EXPIRED")),
            ({"couponId": 9123456789012, "orderAmount": "1.00"}, u1,
             (404, "COUPON_NOT_EXIST")),
            # codes: own, typed in groups, another user's, unknown, a service's, the admin's
            ({"code": self.codes["pct10"], "orderAmount": "12.35"}, u1, ok("1.24")),
            ({"code": "-".join(self.codes["jpy15"][i:i + 4] for i in (0, 4, 8)).lower(),
              "orderAmount": "1250"}, u1, ok("188")),
            ({"code": self.code_u2, "orderAmount": "10.00"}, u1,
             (404, "COUPON_CODE_NOT_FOUND")),
            ({"code": "ZZZZZZZZZZZZ", "orderAmount": "10.00"}, u1,
             (404, "COUPON_CODE_NOT_FOUND")),
            ({"code": self.codes["expired"], "orderAmount": "10.00"}, u1,
             no("COUPON_EXPIRED")),
            ({"code": self.codes["redeemed"], "orderAmount": "10.00"}, u1,
             no("COUPON_ALREADY_REDEEMED")),
            # bad input: 400 with a stable code, 403/415 for the caller and the media type
            ({"code": self.codes["pct10"], "couponId": c["pct10"], "orderAmount": "1.00"}, u1,
             (400, "INVALID_REQUEST")),
            ({"orderAmount": "1.00"}, u1, (400, "INVALID_REQUEST")),
            ({"couponId": c["pct10"]}, u1, (400, "INVALID_AMOUNT")),
            ({"couponId": c["pct10"], "orderAmount": "-1.00"}, u1, (400, "INVALID_AMOUNT")),
            ({"couponId": c["pct10"], "orderAmount": "12.345"}, u1, (400, "INVALID_AMOUNT")),
            ({"couponId": c["pct10"], "orderAmount": "1000000000000"}, u1,
             (400, "INVALID_AMOUNT")),
            ({"couponId": c["pct10"], "orderAmount": 12.5}, u1, (400, "INVALID_AMOUNT")),
            ({"couponId": c["pct10"], "orderAmount": "1e3"}, u1, (400, "INVALID_AMOUNT")),
            ({"couponId": c["jpy15"], "orderAmount": "1250.0"}, u1, (400, "INVALID_AMOUNT")),
            ({"couponId": c["bhd1.5"], "orderAmount": "1.0005"}, u1, (400, "INVALID_AMOUNT")),
            ({"couponId": c["pct10"], "orderAmount": "1.00", "orderId": "x"}, u1,
             (400, "INVALID_REQUEST")),
            ({"couponId": str(c["pct10"]), "orderAmount": "1.00"}, u1,
             (400, "INVALID_REQUEST")),
            ({"code": "UUUUUUUUUUUU", "orderAmount": "1.00"}, u1, (400, "INVALID_REQUEST")),
        ]
        service_rows = [
            ({"code": self.code_u2, "orderAmount": "12.25"}, svc, ok("1.22")),
            ({"code": self.codes["bhd12.5"], "orderAmount": "1.005"}, admin, ok("0.126")),
            ({"couponId": c["pct10"], "orderAmount": "1.00"}, svc, (403, "FORBIDDEN")),
            ({"couponId": c["pct10"], "orderAmount": "1.00"}, admin, (403, "FORBIDDEN")),
        ]
        self.assertGreaterEqual(len(table) + len(service_rows), 30)
        names = list(c.values())
        ids = ",".join(str(i) for i in names)
        rows_before = harness.sql("SELECT coupon_id, user_id, used_at, redeemed_order_id "
                                  "FROM coupon_issue WHERE coupon_id IN (%s) ORDER BY id" % ids)
        outbox_before = outbox_next_id()
        claims_before = [harness.redis("HLEN", "coupon:{%d}:users" % i) for i in names]
        valid_before = metric('coupon_validations_total{outcome="valid"}')
        below_before = metric('coupon_validations_total{outcome="order_below_minimum"}')
        bad_before = metric('coupon_validations_total{outcome="bad_request"}')
        served = {"valid": 0, "below": 0, "bad": 0}
        for i, (body, user, want) in enumerate(table):
            # u1's by-code attempts count against the redeem limit (5/s, burst 10)
            if "code" in body:
                time.sleep(0.25)
            self.row(body, user, want, server=SERVERS[i % 2])
            served["valid"] += isinstance(want, dict) and want["valid"]
            served["below"] += isinstance(want, dict) and want["reason"] == "ORDER_BELOW_MINIMUM"
            served["bad"] += isinstance(want, tuple) and want[0] == 400
        for body, headers, want in service_rows:
            self.row(body, None, want, headers=headers)
            served["valid"] += isinstance(want, dict) and want["valid"]
            served["bad"] += isinstance(want, tuple)
        r = validate("couponId=1", harness.bearer(tok(u1)))
        self.assertEqual((r.status, r.json()["code"]), (415, "UNSUPPORTED_MEDIA_TYPE"))
        served["bad"] += 1
        r = validate({"couponId": c["pct10"], "orderAmount": "1.00"}, {})
        self.assertEqual(r.status, 401, r)
        # Nothing was written: the issuances, the outbox, Redis' claims.
        self.assertEqual(harness.sql("SELECT coupon_id, user_id, used_at, redeemed_order_id "
                                     "FROM coupon_issue WHERE coupon_id IN (%s) ORDER BY id"
                                     % ids), rows_before)
        self.assertEqual(outbox_next_id(), outbox_before)
        self.assertEqual([harness.redis("HLEN", "coupon:{%d}:users" % i) for i in names],
                         claims_before)
        self.assertEqual(metric('coupon_validations_total{outcome="valid"}') - valid_before,
                         served["valid"])
        self.assertEqual(metric('coupon_validations_total{outcome="order_below_minimum"}')
                         - below_before, served["below"])
        self.assertEqual(metric('coupon_validations_total{outcome="bad_request"}')
                         - bad_before, served["bad"])

    def test_a_valid_answer_names_the_coupon_and_its_currency(self):
        r = self.row({"code": self.codes["jpy500"], "orderAmount": "1200"}, None,
                     {"valid": True, "discountAmount": "500", "reason": None},
                     headers=harness.admin_headers())
        self.assertEqual((r.json()["couponId"], r.json()["currency"]),
                         (self.cid["jpy500"], "JPY"))


class CampaignMoney(unittest.TestCase):

    def test_create_and_read_carry_currency_minimum_and_cap_exactly(self):
        cid = harness.create_coupon(discountValue=12.5, currency="BHD", minOrderAmount="5.5",
                                    maxDiscountAmount="0.250")
        doc = json.loads(harness.http("GET", "/api/coupons/%d" % cid).text)
        self.assertEqual((doc["currency"], doc["minOrderAmount"], doc["maxDiscountAmount"]),
                         ("BHD", "5.500", "0.250"))
        raw = harness.http("GET", "/api/coupons/%d" % cid).text
        self.assertIn('"discountValue":12.50', raw)  # a percentage: two decimals
        cid = harness.create_coupon(discountType="AMOUNT", discountValue=500, currency="JPY")
        raw = harness.http("GET", "/api/coupons/%d" % cid).text
        self.assertIn('"discountValue":500,', raw)
        self.assertIn('"currency":"JPY","minOrderAmount":null,"maxDiscountAmount":null', raw)
        raw = harness.http("GET", "/api/coupons/%d" % harness.create_coupon()).text
        self.assertIn('"discountValue":10.00,', raw)  # as before issue 26
        self.assertIn('"currency":null', raw)

    def test_create_refuses_amounts_the_currency_cannot_have(self):
        bad = [
            {"currency": "eur"}, {"currency": "EURO"}, {"currency": 978},
            {"minOrderAmount": "0"}, {"minOrderAmount": "1.005"}, {"minOrderAmount": 10},
            {"maxDiscountAmount": "-1"},
            {"discountType": "AMOUNT", "discountValue": 10, "maxDiscountAmount": "5.00"},
            {"discountType": "AMOUNT", "discountValue": 1.5, "currency": "JPY"},
            {"discountType": "AMOUNT", "discountValue": 1.0005, "currency": "BHD"},
            {"discountValue": 10.5, "currency": "JPY", "minOrderAmount": "100.5"},
            {"discountValue": 100.01}, {"discountValue": "10"},
        ]
        for fields in bad:
            doc = {"title": "bad", "couponType": "GENERAL", "discountType": "PERCENTAGE",
                   "discountValue": 10, "startAt": "2030-01-01T00:00:00Z",
                   "endAt": "2030-02-01T00:00:00Z"}
            doc.update(fields)
            r = harness.http("POST", "/api/coupons", doc, harness.admin_headers())
            self.assertEqual((r.status, r.json()["code"]), (400, "INVALID_REQUEST"), (fields, r))


class RedemptionDiscount(unittest.TestCase):

    def test_redemptions_carry_discount_amount_and_refuse_orders_below_the_minimum(self):
        cid = harness.create_coupon(discountValue=10, minOrderAmount="20.00")
        u, v = harness.new_user(), harness.new_user()
        claim(cid, u)
        code_v = claim(cid, v)
        persisted(cid, u)
        persisted(cid, v)
        path = "/api/coupons/%d/issues/%d/redemption" % (cid, u)
        outbox_before = outbox_next_id()
        r = harness.http("POST", path, {"orderId": "m-1", "orderAmount": "19.99"})
        self.assertEqual((r.status, r.json()["code"]), (422, "ORDER_BELOW_MINIMUM"), r)
        r = harness.http("POST", path, {"orderId": "m-1", "orderAmount": "20.001"})
        self.assertEqual((r.status, r.json()["code"]), (400, "INVALID_AMOUNT"), r)
        r = harness.http("POST", path, {"orderId": "m-1", "orderAmount": 25})
        self.assertEqual((r.status, r.json()["code"]), (400, "INVALID_AMOUNT"), r)
        self.assertEqual(harness.sql("SELECT used_at FROM coupon_issue WHERE coupon_id=%d AND "
                                     "user_id=%d" % (cid, u)), [(None,)])
        self.assertEqual(outbox_next_id(), outbox_before)
        r = harness.http("POST", path, {"orderId": "m-1", "orderAmount": "123.45"})
        self.assertEqual(r.status, 201, r)
        self.assertEqual((r.json()["discountAmount"], r.json()["discount"]),
                         ("12.34", {"type": "PERCENTAGE", "value": 10}), r)  # 12.345: even
        self.assertIn('"value":10.00}', r.text)
        r = harness.http("POST", path, {"orderId": "m-1"})  # replay without an amount
        self.assertEqual(r.status, 200, r)
        self.assertNotIn("discountAmount", r.json())
        r = harness.http("POST", "/api/redemptions",
                         {"code": code_v, "orderId": "m-2", "orderAmount": "123.55"},
                         server="lighttpd")
        self.assertEqual((r.status, r.json()["discountAmount"]), (201, "12.36"), r)
        r = harness.http("DELETE", path, {"orderId": "m-1", "orderAmount": "1.00"})
        self.assertEqual((r.status, r.json()["code"]), (400, "INVALID_REQUEST"), r)


if __name__ == "__main__":
    unittest.main()
