#!/bin/sh
# Retrieval benchmark (docs/rag.md): for each size, a synthetic KB of that many chunks
# (scripts/bench-rag-corpus.py), then
#   ingest: MB/s with the offline embedder (wall clock, and per CPU second since the machine
#           may be shared), peak memory;
#   search: p50/p95 latency per mode (keyword, vector, hybrid) over QUERIES questions drawn
#           from the corpus (`agentd kb eval`), peak memory of the searching process (it holds
#           the vectors and the keyword postings), database size;
#   int8:   the same KB with --quant int8 (sizes up to INT8_MAX chunks): latency and recall.
# With --quality: the recall/MRR table on SQLite's documentation (Debian sqlite3-doc,
# installed through scripts/deps.sh) for each chunking strategy, and int8's recall cost.
#
# usage: scripts/bench-rag.sh [--quality] [CHUNKS...]      (default sizes: 100000 1000000)
#        On 2 cores: 100k takes ~3 min per vector format; 1M ~15 min (a 770 MB corpus, a
#        3.5 GB database, ~3 GB of memory while searching).
# env:   BENCH_DIR (/tmp/agentd-bench-rag; corpora are kept there and reused), AGENTD,
#        QUERIES (200), INT8_MAX (100000), QUANTS ("f32 int8": the vector formats to build)
set -eu
cd "$(dirname "$0")/.."
AGENTD=${AGENTD:-$PWD/build/release/agentd}
[ -x "$AGENTD" ] || { make -s B=build/release build/release/agentd >/dev/null && AGENTD=$PWD/build/release/agentd; }
DIR=${BENCH_DIR:-/tmp/agentd-bench-rag}
QUERIES=${QUERIES:-200}
INT8_MAX=${INT8_MAX:-100000}
QUANTS=${QUANTS:-f32 int8}
mkdir -p "$DIR"
quality=0
if [ "${1:-}" = --quality ]; then
    quality=1
    shift
fi
[ $# -gt 0 ] || set -- 100000 1000000

j() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

# one timed command: "$DIR/time" gets peak RSS (KB), wall, user and sys seconds
timed() { /usr/bin/time -f "%M %e %U %S" -o "$DIR/time" "$@"; }

if [ $quality = 1 ]; then
    AGENTD_DEPS_RAG=1 ./scripts/deps.sh
    SQ=/usr/share/doc/sqlite3
    Q=tests/fixtures/rag/sqlite_questions.jsonl
    DB="$DIR/sqlite-doc.db"
    rm -f "$DB" "$DB-wal" "$DB-shm"
    echo "SQLite documentation: $(ls "$SQ"/*.html | wc -l) top-level pages, $(du -cb "$SQ"/*.html | tail -1 | cut -f1) bytes; $(grep -c '^{' "$Q") questions"
    kbs=""
    for spec in "structure:--strategy structure" "fixed:--strategy fixed --overlap 40" \
        "sentence:--strategy sentence" "structure-int8:--strategy structure --quant int8"; do
        name=sq-${spec%%:*}
        # shellcheck disable=SC2086
        timed "$AGENTD" kb add "$name" "$SQ"/*.html ${spec#*:} --kb-db "$DB" --json >"$DIR/add.json"
        echo "  $name: $(j "$DIR/add.json" "d['chunks']") chunks, $(j "$DIR/add.json" "'%.1f' % (d['bytes'] / 1e6 / d['seconds'])") MB/s"
        kbs="$kbs${kbs:+,}$name"
    done
    "$AGENTD" kb eval "$kbs" "$Q" --kb-db "$DB"
    echo
    echo "The support agent's help-center articles (agents/data/help):"
    "$AGENTD" kb add help agents/data/help --kb-db "$DB" >/dev/null
    "$AGENTD" kb eval help tests/fixtures/rag/help_questions.jsonl --kb-db "$DB"
    echo
fi

echo "latency: wall-clock p50/p95 in ms, and (cpu) the search thread's CPU time p50, which a"
echo "busy machine does not inflate; memory: peak RSS of the adding and of the searching process"
printf '%-8s %-5s %6s %8s %7s %15s %15s %15s %8s %8s %7s\n' chunks quant "MB/s" "MB/cpu-s" \
    "add MB" "keyword" "vector" "hybrid" "R@10 hyb" "srch MB" "db MB"
for n in "$@"; do
    C="$DIR/c$n"
    if [ ! -f "$C.done" ]; then
        rm -rf "$C"
        python3 scripts/bench-rag-corpus.py "$C" "$n" "$C.q.jsonl" "$QUERIES"
        touch "$C.done"
    fi
    for quant in $QUANTS; do
        [ $quant = int8 ] && [ "$n" -gt "$INT8_MAX" ] && continue
        DB="$DIR/b$n-$quant.db"
        rm -f "$DB" "$DB-wal" "$DB-shm"
        timed "$AGENTD" kb add b "$C" --quant $quant --kb-db "$DB" --json >"$DIR/add.json"
        read -r add_rss add_wall add_user add_sys <"$DIR/time"
        sqlite3 "$DB" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
        dbmb=$(du -cb "$DB"* | tail -1 | cut -f1)
        timed "$AGENTD" kb eval b "$C.q.jsonl" --kb-db "$DB" --json >"$DIR/eval.json"
        read -r ev_rss _ _ _ <"$DIR/time"
        python3 - "$DIR/add.json" "$DIR/eval.json" "$n" "$quant" "$add_rss" "$add_user" "$add_sys" \
            "$ev_rss" "$dbmb" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))
e = json.load(open(sys.argv[2]))[0]["modes"]
n, quant, add_rss, user, sysc, ev_rss, dbb = sys.argv[3:]
mb = a["bytes"] / 1e6
lat = lambda m: "%.2f/%.2f (%.2f)" % (e[m]["p50_ms"], e[m]["p95_ms"], e[m]["p50_cpu_ms"])
print("%-8s %-5s %6.1f %8.1f %7.0f %15s %15s %15s %8.3f %8.0f %7.0f" % (
    n, quant, mb / a["seconds"], mb / (float(user) + float(sysc)), int(add_rss) / 1024,
    lat("keyword"), lat("vector"), lat("hybrid"), e["hybrid"]["recall@10"],
    int(ev_rss) / 1024, int(dbb) / 1e6))
PY
    done
done
echo "(load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores)"
