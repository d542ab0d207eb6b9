#!/usr/bin/env python3
"""report.py -- the number crunching of scripts/bench (python3 standard library only).

  report.py scenario --name N --wrk FILE --log FILE --from B --to E --out FILE.json
      One load scenario: wrk's BENCH_JSON line (bench/report.lua) plus the status of
      every request nginx logged between byte offsets B and E of its JSON access log.
      [--cpu-before F --cpu-after F]: CPU time per request of each process group.
  report.py cpu-snapshot --out FILE.json
      utime + stime of nginx, coupon-fcgi, Redis, the Kafka broker, the consumer,
      MariaDB and wrk, read from /proc.
  report.py settle [--max-cores 0.15] [--quiet 2] [--timeout 60]
      Returns once those servers used at most --max-cores in --quiet consecutive
      seconds (what the last scenario left behind - MariaDB flushing, the broker, the
      consumer - has finished), or after --timeout seconds.
  report.py commandstats --out FILE.json < INFO-commandstats
      Redis' per-command calls and microseconds (lines "node NAME" between several
      nodes' outputs: one object per node).
  report.py meta --out FILE.json --started UTC [--quick 0|1] --src REPO --linger S
          [--versions NAME=V...] [--settings NAME=N...]
      The machine (CPUs, model, memory, kernel, git commit), the versions and the
      settings of the run, and the notes the report prints below it.
  report.py drain --out FILE.json --events N --rows N [--issued N] --start MS --first MS
          [--first-rows N] --end MS --produce-start MS --produce-end MS --samples FILE
      The consumer drain: events/s from the start and from the first row, the
      producer's rate, and the consumer's time per step (its metrics, HGETALL).
  report.py rss --out FILE.json [--master PID] [--consumer PID]
      VmRSS and VmHWM of the coupon-fcgi master and its workers, and of the consumer;
      without --master only the consumer's entry of the file is replaced.
  report.py cluster --dir DIR --out PREFIX
      What `scripts/bench --cluster` left in DIR -> PREFIX.json and PREFIX.md: the runs
      beside the ceiling and the one-node run, each master's share of EVALSHA calls,
      the cost of redis_wait_replicas=1, the audits of the 6 coupons of each run.
  report.py final --dir DIR --out PREFIX [--plot bench/plot.gp]
      Everything scripts/bench left in DIR (meta.json, scenario-*.json, audit-*.json,
      drain.json, rss.json) -> PREFIX.json, PREFIX.md and PREFIX.svg (gnuplot).

Requests/s are wrk's: completed requests / wrk's own run time. Latencies are wrk's, in
microseconds in the JSON and milliseconds in the Markdown. Status counts come from the
access log, so counting them costs the client nothing (a wrk response() callback in Lua
would slow wrk down, and wrk shares the two cores with the servers).
"""

import argparse
import collections
import glob
import json
import os
import re
import subprocess
import sys

TARGETS_DOC = "issues 7, 12, 24 and 26"


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def dump(obj, path):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


# ------------------------------------------------------------------- scenario ----

def wrk_json(path):
    text = open(path, encoding="utf-8", errors="replace").read()
    m = re.search(r"^BENCH_JSON (\{.*\})\s*$", text, re.M)
    if not m:
        sys.exit("report.py: no BENCH_JSON line in %s:\n%s" % (path, text[-2000:]))
    return json.loads(m.group(1))


def log_statuses(path, start, end):
    """Counts of status, and of (request line without the protocol, status), in the
    slice [start, end) of nginx's coupon_json access log."""
    by_status = collections.Counter()
    upstream = collections.Counter()
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(max(0, end - start))
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            by_status["unparsed"] += 1
            continue
        by_status[str(rec.get("status"))] += 1
        upstream[rec.get("upstream_status") or "-"] += 1
    return by_status, upstream


# The processes whose CPU time is counted, by their /proc comm.
CPU_GROUPS = {"nginx": "nginx", "coupon-fcgi": "coupon-fcgi", "redis-server": "redis",
              "java": "kafka broker", "coupon-consumer": "consumer", "mariadbd": "mariadb",
              "wrk": "wrk", "ceiling-fcgi": "ceiling-fcgi"}


def group_ticks():
    """utime + stime (clock ticks) per process group."""
    groups = collections.Counter()
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = open(stat, encoding="utf-8", errors="replace").read()
        except OSError:
            continue
        comm = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        # Threads are summed into their process; a thread's comm can differ (librdkafka).
        name = CPU_GROUPS.get(comm)
        if name:
            groups[name] += int(fields[11]) + int(fields[12])
    return groups


def cmd_cpu_snapshot(a):
    """utime + stime (clock ticks) per process group, and the monotonic time."""
    import time as _time
    dump({"t": _time.monotonic(), "ticks": dict(group_ticks()), "hz": os.sysconf("SC_CLK_TCK")},
         a.out)


def cmd_settle(a):
    """Waits until the servers are quiet: their CPU (wrk's aside) below --max-cores in
    each of --quiet consecutive 1 s windows, or --timeout s. Prints what it waited for."""
    import time as _time
    hz, waited, quiet, busiest = float(os.sysconf("SC_CLK_TCK")), 0, 0, {}
    before = group_ticks()
    while quiet < a.quiet and waited < a.timeout:
        _time.sleep(1)
        waited += 1
        now = group_ticks()
        used = {k: (now[k] - before.get(k, 0)) / hz for k in now if k != "wrk"}
        before = now
        if sum(used.values()) <= a.max_cores:
            quiet += 1
        else:
            quiet, busiest = 0, used
    busy = ", ".join("%s %.2f" % kv for kv in sorted(busiest.items(), key=lambda kv: -kv[1])
                     if kv[1] >= 0.05)
    print("settled after %d s%s%s" % (waited, " (timed out)" if quiet < a.quiet else "",
                                       "; last busy second: " + busy if busy else ""))


