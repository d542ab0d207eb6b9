# shellcheck shell=bash
# The stack of scripts/bench: the integration runner's stack (tests/integration/run:
# Redis, MariaDB, Kafka, one coupon-consumer, coupon-fcgi standalone on a unix socket)
# plus ceiling-fcgi, the trivial FastCGI responder (twice: with few threads, and with
# enough threads for deploy/nginx's pool of kept connections), and one nginx serving
# sites rendered from deploy/nginx/: the coupon site and the same site in front of
# ceiling-fcgi, so both are measured through identical web server settings.
# Sourced, never executed.
#
#   bench_stack_start STATE BUILD WORKERS THREADS KAFKA_THREADS CEILING_THREADS
#     POOL_CEILING_THREADS                            -> sets BENCH_* (below)
#   bench_stack_stop STATE                            everything, in order; idempotent
#
# Variables set by bench_stack_start: BENCH_HTTP (http://127.0.0.1:PORT of the coupon
# site, issue_ack=redis), BENCH_KAFKA_HTTP (the same with issue_ack=kafka),
# BENCH_CEILING_HTTP / BENCH_CEILING_KEPT_HTTP / BENCH_CEILING_POOL_HTTP (the ceiling
# without FastCGI connection reuse, with 4 kept connections per nginx worker, with
# deploy/nginx's pool), BENCH_REDIS_PORT, BENCH_DB_PORT,
# BENCH_KAFKA (bootstrap), BENCH_CONF (config file), BENCH_ADMIN_TOKEN, BENCH_DB_CNF
# (option file for the mariadb CLI), BENCH_ACCESS_LOG, BENCH_CEILING_ACCESS_LOG (and
# _KEPT_, _POOL_).

if [[ -n "${COUPON_LIB_BENCHSTACK_LOADED:-}" ]]; then
    return 0
fi
COUPON_LIB_BENCHSTACK_LOADED=1

# shellcheck source=scripts/lib/stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/stack.sh"
# shellcheck source=scripts/lib/web.sh
source "$(dirname "${BASH_SOURCE[0]}")/web.sh"
# shellcheck source=scripts/lib/jwt.sh
source "$(dirname "${BASH_SOURCE[0]}")/jwt.sh"

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

# bench_nginx_start STATE PORT SOCKET CEILING_PORT CEILING_SOCKET KEPT_CEILING_PORT
#   KAFKA_PORT KAFKA_SOCKET POOL_CEILING_PORT POOL_CEILING_SOCKET JWT_PORT JWT_SOCKET :
#   web.sh's rendering of
# deploy/nginx/ for the coupon site, plus copies of the same server {}: ceiling-fcgi
# without FastCGI connection reuse (CEILING_PORT), with 4 kept connections per nginx
# worker (KEPT_CEILING_PORT, the trivial responder's best small pool), a second
# ceiling-fcgi with deploy/nginx's pool (POOL_CEILING_PORT), and the issue_ack=kafka and
# auth_mode=jwt coupon-fcgis with deploy/nginx's pool (KAFKA_PORT, JWT_PORT).
bench_nginx_start() {
    local state=$1 port=$2 sock=$3 cport=$4 csock=$5 kcport=$6 kport=$7 ksock=$8
    local pcport=$9 pcsock=${10} jport=${11} jsock=${12} pool
    local dir=$state/nginx pidfile=$state/pids/nginx.pid log=$state/logs/nginx-error.log p
    web_check_path "ceiling socket" "$csock" || return 1
    web_check_path "ceiling socket" "$pcsock" || return 1
    pool=$(bench_deploy_pool)
    web_render_nginx "$state" "$port" "$sock" || return 1
    bench_site "$dir" "$port" bench_ceiling "$csock" "$cport" nginx-ceiling-access.log 0 &&
        bench_site "$dir" "$port" bench_ceiling_kept "$csock" "$kcport" \
            nginx-ceiling-kept-access.log 4 &&
        bench_site "$dir" "$port" bench_ceiling_pool "$pcsock" "$pcport" \
            nginx-ceiling-pool-access.log "$pool" &&
        bench_site "$dir" "$port" bench_kafka "$ksock" "$kport" nginx-kafka-access.log "$pool" &&
        bench_site "$dir" "$port" bench_jwt "$jsock" "$jport" nginx-jwt-access.log "$pool" ||
        return 1
    web_config_test nginx "$state" || return 1
    stack_spawn "$pidfile" "$log" nginx -e stderr -p "$dir/" -c "$dir/nginx.conf"
    for p in "$port" "$cport" "$kcport" "$kport" "$pcport" "$jport"; do
        stack_wait 20 nginx "$pidfile" "$log" web_port_open "$p" || return 1
    done
    cp_say "nginx $(web_version_nginx) on 127.0.0.1:$port -> $sock," \
        "127.0.0.1:$cport and :$kcport (4 kept connections) -> $csock," \
        ":$pcport ($pool kept connections) -> $pcsock, :$kport -> $ksock, :$jport -> $jsock"
}

