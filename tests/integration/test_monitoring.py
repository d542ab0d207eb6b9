"""The Prometheus and Grafana files in deploy/ against the programs that feed them.

- promtool accepts deploy/prometheus/prometheus.yml and alerts.yml (Debian's prometheus).
- Every metric the dashboard or an alert rule names is exported: compared with a real
  GET /metrics of the running stack (coupon-fcgi's shared counters plus the consumer's
  samples), after enough traffic that every family has samples. The name extraction is
  itself tested on an expression naming a metric nobody exports, so the check can fail.
- The metrics added for the alerts move: worker restarts after a SIGKILLed worker,
  dependency up gauges, pending records and their oldest age from the consumer.
"""

import json
import os
import re
import signal
import subprocess
import unittest

from harness import create_coupon, env, fcgi_worker_pids, http, new_user, wait_until

DEPLOY = os.path.join(env["SRC_DIR"], "deploy")
# Series Prometheus makes itself, not the programs.
PROMETHEUS_OWN = {"up"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
            "or", "unless", "offset", "le", "inf", "nan"}


def metric_names(expr):
    """The metric names a PromQL expression reads (functions, labels, keywords dropped)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)              # strings
    e = re.sub(r"\{[^}]*\}", " ", e)                          # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)                         # ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.$])([A-Za-z_:][A-Za-z0-9_:]*)\b(\s*\()?", e):
        name, call = m.group(1), m.group(2)
        if call or name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names


def dashboard_exprs():
    with open(os.path.join(DEPLOY, "grafana", "coupon-dashboard.json"), encoding="utf-8") as f:
        dash = json.load(f)
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def rule_exprs():
    # The rules file is YAML; its `expr:` values are the only PromQL in it (block
    # scalars `|` continue on the more-indented lines below).
    out, cur, indent = [], None, None
    with open(os.path.join(DEPLOY, "prometheus", "alerts.yml"), encoding="utf-8") as f:
        for line in f:
            if cur is not None:
                ind = len(line) - len(line.lstrip())
                if line.strip() and ind > indent:
                    cur.append(line.strip())
                    continue
                out.append(" ".join(cur))
                cur = None
            m = re.match(r"^(\s*)expr:\s*(.*)$", line)
            if m:
                if m.group(2).strip() in ("|", ">"):
                    cur, indent = [], len(m.group(1))
                else:
                    out.append(m.group(2).strip())
    if cur is not None:
        out.append(" ".join(cur))
    return out


def exported():
    body = http("GET", "/metrics").text
    names = set()
    for line in body.splitlines():
        if line and not line.startswith("#"):
            names.add(re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line).group(0))
    return names, body


def unknown(exprs, names):
    missing = {}
    for e in exprs:
        for n in metric_names(e) - names - PROMETHEUS_OWN:
            missing.setdefault(n, e)
    return missing


class PromtoolTest(unittest.TestCase):
    def promtool(self, *args):
        p = subprocess.run(["promtool", "check"] + list(args), capture_output=True, text=True,
                           timeout=60, check=False)
        print(p.stdout + p.stderr)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p.stdout + p.stderr

    def test_config_is_valid(self):
        out = self.promtool("config", os.path.join(DEPLOY, "prometheus", "prometheus.yml"))
        self.assertIn("1 rule files found", out)

    def test_rules_are_valid(self):
        out = self.promtool("rules", os.path.join(DEPLOY, "prometheus", "alerts.yml"))
        self.assertIn("SUCCESS: 11 rules found", out)


class MetricNamesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Traffic for every family: an issue, a read, the consumer's samples with lag.
        cid = create_coupon(totalQuantity=10)
        assert http("POST", "/api/coupons/%d/issue" % cid, {"userId": new_user()}).status == 201
        assert http("GET", "/api/coupons/%d" % cid).status == 200

        def complete():
            names, _ = exported()
            need = {"coupon_consumer_lag", "coupon_consumer_pending_records",
                    "coupon_http_request_duration_seconds_bucket"}
            return names if need <= names else None
        cls.names = wait_until(complete, 30, 0.5, "consumer samples in /metrics")

    def test_extraction_finds_names_and_only_names(self):
        self.assertEqual(metric_names(
            'histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{route=~"x|y"}'
            '[$__rate_interval]))) / ignoring(x) b_total offset 5m'), {"a_bucket", "b_total"})
        self.assertEqual(metric_names('absent(c_total) or up{job="coupon"} == 0'),
                         {"c_total", "up"})

    def test_the_check_fails_on_a_metric_nobody_exports(self):
        bad = ["sum(rate(coupon_http_requests_total[5m]))",
               "max(coupon_consumer_oldest_pending_secs) > 60"]
        self.assertEqual(unknown(bad, self.names),
                         {"coupon_consumer_oldest_pending_secs": bad[1]})

    def test_dashboard_names_only_exported_metrics(self):
        exprs = dashboard_exprs()
        self.assertGreaterEqual(len(exprs), 20)
        self.assertEqual(unknown(exprs, self.names), {})

    def test_alert_rules_name_only_exported_metrics(self):
        exprs = rule_exprs()
        self.assertEqual(len(exprs), 11)
        self.assertEqual(unknown(exprs, self.names), {})


class AlertMetricsTest(unittest.TestCase):
    def sample(self, pattern):
        _, body = exported()
        m = re.search(r"^" + pattern + r" (\S+)$", body, re.M)
        return float(m.group(1)) if m else None

    def test_dependencies_up(self):
        for dep in ("redis", "kafka", "mariadb"):
            self.assertEqual(self.sample(r'coupon_dependency_up\{dependency="%s"\}' % dep), 1)

    def test_a_killed_worker_counts_as_a_restart(self):
        before = self.sample("coupon_worker_restarts_total")
        self.assertIsNotNone(before)
        pids = fcgi_worker_pids()
        os.kill(pids[0], signal.SIGKILL)
        wait_until(lambda: self.sample("coupon_worker_restarts_total") == before + 1, 10,
                   message="coupon_worker_restarts_total + 1")
        wait_until(lambda: len(fcgi_worker_pids()) == len(pids), 10)

    def test_pending_records_gauges_are_reported(self):
        value = wait_until(lambda: self.sample(
            r'coupon_consumer_oldest_pending_seconds\{instance="[^"]+"\}') is not None, 20)
        self.assertTrue(value)
        self.assertGreaterEqual(
            self.sample(r'coupon_consumer_pending_records\{instance="[^"]+"\}'), 0)


if __name__ == "__main__":
    unittest.main()