def cpu_delta(before_path, after_path, requests):
    b, e = load(before_path), load(after_path)
    wall = e["t"] - b["t"]
    out = {}
    for name, ticks in e["ticks"].items():
        used_s = (ticks - b["ticks"].get(name, 0)) / float(e["hz"])
        if used_s <= 0:
            continue
        out[name] = {"cpu_s": round(used_s, 2),
                     "cores": round(used_s / wall, 2) if wall > 0 else 0,
                     "us_per_request": round(used_s * 1e6 / requests, 1) if requests else 0}
    return {"wall_s": round(wall, 1), "groups": out}


def cmd_scenario(a):
    w = wrk_json(a.wrk)
    statuses, upstream = log_statuses(a.log, a.start, a.end)
    dur_s = w["duration_us"] / 1e6
    e = w["errors"]
    five = sum(n for s, n in statuses.items() if s.isdigit() and int(s) >= 500)
    out = {
        "name": a.name,
        "title": a.title,
        "method": a.method,
        "path": a.path,
        "duration_s": round(dur_s, 3),
        "connections": a.connections,
        "wrk_threads": w["threads"],
        "requests": w["requests"],
        "requests_per_s": round(w["requests"] / dur_s, 1) if dur_s > 0 else 0,
        "latency_ms": {k: round(v / 1000.0, 3) for k, v in w["latency_us"].items()},
        "client_status_errors": e["status"],
        "client_2xx_3xx": w["requests"] - e["status"],
        "socket_errors": {k: e[k] for k in ("connect", "read", "write", "timeout")},
        "socket_errors_total": e["connect"] + e["read"] + e["write"] + e["timeout"],
        "sent": w["sent"],
        "in_flight_at_stop": (w["sent"] - w["requests"]) if w["sent"] is not None else None,
        "status_counts": dict(sorted(statuses.items())),
        "upstream_status_counts": dict(sorted(upstream.items())),
        "logged_requests": sum(statuses.values()),
        "http_5xx": five,
        "loadavg_before": a.loadavg,
    }
    if a.cpu_before and a.cpu_after:
        out["cpu"] = cpu_delta(a.cpu_before, a.cpu_after, w["requests"])
    dump(out, a.out)


def attach_commandstats(d, by):
    """redis-NAME.json (INFO commandstats over scenario NAME) -> that scenario's
    "redis_commands"."""
    for p in glob.glob(os.path.join(d, "redis-*.json")):
        name = os.path.basename(p)[len("redis-"):-len(".json")]
        if name in by:
            by[name]["redis_commands"] = load(p)


# ------------------------------------------- what a run records beside the scenarios ----

def cmd_commandstats(a):
    """Redis' INFO commandstats on stdin -> {command: {calls, usec, usec_per_call}}; with
    lines "node NAME" between the nodes' outputs (the cluster run's masters), one such
    object per node instead ({"redis-I": ...})."""
    out = node = {}
    for line in sys.stdin:
        line = line.strip()
        if line.startswith("node "):
            node = out[line[5:]] = {}
            continue
        m = re.match(r"cmdstat_(\w+):calls=(\d+),usec=(\d+),usec_per_call=([\d.]+)", line)
        if m:
            node[m.group(1)] = {"calls": int(m.group(2)), "usec": int(m.group(3)),
                                "usec_per_call": float(m.group(4))}
    dump(out, a.out)


def first_match(path, pattern):
    """Group 1 of PATTERN's first match in the text file PATH ("" when none)."""
    m = re.search(pattern, open(path, encoding="utf-8", errors="replace").read(), re.M)
    return m.group(1) if m else ""


def git_revision(src):
    """The short commit of SRC, and whether the working tree differs from it."""
    def git(*args):
        r = subprocess.run(["git", "-C", src] + list(args), capture_output=True, text=True,
                           check=False)
        return r.stdout.strip() if r.returncode == 0 else None
    rev = git("rev-parse", "--short", "HEAD") or "unknown"
    return rev + (" (with uncommitted changes)" if git("status", "--porcelain") else "")


def cmd_meta(a):
    """The machine, the versions (--versions NAME=V..., strings) and the settings
    (--settings NAME=N..., whole numbers) of the run, in that order, and the notes the
    report prints."""
    cpus = len(os.sched_getaffinity(0))
    meta = {"started_utc": a.started, "quick": bool(a.quick), "git": git_revision(a.src),
            "cpus": cpus,
            "cpu_model": first_match("/proc/cpuinfo", r"^model name\s*: (.*)$"),
            "memory": "%.1f GiB RAM" % (int(first_match("/proc/meminfo",
                                                        r"^MemTotal:\s*(\d+)")) / 1048576),
            "kernel": os.uname().release}
    for name, value in (kv.split("=", 1) for kv in a.versions):
        meta[name] = value
    for name, value in (kv.split("=", 1) for kv in a.settings):
        meta[name] = int(value)
    meta["notes"] = [
        "wrk -t%d and all servers (nginx, coupon-fcgi, Redis, Kafka, MariaDB) share the same "
        "%d CPUs; the machine is also shared with other work (see the load averages)."
        % (meta["wrk_threads"], cpus),
        "Status counts come from nginx's access log (no Lua response() callback in wrk); wrk "
        "keeps its sockets open %d s after the run so the answers in flight are delivered "
        "and logged." % a.linger,
        "Unmeasured warm-ups first: %d s on the issue path (a fresh Kafka broker spends a "
        "large share of the CPU in its JIT compilers at first), %d s on the read path and on "
        "the ceiling." % (meta["warmup_issue_s"], meta["warmup_s"]),
    ]
    dump(meta, a.out)


