# shellcheck shell=bash
# Starting and stopping the real servers of the stack, one at a time: Redis, MariaDB, a
# Kafka KRaft node, and the project's own programs (coupon-consumer, coupon-fcgi). The
# whole stack, in either layout, is brought up by stack_up (scripts/lib/layout.sh) and
# stopped by stack_down (here); a server by itself is stopped and started again through
# cluster.sh's cluster_node_stop/start (tests/integration/harness.py calls them through
# bash -c). Sourced, never executed.
#
# Layout of a state folder (every function takes it as its first argument):
#   layout.env             what stack_layout resolved: node counts, ports (stack_load)
#   logs/<name>.log        stdout+stderr of each process (appended)
#   pids/<name>.pid        "PID STARTTIME" of each process we started
#   redis/ or redis-N/     redis.conf and the data (AOF; a cluster node's nodes.conf)
#   mariadb/data/          the MariaDB data directory; mariadb.sock next to it
#   kafka/ or kafka-N/     server.properties and data/ (the log dirs)
#   coupon.conf, fcgi.sock, fcgi.metrics   the one app host's config, socket, metrics
#                          (several app hosts: app-N/ each, and consumer.conf)
#
# Every process runs on its own (no systemd, no daemonizing): we start it in a new
# session (setsid) so a Ctrl-C in the terminal reaches only the script that owns the
# stack, which then stops the servers in order. A pidfile holds the pid AND the process'
# start time (field 22 of /proc/PID/stat): a stop only signals a process whose start time
# matches, so a pid reused by someone else's process is never touched. Everything listens
# on 127.0.0.1 only.
#
# Knobs (environment): COUPON_KAFKA_JARS (folder of the broker's jars, default
# ~/.cache/coupon-service/kafka-3.9.1); start timeouts in seconds COUPON_STACK_REDIS_TIMEOUT
# [60], COUPON_STACK_DB_TIMEOUT [90], COUPON_STACK_KAFKA_TIMEOUT [120],
# COUPON_STACK_FCGI_TIMEOUT [30]; COUPON_STACK_DB_FLUSH_AT_COMMIT [1] for MariaDB's
# innodb_flush_log_at_trx_commit (2 trades the last second of commits for speed).

[[ -z "${COUPON_LIB_STACK_LOADED:-}" ]] || return 0
COUPON_LIB_STACK_LOADED=1

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Fixed cluster id: the 22-character base64 of the 16 bytes "coupon-service01". A fixed
# id lets `format --ignore-formatted` accept a data folder from an earlier run.
STACK_KAFKA_CLUSTER_ID=Y291cG9uLXNlcnZpY2UwMQ
STACK_KAFKA_VERSION=3.9.1
# topic:partitions, created before any consumer subscribes (librdkafka does not create).
STACK_KAFKA_TOPICS=(coupon.issue:6 coupon.issued:6 coupon.issue.dlq:1 coupon.redemption:6)
STACK_DB_NAME=coupon
STACK_DB_USER=coupon

stack_kafka_jars_dir() {
    printf '%s\n' "${COUPON_KAFKA_JARS:-$HOME/.cache/coupon-service/kafka-$STACK_KAFKA_VERSION}"
}

# ---------------------------------------------------------------- ports ----

# stack_port_free PORT : true when 127.0.0.1:PORT can be bound (nothing listens there,
# not even on 0.0.0.0). Binding is the only reliable test: a connect test misses
# sockets that are bound but not yet listening. SO_REUSEADDR, as every server sets it:
# connections of a server stopped a moment ago linger in TIME_WAIT and must not count.
stack_port_free() {
    python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
' "$1"
}

# stack_pick_ports N LO HI : print N distinct free ports from LO..HI, one per line.
# Starts at a random offset so that two runs at once rarely race for the same port.
stack_pick_ports() {
    local n=$1 lo=$2 hi=$3
    local span=$((hi - lo + 1)) start i port found=0
    start=$(((RANDOM * 32768 + RANDOM) % span))
    for ((i = 0; i < span && found < n; i++)); do
        port=$((lo + (start + i) % span))
        if stack_port_free "$port"; then
            printf '%s\n' "$port"
            found=$((found + 1))
        fi
    done
    ((found == n)) || cp_die "found only $found free ports in $lo-$hi, needed $n"
}

