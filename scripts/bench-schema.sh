#!/bin/sh
# Benchmark the JSON Schema validator (not a test): builds tests/bench/bench_schema.c
# against the schema module at -O2, runs it RUNS times (default 3) for SECS CPU-seconds
# per figure (default 1) and prints the median of each figure.
# Rates are per CPU-second of the benchmark thread, so other load on a shared machine
# does not skew them much.
set -eu
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SECS=${SECS:-1}
B=build/bench
SRC="$(ls runtime/schema/*.c | tr '\n' ' ') runtime/err.c"
make -s B=$B SRC="$SRC" UNIT="" HELPERS="" $B/libagentd.a
# shellcheck disable=SC2046
cc -std=c11 -D_GNU_SOURCE -O2 -g -Iruntime $(pkg-config --cflags json-c libpcre2-8) \
    tests/bench/bench_schema.c -o $B/bench_schema $B/libagentd.a \
    $(pkg-config --libs json-c libpcre2-8) -lm
out=$(mktemp)
trap 'rm -f "$out"' EXIT
i=0
while [ "$i" -lt "$RUNS" ]; do
    $B/bench_schema "$SECS" >>"$out"
    i=$((i + 1))
done
echo "median of $RUNS runs, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
# Group lines by section + label; print the median rate of each.
awk -v runs="$RUNS" '
    /^format assertion/ { sec = $0; if (!(sec in seen)) { seen[sec] = 1; order[++ns] = sec }; next }
    / \/s$/ {
        rate = $(NF - 1); label = $0; sub(/ +[0-9.]+ \/s$/, "", label)
        key = sec SUBSEP label
        if (!(key in cnt)) { labels[sec, ++nl[sec]] = label }
        vals[key, ++cnt[key]] = rate
    }
    END {
        for (s = 1; s <= ns; s++) {
            sec = order[s]; print sec
            for (l = 1; l <= nl[sec]; l++) {
                label = labels[sec, l]; key = sec SUBSEP label; n = cnt[key]
                for (a = 1; a <= n; a++) v[a] = vals[key, a] + 0
                for (a = 1; a <= n; a++) for (b = a + 1; b <= n; b++) if (v[b] < v[a]) { t = v[a]; v[a] = v[b]; v[b] = t }
                printf "  %-46s %12.0f /s\n", label, v[int((n + 1) / 2)]
            }
        }
    }' "$out"
