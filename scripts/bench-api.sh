#!/bin/sh
# Load on `agentd serve`: 1,000 concurrent runs started through the API against the fake
# model provider (tests/helpers/fakellm.c, 50 ms per model call; each run is 2 steps: one
# lookup_order tool call, then the answer; durable SQLite per transition).
#   A  1,000 clients at once, each POST /v1/runs with wait=true (1,000 connections held while
#      the runs go on together) -> runs/s, request latency p50/p99 (POST to final answer)
#   B  1,000 clients at once, POST /v1/runs without wait -> request latency p50/p99 (to the
#      201), then the time until every run has ended
# and around them: RSS, descriptors (/proc/PID/fd) before and after, that every run ended
# done, and that no connection is left open.
# usage: scripts/bench-api.sh [N]   (needs ./agentd and build/release/fakellm: make build-all)
set -u
N=${1:-1000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
AGENTD=${AGENTD:-$ROOT/agentd}
BUILD=${BUILD:-$ROOT/build/release}
W=$(mktemp -d /tmp/agentd-bench-api.XXXXXX)
FAKE= SRV=
trap '[ -n "$FAKE" ] && kill $FAKE 2>/dev/null; [ -n "$SRV" ] && kill $SRV 2>/dev/null; rm -rf "$W"' EXIT
ulimit -n 8192 2>/dev/null || ulimit -n 4096 2>/dev/null || true
cat >"$W/script.json" <<'JSON'
[{"tool_calls":[{"name":"lookup_order","arguments":{"order_id":"1042"}}]},
 {"text":"Order 1042 shipped on Monday and arrives tomorrow."}]
JSON
"$BUILD/fakellm" --port 0 --port-file "$W/fport" --script "$W/script.json" --latency-ms 50 >"$W/fake.log" 2>&1 &
FAKE=$!
for _ in $(seq 1 100); do [ -s "$W/fport" ] && break; sleep 0.05; done
export OPENAI_BASE_URL="http://127.0.0.1:$(cat "$W/fport")/v1" OPENAI_API_KEY=bench-key
unset AGENTD_API_TOKEN AGENTD_CACHE
"$AGENTD" serve --listen 127.0.0.1:0 --port-file "$W/port" --agents "$ROOT/tests/fixtures/serve/agents" \
    --tools "$ROOT/tools" --db "$W/b.db" --max-runs $((N * 2)) --max-connections $((N * 2 + 64)) \
    --wait-timeout 600 >"$W/srv.log" 2>&1 &
SRV=$!
for _ in $(seq 1 100); do [ -s "$W/port" ] && break; sleep 0.05; done
PORT=$(cat "$W/port")
fds() { ls /proc/$SRV/fd | wc -l; }
# sockets of the server to its clients (local port = ours) and to the model provider
socks() { ss -tn 2>/dev/null | awk -v p=":$1\$" '$1 == "ESTAB" && $'"$2"' ~ p' | wc -l; }
cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' /proc/$SRV/stat; }
rss() { awk '/VmRSS/ {print $2}' /proc/$SRV/status; }
hwm() { awk '/VmHWM/ {print $2}' /proc/$SRV/status; }
curl -s --max-time 5 "http://127.0.0.1:$PORT/healthz" >/dev/null
FD0=$(fds); RSS0=$(rss)
python3 - "$PORT" "$N" "$W" <<'PY'
import asyncio, json, sys, time
port, n, w = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
async def post(body):
    t = time.perf_counter()
    r, wr = await asyncio.open_connection("127.0.0.1", port)
    data = json.dumps(body).encode()
    wr.write(b"POST /v1/runs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
             b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
    await wr.drain()
    resp = await r.read()
    wr.close()
    status = int(resp.split(b" ", 2)[1])
    return status, time.perf_counter() - t, json.loads(resp.split(b"\r\n\r\n", 1)[1] or b"{}")
def pct(xs, p):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1000
async def phase(wait):
    t0 = time.perf_counter()
    res = await asyncio.gather(*[post({"agent": "remote", "input": "Where is my order 1042?", "wait": wait}) for _ in range(n)])
    return res, time.perf_counter() - t0
async def scrape():
    r, wr = await asyncio.open_connection("127.0.0.1", port)
    wr.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await wr.drain()
    text = (await r.read()).decode()
    wr.close()
    b = {}
    for line in text.splitlines():
        if line.startswith('agentd_http_request_duration_seconds_bucket{route="/v1/runs",method="POST",'):
            le = line.split('le="')[1].split('"')[0]
            b[float("inf") if le == "+Inf" else float(le)] = int(line.rsplit(" ", 1)[1])
    return b
def hist_pct(before, after, p):
    les = sorted(after)
    total = after[float("inf")] - before.get(float("inf"), 0)
    for le in les:
        if after[le] - before.get(le, 0) >= p / 100 * total:
            return le * 1000
    return float("inf")
async def main():
    res, wall = await phase(True)
    lat = [r[1] for r in res]
    done = sum(1 for r in res if r[0] == 200 and r[2].get("state") == "done")
    out = {"A": {"runs": n, "done": done, "wall_s": wall, "runs_per_s": n / wall, "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99),
                 "statuses": sorted({r[0] for r in res})}}
    h0 = await scrape()
    res, wall = await phase(False)
    h1 = await scrape()
    lat = [r[1] for r in res]
    out["B"] = {"runs": n, "created": sum(1 for r in res if r[0] == 201), "wall_s": wall, "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99),
                "srv_p50_ms": hist_pct(h0, h1, 50), "srv_p99_ms": hist_pct(h0, h1, 99)}
    json.dump(out, open(w + "/client.json", "w"))
asyncio.run(main())
PY
HWM_A=$(hwm)
# wait for phase B's runs to end
t0=$(date +%s.%N)
for _ in $(seq 1 600); do
    left=$(sqlite3 "$W/b.db" "SELECT count(*) FROM runs WHERE state NOT IN ('done','failed','cancelled')")
    [ "$left" = 0 ] && break
    sleep 0.1
done
tB=$(echo "$(date +%s.%N) - $t0" | bc)
sleep 1.5 # closed client sockets are released by the server's 1 s sweep
FD1=$(fds); RSS1=$(rss); HWM=$(hwm); CPU=$(cpu)
CLIENT_SOCKS=$(socks "$PORT" 4); MODEL_SOCKS=$(socks "$(cat "$W/fport")" 5)
CONNS=$(curl -s --max-time 5 "http://127.0.0.1:$PORT/metrics" | awk '/^agentd_http_connections / {print $2}')
STATES=$(sqlite3 "$W/b.db" "SELECT state || '=' || count(*) FROM runs GROUP BY state" | tr '\n' ' ')
python3 - "$W/client.json" <<PY
import json
c = json.load(open("$W/client.json"))
a, b = c["A"], c["B"]
print("agentd serve, %d concurrent runs through the API (fake model 50 ms/call, 2 steps/run)" % a["runs"])
print("  A wait=true : %d/%d done in %.2f s -> %.0f runs/s; request latency p50 %.0f ms, p99 %.0f ms; statuses %s"
      % (a["done"], a["runs"], a["wall_s"], a["runs_per_s"], a["p50_ms"], a["p99_ms"], a["statuses"]))
print("  B no wait  : %d/%d created in %.2f s; POST latency p50 %.1f ms, p99 %.1f ms (client side, queueing included);"
      % (b["created"], b["runs"], b["wall_s"], b["p50_ms"], b["p99_ms"]))
print("               in the handler (agentd_http_request_duration_seconds): p50 <= %g ms, p99 <= %g ms;"
      % (b["srv_p50_ms"], b["srv_p99_ms"]))
print("               all %d ended %.2f s after the last 201" % (b["runs"], float("$tB")))
PY
echo "  runs in the database: $STATES"
echo "  memory: RSS ${RSS0} kB before, peak ${HWM} kB (after A: ${HWM_A} kB), ${RSS1} kB after"
echo "  descriptors: ${FD0} before, ${FD1} after: ${CLIENT_SOCKS} client connections left open (server side),"
echo "               ${MODEL_SOCKS} pooled keep-alive connections to the model provider (libcurl's pool, reused),"
echo "               $((FD1 - MODEL_SOCKS)) others (${FD0} before: database, loop, listener, logs)"
echo "  agentd_http_connections after: ${CONNS:-?} (the /metrics scrape itself)"
echo "  agentd CPU: ${CPU} s user+system for all $((2 * N)) runs; load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
[ -n "${BENCH_KEEP:-}" ] && { ls -l /proc/$SRV/fd > "$BENCH_KEEP"; ss -tnp 2>/dev/null | grep "pid=$SRV," >> "$BENCH_KEEP"; }
kill -TERM $SRV; wait $SRV; SRV=
