#!/bin/sh
# The trace viewer answering a user's first questions (issue 19, item 6), driven under
# tmux on real runs: the runs list shows each run's input and answer and `/` finds them;
# filters by agent and model; errors and retries counted apart (a retry that later
# succeeded is no error); a denied approval counted and reached with `e`; two runs
# compared side by side (interactive and `agentd trace compare`); per-span tokens and cost.
set -u
: "${AGENTD:?}" "${BUILD:?}"
. tests/integration/lib.sh
FIX=tests/fixtures/traces
if ! command -v tmux >/dev/null 2>&1; then
    echo "tmux is not installed (scripts/deps.sh installs it)"
    echo "0 passed, 1 failed"
    exit 1
fi
SOCK="agentd-vruns-$$"
SHOTS="$BUILD/viewer-screens"
mkdir -p "$SHOTS"
T() { tmux -L "$SOCK" -f /dev/null "$@"; }
trap 'T kill-server 2>/dev/null; rm -rf "$TMP"; [ -n "${FAKE_PID:-}" ] && kill "$FAKE_PID" 2>/dev/null' EXIT
case "$BUILD" in *asan*) WAIT=150 ;; *) WAIT=50 ;; esac
screen() { T capture-pane -p -t v 2>/dev/null; }
wait_for() {
    n=0
    while [ $n -lt "$WAIT" ]; do
        screen | grep -qF -- "$1" && return 0
        sleep 0.1
        n=$((n + 1))
    done
    return 1
}
tcheck() { # like check, but shows the screen on failure
    name=$1
    shift
    if "$@"; then ok "$name"; else fail "$name" "$(screen | sed 's/^/    | /')"; fi
}
keys() { T send-keys -t v "$@"; sleep 0.15; }

DB=$(newdb r) && SUB=$(newdb sub) || { fail "new databases" "r sub"; finish; exit 1; }
TR="$TMP/tr" # (a PostgreSQL store's default is ./traces)
export AGENTD_RETRY_BASE_MS=10 AGENTD_RETRY_CAP_MS=50
unset AGENTD_CACHE
# Run A: the offline model. Run B: the same agent on an OpenAI-compatible server.
"$AGENTD" run agents/support.lua "Where is my order 1042?" --db "$DB" --traces "$TR" --tools tools -q >/dev/null 2>&1
idA=$(dbq "$DB" "SELECT id FROM runs ORDER BY created_ns DESC LIMIT 1")
cat >"$TMP/script.json" <<'JSON'
[{"tool_calls":[{"name":"lookup_order","arguments":{"order_id":"1042"}}]},
 {"text":"Order 1042 shipped on Monday and arrives tomorrow."}]
JSON
start_fake --script "$TMP/script.json" || fail "fakellm starts" "$(cat "$TMP/fake.log")"
OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" OPENAI_API_KEY=k \
    "$AGENTD" run agents/support.lua "Where is my order 1042?" --model openai:any --db "$DB" \
    --traces "$TR" --tools tools -q >/dev/null 2>&1
idB=$(dbq "$DB" "SELECT id FROM runs ORDER BY created_ns DESC LIMIT 1")
stop_fake
# Run C: an approval the operator denies.
AG=tests/fixtures/agents/support_approval.lua
"$AGENTD" run $AG "Please open a ticket: order 1042 arrived damaged" --db "$DB" --traces "$TR" --tools tools >/dev/null 2>&1
idC=$(dbq "$DB" "SELECT id FROM runs ORDER BY created_ns DESC LIMIT 1")
call=$(dbq "$DB" "SELECT call_id FROM tool_calls WHERE run_id='$idC' AND state='awaiting_approval'")
"$AGENTD" deny "$idC" "$call" --reason "photos first" --db "$DB" --traces "$TR" --tools tools >/dev/null 2>&1
# And the failed fixture run: two retries, one of which (the model call's) later succeeded.
"$BUILD/trace_fixture" "$DB" "$FIX/failed_run.jsonl" >/dev/null
# A run of an agent whose name is longer than the list's column.
sed 's/"support"/"travel_assistant_eu"/g; s/invoke_agent support/invoke_agent travel_assistant_eu/' \
    "$FIX/ok_run.jsonl" >"$TMP/travel.jsonl"