def cmd_drain(a):
    """The drain's timings (milliseconds of the wall clock, taken by scripts/bench) and
    the consumer's own step counters (--samples: HGETALL of its metrics, name and value
    on alternate lines) -> its events/s, from the start and from the first row."""
    lines = open(a.samples, encoding="utf-8").read().split("\n")
    samples = {lines[i]: lines[i + 1] for i in range(0, len(lines) - 1, 2)}
    steps = {}
    for step in ("decode", "persist", "publish", "settle", "offset_commit"):
        v = samples.get("coupon_consumer_%s_microseconds_total" % step)
        if v is not None:
            steps[step + "_s"] = round(int(v) / 1e6, 2)
    if "coupon_consumer_batches_total" in samples:
        steps["batches"] = int(samples["coupon_consumer_batches_total"])
    n, rows = a.events, a.rows
    total = max(a.end - a.start, 1) / 1000.0
    steady = max(a.end - a.first, 1) / 1000.0
    produce = a.produce_end - a.produce_start
    dump({"events": n, "rows": rows, "issued_quantity": a.issued, "complete": rows == n,
          "total_s": round(total, 2), "first_row_s": round((a.first - a.start) / 1000, 2),
          "events_per_s": round(rows / total),
          "steady_events_per_s": round((rows - a.first_rows) / steady),
          "produce_s": round(produce / 1000, 2),
          "produce_events_per_s": round(n / max(produce, 1) * 1000), "steps": steps}, a.out)


def proc_memory(pid):
    """{"pid", "vmrss_kib", "vmhwm_kib"} of PID (0 when it is gone)."""
    def kib(field):
        try:
            return int(first_match("/proc/%d/status" % pid, r"^%s:\s*(\d+)" % field) or 0)
        except OSError:
            return 0
    return {"pid": pid, "vmrss_kib": kib("VmRSS"), "vmhwm_kib": kib("VmHWM")}


def children(pid):
    """The pids whose parent is PID, in order."""
    kids = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = open(stat, encoding="utf-8", errors="replace").read()
        except OSError:
            continue
        if int(text[text.rindex(")") + 2:].split()[1]) == pid:
            kids.append(int(stat.split("/")[2]))
    return sorted(kids)


def cmd_rss(a):
    """Resident memory of the coupon-fcgi master and its workers (--master) and of the
    consumer (--consumer) into --out; without --master, the consumer's replaces the one
    the file had (its memory after the drain)."""
    doc = load(a.out) if a.master is None and os.path.exists(a.out) else {}
    if a.master is not None:
        doc["fcgi_master"] = proc_memory(a.master)
        doc["fcgi_workers"] = [proc_memory(p) for p in children(a.master)]
    if a.consumer is not None:
        doc["consumer"] = proc_memory(a.consumer)
    dump(doc, a.out)


# ---------------------------------------------------------------------- final ----

def fmt_ms(v):
    return "%.2f" % v


def fmt_int(v):
    return "{:,}".format(int(v))


def ratio(x, ceiling):
    return round(x / ceiling, 3) if ceiling else None


def evaluate(doc):
    """The targets of issue 7, each with the measured value and met / not met."""
    sc = {s["name"]: s for s in doc["scenarios"]}
    best = best_ceiling(doc["scenarios"]) or {"requests_per_s": 0, "name": "-",
                                              "latency_ms": {"p99": 0}}
    ceil = best["requests_per_s"]
    t = []

    def add(name, target, value, met):
        t.append({"target": name, "goal": target, "measured": value, "met": bool(met)})

    for name, need in (("issue", 0.40), ("issue-jwt", 0.50), ("issue-jwt-3x", 0.55),
                       ("reference", 0.60), ("read", 0.85), ("soldout", 0.85),
                       ("redeem", 0.50)):
        if name in sc:
            r = ratio(sc[name]["requests_per_s"], ceil) or 0
            add("%s path vs ceiling" % name, ">= %d%% of the ceiling (%s)"
                % (round(need * 100), best["name"]),
                "%.1f%% (%s of %s req/s)" % (r * 100, fmt_int(sc[name]["requests_per_s"]),
                                              fmt_int(ceil)), r >= need)
    for name in ("issue", "issue-jwt", "redeem", "hold"):
        if name not in sc:
            continue
        p99, cp99 = sc[name]["latency_ms"]["p99"], best["latency_ms"]["p99"]
        add("%s: p99 latency" % name, "<= 2 x the ceiling run's p99 (%s ms)" % fmt_ms(cp99),
            "%s ms (%.2f x)" % (fmt_ms(p99), p99 / cp99 if cp99 else 0), p99 <= 2 * cp99)
        other = {k: v for k, v in sc[name]["status_counts"].items() if k != "201"}
        add("%s: answers other than 201" % name, "0", ", ".join(
            "%s: %s" % kv for kv in sorted(other.items())) or "0", not other)
    if "issue-jwt-3x" in sc:
        # Each token three times: exactly one 201 per two 409s, nothing else.
        st = sc["issue-jwt-3x"]["status_counts"]
        other = {k: v for k, v in st.items() if k not in ("201", "409")}
        add("issue-jwt-3x: answers other than 201/409", "0", ", ".join(
            "%s: %s" % kv for kv in sorted(other.items())) or "0", not other)
    five = sum(s["http_5xx"] for s in doc["scenarios"])
    sock = sum(s["socket_errors_total"] for s in doc["scenarios"])
    add("5xx answers (all scenarios)", "0", str(five), five == 0)
    add("socket errors (all scenarios)", "0", str(sock), sock == 0)
    for au in doc["audits"]:
        add("audit %s" % au["scenario"], "exact", "PASS" if au["pass"] else
            "FAIL (%s)" % "; ".join(au["problems"]), au["pass"])
    d = doc.get("drain")
    if d:
        add("consumer drain", ">= 50,000 events/s",
            "%s events/s (%s events)" % (fmt_int(d["events_per_s"]), fmt_int(d["events"])),
            d["complete"] and d["events_per_s"] >= 50000)
    rss = doc.get("rss", {})
    workers = rss.get("fcgi_workers", [])
    if workers:
        worst = max(w["vmrss_kib"] for w in workers)
        add("worker resident memory", "<= 32 MiB each",
            ", ".join("%.1f MiB" % (w["vmrss_kib"] / 1024.0) for w in workers),
            worst <= 32 * 1024)
    return t