# bench_stack_start STATE BUILD WORKERS THREADS KAFKA_THREADS CEILING_THREADS
#   POOL_CEILING_THREADS
# shellcheck disable=SC2034 # the BENCH_* variables are its output, read by scripts/bench
bench_stack_start() {
    local state=$1 build=$2 workers=$3 threads=$4 kafka_threads=$5 ceiling_threads=$6
    local pool_ceiling_threads=$7
    local src db_password
    src=$(cp_src_dir)
    mkdir -p "$state/logs" "$state/pids"
    local -a ports
    mapfile -t ports < <(stack_pick_ports 10 20000 32000)
    ((${#ports[@]} == 10)) || cp_die "could not pick free ports"
    BENCH_REDIS_PORT=${ports[0]} BENCH_DB_PORT=${ports[1]}
    local kport=${ports[2]} kcport=${ports[3]} hport=${ports[4]} cport=${ports[5]}
    local ceil_kept_port=${ports[6]} kafka_http_port=${ports[7]} ceil_pool_port=${ports[8]}
    local jwt_http_port=${ports[9]}
    BENCH_KAFKA=127.0.0.1:$kport
    db_password=$(cp_random_hex 12)
    BENCH_ADMIN_TOKEN=$(cp_random_hex 16)
    (umask 077 && printf '%s\n' "$db_password" >"$state/db_password")

    stack_servers_start "$state" "$BENCH_REDIS_PORT" "$BENCH_DB_PORT" "$kport" "$kcport" \
        "$db_password" || return 1
    "$src/scripts/migrate" --host 127.0.0.1 --port "$BENCH_DB_PORT" --user "$STACK_DB_USER" \
        --password-file "$state/db_password" --database "$STACK_DB_NAME" || return 1

    BENCH_CONF=$state/coupon.conf
    local sock=$state/fcgi.sock csock=$state/ceiling.sock ksock=$state/fcgi-kafka.sock
    local jsock=$state/fcgi-jwt.sock
    local pcsock=$state/ceiling-pool.sock
    # log_level warn: an info line per request would measure the logger.
    local -a common=("admin_token=$BENCH_ADMIN_TOKEN"
        redis_host=127.0.0.1 "redis_port=$BENCH_REDIS_PORT" "kafka_brokers=$BENCH_KAFKA"
        db_host=127.0.0.1 "db_port=$BENCH_DB_PORT" "db_user=$STACK_DB_USER"
        "db_password=$db_password" "db_name=$STACK_DB_NAME" "code_secret=$(cp_random_hex 24)"
        log_level=warn auth_mode=none ratelimit_issue_per_s=0 ratelimit_redeem_per_s=0)
    # COUPON_BENCH_SLOTS: request_slots for this one (unset: coupon-fcgi's default).
    stack_write_config "$BENCH_CONF" \
        "listen=unix:$sock" "workers=$workers" "threads=$threads" issue_ack=redis \
        ${COUPON_BENCH_SLOTS:+"request_slots=$COUPON_BENCH_SLOTS"} \
        "metrics_path=$state/fcgi.metrics" "${common[@]}"
    # The same program with issue_ack=kafka (201 after the broker's ack), measured beside.
    stack_write_config "$state/coupon-kafka.conf" \
        "listen=unix:$ksock" "workers=$workers" "threads=$kafka_threads" issue_ack=kafka \
        "metrics_path=$state/fcgi-kafka.metrics" "${common[@]}"
    # And with auth_mode = jwt (issue 24): every claim carries a bearer token verified
    # against the development keys (scripts/lib/jwt.sh), the per-user limits at their
    # defaults. The keys after auth_mode=none in common[] replace it (last one wins).
    jwt_dev_keys "$build" "$state" || return 1
    BENCH_JWT_KEY_DIR=$state/jwt
    stack_write_config "$state/coupon-jwt.conf" \
        "listen=unix:$jsock" "workers=$workers" "threads=$threads" issue_ack=redis \
        ${COUPON_BENCH_SLOTS:+"request_slots=$COUPON_BENCH_SLOTS"} \
        "metrics_path=$state/fcgi-jwt.metrics" "${common[@]}" auth_mode=jwt \
        "auth_jwks_file=$state/jwt/jwks.json" auth_issuer=coupon-dev auth_audience=coupon-api \
        ratelimit_issue_per_s=5 ratelimit_redeem_per_s=5
    BENCH_DB_CNF=$state/client.cnf
    (
        umask 077
        printf '[client]\nuser=%s\npassword=%s\nhost=127.0.0.1\nport=%s\nprotocol=tcp\n' \
            "$STACK_DB_USER" "$db_password" "$BENCH_DB_PORT"
        printf 'database=%s\n' "$STACK_DB_NAME"
    ) >"$BENCH_DB_CNF"

    stack_consumer_start "$state" "$build" "$BENCH_CONF" consumer-1 || return 1
    stack_fcgi_start "$state" "$build" "$BENCH_CONF" "$sock" || return 1
    stack_fcgi_start "$state" "$build" "$state/coupon-kafka.conf" "$ksock" coupon-fcgi-kafka ||
        return 1
    stack_fcgi_start "$state" "$build" "$state/coupon-jwt.conf" "$jsock" coupon-fcgi-jwt ||
        return 1
    bench_ceiling_start "$state" "$build" "$csock" "$workers" "$ceiling_threads" || return 1
    bench_ceiling_start "$state" "$build" "$pcsock" "$workers" "$pool_ceiling_threads" \
        ceiling-fcgi-pool || return 1
    bench_nginx_start "$state" "$hport" "$sock" "$cport" "$csock" "$ceil_kept_port" \
        "$kafka_http_port" "$ksock" "$ceil_pool_port" "$pcsock" "$jwt_http_port" "$jsock" ||
        return 1
    BENCH_HTTP=http://127.0.0.1:$hport
    BENCH_CEILING_HTTP=http://127.0.0.1:$cport
    BENCH_CEILING_KEPT_HTTP=http://127.0.0.1:$ceil_kept_port
    BENCH_CEILING_POOL_HTTP=http://127.0.0.1:$ceil_pool_port
    BENCH_KAFKA_HTTP=http://127.0.0.1:$kafka_http_port
    BENCH_JWT_HTTP=http://127.0.0.1:$jwt_http_port
    BENCH_ACCESS_LOG=$state/logs/nginx-access.log
    BENCH_CEILING_ACCESS_LOG=$state/logs/nginx-ceiling-access.log
    BENCH_CEILING_KEPT_ACCESS_LOG=$state/logs/nginx-ceiling-kept-access.log
    BENCH_CEILING_POOL_ACCESS_LOG=$state/logs/nginx-ceiling-pool-access.log
    BENCH_KAFKA_ACCESS_LOG=$state/logs/nginx-kafka-access.log
    BENCH_JWT_ACCESS_LOG=$state/logs/nginx-jwt-access.log

    local deadline=$((SECONDS + 60))
    until [[ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$BENCH_HTTP/api/health")" == 200 ]]; do
        if ((SECONDS >= deadline)); then
            curl -s -m 2 "$BENCH_HTTP/api/health" >&2 || true
            cp_warn "GET /api/health did not answer 200 within 60 s"
            return 1
        fi
        sleep 0.3
    done
}

# bench_stack_stop STATE : nginx, ceiling-fcgi, then stack.sh's order for the rest.
bench_stack_stop() {
    local state=$1 rc=0
    stack_stop_pidfile "$state/pids/nginx.pid" nginx 10 || rc=1
    stack_stop_pidfile "$state/pids/ceiling-fcgi.pid" ceiling-fcgi 10 || rc=1
    stack_stop_pidfile "$state/pids/ceiling-fcgi-pool.pid" ceiling-fcgi-pool 10 || rc=1
    stack_stop_all "$state" || rc=1
    return "$rc"
}
