#!/bin/sh
# The interactive trace viewer driven under tmux: keys are sent, the pane is captured and
# what is on screen is asserted. list -> filter/sort -> resize -> run -> next error ->
# detail -> search -> JSON/copy -> back -> quit; NO_COLOR; terminal restored after SIGTERM
# and after a crash; follow mode while a helper appends events to the database.
# Screens are saved as text under $BUILD/viewer-screens/ (the issue's closing note).
set -u
: "${AGENTD:?}" "${BUILD:?}"
FIX="$(cd "$(dirname "$0")/../fixtures/traces" && pwd)"
FILL="$BUILD/trace_fixture"
pass=0
fail=0
if ! command -v tmux >/dev/null 2>&1; then
    echo "tmux is not installed"
    echo "0 passed, 1 failed"
    exit 1
fi
. tests/integration/lib.sh # TMP, newdb (this script counts its own checks)
SOCK="agentd-viewer-$$"
SHOTS="$BUILD/viewer-screens"
mkdir -p "$SHOTS"
T() { tmux -L "$SOCK" -f /dev/null "$@"; }
cleanup() { T kill-server 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM
# Sanitizer builds are slower; give every wait more room there.
case "$BUILD" in *asan*) WAIT=150 ;; *) WAIT=50 ;; esac

CUR=""
NSESS=0
screen() { T capture-pane -p -t "$CUR" 2>/dev/null; }
shot() { screen >"$SHOTS/$1.txt"; }
# wait_for TEXT: poll the pane (0.1 s steps) until TEXT is on screen.
wait_for() {
    n=0
    while [ $n -lt "$WAIT" ]; do
        screen | grep -qF -- "$1" && return 0
        sleep 0.1
        n=$((n + 1))
    done
    return 1
}
wait_gone() {
    n=0
    while [ $n -lt "$WAIT" ]; do
        screen | grep -qF -- "$1" || return 0
        sleep 0.1
        n=$((n + 1))
    done
    return 1
}
check() {
    name=$1
    shift
    if "$@"; then
        pass=$((pass + 1))
        echo "ok   $name"
    else
        fail=$((fail + 1))
        echo "FAIL $name"
        screen | sed 's/^/    | /'
    fi
}
keys() { T send-keys -t "$CUR" "$@"; sleep 0.15; }
on_screen() { screen | grep -qF -- "$1"; }
not_on_screen() { ! screen | grep -qF -- "$1"; }
# start NAME CMD...: run CMD in a fresh 80x24 pane; a wrapper shell records the exit code
# and the terminal modes after the viewer is gone.
# The new session is made before the old one is killed, so the tmux server (which exits
# with its last session) is never caught shutting down.
start() {
    old=$CUR
    NSESS=$((NSESS + 1))
    CUR="v$NSESS"
    T new-session -d -s "$CUR" -x 80 -y 24 \
        "cd $TMP; sh -c 'echo \$\$ >$TMP/pid; exec $*'; echo EXIT=\$?; stty -a | grep -oE -- '(^| )-?(icanon|echo)( |\$)' | tr -d ' ' | tr '\\n' ' '; echo; sleep 60"
    [ -n "$old" ] && T kill-session -t "$old" 2>/dev/null
    return 0
}

DB=$(newdb t) && LDB=$(newdb live) && PDB=$(newdb plain) ||
    { echo "cannot make the databases"; echo "0 passed, 1 failed"; exit 1; }
for f in ok_run failed_run crash_resumed; do
    "$FILL" "$DB" "$FIX/$f.jsonl" >/dev/null || { echo "trace_fixture failed"; echo "0 passed, 1 failed"; exit 1; }
done
ENV="env LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=screen-256color TMPDIR=$TMP"

