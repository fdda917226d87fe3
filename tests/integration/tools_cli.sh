#!/bin/sh
# agentd tools list / check / call and agentd new tool, driven through the real binary.
# Needs $AGENTD; runs from the repository root (tests/run.sh does that).
set -u
: "${AGENTD:?set AGENTD to the agentd binary}"
. tests/integration/lib.sh # $TMP (removed at exit) and newdb; this script counts its own checks
pass=0
fail=0
tmp=$TMP

ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -f "$tmp/out" ] && sed 's/^/    /' "$tmp/out" | head -n 20; }

# run NAME EXPECTED_RC CMD... : stdout+stderr in $tmp/out
run() {
    name=$1 want=$2
    shift 2
    timeout 30 "$@" >"$tmp/out" 2>&1
    rc=$?
    if [ "$rc" -ne "$want" ]; then
        bad "$name (exit $rc, expected $want)"
        return 1
    fi
    return 0
}
has() { grep -qF -- "$1" "$tmp/out"; }

# list
if run "list" 0 "$AGENTD" tools list && has calculator && has current_time && has http_get \
    && has lookup_order && has search_kb && has create_ticket; then ok "tools list"; else bad "tools list"; fi
if run "list --json" 0 "$AGENTD" tools list --json && has '"name": "calculator"' \
    && has '"parameters": {' && has '"idempotent": true' && has '"approval":'; then
    ok "tools list --json"
else
    bad "tools list --json"
fi

# check
if run "check" 0 "$AGENTD" tools check && has " ok, 0 failed" && has "ok   tools/calculator.lua"; then
    ok "tools check (repo tools)"
else
    bad "tools check (repo tools)"
fi
if run "check bad" 1 "$AGENTD" tools check tests/fixtures/tools/bad/typo_field.lua \
    tests/fixtures/tools/bad/no_description.lua tests/fixtures/tools/bad/syntax.lua tools/calculator.lua \
    && has "FAIL tests/fixtures/tools/bad/typo_field.lua: timout: unknown field" \
    && has "FAIL tests/fixtures/tools/bad/no_description.lua: description: missing" \
    && has "FAIL tests/fixtures/tools/bad/syntax.lua:1:" && has "ok   tools/calculator.lua" \
    && has "1 ok, 3 failed"; then ok "tools check names file and field"; else bad "tools check names file and field"; fi

# call
if run "call calculator" 0 "$AGENTD" tools call calculator '{"expression":"(113.00 - 24.00) * 0.15"}' \
    && has '"result": 13.35' && has "calculator · ok"; then ok "tools call calculator"; else bad "tools call calculator"; fi
if run "call rejected" 1 "$AGENTD" tools call calculator '{"expr":"1+1"}' && has "rejected: invalid arguments"; then
    ok "tools call: schema violation is rejected with the validator's message"
else
    bad "tools call: schema violation is rejected with the validator's message"
fi
if run "call bad json" 1 "$AGENTD" tools call calculator '{"expression":' && has "not valid JSON"; then
    ok "tools call: malformed JSON is rejected"
else
    bad "tools call: malformed JSON is rejected"
fi
if run "call lua error" 1 "$AGENTD" tools call calculator '{"expression":"1/0"}' \
    && has "error: division by zero"; then ok "tools call: a tool error is reported"; else bad "tools call: a tool error is reported"; fi
if run "call lookup_order" 0 "$AGENTD" tools call lookup_order '{"order_id":"1042"}' \
    && has '"order_id": "1042"' && has "[info] order 1042"; then ok "tools call lookup_order (ctx.data, ctx.log)"; else bad "tools call lookup_order (ctx.data, ctx.log)"; fi
if echo '{"expression":"6*7"}' | timeout 30 "$AGENTD" tools call calculator - >"$tmp/out" 2>&1 \
    && has '"result": 42'; then ok "tools call: arguments from stdin"; else bad "tools call: arguments from stdin"; fi
if run "unknown tool" 2 "$AGENTD" tools call nope '{}' && has 'no tool named "nope"'; then ok "tools call: unknown tool"; else bad "tools call: unknown tool"; fi

# hostile tool through the CLI: clear error, non-zero exit, no crash
if run "hostile" 1 "$AGENTD" tools call spin '{}' --tools tests/fixtures/tools/hostile \
    && has "CPU budget of" ; then ok "tools call: endless loop stopped by the CPU budget"; else bad "tools call: endless loop stopped by the CPU budget"; fi

# timing of the parallel-friendly sleeper and a timeout
if run "sleeper" 0 "$AGENTD" tools call sleeper '{"ms":50}' --tools tests/fixtures/tools/good \
    && has '"slept_ms"'; then ok "tools call with --tools"; else bad "tools call with --tools"; fi
if run "timeout" 1 "$AGENTD" tools call slow '{}' --tools tests/fixtures/tools/good \
    && has "timeout: timed out after 0.2 s"; then ok "tools call: timeout"; else bad "tools call: timeout"; fi

