"""Smoke suite of the stack itself: every real server is up, reachable and configured the
way the programs expect (versions printed for the test log), and the whole chain
nginx/lighttpd -> coupon-fcgi -> Redis, MariaDB, Kafka answers GET /api/health.

It runs before the behaviour suites only by name order; it does not depend on them."""

import os
import subprocess
import unittest

import harness
from harness import env


def _cmd_first_line(*cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return (r.stdout + r.stderr).strip().splitlines()[0]


class StackServers(unittest.TestCase):

    def test_server_versions_are_printed(self):
        redis_version = [line for line in harness.redis("INFO", "server").splitlines()
                         if line.startswith("redis_version:")][0].split(":", 1)[1]
        mariadb_version = harness.sql("SELECT VERSION()")[0][0]
        kafka_version = "?"
        with open(harness.log_path("kafka"), encoding="utf-8", errors="replace") as f:
            for line in f:
                if "Kafka version: " in line:
                    kafka_version = line.split("Kafka version: ", 1)[1].split()[0]
        print("\n  Redis   %s\n  MariaDB %s\n  Kafka   %s\n  nginx   %s\n  lighttpd %s"
              % (redis_version, mariadb_version, kafka_version,
                 _cmd_first_line("nginx", "-v"), _cmd_first_line("lighttpd", "-v")))
        self.assertTrue(redis_version.startswith("7."), redis_version)
        self.assertIn("MariaDB", mariadb_version)
        self.assertNotEqual(kafka_version, "?", "no 'Kafka version' line in the broker log")

    def test_redis_answers_ping_with_aof_on(self):
        self.assertEqual(harness.redis("PING"), "PONG")
        self.assertEqual(harness.redis("CONFIG", "GET", "appendonly"), ["appendonly", "yes"])
        self.assertEqual(harness.redis("CONFIG", "GET", "appendfsync"),
                         ["appendfsync", "always"])

    def test_mariadb_has_the_schema_in_utc(self):
        tables = {row[0] for row in harness.sql("SHOW TABLES")}
        self.assertTrue({"coupon", "coupon_issue", "schema_migrations"} <= tables, tables)
        applied = [row[0] for row in harness.sql("SELECT version FROM schema_migrations")]
        self.assertIn("001_init", applied)
        row = harness.sql("SELECT @@global.time_zone, @@character_set_server")[0]
        self.assertEqual(row, ("+00:00", "utf8mb4"))

    def test_sql_returns_null_as_none(self):
        self.assertEqual(harness.sql("SELECT NULL, 'a\\tb', 3"), [(None, "a\tb", "3")])

    def test_kafka_topics_exist_with_their_partitions(self):
        topics = harness.kafka_topics()
        self.assertEqual(topics.get("coupon.issue"), 6, topics)
        self.assertEqual(topics.get("coupon.issued"), 6, topics)
        self.assertEqual(topics.get("coupon.issue.dlq"), 1, topics)

    def test_config_file_is_private_and_complete(self):
        mode = os.stat(env["CONFIG"]).st_mode & 0o777
        self.assertEqual(mode, 0o600)
        with open(env["CONFIG"], encoding="utf-8") as f:
            keys = {line.split("=", 1)[0].strip() for line in f
                    if "=" in line and not line.startswith("#")}
        for k in ("listen", "workers", "threads", "metrics_path", "admin_token",
                  "redis_port", "kafka_brokers", "db_host", "db_port", "db_user",
                  "db_password"):
            self.assertIn(k, keys)


@unittest.skipUnless(harness.APP, "COUPON_TEST_WITHOUT_APP: programs not running")
class StackHealth(unittest.TestCase):

    def check_health(self, server):
        r = harness.wait_until(
            lambda: (lambda r: r if r.status == 200 else None)(
                harness.http("GET", "/api/health", server=server)),
            timeout=15, message="GET /api/health through %s answering 200" % server)
        self.assertTrue(r.headers.get("content-type", "").startswith("application/json"),
                        r.headers)
        doc = r.json()
        self.assertEqual(doc.get("status"), "UP", doc)
        components = doc.get("components", {})
        for name in ("redis", "kafka", "mariadb"):
            self.assertIn(name, components, doc)

    def test_health_through_nginx(self):
        self.check_health("nginx")

    def test_health_through_lighttpd(self):
        self.check_health("lighttpd")

    def test_fcgi_runs_four_workers(self):
        self.assertIsNotNone(harness.fcgi_master_pid())
        harness.wait_until(lambda: len(harness.fcgi_worker_pids()) == 4, timeout=10,
                           message="four coupon-fcgi workers")


class StackRestart(unittest.TestCase):
    """The harness' server_stop/server_start, which the failure suites rely on."""

    def test_redis_restart_keeps_data(self):
        key = "it:stack:restart"
        harness.redis("SET", key, "kept")
        try:
            harness.server_stop("redis")
            with self.assertRaises(OSError):
                harness.redis("PING", timeout=1)
        finally:
            harness.server_start("redis")
        self.assertEqual(harness.redis("GET", key), "kept")
        harness.redis("DEL", key)


if __name__ == "__main__":
    unittest.main()
