# shellcheck shell=bash
# The stack of scripts/bench: stack_up's single layout (scripts/lib/layout.sh: Redis,
# MariaDB, Kafka, one coupon-consumer, coupon-fcgi standalone on a unix socket) and two
# more masters (issue_ack=kafka; auth_mode=jwt), plus ceiling-fcgi, the trivial FastCGI
# responder (twice: with few threads, and with enough threads for deploy/nginx's pool of
# kept connections), and one nginx serving sites rendered from deploy/nginx/: the coupon
# site and the same site in front of each other responder, so all are measured through
# identical web server settings. And for `scripts/bench --cluster` (issue #14), stack_up's
# cluster layout with the same tuning. Sourced, never executed.
#
#   bench_stack_start STATE BUILD WORKERS THREADS KAFKA_THREADS CEILING_THREADS
#     POOL_CEILING_THREADS                            -> sets BENCH_* (below)
#   bench_cluster_start STATE BUILD WORKERS THREADS    the cluster layout (below)
# stack_down (stack.sh) stops either.
#
# Variables set by bench_stack_start: BENCH_HTTP (http://127.0.0.1:PORT of the coupon
# site, issue_ack=redis), BENCH_KAFKA_HTTP (the same with issue_ack=kafka), BENCH_JWT_HTTP
# (auth_mode=jwt), BENCH_CEILING_HTTP / BENCH_CEILING_KEPT_HTTP / BENCH_CEILING_POOL_HTTP
# (the ceiling without FastCGI connection reuse, with 4 kept connections per nginx
# worker, with deploy/nginx's pool), each with its access log in BENCH_<SAME>_ACCESS_LOG
# (BENCH_ACCESS_LOG for BENCH_HTTP); BENCH_REDIS_PORT, BENCH_DB_PORT, BENCH_KAFKA
# (bootstrap), BENCH_CONF (config file), BENCH_ADMIN_TOKEN, BENCH_DB_CNF (option file for
# the mariadb CLI), BENCH_JWT_KEY_DIR.

[[ -z "${COUPON_LIB_BENCHSTACK_LOADED:-}" ]] || return 0
COUPON_LIB_BENCHSTACK_LOADED=1

# shellcheck source=scripts/lib/layout.sh
source "$(dirname "${BASH_SOURCE[0]}")/layout.sh"

# The tuning of every coupon-fcgi of the bench. log_level warn: an info line per request
# would measure the logger. The requests name their users (auth_mode none), without
# per-user limits, as before issue 24 (the jwt master overrides the last three).
BENCH_KEYS=(log_level=warn auth_mode=none ratelimit_issue_per_s=0 ratelimit_redeem_per_s=0)

# bench_ceiling_start STATE BUILD SOCKET WORKERS THREADS [NAME]
bench_ceiling_start() {
    local state=$1 build=$2 sock=$3 workers=$4 threads=$5 name=${6:-ceiling-fcgi}
    local bin=$build/bench/ceiling-fcgi
    [[ -x "$bin" ]] || cp_die "$bin not built"
    rm -f "$sock"
    stack_spawn "$state/pids/$name.pid" "$state/logs/$name.log" \
        "$bin" --listen "unix:$sock" --workers "$workers" --threads "$threads"
    stack_wait 10 "$name" "$state/pids/$name.pid" "$state/logs/$name.log" test -S "$sock"
}

# bench_deploy_pool : the kept FastCGI connections per nginx worker of deploy/nginx
# (coupon-http.conf's upstream), so that the bench's other sites use the same pool.
bench_deploy_pool() {
    local n
    n=$(sed -n 's/^ *keepalive \([0-9][0-9]*\);.*/\1/p' \
        "$(cp_src_dir)/deploy/nginx/coupon-http.conf" | head -n 1)
    [[ -n "$n" ]] || cp_die "no keepalive line in deploy/nginx/coupon-http.conf"
    echo "$n"
}

