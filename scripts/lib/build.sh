# shellcheck shell=bash
# Building the project out of tree: autoreconf when the generated files are stale,
# configure in the build folder when its flags or configure changed, then make.
# Sourced by scripts/up and scripts/check, never executed.
#
# The build folder is <repo>/build unless COUPON_BUILD_DIR says otherwise. The source
# tree itself is never configured: out-of-tree builds refuse a configured source tree,
# and a clean tree lets several build folders (gcc, clang, sanitizers) live side by side.

[[ -z "${COUPON_LIB_BUILD_LOADED:-}" ]] || return 0
COUPON_LIB_BUILD_LOADED=1

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

build_dir() {
    printf '%s\n' "${COUPON_BUILD_DIR:-$(cp_src_dir)/build}"
}

# build_needs_autoreconf SRC : true when configure is missing or older than any file it
# is generated from (configure.ac, Makefile.am, the local.mk fragments, m4/).
build_needs_autoreconf() {
    local src=$1
    [[ -x "$src/configure" && -f "$src/Makefile.in" ]] || return 0
    local -a inputs=("$src/configure.ac")
    [[ -d "$src/m4" ]] && inputs+=("$src/m4")
    [[ -n "$(find "${inputs[@]}" -newer "$src/configure" -print -quit)" ]] && return 0
    # Makefile.in comes from Makefile.am and every local.mk it includes.
    [[ -n "$(find "$src" \( -path "$src/build" -o -path "$src/.state" -o -path "$src/.git" \) \
        -prune -o \( -name local.mk -o -path "$src/Makefile.am" \) -newer "$src/Makefile.in" \
        -print -quit)" ]]
}

# build_project [CONFIGURE_ARGS...] : autoreconf if needed, configure if needed, make -j2.
# Two jobs: the machines this runs on have two cores, shared with the servers.
build_project() {
    local src build stamp args
    src=$(cp_src_dir)
    build=$(build_dir)
    if build_needs_autoreconf "$src"; then
        cp_say "autoreconf -fi"
        (cd "$src" && autoreconf -fi) || cp_die "autoreconf failed"
    fi
    mkdir -p "$build"
    # Reconfigure when the flags differ from the last configure or configure is newer
    # than its last run; make alone reruns config.status for the other changes.
    stamp=$build/.coupon-configure-args
    args="$*"
    if [[ ! -f "$build/config.status" || ! -f "$stamp" || "$(cat "$stamp")" != "$args" ||
        "$src/configure" -nt "$build/config.status" ]]; then
        cp_say "configure $args (in $build)"
        rm -f "$stamp"
        (cd "$build" && "$src/configure" "$@") ||
            cp_die "configure failed (see $build/config.log)"
        printf '%s\n' "$args" >"$stamp"
    fi
    cp_say "make -j2 (in $build)"
    make -C "$build" -j2 || cp_die "build failed"
}
