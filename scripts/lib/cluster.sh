# shellcheck shell=bash
# The nodes of a layout by index -- Redis nodes, Kafka KRaft nodes, consumers, app hosts --
# and what the cluster layout (issue #14: a Redis Cluster of 3 masters with a replica
# each, 3 Kafka brokers with RF 3 and min ISR 2) needs beyond single servers: creating the
# Redis Cluster, waiting until it and the topics' ISRs are healthy, finding a slot's
# master, waiting for a failover. Used by stack_up (scripts/lib/layout.sh) to start the
# nodes of either layout (a layout's only Redis or broker is started exactly as
# stack.sh's plain server) and, through bash -c, by harness.py (start, stop, SIGKILL a
# node; find a slot's master; wait for a failover). Sourced, never executed.
#
# Every function reads the layout from STATE/layout.env (stack_load), so a test only
# names the node. Indices start at 1 and name the process (index 3 of redis is redis-3
# in the cluster layout). Which Redis nodes are masters is decided by `redis-cli
# --cluster create` and changes with every failover: ask cluster_redis_masters or
# cluster_redis_master_of_slot.
#
# Knobs (environment): COUPON_CLUSTER_NODE_TIMEOUT_MS [2000] Redis' cluster-node-timeout
# (a dead master is replaced about this long after it stopped answering);
# COUPON_CLUSTER_KAFKA_HEAP [-Xms128m -Xmx384m] each broker's JVM heap options (of
# several; a lone broker gets -Xms512m -Xmx1g); COUPON_CLUSTER_TIMEOUT [90] seconds to
# wait for the Redis Cluster and for full ISRs.

[[ -z "${COUPON_LIB_CLUSTER_LOADED:-}" ]] || return 0
COUPON_LIB_CLUSTER_LOADED=1

# shellcheck source=scripts/lib/stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/stack.sh"

CLUSTER_SLOTS=16384

# ----------------------------------------------------------------- Redis ----

# cluster_redis_launch STATE I : Redis node I -- the layout's only one a plain server
# (redis), else a cluster node (redis-I) with its own bus port.
cluster_redis_launch() {
    local state=$1 i=$2 extra=''
    stack_load "$state" || return 1
    ((STACK_REDIS_NODES == 1)) || extra="\
# A Redis Cluster node (scripts/lib/cluster.sh); nodes.conf is its own view of the cluster.
cluster-enabled yes
cluster-config-file nodes.conf
cluster-port ${STACK_REDIS_BUS_PORTS[i - 1]}
cluster-node-timeout ${COUPON_CLUSTER_NODE_TIMEOUT_MS:-2000}"
    stack_redis_launch "$state" "${STACK_REDIS_PORTS[i - 1]}" "$(stack_node_name redis "$i")" \
        "$extra"
}

cluster_redis_wait() {
    stack_load "$1" || return 1
    stack_redis_wait "$1" "${STACK_REDIS_PORTS[$2 - 1]}" "$(stack_node_name redis "$2")"
}

# cluster_redis_cli STATE I ARGS... : redis-cli against node I (no redirections followed).
cluster_redis_cli() {
    local state=$1 i=$2
    shift 2
    stack_load "$state" || return 1
    redis-cli -h 127.0.0.1 -p "${STACK_REDIS_PORTS[i - 1]}" "$@"
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
    stack_load "$state" || return 1
    for ((i = 1; i <= STACK_REDIS_NODES; i++)); do
        [[ -z "$only" || "$only" == "$i" ]] || continue
        cluster_redis_alive "$state" "$i" || continue
        out=$(cluster_redis_cli "$state" "$i" cluster nodes 2>/dev/null | tr -d '\r') || out=''
        [[ "$out" == *myself* ]] && break
        out=''
    done
    [[ -n "$out" ]] || return 1
    awk -v ports="${STACK_REDIS_PORTS[*]}" '
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
    local state=$1 slot=$2 idx role flags r lo hi
    local -a ranges
    while read -r idx role _ flags _ ranges_text; do
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
    stack_load "$state" || return 1
    m=$(cluster_redis_master_of_slot "$state" "$slot") || return 1
    cluster_redis_alive "$state" "$m" || return 1
    [[ "$(cluster_redis_master_of_slot "$state" "$slot" "$m")" == "$m" ]] || return 1
    for ((i = 1; i <= STACK_REDIS_NODES; i++)); do
        cluster_redis_alive "$state" "$i" || continue
        [[ "$(cluster_redis_info "$state" "$i" cluster_state)" == ok ]] || return 1
    done
}