def checkout_problems(au, h):
    """A checkout run's own accounting (steps > 1): each redemption (and each confirmed
    hold) is in MariaDB at the version its steps make, nothing waits in Redis or in the
    outbox, and Kafka has one coupon.redeemed per redeemed row. The 201s the run may
    have: one per claim, one per hold (those still held when the run stopped, and the
    confirmed ones) and one per redemption."""
    problems = []
    red = au["redeemed_rows"]
    if not (red == au["redeemed_at_version"] == au["redeemed_events"]):
        problems.append("redeemed rows %d, at version %d %d, coupon.redeemed events %d"
                        % (red, au["steps"] - 1, au["redeemed_at_version"],
                           au["redeemed_events"]))
    if au["redis_rpending"] or au["outbox_left"]:
        problems.append("left: %d records in rpending, %d outbox rows"
                        % (au["redis_rpending"], au["outbox_left"]))
    return problems, h + au["held_rows"] + (au["steps"] - 1) * red


def audit_verdict(au, scen):
    """Exact accounting of one issue-path run. The server's truth: every 201/202 nginx
    delivered for this coupon == HLEN users == rows == issued_quantity, nobody twice
    (a checkout run: the claims' 201s plus its redemptions', checkout_problems). The
    client's view: wrk saw `client_2xx` successes and left `in_flight` requests
    unanswered when it stopped, so client_2xx <= the 2xx expected <= client_2xx +
    in_flight."""
    problems = []
    st = scen["status_counts"]
    server_ok = st.get("201", 0) + st.get("202", 0)
    client = scen["client_2xx_3xx"]
    inflight = scen["in_flight_at_stop"] or 0
    h, rows, q, dup = au["redis_users"], au["db_rows"], au["issued_quantity"], au["db_duplicates"]
    expected = h
    if au.get("steps", 1) > 1:
        more, expected = checkout_problems(au, h)
        problems += more
    if not (server_ok == expected and h == rows == q):
        problems.append("nginx 201+202 %d (expected %d), Redis %d, rows %d, issued_quantity %s"
                        % (server_ok, expected, h, rows, q))
    if dup != 0:
        problems.append("%d users twice" % dup)
    if not (client <= expected <= client + inflight):
        problems.append("client saw %d, %d in flight, expected %d" % (client, inflight, expected))
    if st.get("499", 0):
        problems.append("%d requests aborted (499): their outcome is unknown to nginx"
                        % st["499"])
    if au.get("stock") is not None:
        au["sold_out"] = h == au["stock"]
        if h > au["stock"] or rows > au["stock"]:
            problems.append("oversold: stock %d, Redis %d, rows %d" % (au["stock"], h, rows))
    if au.get("redis_pending", 0):
        problems.append("%d issuances still pending (202)" % au["redis_pending"])
    if not au.get("caught_up", False):
        problems.append("consumer had not caught up after %s s" % au.get("waited_s"))
    au.update({"nginx_201_202": server_ok, "client_2xx": client, "client_in_flight": inflight,
               "pass": not problems, "problems": problems})
    return au