# ------------------------------------------------------------ processes ----

# stack_proc_starttime PID : the process' start time in clock ticks since boot; fails
# when the process does not exist or is a zombie (a zombie has finished).
stack_proc_starttime() {
    local stat rest
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    # The command name (field 2) may contain spaces and parentheses: cut after the last ')'.
    rest=${stat##*) }
    local -a f
    read -r -a f <<<"$rest"
    [[ "${f[0]}" != Z ]] || return 1
    printf '%s\n' "${f[19]}"
}

# stack_pidfile_pid PIDFILE : print the pid recorded in PIDFILE when that very process
# (same start time) is still running; fail otherwise.
stack_pidfile_pid() {
    local pidfile=$1 pid start now
    [[ -s "$pidfile" ]] || return 1
    read -r pid start <"$pidfile" || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    now=$(stack_proc_starttime "$pid") || return 1
    [[ -z "$start" || "$now" == "$start" ]] || return 1
    printf '%s\n' "$pid"
}

# The wrapper that every server is started through: it records its own pid and start
# time, then execs the server (so the pid stays the same). $0 is the pidfile.
# shellcheck disable=SC2016
STACK_SPAWN_WRAPPER='
stat=$(cat /proc/$$/stat); rest=${stat##*) }; read -r -a f <<<"$rest"
echo "$$ ${f[19]}" >"$0.tmp" && mv -f "$0.tmp" "$0" || exit 1
exec "$@"'

# stack_spawn PIDFILE LOGFILE CMD... : start CMD in its own session with stdin from
# /dev/null and output appended to LOGFILE; returns once PIDFILE is written.
stack_spawn() {
    local pidfile=$1 log=$2
    shift 2
    rm -f "$pidfile"
    mkdir -p "$(dirname "$pidfile")" "$(dirname "$log")"
    setsid bash -c "$STACK_SPAWN_WRAPPER" "$pidfile" "$@" </dev/null >>"$log" 2>&1 &
    stack_poll 10 0.05 test -s "$pidfile" || cp_die "could not start $1 (see $log)"
}

# stack_poll SECONDS INTERVAL CMD... : run CMD every INTERVAL seconds until it succeeds;
# fails once SECONDS have passed.
stack_poll() {
    local deadline=$((SECONDS + $1)) interval=$2
    shift 2
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep "$interval"
    done
}

# stack_pid_gone PIDFILE : true when the process of PIDFILE no longer runs.
stack_pid_gone() {
    ! stack_pidfile_pid "$1" >/dev/null
}

# stack_wait TIMEOUT_S WHAT PIDFILE LOG CMD... : poll CMD (quietly) until it succeeds.
# Fails early, with the end of LOG, when the process of PIDFILE has died: waiting out
# the timeout for a server that crashed on start helps nobody.
stack_wait() {
    local timeout=$1 what=$2 pidfile=$3 log=$4
    shift 4
    local deadline=$((SECONDS + timeout))
    while ! "$@" >/dev/null 2>&1; do
        if ! stack_pidfile_pid "$pidfile" >/dev/null; then
            cp_warn "$what exited during start; last lines of $log:"
            tail -n 30 "$log" >&2 || true
            return 1
        fi
        if ((SECONDS >= deadline)); then
            cp_warn "$what not ready after ${timeout}s; last lines of $log:"
            tail -n 30 "$log" >&2 || true
            return 1
        fi
        sleep 0.2
    done
}

# stack_stop_pidfile PIDFILE NAME [TIMEOUT_S] : SIGTERM, wait, SIGKILL after TIMEOUT_S.
# Safe to call when the process is gone already; removes the pidfile.
stack_stop_pidfile() {
    local pidfile=$1 name=$2 timeout=${3:-30} pid
    if ! pid=$(stack_pidfile_pid "$pidfile"); then
        # Gone already (crashed, or SIGKILLed by a test): its children may not be.
        if [[ -s "$pidfile" ]] && read -r pid _ <"$pidfile" && [[ "$pid" =~ ^[0-9]+$ ]]; then
            stack_sweep_group "$pid" "$name"
        fi
        rm -f "$pidfile"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    if ! stack_poll "$timeout" 0.1 stack_pid_gone "$pidfile"; then
        cp_warn "$name (pid $pid) still running ${timeout}s after SIGTERM: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        if ! stack_poll 10 0.1 stack_pid_gone "$pidfile"; then
            cp_warn "$name (pid $pid) survived SIGKILL"
            return 1
        fi
    fi
    stack_sweep_group "$pid" "$name"
    rm -f "$pidfile"
}

# stack_sweep_group PID NAME : stop what is left of the process group PID once its
# leader PID has exited -- the workers of a coupon-fcgi master that was SIGKILLed, say.
# stack_spawn made every server a session (and group) leader. A pid is not reused while a
# group of that id has members, so a group whose leader is gone holds only survivors of
# our server; if a live process has that pid, the group is someone else's: hands off.
stack_sweep_group() {
    local pgid=$1 name=$2
    if stack_proc_starttime "$pgid" >/dev/null || stack_group_gone "$pgid"; then
        return 0
    fi
    cp_warn "$name: processes of its group outlived it; SIGTERM to them"
    kill -TERM -- "-$pgid" 2>/dev/null || true
    stack_poll 5 0.1 stack_group_gone "$pgid" || kill -KILL -- "-$pgid" 2>/dev/null || true
}

# stack_group_gone PGID : true when no process of group PGID runs. Zombies do not count
# (kill -0 would: an exited leader stays a zombie until its parent -- often init, here
# -- gets round to reaping it).
stack_group_gone() {
    local pgid=$1 line
    local -a f
    while IFS= read -r line; do
        read -r -a f <<<"${line##*) }"
        # After the command name: f[0] state, f[1] ppid, f[2] process group.
        if [[ "${f[2]}" == "$pgid" && "${f[0]}" != Z ]]; then
            return 1
        fi
    done < <(cat /proc/[0-9]*/stat 2>/dev/null)
}

# stack_wait_jobs PID... : wait for each of the caller's background jobs; fails if any did.
stack_wait_jobs() {
    local pid rc=0
    for pid in "$@"; do
        wait "$pid" || rc=1
    done
    return "$rc"
}

# stack_running STATE : true when any process recorded under STATE/pids is alive.
stack_running() {
    local f
    for f in "$1"/pids/*.pid; do
        stack_pidfile_pid "$f" >/dev/null && return 0
    done
    return 1
}

# ---------------------------------------------------------------- Redis ----

# stack_redis_launch STATE PORT [NAME [EXTRA]] : redis-server in STATE/NAME (default redis),
# pidfile, log and STATE/NAME.sock named NAME; EXTRA: more redis.conf lines (cluster.sh's).
stack_redis_launch() {
    local state=$1 port=$2 name=${3:-redis} extra=${4:-}
    local dir=$state/$name
    mkdir -p "$dir" "$state/logs"
    # daemonize no: we background it ourselves and own its pidfile. protected-mode off
    # because it only guards servers without a bind address; we bind loopback.
    cat >"$dir/redis.conf" <<EOF
bind 127.0.0.1
port $port
protected-mode no
daemonize no
dir $dir
logfile ""
appendonly yes
# fsync before every reply: a 201 (issue_ack=redis) then survives an OS crash or a power
# loss too. Measured by scripts/bench beside everysec on a quiet 2-core VM: -1.6 %, +4.4 %
# and -9.9 % issue throughput in three runs (Redis fsyncs once per event-loop turn, for
# every reply of that turn).
appendfsync always
unixsocket $state/$name.sock
unixsocketperm 700
EOF
    [[ -z "$extra" ]] || printf '%s\n' "$extra" >>"$dir/redis.conf"
    stack_spawn "$state/pids/$name.pid" "$state/logs/$name.log" redis-server "$dir/redis.conf"
}

stack_redis_ping() {
    [[ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" == PONG ]]
}

# stack_redis_wait STATE PORT NAME : until Redis NAME answers PING (loading a large AOF, it
# answers LOADING: that is waited out).
stack_redis_wait() {
    stack_wait "${COUPON_STACK_REDIS_TIMEOUT:-60}" "$3" "$1/pids/$3.pid" "$1/logs/$3.log" \
        stack_redis_ping "$2"
}

stack_redis_version() {
    redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p'
}

# -------------------------------------------------------------- MariaDB ----

stack_mariadb_socket() {
    printf '%s\n' "$1/mariadb.sock"
}

# stack_mariadb_launch STATE PORT : create the data directory on first use, then run
# mariadbd as its own process. --no-defaults: the system's /etc/mysql files are for the
# system instance, not ours.
stack_mariadb_launch() {
    local state=$1 port=$2
    local dir=$state/mariadb
    local -a as_user=()
    # mariadbd refuses to run as root unless told to; as another user it runs as itself.
    if [[ "$(id -u)" -eq 0 ]]; then
        as_user=(--user=root)
    fi
    mkdir -p "$dir/tmp" "$state/logs"
    if [[ ! -d "$dir/data/mysql" ]]; then
        rm -rf "$dir/data"
        if ! mariadb-install-db --no-defaults "${as_user[@]}" --datadir="$dir/data" \
            --auth-root-authentication-method=normal --skip-test-db \
            >>"$state/logs/mariadb-install.log" 2>&1; then
            tail -n 30 "$state/logs/mariadb-install.log" >&2
            cp_die "mariadb-install-db failed (see $state/logs/mariadb-install.log)"
        fi
    fi
    # The redo log is sized for a sale's write rate: an issuance writes ~1.6 KB of redo (its
    # row, three secondary indexes, the coupon.issued outbox row and its deletion, the
    # coupon's count), so the default 96 MB forced a checkpoint every ~15 s of a sale and
    # with it constant flushing of dirty pages and their doublewrite copies. Measured on the
    # issue path: MariaDB wrote 342 MB per 15 s with 96 MB of redo and a 256 MB pool, 60-64
    # MB with 1 GB and 1 GB, and those writes share the disk with Redis' fsync before every
    # reply. The redo file takes its 1 GB of disk at once; the pool is allocated as used.
    stack_spawn "$state/pids/mariadb.pid" "$state/logs/mariadb.log" \
        mariadbd --no-defaults "${as_user[@]}" \
        --datadir="$dir/data" --tmpdir="$dir/tmp" \
        --socket="$(stack_mariadb_socket "$state")" --pid-file="$dir/mariadbd.pid" \
        --port="$port" --bind-address=127.0.0.1 --skip-name-resolve \
        --innodb-buffer-pool-size=1G --innodb-log-file-size=1G \
        --innodb-flush-log-at-trx-commit="${COUPON_STACK_DB_FLUSH_AT_COMMIT:-1}" \
        --default-time-zone=+00:00 \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
        --max-connections=500
}

stack_mariadb_wait() {
    local state=$1
    stack_wait "${COUPON_STACK_DB_TIMEOUT:-90}" "MariaDB" "$state/pids/mariadb.pid" \
        "$state/logs/mariadb.log" \
        mariadb-admin --no-defaults --socket="$(stack_mariadb_socket "$state")" -uroot \
        --connect-timeout=2 ping
}

# stack_mariadb_setup STATE PASSWORD : database `coupon` and user coupon (over TCP from
# 127.0.0.1 and over the socket as localhost) with PASSWORD. Idempotent: the password is
# reset each time so a state folder and its password file cannot drift apart.
stack_mariadb_setup() {
    local state=$1 password=$2
    [[ "$password" =~ ^[A-Za-z0-9_.-]+$ ]] || cp_die "database password must match [A-Za-z0-9_.-]+"
    local host sql="CREATE DATABASE IF NOT EXISTS \`$STACK_DB_NAME\`
  CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
    for host in 127.0.0.1 localhost; do
        sql+="
CREATE USER IF NOT EXISTS '$STACK_DB_USER'@'$host' IDENTIFIED BY '$password';
ALTER USER '$STACK_DB_USER'@'$host' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON \`$STACK_DB_NAME\`.* TO '$STACK_DB_USER'@'$host';"
    done
    # Root logs in over the socket only (installed with auth method "normal", no password):
    # the socket lives in the state folder, which only the owner can reach.
    mariadb --no-defaults --socket="$(stack_mariadb_socket "$state")" -uroot -e "$sql"
}

stack_mariadb_version() {
    mariadbd --version | sed -n 's/.*Ver \([^ ]*\).*/\1/p'
}

# ---------------------------------------------------------------- Kafka ----

# stack_kafka_launch STATE PORT CONTROLLER_PORT NAME ID VOTERS RF MIN_ISR EXTRA JVM_OPT...
# a KRaft node (broker and controller in one JVM) in STATE/NAME, pidfile and log named NAME;
# VOTERS = controller.quorum.voters, RF and MIN_ISR those of all topics, EXTRA more lines
# (or none). The storage is formatted in the same job, right before the broker: no two JVM
# start-ups in a row.
stack_kafka_launch() {
    local state=$1 port=$2 cport=$3 name=$4 id=$5 voters=$6 rf=$7 min_isr=$8 extra=$9
    local dir=$state/$4 jars src
    shift 9
    jars=$(stack_kafka_jars_dir)
    src=$(cp_src_dir)
    [[ -f "$jars/kafka_2.13-$STACK_KAFKA_VERSION.jar" ]] ||
        cp_die "Kafka jars missing in $jars (scripts/lib/deps.sh fetches them)"
    mkdir -p "$dir/data" "$state/logs"
    cat >"$dir/server.properties" <<EOF
# KRaft node for development and tests (written by scripts/lib/stack.sh).
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=6
default.replication.factor=$rf
min.insync.replicas=$min_isr
# Topics are created explicitly with their partition counts; a typo must not create one.
auto.create.topics.enable=false
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min_isr
# Development and tests: no point waiting for more members before the first rebalance.
group.initial.rebalance.delay.ms=0
num.network.threads=3
num.io.threads=4
EOF
    [[ -z "$extra" ]] || printf '%s\n' "$extra" >>"$dir/server.properties"
    local -a java=(java "$@" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
        -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
        -cp "$jars/*")
    # log4j 1 (reload4j) wants a URL here, not a plain path, or the broker logs nothing.
    local log4j="-Dlog4j.configuration=file:$src/scripts/kafka/log4j.properties"
    local tools_log4j="-Dlog4j.configuration=file:$src/scripts/kafka/tools-log4j.properties"
    # shellcheck disable=SC2016
    stack_spawn "$state/pids/$name.pid" "$state/logs/$name.log" bash -c '
        props=$1; log4j=$2; tools_log4j=$3; cluster=$4; shift 4
        "$@" "$tools_log4j" kafka.tools.StorageTool format -t "$cluster" -c "$props" \
            --ignore-formatted || exit 1
        exec "$@" "$log4j" kafka.Kafka "$props"' kafka-start \
        "$dir/server.properties" "$log4j" "$tools_log4j" "$STACK_KAFKA_CLUSTER_ID" "${java[@]}"
}

# stack_kafka_ping PORT [NODE_ID] : the broker answers a metadata request, listing itself.
stack_kafka_ping() {
    kcat -L -b "127.0.0.1:$1" -m 3 2>/dev/null | grep -q "broker ${2:-1} at 127.0.0.1:$1"
}

# stack_kafka_wait STATE PORT NAME NODE_ID : until broker NAME lists itself.
stack_kafka_wait() {
    stack_wait "${COUPON_STACK_KAFKA_TIMEOUT:-120}" "$3" "$1/pids/$3.pid" "$1/logs/$3.log" \
        stack_kafka_ping "$2" "$4"
}

# stack_kafka_partitions PORT TOPIC : partition count of TOPIC (0 when it does not exist).
stack_kafka_partitions() {
    local n
    n=$(kcat -L -b "127.0.0.1:$1" -t "$2" -m 5 2>/dev/null |
        sed -n "s/^  topic \"$2\" with \([0-9]*\) partitions:.*/\1/p")
    printf '%s\n' "${n:-0}"
}

# stack_kafka_topics STATE PORT [RF] : create the topics of STACK_KAFKA_TOPICS with
# replication factor RF (default 1; no-op for those that exist) and check their partition
# counts. The creations run in parallel: each is a JVM start-up of a few seconds.
stack_kafka_topics() {
    local state=$1 port=$2 rf=${3:-1} jars src spec topic parts
    jars=$(stack_kafka_jars_dir)
    src=$(cp_src_dir)
    local -a pids=()
    for spec in "${STACK_KAFKA_TOPICS[@]}"; do
        topic=${spec%%:*}
        parts=${spec##*:}
        if [[ "$(stack_kafka_partitions "$port" "$topic")" -gt 0 ]]; then
            continue
        fi
        java -Xmx256m -cp "$jars/*" \
            "-Dlog4j.configuration=file:$src/scripts/kafka/tools-log4j.properties" \
            org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$port" \
            --create --if-not-exists --topic "$topic" --partitions "$parts" \
            --replication-factor "$rf" >>"$state/logs/kafka-topics.log" 2>&1 &
        pids+=($!)
    done
    if ! stack_wait_jobs "${pids[@]}"; then
        tail -n 20 "$state/logs/kafka-topics.log" >&2
        cp_warn "topic creation failed (see $state/logs/kafka-topics.log)"
        return 1
    fi
    # TopicCommand returns once the controller has the topic; the broker's metadata
    # cache (what clients see) follows a moment later.
    local have deadline=$((SECONDS + 30))
    for spec in "${STACK_KAFKA_TOPICS[@]}"; do
        topic=${spec%%:*}
        parts=${spec##*:}
        while have=$(stack_kafka_partitions "$port" "$topic") && [[ "$have" != "$parts" ]]; do
            if [[ "$have" != 0 ]] || ((SECONDS >= deadline)); then
                cp_warn "topic $topic has $have partitions, expected $parts"
                return 1
            fi
            sleep 0.2
        done
    done
}

# ------------------------------------------------ the state's layout ----

# stack_load STATE : the layout stack_layout (layout.sh) resolved for STATE, as globals:
# STACK_LAYOUT, the counts STACK_REDIS_NODES, STACK_KAFKA_NODES, STACK_CONSUMERS,
# STACK_APPS, the ports STACK_REDIS_PORTS (and _BUS_PORTS), STACK_KAFKA_PORTS (and
# _CONTROLLER_PORTS), STACK_DB_PORT, STACK_WEB and STACK_HTTP_PORTS, STACK_BUILD_DIR.
stack_load() {
    if [[ ! -f "$1/layout.env" ]]; then
        cp_warn "$1/layout.env missing: not a state folder of stack_layout"
        return 1
    fi
    # shellcheck source=/dev/null
    source "$1/layout.env"
}

# stack_node_name KIND I : the process name (pidfile, log) of node I of KIND -- redis,
# kafka, mariadb, consumer or app (a coupon-fcgi master) -- in the loaded layout. A
# layout's only Redis, broker, MariaDB or app host has no index (redis, kafka, mariadb,
# coupon-fcgi); consumers always do.
stack_node_name() {
    local kind=$1 i=$2 n
    case $kind in
    redis) n=$STACK_REDIS_NODES ;;
    kafka) n=$STACK_KAFKA_NODES ;;
    mariadb) n=1 ;;
    consumer) n=0 ;;
    app) n=$STACK_APPS kind=coupon-fcgi ;;
    *)
        cp_warn "unknown node kind '$kind' (redis, kafka, mariadb, consumer, app)"
        return 1
        ;;
    esac
    ((n == 1)) || kind+=-$i
    printf '%s\n' "$kind"
}

