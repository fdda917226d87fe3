#!/bin/sh
# What an `agentd serve` worker's loop waits on, counted (docs/scaling.md, "The loop and the
# network"): one worker drives RUNS runs whose model answers only after a minute, so the
# database sees nothing but the lease heartbeat (AGENTD_LEASE_S=3: a renewal a second) and
# the takeover scan (every 5 s), besides the cancel poll (every 0.5 s). strace follows the loop's thread (-e poll,fdatasync -T) for
# SECS seconds: every poll() with a timeout is libpq waiting for the server (libevent waits in
# epoll_wait, curl polls with timeout 0),
# every fdatasync on the loop thread a SQLite commit synced in line. Then an outage: the
# server's postmaster stopped (SIGSTOP: it takes TCP connections and never answers) and the
# worker's connection cut, for 6 s, while /healthz is asked every 0.5 s;
# the slowest answer is how long the loop was held by the reconnect.
# usage: scripts/bench-loop-waits.sh PGDIR [AGENTD] [RUNS] [SECS]   (PGDIR: a scripts/pg.sh
#        cluster, whose server the outage stops; or `sqlite`: a SQLite file, no outage;
#        needs strace, curl, psql, build/release/fakellm)
set -u
PGDIR=$1
AGENTD=${2:-./agentd}
RUNS=${3:-20}
SECS=${4:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d /tmp/agentd-loopw.XXXXXX)
if [ "$PGDIR" = sqlite ]; then
    DB="$W/loopw.db"
else
    URL0=$("$ROOT/scripts/pg.sh" url "$PGDIR")
    DB="${URL0%/*}/loopw$$"
    psql "$URL0" -X -q -c "CREATE DATABASE loopw$$" || exit 1
fi
cleanup() {
    kill "$SRV" "$FAKE" 2>/dev/null
    wait "$SRV" "$FAKE" 2>/dev/null
    [ "$PGDIR" = sqlite ] || psql "$URL0" -X -q -c "DROP DATABASE IF EXISTS loopw$$" 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT
"$ROOT/build/release/fakellm" --port 0 --port-file "$W/fport" \
    --script "$ROOT/tests/fixtures/torture/script.json" --latency-ms 60000 >"$W/fake.log" 2>&1 &
FAKE=$!
for _ in $(seq 1 100); do [ -s "$W/fport" ] && break; sleep 0.05; done
export OPENAI_BASE_URL="http://127.0.0.1:$(cat "$W/fport")/v1" OPENAI_API_KEY=sk-loopw \
    AGENTD_LEASE_S=3 AGENTD_TORTURE_FILE="$W/effects"
unset AGENTD_API_TOKEN AGENTD_CACHE
"$AGENTD" serve --listen 127.0.0.1:0 --port-file "$W/sport" --agents "$ROOT/tests/fixtures/multi/agents" \
    --tools "$ROOT/tests/fixtures/torture/tools" --db "$DB" --traces "$W/tr" >"$W/serve.log" 2>&1 &
SRV=$!
for _ in $(seq 1 200); do [ -s "$W/sport" ] && break; sleep 0.05; done
BASE="http://127.0.0.1:$(cat "$W/sport")"
i=0
while [ $i -lt "$RUNS" ]; do
    curl -s -o /dev/null -X POST "$BASE/v1/runs" -d "{\"agent\":\"work\",\"input\":\"wait $i\"}"
    i=$((i + 1))
done
sleep 2
echo "agentd $("$AGENTD" --version 2>/dev/null | head -n 1) — $RUNS runs in flight, lease 3 s; load $(cut -d' ' -f1-3 /proc/loadavg)"
m0=$(curl -s "$BASE/metrics" | grep "^agentd_db_round_trips_total" | cut -d" " -f2)
timeout "$SECS" strace -q ${STRACE_K:+-k} -p "$SRV" -e trace=poll,fdatasync -T -o "$W/st" 2>/dev/null
m1=$(curl -s "$BASE/metrics" | grep "^agentd_db_round_trips_total" | cut -d" " -f2)
[ -n "${STRACE_K:-}" ] && cp "$W/st" /tmp/loopw.strace
awk -v secs="$SECS" '/^poll\(/ && !/, 0\) = / { n++; gsub(/[<>]/, "", $NF); t += $NF }
    /^fdatasync\(/ { f++; gsub(/[<>]/, "", $NF); ft += $NF }
    END { printf "steady %s s: %d waiting poll() on the loop (libpq; curl polls with timeout 0), %.1f ms blocked in them; %d fdatasync on the loop, %.1f ms\n",
          secs, n, t * 1000, f, ft * 1000 }' "$W/st"
[ -n "$m0" ] && echo "agentd_db_round_trips_total over the same window (with /metrics scrapes): $((m1 - m0))"
[ "$PGDIR" = sqlite ] && exit 0
# The outage: the server stops answering (its postmaster stopped: it takes TCP connections
# and never answers), then the worker's connection is cut (its backend ended), for 6 s.
bpid=$(psql "$URL0" -X -q -A -t -c "SELECT pid FROM pg_stat_activity WHERE datname = 'loopw$$'" | head -n 1)
pm=$(head -n 1 "$PGDIR/data/postmaster.pid")
kill -STOP "$pm"
kill -TERM "$bpid"
worst=0
end=$(($(date +%s) + 6))
while [ "$(date +%s)" -lt "$end" ]; do
    t=$(curl -s -o /dev/null --max-time 20 -w '%{time_total}' "$BASE/healthz")
    worst=$(echo "$t $worst" | awk '{ print ($1 > $2) ? $1 : $2 }')
    sleep 0.5
done
ready=$(curl -s --max-time 20 "$BASE/readyz")
kill -CONT "$pm"
sleep 3
echo "outage 6 s: slowest /healthz $(echo "$worst" | awk '{ printf "%.0f ms", $1 * 1000 }'); /readyz during it: $ready"
echo "after: /readyz $(curl -s --max-time 20 "$BASE/readyz")"
grep -c 'stopped:' "$W/serve.log" | sed 's/^/runs stopped: /'