# ctx.kv with --db, ctx.exec with --allow-exec, ctx.secret with --allow-secret
mkdir -p "$tmp/t"
cat >"$tmp/t/counter.lua" <<'LUA'
return {
  name = "counter", description = "Count calls in ctx.kv and echo through cat.",
  parameters = { type = "object" },
  run = function(args, ctx)
    local n = (ctx.kv.get("n") or 0) + 1
    ctx.kv.put("n", n)
    local r = assert(ctx.exec{ argv = { "cat" }, stdin = "n=" .. n })
    local s = ctx.secret("AGENTD_CLI_SECRET")
    return { n = n, out = r.stdout, secret = s }
  end,
}
LUA
AGENTD_CLI_SECRET=hunter2-secret; export AGENTD_CLI_SECRET
KV=$(newdb kv) || { bad "new database kv"; exit 1; }
run "kv 1" 0 "$AGENTD" tools call counter '{}' --tools "$tmp/t" --db "$KV" \
    --allow-exec cat --allow-secret AGENTD_CLI_SECRET
if run "kv 2" 0 "$AGENTD" tools call counter '{}' --tools "$tmp/t" --db "$KV" \
    --allow-exec cat --allow-secret AGENTD_CLI_SECRET \
    && has '"n": 2' && has '"out": "n=2"' && has '"secret": "[REDACTED]"' && ! has hunter2; then
    ok "ctx.kv persists across calls; ctx.exec; secrets redacted from results"
else
    bad "ctx.kv persists across calls; ctx.exec; secrets redacted from results"
fi
if run "exec denied" 1 "$AGENTD" tools call counter '{}' --tools "$tmp/t" --db "$KV" \
    && has "'cat' is not in this agent's exec_allow list"; then ok "ctx.exec allow-list"; else bad "ctx.exec allow-list"; fi

# new tool
mkdir -p "$tmp/proj"
if (cd "$tmp/proj" && run "new tool" 0 "$AGENTD" new tool word_count) && [ -f "$tmp/proj/tools/word_count.lua" ]; then
    ok "new tool writes tools/NAME.lua"
else
    bad "new tool writes tools/NAME.lua"
fi
if (cd "$tmp/proj" && run "new check" 0 "$AGENTD" tools check && has "ok   tools/word_count.lua"); then
    ok "the skeleton passes tools check"
else
    bad "the skeleton passes tools check"
fi
if (cd "$tmp/proj" && run "new call" 0 "$AGENTD" tools call word_count '{"text":"hello"}' && has '"length": 5'); then
    ok "the skeleton runs"
else
    bad "the skeleton runs"
fi
if (cd "$tmp/proj" && run "new again" 2 "$AGENTD" new tool word_count && has "already exists"); then
    ok "new tool refuses to overwrite"
else
    bad "new tool refuses to overwrite"
fi
if run "new bad name" 2 "$AGENTD" new tool 'bad name!' && has "NAME must be"; then ok "new tool checks the name"; else bad "new tool checks the name"; fi

# Tool authoring (issue: first hour): formats asserted by default with a per-tool opt-out,
# ctx.url, required parameters marked, every problem of a file at once.
mkdir -p "$tmp/auth"
cat >"$tmp/auth/book.lua" <<'LUA'
return { name = "book", description = "Book a trip on a date.",
  parameters = { type = "object", required = { "day" },
    properties = { day = { type = "string", format = "date" }, note = { type = "string" } } },
  run = function(args, ctx)
    return { url = ctx.url("https://api.example.com/v1/trips", { day = args.day, q = "a&b c", tag = { "x", "é" } }) }
  end }
LUA
sed -e 's/name = "book"/name = "book_loose", assert_formats = false/' "$tmp/auth/book.lua" >"$tmp/auth/book_loose.lua"
if run "format asserted" 1 "$AGENTD" tools call book '{"day":"next friday"}' --tools "$tmp/auth" &&
    has "/day: must be a valid date"; then ok "format: date is asserted for tool arguments"; else bad "format: date is asserted for tool arguments"; fi
if run "format opt-out" 0 "$AGENTD" tools call book_loose '{"day":"next friday"}' --tools "$tmp/auth"; then
    ok "assert_formats = false lets a tool take free text"; else bad "assert_formats = false lets a tool take free text"; fi
if run "ctx.url" 0 "$AGENTD" tools call book '{"day":"2026-12-20"}' --tools "$tmp/auth" &&
    has 'https://api.example.com/v1/trips?day=2026-12-20&q=a%26b%20c&tag=x&tag=%C3%A9'; then
    ok "ctx.url encodes a query table (sorted keys, lists repeat)"; else bad "ctx.url encodes a query table (sorted keys, lists repeat)"; fi
if run "list required" 0 "$AGENTD" tools list --tools "$tmp/auth" && has "* day: string (date)  required" &&
    has "- note: string"; then ok "tools list marks required parameters and formats"; else bad "tools list marks required parameters and formats"; fi
cat >"$tmp/auth/broken.lua" <<'LUA'
return { name = "bad tool", parameters = { type = "array" }, timeout = -1, colour = "red" }
LUA
if run "check all problems" 1 "$AGENTD" tools check "$tmp/auth/broken.lua" && has "6 problems" &&
    has "colour: unknown field" && has "run: missing" && has "name: must be" &&
    has "parameters.type: must be" && has "timeout: must be"; then
    ok "tools check reports every problem of a file at once"; else bad "tools check reports every problem of a file at once"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