# bench_site DIR PORT UPSTREAM SOCKET NEW_PORT LOGNAME KEEPALIVE : deploy/nginx's coupon
# server {} again on NEW_PORT, in front of SOCKET through upstream UPSTREAM (KEEPALIVE
# kept connections per nginx worker, 0 = a new FastCGI connection per request), with
# its own access log LOGNAME.
bench_site() {
    local dir=$1 port=$2 upstream=$3 sock=$4 nport=$5 logname=$6 keep=$7
    {
        echo "# Written by scripts/lib/benchstack.sh: deploy/nginx/coupon.conf again."
        echo "upstream $upstream {"
        echo "    server unix:$sock;"
        if ((keep > 0)); then
            echo "    keepalive $keep;"
            echo "    keepalive_requests 1000;"
            echo "    keepalive_timeout 10s;"
        fi
        echo "}"
        sed -e "s|fastcgi_pass coupon_fcgi;|fastcgi_pass $upstream;|" \
            -e "s|nginx-access\.log|$logname|" \
            -e "s|listen 127\.0\.0\.1:$port;|listen 127.0.0.1:$nport;|" "$dir/coupon.conf"
    } >"$dir/$upstream.conf" || return 1
    grep -q "listen 127.0.0.1:$nport;" "$dir/$upstream.conf" || {
        cp_warn "could not retarget the listen directive of $upstream"
        return 1
    }
    # Include it inside http {}: the last line of web.sh's nginx.conf closes that block.
    sed -i '$d' "$dir/nginx.conf" &&
        printf '    include %s;\n}\n' "$dir/$upstream.conf" >>"$dir/nginx.conf"
}

# The bench's sites beside the coupon site: NAME SOCKET KEEPALIVE, each served on a port
# of its own through upstream bench_NAME and logged to nginx-NAME-access.log (NAME's
# dashes as underscores in the upstream). KEEPALIVE: kept FastCGI connections per nginx
# worker, 0 for a new connection per request, "pool" for deploy/nginx's own pool. The
# kept ceiling's 4 is the trivial responder's best small pool.
BENCH_SITES=("ceiling ceiling.sock 0" "ceiling-kept ceiling.sock 4"
    "ceiling-pool ceiling-pool.sock pool" "kafka fcgi-kafka.sock pool"
    "jwt fcgi-jwt.sock pool")

