#!/bin/sh
# Benchmark the JSON Schema validator (not a test): builds tests/bench/bench_schema.c
# against the schema module at -O2 and runs it beside ajv 8 (tests/bench/bench_ajv.js,
# the fastest JavaScript validator: it compiles schemas to code; installed into build/npm
# by scripts/npm-deps.sh) on the same schema and instances, RUNS times each (default 3),
# SECS CPU-seconds per figure (default 1). Prints the median of each figure and, per
# figure both measure, agentd's speed as a multiple of ajv's (a figure "X (how)" of
# agentd's, such as schema_validate_text, is set against ajv's "X").
# Rates are per CPU-second of the benchmark process, so other load on a shared machine
# does not skew them much.  AJV=0 skips ajv.
set -eu
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SECS=${SECS:-1}
AJV=${AJV:-1}
B=build/bench
SRC="$(ls runtime/schema/*.c | tr "\n" " ") runtime/err.c runtime/mem.c runtime/text.c"
make -s B=$B SRC="$SRC" UNIT="" HELPERS="" $B/libagentd.a
# shellcheck disable=SC2046
cc -std=c11 -D_GNU_SOURCE -O2 -g -Iruntime $(pkg-config --cflags json-c libpcre2-8) \
    tests/bench/bench_schema.c -o $B/bench_schema $B/libagentd.a \
    $(pkg-config --libs json-c libpcre2-8 sqlite3 libevent libcurl lua5.4) -lm
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=$tmp/out
$B/bench_schema --dump "$tmp"
[ "$AJV" = 0 ] || NODE_PATH=$(scripts/npm-deps.sh ajv@8 ajv-formats@3)
i=0
while [ "$i" -lt "$RUNS" ]; do
    $B/bench_schema "$SECS" >>"$out"
    [ "$AJV" = 0 ] || NODE_PATH=$NODE_PATH node tests/bench/bench_ajv.js "$tmp" "$SECS" >>"$out"
    i=$((i + 1))
done
echo "median of $RUNS runs, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
# Group lines by section + label; print the median rate of each, then the ratios.
awk -v runs="$RUNS" '
    /^(ajv .*)?format assertion/ {
        sec = $0; sub(/ \(.*$/, "", sec)
        if (!(sec in seen)) { seen[sec] = 1; order[++ns] = sec; head[sec] = $0 }
        next
    }
    / \/s$/ {
        rate = $(NF - 1); label = $0; sub(/ +[0-9.]+ \/s$/, "", label)
        key = sec SUBSEP label
        if (!(key in cnt)) { labels[sec, ++nl[sec]] = label }
        vals[key, ++cnt[key]] = rate
    }
    END {
        for (s = 1; s <= ns; s++) {
            sec = order[s]; print head[sec]
            for (l = 1; l <= nl[sec]; l++) {
                label = labels[sec, l]; key = sec SUBSEP label; n = cnt[key]
                for (a = 1; a <= n; a++) v[a] = vals[key, a] + 0
                for (a = 1; a <= n; a++) for (b = a + 1; b <= n; b++) if (v[b] < v[a]) { t = v[a]; v[a] = v[b]; v[b] = t }
                med[key] = v[int((n + 1) / 2)]
                printf "  %-64s %12.0f /s\n", label, med[key]
            }
        }
        for (s = 1; s <= ns; s++) {
            sec = order[s]
            if (sec ~ /^ajv/) continue
            for (a = 1; a <= ns; a++) {
                asec = order[a]; m = asec; sub(/^ajv [^ ]+ /, "", m)
                if (asec !~ /^ajv/ || m != sec) continue
                print "agentd / ajv, " sec
                for (l = 1; l <= nl[sec]; l++) {
                    label = labels[sec, l]; alabel = label
                    # a figure "X (how)" is set against the ajv figure "X" when ajv has no "X (how)"
                    if (!((asec SUBSEP alabel) in med)) sub(/ \([^)]*\)$/, "", alabel)
                    if (!((asec SUBSEP alabel) in med)) continue
                    printf "  %-64s %11.2fx\n", label, med[sec SUBSEP label] / med[asec SUBSEP alabel]
                }
            }
        }
    }' "$out"
