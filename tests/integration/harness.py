"""Shared harness of the integration suites (python3 standard library only).

tests/integration/run starts the whole stack once (Redis, MariaDB, Kafka, coupon-consumer,
coupon-fcgi, nginx, lighttpd) and exports COUPON_TEST_ENV, the path of a KEY='value' file
with every address; this module reads it at import and offers small, blocking helpers:

  http(method, path, body=None, headers=None, server='nginx', source=None) -> Resp
      server: 'nginx' | 'lighttpd' (the stack's coupon-fcgi, issue_ack=redis) |
      'kafka-ack' (a second coupon-fcgi with issue_ack=kafka, over FastCGI directly) |
      cluster layout: 'app-1' / 'app-2' (one app host, over FastCGI on its socket)
  redis(*args) -> decoded reply                 sql(query) -> [tuple of str/None]
  kafka_messages(topic) -> [dict]               kafka_produce(topic, [(key, value)], headers)
  kafka_topics() -> {name: partitions}
  server_stop(name) / server_start(name)        'redis', 'mariadb', 'kafka'
  server_kill(name)                              SIGKILL (a crash), then start it again
  consumer_start() -> Popen                     consumers_stop(sig=SIGTERM)
  consumer_log(name) -> what consumer NAME logged since consumer_start
  fcgi_master_pid() / fcgi_worker_pids()    child_pids(pid)
  create_coupon(**overrides) -> id              admin_headers()
  new_user() -> a user id no other call (in any suite of the run) returned
  wait_until(predicate, timeout, interval)
  env: dict of the file (REDIS_PORT, DB_PORT, DB_SOCKET, KAFKA_BOOTSTRAP, HTTP_NGINX,
       HTTP_LIGHTTPD, ADMIN_TOKEN, CONFIG, STATE_DIR, BUILD_DIR, SRC_DIR, LOG_DIR, ...)

The cluster layout (tests/integration/run --cluster, CLUSTER = True; env adds
REDIS_NODES, REDIS_MASTERS, KAFKA_BOOTSTRAP of 3 brokers, FCGI_SOCKETS, CONFIGS,
CONSUMER_CONFIG, CONSUMERS, CONSUMER_GROUP, NGINX_CONF_DIR). Nodes are numbered from 1,
like their processes (redis-1..6, kafka-1..3, consumer-1..3, app 1..2 = coupon-fcgi-1..2):
  redis(*args)                   routed by key: MOVED and ASK followed, a dead node skipped
  redis_node(i, *args)           straight to node i, no redirection
  key_slot(key) / coupon_slot(coupon_id)       the hash slot (CRC16, hash tags)
  cluster_slots() -> [(lo, hi, master, [replicas])]    cluster_master_of(key) -> index
  cluster_wait_failover(key, timeout) -> index of the live master serving key's slot
  node_stop(kind, i) / node_start(kind, i) / node_kill(kind, i)   kind: 'redis', 'kafka',
      'consumer', 'app' (SIGTERM / start again from its data / SIGKILL)
  node_running(kind, i) / node_pid(kind, i)     cluster_node_id(i)             cluster_replica_ready(i)    cluster_promote(i)
      (a replica made master again by a manual CLUSTER FAILOVER)
  cluster_migrate_slot(slot, dst, hold_s=0, times=None) -> the old master
      (IMPORTING/MIGRATING, MIGRATE, NODE; HOLD_S keeps it split longer, TIMES gets when)
  kafka_wait_isr(timeout)        every partition back at ISR 3
  app_socket(i), http(..., server='app-1'|'app-2'), app_metrics(i) -> {series: value}
  pick_coupon_ids_per_master(ids, per_master=2) -> {master: [id, ...]}
  create_coupons_per_master(per_master=2, **fields) -> {master: [id, ...]}
  kafka_partitions(topic) -> [{partition, leader, replicas, isrs}]
  kafka_group_members(group=None) -> [{consumer_id, host, client_id, partitions}]

Every helper opens what it needs per call (a socket, a CLI process), so it keeps working
across server_stop/server_start. Servers and programs are stopped by the runner at the
end, whatever a suite left running; a suite that stops a server should start it again
(in tearDown) so that later suites see a whole stack.
"""

import datetime
import glob
import http.client as httpclient
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import threading
import time
import uuid

import fcgi_client

