# shellcheck shell=bash
# The scaled-out layout of issue #14 on one machine: a Redis Cluster of 6 nodes (3 masters,
# each with one replica), 3 Kafka KRaft nodes (RF 3, min.insync.replicas 2), one MariaDB,
# 3 coupon-consumers in one group and two coupon-fcgi "app hosts" behind one nginx
# upstream. Used by scripts/up --cluster, tests/integration/run --cluster and, through
# bash -c, harness.py (start, stop, SIGKILL a node; find a slot's master; wait for a
# failover). Sourced, never executed. Built from stack.sh's functions (processes and
# pidfiles, one Redis or Kafka node, MariaDB, the programs) and stopped by its
# stack_stop_all, which knows the names below.
#
# Layout of a state folder, beyond stack.sh's:
#   cluster.env          the ports and the build folder (written by cluster_init, read by
#                        every function here, so a test only names the node)
#   redis-N/ (N 1..6)    redis.conf, nodes.conf (the node's view of the cluster), the AOF
#   kafka-N/ (N 1..3)    server.properties, data/
#   app-N/   (N 1..2)    one app host: coupon.conf, fcgi.sock, fcgi.metrics
#   consumer.conf        the config of consumer-1..3
#   pids/, logs/         redis-N, kafka-N, consumer-N, coupon-fcgi-N, mariadb, nginx
#
# Indices start at 1 and name the process (index 3 of redis is redis-3). Which Redis
# nodes are masters is decided by `redis-cli --cluster create` and changes with every
# failover: ask cluster_redis_masters or cluster_redis_master_of_slot.
#
# Knobs (environment): COUPON_CLUSTER_NODE_TIMEOUT_MS [2000] Redis' cluster-node-timeout
# (a dead master is replaced about this long after it stopped answering);
# COUPON_CLUSTER_KAFKA_HEAP [-Xms128m -Xmx384m] each broker's JVM heap options;
# COUPON_CLUSTER_TIMEOUT [90] seconds to wait for the Redis Cluster and for ISR 3.

if [[ -n "${COUPON_LIB_CLUSTER_LOADED:-}" ]]; then
    return 0
fi
COUPON_LIB_CLUSTER_LOADED=1

# shellcheck source=scripts/lib/stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/stack.sh"

CLUSTER_REDIS_NODES=6
CLUSTER_KAFKA_NODES=3
CLUSTER_CONSUMERS=3
CLUSTER_APPS=2
CLUSTER_SLOTS=16384

# ---------------------------------------------------------------- layout ----

