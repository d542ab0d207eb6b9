"""coupon-consumer (issue #4) against the real Kafka broker and MariaDB: the exactly-once
effect under SIGKILL and redelivery, MariaDB stopped for 10 s in the middle of 20,000
events, poison events in the DLQ with their reason, two consumers sharing the group, three
consumers persisting the same coupons without a deadlock, and exactly one coupon.issued
event (by event id) per persisted row - also across a SIGKILL, since coupon.issued is
written to the MariaDB outbox with its row (issue 13) and relayed at least once. Events
are produced straight to coupon.issue (as the issue path would) for coupons inserted with
SQL."""

import json
import os
import re
import signal
import subprocess
import time
import unittest
import uuid

import harness



def sql_coupon():
    tag = uuid.uuid4().hex[:12]
    harness.sql("INSERT INTO coupon (title, code, coupon_type, discount_type, discount_value, "
                "start_at, end_at, total_quantity) VALUES ('cons-%s', 'CO%s', 'GENERAL', "
                "'AMOUNT', 100, UTC_TIMESTAMP(3) - INTERVAL 1 HOUR, "
                "UTC_TIMESTAMP(3) + INTERVAL 1 HOUR, NULL)" % (tag, tag.upper()))
    return int(harness.sql("SELECT id FROM coupon WHERE code = 'CO%s'" % tag.upper())[0][0])


def events(coupon_id, n):
    """n valid coupon.issue events for distinct new users: [(key, value)]."""
    out = []
    for seq in range(1, n + 1):
        user = harness.new_user()
        ev = {"eventId": uuid.uuid4().hex, "couponId": coupon_id, "userId": user,
              "sequence": seq, "issuedAt": "2026-11-25T00:00:00.000Z"}
        out.append(("%d:%d" % (coupon_id, user), json.dumps(ev, separators=(",", ":"))))
    return out


def bulk_produce(messages, topic="coupon.issue"):
    """One kcat process for many messages (key TAB value per line), acks=all."""
    data = "".join("%s\t%s\n" % kv for kv in messages).encode()
    r = subprocess.run(["kcat", "-P", "-b", harness.env["KAFKA_BOOTSTRAP"], "-t", topic,
                        "-K", "\t", "-X", "acks=all"], input=data, capture_output=True,
                       timeout=300, check=False)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.decode())


def rows(coupon_id):
    return int(harness.sql("SELECT COUNT(*) FROM coupon_issue WHERE coupon_id = %d"
                           % coupon_id)[0][0])


def issued_quantity(coupon_id):
    return int(harness.sql("SELECT issued_quantity FROM coupon WHERE id = %d"
                           % coupon_id)[0][0])


def db_rows(coupon_id):
    """{(user_id, id)} of the coupon's rows in coupon_issue."""
    return {(int(u), int(i)) for u, i in harness.sql(
        "SELECT user_id, id FROM coupon_issue WHERE coupon_id = %d" % coupon_id)}


def issued_events(coupon_id):
    """coupon.issued of the coupon, one per event id (the relay publishes at least once:
    a copy of an event carries its id)."""
    by_id = {}
    for m in harness.kafka_messages("coupon.issued"):
        e = json.loads(m["value"])
        if e["couponId"] == coupon_id:
            assert by_id.setdefault(e["eventId"], e) == e, "two events share id %r" % e
    return list(by_id.values())


def outbox_drained():
    return harness.sql("SELECT COUNT(*) FROM event_outbox")[0][0] == "0"


def announced_rows(coupon_id, n):
    """Waits for the relay to publish every outbox row, then {(userId, id)} announced."""
    harness.wait_until(outbox_drained, timeout=60, interval=0.5, message="outbox relayed")
    harness.wait_until(lambda: len(issued_events(coupon_id)) >= n, timeout=30, interval=0.5,
                       message="%d coupon.issued events" % n)
    return {(e["userId"], e["id"]) for e in issued_events(coupon_id)}


def running_consumers():
    return [p for p in os.listdir(harness.env["PID_DIR"]) if p.startswith("consumer-")]


def share_the_partitions(names):
    """Whether consumers NAMES ('consumer-1', ...) each hold some of coupon.issue's 6
    partitions and together all of them, by the last assignment each logged."""
    counts = []
    for name in names:
        last = [ln for ln in harness.consumer_log(name).splitlines()
                if "assigned " in ln and "partitions" in ln]
        if not last:
            return False
        counts.append(int(last[-1].split("assigned ")[1].split()[0]))
    return sum(counts) == 6 and min(counts) > 0


def only_consumer_pid():
    names = running_consumers()
    assert len(names) == 1, names
    return harness._pidfile_pid(os.path.join(harness.env["PID_DIR"], names[0]))


