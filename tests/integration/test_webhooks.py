"""Signed webhooks (issue 27) on the real stack: a local HTTPS receiver (a test CA and
certificate made here; the dispatcher trusts the CA through webhook_ca_file, which
tests/integration/run points at STATE_DIR/webhook-ca.pem) sees every event of a claim
sale with redemptions exactly once after deduplication by webhook-id, each signature
verified with the Standard Webhooks algorithm, in order per coupon, across a period of
500 answers; a dead endpoint does not slow it; the SSRF rules refuse private and
loopback URLs outside webhook_allow_cidrs (127.0.0.1/32 in the runner's config);
rotation signs with both secrets; redelivery sends a delivery again."""

import base64
import concurrent.futures
import hashlib
import hmac
import http.server
import json
import os
import socket
import ssl
import subprocess
import threading
import time
import unittest

import harness

CLAIMS = int(os.environ.get("COUPON_TEST_WEBHOOK_CLAIMS", "2000"))
REDEMPTIONS = 100
ALL = ["coupon.issued", "coupon.redeemed", "coupon.redemption_cancelled", "coupon.held",
       "coupon.hold_released"]


def make_certificates(folder):
    """A CA (its certificate at webhook-ca.pem, what the dispatcher trusts) and a server
    certificate for 127.0.0.1 signed by it."""
    ca_key, ca = os.path.join(folder, "webhook-ca.key"), os.path.join(folder, "webhook-ca.pem")
    key, csr = os.path.join(folder, "webhook.key"), os.path.join(folder, "webhook.csr")
    crt, ext = os.path.join(folder, "webhook.pem"), os.path.join(folder, "webhook.ext")

    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca + ".tmp",
        "-days", "1", "-subj", "/CN=coupon webhook test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
        "-subj", "/CN=127.0.0.1")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", csr, "-CA", ca + ".tmp", "-CAkey", ca_key, "-CAcreateserial",
        "-out", crt, "-days", "1", "-extfile", ext)
    os.replace(ca + ".tmp", ca)
    return crt, key


def verify(secret, msg_id, ts, body, header):
    """The Standard Webhooks check, written here from the specification."""
    key = base64.b64decode(secret[len("whsec_"):] if secret.startswith("whsec_") else secret)
    mac = hmac.new(key, msg_id.encode() + b"." + ts.encode() + b"." + body, hashlib.sha256)
    want = "v1," + base64.b64encode(mac.digest()).decode()
    return any(hmac.compare_digest(want, s) for s in header.split(" "))


