#!/bin/sh
# Allocation-failure torture: runs representative scenarios once to count their allocations,
# then again failing allocation N (AGENTD_FAIL_ALLOC=N, see runtime/mem.h) for every N, or
# for a sample of them, and checks each outcome:
#   - no crash, no sanitizer report (run it with an ASan+UBSan binary to catch leaks too);
#   - exit 0, or a documented failure code with a one-line reason on stderr;
#   - the database passes PRAGMA integrity_check;
#   - the work is not lost: a run left unfinished completes with `agentd resume` (no
#     failure injected), and a run the failure stopped says why in the runs table.
# Scenarios: run (a support run with a tool), resume (approving a waiting call resumes the
# run), schema (`tools check` compiles every tool's schema), http (a run against the fake
# model provider over HTTP).
#
# usage: scripts/alloc-torture.sh [--sites | --sample K | --all] [--scenario NAME]
#   --sites      fail the first allocation at each distinct call site the scenario reaches,
#                one site per process (AGENTD_FAIL_ALLOC_SITE; the default; make test)
#   --sample K   fail the first 10 allocations and K more spread evenly over the rest
#   --all        fail every allocation in turn (long: tens of thousands of processes)
# Environment: ALLOC_TORTURE_JOBS (injections run at once, default 2), AGENTD (binary, default build/asan/agentd when built, else ./agentd), BUILD
# (its build folder, for the fake provider). Ends with "N passed, N failed" and a line
# "sites: S distinct allocation sites failed across T injections".
set -u
cd "$(dirname "$0")/.." || exit 2
MODE=sites
SAMPLE=0
JOBS=${ALLOC_TORTURE_JOBS:-2}
ONLY=
while [ $# -gt 0 ]; do
    case $1 in
    --sites) MODE=sites; shift ;;
    --all) MODE=all; shift ;;
    --sample) MODE=sample SAMPLE=$2; shift 2 ;;
    --scenario) ONLY=$2; shift 2 ;;
    --binary) AGENTD=$2; shift 2 ;;
    *) echo "alloc-torture: unknown option $1" >&2; exit 2 ;;
    esac
done
if [ -z "${AGENTD:-}" ]; then
    if [ -x build/asan/agentd ]; then AGENTD=$PWD/build/asan/agentd; else AGENTD=$PWD/agentd; fi
fi
: "${BUILD:=$(dirname "$AGENTD")}"
[ -x "$BUILD/fakellm" ] || BUILD=$PWD/build/release
TMP=$(mktemp -d /tmp/agentd-alloc.XXXXXX)
FAKE_PID=
trap 'rm -rf "$TMP"; [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null' EXIT
PASS=0
FAIL=0
export ASAN_OPTIONS="detect_leaks=1:exitcode=86:abort_on_error=0"
export UBSAN_OPTIONS="exitcode=87:print_stacktrace=1"
Q="Where is my order 1042? It hasn't arrived."

bad() { FAIL=$((FAIL + 1)); echo "FAIL $1"; [ -f "$2" ] && sed 's/^/    /' "$2" | head -n 12; }

# outcome SCEN N RC ERRFILE DB: checks one injected run; 0 when it held.
outcome() {
    scen=$1 n=$2 rc=$3 errf=$4 db=$5
    if [ "$rc" -ge 124 ] || grep -qE 'Sanitizer|runtime error:|AddressSanitizer' "$errf"; then
        bad "$scen n=$n: crashed or sanitizer report (rc=$rc)" "$errf"; return 1
    fi
    case $rc in 0 | 1 | 2 | 3 | 4) ;; *) bad "$scen n=$n: undocumented exit $rc" "$errf"; return 1 ;; esac
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ] && ! grep -q . "$errf" && ! grep -qiE 'fail|error' "$OUTF"; then
        bad "$scen n=$n: exit $rc with no reason on stderr" "$errf"; return 1
    fi
    if [ -f "$db" ]; then
        ic=$(sqlite3 "$db" "PRAGMA integrity_check" 2>&1)
        [ "$ic" = ok ] || { bad "$scen n=$n: database damaged: $ic" "$errf"; return 1; }
    fi
    return 0
}

