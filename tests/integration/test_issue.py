"""The issue path (issue #3) on the real stack: status codes and bodies of every outcome,
both URL forms, no TTL on issuance state, the race for the last units counted exactly in
Redis, Kafka and MariaDB, meta reloaded from MariaDB, 503 + Retry-After while Redis
or Kafka is down with automatic recovery afterwards, and redis_wait_replicas against a
Redis without replicas.

Coupons are inserted with SQL on purpose: the issue path must load a coupon's issuance
parameters from MariaDB when Redis does not have them yet (the admin API writes them
eagerly; test_read_admin covers that route)."""

import concurrent.futures
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

import fcgi_client
import harness





def sql_coupon(total=10, start_s=-60, end_s=3600, coupon_type="FIRST_COME_FIRST_SERVED"):
    """Insert a coupon straight into MariaDB; returns its id. Times are relative to now."""
    tag = uuid.uuid4().hex[:12]
    harness.sql(
        "INSERT INTO coupon (title, code, coupon_type, discount_type, discount_value, "
        "start_at, end_at, total_quantity) VALUES ('issue-%s', 'IS%s', '%s', 'AMOUNT', "
        "1000, UTC_TIMESTAMP(3) + INTERVAL %d SECOND, UTC_TIMESTAMP(3) + INTERVAL %d SECOND, %s)"
        % (tag, tag.upper(), coupon_type, start_s, end_s,
           "NULL" if total is None else int(total)))
    return int(harness.sql("SELECT id FROM coupon WHERE code = 'IS%s'" % tag.upper())[0][0])


def issue(coupon_id, user_id, reference=False, server="nginx"):
    if reference:
        return harness.http("POST", "/api/coupons/issue",
                            {"userId": user_id, "couponId": coupon_id}, server=server)
    return harness.http("POST", "/api/coupons/%d/issue" % coupon_id, {"userId": user_id},
                        server=server)


def redis_calls(*commands):
    """Redis' call counts of the named commands since its start (INFO commandstats)."""
    info = harness.redis("INFO", "commandstats")
    if isinstance(info, bytes):
        info = info.decode()
    calls = dict.fromkeys(commands, 0)
    for line in info.splitlines():
        name, _, stats = line.partition(":")
        if name.startswith("cmdstat_") and name[8:] in calls:
            calls[name[8:]] = int(stats.split(",")[0].split("=")[1])
    return calls


def persisted_rows(coupon_id):
    return int(harness.sql("SELECT COUNT(*) FROM coupon_issue WHERE coupon_id = %d"
                           % coupon_id)[0][0])


def issue_events(coupon_id):
    """The coupon's events in coupon.issue (other suites put poison there: skipped)."""
    out = []
    for m in harness.kafka_messages("coupon.issue"):
        try:
            v = json.loads(m["value"] or "")
        except ValueError:
            continue
        if isinstance(v, dict) and v.get("couponId") == coupon_id:
            out.append((m, v))
    return out