# bench_nginx_start STATE PORT SITE_PORT... : web.sh's rendering of deploy/nginx/ for the
# coupon site on PORT, plus a copy of the same server {} per BENCH_SITES entry, on the
# SITE_PORTs in that order. Sets BENCH_HTTP, BENCH_ACCESS_LOG and BENCH_<NAME>_HTTP,
# BENCH_<NAME>_ACCESS_LOG for each site.
# shellcheck disable=SC2034 # the BENCH_* variables are its output, read by scripts/bench
bench_nginx_start() {
    local state=$1 port=$2 pool site name sock keep i=0 var
    shift 2
    local -a ports=("$port" "$@")
    pool=$(bench_deploy_pool)
    web_render_nginx "$state" "$port" "$state/fcgi.sock" || return 1
    BENCH_HTTP=http://127.0.0.1:$port
    BENCH_ACCESS_LOG=$state/logs/nginx-access.log
    for site in "${BENCH_SITES[@]}"; do
        read -r name sock keep <<<"$site"
        [[ "$keep" != pool ]] || keep=$pool
        i=$((i + 1))
        bench_site "$state/nginx" "$port" "bench_${name//-/_}" "$state/$sock" "${ports[i]}" \
            "nginx-$name-access.log" "$keep" || return 1
        var=BENCH_${name^^}
        var=${var//-/_}
        printf -v "${var}_HTTP" '%s' "http://127.0.0.1:${ports[i]}"
        printf -v "${var}_ACCESS_LOG" '%s' "$state/logs/nginx-$name-access.log"
    done
    web_launch nginx "$state" "${ports[@]}" || return 1
    cp_say "nginx $(web_version_nginx) on 127.0.0.1:${ports[*]}: the coupon site and" \
        "${BENCH_SITES[*]} (name, socket, kept connections; pool = $pool)"
}

# bench_stack_start STATE BUILD WORKERS THREADS KAFKA_THREADS CEILING_THREADS
#   POOL_CEILING_THREADS
# shellcheck disable=SC2034 # the BENCH_* variables are its output, read by scripts/bench
bench_stack_start() {
    local state=$1 build=$2 workers=$3 threads=$4 kafka_threads=$5 ceiling_threads=$6
    local pool_ceiling_threads=$7
    local -a ports
    # No web server from the layout: the bench's nginx below serves every site.
    stack_layout "$state" single "$build" 20000-32000 || return 1
    # COUPON_BENCH_SLOTS: request_slots of the issue_ack=redis masters (unset: coupon-fcgi's
    # default).
    stack_up "$state" "workers=$workers" "threads=$threads" issue_ack=redis \
        ${COUPON_BENCH_SLOTS:+"request_slots=$COUPON_BENCH_SLOTS"} "${BENCH_KEYS[@]}" || return 1
    # The same program with issue_ack=kafka (201 after the broker's ack), measured beside.
    stack_master_start "$state" kafka "workers=$workers" "threads=$kafka_threads" \
        issue_ack=kafka "${BENCH_KEYS[@]}" || return 1
    # And with auth_mode = jwt (issue 24): every claim carries a bearer token verified
    # against the development keys stack_up made, the per-user limits at their defaults.
    stack_master_start "$state" jwt "workers=$workers" "threads=$threads" issue_ack=redis \
        ${COUPON_BENCH_SLOTS:+"request_slots=$COUPON_BENCH_SLOTS"} "${BENCH_KEYS[@]}" \
        auth_mode=jwt "auth_jwks_file=$state/jwt/jwks.json" auth_issuer=coupon-dev \
        auth_audience=coupon-api ratelimit_issue_per_s=5 ratelimit_redeem_per_s=5 || return 1
    bench_ceiling_start "$state" "$build" "$state/ceiling.sock" "$workers" \
        "$ceiling_threads" || return 1
    bench_ceiling_start "$state" "$build" "$state/ceiling-pool.sock" "$workers" \
        "$pool_ceiling_threads" ceiling-fcgi-pool || return 1
    mapfile -t ports < <(stack_pick_ports $((1 + ${#BENCH_SITES[@]})) 20000 32000)
    bench_nginx_start "$state" "${ports[@]}" || return 1
    BENCH_REDIS_PORT=${STACK_REDIS_PORTS[0]}
    BENCH_KAFKA=127.0.0.1:${STACK_KAFKA_PORTS[0]}
    BENCH_CONF=$state/coupon.conf BENCH_DB_CNF=$state/client.cnf BENCH_JWT_KEY_DIR=$state/jwt
    BENCH_ADMIN_TOKEN=$(stack_secret "$state" admin_token)
    stack_health_wait "$state" "$BENCH_HTTP"
}

# -------------------------------------------------------------- --cluster ----

# bench_cluster_start STATE BUILD WORKERS THREADS : the cluster layout (a Redis Cluster of 3
# masters + 3 replicas, 3 brokers, MariaDB, 3 consumers, two app hosts behind one nginx)
# on free loopback ports under STATE, each app host with WORKERS x THREADS and
# redis_wait_replicas 1 (the layout's default). Sets BENCH_HTTP, BENCH_ACCESS_LOG,
# BENCH_ADMIN_TOKEN, BENCH_DB_CNF, BENCH_REDIS_SEED (a node's port).
# shellcheck disable=SC2034 # the BENCH_* variables are its output, read by scripts/bench
bench_cluster_start() {
    local state=$1 build=$2 workers=$3 threads=$4
    stack_layout "$state" cluster "$build" 20000-32000 nginx || return 1
    stack_up "$state" "workers=$workers" "threads=$threads" issue_ack=redis \
        "${BENCH_KEYS[@]}" || return 1
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
