# shellcheck shell=bash
# Small helpers shared by every script under scripts/ and by tests/integration/run.
# Sourced, never executed. Everything prints to stderr so that a function's stdout
# stays free for values it returns (ports, paths).

[[ -z "${COUPON_LIB_COMMON_LOADED:-}" ]] || return 0
COUPON_LIB_COMMON_LOADED=1

# cp_say MESSAGE... : progress line, prefixed so it stands out between server logs.
cp_say() {
    printf '==> %s\n' "$*" >&2
}

cp_warn() {
    printf 'warning: %s\n' "$*" >&2
}

cp_die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# cp_as_root CMD... : run CMD as root, through sudo when we are not root already.
cp_as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        cp_die "need root for: $* (run as root or install sudo)"
    fi
}

# cp_random_hex N : N random bytes as 2N lowercase hex digits (tokens, passwords).
cp_random_hex() {
    od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'
}

# cp_now_ms : wall clock in milliseconds, for timing lines in the logs.
cp_now_ms() {
    printf '%s\n' "$(($(date +%s%N) / 1000000))"
}

# cp_src_dir : absolute path of the source tree (the folder holding configure.ac).
cp_src_dir() {
    (cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
}
