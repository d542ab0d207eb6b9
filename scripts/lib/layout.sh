# shellcheck shell=bash
# The one bring-up of the stack. scripts/up, tests/integration/run and scripts/bench (through
# benchstack.sh) all start it here, from a layout described as data
# (the table below); stack_down (stack.sh) stops it. Sourced, never executed.
#
#   stack_layout STATE LAYOUT BUILD PORTS [WEB...]  LAYOUT (single or cluster) resolved into
#       STATE/layout.env: node counts, every port, the web servers to put in front of the
#       app hosts, the build folder. PORTS: `fixed` (scripts/up's well-known ports, each
#       overridable by the COUPON_*_PORT variable the table names, checked free here so a
#       busy one is reported before any work) or LO-HI (free ports picked in that range).
#   stack_up STATE KEY=VALUE...  everything else, in order: the secrets (kept when STATE
#       has them), the servers, the schema, client.cnf, the development JWT keys, each
#       program's configuration (the layout's addresses and keys, then KEY=VALUE, a later
#       value replacing an earlier one), the consumers, the app hosts, the web servers.
#       STACK_APP=0 beforehand: no programs. Sets STACK_APP=0 when the programs cannot
#       run the layout (no Redis Cluster client built in).
#   stack_master_start STATE NAME KEY=VALUE...  one more coupon-fcgi beside the layout's,
#       for the runner's and the bench's variants (issue_ack=kafka, auth_mode=jwt):
#       coupon-fcgi-NAME, config STATE/coupon-NAME.conf, socket STATE/fcgi-NAME.sock.
#   stack_health_wait STATE URL [TIMEOUT_S]  until GET URL/api/health answers 200.
#   stack_coupon_create URL ADMIN_TOKEN TOTAL DAYS FIELDS  a coupon through the admin API
#       (scripts/up's demo coupon, the bench's), its id on stdout.
#
# Files it adds to the state folder (stack.sh lists the rest): admin_token, db_password,
# code_secret (mode 600), client.cnf (the mariadb CLI's option file), jwt/.

[[ -z "${COUPON_LIB_LAYOUT_LOADED:-}" ]] || return 0
COUPON_LIB_LAYOUT_LOADED=1

# shellcheck source=scripts/lib/cluster.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
# shellcheck source=scripts/lib/web.sh
source "$(dirname "${BASH_SOURCE[0]}")/web.sh"

# ---------------------------------------------------------------- the layouts ----
#
# redis      Redis nodes. One is a plain server (process redis); more form a Redis Cluster
#            with one replica per master (redis-1..N, each with a bus port), and the
#            programs get redis_cluster (every node a seed) instead of redis_host/port.
# kafka      KRaft nodes, each broker and controller. One is kafka, topics with RF 1;
#            more are kafka-1..N, topics with RF N and min.insync.replicas 2.
# consumers  coupon-consumers in one group (consumer-1..N).
# apps       coupon-fcgi app hosts behind one upstream. One is coupon-fcgi with its
#            coupon.conf in STATE, which the consumers share; more are coupon-fcgi-1..N,
#            each in STATE/app-N as on a machine of its own, the consumers reading
#            STATE/consumer.conf.
# keys       configuration keys of the layout, beside the addresses. The cluster's: a 201
#            waits until one replica has the claim, 200 ms at most.
# *_port     scripts/up's fixed ports: VARIABLE:DEFAULT of the series' first port (the next
#            nodes count up; a cluster node's bus port is its port + 10000).
# shellcheck disable=SC2034 # read by stack_layout through a nameref
declare -gA STACK_LAYOUT_SINGLE=(
    [redis]=1 [kafka]=1 [consumers]=1 [apps]=1 [keys]=''
    [redis_port]=COUPON_REDIS_PORT:6390 [kafka_port]=COUPON_KAFKA_PORT:9093
    [controller_port]=COUPON_KAFKA_CONTROLLER_PORT:9094
)
# shellcheck disable=SC2034 # read by stack_layout through a nameref
declare -gA STACK_LAYOUT_CLUSTER=(
    [redis]=6 [kafka]=3 [consumers]=3 [apps]=2
    [keys]='redis_wait_replicas=1 redis_wait_timeout_ms=200'
    [redis_port]=COUPON_REDIS_CLUSTER_PORT:7001 [kafka_port]=COUPON_KAFKA_CLUSTER_PORT:9101
    [controller_port]=COUPON_KAFKA_CLUSTER_CONTROLLER_PORT:9111
)
# The same in every layout: MariaDB, and the web servers (scripts/up runs one).
STACK_DB_PORT_SPEC=COUPON_DB_PORT:3317
STACK_HTTP_PORT_SPEC=COUPON_HTTP_PORT:8080

