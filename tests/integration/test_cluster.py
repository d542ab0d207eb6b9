"""The cluster layout (issue #14), run by `tests/integration/run --cluster`: a Redis
Cluster of 6 nodes, 3 Kafka brokers, MariaDB, 3 consumers in one group and two coupon-fcgi
app hosts behind one nginx upstream, all on 127.0.0.1.

For now only the smoke test of the layout itself: every server is there and configured
as the scenarios (a race over 6 coupons on 3 masters, a master SIGKILLed mid-sale, a
reshard, a broker and a consumer SIGKILLed) will need it."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness
from harness import env

TOPICS = {"coupon.issue": 6, "coupon.issued": 6, "coupon.issue.dlq": 1,
          "coupon.redemption": 6}


def _conf(path):
    """{key: value} of a `key = value` or `key=value` file (comments and blanks skipped)."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if sep:
                out[key.strip()] = value.strip()
            else:
                key, _, value = line.partition(" ")
                out[key] = value.strip()
    return out


def _upstream_servers(http_conf_text):
    """The `server` lines of the upstream coupon_fcgi block."""
    block = re.search(r"upstream coupon_fcgi \{(.*?)\n\}", http_conf_text, re.S).group(1)
    return [m.group(1) for m in re.finditer(r"^\s*server\s+([^\s;]+)[^;]*;", block, re.M)]