__all__ = [
    "env", "Resp", "RedisError", "SqlError", "OMIT",
    "http", "redis", "sql", "kafka_messages", "kafka_produce", "kafka_topics",
    "server_stop", "server_start", "server_kill", "consumer_start", "consumers_stop",
    "fcgi_master_pid", "fcgi_worker_pids", "child_pids", "create_coupon", "admin_headers",
    "new_user", "consumer_holds_all_partitions", "consumer_log",
    "wait_until", "log_path",
    "CLUSTER", "app_socket", "redis_node", "key_slot", "coupon_slot", "cluster_slots", "cluster_master_of",
    "cluster_wait_failover", "node_stop", "node_start", "node_kill", "node_running",
    "node_pid",
    "cluster_node_id",
    "cluster_replica_ready", "cluster_promote", "cluster_migrate_slot", "kafka_wait_isr",
    "app_metrics",
    "pick_coupon_ids_per_master", "create_coupons_per_master", "kafka_brokers",
    "kafka_partitions", "kafka_group_members",
]


def _load_env():
    path = os.environ.get("COUPON_TEST_ENV")
    if not path:
        raise RuntimeError("COUPON_TEST_ENV is not set: run the suites through "
                           "tests/integration/run")
    values = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, _, raw = line.partition("=")
            parts = shlex.split(raw)
            values[key] = parts[0] if parts else ""
    return values


env = _load_env()
APP = env.get("APP", "1") == "1"
CLUSTER = env.get("CLUSTER", "0") == "1"


def log_path(name):
    """Path of a process' log in the state folder, e.g. log_path('coupon-fcgi')."""
    return os.path.join(env["LOG_DIR"], name + ".log")


# ------------------------------------------------------------------------ HTTP ----

