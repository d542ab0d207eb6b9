# shellcheck shell=bash
# Starting and stopping the web servers in front of coupon-fcgi -- nginx or lighttpd --
# from the very files in deploy/ that production uses, for scripts/up and the tests.
# Sourced, never executed; defining the functions is all it does at source time.
#
#   web_start nginx|lighttpd STATE_DIR HTTP_PORT FCGI_SOCKET[,FCGI_SOCKET...]
#   web_stop  nginx|lighttpd STATE_DIR
#
# Several sockets (nginx only: the cluster layout's two app hosts) become one upstream
# with a `server unix:SOCKET;` line each, in place of the template's single line; with
# one socket the rendering is exactly the template's.
#
# web_start renders deploy/<server>/ into STATE_DIR/<server>/, substituting only the
# placeholders for addresses, ports and paths (@HTTP_ADDR@ = 127.0.0.1, @HTTP_PORT@,
# @FCGI_SOCKET@, @LOG_DIR@ = STATE_DIR/logs, @CONF_DIR@ = STATE_DIR/<server>), writes a
# minimal top-level file next to them (process settings: foreground, pid, error log and
# temp folders under STATE_DIR, then an include of the rendered files), checks the result
# with the server's own config test (nginx -t, lighttpd -tt), starts the server in its
# own session with a pidfile STATE_DIR/pids/<server>.pid (the format of stack.sh, which
# also stops it in stack_down) and waits until the port accepts connections.
# Nothing is written outside STATE_DIR, so it runs unprivileged as well as as root.
#
# As root, the servers' worker processes run as the owner of STATE_DIR (nginx `user`,
# lighttpd server.username): they must reach coupon-fcgi's socket (mode 0660, owned by
# whoever started coupon-fcgi -- the same user for the local stack). Production runs them
# as www-data instead; see deploy/README.md.
#
# Logs: STATE_DIR/logs/<server>-error.log (the server's error log and any output),
# STATE_DIR/logs/<server>-access.log.
# Knobs (environment): COUPON_WEB_GATEWAY_URL (nginx: the identity service's check URL of
# auth_mode = gateway; renders deploy/nginx/coupon-gateway.*.conf into coupon.d/),
# COUPON_WEB_GATEWAY_HTPASSWD (lighttpd: the user file of auth_mode = gateway; adds
# deploy/lighttpd/coupon-gateway.conf),
# COUPON_DEPLOY_DIR (default <repo>/deploy; an installed tree has
# it under share/coupon/deploy), COUPON_WEB_TIMEOUT start timeout in seconds [20],
# COUPON_CONSOLE_DIR the operator console's built files (default
# <build>/console-site, what `make` assembles; an installed tree has them under
# share/coupon/deploy/console): copied to STATE_DIR/console and served at /console/
# (@CONSOLE_DIR@).

[[ -z "${COUPON_LIB_WEB_LOADED:-}" ]] || return 0
COUPON_LIB_WEB_LOADED=1

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source=scripts/lib/stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/stack.sh"

web_deploy_dir() {
    printf '%s\n' "${COUPON_DEPLOY_DIR:-$(cp_src_dir)/deploy}"
}

web_console_dir() {
    printf '%s\n' "${COUPON_CONSOLE_DIR:-${COUPON_BUILD_DIR:-$(cp_src_dir)/build}/console-site}"
}

