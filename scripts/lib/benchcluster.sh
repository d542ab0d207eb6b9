# shellcheck shell=bash
# The cluster layout for `scripts/bench --cluster` (issue #14): scripts/lib/cluster.sh's
# Redis Cluster (3 masters + 3 replicas), 3 Kafka brokers, MariaDB, 3 consumers and two
# app hosts behind one nginx, on free loopback ports under STATE (the benchmark's
# temporary folder), tuned as scripts/bench tunes the one-node stack (log_level warn).
# Sourced by scripts/bench, never executed.

if [[ -n "${COUPON_LIB_BENCHCLUSTER_LOADED:-}" ]]; then
    return 0
fi
COUPON_LIB_BENCHCLUSTER_LOADED=1

# shellcheck source=scripts/lib/cluster.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
# shellcheck source=scripts/lib/web.sh
source "$(dirname "${BASH_SOURCE[0]}")/web.sh"

# bench_cluster_start STATE BUILD WORKERS THREADS : the whole layout, each app host with
# WORKERS x THREADS and redis_wait_replicas 1 (cluster.sh's default). Sets BENCH_HTTP,
# BENCH_ACCESS_LOG, BENCH_ADMIN_TOKEN, BENCH_DB_CNF, BENCH_REDIS_SEED (a node's port).
# shellcheck disable=SC2034 # the BENCH_* variables are its output, read by scripts/bench
bench_cluster_start() {
    local state=$1 build=$2 workers=$3 threads=$4 db_password hport
    local src
    src=$(cp_src_dir)
    mkdir -p "$state/logs" "$state/pids"
    local -a ports
    mapfile -t ports < <(stack_pick_ports 20 20000 32000)
    ((${#ports[@]} == 20)) || cp_die "could not pick free ports"
    CLUSTER_REDIS_PORTS=("${ports[@]:0:6}") CLUSTER_REDIS_BUS_PORTS=("${ports[@]:6:6}")
    CLUSTER_KAFKA_PORTS=("${ports[@]:12:3}") CLUSTER_KAFKA_CONTROLLER_PORTS=("${ports[@]:15:3}")
    local db_port=${ports[18]}
    hport=${ports[19]}
    cluster_init "$state" "$build" "$db_port" || return 1
    db_password=$(cp_random_hex 12)
    BENCH_ADMIN_TOKEN=$(cp_random_hex 16)
    (umask 077 && printf '%s\n' "$db_password" >"$state/db_password")
    cluster_servers_start "$state" "$db_password" || return 1
    "$src/scripts/migrate" --host 127.0.0.1 --port "$db_port" --user "$STACK_DB_USER" \
        --password-file "$state/db_password" --database "$STACK_DB_NAME" || return 1
    cluster_write_configs "$state" "workers=$workers" "threads=$threads" issue_ack=redis \
        "admin_token=$BENCH_ADMIN_TOKEN" "db_user=$STACK_DB_USER" "db_password=$db_password" \
        "db_name=$STACK_DB_NAME" "code_secret=$(cp_random_hex 24)" log_level=warn \
        auth_mode=none ratelimit_issue_per_s=0 ratelimit_redeem_per_s=0 || return 1
    BENCH_DB_CNF=$state/client.cnf
    (
        umask 077
        printf '[client]\nuser=%s\npassword=%s\nhost=127.0.0.1\nport=%s\nprotocol=tcp\n' \
            "$STACK_DB_USER" "$db_password" "$db_port"
        printf 'database=%s\n' "$STACK_DB_NAME"
    ) >"$BENCH_DB_CNF"
    web_start nginx "$state" "$hport" "$(cluster_fcgi_sockets "$state")" || return 1
    cluster_programs_start "$state" || return 1
    BENCH_HTTP=http://127.0.0.1:$hport
    BENCH_ACCESS_LOG=$state/logs/nginx-access.log
    BENCH_REDIS_SEED=${CLUSTER_REDIS_PORTS[0]}
    bench_cluster_wait_health "$BENCH_HTTP"
}

# bench_cluster_wait_health URL : GET URL/api/health answers 200 within 60 s.
bench_cluster_wait_health() {
    local deadline=$((SECONDS + 60))
    until [[ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$1/api/health")" == 200 ]]; do
        if ((SECONDS >= deadline)); then
            cp_warn "GET $1/api/health did not answer 200 within 60 s"
            return 1
        fi
        sleep 0.3
    done
}

# bench_cluster_set_wait STATE N : both app hosts restarted with redis_wait_replicas N.
bench_cluster_set_wait() {
    local state=$1 n=$2 i conf
    for ((i = 1; i <= CLUSTER_APPS; i++)); do
        conf=$state/app-$i/coupon.conf
        grep -q '^redis_wait_replicas = ' "$conf" || cp_die "$conf has no redis_wait_replicas"
        sed -i "s/^redis_wait_replicas = .*/redis_wait_replicas = $n/" "$conf"
        cluster_node_stop "$state" app "$i" || return 1
        cluster_node_start "$state" app "$i" || return 1
    done
    bench_cluster_wait_health "$BENCH_HTTP"
}

# bench_cluster_master_of STATE COUPON_ID : index of the master serving the coupon's slot.
bench_cluster_master_of() {
    local slot
    slot=$(cluster_redis_cli "$1" 1 CLUSTER KEYSLOT "coupon:{$2}:meta") || return 1
    cluster_redis_master_of_slot "$1" "$slot"
}

# bench_cluster_commandstats STATE OUT.json : every master's Redis command counts since
# the last CONFIG RESETSTAT ({"redis-I": {command: {calls, usec, usec_per_call}}}).
bench_cluster_commandstats() {
    local state=$1 outf=$2 m
    {
        for m in $(cluster_redis_masters "$state"); do
            printf 'node redis-%s\n' "$m"
            cluster_redis_cli "$state" "$m" INFO commandstats
        done
    } | python3 -c '
import json, re, sys
out, node = {}, None
for line in sys.stdin:
    line = line.strip()
    if line.startswith("node "):
        node = line[5:]
        out[node] = {}
        continue
    m = re.match(r"cmdstat_(\w+):calls=(\d+),usec=(\d+),usec_per_call=([\d.]+)", line)
    if m and node:
        out[node][m.group(1)] = {"calls": int(m.group(2)), "usec": int(m.group(3)),
                                 "usec_per_call": float(m.group(4))}
json.dump(out, open(sys.argv[1], "w"), indent=2)' "$outf"
}

# bench_cluster_resetstat STATE : CONFIG RESETSTAT on every node.
bench_cluster_resetstat() {
    local i
    for ((i = 1; i <= CLUSTER_REDIS_NODES; i++)); do
        cluster_redis_cli "$1" "$i" CONFIG RESETSTAT >/dev/null || return 1
    done
}

# bench_cluster_stop STATE : nginx, then everything cluster.sh started.
bench_cluster_stop() {
    [[ -d "$1/pids" ]] || return 0
    stack_stop_all "$1"
}