class Resp:
    """An HTTP answer: status (int), headers (lower-case names; repeated ones joined by
    ', '), body (bytes)."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    @property
    def text(self):
        return self.body.decode("utf-8", errors="replace")

    def __repr__(self):
        return "Resp(%d, %r, %r)" % (self.status, self.headers, self.body[:300])


def _host_port(addr):
    addr = addr.split("://", 1)[-1].rstrip("/")
    host, _, port = addr.rpartition(":")
    return host, int(port)


def http(method, path, body=None, headers=None, server="nginx", timeout=10, source=None):
    """One request on a new connection to nginx or lighttpd. A dict/list body is sent as
    JSON with Content-Type application/json (unless headers set one); str/bytes as is.
    SOURCE: the client address to connect from, e.g. '127.0.0.2' (any 127.x works on
    Linux) to look like another client to per-address limits. 'kafka-ack', 'app-1' and
    'app-2' talk FastCGI to that coupon-fcgi's socket (no web server: headers go as
    HTTP_* parameters, SOURCE does not apply)."""
    app_hosts = ("app-1", "app-2") if CLUSTER else ()
    auth_servers = {"auth-nginx": "HTTP_AUTH_NGINX", "auth-lighttpd": "HTTP_AUTH_LIGHTTPD"}
    if server not in ("nginx", "lighttpd", "kafka-ack") + app_hosts + tuple(auth_servers):
        raise ValueError("server must be 'nginx', 'lighttpd', 'kafka-ack', 'auth-nginx', "
                         "'auth-lighttpd'%s" % (" or 'app-N'" if CLUSTER else ""))
    hdrs = dict(headers or {})
    has_ct = any(k.lower() == "content-type" for k in hdrs)
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode("utf-8")
        if not has_ct:
            hdrs["Content-Type"] = "application/json"
    elif isinstance(body, str):
        data = body.encode("utf-8")
    else:
        data = body
    if server == "kafka-ack":
        return _fcgi(env["FCGI_KAFKA_SOCKET"], method, path, data or b"", hdrs, timeout)
    if server in app_hosts:
        return _fcgi(app_socket(int(server[4:])), method, path, data or b"", hdrs, timeout)
    addr = auth_servers.get(server, "HTTP_NGINX" if server == "nginx" else "HTTP_LIGHTTPD")
    host, port = _host_port(env[addr])
    conn = httpclient.HTTPConnection(host, port, timeout=timeout,
                                     source_address=(source, 0) if source else None)
    try:
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        got = {}
        for k, v in r.getheaders():
            k = k.lower()
            got[k] = got[k] + ", " + v if k in got else v
        return Resp(r.status, got, r.read())
    finally:
        conn.close()


def app_socket(i):
    """Cluster layout: the FastCGI socket of app host I (1 or 2)."""
    return env["FCGI_SOCKETS"].split(",")[i - 1]


def _fcgi(sock, method, path, data, hdrs, timeout):
    """server='kafka-ack' (the second coupon-fcgi, issue_ack=kafka) or 'app-N': straight
    to that coupon-fcgi over FastCGI, no web server in between."""
    ctype = next((v for k, v in hdrs.items() if k.lower() == "content-type"), None)
    status, got, body = fcgi_client.request(sock, method, path, data, content_type=ctype,
                                            timeout=timeout, headers=hdrs)
    return Resp(status, got, body)


# Each suite is one process; its ids start at its start time in ms x 10^6, so suites
# started at different milliseconds never share a user for up to 10^6 users per ms.
_user_lock = threading.Lock()
_user_next = [(int(time.time() * 1000) % 10**9) * 10**6]


def new_user():
    """A fresh user id (thread-safe)."""
    with _user_lock:
        _user_next[0] += 1
        return _user_next[0]


def admin_headers():
    return {"Authorization": "Bearer " + env["ADMIN_TOKEN"]}


def token_tool(*args, check=True):
    """Runs BUILD_DIR/tools/coupon-token with ARGS; returns its stdout lines."""
    binary = os.path.join(env["BUILD_DIR"], "tools", "coupon-token")
    r = subprocess.run([binary] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=120, check=False)
    if check and r.returncode != 0:
        raise RuntimeError("coupon-token %s: %s" % (" ".join(map(str, args)), r.stderr))
    return r.stdout.split()


def token(user_id, key="rs256", **opts):
    """A token for USER_ID signed with the stack's development key KEY (rs256/es256),
    iss/aud as the auth master expects. OPTS: coupon-token sign's flags without the
    dashes (ttl=-60, scope="coupon:checkout", kid="x", alg="none", ...)."""
    args = ["sign", "--key", os.path.join(env["JWT_KEY_DIR"], key + ".pem")]
    for k, v in opts.items():
        args += ["--" + k.replace("_", "-"), v]
    return token_tool(*(args + [user_id]))[0]


def bearer(tok):
    return {"Authorization": "Bearer " + tok}


OMIT = object()  # create_coupon(code=OMIT) leaves the field out of the request


def _rfc3339(t):
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def create_coupon(server="nginx", **overrides):
    """Create a coupon through the admin API and return its id. Defaults: a first-come-
    first-served 10% coupon of 100, valid from a minute ago to an hour from now, with a
    unique title and code. Pass a field to change it, None for JSON null, OMIT to drop it;
    datetime values are formatted as RFC 3339."""
    now = datetime.datetime.now(datetime.timezone.utc)
    tag = uuid.uuid4().hex[:12]
    doc = {
        "title": "it-" + tag,
        "code": "IT" + tag.upper(),
        "couponType": "FIRST_COME_FIRST_SERVED",
        "discountType": "PERCENTAGE",
        "discountValue": 10,
        "totalQuantity": 100,
        "startAt": now - datetime.timedelta(minutes=1),
        "endAt": now + datetime.timedelta(hours=1),
        "description": "created by the integration suites",
    }
    doc.update(overrides)
    doc = {k: (_rfc3339(v) if isinstance(v, datetime.datetime) else v)
           for k, v in doc.items() if v is not OMIT}
    r = http("POST", "/api/coupons", doc, admin_headers(), server=server)
    if r.status != 201:
        raise AssertionError("POST /api/coupons answered %r" % (r,))
    return r.json()["id"]


# ----------------------------------------------------------------------- Redis ----

class RedisError(Exception):
    """An error reply (-ERR ...) from Redis."""


def _resp_read(f):
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("Redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode("utf-8")
    if kind == b"-":
        raise RedisError(rest.decode("utf-8", errors="replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data
    if kind == b"*":
        n = int(rest)
        if n < 0:
            return None
        return [_resp_read(f) for _ in range(n)]
    raise ConnectionError("unexpected reply from Redis: %r" % line)


def _redis_call(host, port, commands, timeout):
    """Send COMMANDS (lists of arguments) on one new connection; the last one's reply.
    An error reply to any of them raises RedisError."""
    req = b""
    for args in commands:
        parts = [a if isinstance(a, bytes) else str(a).encode("utf-8") for a in args]
        req += b"*%d\r\n" % len(parts) + b"".join(
            b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(req)
        with s.makefile("rb") as f:
            return [_resp_read(f) for _ in commands][-1]


def redis(*args, timeout=10):
    """One command on a new connection: redis('HGET', 'coupon:{1}:meta', 'total').
    Replies: str, int, None, list; bulk strings that are not UTF-8 stay bytes; error
    replies raise RedisError. In the cluster layout the command goes to the node that
    serves the slot of its first argument after the name (the key of most commands),
    following MOVED and ASK; keyless commands go to the first node that answers."""
    if CLUSTER:
        return _redis_routed(args, timeout)
    return _redis_call(env["REDIS_HOST"], int(env["REDIS_PORT"]), [args], timeout)


# ------------------------------------------------------------- Redis Cluster ----

def _redis_nodes():
    """[(host, port)] of the cluster's nodes; node i is at index i - 1."""
    return [_host_port(a) for a in env["REDIS_NODES"].split(",")]


def _node_index(addr):
    """Index of the node at 'host:port' (as MOVED/ASK and CLUSTER SLOTS name them)."""
    want = _host_port(addr)
    for i, node in enumerate(_redis_nodes(), 1):
        if node == want:
            return i
    raise RuntimeError("%s is not a node of this cluster" % addr)