# stack_app_dir STATE I : the folder of app host I (its coupon.conf, fcgi.sock,
# fcgi.metrics): STATE itself when the layout has one, else STATE/app-I, as on a machine
# of its own.
stack_app_dir() {
    local dir=$1
    ((STACK_APPS == 1)) || dir+=/app-$2
    printf '%s\n' "$dir"
}

# stack_consumer_conf STATE : the consumers' config -- beside a lone app host they share
# its file (one machine), else STATE/consumer.conf.
stack_consumer_conf() {
    local file=consumer.conf
    ((STACK_APPS > 1)) || file=coupon.conf
    printf '%s/%s\n' "$1" "$file"
}

# stack_addrs PORT... : 127.0.0.1:PORT,127.0.0.1:PORT,... (the programs' address lists).
stack_addrs() {
    local p out=''
    for p in "$@"; do
        out+=${out:+,}127.0.0.1:$p
    done
    printf '%s\n' "$out"
}

# ------------------------------------------------------- our programs ----

# stack_consumer_start STATE BUILD_DIR CONF [NAME] : one coupon-consumer.
stack_consumer_start() {
    local state=$1 build=$2 conf=$3 name=${4:-consumer-1}
    local bin=$build/consumer/coupon-consumer
    [[ -x "$bin" ]] || cp_die "$bin not built"
    stack_spawn "$state/pids/$name.pid" "$state/logs/$name.log" "$bin" -c "$conf"
    # A consumer that cannot read its config or reach the broker exits at once; give
    # it a moment so such a failure is reported here rather than by the first test.
    sleep 0.3
    if ! stack_pidfile_pid "$state/pids/$name.pid" >/dev/null; then
        tail -n 30 "$state/logs/$name.log" >&2
        cp_warn "coupon-consumer exited at start (see $state/logs/$name.log)"
        return 1
    fi
}