# cluster_redis_wait_failover STATE SLOT [TIMEOUT_S] : until cluster_redis_slot_served;
# prints the serving master's index.
cluster_redis_wait_failover() {
    local state=$1 slot=$2 timeout=${3:-30}
    if ! stack_poll "$timeout" 0.2 cluster_redis_slot_served "$state" "$slot"; then
        cp_warn "slot $slot not served by a live master after ${timeout}s; nodes:"
        cluster_redis_nodes "$state" >&2 || true
        return 1
    fi
    cluster_redis_master_of_slot "$state" "$slot"
}

# cluster_redis_healthy STATE : the whole cluster as created: every node runs and says
# cluster_state:ok with all 16384 slots ok and 6 known nodes; 3 masters serve slots; each
# has exactly one replica, connected and with its replication link up. Says what is
# missing on stderr when COUPON_CLUSTER_VERBOSE=1.
cluster_redis_healthy() {
    local state=$1 i f why='' nodes repl
    stack_load "$state" || return 1
    for ((i = 1; i <= STACK_REDIS_NODES; i++)); do
        for f in cluster_state:ok "cluster_slots_ok:$CLUSTER_SLOTS" \
            "cluster_known_nodes:$STACK_REDIS_NODES"; do
            if [[ "$(cluster_redis_info "$state" "$i" "${f%%:*}")" != "${f#*:}" ]]; then
                why="redis-$i: not ${f}"
                break 2
            fi
        done
    done
    if [[ -z "$why" ]]; then
        nodes=$(cluster_redis_nodes "$state") || nodes=''
        why=$(awk -v want=$((STACK_REDIS_NODES / 2)) '
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
        for ((i = 1; i <= STACK_REDIS_NODES; i++)); do
            repl=$(cluster_redis_cli "$state" "$i" info replication 2>/dev/null) || repl=''
            if [[ "$repl" == *role:slave* && "$repl" != *master_link_status:up* ]]; then
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
    stack_load "$state" || return 1
    for ((i = 1; i <= STACK_REDIS_NODES; i++)); do
        known=$(cluster_redis_info "$state" "$i" cluster_known_nodes)
        if [[ "$known" != 1 || "$(cluster_redis_info "$state" "$i" cluster_slots_assigned)" != 0 ]]; then
            cp_say "Redis Cluster: redis-$i already knows $known nodes; not creating it again"
            return 0
        fi
        addrs+=("127.0.0.1:${STACK_REDIS_PORTS[i - 1]}")
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
    if ! stack_poll "$timeout" 0.3 cluster_redis_healthy "$state"; then
        COUPON_CLUSTER_VERBOSE=1 cluster_redis_healthy "$state" || true
        cluster_redis_nodes "$state" >&2 || true
        cp_warn "the Redis Cluster is not healthy after ${timeout}s"
        return 1
    fi
}

# ----------------------------------------------------------------- Kafka ----

# cluster_kafka_launch STATE I : broker and controller I (node.id I) of the quorum of all
# -- the layout's only one (kafka) a one-node cluster with a 1 GB heap at most, else
# kafka-I, every topic with a replica on each broker and min.insync.replicas 2 (acks=all
# survives one broker down).
cluster_kafka_launch() {
    local state=$1 i=$2 k voters='' min_isr=1 extra=''
    local -a heap=(-Xms512m -Xmx1g)
    stack_load "$state" || return 1
    for ((k = 1; k <= STACK_KAFKA_NODES; k++)); do
        voters+=${voters:+,}$k@127.0.0.1:${STACK_KAFKA_CONTROLLER_PORTS[k - 1]}
    done
    if ((STACK_KAFKA_NODES > 1)); then
        # A broker that stops asks the controller quorum for its controlled shutdown and is
        # let go at its next heartbeat. When all three stop at once, the last one's
        # heartbeat (every 2 s by default) may come after the others' controllers are gone:
        # without a quorum it waits 5 minutes. Heartbeats every 250 ms close that window.
        min_isr=2 extra=broker.heartbeat.interval.ms=250
        read -r -a heap <<<"${COUPON_CLUSTER_KAFKA_HEAP:--Xms128m -Xmx384m}"
    fi
    stack_kafka_launch "$state" "${STACK_KAFKA_PORTS[i - 1]}" \
        "${STACK_KAFKA_CONTROLLER_PORTS[i - 1]}" "$(stack_node_name kafka "$i")" "$i" "$voters" \
        "$STACK_KAFKA_NODES" "$min_isr" "$extra" "${heap[@]}"
}

cluster_kafka_wait() {
    stack_load "$1" || return 1
    stack_kafka_wait "$1" "${STACK_KAFKA_PORTS[$2 - 1]}" "$(stack_node_name kafka "$2")" "$2"
}

# cluster_kafka_isr_short STATE WANT : the partitions of STACK_KAFKA_TOPICS with fewer
# than WANT in-sync replicas ("topic/partition isr=N" lines; none: all have WANT). Fails
# when no broker answers.
cluster_kafka_isr_short() {
    local state=$1 want=$2 json spec
    local -a topics=()
    stack_load "$state" || return 1
    for spec in "${STACK_KAFKA_TOPICS[@]}"; do
        topics+=("${spec%%:*}")
    done
    json=$(kcat -L -J -b "$(stack_addrs "${STACK_KAFKA_PORTS[@]}")" -m 5 2>/dev/null) || return 1
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

# cluster_kafka_wait_isr STATE [TIMEOUT_S] : until every partition of our topics has every
# broker in sync (right after creation a follower may not have fetched yet).
cluster_kafka_wait_isr() {
    local state=$1 timeout=${2:-${COUPON_CLUSTER_TIMEOUT:-90}} short
    local deadline=$((SECONDS + timeout))
    stack_load "$state" || return 1
    while short=$(cluster_kafka_isr_short "$state" "$STACK_KAFKA_NODES") || short='no answer'
        [[ -n "$short" ]]; do
        if ((SECONDS >= deadline)); then
            cp_warn "Kafka: not every partition has ISR $STACK_KAFKA_NODES after ${timeout}s:" \
                "$(tr '\n' ' ' <<<"$short")"
            return 1
        fi
        sleep 0.5
    done
}

# ------------------------------------------------------- one node by index ----

# cluster_node_start STATE KIND I : start node I of KIND (stack_node_name's kinds) again
# from what it has on disk; returns once it answers (Redis PING, the broker in its own
# metadata, MariaDB's ping, the app's socket; a consumer still running after a moment).
cluster_node_start() {
    local state=$1 kind=$2 i=$3
    stack_load "$state" || return 1
    local dir name
    case $kind in
    redis) cluster_redis_launch "$state" "$i" && cluster_redis_wait "$state" "$i" ;;
    kafka) cluster_kafka_launch "$state" "$i" && cluster_kafka_wait "$state" "$i" ;;
    mariadb) stack_mariadb_launch "$state" "$STACK_DB_PORT" && stack_mariadb_wait "$state" ;;
    consumer)
        stack_consumer_start "$state" "$STACK_BUILD_DIR" "$(stack_consumer_conf "$state")" \
            "consumer-$i" ;;
    app)
        dir=$(stack_app_dir "$state" "$i")
        name=$(stack_node_name app "$i")
        stack_fcgi_start "$state" "$STACK_BUILD_DIR" "$dir/coupon.conf" "$dir/fcgi.sock" "$name" ;;
    *) stack_node_name "$kind" "$i" >/dev/null ;;
    esac
}

# cluster_node_stop STATE KIND I : SIGTERM (a clean stop), SIGKILL after 60 s.
cluster_node_stop() {
    local name
    stack_load "$1" || return 1
    name=$(stack_node_name "$2" "$3") || return 1
    stack_stop_pidfile "$1/pids/$name.pid" "$name" 60
}

# cluster_node_kill STATE KIND I : SIGKILL (a crash: no shutdown work at all) and wait
# until it is gone. Its pidfile stays for stack_down, which then sweeps what is
# left of its process group (a coupon-fcgi master's workers).
cluster_node_kill() {
    local name pid
    stack_load "$1" || return 1
    name=$(stack_node_name "$2" "$3") || return 1
    if ! pid=$(stack_pidfile_pid "$1/pids/$name.pid"); then
        cp_warn "$name is not running"
        return 1
    fi
    kill -KILL "$pid"
    stack_poll 30 0.1 stack_pid_gone "$1/pids/$name.pid" && return 0
    cp_warn "$name (pid $pid) survived SIGKILL for 30 s"
    return 1
}