# web_stage_console STATE : the console's files (not the npm folder) into STATE/console.
web_stage_console() {
    local state=$1 src
    src=$(web_console_dir)
    if [[ ! -f "$src/index.html" || ! -d "$src/vendor" ]]; then
        cp_warn "the console's files are not in $src (run make; COUPON_CONSOLE_DIR)"
        return 1
    fi
    mkdir -p "$state/console/vendor" || return 1
    cp "$src"/*.html "$src"/*.js "$src"/*.css "$state/console/" || return 1
    cp "$src"/vendor/* "$state/console/vendor/" || return 1
    chmod -R a+rX "$state/console"
}

# web_check_server NAME : true for the two servers we know.
web_check_server() {
    case $1 in
    nginx | lighttpd) return 0 ;;
    *)
        cp_warn "unknown web server '$1' (nginx or lighttpd)"
        return 1
        ;;
    esac
}

# web_render_file SRC DST KEY=VALUE... : copy SRC to DST with every @KEY@ replaced by
# VALUE. Fails when a @PLACEHOLDER@ is left over (a new one nobody substitutes).
web_render_file() {
    local src=$1 dst=$2 kv key val text
    shift 2
    text=$(cat "$src") || return 1
    for kv in "$@"; do
        key=${kv%%=*}
        val=${kv#*=}
        # Quoted pattern and replacement: no glob in the pattern, no '&' expansion in
        # the replacement (bash 5.2 patsub_replacement).
        text=${text//"@$key@"/"$val"}
    done
    if [[ "$text" =~ @[A-Z][A-Z_]*@ ]]; then
        cp_warn "$src: placeholder ${BASH_REMATCH[0]} left unsubstituted"
        return 1
    fi
    printf '%s\n' "$text" >"$dst"
}

# web_check_path WHAT VALUE : values are pasted into config files; refuse characters
# that would change their syntax (quotes, spaces, ';', braces, '#', '$').
web_check_path() {
    if [[ ! "$2" =~ ^/[A-Za-z0-9_./+-]*$ ]]; then
        cp_warn "$1 '$2' must be an absolute path of [A-Za-z0-9_./+-]"
        return 1
    fi
}

# web_port_open PORT : true when 127.0.0.1:PORT accepts a TCP connection.
web_port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# web_run_as STATE : "user group" of STATE's owner when we are root, empty otherwise.
web_run_as() {
    if [[ "$(id -u)" -eq 0 ]]; then
        stat -c '%U %G' "$1"
    fi
}

# web_upstream_servers TEMPLATE SOCKET... : TEMPLATE with its line `server
# unix:@FCGI_SOCKET@;` repeated once per SOCKET (same indentation), on stdout.
web_upstream_servers() {
    local src=$1 line s found=0
    shift
    while IFS= read -r line || [[ -n "$line" ]]; do
        if [[ "$line" =~ ^([[:space:]]*)server\ unix:@FCGI_SOCKET@\;$ ]]; then
            for s in "$@"; do
                printf '%sserver unix:%s;\n' "${BASH_REMATCH[1]}" "$s"
            done
            found=1
        else
            printf '%s\n' "$line"
        fi
    done <"$src"
    ((found)) || cp_warn "$src: no line 'server unix:@FCGI_SOCKET@;' to repeat"
    ((found))
}

# web_render_nginx STATE PORT SOCKET[,SOCKET...] : STATE/nginx/{coupon-http.conf,
# coupon.conf,nginx.conf}
web_render_nginx() {
    local state=$1 port=$2 sock=$3
    local dir=$state/nginx src http_src user group
    local -a socks
    IFS=, read -r -a socks <<<"$sock"
    src=$(web_deploy_dir)/nginx
    http_src=$src/coupon-http.conf
    mkdir -p "$dir/tmp" "$state/logs" || return 1
    web_stage_console "$state" || return 1
    if ((${#socks[@]} > 1)); then
        http_src=$dir/coupon-http.conf.in
        web_upstream_servers "$src/coupon-http.conf" "${socks[@]}" >"$http_src" || return 1
        sock="${socks[*]}" # what the header comment's @FCGI_SOCKET@ becomes
    fi
    local -a subst=(HTTP_ADDR=127.0.0.1 "HTTP_PORT=$port" "FCGI_SOCKET=$sock"
        "LOG_DIR=$state/logs" "CONF_DIR=$dir" "CONSOLE_DIR=$state/console")
    web_render_file "$http_src" "$dir/coupon-http.conf" "${subst[@]}" || return 1
    rm -f "$dir/coupon-http.conf.in"
    web_render_file "$src/coupon.conf" "$dir/coupon.conf" "${subst[@]}" || return 1
    # Optional parts of the site: auth_mode = gateway's identity service when
    # COUPON_WEB_GATEWAY_URL names its check endpoint (deploy/nginx/coupon-gateway.*).
    rm -rf "$dir/coupon.d" && mkdir -p "$dir/coupon.d" || return 1
    if [[ -n "${COUPON_WEB_GATEWAY_URL:-}" ]]; then
        [[ "$COUPON_WEB_GATEWAY_URL" =~ ^http://[A-Za-z0-9_.:/-]+$ ]] || {
            cp_warn "COUPON_WEB_GATEWAY_URL '$COUPON_WEB_GATEWAY_URL': http://host:port/path only"
            return 1
        }
        web_render_file "$src/coupon-gateway.server.conf" "$dir/coupon.d/gateway.server.conf" \
            "AUTH_URL=$COUPON_WEB_GATEWAY_URL" || return 1
        web_render_file "$src/coupon-gateway.location.conf" \
            "$dir/coupon.d/gateway.location.conf" || return 1
    fi
    read -r user group < <(web_run_as "$state") || true
    # The last line must stay the one closing http {}: benchstack.sh adds its sites above it.
    cat >"$dir/nginx.conf" <<EOF
# Written by scripts/lib/web.sh: process settings for a private nginx whose
# every file lives under $state. The site itself is deploy/nginx/.
daemon off;
master_process on;
worker_processes 2;
worker_rlimit_nofile 8192;
pid $dir/nginx.pid;
error_log stderr warn;
${user:+user $user $group;}
events {
    worker_connections 2048;
}
http {
    default_type application/octet-stream;
    sendfile on;
    tcp_nodelay on;
    client_body_temp_path $dir/tmp/body;
    fastcgi_temp_path $dir/tmp/fastcgi;
    proxy_temp_path $dir/tmp/proxy;
    scgi_temp_path $dir/tmp/scgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    include $dir/coupon-http.conf;
    include $dir/coupon.conf;
}
EOF
}

# web_render_lighttpd STATE PORT SOCKET : STATE/lighttpd/{coupon.conf,ratelimit.lua,
# errors/,lighttpd.conf}
web_render_lighttpd() {
    local state=$1 port=$2 sock=$3
    local dir=$state/lighttpd src user group
    src=$(web_deploy_dir)/lighttpd
    if [[ ! -e /usr/lib/lighttpd/mod_magnet.so ]]; then
        cp_warn "lighttpd's mod_magnet is missing: install the Debian package lighttpd-modules-lua"
        return 1
    fi
    mkdir -p "$dir/errors" "$dir/htdocs" "$dir/tmp" "$state/logs" || return 1
    web_stage_console "$state" || return 1
    local -a subst=(HTTP_ADDR=127.0.0.1 "HTTP_PORT=$port" "FCGI_SOCKET=$sock"
        "LOG_DIR=$state/logs" "CONF_DIR=$dir" "CONSOLE_DIR=$state/console")
    web_render_file "$src/coupon.conf" "$dir/coupon.conf" "${subst[@]}" || return 1
    # auth_mode = gateway: mod_auth with the user file COUPON_WEB_GATEWAY_HTPASSWD names
    # (deploy/lighttpd/coupon-gateway.conf).
    if [[ -n "${COUPON_WEB_GATEWAY_HTPASSWD:-}" ]]; then
        web_check_path "COUPON_WEB_GATEWAY_HTPASSWD" "$COUPON_WEB_GATEWAY_HTPASSWD" || return 1
        web_render_file "$src/coupon-gateway.conf" "$dir/coupon-gateway.conf" \
            "HTPASSWD_FILE=$COUPON_WEB_GATEWAY_HTPASSWD" || return 1
    fi
    cp "$src/ratelimit.lua" "$dir/ratelimit.lua" || return 1
    cp "$src"/errors/*.html "$dir/errors/" || return 1
    read -r user group < <(web_run_as "$state") || true
    {
        echo "# Written by scripts/lib/web.sh: process settings for a private lighttpd whose"
        echo "# every file lives under $state. The site itself is deploy/lighttpd/."
        echo "# No server.errorlog: in the foreground (-D) errors go to stderr."
        echo "server.document-root = \"$dir/htdocs\""
        echo "server.upload-dirs = ( \"$dir/tmp\" )"
        # lighttpd refuses to drop to root explicitly; as root without a user it stays root.
        if [[ -n "${user:-}" && "$user" != root ]]; then
            echo "server.username = \"$user\""
            echo "server.groupname = \"$group\""
        fi
        echo "include \"$dir/coupon.conf\""
        if [[ -n "${COUPON_WEB_GATEWAY_HTPASSWD:-}" ]]; then
            echo "include \"$dir/coupon-gateway.conf\""
        fi
    } >"$dir/lighttpd.conf"
}

# web_config_test SERVER STATE : the server's own check of the rendered configuration.
# Strict: a passing check prints nothing, so any output (lighttpd only warns about an
# unknown key and goes on, nginx warns about directives it ignores) is a failure too.
web_config_test() {
    local server=$1 state=$2 out rc
    case $server in
    nginx)
        out=$(nginx -t -q -e stderr -p "$state/nginx/" -c "$state/nginx/nginx.conf" 2>&1) ;;
    lighttpd)
        out=$(lighttpd -tt -f "$state/lighttpd/lighttpd.conf" 2>&1) ;;
    esac
    rc=$?
    if ((rc != 0)) || [[ -n "$out" ]]; then
        printf '%s\n' "$out" >&2
        cp_warn "$server: configuration test failed (files in $state/$server)"
        return 1
    fi
}

# web_start SERVER STATE_DIR HTTP_PORT FCGI_SOCKET[,FCGI_SOCKET...]
web_start() {
    local server=$1 state=$2 port=$3 sock=$4 s
    local -a socks
    IFS=, read -r -a socks <<<"$sock"
    web_check_server "$server" || return 1
    if ! command -v "$server" >/dev/null 2>&1; then
        cp_warn "$server is not installed"
        return 1
    fi
    if [[ ! "$port" =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
        cp_warn "$server: bad port '$port'"
        return 1
    fi
    state=$(cd "$state" && pwd) || return 1
    web_check_path "state folder" "$state" || return 1
    for s in "${socks[@]}"; do
        web_check_path "FastCGI socket" "$s" || return 1
    done
    if [[ "$server" == lighttpd && ${#socks[@]} -gt 1 ]]; then
        cp_warn "lighttpd: one FastCGI socket only (several app hosts: nginx)"
        return 1
    fi
    local pid
    if pid=$(stack_pidfile_pid "$state/pids/$server.pid"); then
        cp_warn "$server already runs for $state (pid $pid); web_stop it first"
        return 1
    fi
    if ! stack_port_free "$port"; then
        cp_warn "$server: port $port is in use on 127.0.0.1"
        return 1
    fi
    "web_render_$server" "$state" "$port" "$sock" || return 1
    web_launch "$server" "$state" "$port" || return 1
    cp_say "$server $("web_version_$server") on 127.0.0.1:$port -> $sock" \
        "(config in $state/$server, logs in $state/logs)"
}

# web_launch SERVER STATE_DIR PORT... : the server on the configuration rendered in
# STATE_DIR, once its own test passes; returns when every PORT accepts connections (and
# stops it again when one does not).
web_launch() {
    local server=$1 state=$2 p
    shift 2
    local pidfile=$state/pids/$server.pid log=$state/logs/$server-error.log
    web_config_test "$server" "$state" || return 1
    case $server in
    nginx)
        stack_spawn "$pidfile" "$log" nginx -e stderr -p "$state/nginx/" \
            -c "$state/nginx/nginx.conf" ;;
    lighttpd)
        stack_spawn "$pidfile" "$log" lighttpd -D -f "$state/lighttpd/lighttpd.conf" ;;
    esac
    for p in "$@"; do
        if ! stack_wait "${COUPON_WEB_TIMEOUT:-20}" "$server" "$pidfile" "$log" \
            web_port_open "$p"; then
            web_stop "$server" "$state" || true
            return 1
        fi
    done
}

# web_stop SERVER STATE_DIR : SIGTERM (both servers stop at once, closing their
# connections), SIGKILL after 10 s. A no-op when it does not run.
web_stop() {
    local server=$1 state=$2
    web_check_server "$server" || return 1
    stack_stop_pidfile "$state/pids/$server.pid" "$server" 10
}

web_version_nginx() {
    nginx -v 2>&1 | sed -n 's|.*nginx/\([^ ]*\).*|\1|p'
}

web_version_lighttpd() {
    lighttpd -v 2>&1 | sed -n 's|^lighttpd/\([^ ]*\).*|\1|p'
}