# stack_fcgi_start STATE BUILD_DIR CONF SOCKET [NAME] : the standalone pre-fork master
# (pid file and log named NAME, default coupon-fcgi); ready once it has created its
# listening socket.
stack_fcgi_start() {
    local state=$1 build=$2 conf=$3 sock=$4 name=${5:-coupon-fcgi}
    local bin=$build/fcgi-app/coupon-fcgi
    [[ -x "$bin" ]] || cp_die "$bin not built"
    rm -f "$sock"
    stack_spawn "$state/pids/$name.pid" "$state/logs/$name.log" "$bin" -c "$conf"
    stack_wait "${COUPON_STACK_FCGI_TIMEOUT:-30}" "$name" "$state/pids/$name.pid" \
        "$state/logs/$name.log" test -S "$sock"
}

# stack_unset_config_env BUILD_DIR : unsets every COUPON_<KEY> override of a config key,
# so that none left exported in the caller's shell (say COUPON_REDIS_PORT from a
# `scripts/up` session) points the programs at the wrong server. The key list is the
# one the program itself prints (coupon-fcgi --print-config, with an empty environment).
stack_unset_config_env() {
    local bin=$1/fcgi-app/coupon-fcgi key
    [[ -x "$bin" ]] || return 0
    while read -r key; do
        unset "COUPON_${key^^}"
    done < <(env -i "$bin" --print-config | sed -n 's/^\([a-z0-9_]*\) = .*/\1/p')
}

