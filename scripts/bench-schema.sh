#!/bin/sh
# Benchmark the JSON Schema validator (not a test): builds tests/bench/bench_schema.c
# against the schema module at -O2 and runs it beside ajv 8 (tests/bench/bench_ajv.js,
# the fastest JavaScript validator: it compiles schemas to code; installed into build/npm
# by scripts/npm-deps.sh) on the same schema and instances.
# Figures are interleaved -- each of agentd's figures, then ajv's same figure, then the
# next; RUNS rounds of that (default 5), SECS CPU-seconds per figure (default 1) -- so a
# change of load on a shared machine hits both sides of a figure alike. Prints the median rate of each figure and, per figure both
# measure, agentd's speed as a multiple of ajv's: the median over the rounds of each
# round's ratio, with the lowest and highest (a figure "X (how)" of agentd's, such as
# schema_validate_text, is set against ajv's "X").
# Rates are per CPU-second of the benchmark process.  AJV=0 skips ajv.
set -eu
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
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
# agentd's figure labels, from a quick run (1,000 operations each)
$B/bench_schema -1 "" 0 | sed -n 's/ *[0-9.]* \/s$//p' >"$tmp/labels"
while [ "$i" -lt "$RUNS" ]; do
    for fmt in 0 1; do
        while IFS= read -r label; do
            # each line tagged with its round; ajv prints nothing for a figure it lacks
            $B/bench_schema "$SECS" "$label" $fmt | sed "s/^/$i /" >>"$out"
            [ "$AJV" = 0 ] ||
                NODE_PATH=$NODE_PATH node tests/bench/bench_ajv.js "$tmp" "$SECS" "$label" $fmt |
                sed "s/^/$i /" >>"$out"
        done <"$tmp/labels"
    done
    i=$((i + 1))
done
echo "median of $RUNS rounds (figures interleaved), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
# Group lines by section + label; print the median rate of each, then per figure the
# median (lowest..highest) of the rounds' ratios.
awk -v runs="$RUNS" '
    function median(a, n,    i, j, t) {
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    { round = $1; sub(/^[0-9]+ /, "") }
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
        byround[key, round] = rate
    }
    END {
        for (s = 1; s <= ns; s++) {
            sec = order[s]; print head[sec]
            for (l = 1; l <= nl[sec]; l++) {
                label = labels[sec, l]; key = sec SUBSEP label; n = cnt[key]
                for (a = 1; a <= n; a++) v[a] = vals[key, a] + 0
                med[key] = median(v, n)
                printf "  %-64s %12.0f /s\n", label, med[key]
            }
        }
        for (s = 1; s <= ns; s++) {
            sec = order[s]
            if (sec ~ /^ajv/) continue
            for (a = 1; a <= ns; a++) {
                asec = order[a]; m = asec; sub(/^ajv [^ ]+ /, "", m)
                if (asec !~ /^ajv/ || m != sec) continue
                print "agentd / ajv, " sec " (median of the rounds\047 ratios, lowest..highest)"
                for (l = 1; l <= nl[sec]; l++) {
                    label = labels[sec, l]; alabel = label
                    # a figure "X (how)" is set against the ajv figure "X" when ajv has no "X (how)"
                    if (!((asec SUBSEP alabel) in med)) sub(/ \([^)]*\)$/, "", alabel)
                    if (!((asec SUBSEP alabel) in med)) continue
                    nr = 0
                    for (r = 0; r < runs; r++) {
                        k1 = sec SUBSEP label SUBSEP r; k2 = asec SUBSEP alabel SUBSEP r
                        if ((k1 in byround) && (k2 in byround) && byround[k2] > 0)
                            q[++nr] = byround[k1] / byround[k2]
                    }
                    if (!nr) continue
                    m = median(q, nr)
                    printf "  %-64s %6.2fx (%.2f..%.2f)\n", label, m, q[1], q[nr]
                }
            }
        }
    }' "$out"