# ---- list screen --------------------------------------------------------------------
start "$ENV $AGENTD trace --db $DB"
check "list shows the runs" wait_for "5f3a9c12 "
shot list
check "list has the three runs (ids shortened at 80 columns)" sh -c "[ \$(tmux -L $SOCK capture-pane -p -t $CUR | grep -cE '^[> ][ *][0-9a-f]{8} ') -eq 3 ]"
check "list shows state and key hints" sh -c "tmux -L $SOCK capture-pane -p -t $CUR | grep -q 'failed' && tmux -L $SOCK capture-pane -p -t $CUR | grep -qF 'q quit'"
keys f f f
check "filter by state: failed" wait_for "1 shown / 3"
check "filter hides other runs" not_on_screen "0c41d2e8a9b3f577"
shot list-filter-failed
keys f f f
check "filter back to all" wait_for "3 shown / 3"
keys s
check "sort by duration" wait_for "sort: duration"
check "longest run first" sh -c "tmux -L $SOCK capture-pane -p -t $CUR | sed -n 3p | grep -q 77aa00bb"
keys s s s s s
check "sort back to newest" wait_for "sort: newest"

# ---- resize --------------------------------------------------------------------------
T resize-window -t "$CUR" -x 130 -y 30
check "resize: wider layout shows whole ids and steps" wait_for "5f3a9c12e4b0d7a1"
check "resize: steps column" on_screen "steps"
shot list-110x30
T resize-window -t "$CUR" -x 190 -y 30
check "resize: widest layout shows start times" wait_for "started"
T resize-window -t "$CUR" -x 80 -y 24
check "resize back to 80x24" wait_gone "5f3a9c12e4b0d7a1"
check "hints intact at 80 columns" wait_for "c compare q quit"

# ---- run view, next error, detail ----------------------------------------------------
keys / 5f3a Enter
keys Enter
check "run view opens with the span tree" wait_for "execute_tool lookup_order"
check "run view reports its open time" wait_for "opened 16 events"
check "timeline bars drawn" on_screen "████"
shot run
keys e
check "e jumps to the failing tool call" wait_for "error in execute_tool lookup_order"
check "selected row is the tool" sh -c "tmux -L $SOCK capture-pane -p -t $CUR | grep -q '^✗ │ ├─execute_tool lookup_order'"
keys Enter
check "detail shows status and error" wait_for "status ERROR"
check "detail shows the error text" on_screen "no such table: orders"
check "detail shows the tool arguments" on_screen '"order_id": "1042"'
check "detail shows the retry with its delay" on_screen "retry lookup_order  delay=250ms"
shot detail
keys / events Enter
check "search in detail finds the events section" wait_for "── events (2) ──"
shot detail-search
keys c
check "copy-friendly JSON of the span" wait_for '"span_id": "d000000000000001"'
shot detail-json
keys y
check "y saves the span JSON" wait_for "span JSON saved to $TMP/agentd-span-d000000000000001.json"
check "saved file holds the span" grep -q '"error": "lookup_order: orders.db: no such table: orders"' "$TMP/agentd-span-d000000000000001.json"
keys q
check "q returns to the run view" wait_for "⏎ detail"
keys / search_kb Enter
check "search in the run view" wait_for "call=call_2"
keys n
check "n finds the next match" wait_for "call=call_2"
keys q
check "q returns to the list" wait_for "c compare q quit"
keys q
check "q quits with status 0" wait_for "EXIT=0"
check "terminal modes restored" wait_for "icanon echo"
check "alternate screen left" not_on_screen "agentd trace — runs"
shot after-quit

# ---- NO_COLOR ------------------------------------------------------------------------
has_color() { T capture-pane -e -p -t $CUR | grep -qE '\[([0-9;]*;)?(3[0-7]|4[0-7])(;[0-9;]*)?m'; }
start "$ENV $AGENTD trace 5f3a --db $DB"
wait_for "execute_tool lookup_order" >/dev/null
check "colour by default" has_color
keys Q
start "$ENV NO_COLOR=1 $AGENTD trace 5f3a --db $DB"
wait_for "execute_tool lookup_order" >/dev/null
check "NO_COLOR: no colour sequences" sh -c "! tmux -L $SOCK capture-pane -e -p -t $CUR | grep -qE '\[([0-9;]*;)?(3[0-7]|4[0-7])(;[0-9;]*)?m'"
check "NO_COLOR: selection still visible (reverse video)" sh -c "tmux -L $SOCK capture-pane -e -p -t $CUR | grep -qE '\[([0-9]+;)*7m'"
keys Q