# stack_layout STATE LAYOUT BUILD PORTS [WEB...]
stack_layout() {
    local state=$1 layout=$2 build=$3 mode=$4 table=STACK_LAYOUT_${2^^}
    shift 4
    local -a web=("$@") ports=() lines=()
    if [[ "$(declare -p "$table" 2>/dev/null)" != "declare -A"* ]]; then
        cp_warn "unknown layout '$layout' (single or cluster)"
        return 1
    fi
    local -n lay=$table
    local nr=${lay[redis]} nk=${lay[kafka]} s array count label spec offset var base i
    local port what total=0 k=0
    # One series of ports per line: ARRAY COUNT LABEL VARIABLE:DEFAULT OFFSET, in the
    # order they are picked. A lone Redis is not a cluster node: no bus port.
    local -a series=("REDIS $nr Redis ${lay[redis_port]} 0"
        "REDIS_BUS $((nr > 1 ? nr : 0)) Redis_bus ${lay[redis_port]} 10000"
        "KAFKA $nk Kafka ${lay[kafka_port]} 0"
        "KAFKA_CONTROLLER $nk Kafka_controller ${lay[controller_port]} 0"
        "DB 1 MariaDB $STACK_DB_PORT_SPEC 0" "HTTP ${#web[@]} HTTP $STACK_HTTP_PORT_SPEC 0")
    for s in "${series[@]}"; do
        read -r array count label spec offset <<<"$s"
        total=$((total + count))
        [[ "$mode" == fixed ]] || continue
        var=${spec%%:*}
        base=${!var:-${spec#*:}}
        if [[ ! "$base" =~ ^[0-9]+$ ]]; then
            cp_warn "$var must be a port number"
            return 1
        fi
        for ((i = 0; i < count; i++)); do
            port=$((base + offset + i)) what=${label//_/ }
            ((count == 1)) || what+=" $((i + 1))"
            if ! stack_port_free "$port"; then
                cp_warn "port $port ($what) is in use on 127.0.0.1; choose another with $var=..."
                return 1
            fi
            ports+=("$port")
        done
    done
    if [[ "$mode" != fixed ]]; then
        # All in one pick: ports picked series by series could repeat (none is bound yet).
        mapfile -t ports < <(stack_pick_ports "$total" "${mode%-*}" "${mode#*-}")
        ((${#ports[@]} == total)) || return 1
    fi
    for s in "${series[@]}"; do
        read -r array count _ <<<"$s"
        lines+=("STACK_${array}_PORTS=(${ports[*]:k:count})")
        k=$((k + count))
    done
    mkdir -p "$state" || return 1
    {
        echo "# Written by stack_layout (scripts/lib/layout.sh); stack_load reads it."
        echo "STACK_LAYOUT=$layout"
        echo "STACK_REDIS_NODES=$nr STACK_KAFKA_NODES=$nk"
        echo "STACK_CONSUMERS=${lay[consumers]} STACK_APPS=${lay[apps]}"
        echo "STACK_LAYOUT_KEYS=(${lay[keys]})"
        printf '%s\n' "${lines[@]}"
        echo "STACK_DB_PORT=\${STACK_DB_PORTS[0]}"
        echo "STACK_WEB=(${web[*]})"
        printf 'STACK_BUILD_DIR=%q\n' "$build"
    } >"$state/layout.env"
}

# ------------------------------------------------------------ the bring-up ----

# stack_secrets STATE : admin_token, db_password and code_secret (the MAC key of the
# issuance codes), random and mode 600, unless STATE has them: a kept state folder keeps
# its password, and its codes stay valid.
stack_secrets() {
    local spec name
    for spec in admin_token:16 db_password:12 code_secret:24; do
        name=${spec%%:*}
        [[ -s "$1/$name" ]] && continue
        (umask 077 && printf '%s\n' "$(cp_random_hex "${spec#*:}")" >"$1/$name") || return 1
    done
}

# stack_secret STATE NAME : the first line of STATE/NAME.
stack_secret() {
    head -n 1 "$1/$2"
}

# stack_servers_start STATE : every server of the layout. The Kafka JVMs start first (the
# slowest), then the Redis nodes and MariaDB, all side by side; then, in the cluster
# layout, the Redis Cluster is created (first start only: nodes.conf remembers it) and
# waited for; the database user is set up, the brokers waited for, the topics created
# (and, with several brokers, waited for until every partition is fully in sync).
stack_servers_start() {
    local state=$1 i t0 masters bus=''
    stack_load "$state" || return 1
    t0=$(cp_now_ms)
    ((STACK_REDIS_NODES == 1)) || bus=" (bus ${STACK_REDIS_BUS_PORTS[*]})"
    cp_say "Redis $(stack_redis_version) on 127.0.0.1:${STACK_REDIS_PORTS[*]}$bus;" \
        "MariaDB $(stack_mariadb_version) on 127.0.0.1:$STACK_DB_PORT; Kafka $STACK_KAFKA_VERSION" \
        "on 127.0.0.1:${STACK_KAFKA_PORTS[*]} (controllers ${STACK_KAFKA_CONTROLLER_PORTS[*]})"
    cp_say "Java: $(java -version 2>&1 | head -n 1)"
    for ((i = 1; i <= STACK_KAFKA_NODES; i++)); do
        cluster_kafka_launch "$state" "$i" || return 1
    done
    for ((i = 1; i <= STACK_REDIS_NODES; i++)); do
        cluster_redis_launch "$state" "$i" || return 1
    done
    stack_mariadb_launch "$state" "$STACK_DB_PORT" || return 1
    for ((i = 1; i <= STACK_REDIS_NODES; i++)); do
        cluster_redis_wait "$state" "$i" || return 1
    done
    if ((STACK_REDIS_NODES > 1)); then
        cluster_redis_create "$state" && cluster_redis_wait_healthy "$state" || return 1
        masters=$(cluster_redis_masters "$state" | sed 's/^/redis-/' | tr '\n' ' ')
        cp_say "Redis Cluster ok at $(($(cp_now_ms) - t0)) ms (masters: ${masters% })"
    fi
    stack_mariadb_wait "$state" || return 1
    stack_mariadb_setup "$state" "$(stack_secret "$state" db_password)" || return 1
    for ((i = 1; i <= STACK_KAFKA_NODES; i++)); do
        cluster_kafka_wait "$state" "$i" || return 1
    done
    stack_kafka_topics "$state" "${STACK_KAFKA_PORTS[0]}" "$STACK_KAFKA_NODES" || return 1
    if ((STACK_KAFKA_NODES > 1)); then
        cluster_kafka_wait_isr "$state" || return 1
    fi
    cp_say "servers ready in $(($(cp_now_ms) - t0)) ms"
}

# stack_client_cnf STATE : STATE/client.cnf, the option file of the mariadb CLI (the
# suites' harness.sql, the bench's audits), so no password shows on a command line. The
# default database goes to the CLI's own group: other clients reject that option.
stack_client_cnf() {
    stack_load "$1" || return 1
    (umask 077 && printf '%s\n' "[client]" "user=$STACK_DB_USER" \
        "password=$(stack_secret "$1" db_password)" host=127.0.0.1 "port=$STACK_DB_PORT" \
        protocol=tcp default-character-set=utf8mb4 "[mysql]" "database=$STACK_DB_NAME" \
        >"$1/client.cnf")
}

# stack_base_keys STATE : one KEY=VALUE per line, what every program of the layout is
# configured with: the servers' addresses, the database account, the secrets, the
# layout's own keys.
stack_base_keys() {
    local state=$1
    if ((STACK_REDIS_NODES == 1)); then
        printf '%s\n' redis_host=127.0.0.1 "redis_port=${STACK_REDIS_PORTS[0]}"
    else
        printf '%s\n' "redis_cluster=$(stack_addrs "${STACK_REDIS_PORTS[@]}")"
    fi
    printf '%s\n' "kafka_brokers=$(stack_addrs "${STACK_KAFKA_PORTS[@]}")" db_host=127.0.0.1 \
        "db_port=$STACK_DB_PORT" "db_user=$STACK_DB_USER" \
        "db_password=$(stack_secret "$state" db_password)" "db_name=$STACK_DB_NAME" \
        "admin_token=$(stack_secret "$state" admin_token)" \
        "code_secret=$(stack_secret "$state" code_secret)" "${STACK_LAYOUT_KEYS[@]}"
}

# stack_app_sockets STATE : the app hosts' sockets, comma-separated (web_start's form).
stack_app_sockets() {
    local i out=''
    for ((i = 1; i <= STACK_APPS; i++)); do
        out+=${out:+,}$(stack_app_dir "$1" "$i")/fcgi.sock
    done
    printf '%s\n' "$out"
}

# stack_up STATE KEY=VALUE...
stack_up() {
    local state=$1 i dir
    shift
    local -a keys
    stack_load "$state" || return 1
    mkdir -p "$state/logs" "$state/pids" || return 1
    stack_secrets "$state" || return 1
    stack_servers_start "$state" || return 1
    "$(cp_src_dir)/scripts/migrate" --host 127.0.0.1 --port "$STACK_DB_PORT" \
        --user "$STACK_DB_USER" --password-file "$state/db_password" \
        --database "$STACK_DB_NAME" || return 1
    stack_client_cnf "$state" || return 1
    # Who is asking (issue 24): development keys (jwt/rs256.pem, es256.pem, mode 600) and
    # their JWKS (jwt/jwks.json, which coupon-fcgi verifies tokens against), made once and
    # kept, so that tokens signed earlier (scripts/token) stay valid.
    if ! "$STACK_BUILD_DIR/tools/coupon-token" keygen --dir "$state/jwt"; then
        cp_warn "could not create the JWT keys in $state/jwt (tools/coupon-token built?)"
        return 1
    fi
    mapfile -t keys < <(stack_base_keys "$state")
    for ((i = 1; i <= STACK_APPS; i++)); do
        dir=$(stack_app_dir "$state" "$i")
        mkdir -p "$dir" || return 1
        stack_write_config "$dir/coupon.conf" "${keys[@]}" "listen=unix:$dir/fcgi.sock" \
            "metrics_path=$dir/fcgi.metrics" "$@" || return 1
    done
    if ((STACK_APPS > 1)); then
        stack_write_config "$(stack_consumer_conf "$state")" "${keys[@]}" "$@" || return 1
    fi
    STACK_APP=${STACK_APP:-1}
    if ((STACK_APP && STACK_REDIS_NODES > 1)) &&
        ! env -i "$STACK_BUILD_DIR/fcgi-app/coupon-fcgi" --print-config 2>/dev/null |
        grep -q '^redis_cluster = '; then
        cp_warn "the programs do not know the key redis_cluster (no Redis Cluster client" \
            "built in): not starting them"
        STACK_APP=0
    fi
    if ((STACK_APP)); then
        for ((i = 1; i <= STACK_CONSUMERS; i++)); do
            cluster_node_start "$state" consumer "$i" || return 1
        done
        for ((i = 1; i <= STACK_APPS; i++)); do
            cluster_node_start "$state" app "$i" || return 1
        done
    fi
    for i in "${!STACK_WEB[@]}"; do
        web_start "${STACK_WEB[i]}" "$state" "${STACK_HTTP_PORTS[i]}" \
            "$(stack_app_sockets "$state")" || return 1
    done
}

# stack_master_start STATE NAME KEY=VALUE...
stack_master_start() {
    local state=$1 name=$2
    shift 2
    local -a keys
    stack_load "$state" || return 1
    mapfile -t keys < <(stack_base_keys "$state")
    stack_write_config "$state/coupon-$name.conf" "${keys[@]}" \
        "listen=unix:$state/fcgi-$name.sock" "metrics_path=$state/fcgi-$name.metrics" "$@" &&
        stack_fcgi_start "$state" "$STACK_BUILD_DIR" "$state/coupon-$name.conf" \
            "$state/fcgi-$name.sock" "coupon-fcgi-$name"
}

# stack_health_wait STATE URL [TIMEOUT_S] : until GET URL/api/health answers 200 (60 s at
# most); on a time-out its last answer and the end of the programs' logs, and failure.
stack_health_wait() {
    local state=$1 url=$2/api/health timeout=${3:-60} f
    local deadline=$((SECONDS + timeout))
    until [[ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url")" == 200 ]]; do
        if ((SECONDS >= deadline)); then
            curl -s -m 2 "$url" >&2 || true
            echo >&2
            for f in "$state"/logs/coupon-fcgi*.log "$state"/logs/consumer-*.log; do
                [[ -s "$f" ]] || continue
                printf -- '--- last lines of %s ---\n' "$f" >&2
                tail -n 20 "$f" >&2
            done
            cp_warn "GET $url did not answer 200 within $timeout s"
            return 1
        fi
        sleep 0.3
    done
}

# stack_coupon_create URL ADMIN_TOKEN TOTAL DAYS FIELDS : a first-come-first-served coupon
# of 10 % off, TOTAL of them, valid from a minute ago for DAYS days, through the admin API
# at URL; FIELDS: its other JSON members ("title":"...", ...). Prints its id; says what
# the API answered instead of 201 and fails.
stack_coupon_create() {
    local url=$1 token=$2 total=$3 days=$4 fields=$5 body answer utc=+%Y-%m-%dT%H:%M:%SZ
    printf -v body '{%s,"couponType":"FIRST_COME_FIRST_SERVED","discountType":"PERCENTAGE",' \
        "$fields"
    printf -v body '%s"discountValue":10,"totalQuantity":%s,"startAt":"%s","endAt":"%s"}' \
        "$body" "$total" "$(date -u -d '-1 min' "$utc")" "$(date -u -d "+$days days" "$utc")"
    answer=$(curl -s -m 10 -X POST "$url/api/coupons" -H 'Content-Type: application/json' \
        -H "Authorization: Bearer $token" -d "$body" -w '\n%{http_code}') || true
    if [[ "$(tail -n 1 <<<"$answer")" != 201 ]]; then
        cp_warn "POST /api/coupons answered: $(tr '\n' ' ' <<<"$answer")"
        return 1
    fi
    sed '$d' <<<"$answer" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])'
}