# cluster_init STATE BUILD_DIR DB_PORT : saves the caller's CLUSTER_REDIS_PORTS (6),
# CLUSTER_REDIS_BUS_PORTS (6, the cluster bus of each node), CLUSTER_KAFKA_PORTS (3),
# CLUSTER_KAFKA_CONTROLLER_PORTS (3), BUILD_DIR and DB_PORT in STATE/cluster.env.
cluster_init() {
    local state=$1 build=$2 db_port=$3 p
    local -a all=("${CLUSTER_REDIS_PORTS[@]}" "${CLUSTER_REDIS_BUS_PORTS[@]}"
        "${CLUSTER_KAFKA_PORTS[@]}" "${CLUSTER_KAFKA_CONTROLLER_PORTS[@]}" "$db_port")
    if ((${#CLUSTER_REDIS_PORTS[@]} != CLUSTER_REDIS_NODES ||
        ${#CLUSTER_REDIS_BUS_PORTS[@]} != CLUSTER_REDIS_NODES ||
        ${#CLUSTER_KAFKA_PORTS[@]} != CLUSTER_KAFKA_NODES ||
        ${#CLUSTER_KAFKA_CONTROLLER_PORTS[@]} != CLUSTER_KAFKA_NODES)); then
        cp_warn "cluster_init: need $CLUSTER_REDIS_NODES Redis, $CLUSTER_REDIS_NODES bus," \
            "$CLUSTER_KAFKA_NODES Kafka and $CLUSTER_KAFKA_NODES controller ports"
        return 1
    fi
    for p in "${all[@]}"; do
        [[ "$p" =~ ^[0-9]+$ ]] || {
            cp_warn "cluster_init: '$p' is not a port"
            return 1
        }
    done
    mkdir -p "$state"
    {
        echo "# Written by scripts/lib/cluster.sh (cluster_init); sourced by cluster_load."
        echo "CLUSTER_REDIS_PORTS=(${CLUSTER_REDIS_PORTS[*]})"
        echo "CLUSTER_REDIS_BUS_PORTS=(${CLUSTER_REDIS_BUS_PORTS[*]})"
        echo "CLUSTER_KAFKA_PORTS=(${CLUSTER_KAFKA_PORTS[*]})"
        echo "CLUSTER_KAFKA_CONTROLLER_PORTS=(${CLUSTER_KAFKA_CONTROLLER_PORTS[*]})"
        echo "CLUSTER_DB_PORT=$db_port"
        printf 'CLUSTER_BUILD_DIR=%q\n' "$build"
    } >"$state/cluster.env"
}

# cluster_load STATE : the layout saved by cluster_init, as global variables.
cluster_load() {
    if [[ ! -f "$1/cluster.env" ]]; then
        cp_warn "$1/cluster.env missing: not a cluster state folder"
        return 1
    fi
    # shellcheck source=/dev/null
    source "$1/cluster.env"
}

# cluster_addrs PORT... : 127.0.0.1:PORT,127.0.0.1:PORT,... (the programs' lists).
cluster_addrs() {
    local p out=''
    for p in "$@"; do
        out+=${out:+,}127.0.0.1:$p
    done
    printf '%s\n' "$out"
}

# cluster_redis_seeds STATE : every node (redis_cluster).
cluster_redis_seeds() {
    cluster_load "$1" && cluster_addrs "${CLUSTER_REDIS_PORTS[@]}"
}

# cluster_kafka_bootstrap STATE : the 3 brokers (kafka_brokers).
cluster_kafka_bootstrap() {
    cluster_load "$1" && cluster_addrs "${CLUSTER_KAFKA_PORTS[@]}"
}

# cluster_fcgi_sockets STATE : the app hosts' sockets, comma-separated (web_start's form).
cluster_fcgi_sockets() {
    local i out=''
    for ((i = 1; i <= CLUSTER_APPS; i++)); do
        out+=${out:+,}$1/app-$i/fcgi.sock
    done
    printf '%s\n' "$out"
}

# ----------------------------------------------------------------- Redis ----

# cluster_redis_launch STATE I : node redis-I, a cluster node with its own bus port.
cluster_redis_launch() {
    local state=$1 i=$2
    cluster_load "$state" || return 1
    stack_redis_launch "$state" "${CLUSTER_REDIS_PORTS[i - 1]}" "redis-$i" "\
# A Redis Cluster node (scripts/lib/cluster.sh); nodes.conf is its own view of the cluster.
cluster-enabled yes
cluster-config-file nodes.conf
cluster-port ${CLUSTER_REDIS_BUS_PORTS[i - 1]}
cluster-node-timeout ${COUPON_CLUSTER_NODE_TIMEOUT_MS:-2000}"
}

cluster_redis_wait() {
    cluster_load "$1" || return 1
    stack_redis_wait "$1" "${CLUSTER_REDIS_PORTS[$2 - 1]}" "redis-$2"
}

# cluster_redis_cli STATE I ARGS... : redis-cli against node I (no redirections followed).
cluster_redis_cli() {
    local state=$1 i=$2
    shift 2
    cluster_load "$state" || return 1
    redis-cli -h 127.0.0.1 -p "${CLUSTER_REDIS_PORTS[i - 1]}" "$@"
}

# cluster_redis_info STATE I FIELD : one field of node I's CLUSTER INFO.
cluster_redis_info() {
    cluster_redis_cli "$1" "$2" cluster info 2>/dev/null | tr -d '\r' |
        sed -n "s/^$3://p"
}

# cluster_redis_alive STATE I : node I's process runs (it may still be loading).
cluster_redis_alive() {
    stack_pidfile_pid "$1/pids/redis-$2.pid" >/dev/null
}

# cluster_redis_nodes STATE [I] : CLUSTER NODES as node I (default: the first live node
# that answers) sees them, one line per node sorted by index:
#   INDEX ROLE MASTER FLAGS LINK SLOT_RANGE...
# ROLE master|replica; MASTER the index of a replica's master, "-" for a master; FLAGS
# Redis' (myself, fail, fail?, ...); LINK connected|disconnected; SLOT_RANGE 0-5460,
# 5461 or [5461->-id] (migrating) / [5461-<-id] (importing).
cluster_redis_nodes() {
    local state=$1 only=${2:-} i out=''
    cluster_load "$state" || return 1
    for ((i = 1; i <= CLUSTER_REDIS_NODES; i++)); do
        [[ -z "$only" || "$only" == "$i" ]] || continue
        cluster_redis_alive "$state" "$i" || continue
        out=$(cluster_redis_cli "$state" "$i" cluster nodes 2>/dev/null | tr -d '\r') || out=''
        [[ "$out" == *myself* ]] && break
        out=''
    done
    [[ -n "$out" ]] || return 1
    awk -v ports="${CLUSTER_REDIS_PORTS[*]}" '
        BEGIN { n = split(ports, p, " "); for (k = 1; k <= n; k++) idx[p[k]] = k }
        {
            addr = $2; sub(/@.*/, "", addr); sub(/.*:/, "", addr)
            ix[$1] = (addr in idx) ? idx[addr] : "?"; line[NR] = $0
        }
        END {
            for (r = 1; r <= NR; r++) {
                nf = split(line[r], f, " ")
                role = (f[3] ~ /master/) ? "master" : "replica"
                m = (f[4] == "-") ? "-" : ((f[4] in ix) ? ix[f[4]] : "?")
                s = ""
                for (k = 9; k <= nf; k++) s = s " " f[k]
                print ix[f[1]], role, m, f[3], f[8] s
            }
        }' <<<"$out" | sort -n
}

# cluster_redis_masters STATE : the indices of the masters that serve slots (not failed).
cluster_redis_masters() {
    cluster_redis_nodes "$1" | awk '$2 == "master" && $4 !~ /fail/ && NF > 5 { print $1 }'
}

# cluster_redis_master_of_slot STATE SLOT [I] : the index of the master serving SLOT, as
# node I (default: the first live node) sees it. Fails when no healthy master has it.
cluster_redis_master_of_slot() {
    local state=$1 slot=$2 idx role master flags link r lo hi
    local -a ranges
    while read -r idx role master flags link ranges_text; do
        [[ "$role" == master && "$flags" != *fail* ]] || continue
        read -r -a ranges <<<"$ranges_text"
        for r in "${ranges[@]}"; do
            [[ "$r" != \[* ]] || continue
            lo=${r%-*} hi=${r#*-}
            if ((slot >= lo && slot <= hi)); then
                printf '%s\n' "$idx"
                return 0
            fi
        done
    done < <(cluster_redis_nodes "$state" "${3:-}")
    return 1
}

# cluster_redis_slot_served STATE SLOT : true when SLOT's master (as the first live node
# sees it) runs, sees itself as that slot's master, and every live node says
# cluster_state:ok -- a failover is over.
cluster_redis_slot_served() {
    local state=$1 slot=$2 m i
    m=$(cluster_redis_master_of_slot "$state" "$slot") || return 1
    cluster_redis_alive "$state" "$m" || return 1
    [[ "$(cluster_redis_master_of_slot "$state" "$slot" "$m")" == "$m" ]] || return 1
    for ((i = 1; i <= CLUSTER_REDIS_NODES; i++)); do
        cluster_redis_alive "$state" "$i" || continue
        [[ "$(cluster_redis_info "$state" "$i" cluster_state)" == ok ]] || return 1
    done
}

# cluster_redis_wait_failover STATE SLOT [TIMEOUT_S] : until cluster_redis_slot_served;
# prints the serving master's index.
cluster_redis_wait_failover() {
    local state=$1 slot=$2 deadline=$((SECONDS + ${3:-30}))
    until cluster_redis_slot_served "$state" "$slot"; do
        if ((SECONDS >= deadline)); then
            cp_warn "slot $slot not served by a live master after ${3:-30}s; nodes:"
            cluster_redis_nodes "$state" >&2 || true
            return 1
        fi
        sleep 0.2
    done
    cluster_redis_master_of_slot "$state" "$slot"
}

# cluster_redis_healthy STATE : the whole cluster as created: every node runs and says
# cluster_state:ok with all 16384 slots ok and 6 known nodes; 3 masters serve slots; each
# has exactly one replica, connected and with its replication link up. Says what is
# missing on stderr when COUPON_CLUSTER_VERBOSE=1.
cluster_redis_healthy() {
    local state=$1 i f why='' nodes
    cluster_load "$state" || return 1
    for ((i = 1; i <= CLUSTER_REDIS_NODES; i++)); do
        for f in cluster_state:ok "cluster_slots_ok:$CLUSTER_SLOTS" \
            "cluster_known_nodes:$CLUSTER_REDIS_NODES"; do
            if [[ "$(cluster_redis_info "$state" "$i" "${f%%:*}")" != "${f#*:}" ]]; then
                why="redis-$i: not ${f}"
                break 2
            fi
        done
    done
    if [[ -z "$why" ]]; then
        nodes=$(cluster_redis_nodes "$state") || nodes=''
        why=$(awk -v want=$((CLUSTER_REDIS_NODES / 2)) '
            $4 ~ /fail/ { bad = bad " redis-" $1 " flagged " $4 }
            $2 == "master" && NF > 5 { m[$1] = 0 }
            $2 == "replica" && $5 == "connected" { r[$3]++ }
            END {
                n = 0
                for (k in m) { n++; if (r[k] != 1) bad = bad " master redis-" k " has " r[k] + 0 " replicas" }
                if (n != want) bad = bad " " n " masters serve slots"
                print substr(bad, 2)
            }' <<<"$nodes")
    fi
    if [[ -z "$why" ]]; then
        for ((i = 1; i <= CLUSTER_REDIS_NODES; i++)); do
            if cluster_redis_cli "$state" "$i" info replication 2>/dev/null |
                grep -q '^role:slave' &&
                ! cluster_redis_cli "$state" "$i" info replication 2>/dev/null |
                grep -q '^master_link_status:up'; then
                why="redis-$i: replication link not up"
                break
            fi
        done
    fi
    if [[ -n "$why" ]]; then
        [[ "${COUPON_CLUSTER_VERBOSE:-0}" != 1 ]] || cp_warn "Redis Cluster: $why"
        return 1
    fi
}

# cluster_redis_create STATE : `redis-cli --cluster create` over the 6 nodes (3 masters,
# --cluster-replicas 1) unless they already form a cluster (a state folder reused by
# scripts/up: each node's nodes.conf remembers it).
cluster_redis_create() {
    local state=$1 i known
    local -a addrs=()
    cluster_load "$state" || return 1
    for ((i = 1; i <= CLUSTER_REDIS_NODES; i++)); do
        known=$(cluster_redis_info "$state" "$i" cluster_known_nodes)
        if [[ "$known" != 1 || "$(cluster_redis_info "$state" "$i" cluster_slots_assigned)" != 0 ]]; then
            cp_say "Redis Cluster: redis-$i already knows $known nodes; not creating it again"
            return 0
        fi
        addrs+=("127.0.0.1:${CLUSTER_REDIS_PORTS[i - 1]}")
    done
    if ! redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes \
        >>"$state/logs/redis-cluster-create.log" 2>&1; then
        tail -n 30 "$state/logs/redis-cluster-create.log" >&2
        cp_warn "redis-cli --cluster create failed (see $state/logs/redis-cluster-create.log)"
        return 1
    fi
}

# cluster_redis_wait_healthy STATE [TIMEOUT_S]
cluster_redis_wait_healthy() {
    local state=$1 timeout=${2:-${COUPON_CLUSTER_TIMEOUT:-90}}
    local deadline=$((SECONDS + timeout))
    until cluster_redis_healthy "$state"; do
        if ((SECONDS >= deadline)); then
            COUPON_CLUSTER_VERBOSE=1 cluster_redis_healthy "$state" || true
            cluster_redis_nodes "$state" >&2 || true
            cp_warn "the Redis Cluster is not healthy after ${timeout}s"
            return 1
        fi
        sleep 0.3
    done
}

# ----------------------------------------------------------------- Kafka ----

# cluster_kafka_launch STATE I : broker and controller kafka-I (node.id I) of the 3-node
# quorum; every topic with 3 replicas and min.insync.replicas 2 (acks=all survives one
# broker down).
cluster_kafka_launch() {
    local state=$1 i=$2 k voters=''
    cluster_load "$state" || return 1
    for ((k = 1; k <= CLUSTER_KAFKA_NODES; k++)); do
        voters+=${voters:+,}$k@127.0.0.1:${CLUSTER_KAFKA_CONTROLLER_PORTS[k - 1]}
    done
    local -a heap
    read -r -a heap <<<"${COUPON_CLUSTER_KAFKA_HEAP:--Xms128m -Xmx384m}"
    # A broker that stops asks the controller quorum for its controlled shutdown and is
    # let go at its next heartbeat. When all three stop at once, the last one's heartbeat
    # (every 2 s by default) may come after the others' controllers are gone: without a
    # quorum it waits 5 minutes. Heartbeats every 250 ms close that window.
    stack_kafka_launch "$state" "${CLUSTER_KAFKA_PORTS[i - 1]}" \
        "${CLUSTER_KAFKA_CONTROLLER_PORTS[i - 1]}" "kafka-$i" "$i" "$voters" \
        "$CLUSTER_KAFKA_NODES" 2 "broker.heartbeat.interval.ms=250" "${heap[@]}"
}

cluster_kafka_wait() {
    cluster_load "$1" || return 1
    stack_kafka_wait "$1" "${CLUSTER_KAFKA_PORTS[$2 - 1]}" "kafka-$2" "$2"
}

# cluster_kafka_isr_short STATE WANT : the partitions of STACK_KAFKA_TOPICS with fewer
# than WANT in-sync replicas ("topic/partition isr=N" lines; none: all have WANT). Fails
# when no broker answers.
cluster_kafka_isr_short() {
    local state=$1 want=$2 json spec
    local -a topics=()
    for spec in "${STACK_KAFKA_TOPICS[@]}"; do
        topics+=("${spec%%:*}")
    done
    json=$(kcat -L -J -b "$(cluster_kafka_bootstrap "$state")" -m 5 2>/dev/null) || return 1
    python3 -c '
import json, sys
want, topics = int(sys.argv[1]), set(sys.argv[2:])
seen = set()
for t in json.load(sys.stdin).get("topics", []):
    if t["topic"] not in topics:
        continue
    seen.add(t["topic"])
    for p in t.get("partitions") or []:
        if len(p.get("isrs") or []) < want:
            print("%s/%d isr=%d" % (t["topic"], p["partition"], len(p.get("isrs") or [])))
for t in sorted(topics - seen):
    print("%s missing" % t)
' "$want" "${topics[@]}" <<<"$json"
}

# cluster_kafka_wait_isr STATE [TIMEOUT_S] : until every partition of our topics has all
# 3 brokers in sync (right after creation a follower may not have fetched yet).
cluster_kafka_wait_isr() {
    local state=$1 timeout=${2:-${COUPON_CLUSTER_TIMEOUT:-90}} short
    local deadline=$((SECONDS + timeout))
    while short=$(cluster_kafka_isr_short "$state" "$CLUSTER_KAFKA_NODES") || short='no answer'
        [[ -n "$short" ]]; do
        if ((SECONDS >= deadline)); then
            cp_warn "Kafka: not every partition has ISR $CLUSTER_KAFKA_NODES after ${timeout}s:" \
                "$(tr '\n' ' ' <<<"$short")"
            return 1
        fi
        sleep 0.5
    done
}

# -------------------------------------------------------------- servers ----

# cluster_servers_start STATE DB_PASSWORD : everything but our programs. The 3 Kafka JVMs
# go first (the slowest), then the 6 Redis nodes and MariaDB, all side by side; then the
# Redis Cluster is created (first start only) and waited for, the database user set up,
# the brokers waited for, the topics created with 3 replicas and waited for until every
# partition has 3 in sync. Says how long each part took.
cluster_servers_start() {
    local state=$1 dbpw=$2 i t0 masters
    cluster_load "$state" || return 1
    t0=$(cp_now_ms)
    cp_say "Redis $(stack_redis_version) cluster on 127.0.0.1:${CLUSTER_REDIS_PORTS[*]}" \
        "(bus ${CLUSTER_REDIS_BUS_PORTS[*]}); MariaDB $(stack_mariadb_version) on" \
        "127.0.0.1:$CLUSTER_DB_PORT; Kafka $STACK_KAFKA_VERSION brokers on" \
        "127.0.0.1:${CLUSTER_KAFKA_PORTS[*]} (controllers ${CLUSTER_KAFKA_CONTROLLER_PORTS[*]})"
    cp_say "Java: $(java -version 2>&1 | head -n 1)"
    for ((i = 1; i <= CLUSTER_KAFKA_NODES; i++)); do
        cluster_kafka_launch "$state" "$i"
    done
    for ((i = 1; i <= CLUSTER_REDIS_NODES; i++)); do
        cluster_redis_launch "$state" "$i"
    done
    stack_mariadb_launch "$state" "$CLUSTER_DB_PORT"
    for ((i = 1; i <= CLUSTER_REDIS_NODES; i++)); do
        cluster_redis_wait "$state" "$i" || return 1
    done
    cluster_redis_create "$state" || return 1
    cluster_redis_wait_healthy "$state" || return 1
    masters=$(cluster_redis_masters "$state" | sed 's/^/redis-/' | tr '\n' ' ')
    cp_say "Redis Cluster ok at $(($(cp_now_ms) - t0)) ms (masters: ${masters% })"
    stack_mariadb_wait "$state" || return 1
    stack_mariadb_setup "$state" "$dbpw" || return 1
    for ((i = 1; i <= CLUSTER_KAFKA_NODES; i++)); do
        cluster_kafka_wait "$state" "$i" || return 1
    done
    cp_say "$CLUSTER_KAFKA_NODES Kafka brokers up at $(($(cp_now_ms) - t0)) ms"
    stack_kafka_topics "$state" "${CLUSTER_KAFKA_PORTS[0]}" "$CLUSTER_KAFKA_NODES" || return 1
    cluster_kafka_wait_isr "$state" || return 1
    cp_say "cluster servers ready in $(($(cp_now_ms) - t0)) ms (topics at ISR $CLUSTER_KAFKA_NODES)"
}

# ------------------------------------------------------------- programs ----

# cluster_write_configs STATE KEY=VALUE... : app-1/coupon.conf and app-2/coupon.conf (each
# its own socket and metrics file, as on two machines) and consumer.conf, with the
# cluster's addresses -- redis_cluster (every node a seed), redis_wait_replicas 1 (a 201
# waits until one replica has the claim), kafka_brokers (all 3), MariaDB -- and the
# caller's KEY=VALUEs (secrets, tuning). A key the caller names replaces the default
# of the same name, so each file has one line per key.
cluster_write_configs() {
    local state=$1 i kv
    shift
    cluster_load "$state" || return 1
    local -a keys=() defaults=("redis_cluster=$(cluster_redis_seeds "$state")"
        redis_wait_replicas=1 redis_wait_timeout_ms=200
        "kafka_brokers=$(cluster_kafka_bootstrap "$state")" db_host=127.0.0.1
        "db_port=$CLUSTER_DB_PORT")
    for kv in "${defaults[@]}"; do
        [[ " ${*%%=*} " == *" ${kv%%=*} "* ]] || keys+=("$kv")
    done
    keys+=("$@")
    for ((i = 1; i <= CLUSTER_APPS; i++)); do
        mkdir -p "$state/app-$i"
        stack_write_config "$state/app-$i/coupon.conf" "listen=unix:$state/app-$i/fcgi.sock" \
            "metrics_path=$state/app-$i/fcgi.metrics" "${keys[@]}"
    done
    stack_write_config "$state/consumer.conf" "${keys[@]}"
}

# cluster_programs_supported BUILD_DIR : true when the programs know the key
# redis_cluster (the C Redis Cluster client is built in); without it they refuse the
# configuration files above.
cluster_programs_supported() {
    env -i "$1/fcgi-app/coupon-fcgi" --print-config 2>/dev/null | grep -q '^redis_cluster = '
}

# cluster_programs_start STATE : consumer-1..3 (one group), then the two app hosts.
cluster_programs_start() {
    local state=$1 i
    for ((i = 1; i <= CLUSTER_CONSUMERS; i++)); do
        cluster_node_start "$state" consumer "$i" || return 1
    done
    for ((i = 1; i <= CLUSTER_APPS; i++)); do
        cluster_node_start "$state" app "$i" || return 1
    done
}

# ------------------------------------------------------- one node by index ----

# cluster_node_name KIND I : the process name (pidfile, log) of node I of KIND: redis,
# kafka, consumer or app (a coupon-fcgi master).
cluster_node_name() {
    case $1 in
    redis | kafka | consumer) printf '%s-%s\n' "$1" "$2" ;;
    app) printf 'coupon-fcgi-%s\n' "$2" ;;
    *)
        cp_warn "unknown node kind '$1' (redis, kafka, consumer, app)"
        return 1
        ;;
    esac
}

# cluster_node_start STATE KIND I : start node I (again) from what it has on disk; returns
# once it answers (Redis PING, the broker in its own metadata, the app's socket; a
# consumer that is still running after a moment).
cluster_node_start() {
    local state=$1 kind=$2 i=$3
    cluster_load "$state" || return 1
    case $kind in
    redis) cluster_redis_launch "$state" "$i" && cluster_redis_wait "$state" "$i" ;;
    kafka) cluster_kafka_launch "$state" "$i" && cluster_kafka_wait "$state" "$i" ;;
    consumer)
        stack_consumer_start "$state" "$CLUSTER_BUILD_DIR" "$state/consumer.conf" "consumer-$i" ;;
    app)
        stack_fcgi_start "$state" "$CLUSTER_BUILD_DIR" "$state/app-$i/coupon.conf" \
            "$state/app-$i/fcgi.sock" "coupon-fcgi-$i" ;;
    *) cluster_node_name "$kind" "$i" >/dev/null ;;
    esac
}

# cluster_node_stop STATE KIND I : SIGTERM (a clean stop), SIGKILL after 60 s.
cluster_node_stop() {
    local name
    name=$(cluster_node_name "$2" "$3") || return 1
    stack_stop_pidfile "$1/pids/$name.pid" "$name" 60
}

# cluster_node_kill STATE KIND I : SIGKILL (a crash: no shutdown work at all) and wait
# until it is gone. Its pidfile stays for stack_stop_all, which then sweeps what is
# left of its process group (a coupon-fcgi master's workers).
cluster_node_kill() {
    local name pid i
    name=$(cluster_node_name "$2" "$3") || return 1
    if ! pid=$(stack_pidfile_pid "$1/pids/$name.pid"); then
        cp_warn "$name is not running"
        return 1
    fi
    kill -KILL "$pid"
    for ((i = 0; i < 300; i++)); do
        stack_pidfile_pid "$1/pids/$name.pid" >/dev/null || return 0
        sleep 0.1
    done
    cp_warn "$name (pid $pid) survived SIGKILL for 30 s"
    return 1
}