class Receiver:
    """An HTTPS server recording every request; answers `status` (200 by default)."""

    def __init__(self, crt, key):
        self.lock = threading.Lock()
        self.seen = []  # (webhook-id, timestamp, signature, body)
        self.status = 200
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    status = outer.status
                    outer.seen.append((self.headers.get("webhook-id"),
                                       self.headers.get("webhook-timestamp"),
                                       self.headers.get("webhook-signature"), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self):
        return "https://127.0.0.1:%d/hooks" % self.port

    def ok(self):
        """Requests answered 2xx, by webhook-id (the first such)."""
        with self.lock:
            return [s for s in self.seen if 200 <= s[4] < 300]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def register(url, events=None):
    return harness.http("POST", "/api/admin/webhooks", {"url": url, "events": events or ALL},
                        headers=harness.admin_headers())


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def claim(cid, uid):
    for _ in range(50):
        r = harness.http("POST", "/api/coupons/%d/issue" % cid, {"userId": uid})
        if r.status != 429 and r.status != 503:
            return r
        time.sleep(0.2)
    return r


class Webhooks(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        crt, key = make_certificates(harness.env["STATE_DIR"])
        cls.receiver = Receiver(crt, key)
        cls.endpoints = []

    @classmethod
    def tearDownClass(cls):
        for wid in cls.endpoints:
            harness.http("DELETE", "/api/admin/webhooks/%d" % wid,
                         headers=harness.admin_headers())
        cls.receiver.stop()

    def registered(self, url, events=None):
        r = register(url, events)
        self.assertEqual(r.status, 201, r)
        doc = r.json()
        self.endpoints.append(doc["id"])
        return doc

    def test_private_and_loopback_urls_are_refused_unless_allow_listed(self):
        for url in ("https://127.0.0.2/x", "https://10.0.0.1/x", "https://[::1]/x",
                    "https://169.254.169.254/latest", "https://192.168.1.1/",
                    "https://[::ffff:127.0.0.2]/", "http://93.184.216.34/",
                    "https://localhost.invalid/"):
            r = register(url)
            self.assertEqual(r.status, 422, (url, r))
            self.assertEqual(r.json()["code"], "WEBHOOK_URL_REFUSED")
        for body in ({"url": "ftp://127.0.0.1/", "events": ALL},
                     {"url": "https://u:p@127.0.0.1/", "events": ALL},
                     {"url": self.receiver.url(), "events": ["coupon.nope"]},
                     {"url": self.receiver.url(), "events": []},
                     {"url": self.receiver.url(), "events": ALL, "extra": 1}):
            r = harness.http("POST", "/api/admin/webhooks", body, headers=harness.admin_headers())
            self.assertEqual(r.status, 400, (body, r))
        r = harness.http("POST", "/api/admin/webhooks", {"url": self.receiver.url(),
                                                         "events": ALL})
        self.assertIn(r.status, (401, 403), r)
        # Allow-listed: 127.0.0.1, also over plain http.
        doc = self.registered("http://127.0.0.1:%d/plain" % closed_port(), ["coupon.held"])
        self.assertTrue(doc["secret"].startswith("whsec_"))
        listed = harness.http("GET", "/api/admin/webhooks", headers=harness.admin_headers())
        self.assertEqual(listed.status, 200, listed)
        self.assertNotIn("whsec_", listed.text)
        self.assertIn(doc["id"], [w["id"] for w in listed.json()["webhooks"]])

    def test_sale_is_delivered_once_signed_in_order_through_500s_and_a_dead_endpoint(self):
        live = self.registered(self.receiver.url())
        dead = self.registered("https://127.0.0.1:%d/dead" % closed_port())
        cid = harness.create_coupon(totalQuantity=CLAIMS)
        users = [harness.new_user() for _ in range(CLAIMS)]
        t0 = time.time()
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            half = CLAIMS // 2
            got = list(pool.map(lambda u: claim(cid, u).status, users[:half]))
            self.receiver.status = 500  # the receiver fails mid-sale
            got += list(pool.map(lambda u: claim(cid, u).status, users[half:]))
        self.assertEqual(got.count(201), CLAIMS, [s for s in got if s != 201][:5])
        harness.wait_until(lambda: harness.sql(
            "SELECT COUNT(*) FROM coupon_issue WHERE coupon_id=%d" % cid) == [(str(CLAIMS),)],
            timeout=120, message="every claim persisted")
        redeemed = users[:REDEMPTIONS]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(lambda u: harness.http(
                "POST", "/api/coupons/%d/issues/%d/redemption" % (cid, u),
                {"orderId": "o-%d" % u}).status, redeemed))
        self.assertEqual(codes.count(201), REDEMPTIONS, codes[:5])
        # The receiver keeps failing until the head of the coupon's queue was refused a few
        # times (retried with back-off, nothing behind it sent meanwhile).
        harness.wait_until(lambda: sum(1 for s in self.receiver.seen if s[4] == 500) >= 4,
                           timeout=120, message="deliveries retried against the 500s")
        failing = sum(1 for s in self.receiver.seen if s[4] == 500)
        self.receiver.status = 200
        expected = CLAIMS + REDEMPTIONS

        def delivered():
            return len({s[0] for s in self.receiver.ok()}) >= expected
        harness.wait_until(delivered, timeout=240, interval=1,
                           message="every event delivered after the receiver recovered")
        elapsed = time.time() - t0
        ok = self.receiver.ok()
        ids = {}
        for msg_id, ts, sig, body, _status in ok:
            self.assertTrue(verify(live["secret"], msg_id, ts, body, sig), msg_id)
            ids.setdefault(msg_id, json.loads(body))
        self.assertEqual(len(ids), expected)
        types = [d["type"] for d in ids.values()]
        self.assertEqual(types.count("coupon.issued"), CLAIMS)
        self.assertEqual(types.count("coupon.redeemed"), REDEMPTIONS)
        self.assertEqual({d["data"]["couponId"] for d in ids.values()}, {cid})
        # In order per coupon: the first 2xx of each id arrives in event-id order.
        first = []
        for msg_id, *_ in ok:
            if msg_id not in first:
                first.append(msg_id)
        self.assertEqual([int(i) for i in first], sorted(int(i) for i in first))
        # The dead endpoint kept retrying its head of line meanwhile (the rest of the
        # coupon's events wait behind it) and delivered nothing.
        rows = harness.http("GET", "/api/admin/webhooks/%d/deliveries" % dead["id"],
                            headers=harness.admin_headers()).json()["deliveries"]
        self.assertTrue(rows and all(r["state"] == "pending" for r in rows), rows[:2])
        [(states, attempts)] = harness.sql(
            "SELECT GROUP_CONCAT(DISTINCT state), MAX(attempts) FROM webhook_delivery "
            "WHERE endpoint_id = %d" % dead["id"])
        self.assertEqual(states, "pending")
        self.assertGreaterEqual(int(attempts), 3)
        print("\nwebhooks: %d events delivered in %.1f s (sale included), %d requests "
              "answered 500, %d requests in all" % (expected, elapsed, failing,
                                                    len(self.receiver.seen)))
        # Redelivery of one delivered event: sent again with the same webhook-id.
        rows = harness.http("GET", "/api/admin/webhooks/%d/deliveries" % live["id"],
                            headers=harness.admin_headers()).json()["deliveries"]
        one = rows[0]
        self.assertEqual(one["state"], "delivered")
        before = sum(1 for s in self.receiver.ok() if s[0] == one["eventId"])
        r = harness.http("POST", "/api/admin/webhooks/%d/deliveries/%d/redeliver"
                         % (live["id"], one["id"]), headers=harness.admin_headers())
        self.assertEqual(r.status, 202, r)
        harness.wait_until(lambda: sum(1 for s in self.receiver.ok()
                                       if s[0] == one["eventId"]) == before + 1, timeout=30,
                           message="redelivered")
        r = harness.http("POST", "/api/admin/webhooks/%d/deliveries/999999999/redeliver"
                         % live["id"], headers=harness.admin_headers())
        self.assertEqual(r.status, 404, r)
        # Rotation: both secrets verify the next delivery.
        rot = harness.http("POST", "/api/admin/webhooks/%d/rotate" % live["id"],
                           headers=harness.admin_headers())
        self.assertEqual(rot.status, 200, rot)
        new_secret = rot.json()["secret"]
        n = len(self.receiver.ok())
        r = harness.http("POST", "/api/admin/webhooks/%d/deliveries/%d/redeliver"
                         % (live["id"], one["id"]), headers=harness.admin_headers())
        self.assertEqual(r.status, 202, r)
        harness.wait_until(lambda: len(self.receiver.ok()) > n, timeout=30, message="rotated")
        msg_id, ts, sig, body, _ = self.receiver.ok()[n]
        self.assertEqual(len(sig.split(" ")), 2, sig)
        self.assertTrue(verify(new_secret, msg_id, ts, body, sig))
        self.assertTrue(verify(live["secret"], msg_id, ts, body, sig))
        # Disabled: 204, then 404 for a second disable.
        for status in (204, 404):
            r = harness.http("DELETE", "/api/admin/webhooks/%d" % dead["id"],
                             headers=harness.admin_headers())
            self.assertEqual(r.status, status, r)


if __name__ == "__main__":
    unittest.main()
