#!/bin/sh
# Start the fake model provider (tests/helpers/fakellm.c) on 127.0.0.1 for demos and manual
# testing, and print the environment that points agentd at it. Docs: docs/fakellm.md.
#
#   scripts/fakellm.sh [FLAGS...]          foreground; Ctrl-C stops it
#   scripts/fakellm.sh start [FLAGS...]    background; prints `export ...` lines, so
#                                          eval "$(scripts/fakellm.sh start --latency-ms 200)"
#   scripts/fakellm.sh stop                stops the background server
#
# FLAGS go to fakellm unchanged (--script, --latency-ms, --fault-rate, --faults, ...).
# The binary is $FAKELLM, else $BUILD/fakellm, else build/release/fakellm (built if missing).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=${FAKELLM_STATE:-${TMPDIR:-/tmp}/agentd-fakellm-$(id -u)}

find_bin() {
    if [ -n "${FAKELLM:-}" ]; then echo "$FAKELLM"; return; fi
    b=${BUILD:-$ROOT/build/release}
    if [ ! -x "$b/fakellm" ]; then
        echo "fakellm.sh: building $b/fakellm" >&2
        make -C "$ROOT" --no-print-directory B="$b" "$b/fakellm" >&2
    fi
    echo "$b/fakellm"
}

env_lines() {
    cat <<EOF
export OPENAI_BASE_URL=http://127.0.0.1:$1/v1
export OPENAI_API_KEY=\${OPENAI_API_KEY:-fake-key}
export ANTHROPIC_BASE_URL=http://127.0.0.1:$1
export ANTHROPIC_API_KEY=\${ANTHROPIC_API_KEY:-fake-key}
EOF
}

stop() {
    if [ -f "$STATE/pid" ]; then
        pid=$(cat "$STATE/pid")
        kill "$pid" 2>/dev/null && echo "fakellm.sh: stopped $pid" >&2 || true
        rm -f "$STATE/pid" "$STATE/port"
    else
        echo "fakellm.sh: no background fakellm ($STATE/pid missing)" >&2
    fi
}

case "${1:-}" in
stop)
    stop
    exit 0
    ;;
start)
    shift
    BIN=$(find_bin)
    mkdir -p "$STATE"
    [ -f "$STATE/pid" ] && stop
    rm -f "$STATE/port"
    "$BIN" --port-file "$STATE/port" "$@" >"$STATE/log" 2>&1 &
    echo $! >"$STATE/pid"
    i=0
    while [ ! -s "$STATE/port" ]; do
        i=$((i + 1))
        if [ $i -gt 100 ] || ! kill -0 "$(cat "$STATE/pid")" 2>/dev/null; then
            echo "fakellm.sh: fakellm did not start: $(cat "$STATE/log")" >&2
            rm -f "$STATE/pid"
            exit 1
        fi
        sleep 0.05
    done
    port=$(cat "$STATE/port")
    echo "fakellm.sh: listening on 127.0.0.1:$port (pid $(cat "$STATE/pid"), log $STATE/log)" >&2
    env_lines "$port"
    ;;
*)
    BIN=$(find_bin)
    mkdir -p "$STATE"
    rm -f "$STATE/fg.port"
    "$BIN" --port-file "$STATE/fg.port" "$@" &
    pid=$!
    trap 'kill $pid 2>/dev/null' INT TERM
    i=0
    while [ ! -s "$STATE/fg.port" ] && [ $i -lt 100 ] && kill -0 $pid 2>/dev/null; do
        i=$((i + 1))
        sleep 0.05
    done
    if [ -s "$STATE/fg.port" ]; then
        echo "# point agentd at it (Ctrl-C stops the server):" >&2
        env_lines "$(cat "$STATE/fg.port")" >&2
    fi
    wait $pid || true
    rm -f "$STATE/fg.port"
    ;;
esac