def redis_node(i, *args, timeout=10):
    """One command on node I (1..6) itself, no redirection: redis_node(2, 'INFO')."""
    host, port = _redis_nodes()[i - 1]
    return _redis_call(host, port, [args], timeout)


def _crc16(data):
    """CRC16-CCITT (XMODEM), the one Redis Cluster hashes keys with."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def key_slot(key):
    """The hash slot of KEY: the part between the first '{' and the next '}' when that
    part is not empty (the hash tag), otherwise the whole key; CRC16 mod 16384."""
    k = key if isinstance(key, bytes) else str(key).encode("utf-8")
    start = k.find(b"{")
    if start >= 0:
        end = k.find(b"}", start + 1)
        if end > start + 1:
            k = k[start + 1:end]
    return _crc16(k) % 16384


def coupon_slot(coupon_id):
    """The slot of every key of one coupon (they share the hash tag {ID})."""
    return key_slot("coupon:{%d}:meta" % coupon_id)


_slot_owner = {}  # slot -> node index, learnt from MOVED replies


def _redis_routed(args, timeout):
    slot = key_slot(args[1]) if len(args) > 1 else None
    n = len(_redis_nodes())
    target = _slot_owner.get(slot) or 1
    asking = False
    last = None
    for _ in range(4 * n):
        host, port = _redis_nodes()[target - 1]
        try:
            return _redis_call(host, port, [["ASKING"], args] if asking else [args], timeout)
        except RedisError as e:
            words = str(e).split()
            if words and words[0] in ("MOVED", "ASK") and len(words) == 3:
                target, asking = _node_index(words[2]), words[0] == "ASK"
                if not asking:
                    _slot_owner[int(words[1])] = target
                last = e
                continue
            raise
        except OSError as e:  # that node is down: any other one answers MOVED
            _slot_owner.pop(slot, None)
            target, asking, last = target % n + 1, False, e
    raise RedisError("no node served %r (last: %r)" % (args[:2], last))


def cluster_slots():
    """[(lo, hi, master index, [replica indices])] from CLUSTER SLOTS of the first node
    that answers, sorted by lo."""
    last = None
    for i in range(1, len(_redis_nodes()) + 1):
        try:
            rows = redis_node(i, "CLUSTER", "SLOTS", timeout=2)
        except (OSError, RedisError) as e:
            last = e
            continue
        out = [(r[0], r[1], _node_index("%s:%s" % (r[2][0], r[2][1])),
                [_node_index("%s:%s" % (x[0], x[1])) for x in r[3:]]) for r in rows]
        return sorted(out)
    raise RuntimeError("no Redis node answered CLUSTER SLOTS: %r" % last)


def cluster_master_of(key):
    """Index of the master serving KEY's slot (KEY an int: a slot)."""
    slot = key if isinstance(key, int) else key_slot(key)
    for lo, hi, master, _ in cluster_slots():
        if lo <= slot <= hi:
            return master
    raise RuntimeError("slot %d is not served" % slot)


def cluster_wait_failover(key, timeout=30):
    """Wait until KEY's slot (KEY an int: a slot) is served by a live master that knows
    it, and every live node says cluster_state:ok; returns that master's index."""
    slot = key if isinstance(key, int) else key_slot(key)
    out = _stack("cluster_redis_wait_failover", env["STATE_DIR"], slot, int(timeout),
                 lib="cluster.sh", timeout=timeout + 30)
    return int(out.split()[-1])


def node_stop(kind, i):
    """SIGTERM node I of KIND ('redis', 'kafka', 'mariadb', 'consumer', 'app'): a clean
    stop."""
    _stack("cluster_node_stop", env["STATE_DIR"], kind, i, lib="cluster.sh")


def node_start(kind, i):
    """Start node I of KIND again from its data; returns once it answers."""
    _stack("cluster_node_start", env["STATE_DIR"], kind, i, lib="cluster.sh")


def node_kill(kind, i):
    """SIGKILL node I of KIND (a crash); returns once it is gone."""
    _stack("cluster_node_kill", env["STATE_DIR"], kind, i, lib="cluster.sh")


def node_pid(kind, i):
    """The pid of node I of KIND when it runs (its pidfile names a live process), else
    None."""
    name = "coupon-fcgi-%d" % i if kind == "app" else "%s-%d" % (kind, i)
    return _pidfile_pid(os.path.join(env["PID_DIR"], name + ".pid"))


def node_running(kind, i):
    """Whether node I of KIND runs."""
    return node_pid(kind, i) is not None


def cluster_node_id(i):
    """Node I's 40-character cluster node id (CLUSTER MYID)."""
    return redis_node(i, "CLUSTER", "MYID")


def _info(i, section):
    text = redis_node(i, "INFO", section, timeout=2)
    return dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)