"$BUILD/trace_fixture" "$DB" "$TMP/travel.jsonl" >/dev/null
[ -n "$idA" ] && [ "$idA" != "$idB" ] && [ "$idB" != "$idC" ] && ok "five runs recorded" \
    || fail "five runs recorded" "$idA $idB $idC"

# ---- plain forms ----------------------------------------------------------------------
"$AGENTD" trace 5f3a --db "$DB" >"$TMP/plain" 2>&1
check "plain tree: errors and retries apart" grep -q "errors 2  retries 2" "$TMP/plain"
"$AGENTD" trace "$idC" --db "$DB" >"$TMP/plainC" 2>&1
check "plain tree: the denied approval is a failed span in the act state" \
    grep -qE "[├└]─ guardrail denied .* ERROR +error: denied by operator: photos first" "$TMP/plainC"
COLUMNS=140 "$AGENTD" trace compare "$idA" "$idB" --db "$DB" >"$TMP/cmp" 2>&1
rc=$?
check "compare: exit 0" [ "$rc" -eq 0 ]
check "compare: the models differ, marked" grep -qE "^≠ model +offline +│ openai:any" "$TMP/cmp"
check "compare: the same prompt (file and hash), not marked" grep -qE "^  prompt +support.md [0-9a-f]{12} +│ support.md [0-9a-f]{12}$" "$TMP/cmp"
check "compare: same input, not marked" grep -qE "^  input +Where is my order 1042\? +│ Where is my order 1042\?" "$TMP/cmp"
check "compare: answers side by side" grep -q "│ Order 1042 shipped on Monday and arrives tomorrow." "$TMP/cmp"
check "compare: turn by turn, tools included" grep -qE "✓ lookup_order \{\"order_id\":\"1042\"\} +│ +✓ lookup_order" "$TMP/cmp"
LANG=C LC_ALL=C COLUMNS=140 "$AGENTD" trace compare "$idA" "$idB" --db "$DB" >"$TMP/cmpa" 2>&1
check "compare: ASCII marks where the locale is not UTF-8" \
    sh -c "grep -qE '^! model +offline +\| openai:any' $TMP/cmpa && ! grep -q '│' $TMP/cmpa"
# A run that delegated to a sub-agent: the sub-agent's calls stay in the turn that
# started them, named (its own database, so the list below stays as it is).
"$AGENTD" run agents/support.lua "I think I was charged twice for order 1042, can you check the invoice?" \
    --db "$SUB" --traces "$TR" --tools tools -q >/dev/null 2>&1
idS=$(dbq "$SUB" "SELECT id FROM runs WHERE agent='support'")
idS2=$(dbq "$SUB" "SELECT id FROM runs WHERE agent='billing'")
COLUMNS=160 "$AGENTD" trace compare "$idS" "$idS2" --db "$SUB" >"$TMP/cmps" 2>&1
check "compare: a sub-agent's calls inside the turn that delegated" \
    sh -c "sed -n '/turn 1/,/turn 2/p' $TMP/cmps | grep -q 'billing:   ✓ lookup_invoice'"
"$AGENTD" trace compare "$idA" --db "$DB" >"$TMP/out" 2>&1
rc=$?
check "compare: one run is a usage error" sh -c "[ $rc -eq 2 ] && grep -q 'usage: agentd trace compare RUN_A RUN_B' $TMP/out"

