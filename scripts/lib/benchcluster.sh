# shellcheck shell=bash
# The cluster layout for `scripts/bench --cluster` (issue #14): stack_up's cluster layout
# (scripts/lib/layout.sh: Redis Cluster of 3 masters + 3 replicas, 3 Kafka brokers,
# MariaDB, 3 consumers and two app hosts behind one nginx) on free loopback ports under
# STATE (a folder in the benchmark's temporary one), tuned as scripts/bench tunes the
# one-node stack (log_level warn). Sourced by scripts/bench, never executed.

if [[ -n "${COUPON_LIB_BENCHCLUSTER_LOADED:-}" ]]; then
    return 0
fi
COUPON_LIB_BENCHCLUSTER_LOADED=1

# shellcheck source=scripts/lib/layout.sh
source "$(dirname "${BASH_SOURCE[0]}")/layout.sh"

# bench_cluster_start STATE BUILD WORKERS THREADS : the whole layout, each app host with
# WORKERS x THREADS and redis_wait_replicas 1 (the layout's default). Sets BENCH_HTTP,
# BENCH_ACCESS_LOG, BENCH_ADMIN_TOKEN, BENCH_DB_CNF, BENCH_REDIS_SEED (a node's port).
# shellcheck disable=SC2034 # the BENCH_* variables are its output, read by scripts/bench
bench_cluster_start() {
    local state=$1 build=$2 workers=$3 threads=$4
    stack_layout "$state" cluster "$build" 20000-32000 nginx || return 1
    stack_up "$state" "workers=$workers" "threads=$threads" issue_ack=redis log_level=warn \
        auth_mode=none ratelimit_issue_per_s=0 ratelimit_redeem_per_s=0 || return 1
    stack_load "$state" || return 1
    BENCH_HTTP=http://127.0.0.1:${STACK_HTTP_PORTS[0]}
    BENCH_ACCESS_LOG=$state/logs/nginx-access.log
    BENCH_ADMIN_TOKEN=$(stack_secret "$state" admin_token)
    BENCH_DB_CNF=$state/client.cnf
    BENCH_REDIS_SEED=${STACK_REDIS_PORTS[0]}
    stack_health_wait "$state" "$BENCH_HTTP"
}

# bench_cluster_set_wait STATE N : both app hosts restarted with redis_wait_replicas N.
bench_cluster_set_wait() {
    local state=$1 n=$2 i conf
    stack_load "$state" || return 1
    for ((i = 1; i <= STACK_APPS; i++)); do
        conf=$state/app-$i/coupon.conf
        grep -q '^redis_wait_replicas = ' "$conf" || cp_die "$conf has no redis_wait_replicas"
        sed -i "s/^redis_wait_replicas = .*/redis_wait_replicas = $n/" "$conf"
        cluster_node_stop "$state" app "$i" || return 1
        cluster_node_start "$state" app "$i" || return 1
    done
    stack_health_wait "$state" "$BENCH_HTTP"
}

# bench_cluster_master_of STATE COUPON_ID : index of the master serving the coupon's slot.
bench_cluster_master_of() {
    local slot
    slot=$(cluster_redis_cli "$1" 1 CLUSTER KEYSLOT "coupon:{$2}:meta") || return 1
    cluster_redis_master_of_slot "$1" "$slot"
}

# bench_cluster_resetstat STATE : CONFIG RESETSTAT on every node.
bench_cluster_resetstat() {
    local i
    stack_load "$1" || return 1
    for ((i = 1; i <= STACK_REDIS_NODES; i++)); do
        cluster_redis_cli "$1" "$i" CONFIG RESETSTAT >/dev/null || return 1
    done
}