def svg_chart(doc, prefix, plot):
    dat = prefix + ".dat"
    with open(dat, "w", encoding="utf-8") as f:
        f.write("# scenario requests_per_s p99_ms avg_ms\n")
        for s in doc["scenarios"]:
            f.write('"%s" %.1f %.3f %.3f\n' % (s["name"], s["requests_per_s"],
                                               s["latency_ms"]["p99"], s["latency_ms"]["mean"]))
    out = prefix + ".svg"
    title = "coupon bench %s (%s connections, %s cores shared by wrk and servers)" % (
        doc["meta"]["started_utc"], doc["meta"]["connections"], doc["meta"]["cpus"])
    try:
        subprocess.run(["gnuplot", "-e", "datafile='%s'; outfile='%s'; charttitle='%s'"
                        % (dat, out, title.replace("'", "")), plot], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        print("report.py: gnuplot failed: %s" % exc, file=sys.stderr)
        out = None
    finally:
        os.unlink(dat)
    return out


def markdown(doc, chart):
    m = doc["meta"]
    L = []
    L.append("# Benchmark %s%s" % (m["started_utc"], " (quick smoke run)" if m["quick"] else ""))
    L.append("")
    L.append("Produced by `scripts/bench%s` (see bench/README.md). Commit %s." %
             (" --quick" if m["quick"] else "", m["git"]))
    L.append("")
    L.append("**Machine**: %s CPUs (%s), %s, kernel %s. **wrk and every server share these %s "
             "cores** (wrk -t%s -c%s runs on the same machine), and other work on the machine "
             "shows in the load averages below." % (m["cpus"], m["cpu_model"], m["memory"],
                                                    m["kernel"], m["cpus"], m["wrk_threads"],
                                                    m["connections"]))
    L.append("")
    L.append("**Stack**: nginx %s (deploy/nginx/, 2 workers) -> coupon-fcgi standalone, "
             "%s workers x %s threads on a unix socket; Redis %s; MariaDB %s; Kafka %s; one "
             "coupon-consumer. Ceiling: bench/ceiling-fcgi, same workers, %s threads each "
             "(%s behind deploy/nginx's pool of %s kept connections per nginx worker), behind "
             "copies of the same nginx site." % (
                 m["nginx"], m["workers"], m["threads"], m["redis"], m["mariadb"], m["kafka"],
                 m.get("ceiling_threads", "-"), m.get("pool_ceiling_threads", "-"),
                 m.get("deploy_pool", "-")))
    L.append("")
    if chart:
        L.append("![requests/s and p99 per scenario](%s)" % os.path.basename(chart))
        L.append("")
    L.append("## Targets (%s)" % TARGETS_DOC)
    L.append("")
    L.append("| target | goal | measured | |")
    L.append("|---|---|---|---|")
    for t in doc["targets"]:
        L.append("| %s | %s | %s | %s |" % (t["target"], t["goal"], t["measured"],
                                            "met" if t["met"] else "**not met**"))
    L.append("")
    L.append("## Scenarios")
    L.append("")
    L.append("| scenario | req/s | vs ceiling | avg ms | p50 | p95 | p99 | max | requests "
             "| 5xx | socket errors |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for s in doc["scenarios"]:
        lat = s["latency_ms"]
        L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %d |" % (
            s["name"], fmt_int(s["requests_per_s"]),
            "%.1f%%" % (s["ratio_to_ceiling"] * 100) if s["ratio_to_ceiling"] is not None else "-",
            fmt_ms(lat["mean"]), fmt_ms(lat["p50"]), fmt_ms(lat["p95"]), fmt_ms(lat["p99"]),
            fmt_ms(lat["max"]), fmt_int(s["requests"]), s["http_5xx"], s["socket_errors_total"]))
    L.append("")
    for s in doc["scenarios"]:
        L.append("### %s: %s" % (s["name"], s["title"]))
        L.append("")
        L.append("`%s %s`, %s connections, %s s, wrk -t%s; load average before: %s." % (
            s["method"], s["path"], s["connections"], s["duration_s"], s["wrk_threads"],
            s["loadavg_before"]))
        L.append("")
        L.append("| measure | value |")
        L.append("|---|---|")
        lat = s["latency_ms"]
        rows = [
            ("requests/s", fmt_int(s["requests_per_s"])),
            ("ratio to the ceiling", "%.3f" % s["ratio_to_ceiling"]
             if s["ratio_to_ceiling"] is not None else "-"),
            ("requests completed (client)", fmt_int(s["requests"])),
            ("latency avg / p50 / p90 / p95 / p99 / p99.9 / max (ms)",
             " / ".join(fmt_ms(lat[k]) for k in ("mean", "p50", "p90", "p95", "p99", "p999",
                                                 "max"))),
            ("status counts (nginx access log)",
             ", ".join("%s: %s" % (k, fmt_int(v)) for k, v in s["status_counts"].items())
             or "-"),
            ("client: 2xx/3xx, >= 400", "%s, %s" % (fmt_int(s["client_2xx_3xx"]),
                                                    fmt_int(s["client_status_errors"]))),
            ("socket errors connect/read/write/timeout",
             "/".join(str(s["socket_errors"][k]) for k in ("connect", "read", "write",
                                                           "timeout"))),
        ]
        if s["in_flight_at_stop"] is not None:
            rows.append(("requests in flight when wrk stopped", fmt_int(s["in_flight_at_stop"])))
        for k, v in rows:
            L.append("| %s | %s |" % (k, v))
        L.append("")
        cmds = s.get("redis_commands")
        if cmds:
            L.append("Redis commands during the run (`INFO commandstats`, after CONFIG "
                     "RESETSTAT): " + ", ".join(
                         "%s %s calls, %.2f µs/call" % (k, fmt_int(v["calls"]),
                                                        v["usec_per_call"])
                         for k, v in sorted(cmds.items(), key=lambda kv: -kv[1]["usec"])[:6]))
            L.append("")
        cpu = s.get("cpu")
        if cpu:
            L.append("CPU time per request while it ran (from /proc, user + system; %s s "
                     "of wall time on %s CPUs):" % (cpu["wall_s"], m["cpus"]))
            L.append("")
            L.append("| process | µs per request | cores used |")
            L.append("|---|---|---|")
            for name, v in sorted(cpu["groups"].items(), key=lambda kv: -kv[1]["us_per_request"]):
                L.append("| %s | %.1f | %.2f |" % (name, v["us_per_request"], v["cores"]))
            L.append("")
        for au in doc["audits"]:
            if au["scenario"] != s["name"]:
                continue
            L.append("**Audit (coupon %s)**: %s -- nginx delivered 201/202: %s; client saw "
                     "2xx: %s (+%s in flight at stop); Redis HLEN users: %s; rows in "
                     "coupon_issue: %s; coupon.issued_quantity: %s; users twice: %s; "
                     "pending: %s; consumer caught up after %s s.%s" % (
                         au["coupon_id"], "PASS" if au["pass"] else "FAIL",
                         fmt_int(au["nginx_201_202"]), fmt_int(au["client_2xx"]),
                         fmt_int(au["client_in_flight"]), fmt_int(au["redis_users"]),
                         fmt_int(au["db_rows"]), au["issued_quantity"], au["db_duplicates"],
                         au.get("redis_pending", 0), au["waited_s"],
                         "" if au.get("stock") is None else " Stock %s: %s." % (
                             fmt_int(au["stock"]),
                             "sold out" if au["sold_out"] else "not sold out")))
            if au["problems"]:
                L.append("")
                for p in au["problems"]:
                    L.append("- %s" % p)
            L.append("")
    d = doc.get("drain")
    if d:
        L.append("### drain: consumer backlog")
        L.append("")
        L.append("The consumer was stopped, %s valid events were produced to `coupon.issue` "
                 "(kcat, %s s, %s events/s), then one coupon-consumer was started and timed "
                 "until `coupon_issue` held every row." % (fmt_int(d["events"]),
                                                          d["produce_s"],
                                                          fmt_int(d["produce_events_per_s"])))
        L.append("")
        L.append("| measure | value |")
        L.append("|---|---|")
        for k, v in (("events/s, start to last row", fmt_int(d["events_per_s"])),
                     ("events/s, first row to last row", fmt_int(d["steady_events_per_s"])),
                     ("start to first row (s)", d["first_row_s"]),
                     ("start to last row (s)", d["total_s"]),
                     ("rows / issued_quantity", "%s / %s" % (fmt_int(d["rows"]),
                                                             d["issued_quantity"])),
                     ("complete", "yes" if d["complete"] else "**no**")):
            L.append("| %s | %s |" % (k, v))
        st = d.get("steps") or {}
        if st.get("batches"):
            L.append("| batches (average size) | %s (%s) |" % (
                fmt_int(st["batches"]), fmt_int(round(d["rows"] / st["batches"]))))
            for key, what in (("decode_s", "decoding the events (part of the next row)"),
                              ("persist_s", "MariaDB transaction (decode, insert, commit)"),
                              ("publish_s", "waiting for coupon.issued acknowledgements"),
                              ("settle_s", "pending records (Redis HDEL)"),
                              ("offset_commit_s", "offset commit")):
                if key in st:
                    L.append("| time in step: %s (s) | %s |" % (what, st[key]))
        L.append("")
    rss = doc.get("rss", {})
    if rss:
        L.append("### Resident memory after the runs")
        L.append("")
        L.append("| process | VmRSS MiB | VmHWM (peak) MiB |")
        L.append("|---|---|---|")
        for w in rss.get("fcgi_workers", []):
            L.append("| coupon-fcgi worker %s | %.1f | %.1f |" % (
                w["pid"], w["vmrss_kib"] / 1024.0, w["vmhwm_kib"] / 1024.0))
        for key, label in (("fcgi_master", "coupon-fcgi master"), ("consumer", "coupon-consumer")):
            p = rss.get(key)
            if p:
                L.append("| %s %s | %.1f | %.1f |" % (label, p["pid"], p["vmrss_kib"] / 1024.0,
                                                      p["vmhwm_kib"] / 1024.0))
        L.append("")
    if doc.get("notes"):
        L.append("## Notes")
        L.append("")
        for n in doc["notes"]:
            L.append("- %s" % n)
        L.append("")
    return "\n".join(L)