# ---- the runs list ---------------------------------------------------------------------
T new-session -d -s v -x 160 -y 30 "env LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=screen-256color $AGENTD trace --db $DB; sleep 30"
tcheck "list: input and answer of each run" wait_for "Where is my order 1042? → Order 1042 shipped on Monday"
tcheck "list: the offline run's answer too, its lines joined" wait_for "Where is my order 1042? → Here is what I found. Lookup order (order ID 1042)"
tcheck "list: a failed run shows its error as the outcome" wait_for "→ max_steps: run stopped after 2 steps"
tcheck "list: errors and retries columns (2 errors, 2 retries)" sh -c "T() { tmux -L $SOCK \"\$@\"; }; T capture-pane -p -t v | grep -E '^  5f3a9c12e4b0d7a1 ' | grep -qE ' 2 +2 +Where is my order'"
tcheck "list: a long agent name ends in … rather than being cut silently" wait_for " travel_as… "
tcheck "list: the denied approval counts as an error" sh -c "tmux -L $SOCK capture-pane -p -t v | grep -E '^[> ][ *]$idC ' | grep -qE ' 0\.000000 +[1-9] +[0-9]+ +Please open a ticket'"
T capture-pane -p -t v >"$SHOTS/runs-list.txt"
keys / "shipped on Monday" Enter
tcheck "/ finds a run by its answer" wait_for "[openai:any]"
tcheck "/ selected that run" sh -c "tmux -L $SOCK capture-pane -p -t v | grep -q '^> $idB '"
keys / "operator: photos first" Enter
tcheck "/ finds words deep in an answer" sh -c "tmux -L $SOCK capture-pane -p -t v | grep -q '^> $idC '"
keys m
tcheck "m: filter by model (first model in the list)" wait_for "model: "
keys m
tcheck "m cycles to the OpenAI model" wait_for "model: openai:any"
tcheck "model filter: one run shown" wait_for "1 shown / 5"
keys m
tcheck "m back to any model" wait_for "5 shown / 5"
keys a
tcheck "a: filter by agent" wait_for "agent: support"
keys a
tcheck "a: the next agent" wait_for "agent: travel_assistant_eu"
tcheck "agent filter: one run shown" wait_for "1 shown / 5"
keys a
tcheck "a back to any agent" wait_for "agent: any"
# Compare: mark A, select B, c.
keys g
keys / "$idA" Enter
keys Space
tcheck "space marks a run" wait_for "marked $(echo "$idA" | cut -c1-16)"
keys / "$idB" Enter
keys c
tcheck "c opens the comparison" wait_for "compare $idA ↔ $idB"
tcheck "compare screen: model row marked" wait_for "≠ model"
keys / "turn 2" Enter
tcheck "compare screen: / scrolls to the trajectory" wait_for "≠ turn 2"
T capture-pane -p -t v >"$SHOTS/compare.txt"
keys q
tcheck "q back to the list" wait_for "c compare q quit"
# The denied approval: counted in the run view header, reached with e.
keys / "$idC" Enter
keys Enter
tcheck "run view: the denial counts as an error" wait_for "1 err 0 retried"
keys g e
tcheck "e reaches the denied approval" wait_for "error in guardrail denied: denied by operator: photos first"
T capture-pane -p -t v >"$SHOTS/run-denied.txt"
keys q
# Per-span tokens and cost, and retries not marked as errors, in the failed fixture run.
keys / 5f3a9c12 Enter
keys Enter
tcheck "run view: errors and retries apart" wait_for "2 err 2 retried"
tcheck "run view: a chat span's own tokens and cost" sh -c "tmux -L $SOCK capture-pane -p -t v | grep -E 'chat gpt-4o-mini ' | head -1 | grep -qE ' 876 +0\.000160 '"
tcheck "run view: the failed retry is marked ↻, not ✗" sh -c "tmux -L $SOCK capture-pane -p -t v | grep -qE '^↻ .*retry lookup_order'"
keys e e
tcheck "e skips retries: from the tool to the failed plan" wait_for "error in plan"
T capture-pane -p -t v >"$SHOTS/run-retries.txt"
keys g Enter
tcheck "detail: what the model calls below a span used" wait_for 'model calls below: 2037 tokens, $0.000360'
keys Q
finish