class IssueOutcomes(unittest.TestCase):

    def assert_problem(self, r, status, code):
        self.assertEqual(r.status, status, r)
        self.assertTrue(r.headers.get("content-type", "").startswith("application/problem+json"),
                        r.headers)
        p = r.json()
        self.assertEqual(p["status"], status)
        self.assertEqual(p["code"], code)
        for field in ("type", "title", "detail"):
            self.assertIn(field, p)
        return p

    def test_issue_then_duplicate_on_both_paths(self):
        cid = sql_coupon(total=5)
        u = harness.new_user()
        r = issue(cid, u)
        self.assertEqual(r.status, 201, r)
        self.assertTrue(r.headers["content-type"].startswith("application/json"))
        body = r.json()
        self.assertEqual(body["couponId"], cid)
        self.assertEqual(body["userId"], u)
        self.assertEqual(body["sequence"], 1)
        self.assertEqual(body["status"], "ISSUED")
        self.assertRegex(body["issuedAt"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        # The same user again, through the reference path and through lighttpd: 409.
        self.assert_problem(issue(cid, u, reference=True), 409, "DUPLICATED_COUPON_ISSUE")
        self.assert_problem(issue(cid, u, server="lighttpd"), 409, "DUPLICATED_COUPON_ISSUE")
        # The reference path issues too, with the next sequence.
        r2 = issue(cid, harness.new_user(), reference=True)
        self.assertEqual(r2.status, 201, r2)
        self.assertEqual(r2.json()["sequence"], 2)
        self.assertEqual(harness.redis("HLEN", "coupon:{%d}:users" % cid), 2)

    def test_issuance_state_has_no_ttl(self):
        cid = sql_coupon(total=3)
        self.assertEqual(issue(cid, harness.new_user()).status, 201)
        for suffix in ("users", "meta", "seq"):
            self.assertEqual(harness.redis("TTL", "coupon:{%d}:%s" % (cid, suffix)), -1, suffix)

    def test_sold_out_after_exactly_total(self):
        cid = sql_coupon(total=3)
        statuses = [issue(cid, harness.new_user()).status for _ in range(5)]
        self.assertEqual(statuses, [201, 201, 201, 410, 410])
        self.assert_problem(issue(cid, harness.new_user()), 410, "INVALID_COUPON_ISSUE_QUANTITY")
        self.assertEqual(harness.redis("HLEN", "coupon:{%d}:users" % cid), 3)

    def test_window_not_started_and_ended(self):
        early = sql_coupon(start_s=3600, end_s=7200)
        self.assert_problem(issue(early, harness.new_user()), 422, "INVALID_COUPON_ISSUE_DATE")
        late = sql_coupon(start_s=-7200, end_s=-3600)
        self.assert_problem(issue(late, harness.new_user()), 422, "INVALID_COUPON_ISSUE_DATE")
        self.assertEqual(harness.redis("HLEN", "coupon:{%d}:users" % early), 0)
        self.assertEqual(harness.redis("HLEN", "coupon:{%d}:users" % late), 0)

    def test_unknown_coupon_is_404_and_leaves_no_state(self):
        missing = int(harness.sql("SELECT COALESCE(MAX(id), 0) + 1000000 FROM coupon")[0][0])
        self.assert_problem(issue(missing, harness.new_user()), 404, "COUPON_NOT_EXIST")
        self.assert_problem(issue(missing, harness.new_user(), reference=True), 404, "COUPON_NOT_EXIST")
        self.assertEqual(harness.redis("EXISTS", "coupon:{%d}:users" % missing), 0)
        self.assertEqual(harness.redis("EXISTS", "coupon:{%d}:meta" % missing), 0)

    def test_unlimited_coupon_issues_without_a_limit(self):
        cid = sql_coupon(total=None, coupon_type="GENERAL")
        statuses = [issue(cid, harness.new_user()).status for _ in range(25)]
        self.assertEqual(statuses, [201] * 25)
        self.assertEqual(harness.redis("HGET", "coupon:{%d}:meta" % cid, "total"), "-1")

    def test_meta_lost_in_redis_is_reloaded_from_mariadb(self):
        cid = sql_coupon(total=2)
        self.assertEqual(issue(cid, harness.new_user()).status, 201)
        harness.redis("DEL", "coupon:{%d}:meta" % cid)
        self.assertEqual(issue(cid, harness.new_user()).status, 201)
        self.assertEqual(issue(cid, harness.new_user()).status, 410)

    def test_event_in_kafka_matches_the_answer_and_lands_in_mariadb_once(self):
        cid = sql_coupon(total=10)
        answers = {}
        for _ in range(4):
            u = harness.new_user()
            r = issue(cid, u)
            self.assertEqual(r.status, 201, r)
            answers[u] = r.json()
        # issue_ack=redis: the 201 comes before the event reaches Kafka (the workers batch
        # for kafka_async_linger_ms), so it is awaited rather than expected at once.
        events = harness.wait_until(lambda: (lambda e: e if len(e) >= 4 else None)(
            issue_events(cid)), timeout=30, interval=0.5, message="4 events in coupon.issue")
        self.assertEqual(len(events), 4)
        for m, v in events:
            a = answers[v["userId"]]
            self.assertEqual(v["sequence"], a["sequence"])
            self.assertEqual(v["issuedAt"], a["issuedAt"])
            self.assertRegex(v["eventId"], r"^[0-9a-f]{32}$")
            self.assertEqual(m["key"], "%d:%d" % (cid, v["userId"]))
        harness.wait_until(lambda: persisted_rows(cid) == 4, timeout=30,
                           message="4 rows in coupon_issue")
        rows = harness.sql("SELECT user_id, sequence FROM coupon_issue WHERE coupon_id = %d"
                           % cid)
        self.assertEqual({int(u): int(s) for u, s in rows},
                         {u: a["sequence"] for u, a in answers.items()})
        self.assertEqual(harness.sql("SELECT issued_quantity FROM coupon WHERE id = %d" % cid),
                         [("4",)])


class FairnessAtTheEdges(unittest.TestCase):
    """The in-process fast-path flags never answer longer than their answer is true."""

    def test_holder_retrying_after_sold_out_gets_409(self):
        cid = sql_coupon(total=2)
        holders = [harness.new_user(), harness.new_user()]
        seqs = {}
        for u in holders:
            r = issue(cid, u)
            self.assertEqual(r.status, 201, r)
            seqs[u] = r.json()["sequence"]
        # Enough sold-out answers that every worker process has its sold-out flag set.
        for _ in range(40):
            self.assertEqual(issue(cid, harness.new_user()).status, 410)
        for u in holders:
            for _ in range(10):
                r = issue(cid, u)
                self.assertEqual(r.status, 409, r)
                self.assertEqual(r.json()["code"], "DUPLICATED_COUPON_ISSUE")
                self.assertIn("sequence %d" % seqs[u], r.json()["detail"])

    def _sold_out_with_holders(self, total):
        """A coupon of `total` sold to as many new users; every worker then answers
        from its sold-out flag. Returns (coupon id, {user: sequence}, Redis' command
        counts just before the first sold-out answer)."""
        cid = sql_coupon(total=total)
        seqs = {}
        for _ in range(total):
            u = harness.new_user()
            r = issue(cid, u)
            self.assertEqual(r.status, 201, r)
            seqs[u] = r.json()["sequence"]
        calls = redis_calls("hget", "evalsha", "hscan")
        for _ in range(40):
            self.assertEqual(issue(cid, harness.new_user()).status, 410)
        return cid, seqs, calls

    def _late_claims(self, cid, seqs):
        """Every holder twice (409 with their sequence) and as many new users (410)."""
        statuses = {}
        for u in list(seqs) * 2:
            r = issue(cid, u)
            self.assertEqual(r.status, 409, r)
            self.assertIn("sequence %d" % seqs[u], r.json()["detail"])
            statuses[409] = statuses.get(409, 0) + 1
        for _ in range(2 * len(seqs)):
            r = issue(cid, harness.new_user())
            self.assertEqual(r.status, 410, r)
            self.assertEqual(r.json()["code"], "INVALID_COUPON_ISSUE_QUANTITY")
            statuses[410] = statuses.get(410, 0) + 1
        return statuses

    def test_sold_out_answers_come_from_the_holder_snapshot(self):
        # 60 holders (soldout_holders_max is 100 in the test stack): after the sell-out
        # a worker reads them once (HLEN + HSCAN) and asks Redis nothing per late claim.
        cid, seqs, before = self._sold_out_with_holders(60)
        self.assertEqual(self._late_claims(cid, seqs), {409: 120, 410: 120})
        after = redis_calls("hget", "evalsha", "hscan")
        # issue.lua runs one HGET itself (a worker's flag expired): only those count.
        self.assertEqual(after["hget"] - before["hget"], after["evalsha"] - before["evalsha"])
        self.assertGreaterEqual(after["hscan"] - before["hscan"], 1)
        harness.wait_until(lambda: persisted_rows(cid) == 60, timeout=30,
                           message="60 rows in MariaDB")

    def test_a_coupon_with_more_holders_than_the_snapshot_asks_redis(self):
        cid, seqs, before = self._sold_out_with_holders(101)
        self.assertEqual(self._late_claims(cid, seqs), {409: 202, 410: 202})
        after = redis_calls("hget", "evalsha", "hscan")
        self.assertEqual(after["hscan"] - before["hscan"], 0)
        self.assertGreater(after["hget"] - before["hget"], after["evalsha"] - before["evalsha"])

    def test_a_new_holder_after_a_restock_is_not_missing_from_the_snapshot(self):
        # Sold out with 3 holders (snapshots taken), the stock raised by one through the
        # admin API (the invalidation drops flags and snapshots), a fourth user claims
        # the unit, the coupon is sold out again: the fourth user is a holder (409).
        cid, _, _ = self._sold_out_with_holders(3)
        r = harness.http("PATCH", "/api/coupons/%d" % cid, {"totalQuantity": 4},
                         harness.admin_headers())
        self.assertEqual(r.status, 200, r)
        fourth = harness.new_user()
        harness.wait_until(lambda: issue(cid, fourth).status == 201, timeout=2,
                           message="the fourth unit issued after the restock")
        for _ in range(40):
            self.assertEqual(issue(cid, harness.new_user()).status, 410)
        for _ in range(20):
            self.assertEqual(issue(cid, fourth).status, 409)

    def test_opening_answers_201_at_start_at_and_never_422_after(self):
        # The coupon opens 1.5 s from now; 10 clients each send a claim every 100 ms
        # (10 Hz) from before the opening until 1 s after it.
        tag = uuid.uuid4().hex[:12]
        harness.sql(
            "INSERT INTO coupon (title, code, coupon_type, discount_type, discount_value, "
            "start_at, end_at, total_quantity) VALUES ('edge-%s', 'ED%s', "
            "'FIRST_COME_FIRST_SERVED', 'AMOUNT', 1000, UTC_TIMESTAMP(3) + INTERVAL 1500000 "
            "MICROSECOND, UTC_TIMESTAMP(3) + INTERVAL 1 HOUR, 1000000)" % (tag, tag.upper()))
        cid, start_ms = (int(x) for x in harness.sql(
            "SELECT id, ROUND(UNIX_TIMESTAMP(start_at) * 1000) FROM coupon WHERE code = 'ED%s'"
            % tag.upper())[0])
        results = []  # (sent_ms, received_ms, status)
        lock = threading.Lock()

        def client(offset_ms):
            time.sleep(offset_ms / 1000.0)
            while time.time() * 1000 < start_ms + 1000:
                sent = time.time() * 1000
                status = issue(cid, harness.new_user()).status
                with lock:
                    results.append((sent, time.time() * 1000, status))
                time.sleep(max(0.0, 0.1 - (time.time() * 1000 - sent) / 1000.0))

        threads = [threading.Thread(target=client, args=(i * 10,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        statuses = {s for _, _, s in results}
        self.assertEqual(statuses - {201, 422}, set(), statuses)
        self.assertTrue(any(s == 422 for _, _, s in results), "no request before startAt")
        first_201 = min(received for _, received, s in results if s == 201)
        late_422 = [(sent - start_ms) for sent, _, s in results if s == 422 and sent > first_201]
        self.assertEqual(late_422, [], "422 sent after the first 201 (ms after startAt)")
        self.assertLessEqual(first_201 - start_ms, 50,
                             "first 201 %.0f ms after startAt" % (first_201 - start_ms))


class IssueRace(unittest.TestCase):
    """4 worker processes x 4 threads x 64 connections behind both web servers; 5,000 users each sending 4
    concurrent requests for a coupon of stock 1,000 (the issue's numbers): exactly
    the stock is issued, to distinct users, with sequences 1..stock, and every 201 is one
    event in Kafka and one row in MariaDB."""

    STOCK = 1000
    USERS = 5000
    TRIES_PER_USER = 4

    def test_race_issues_exactly_the_stock(self):
        # issue_ack=redis (the stack's coupon-fcgi) behind nginx and lighttpd.
        self.race(lambda u: "nginx" if u % 2 else "lighttpd")

    def test_race_issues_exactly_the_stock_kafka_mode(self):
        # issue_ack=kafka: the same numbers when every 201 waits for the broker.
        self.race(lambda u: "kafka-ack")

    def race(self, server_of):
        cid = sql_coupon(total=self.STOCK)
        users = [harness.new_user() for _ in range(self.USERS)]
        # Each user's tries are adjacent in the list, so the pool runs them concurrently.
        attempts = [(u, i % 2 == 1) for u in users for i in range(self.TRIES_PER_USER)]

        def one(attempt):
            u, reference = attempt
            r = issue(cid, u, reference=reference, server=server_of(u))
            return u, r.status, (r.json().get("sequence") if r.status == 201 else None)

        with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
            results = list(pool.map(one, attempts))
        by_status = {}
        for _, status, _ in results:
            by_status[status] = by_status.get(status, 0) + 1
        winners = [(u, seq) for u, status, seq in results if status == 201]
        self.assertEqual(len(winners), self.STOCK, by_status)
        self.assertEqual(len({u for u, _ in winners}), self.STOCK, "a user got two 201s")
        self.assertEqual(sorted(seq for _, seq in winners), list(range(1, self.STOCK + 1)))
        self.assertEqual(set(by_status) - {201, 409, 410}, set(), by_status)
        self.assertEqual(harness.redis("HLEN", "coupon:{%d}:users" % cid), self.STOCK)
        harness.wait_until(lambda: len(issue_events(cid)) >= self.STOCK, timeout=60,
                           interval=0.5, message="%d events in coupon.issue" % self.STOCK)
        self.assertEqual(len(issue_events(cid)), self.STOCK)
        harness.wait_until(lambda: persisted_rows(cid) == self.STOCK, timeout=60,
                           message="%d rows in coupon_issue" % self.STOCK)
        self.assertEqual(harness.sql(
            "SELECT COUNT(DISTINCT user_id), MIN(sequence), MAX(sequence), "
            "(SELECT issued_quantity FROM coupon WHERE id = %d) "
            "FROM coupon_issue WHERE coupon_id = %d" % (cid, cid)),
            [(str(self.STOCK), "1", str(self.STOCK), str(self.STOCK))])


class PipelinedClaims(unittest.TestCase):
    """A request thread runs the scripts of all the claims it has read in one Redis
    pipeline (fcgi-app/worker.c). A node that lost the script answers NOSCRIPT inside the
    pipeline: each such claim is run again with the source, none is lost or doubled."""

    CLAIMS = 300

    def claims(self, cid):
        """CLAIMS new users at once through both web servers: their statuses, sequences."""
        def one(u):
            r = issue(cid, u, server="nginx" if u % 2 else "lighttpd")
            return r.status, (r.json().get("sequence") if r.status == 201 else None)

        users = [harness.new_user() for _ in range(self.CLAIMS)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
            return list(pool.map(one, users))

    def test_a_script_flush_under_concurrent_claims_loses_nothing(self):
        cid = sql_coupon(total=2 * self.CLAIMS)
        # First a burst that every request thread takes part in, so that each has learnt
        # the script's SHA: after the flush they all send EVALSHA, and Redis answers
        # NOSCRIPT inside their pipelines rather than to a SCRIPT LOAD of their own.
        warm = self.claims(cid)
        self.assertEqual([st for st, _ in warm].count(201), self.CLAIMS)
        reloads_before = metric("coupon_redis_script_reloads_total")
        self.assertEqual(harness.redis("SCRIPT", "FLUSH"), "OK")
        results = self.claims(cid)
        statuses = [st for st, _ in results]
        self.assertEqual(statuses.count(201), self.CLAIMS, sorted(set(statuses)))
        self.assertEqual(sorted(seq for _, seq in warm + results),
                         list(range(1, 2 * self.CLAIMS + 1)))
        self.assertGreater(metric("coupon_redis_script_reloads_total"), reloads_before)
        self.assertEqual(harness.redis("HLEN", "coupon:{%d}:users" % cid), 2 * self.CLAIMS)
        harness.wait_until(lambda: persisted_rows(cid) == 2 * self.CLAIMS, timeout=60,
                           message="%d rows in coupon_issue" % (2 * self.CLAIMS))
        time.sleep(1)  # a doubled event would land after the count was reached
        self.assertEqual(persisted_rows(cid), 2 * self.CLAIMS)


def metric(name):
    """A counter of coupon-fcgi's /metrics (every worker's, summed in shared memory)."""
    for line in harness.http("GET", "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


class DependencyOutages(unittest.TestCase):
    """A dependency down answers 503 + Retry-After and changes no state; the service
    recovers by itself once it is back."""

    def assert_unavailable(self, r):
        self.assertEqual(r.status, 503, r)
        self.assertIn("retry-after", r.headers)
        self.assertGreaterEqual(int(r.headers["retry-after"]), 1)
        self.assertEqual(r.json()["code"], "SERVICE_UNAVAILABLE")

    def test_redis_down_then_back(self):
        cid = sql_coupon(total=10)
        self.assertEqual(issue(cid, harness.new_user()).status, 201)
        harness.server_stop("redis")
        try:
            for _ in range(4):
                self.assert_unavailable(issue(cid, harness.new_user()))
            h = harness.http("GET", "/api/health")
            self.assertEqual(h.status, 503, h)
            self.assertNotEqual(h.json()["components"]["redis"]["status"], "UP")
        finally:
            harness.server_start("redis")
        harness.wait_until(lambda: issue(cid, harness.new_user()).status == 201, timeout=15,
                           message="201 after Redis came back")
        # A worker thread whose connect failed waits RECONNECT_INTERVAL_MS (250 ms, app.c)
        # before the next attempt. Once that has passed, every thread is back.
        time.sleep(0.3)
        for _ in range(8):
            self.assertEqual(issue(cid, harness.new_user()).status, 201)
        # AOF kept the issuance state across the restart: 10 issued so far, never more.
        self.assertEqual(harness.redis("HLEN", "coupon:{%d}:users" % cid), 10)

    def test_kafka_down_redis_mode_issues_and_delivers_later(self):
        # issue_ack=redis: claims go on while Kafka is down; their events wait in the
        # workers' producers (pending records in Redis) and reach Kafka and MariaDB
        # once it is back, each exactly once.
        cid = sql_coupon(total=10)
        self.assertEqual(issue(cid, harness.new_user()).status, 201)
        # Its event is acknowledged (the workers batch for kafka_async_linger_ms first).
        harness.wait_until(
            lambda: harness.redis("HLEN", "coupon:{%d}:pending" % cid) == 0, timeout=30,
            message="the first record settled")
        harness.server_stop("kafka")
        try:
            for _ in range(3):
                r = issue(cid, harness.new_user())
                self.assertEqual(r.status, 201, r)
                self.assertEqual(r.json()["status"], "ISSUED")
            self.assertEqual(harness.redis("HLEN", "coupon:{%d}:users" % cid), 4)
            self.assertEqual(harness.redis("HLEN", "coupon:{%d}:pending" % cid), 3)
        finally:
            harness.server_start("kafka")
        harness.wait_until(lambda: persisted_rows(cid) == 4, timeout=90, interval=0.5,
                           message="4 rows in coupon_issue")
        harness.wait_until(
            lambda: harness.redis("HLEN", "coupon:{%d}:pending" % cid) == 0, timeout=30,
            message="pending records settled")
        users = [v["userId"] for _, v in issue_events(cid)]
        self.assertEqual(len(set(users)), 4)

    def test_outbox_bound_answers_503_and_records_nothing(self):
        # issue_ack=redis: outbox_max_pending (100,000 in the test config) events of one
        # coupon waiting for Kafka -> 503 + Retry-After, nothing recorded, a holder still
        # gets 409; room again once records are settled. The records are young and
        # well-formed, so the reconciler (reconcile_after_s=6) leaves them alone for the
        # second this takes.
        cid = sql_coupon(total=None, coupon_type="GENERAL")
        holder = harness.new_user()
        self.assertEqual(issue(cid, holder).status, 201)
        harness.wait_until(
            lambda: harness.redis("HLEN", "coupon:{%d}:pending" % cid) == 0, timeout=30,
            message="the holder's record settled")
        key = "coupon:{%d}:pending" % cid
        fill = ("local now = redis.call('TIME')[1] * 1000 "
                "for i = 1, tonumber(ARGV[1]) do redis.call('HSET', KEYS[1], 9000000000 + i, "
                "'0123456789abcdef0123456789abcdef:' .. i .. ':' .. now) end "
                "return redis.call('HLEN', KEYS[1])")
        try:
            self.assertEqual(harness.redis("EVAL", fill, 1, key, 100000), 100000)
            u = harness.new_user()
            r = issue(cid, u)
            self.assert_unavailable(r)
            self.assertIn("wait for the event log", r.json()["detail"])
            self.assertIsNone(harness.redis("HGET", "coupon:{%d}:users" % cid, u))
            self.assertEqual(harness.redis("HLEN", key), 100000)
            self.assertEqual(issue(cid, holder).status, 409)
            harness.redis("HDEL", key, 9000000001)
            self.assertEqual(issue(cid, u).status, 201)
        finally:
            harness.redis("DEL", key)
        self.assertEqual(harness.redis("HLEN", "coupon:{%d}:users" % cid), 2)

    def test_kafka_down_then_back_rolls_back_and_recovers(self):
        # issue_ack=kafka: Kafka known down -> 503 before anything is reserved.
        # (After an earlier suite's Kafka restart its producers may still be probing.)
        harness.wait_until(
            lambda: harness.http("GET", "/api/health", server="kafka-ack").status == 200,
            timeout=30, interval=0.5, message="the issue_ack=kafka workers see Kafka")
        cid = sql_coupon(total=10)
        self.assertEqual(issue(cid, harness.new_user(), server="kafka-ack").status, 201)
        harness.server_stop("kafka")
        try:
            statuses = []
            for _ in range(3):
                r = issue(cid, harness.new_user(), server="kafka-ack")
                statuses.append(r.status)
                self.assert_unavailable(r)
            # Nothing was reserved for the refused users: the stock came back.
            self.assertEqual(harness.redis("HLEN", "coupon:{%d}:users" % cid), 1)
        finally:
            harness.server_start("kafka")
        harness.wait_until(lambda: issue(cid, harness.new_user(), server="kafka-ack").status == 201,
                           timeout=60, interval=0.5, message="201 after Kafka came back")
        self.assertEqual(harness.redis("HLEN", "coupon:{%d}:users" % cid), 2)
        self.assertEqual(len(issue_events(cid)), 2)
        harness.wait_until(lambda: persisted_rows(cid) == 2, timeout=60,
                           message="2 rows in coupon_issue")


class WaitForReplicas(unittest.TestCase):
    """redis_wait_replicas = 1 against the stack's Redis, which has no replica: WAIT counts
    0, so a claim is answered 503 REDIS_NOT_REPLICATED + Retry-After and no event is
    produced from the request; the claim stays in Redis, the user's retry is a 409 with
    its sequence, and the consumer's reconciler (reconcile_after_s=6) persists it. A
    coupon-fcgi of its own (socket, metrics file) runs with the setting."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="wait-", dir=harness.env["STATE_DIR"])
        self.sock = os.path.join(self.tmp, "fcgi.sock")
        binary = os.path.join(harness.env["BUILD_DIR"], "fcgi-app", "coupon-fcgi")
        penv = dict(os.environ, COUPON_THREADS="2",
                    COUPON_METRICS_PATH=os.path.join(self.tmp, "metrics"),
                    COUPON_REDIS_WAIT_REPLICAS="1", COUPON_REDIS_WAIT_TIMEOUT_MS="50")
        with open(harness.log_path("fcgi-wait"), "ab") as log:
            self.proc = subprocess.Popen(
                [binary, "-c", harness.env["CONFIG"], "--listen", "unix:" + self.sock,
                 "--workers", "1"], stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=penv, start_new_session=True)

    def tearDown(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def post(self, cid, user):
        try:
            status, headers, body = fcgi_client.request(
                self.sock, "POST", "/api/coupons/%d/issue" % cid, b'{"userId":%d}' % user)
        except OSError:
            return None  # not listening yet
        return status, headers, json.loads(body)

    def test_a_claim_no_replica_has_is_503_then_409_and_persisted_by_the_reconciler(self):
        cid = harness.create_coupon(totalQuantity=5)
        u = harness.new_user()
        # Until the workers serve, an answer is a plain 503 (or none) that claimed nothing.
        r = harness.wait_until(
            lambda: (lambda x: x if x and x[2].get("code") != "SERVICE_UNAVAILABLE" else None)(
                self.post(cid, u)), timeout=20, message="the WAIT workers answering")
        status, headers, doc = r
        self.assertEqual((status, doc["code"]), (503, "REDIS_NOT_REPLICATED"), doc)
        self.assertEqual(headers.get("retry-after"), "1")
        # The claim is in Redis with its pending record: the retry learns its sequence.
        self.assertEqual(harness.redis("HEXISTS", "coupon:{%d}:pending" % cid, str(u)), 1)
        status, _, doc = self.post(cid, u)
        self.assertEqual((status, doc["code"]), (409, "DUPLICATED_COUPON_ISSUE"), doc)
        self.assertIn("(sequence 1)", doc["detail"])
        record = harness.redis("HGET", "coupon:{%d}:pending" % cid, str(u))
        harness.wait_until(lambda: persisted_rows(cid) == 1, timeout=60, interval=0.5,
                           message="the reconciler produced the event and it was persisted")
        self.assertEqual(harness.sql("SELECT event_id, sequence FROM coupon_issue "
                                     "WHERE coupon_id = %d AND user_id = %d" % (cid, u)),
                         [(record.split(":")[0], "1")])
        # The request path produced nothing (the settler saw no acknowledgement).
        status, _, body = fcgi_client.request(self.sock, "GET", "/metrics", b"",
                                              content_type=None)
        samples = dict(line.rsplit(" ", 1) for line in body.decode().splitlines()
                       if line and not line.startswith("#") and " " in line)
        self.assertEqual(samples.get("coupon_issue_events_acked_total", "0"), "0")
        self.assertEqual(samples.get("coupon_issue_not_replicated_total"), "1")


if __name__ == "__main__":
    unittest.main()