ORDER = ["ceiling", "ceiling-kept", "ceiling-pool", "issue", "issue-consumer-paused", "issue-kafka",
         "issue-fsync-everysec", "reference", "read", "soldout"]
CEILINGS = ("ceiling", "ceiling-kept", "ceiling-pool")


def best_ceiling(scenarios):
    """The best of the trivial-responder runs (without FastCGI connection reuse, with 4
    kept connections per nginx worker, with deploy/nginx's pool) in this run: the
    ceiling every ratio is taken against."""
    runs = [s for s in scenarios if s["name"] in CEILINGS]
    return max(runs, key=lambda s: s["requests_per_s"]) if runs else None


def cmd_final(a):
    d = a.dir
    meta = load(os.path.join(d, "meta.json"))
    scen = [load(p) for p in glob.glob(os.path.join(d, "scenario-*.json"))]
    scen.sort(key=lambda s: ORDER.index(s["name"]) if s["name"] in ORDER else 99)
    best = best_ceiling(scen)
    ceil = best["requests_per_s"] if best else None
    for s in scen:
        s["ratio_to_ceiling"] = ratio(s["requests_per_s"], ceil) if ceil else None
    by = {s["name"]: s for s in scen}
    attach_commandstats(d, by)
    audits = []
    for p in sorted(glob.glob(os.path.join(d, "audit-*.json"))):
        au = load(p)
        audits.append(audit_verdict(au, by[au["scenario"]]))
    doc = {"meta": meta, "scenarios": scen, "audits": audits}
    if os.path.exists(os.path.join(d, "drain.json")):
        doc["drain"] = load(os.path.join(d, "drain.json"))
    if os.path.exists(os.path.join(d, "rss.json")):
        doc["rss"] = load(os.path.join(d, "rss.json"))
    doc["notes"] = meta.pop("notes", [])
    # Little's law: with C connections always busy, average latency = C / throughput.
    if ceil:
        doc["notes"].append(
            "Little's law at %d connections: an average of <= 20 ms needs >= %s req/s, and the "
            "ceiling itself measured %s req/s (average %s ms); every scenario slower than the "
            "ceiling has a proportionally higher average at this concurrency." % (
                meta["connections"], fmt_int(meta["connections"] / 0.020), fmt_int(ceil),
                fmt_ms(best["latency_ms"]["mean"])))
    doc["targets"] = evaluate(doc)
    chart = svg_chart(doc, a.out, a.plot) if a.plot else None
    doc["chart"] = os.path.basename(chart) if chart else None
    dump(doc, a.out + ".json")
    with open(a.out + ".md", "w", encoding="utf-8") as f:
        f.write(markdown(doc, chart))
        f.write("\n")
    # A short summary on stdout for the terminal.
    for s in scen:
        print("%-10s %9s req/s  avg %7s ms  p99 %7s ms  5xx %d  sockerr %d%s" % (
            s["name"], fmt_int(s["requests_per_s"]), fmt_ms(s["latency_ms"]["mean"]),
            fmt_ms(s["latency_ms"]["p99"]), s["http_5xx"], s["socket_errors_total"],
            "  (%.1f%% of ceiling)" % (s["ratio_to_ceiling"] * 100)
            if s["ratio_to_ceiling"] is not None and s["name"] != "ceiling" else ""))
    for au in audits:
        print("audit %-10s %s  nginx 201/202 %d  client %d (+%d in flight)  Redis %d  rows %d  "
              "issued_quantity %s  twice %d" % (
                  au["scenario"], "PASS" if au["pass"] else "FAIL", au["nginx_201_202"],
                  au["client_2xx"], au["client_in_flight"], au["redis_users"], au["db_rows"],
                  au["issued_quantity"], au["db_duplicates"]))
        for p in au["problems"]:
            print("      %s" % p)
    if "drain" in doc:
        dr = doc["drain"]
        print("drain      %s events in %s s: %s events/s (steady %s)" % (
            fmt_int(dr["events"]), dr["total_s"], fmt_int(dr["events_per_s"]),
            fmt_int(dr["steady_events_per_s"])))
    met = sum(1 for t in doc["targets"] if t["met"])
    print("targets met: %d of %d" % (met, len(doc["targets"])))
    for t in doc["targets"]:
        if not t["met"]:
            print("  not met: %s (%s): %s" % (t["target"], t["goal"], t["measured"]))


