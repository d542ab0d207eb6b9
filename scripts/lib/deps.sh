# shellcheck shell=bash
# Installing what the project needs on a Debian 12 machine: the Debian packages (build
# tools, libraries, the real servers, test and benchmark tools) and the Kafka broker's
# jars (Debian has no Kafka package; Maven fetches them from Maven Central once).
#
# deps_install is cheap when everything is there (one dpkg-query, one stamp check), so
# scripts/up and scripts/check call it on every run. Sourced, never executed.

[[ -z "${COUPON_LIB_DEPS_LOADED:-}" ]] || return 0
COUPON_LIB_DEPS_LOADED=1

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source=scripts/lib/stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/stack.sh"

DEPS_PACKAGES=(
    # build
    build-essential autoconf automake libtool pkg-config
    # libraries (configure names the same packages when one is missing)
    libfcgi-dev libhiredis-dev librdkafka-dev libmariadb-dev libjson-c-dev libcunit1-dev
    # JOSE (JWT verification, issue 24) over OpenSSL's libcrypto
    libcjose-dev libjansson-dev libssl-dev
    # webhook deliveries (issue 27): libcurl over OpenSSL
    libcurl4-openssl-dev
    # the real servers of the stack
    redis-server mariadb-server mariadb-client nginx-light lighttpd lighttpd-modules-lua spawn-fcgi
    # Kafka runs on the JDK; Maven fetches its jars
    maven default-jdk-headless
    # tests, benchmarks, sanitizers and fuzzing
    kcat wrk clang clang-format gnuplot-nox valgrind curl python3 procps psmisc
    libclang-rt-14-dev
    # the operator console: npm installs its chart library (and playwright-core) from
    # deploy/console/package-lock.json during the build; the browser suite drives
    # Debian's Chromium headless; promtool checks deploy/prometheus/. (npm: see
    # deps_npm; playwright-core 1.65 wants node >= 20.)
    nodejs chromium prometheus
)

# deps_missing_packages : print the packages of DEPS_PACKAGES that are not installed.
deps_missing_packages() {
    local p status
    for p in "${DEPS_PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
        if [[ "$status" != ii* ]]; then
            printf '%s\n' "$p"
        fi
    done
}

# deps_apt_install PKG... : apt-get install without starting the installed services.
# Their postinst scripts would start the system Redis/MariaDB/nginx on the default ports;
# the project runs its own instances instead. A policy-rc.d that answers 101 ("action
# forbidden") makes invoke-rc.d and deb-systemd-invoke skip every start.
deps_apt_install() {
    local policy=${DEPS_POLICY_RC_D:-/usr/sbin/policy-rc.d} placed=0 rc=0
    if [[ ! -e "$policy" ]]; then
        cp_as_root sh -c "printf '#!/bin/sh\nexit 101\n' >$policy && chmod 755 $policy"
        placed=1
    else
        cp_warn "$policy exists already: leaving it as it is"
    fi
    cp_say "apt-get update"
    cp_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q || rc=$?
    if ((rc == 0)); then
        cp_say "apt-get install $*"
        cp_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends "$@" || rc=$?
    fi
    if ((placed)); then
        cp_as_root rm -f "$policy"
    fi
    return "$rc"
}

# deps_kafka_jars : the broker's jars, copied by Maven from scripts/kafka/pom.xml into
# the cache folder. A stamp holding the pom's checksum marks a complete copy, so the
# next run does nothing (and an edited pom triggers a new copy). Maven's own cache
# (~/.m2) means a re-copy downloads nothing that is already there.
deps_kafka_jars() {
    local src dir pom sum
    src=$(cp_src_dir)
    dir=$(stack_kafka_jars_dir)
    pom=$src/scripts/kafka/pom.xml
    sum=$(sha256sum "$pom" | cut -d' ' -f1)
    if [[ -f "$dir/.complete" && "$(cat "$dir/.complete")" == "$sum" ]]; then
        return 0
    fi
    cp_say "fetching the Kafka $STACK_KAFKA_VERSION jars with Maven into $dir"
    mkdir -p "$dir"
    # Copied in place (not into a fresh folder swapped in): a broker of another
    # checkout may be running from these jars, and Maven skips files already there.
    # Maven's output (escape codes even with -B -q) is kept aside and shown on failure.
    local log
    if ! log=$(mvn -B -q -f "$pom" \
        org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$dir" 2>&1); then
        printf '%s\n' "$log" >&2
        cp_die "Maven could not fetch the Kafka jars (see the output above)"
    fi
    [[ -f "$dir/kafka_2.13-$STACK_KAFKA_VERSION.jar" && -f "$dir/kafka-tools-$STACK_KAFKA_VERSION.jar" ]] ||
        cp_die "Maven finished but the Kafka jars are not in $dir"
    printf '%s\n' "$sum" >"$dir/.complete"
}

# deps_npm : the npm command. A nodejs package of its own (NodeSource's, as on the
# development machines) ships npm and conflicts with Debian's `npm` package, so that
# package is installed only when the command is missing (Debian's own nodejs).
deps_npm() {
    if ! command -v npm >/dev/null 2>&1; then
        cp_say "installing Debian's npm"
        deps_apt_install npm || cp_die "apt-get failed"
        command -v npm >/dev/null 2>&1 || cp_die "npm still missing after apt-get"
    fi
}

# deps_install : everything above; exits on failure.
deps_install() {
    local -a missing
    mapfile -t missing < <(deps_missing_packages)
    if ((${#missing[@]} > 0)); then
        cp_say "installing missing Debian packages: ${missing[*]}"
        deps_apt_install "${missing[@]}" || cp_die "apt-get failed"
        mapfile -t missing < <(deps_missing_packages)
        ((${#missing[@]} == 0)) || cp_die "still missing after apt-get: ${missing[*]}"
    fi
    deps_npm
    deps_kafka_jars
}