def consumer_samples(pid):
    """{name: value} of the unlabelled coupon_consumer_* samples that GET /metrics shows
    for the consumer process PID (instance "<host>-<pid>")."""
    out = {}
    for line in harness.http("GET", "/metrics").text.splitlines():
        m = re.match(r'^(coupon_consumer_\w+)\{instance="[^"]*-(\d+)"\} (\S+)$', line)
        if m and int(m.group(2)) == pid:
            out[m.group(1)] = float(m.group(3))
    return out


class ConsumerSuite(unittest.TestCase):

    def tearDown(self):
        # Leave exactly one healthy consumer for the suites after this one.
        harness.consumers_stop()
        harness.consumer_start()

    def assert_exact(self, coupon_id, n):
        self.assertEqual(rows(coupon_id), n)
        self.assertEqual(issued_quantity(coupon_id), n)
        dup = harness.sql("SELECT COUNT(*) - COUNT(DISTINCT user_id) FROM coupon_issue "
                          "WHERE coupon_id = %d" % coupon_id)[0][0]
        self.assertEqual(dup, "0")

    def test_sigkill_mid_stream_then_restart_persists_each_event_once(self):
        harness.consumers_stop()
        cid = sql_coupon()
        n = 6000
        msgs = events(cid, n)
        # Redelivery on top of the crash: the first 500 events are in the topic twice.
        bulk_produce(msgs + msgs[:500])
        harness.consumer_start({"COUPON_CONSUMER_BATCH_MAX": "200"})
        harness.wait_until(lambda: rows(cid) >= 600, timeout=60, message="a few batches in")
        harness.consumers_stop(sig=signal.SIGKILL)
        partial = rows(cid)
        self.assertLess(partial, n, "the consumer finished before it was killed")
        self.assertEqual(issued_quantity(cid), partial)  # same transaction as the rows
        harness.consumer_start()
        harness.wait_until(lambda: rows(cid) == n, timeout=120, interval=0.5,
                           message="%d rows after the restart" % n)
        time.sleep(1)  # anything redelivered late would show now
        self.assert_exact(cid, n)
        # Each row announced, including those committed just before the SIGKILL: the
        # announcement is an outbox row of the same transaction (the old gap is closed).
        self.assertEqual(announced_rows(cid, n), db_rows(cid))
        announced = [(e["userId"], e["id"]) for e in issued_events(cid)]
        self.assertEqual(len(announced), len(set(announced)),
                         "a row announced under two event ids on coupon.issued")
        # The events delivered twice met their rows: the optimistic INSERT of those
        # batches hit a duplicate key and ran again the checking way (counted).
        pid = only_consumer_pid()
        harness.wait_until(lambda: consumer_samples(pid).get(
            "coupon_consumer_redelivered_batches_total", 0) >= 1, timeout=10,
            message="a batch run again after a duplicate key")
        print("\n  killed at %d of %d rows; coupon.issued carries %d" % (partial, n,
                                                                      len(announced)))

    def test_mariadb_down_for_10_s_in_the_middle_of_20000_events(self):
        cid = sql_coupon()
        n = 20000
        bulk_produce(events(cid, n))
        harness.wait_until(lambda: rows(cid) > 0, timeout=60, message="persisting started")
        harness.server_stop("mariadb")
        try:
            time.sleep(10)
        finally:
            harness.server_start("mariadb")
        harness.wait_until(lambda: rows(cid) == n, timeout=180, interval=0.5,
                           message="all %d rows after MariaDB came back" % n)
        time.sleep(1)
        self.assert_exact(cid, n)
        self.assertEqual(announced_rows(cid, n), db_rows(cid),
                         "coupon.issued differs from the persisted rows")
        log = open(harness.log_path("consumer-1"), encoding="utf-8", errors="replace").read()
        self.assertIn("not persisted; retrying", log)

    def test_poison_events_go_to_the_dlq_with_their_reason(self):
        cid = sql_coupon()
        good = events(cid, 5)
        missing = int(harness.sql("SELECT COALESCE(MAX(id), 0) + 777777 FROM coupon")[0][0])
        unknown = events(missing, 1)
        tag = uuid.uuid4().hex
        bad = [("poison:%s:1" % tag, "not json " + tag),
               ("poison:%s:2" % tag, json.dumps({"eventId": tag, "couponId": cid})),
               ("poison:%s:3" % tag, json.dumps({"eventId": tag, "couponId": cid, "userId": -1,
                                                 "sequence": 1,
                                                 "issuedAt": "2026-11-25T00:00:00.000Z"}))]
        pid = only_consumer_pid()
        bulk_produce([good[0], bad[0], good[1], bad[1], good[2], unknown[0], bad[2]] + good[3:])
        harness.wait_until(lambda: rows(cid) == 5, timeout=60, message="the 5 good events")

        def dlq():
            mine = [m for m in harness.kafka_messages("coupon.issue.dlq")
                    if (m["key"] or "").startswith("poison:%s" % tag) or
                    (m["key"] or "").startswith("%d:" % missing)]
            return mine if len(mine) == 4 else None
        mine = harness.wait_until(dlq, timeout=30, message="4 events in the DLQ")
        reasons = {m["key"]: m["headers"].get("reason") for m in mine}
        for key, reason in reasons.items():
            self.assertTrue(reason, "no reason header on %s" % key)
        self.assertEqual(reasons[unknown[0][0]], "unknown coupon")
        self.assert_exact(cid, 5)
        # The stream went on: a later event still lands.
        bulk_produce(events(cid, 1))
        harness.wait_until(lambda: rows(cid) == 6, timeout=30, message="stream continues")
        # /metrics counts what this consumer (started fresh by the last tearDown) did:
        # 10 events, 6 rows, 4 in the DLQ; published once a second.
        want = {"coupon_consumer_events_total": 10, "coupon_consumer_rows_inserted_total": 6,
                "coupon_consumer_dlq_total": 4}
        seen = {}

        def counted():
            seen.clear()
            seen.update(consumer_samples(pid))
            return all(seen.get(k) == v for k, v in want.items())
        try:
            harness.wait_until(counted, timeout=10, interval=0.5,
                               message="consumer counters in /metrics")
        except AssertionError as e:
            raise AssertionError("%s; last seen %s" % (e, seen)) from None
        for name in ("coupon_consumer_batches_total", "coupon_consumer_persist_microseconds_total",
                     "coupon_consumer_publish_microseconds_total",
                     "coupon_consumer_offset_commit_microseconds_total"):
            self.assertGreater(seen.get(name, 0), 0, name)

    def test_two_consumers_share_the_partitions_and_persist_each_event_once(self):
        second = harness.consumer_start()
        self.assertIsNone(second.poll())
        names = sorted(p[:-4] for p in running_consumers())
        self.assertEqual(len(names), 2, names)
        harness.wait_until(lambda: share_the_partitions(names), timeout=60, interval=0.5,
                           message="6 partitions split over 2 consumers")
        cid = sql_coupon()
        n = 4000
        bulk_produce(events(cid, n))
        harness.wait_until(lambda: rows(cid) == n, timeout=90, interval=0.5,
                           message="%d rows from two consumers" % n)
        time.sleep(1)
        self.assert_exact(cid, n)
        announced_rows(cid, n)
        per_consumer = {}
        for e in issued_events(cid):
            per_consumer[e["id"]] = per_consumer.get(e["id"], 0) + 1
        self.assertEqual(len(per_consumer), n)
        self.assertEqual(set(per_consumer.values()), {1})

    def test_three_consumers_of_the_same_coupons_never_deadlock(self):
        # One coupon's events are on every partition, so each consumer's transactions
        # add to the same coupon rows. Small batches: many transactions side by side.
        harness.consumers_stop()
        for _ in range(3):
            harness.consumer_start({"COUPON_CONSUMER_BATCH_MAX": "50"})
        names = sorted(p[:-4] for p in running_consumers())
        self.assertEqual(len(names), 3, names)
        harness.wait_until(lambda: share_the_partitions(names), timeout=60, interval=0.5,
                           message="6 partitions split over 3 consumers")
        cids = [sql_coupon() for _ in range(3)]
        n = 3000
        per_coupon = [events(cid, n) for cid in cids]
        bulk_produce([m for ms in zip(*per_coupon) for m in ms])  # interleaved
        harness.wait_until(lambda: all(rows(cid) == n for cid in cids), timeout=180,
                           interval=0.5, message="%d rows of each of 3 coupons" % n)
        time.sleep(1)
        for cid in cids:
            self.assert_exact(cid, n)
        logs = {name: harness.consumer_log(name) for name in names}
        deadlocks = {name: log.count("Deadlock found") for name, log in logs.items()}
        retries = {name: log.count("not persisted; retrying") for name, log in logs.items()}
        print("\n  3 x %d rows; deadlocks per consumer %r, batches retried %r" % (
            n, deadlocks, retries))
        self.assertEqual(sum(deadlocks.values()), 0, deadlocks)

    def test_sigterm_finishes_the_batch_and_leaves_the_group(self):
        cid = sql_coupon()
        bulk_produce(events(cid, 300))
        harness.wait_until(lambda: rows(cid) == 300, timeout=60, message="300 rows")
        statuses = harness.consumers_stop(sig=signal.SIGTERM)
        # Exit status is known for consumers this suite started (None for the runner's).
        self.assertTrue(statuses and all(v in (0, None) for v in statuses.values()), statuses)
        log = open(harness.log_path("consumer-1"), encoding="utf-8", errors="replace").read()
        self.assertIn("leaving the group", log)


if __name__ == "__main__":
    unittest.main()