# -------------------------------------------------------------------- cluster ----

CLUSTER_ORDER = ["ceiling-kept", "single", "cluster-wait1", "cluster-wait0"]


def combined_audit(d, name):
    """The audits of scenario NAME's coupons (audit-NAME-ID.json) summed into one, so
    audit_verdict checks the run as a whole: every 201 nginx delivered == the users of
    all 6 coupons in Redis == their rows == their issued_quantity."""
    parts = [load(p) for p in sorted(glob.glob(os.path.join(d, "audit-%s-*.json" % name)))]
    if not parts:
        return None
    total = {"scenario": name, "coupons": [a["coupon_id"] for a in parts], "stock": None,
             "caught_up": all(a["caught_up"] for a in parts),
             "waited_s": max(a["waited_s"] for a in parts)}
    for k in ("redis_users", "redis_pending", "db_rows", "issued_quantity", "db_duplicates"):
        total[k] = sum(a[k] or 0 for a in parts)
    total["per_coupon_users"] = [a["redis_users"] for a in parts]
    return total


def master_balance(d, name):
    """{"redis-I": EVALSHA calls} of each master over scenario NAME, and the spread."""
    path = os.path.join(d, "masters-%s.json" % name)
    if not os.path.exists(path):
        return None
    stats = load(path)
    calls = {node: c.get("evalsha", {}).get("calls", 0) for node, c in sorted(stats.items())}
    total = sum(calls.values())
    return {"evalsha_calls": calls, "total": total,
            "max_share": round(max(calls.values()) / total, 3) if total else None,
            "usec_per_evalsha": {node: c.get("evalsha", {}).get("usec_per_call")
                                 for node, c in sorted(stats.items())},
            "wait_calls": {node: c.get("wait", {}).get("calls", 0)
                           for node, c in sorted(stats.items())}}


