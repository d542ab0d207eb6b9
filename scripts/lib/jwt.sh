# shellcheck shell=bash
# The development JWT keys of a state folder, for scripts/up and tests/integration/run.
# Sourced, never executed.
#
#   jwt_dev_keys BUILD_DIR STATE_DIR : creates STATE_DIR/jwt/rs256.pem and es256.pem (mode
#       0600) unless they exist, and STATE_DIR/jwt/jwks.json, their public JWKS, which
#       coupon-fcgi verifies bearer tokens against. Keys are kept across runs, so tokens
#       minted earlier (scripts/token) stay valid. Prints nothing but errors.
#
# The keys are made by BUILD_DIR/tools/coupon-token, so call it after the build.

if [[ -n "${COUPON_LIB_JWT_LOADED:-}" ]]; then
    return 0
fi
COUPON_LIB_JWT_LOADED=1

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

jwt_dev_keys() {
    local build=$1 state=$2
    local tool=$build/tools/coupon-token
    [[ -x "$tool" ]] || cp_die "$tool not built (run scripts/up, or make in $build)"
    "$tool" keygen --dir "$state/jwt" || cp_die "could not create the JWT keys in $state/jwt"
}