# finish_runs SCEN N DB: every run in DB ends: unfinished ones complete with resume
# (nothing injected); failed ones carry a reason.
finish_runs() {
    scen=$1 n=$2 db=$3
    [ -f "$db" ] || return 0
    open=$(sqlite3 "$db" "SELECT count(*) FROM runs WHERE state NOT IN ('done','failed','cancelled','waiting')" 2>/dev/null)
    if [ "${open:-0}" -gt 0 ]; then
        env -u AGENTD_FAIL_ALLOC "$AGENTD" resume --all --db "$db" --traces "$TMP/tr.$n" --tools tools \
            $EXTRA >"$OUTF.resume" 2>&1
        left=$(sqlite3 "$db" "SELECT count(*) FROM runs WHERE state NOT IN ('done','failed','cancelled','waiting')")
        [ "$left" = 0 ] || { bad "$scen n=$n: $left run(s) left unfinished after resume" "$OUTF.resume"; return 1; }
    fi
    noreason=$(sqlite3 "$db" "SELECT count(*) FROM runs WHERE state='failed' AND coalesce(error,'')=''" 2>/dev/null)
    [ "${noreason:-0}" = 0 ] || { bad "$scen n=$n: failed run without a reason" ""; return 1; }
    return 0
}

# points TOTAL LOG: what to fail, one per line: an allocation number, or site:FILE:LINE.
points() {
    total=$1
    if [ "$MODE" = sites ]; then sed -n 's/^site \([^ ]*\) .*/site:\1/p' "$2"; return; fi
    if [ "$MODE" = all ] || [ "$total" -le $((SAMPLE + 10)) ]; then seq 1 "$total"; return; fi
    seq 1 10
    i=0
    while [ $i -lt "$SAMPLE" ]; do
        echo $((11 + (total - 11) * i / SAMPLE))
        i=$((i + 1))
    done
}

# worker K: the injections of every JOBS-th point (K, K+JOBS, ...), each in a fresh
# database; prints FAIL lines, leaves "held tried" in $TMP/res.K.
worker() {
    k=$1 held=0 tried=0 i=0
    OUTF=$TMP/out.$k ERRF=$TMP/err.$k
    for p in $(cat "$TMP/points"); do
        i=$((i + 1))
        [ $((i % JOBS)) -eq "$k" ] || continue
        DB=$TMP/$name.$i.db TR=$TMP/$name.$i.tr
        $prep
        fl=$TMP/fail.$k.log
        rm -f "$fl"
        case $p in
        site:*) at=${p#site:} nth= ;;
        *) at= nth=$p ;;
        esac
        T="timeout 60" AGENTD_FAIL_ALLOC=$nth AGENTD_FAIL_ALLOC_SITE=$at AGENTD_FAIL_ALLOC_LOG=$fl \
            $runf >"$OUTF" 2>"$ERRF"
        rc=$?
        T=
        tried=$((tried + 1))
        sed -n 's/^fail [0-9]* //p' "$fl" 2>/dev/null | head -n 1 >>"$TMP/sites.$k"
        if outcome "$name" "$p" "$rc" "$ERRF" "$DB" && finish_runs "$name" "$p" "$DB"; then
            held=$((held + 1))
        fi
        rm -rf "$DB" "$DB-wal" "$DB-shm" "$TR" "$TMP/tr.$p"
    done
    echo "$held $tried" >"$TMP/res.$k"
}