def cmd_cluster(a):
    d = a.dir
    meta = load(os.path.join(d, "meta.json"))
    scen = [load(p) for p in glob.glob(os.path.join(d, "scenario-*.json"))]
    scen.sort(key=lambda s: CLUSTER_ORDER.index(s["name"]) if s["name"] in CLUSTER_ORDER
              else 99)
    by = {s["name"]: s for s in scen}
    ceil = by.get("ceiling-kept", {}).get("requests_per_s")
    single = by.get("single", {}).get("requests_per_s")
    audits = []
    for s in scen:
        s["ratio_to_ceiling"] = ratio(s["requests_per_s"], ceil) if ceil else None
        s["ratio_to_single"] = ratio(s["requests_per_s"], single) if single else None
        bal = master_balance(d, s["name"])
        if bal:
            s["masters"] = bal
        au = combined_audit(d, s["name"])
        if au:
            audits.append(audit_verdict(au, s))
    w1, w0 = by.get("cluster-wait1"), by.get("cluster-wait0")
    wait_cost = None
    if w1 and w0 and w0["requests_per_s"]:
        wait_cost = {"throughput_ratio": ratio(w1["requests_per_s"], w0["requests_per_s"]),
                     "p99_ms": [w1["latency_ms"]["p99"], w0["latency_ms"]["p99"]]}
    doc = {"meta": meta, "scenarios": scen, "audits": audits, "wait_replicas_cost": wait_cost}
    dump(doc, a.out + ".json")
    lines = ["# scripts/bench --cluster, %s (git %s)" % (meta["started_utc"], meta["git"]), "",
             "%d CPUs shared by every server and wrk (-t%d -c%d, %d s per run); each app host "
             "%d workers x %d threads. Ratios are to the ceiling (trivial FastCGI responder, "
             "kept connections) and to the one-node run, both measured in this run." % (
                 meta["cpus"], meta["wrk_threads"], meta["connections"], meta["duration_s"],
                 meta["workers_per_app_host"], meta["threads"]), "",
             "| run | req/s | vs ceiling | vs one node | avg ms | p99 ms | 5xx | socket errors "
             "| statuses |", "|---|---|---|---|---|---|---|---|---|"]
    for s in scen:
        lines.append("| %s | %s | %s | %s | %s | %s | %d | %d | %s |" % (
            s["name"], fmt_int(s["requests_per_s"]),
            "%.1f %%" % (s["ratio_to_ceiling"] * 100) if s["ratio_to_ceiling"] else "-",
            "%.2f x" % s["ratio_to_single"] if s["ratio_to_single"] else "-",
            fmt_ms(s["latency_ms"]["mean"]), fmt_ms(s["latency_ms"]["p99"]), s["http_5xx"],
            s["socket_errors_total"],
            ", ".join("%s: %s" % kv for kv in s["status_counts"].items())))
    lines += ["", "## Balance over the masters (EVALSHA calls during the run)", ""]
    for s in scen:
        if "masters" in s:
            m = s["masters"]
            lines.append("- %s: %s (largest share %.1f %%; WAIT calls %s; µs per EVALSHA %s)" % (
                s["name"], ", ".join("%s %s" % (k, fmt_int(v)) for k, v in
                                     m["evalsha_calls"].items()),
                (m["max_share"] or 0) * 100,
                ", ".join("%s %s" % kv for kv in m["wait_calls"].items()),
                ", ".join("%s %s" % kv for kv in m["usec_per_evalsha"].items())))
    if wait_cost:
        lines += ["", "## Cost of redis_wait_replicas=1", "",
                  "wait 1 / wait 0 throughput: %.2f; p99 %s ms vs %s ms." % (
                      wait_cost["throughput_ratio"], fmt_ms(wait_cost["p99_ms"][0]),
                      fmt_ms(wait_cost["p99_ms"][1]))]
    lines += ["", "## Audits (all 6 coupons of a run together)", ""]
    for au in audits:
        lines.append("- %s: %s - nginx 201 %d, Redis users %d (per coupon %s), rows %d, "
                     "issued_quantity %s, twice %d, pending %d%s" % (
                         au["scenario"], "PASS" if au["pass"] else "FAIL", au["nginx_201_202"],
                         au["redis_users"], au["per_coupon_users"], au["db_rows"],
                         au["issued_quantity"], au["db_duplicates"], au["redis_pending"],
                         "".join("; " + p for p in au["problems"])))
    with open(a.out + ".md", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines[6:]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("scenario")
    s.add_argument("--name", required=True)
    s.add_argument("--title", default="")
    s.add_argument("--method", default="GET")
    s.add_argument("--path", default="/")
    s.add_argument("--connections", type=int, required=True)
    s.add_argument("--wrk", required=True)
    s.add_argument("--log", required=True)
    s.add_argument("--from", dest="start", type=int, required=True)
    s.add_argument("--to", dest="end", type=int, required=True)
    s.add_argument("--loadavg", default="")
    s.add_argument("--cpu-before")
    s.add_argument("--cpu-after")
    s.add_argument("--out", required=True)
    c = sub.add_parser("cpu-snapshot")
    c.add_argument("--out", required=True)
    w = sub.add_parser("settle")
    w.add_argument("--max-cores", type=float, default=0.15)
    w.add_argument("--quiet", type=int, default=2)
    w.add_argument("--timeout", type=int, default=60)
    f = sub.add_parser("final")
    f.add_argument("--dir", required=True)
    f.add_argument("--out", required=True)
    f.add_argument("--plot")
    k = sub.add_parser("cluster")
    k.add_argument("--dir", required=True)
    k.add_argument("--out", required=True)
    sub.add_parser("commandstats").add_argument("--out", required=True)
    m = sub.add_parser("meta")
    m.add_argument("--out", required=True)
    m.add_argument("--started", required=True)
    m.add_argument("--quick", type=int, default=0)
    m.add_argument("--src", required=True)
    m.add_argument("--linger", type=int, required=True)
    m.add_argument("--versions", nargs="+", action="extend", default=[])
    m.add_argument("--settings", nargs="+", action="extend", default=[])
    d = sub.add_parser("drain")
    for opt in ("--events", "--rows", "--start", "--first", "--end", "--produce-start",
                "--produce-end"):
        d.add_argument(opt, type=int, required=True)
    d.add_argument("--first-rows", type=int, default=0)
    d.add_argument("--issued", type=int)
    d.add_argument("--samples", required=True)
    d.add_argument("--out", required=True)
    r = sub.add_parser("rss")
    r.add_argument("--out", required=True)
    r.add_argument("--master", type=int)
    r.add_argument("--consumer", type=int)
    a = ap.parse_args()
    {"scenario": cmd_scenario, "cpu-snapshot": cmd_cpu_snapshot, "settle": cmd_settle,
     "cluster": cmd_cluster, "final": cmd_final, "commandstats": cmd_commandstats,
     "meta": cmd_meta, "drain": cmd_drain, "rss": cmd_rss}[a.cmd](a)


if __name__ == "__main__":
    main()