def cluster_replica_ready(i):
    """Whether node I is a replica whose link to its master is up and whose master
    counts it as an online replica (so a WAIT on that master can count it)."""
    try:
        mine = _info(i, "replication")
        if mine.get("role") != "slave" or mine.get("master_link_status") != "up":
            return False
        master = _node_index("%s:%s" % (mine["master_host"], mine["master_port"]))
        theirs = _info(master, "replication")
    except (OSError, RedisError, KeyError, RuntimeError):
        return False
    me = "port=%d," % _redis_nodes()[i - 1][1]
    return any(k.startswith("slave") and me in v and "state=online" in v
               for k, v in theirs.items())


def cluster_promote(i, timeout=30):
    """Make replica I the master of its master's slots again with a manual, coordinated
    CLUSTER FAILOVER (no write is lost: the master pauses its clients until I has
    caught up), once I is a ready replica; returns once I serves them, its old master
    is its ready replica and every node says cluster_state:ok."""
    wait_until(lambda: cluster_replica_ready(i), timeout=timeout, interval=0.2,
               message="redis-%d a ready replica" % i)
    old = _node_index("%s:%s" % tuple(_info(i, "replication")[k]
                                      for k in ("master_host", "master_port")))
    slots = [lo for lo, _, m, _ in cluster_slots() if m == old]
    if redis_node(i, "CLUSTER", "FAILOVER") != "OK":
        raise RuntimeError("CLUSTER FAILOVER refused by redis-%d" % i)
    wait_until(lambda: all(cluster_master_of(s) == i for s in slots) and
               cluster_replica_ready(old), timeout=timeout, interval=0.2,
               message="redis-%d master again, redis-%d its replica" % (i, old))
    cluster_wait_failover(slots[0], timeout)