@unittest.skipUnless(harness.CLUSTER, "needs the cluster layout (run --cluster)")
class ClusterStackSmoke(unittest.TestCase):

    def test_three_masters_each_with_one_replica_cover_every_slot(self):
        nodes = harness.env["REDIS_NODES"].split(",")
        self.assertEqual(len(nodes), 6, nodes)
        slots = harness.cluster_slots()
        masters = sorted(m for _, _, m, _ in slots)
        self.assertEqual(len(masters), 3, slots)
        self.assertEqual(len(set(masters)), 3, slots)
        self.assertEqual(sorted(int(m) for m in env["REDIS_MASTERS"].split(",")), masters)
        # Every slot exactly once: the ranges, sorted, tile 0..16383.
        expect_lo = 0
        for lo, hi, master, replicas in slots:
            self.assertEqual(lo, expect_lo, slots)
            self.assertEqual(len(replicas), 1, "master redis-%d: replicas %r" % (master,
                                                                                replicas))
            self.assertNotIn(replicas[0], masters)
            expect_lo = hi + 1
        self.assertEqual(expect_lo, 16384, slots)
        replicas = sorted(r[0] for _, _, _, r in slots)
        self.assertEqual(sorted(masters + replicas), [1, 2, 3, 4, 5, 6])
        for i in range(1, 7):
            info = dict(line.split(":", 1) for line in
                        harness.redis_node(i, "CLUSTER", "INFO").split("\r\n") if ":" in line)
            self.assertEqual(info["cluster_state"], "ok", (i, info))
            self.assertEqual(info["cluster_slots_ok"], "16384", (i, info))
            self.assertEqual(info["cluster_known_nodes"], "6", (i, info))
            repl = harness.redis_node(i, "INFO", "replication")
            if i in masters:
                self.assertIn("connected_slaves:1\r\n", repl, (i, repl))
            else:
                self.assertIn("master_link_status:up", repl, (i, repl))
            self.assertEqual(harness.redis_node(i, "CONFIG", "GET", "appendfsync"),
                             ["appendfsync", "always"])
            self.assertEqual(harness.redis_node(i, "CONFIG", "GET", "cluster-node-timeout"),
                             ["cluster-node-timeout", "2000"])

    def test_key_slots_and_routing_agree_with_redis(self):
        keys = ["coupon:{1}:meta", "coupon:{1}:users", "coupon:{987654}:pending", "plain",
                "a{}b", "{x}{y}", "it:cluster:{routing}"]
        for k in keys:
            self.assertEqual(harness.key_slot(k), harness.redis_node(1, "CLUSTER", "KEYSLOT", k),
                             k)
        # The routed redis() reaches each master through MOVED from wherever it starts.
        per_master = {}
        for n in range(200):
            key = "it:cluster:route:%d" % n
            per_master.setdefault(harness.cluster_master_of(key), key)
        self.assertEqual(len(per_master), 3, per_master)
        for master, key in per_master.items():
            self.assertEqual(harness.redis("SET", key, "v%d" % master), "OK")
            self.assertEqual(harness.redis("GET", key), "v%d" % master)
            self.assertEqual(harness.redis_node(master, "GET", key), "v%d" % master)
            self.assertEqual(harness.redis("DEL", key), 1)

    def test_six_coupon_ids_two_on_each_master(self):
        picked = harness.pick_coupon_ids_per_master(range(1, 10000), per_master=2)
        self.assertEqual(sorted(picked), sorted(m for _, _, m, _ in harness.cluster_slots()))
        ids = [cid for v in picked.values() for cid in v]
        self.assertEqual(len(set(ids)), 6, picked)
        for master, cids in picked.items():
            self.assertEqual(len(cids), 2, picked)
            for cid in cids:
                slot = harness.redis_node(master, "CLUSTER", "KEYSLOT", "coupon:{%d}:meta" % cid)
                self.assertEqual(harness.cluster_master_of(slot), master, (cid, slot))
                # All the keys of one coupon share its slot (the scripts touch several).
                for suffix in ("users", "seq", "free", "pending", "doc"):
                    self.assertEqual(harness.key_slot("coupon:{%d}:%s" % (cid, suffix)), slot)

    def test_three_brokers_and_every_partition_at_isr_3(self):
        brokers = harness.kafka_brokers()
        self.assertEqual(sorted(brokers), [1, 2, 3], brokers)
        self.assertEqual(sorted(brokers.values()), sorted(env["KAFKA_BOOTSTRAP"].split(",")))
        topics = harness.kafka_topics()
        for topic, parts in TOPICS.items():
            self.assertEqual(topics.get(topic), parts, topics)
            for p in harness.kafka_partitions(topic):
                self.assertEqual(sorted(p["replicas"]), [1, 2, 3], (topic, p))
                self.assertEqual(sorted(p["isrs"]), [1, 2, 3], (topic, p))
        for i in (1, 2, 3):
            props = _conf(os.path.join(env["STATE_DIR"], "kafka-%d" % i, "server.properties"))
            self.assertEqual(props["node.id"], str(i))
            self.assertEqual(len(props["controller.quorum.voters"].split(",")), 3)
            self.assertEqual(props["min.insync.replicas"], "2")
            self.assertEqual(props["default.replication.factor"], "3")
            self.assertEqual(props["offsets.topic.replication.factor"], "3")
            self.assertEqual(props["transaction.state.log.replication.factor"], "3")
            self.assertEqual(props["transaction.state.log.min.isr"], "2")

    def test_nginx_has_one_upstream_with_both_app_hosts(self):
        with open(os.path.join(env["NGINX_CONF_DIR"], "coupon-http.conf"),
                  encoding="utf-8") as f:
            servers = _upstream_servers(f.read())
        sockets = env["FCGI_SOCKETS"].split(",")
        self.assertEqual(len(sockets), 2)
        self.assertEqual(servers, ["unix:" + s for s in sockets])
        with open(os.path.join(env["NGINX_CONF_DIR"], "coupon.conf"), encoding="utf-8") as f:
            site = f.read()
        # An issue POST is never retried on the other app host.
        self.assertRegex(site, r"\n\s*fastcgi_next_upstream off;")
        self.assertNotRegex(site, r"fastcgi_next_upstream (?!off)")
        pid = harness._pidfile_pid(os.path.join(env["PID_DIR"], "nginx.pid"))
        self.assertIsNotNone(pid, "nginx is not running")

    def test_deploy_upstream_example_passes_nginx_t(self):
        """deploy/nginx/upstream-two-hosts.conf in place of the rendered upstream block."""
        with open(os.path.join(env["SRC_DIR"], "deploy", "nginx", "upstream-two-hosts.conf"),
                  encoding="utf-8") as f:
            example = f.read()
        self.assertEqual(len(_upstream_servers(example)), 2)
        block = re.search(r"^upstream coupon_fcgi \{.*?\n\}", example, re.S | re.M).group(0)
        conf_dir = env["NGINX_CONF_DIR"]
        tmp = tempfile.mkdtemp(dir=env["STATE_DIR"])
        try:
            with open(os.path.join(conf_dir, "coupon-http.conf"), encoding="utf-8") as f:
                http = re.sub(r"^upstream coupon_fcgi \{.*?\n\}", lambda _: block, f.read(),
                              flags=re.S | re.M)
            with open(os.path.join(tmp, "coupon-http.conf"), "w", encoding="utf-8") as f:
                f.write(http)
            with open(os.path.join(conf_dir, "nginx.conf"), encoding="utf-8") as f:
                main = f.read().replace(os.path.join(conf_dir, "coupon-http.conf"),
                                        os.path.join(tmp, "coupon-http.conf"))
            main = re.sub(r"^pid .*;$", "pid %s/nginx.pid;" % tmp, main, flags=re.M)
            with open(os.path.join(tmp, "nginx.conf"), "w", encoding="utf-8") as f:
                f.write(main)
            r = subprocess.run(["nginx", "-t", "-q", "-e", "stderr", "-p", tmp + "/", "-c",
                                os.path.join(tmp, "nginx.conf")],
                               capture_output=True, text=True, timeout=30, check=False)
            self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))
        finally:
            shutil.rmtree(tmp)

    def test_program_configs_name_the_whole_cluster(self):
        seeds = env["REDIS_NODES"]
        confs = env["CONFIGS"].split(",") + [env["CONSUMER_CONFIG"]]
        self.assertEqual(len(confs), 3)
        for path in confs:
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o600, path)
            c = _conf(path)
            self.assertEqual(c["redis_cluster"], seeds, path)
            self.assertEqual(len(c["redis_cluster"].split(",")), 6)
            self.assertEqual(c["redis_wait_replicas"], "1", path)
            self.assertEqual(c["kafka_brokers"], env["KAFKA_BOOTSTRAP"], path)
            self.assertNotIn("redis_port", c, path)
        app = [_conf(p) for p in env["CONFIGS"].split(",")]
        self.assertEqual([a["listen"] for a in app],
                         ["unix:" + s for s in env["FCGI_SOCKETS"].split(",")])
        self.assertNotEqual(app[0]["metrics_path"], app[1]["metrics_path"])

    def test_deploy_examples_keep_the_stacks_durability_settings(self):
        deploy = os.path.join(env["SRC_DIR"], "deploy")
        node = _conf(os.path.join(deploy, "redis", "redis-cluster-node.conf"))
        for key in ("appendonly", "appendfsync", "cluster-enabled", "maxmemory-policy",
                    "cluster-require-full-coverage", "cluster-allow-reads-when-down"):
            for i in range(1, 7):
                self.assertEqual(harness.redis_node(i, "CONFIG", "GET", key), [key, node[key]],
                                 "redis-%d %s" % (i, key))
        broker = _conf(os.path.join(deploy, "kafka", "broker.properties"))
        running = _conf(os.path.join(env["STATE_DIR"], "kafka-1", "server.properties"))
        for key in ("process.roles", "default.replication.factor", "min.insync.replicas",
                    "offsets.topic.replication.factor",
                    "transaction.state.log.replication.factor",
                    "transaction.state.log.min.isr", "auto.create.topics.enable"):
            self.assertEqual(broker[key], running[key], key)
        example = _conf(os.path.join(deploy, "coupon-cluster.conf.example"))
        self.assertEqual(example["redis_wait_replicas"], "1")
        self.assertEqual(len(example["redis_cluster"].split(",")), 6)
        self.assertEqual(len(example["kafka_brokers"].split(",")), 3)

    @unittest.skipUnless(harness.APP, "the programs do not know redis_cluster yet: not started")
    def test_consumer_group_has_exactly_three_members(self):
        # Members that joined a rebalance still in progress hold no partitions yet: wait
        # for the assignment of all of coupon.issue's partitions.
        def settled():
            m = harness.kafka_group_members()
            return m if sum(x["partitions"] for x in m) == TOPICS["coupon.issue"] else None

        members = harness.wait_until(settled, timeout=90, interval=1,
                                     message="coupon.issue's partitions assigned in the group")
        self.assertEqual(len(members), 3, members)
        # Shared: every consumer holds some of them.
        self.assertTrue(all(m["partitions"] > 0 for m in members), members)

    @unittest.skipUnless(harness.APP, "the programs do not know redis_cluster yet: not started")
    def test_health_through_nginx_and_both_app_hosts(self):
        harness.wait_until(lambda: harness.http("GET", "/api/health").status == 200,
                           timeout=30, message="GET /api/health through nginx")
        for i in (1, 2):
            self.assertIsNotNone(harness._pidfile_pid(
                os.path.join(env["PID_DIR"], "coupon-fcgi-%d.pid" % i)))


if __name__ == "__main__":
    unittest.main()