# scenario NAME PREPARE_FN RUN_FN: both see $DB and $TR, fresh per iteration; RUN_FN
# prefixes the binary with $T (a timeout while injecting). The points run JOBS at a time.
T=
OUTF=$TMP/out
scenario() {
    name=$1 prep=$2 runf=$3
    [ -n "$ONLY" ] && [ "$ONLY" != "$name" ] && return
    DB=$TMP/$name.count.db TR=$TMP/$name.count.tr
    $prep
    AGENTD_FAIL_ALLOC_LOG=$TMP/count.log $runf >"$OUTF" 2>"$TMP/err"
    rc=$?
    total=$(sed -n 's/^count //p' "$TMP/count.log" 2>/dev/null | tail -n 1)
    if { [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; } || [ -z "$total" ]; then
        bad "$name: the scenario fails without injection (rc=$rc)" "$TMP/err"; return
    fi
    points "$total" "$TMP/count.log" >"$TMP/points"
    rm -f "$TMP/count.log"
    k=0 pids=
    while [ $k -lt "$JOBS" ]; do
        worker "$k" >"$TMP/log.$k" 2>&1 &
        pids="$pids $!"
        k=$((k + 1))
    done
    # shellcheck disable=SC2086
    wait $pids # not a bare wait: the fake provider runs in the background too
    held=0 tried=0 k=0
    while [ $k -lt "$JOBS" ]; do
        cat "$TMP/log.$k"
        FAIL=$((FAIL + $(grep -c '^FAIL' "$TMP/log.$k")))
        read -r h t <"$TMP/res.$k"
        held=$((held + h)) tried=$((tried + t))
        k=$((k + 1))
    done
    PASS=$((PASS + held))
    echo "scenario $name: $total allocations at $(grep -c . "$TMP/points") points ($MODE); failed $tried in turn, one per process: $held held"
}

EXTRA=
prep_none() { :; }
run_support() { $T "$AGENTD" run agents/support.lua "$Q" --db "$DB" --traces "$TR" --tools tools -q; }
scenario run prep_none run_support

# resume: a run waiting for approval, made once; each iteration approves a copy of it.
AG=tests/fixtures/agents/support_approval.lua
AQ="Please open a ticket: order 1042 arrived damaged, the box was crushed."
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }
want resume && "$AGENTD" run $AG "$AQ" --db "$TMP/wait.db" --traces "$TMP/wait.tr" --tools tools -q >/dev/null 2>&1
RID=$(sqlite3 "$TMP/wait.db" "SELECT id FROM runs LIMIT 1" 2>/dev/null)
CALL=$(sqlite3 "$TMP/wait.db" "SELECT call_id FROM tool_calls WHERE state='awaiting_approval' LIMIT 1" 2>/dev/null)
prep_wait() { sqlite3 "$TMP/wait.db" ".backup '$DB'"; cp -r "$TMP/wait.tr" "$TR"; }
run_approve() { $T "$AGENTD" approve "$RID" "$CALL" --db "$DB" --traces "$TR" --tools tools -q; }
if ! want resume; then :; elif [ -n "$RID" ] && [ -n "$CALL" ]; then
    scenario resume prep_wait run_approve
else
    bad "resume: could not make a waiting run" ""
fi

# schema: every tool's schema compiled and checked.
run_check() { $T "$AGENTD" tools check --tools tools; }
scenario schema prep_none run_check

# http: a run whose model answers over HTTP (the fake provider, never injected itself).
if want http; then
rm -f "$TMP/fake.port"
printf '%s\n' '[{"tool_calls":[{"name":"lookup_order","arguments":{"order_id":"1042"}}]},{"text":"Your order 1042 is on its way."}]' >"$TMP/script.json"
env -u AGENTD_FAIL_ALLOC "$BUILD/fakellm" --port 0 --port-file "$TMP/fake.port" --script "$TMP/script.json" \
    >"$TMP/fake.log" 2>&1 &
FAKE_PID=$!
for _ in $(seq 1 100); do [ -s "$TMP/fake.port" ] && break; sleep 0.05; done
[ -s "$TMP/fake.port" ] || { bad "http: the fake provider $BUILD/fakellm did not start" "$TMP/fake.log"; }
export OPENAI_BASE_URL="http://127.0.0.1:$(cat "$TMP/fake.port")/v1" OPENAI_API_KEY=sk-fake-0123456789abcdef
export AGENTD_RETRY_BASE_MS=5 AGENTD_RETRY_CAP_MS=20
EXTRA="--model openai:any"
run_http() { $T "$AGENTD" run agents/support.lua "$Q" --model openai:any --db "$DB" --traces "$TR" --tools tools -q; }
scenario http prep_none run_http
kill "$FAKE_PID" 2>/dev/null
FAKE_PID=
fi

cat "$TMP"/sites.* >"$TMP/sites" 2>/dev/null
INJECTED=$(grep -c . "$TMP/sites")
distinct=$(sort -u "$TMP/sites" | wc -l)
echo "sites: $distinct distinct allocation sites failed across $INJECTED injections"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