def cluster_migrate_slot(slot, dst, batch=100, hold_s=0.0, times=None):
    """Move SLOT to master DST the way `redis-cli --cluster reshard` moves each slot:
    CLUSTER SETSLOT IMPORTING on DST and MIGRATING on the owner, MIGRATE ... KEYS in
    batches of BATCH until the owner has none left, then SETSLOT NODE on DST, the
    owner and every other master. Clients meanwhile get -ASK (a key already moved) or
    -TRYAGAIN (a multi-key command finding some of its keys missing on DST), and
    -MOVED once it is over. Like redis-cli, one connection to each node for the whole
    move, the masters known before it starts: the slot is split for as long as Redis
    takes, not as long as opening connections does. HOLD_S: a pause after SETSLOT
    MIGRATING and another after the last MIGRATE, as the keys of a bigger slot would
    take to move (the keys are split meanwhile). TIMES (a dict), when given, gets the
    monotonic times 'migrating' (SETSLOT MIGRATING sent) and 'node' (DST's SETSLOT NODE
    answered): the window of -TRYAGAIN. Returns the index of the master the slot came
    from."""
    src = cluster_master_of(slot)
    if src == dst:
        raise ValueError("slot %d is already served by redis-%d" % (slot, dst))
    src_id, dst_id = cluster_node_id(src), cluster_node_id(dst)
    host, port = _redis_nodes()[dst - 1]
    others = [m for m in {m for _, _, m, _ in cluster_slots()} if m not in (src, dst)]
    conns = {}
    try:
        for i in [dst, src] + others:
            conns[i] = _Connection(*_redis_nodes()[i - 1])
        conns[dst].call("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        t_migrating = time.monotonic()
        conns[src].call("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        time.sleep(hold_s)
        while True:
            keys = conns[src].call("CLUSTER", "GETKEYSINSLOT", slot, batch)
            if not keys:
                break
            conns[src].call("MIGRATE", host, port, "", 0, 10000, "KEYS", *keys)
        time.sleep(hold_s)
        conns[dst].call("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        t_node = time.monotonic()
        for i in [src] + others:
            conns[i].call("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
    finally:
        for c in conns.values():
            c.close()
    if times is not None:
        times.update(migrating=t_migrating, node=t_node)
    return src


class _Connection:
    """One connection to one Redis node for several commands in turn."""

    def __init__(self, host, port, timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.f = self.sock.makefile("rb")

    def call(self, *args):
        parts = [a if isinstance(a, bytes) else str(a).encode("utf-8") for a in args]
        self.sock.sendall(b"*%d\r\n" % len(parts) + b"".join(
            b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
        return _resp_read(self.f)

    def close(self):
        self.f.close()
        self.sock.close()


def kafka_wait_isr(timeout=90):
    """Until every partition of the service's topics has all 3 brokers in sync again
    (after a broker was stopped or killed and started)."""
    _stack("cluster_kafka_wait_isr", env["STATE_DIR"], int(timeout), lib="cluster.sh",
           timeout=timeout + 30)


def app_metrics(i):
    """{series: value} of app host I's own GET /metrics (over its socket, so the counts
    are that host's alone), e.g.
    m['coupon_http_requests_total{route="issue",status="201"}']."""
    r = http("GET", "/metrics", server="app-%d" % i)
    if r.status != 200:
        raise AssertionError("GET /metrics on app-%d answered %r" % (i, r))
    out = {}
    for line in r.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def pick_coupon_ids_per_master(ids, per_master=2):
    """{master index: [PER_MASTER coupon ids]} for every master serving slots now, the
    ids taken in order from IDS (any iterable); raises when IDS runs out first."""
    slots = cluster_slots()
    out = {master: [] for _, _, master, _ in slots}
    for cid in ids:
        slot = coupon_slot(cid)
        master = next(m for lo, hi, m, _ in slots if lo <= slot <= hi)
        if len(out[master]) < per_master:
            out[master].append(cid)
        if all(len(v) == per_master for v in out.values()):
            return out
    raise RuntimeError("not enough ids for %d per master: %r" % (per_master, out))


def create_coupons_per_master(per_master=2, limit=200, **fields):
    """Create coupons (create_coupon(**FIELDS)) until every master serves PER_MASTER of
    them; returns {master index: [ids]}. The ids come from MariaDB's AUTO_INCREMENT, so
    a few more coupons than needed may be created; those are not returned."""
    made = []

    def more():
        while len(made) < limit:
            made.append(create_coupon(**fields))
            yield made[-1]

    return pick_coupon_ids_per_master(more(), per_master)


# --------------------------------------------------------------------- MariaDB ----

class SqlError(Exception):
    """The mariadb client failed (its stderr is the message)."""


_UNESCAPE = {"t": "\t", "n": "\n", "\\": "\\", "0": "\0"}


def _unescape(field):
    if field == "NULL":
        return None
    return re.sub(r"\\(.)", lambda m: _UNESCAPE.get(m.group(1), m.group(0)), field)


def sql(query, timeout=30):
    """Run QUERY (one or more statements) as the application user in database coupon;
    returns the rows of the result sets as tuples of str, SQL NULL as None."""
    r = subprocess.run(
        ["mariadb", "--defaults-file=" + env["DB_CNF"], "-N", "-B", env["DB_NAME"],
         "-e", query],
        capture_output=True, text=True, timeout=timeout, check=False)
    if r.returncode != 0:
        raise SqlError(r.stderr.strip())
    return [tuple(_unescape(x) for x in line.split("\t"))
            for line in r.stdout.splitlines()]


# ----------------------------------------------------------------------- Kafka ----

def kafka_messages(topic, timeout=60):
    """Every message of TOPIC from the beginning (all partitions, read up to their end):
    dicts {key, value, headers (dict), partition, offset, timestamp} in (partition,
    offset) order; key/value are str or None."""
    r = subprocess.run(
        ["kcat", "-C", "-b", env["KAFKA_BOOTSTRAP"], "-t", topic, "-o", "beginning",
         "-e", "-J", "-q"],
        capture_output=True, text=True, timeout=timeout, check=False)
    if r.returncode != 0:
        raise RuntimeError("kcat -C %s failed: %s" % (topic, r.stderr.strip()))
    out = []
    for line in r.stdout.splitlines():
        if not line.strip():
            continue
        m = json.loads(line)
        h = m.get("headers") or []
        out.append({
            "key": m.get("key"),
            "value": m.get("payload"),
            "headers": {h[i]: h[i + 1] for i in range(0, len(h) - 1, 2)},
            "partition": m.get("partition"),
            "offset": m.get("offset"),
            "timestamp": m.get("ts"),
        })
    out.sort(key=lambda m: (m["partition"], m["offset"]))
    return out


def kafka_produce(topic, messages, headers=None, timeout=60):
    """Produce [(key, value), ...] (str or bytes; key may be None) to TOPIC with kcat,
    partitioned by key like the service's producer (librdkafka's default partitioner).
    HEADERS (dict) go on every message. Returns once every message is acknowledged."""
    for key, value in messages:
        cmd = ["kcat", "-P", "-b", env["KAFKA_BOOTSTRAP"], "-t", topic, "-X",
               "acks=all"]
        for hk, hv in (headers or {}).items():
            cmd += ["-H", "%s=%s" % (hk, hv)]
        if key is not None:
            cmd += ["-k", key.decode() if isinstance(key, bytes) else key]
        data = value if isinstance(value, bytes) else value.encode("utf-8")
        # -D with a byte that never occurs in a message: the whole input is one message,
        # whatever newlines the value holds.
        r = subprocess.run(cmd + ["-D", "\x01"], input=data, capture_output=True,
                           timeout=timeout, check=False)
        if r.returncode != 0:
            raise RuntimeError("kcat -P %s failed: %s" % (topic, r.stderr.decode().strip()))


def _kafka_metadata():
    r = subprocess.run(["kcat", "-L", "-J", "-b", env["KAFKA_BOOTSTRAP"], "-m", "10"],
                       capture_output=True, text=True, timeout=30, check=False)
    if r.returncode != 0:
        raise RuntimeError("kcat -L failed: %s" % r.stderr.strip())
    return json.loads(r.stdout)


def kafka_topics():
    """{topic name: partition count} of every topic, internal ones included."""
    return {t["topic"]: len(t.get("partitions") or [])
            for t in _kafka_metadata().get("topics", [])}


def kafka_brokers():
    """{broker id: 'host:port'} of the brokers in the cluster's metadata."""
    return {b["id"]: b["name"] for b in _kafka_metadata().get("brokers", [])}


def kafka_partitions(topic):
    """[{partition, leader, replicas, isrs}] of TOPIC (broker ids), by partition."""
    for t in _kafka_metadata().get("topics", []):
        if t["topic"] == topic:
            return sorted(({"partition": p["partition"], "leader": p.get("leader"),
                            "replicas": [x["id"] for x in p.get("replicas") or []],
                            "isrs": [x["id"] for x in p.get("isrs") or []]}
                           for p in t.get("partitions") or []),
                          key=lambda p: p["partition"])
    raise RuntimeError("no topic %s" % topic)


def kafka_group_members(group=None, timeout=60):
    """The members of consumer group GROUP (default env CONSUMER_GROUP, else the
    programs' default) as the group coordinator lists them: [{consumer_id, host,
    client_id, partitions}]; [] when the group has no active member. Runs Kafka's own
    ConsumerGroupCommand (a JVM start: seconds)."""
    group = group or env.get("CONSUMER_GROUP", "coupon-consumer-group")
    log4j = os.path.join(env["SRC_DIR"], "scripts", "kafka", "tools-log4j.properties")
    r = subprocess.run(
        ["java", "-Xmx256m", "-cp", os.path.join(env["KAFKA_JARS"], "*"),
         "-Dlog4j.configuration=file:" + log4j,
         "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
         "--bootstrap-server", env["KAFKA_BOOTSTRAP"], "--describe", "--members",
         "--group", group],
        capture_output=True, text=True, timeout=timeout, check=False)
    if r.returncode != 0:
        raise RuntimeError("ConsumerGroupCommand failed: %s" % (r.stdout + r.stderr).strip())
    members = []
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) >= 5 and f[0] == group and f[-1].isdigit():
            members.append({"consumer_id": f[1], "host": f[2], "client_id": f[3],
                            "partitions": int(f[-1])})
    return members


# ----------------------------------------------------------- servers, programs ----

def _stack(*cmd, lib="stack.sh", timeout=240):
    """Call a function of scripts/lib/LIB in a bash process; returns its stdout."""
    lib = os.path.join(env["SRC_DIR"], "scripts", "lib", lib)
    r = subprocess.run(["bash", "-c", 'set -euo pipefail; source "$0"; "$@"', lib] +
                       [str(c) for c in cmd],
                       capture_output=True, text=True, timeout=timeout, check=False)
    if r.returncode != 0:
        raise RuntimeError("%s failed: %s" % (cmd[0], (r.stdout + r.stderr).strip()))
    return r.stdout


def server_kill(name):
    """SIGKILL 'redis', 'mariadb' or 'kafka' (a crash: no shutdown work at all); returns
    once the process is gone. server_start brings it back from what it had on disk."""
    pid = _pidfile_pid(os.path.join(env["PID_DIR"], name + ".pid"))
    if pid is None:
        raise RuntimeError("%s is not running" % name)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: _gone(pid), timeout=30, message="%s (pid %d) gone" % (name, pid))


def server_stop(name):
    """Stop 'redis', 'mariadb' or 'kafka' (SIGTERM, clean shutdown); returns once the
    process is gone. Its data stays: server_start brings it back as it was."""
    node_stop(name, 1)


def server_start(name):
    """Start a server stopped by server_stop on the same port and data; returns once it
    answers (Redis PING, MariaDB ping, Kafka metadata listing the broker)."""
    node_start(name, 1)


def _starttime(pid):
    """Start time of PID (clock ticks since boot), None if gone or a zombie."""
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return fields[19]


def _pidfile_pid(path):
    """The pid recorded in PATH ("PID STARTTIME") if that process still runs."""
    try:
        with open(path, encoding="utf-8") as f:
            parts = f.read().split()
    except OSError:
        return None
    if not parts or not parts[0].isdigit():
        return None
    pid = int(parts[0])
    now = _starttime(pid)
    if now is None or (len(parts) > 1 and parts[1] != now):
        return None
    return pid


_children = {}  # pid -> Popen, for consumers started here (they must be reaped here)
_started_names = []  # consumers started here, in order
_log_offsets = {}  # consumer name -> size of its log when it was started


def consumer_start(extra_env=None):
    """Start one more coupon-consumer with the shared config (plus EXTRA_ENV, e.g.
    {'COUPON_CONSUMER_BATCH_MAX': '10'}); returns its Popen. Its log is
    log_path('consumer-N'); the runner stops it at the end if the suite did not."""
    pid_dir = env["PID_DIR"]
    n = 1
    while os.path.exists(os.path.join(pid_dir, "consumer-%d.pid" % n)):
        n += 1
    name = "consumer-%d" % n
    penv = dict(os.environ)
    penv.update(extra_env or {})
    binary = os.path.join(env["BUILD_DIR"], "consumer", "coupon-consumer")
    _log_offsets[name] = os.path.getsize(log_path(name)) if os.path.exists(log_path(name)) else 0
    _started_names.append(name)
    with open(log_path(name), "ab") as log:
        p = subprocess.Popen([binary, "-c", env["CONFIG"]], stdin=subprocess.DEVNULL,
                             stdout=log, stderr=subprocess.STDOUT, env=penv,
                             start_new_session=True)
    _children[p.pid] = p
    tmp = os.path.join(pid_dir, name + ".pid.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("%d %s\n" % (p.pid, _starttime(p.pid) or ""))
    os.replace(tmp, os.path.join(pid_dir, name + ".pid"))
    return p


def consumer_log(name):
    """The text consumer NAME ('consumer-2') wrote to its log since consumer_start
    started it; the whole log for one this module did not start."""
    with open(log_path(name), encoding="utf-8", errors="replace") as f:
        f.seek(_log_offsets.get(name, 0))
        return f.read()


def consumer_holds_all_partitions(name=None):
    """Whether consumer NAME (default: the one started last) has logged an assignment of
    every partition of coupon.issue - after a member was SIGKILLed, only once the broker
    evicted it (the consumer's session timeout)."""
    if name is None:
        if not _started_names:
            return False
        name = _started_names[-1]
    want = "assigned %d partitions" % kafka_topics().get("coupon.issue", 0)
    return want in consumer_log(name)  # only what this process wrote


def _gone(pid):
    p = _children.get(pid)
    if p is not None:
        return p.poll() is not None
    return _starttime(pid) is None


def consumers_stop(sig=signal.SIGTERM, timeout=30):
    """Send SIG to every running coupon-consumer (the runner's and those of
    consumer_start) and wait until all have exited (SIGKILL after TIMEOUT seconds).
    Returns {name: exit status or None when unknown (not our child)}."""
    procs = {}
    for path in sorted(glob.glob(os.path.join(env["PID_DIR"], "consumer-*.pid"))):
        pid = _pidfile_pid(path)
        name = os.path.basename(path)[:-4]
        if pid is not None:
            os.kill(pid, sig)
            procs[name] = (pid, path)
        else:
            os.unlink(path)
    deadline = time.monotonic() + timeout
    killed = False
    while any(not _gone(pid) for pid, _ in procs.values()):
        if time.monotonic() > deadline:
            if killed:
                raise RuntimeError("coupon-consumer survived SIGKILL: %r" % procs)
            for pid, _ in procs.values():
                if not _gone(pid):
                    os.kill(pid, signal.SIGKILL)
            killed = True
            deadline = time.monotonic() + 10
        time.sleep(0.05)
    result = {}
    for name, (pid, path) in procs.items():
        p = _children.pop(pid, None)
        result[name] = p.returncode if p is not None else None
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    return result


def fcgi_master_pid():
    """Pid of the running coupon-fcgi master, or None."""
    return _pidfile_pid(os.path.join(env["PID_DIR"], "coupon-fcgi.pid"))


def fcgi_worker_pids():
    """Pids of the master's live child processes (its workers), sorted."""
    master = fcgi_master_pid()
    if master is None:
        return []
    return child_pids(master)


def child_pids(parent):
    """Pids of PARENT's live (not zombie) child processes, sorted."""
    out = []
    for stat_path in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat_path, encoding="utf-8", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z" and int(fields[1]) == parent:
            out.append(int(stat_path.split("/")[2]))
    return sorted(out)


# ---------------------------------------------------------------------- waiting ----

def wait_until(predicate, timeout=10, interval=0.1, message=None):
    """Call PREDICATE until it returns something true and return that; an exception
    counts as not yet. After TIMEOUT seconds raise AssertionError (a test failure) naming
    MESSAGE and the last exception."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # pylint: disable=broad-except
            last_exc = e
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", "condition")
            raise AssertionError("%s not met within %ss%s" % (
                what, timeout, "" if last_exc is None else " (last error: %r)" % last_exc))
        time.sleep(interval)
