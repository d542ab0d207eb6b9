#!/bin/sh
# redis_owner.sh - `make check` step: one module owns every Redis command on a
# coupon's keys (common/credis, issue #25). Fails, naming file and line, when the
# product code (fcgi-app, consumer, cache, common) does any of these elsewhere:
#   1. issues a Redis command (rcli_command*, rcli_append*, hiredis' redis*Command*)
#      outside the files allowed below;
#   2. builds a coupon's key (rkey_coupon, rkey_meta_hset) outside credis and rkey;
#   3. spells a coupon key in a string ("coupon:{...") outside rkey.
# So a command on a coupon key can only be written in credis - or in one of the
# helpers that run what credis prepared (script.c: the Lua scripts by SHA with
# credis' argv; cache/l2.c: the document copy under credis_doc_key's key, a cache
# that knows no coupon) - and the files that issue commands on other keys can only
# reach a coupon key by building it, which rules 2 and 3 forbid.
set -u
srcdir=${srcdir:-.}
cd "$srcdir" || exit 1
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    files=$(git ls-files -c -o --exclude-standard 'fcgi-app/*.[ch]' 'consumer/*.[ch]' \
        'cache/*.[ch]' 'common/*.[ch]')
else
    files=$(find fcgi-app consumer cache common -name '*.[ch]')
fi

# Who may issue Redis commands, and on what.
commands_allowed='
common/rcli.c      the client itself
common/rnodes.c    the client itself (CLUSTER SLOTS)
common/rconn.c     the client itself (ASKING)
common/credis.c    the owner: every command on a coupon key
common/credis_checkout.c  the owner too: the checkout keys of a coupon (issue 26)
fcgi-app/script.c  SCRIPT LOAD, EVALSHA/EVAL, WAIT of the argv credis built
cache/l2.c         cache-aside on the key its caller names (credis_doc_key)
fcgi-app/health.c  PING and the consumers metrics (coupon:metrics:{consumers})
consumer/report.c  the consumers metrics
fcgi-app/invalidate.c  SUBSCRIBE on its own connection
'
keys_allowed='common/credis.c common/credis_checkout.c common/rkey.c common/rkey.h'
literal_allowed='common/rkey.c common/rkey.h'

allowed() { # file list
    for a in $2; do
        [ "$1" = "$a" ] && return 0
    done
    return 1
}

# Lines of code that match (comment lines - starting with /*, * or // - skipped).
code_grep() { # pattern file
    grep -nE "$1" "$2" | grep -vE '^[0-9]+:[[:space:]]*(/\*|\*|//)'
}

status=0
command_files=$(printf '%s\n' "$commands_allowed" | awk 'NF { print $1 }')
for f in $files; do
    case $f in *.h) ;; *)
        if ! allowed "$f" "$command_files"; then
            hits=$(code_grep '\b(rcli_command(_argv)?|rcli_append(_argv)?|redisv?Command(Argv)?|redisv?AppendCommand(Argv)?|redisAsyncCommand(Argv)?)[[:space:]]*\(' "$f")
            if [ -n "$hits" ]; then
                printf '%s: a Redis command outside its owner (use common/credis):\n%s\n' \
                    "$f" "$hits"
                status=1
            fi
        fi
        ;;
    esac
    if ! allowed "$f" "$keys_allowed"; then
        hits=$(code_grep '\b(rkey_coupon|rkey_meta_hset)[[:space:]]*\(' "$f")
        if [ -n "$hits" ]; then
            printf "%s: a coupon's key built outside common/credis:\\n%s\\n" "$f" "$hits"
            status=1
        fi
    fi
    if ! allowed "$f" "$literal_allowed"; then
        hits=$(code_grep '"coupon:\{' "$f")
        if [ -n "$hits" ]; then
            printf "%s: a coupon's key spelt outside common/rkey:\\n%s\\n" "$f" "$hits"
            status=1
        fi
    fi
done
[ $status -eq 0 ] && echo "every Redis command on a coupon key is in common/credis"
exit $status
