#!/bin/sh
# format.sh - `make check` step: every C source and header git tracks (or, in a
# tarball, every one under the source folders) is formatted as .clang-format says.
# A difference fails the step and clang-format names the file and line; fix it with
#   clang-format -i FILE...
# Skipped (77) when clang-format is not installed; scripts/check installs it, so CI
# always runs it.
set -u
srcdir=${srcdir:-.}
command -v clang-format >/dev/null 2>&1 || exit 77
cd "$srcdir" || exit 1
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    files=$(git ls-files '*.c' '*.h')
else
    files=$(find common fcgi-app consumer cache lua bench tests -name '*.[ch]' \
        -not -path '*/corpus/*' -not -path '*/node_modules/*')
fi
# shellcheck disable=SC2086 # a list of file names without spaces
clang-format --dry-run --Werror $files