# stack_write_config FILE KEY=VALUE... : the one `key = value` file every program reads
# (keys of common/conf.c), one line per key: a KEY given again replaces its earlier value,
# so callers layer their keys over the layout's. Mode 600: it holds the database password
# and admin token.
stack_write_config() {
    local file=$1 kv key
    shift
    local -A val=()
    local -a order=()
    for kv in "$@"; do
        key=${kv%%=*}
        [[ -v "val[$key]" ]] || order+=("$key")
        val[$key]=${kv#*=}
    done
    (
        umask 077
        {
            echo "# Written by scripts/lib/stack.sh; keys are documented in README.md."
            for key in "${order[@]}"; do
                printf '%s = %s\n' "$key" "${val[$key]}"
            done
        } >"$file"
    )
}

# stack_down STATE : everything under STATE, in dependency order: first the stacks in its
# subfolders (the runner's auth/ web servers, the bench's cluster/), then STATE's own
# processes in stages, those of a stage side by side: the web servers (no new requests),
# coupon-fcgi (no new events), the consumers (SIGTERM: finish the batch, commit, leave the
# group), the servers (none depends on another once the programs are gone), and last
# whatever else STATE/pids records (the bench's ceiling-fcgi, a test's own process). Never
# fails half way: each stage runs whatever the earlier ones did. Idempotent.
stack_down() {
    local state=$1 rc=0 f stage glob
    local -a globs pids
    for f in "$state"/*/pids; do
        [[ -d "$f" ]] || continue
        stack_down "${f%/pids}" || rc=1
    done
    # PIDFILE_GLOB:SECONDS from SIGTERM to SIGKILL. The web servers close their connections
    # at once; on SIGTERM Redis fsyncs its AOF, MariaDB flushes InnoDB (a large buffer pool
    # takes a while) and a broker runs its controlled shutdown (flushes and closes its logs).
    for stage in 'nginx:10 lighttpd:10' 'coupon-fcgi*:30' 'consumer-*:30' \
        'redis*:30 mariadb:60 kafka*:60' '*:30'; do
        read -r -a globs <<<"$stage"
        pids=()
        for glob in "${globs[@]}"; do
            for f in "$state"/pids/${glob%:*}.pid; do
                [[ -e "$f" ]] || continue
                stack_stop_pidfile "$f" "$(basename "$f" .pid)" "${glob#*:}" &
                pids+=($!)
            done
        done
        stack_wait_jobs "${pids[@]}" || rc=1
    done
    return "$rc"
}