# ---- signals: the terminal is restored -----------------------------------------------
start "$ENV $AGENTD trace 5f3a --db $DB"
wait_for "execute_tool lookup_order" >/dev/null
kill -TERM "$(cat "$TMP/pid")"
check "SIGTERM: viewer exits" wait_for "EXIT=1"
check "SIGTERM: terminal modes restored" wait_for "icanon echo"
check "SIGTERM: screen restored" not_on_screen "execute_tool lookup_order"
start "$ENV ASAN_OPTIONS=handle_segv=0 $AGENTD trace 5f3a --db $DB"
wait_for "execute_tool lookup_order" >/dev/null
kill -SEGV "$(cat "$TMP/pid")"
check "crash: dies of the signal" wait_for "EXIT=139"
check "crash: terminal modes restored" wait_for "icanon echo"
check "crash: screen restored" not_on_screen "execute_tool lookup_order"
shot after-crash

# ---- a terminal ncurses cannot drive: one clear line, exit 2 --------------------------
start "env LANG=C.UTF-8 TERM=no-such-terminal $AGENTD trace 5f3a --db $DB"
check "unknown TERM: clear message" wait_for "cannot start the terminal UI (TERM=no-such-terminal); use --plain"
check "unknown TERM: exit 2" wait_for "EXIT=2"

# ---- follow mode while a run is being written ----------------------------------------
# The database exists (with another run) before the writer starts, so the reader polling
# for the run never races the writer's schema creation.
"$FILL" "$LDB" --gen 3 --run-id 0000000000000001 >/dev/null
"$FILL" "$LDB" "$FIX/failed_run.jsonl" --delay-ms 120 --now >/dev/null &
filler=$!
n=0
until "$AGENTD" runs --db "$LDB" 2>/dev/null | grep -q 5f3a9c12e4b0d7a1 || [ $n -gt 100 ]; do
    sleep 0.05
    n=$((n + 1))
done
start "$ENV $AGENTD trace 5f3a --follow --db $LDB"
check "follow: live run marked LIVE" wait_for "LIVE"
check "follow: open spans shown while running" wait_for "…"
wait_for "execute_tool search_kb" >/dev/null
shot follow-live
check "follow: new spans appear as they commit" wait_for "observe"
check "follow: sees the run end" wait_for "run ended: failed"
check "follow: all spans present" on_screen "chat gpt-4o-mini ↻"
shot follow-ended
wait "$filler"
keys q

# ---- plain follow while a run is being written ---------------------------------------
"$FILL" "$PDB" --gen 3 --run-id 0000000000000001 >/dev/null
"$FILL" "$PDB" "$FIX/failed_run.jsonl" --delay-ms 60 --now >/dev/null &
filler=$!
n=0
until "$AGENTD" runs --db "$PDB" 2>/dev/null | grep -q 5f3a9c12e4b0d7a1 || [ $n -gt 100 ]; do
    sleep 0.05
    n=$((n + 1))
done
"$AGENTD" trace 5f3a --follow --db "$PDB" >"$TMP/follow.txt" 2>&1
rc=$?
wait "$filler"
check "plain follow prints every event" sh -c "[ \$(grep -c '^+' $TMP/follow.txt) -eq 16 ]"
check "plain follow exits 1 for a failed run" [ "$rc" -eq 1 ]
check "plain follow shows the failing tool" grep -q "end   execute_tool lookup_order         ERROR" "$TMP/follow.txt"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
