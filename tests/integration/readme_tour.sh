#!/bin/sh
# The README runs verbatim: every ```sh block of README.md (except those marked
# ```sh no-tour: other machines' servers, the make commands this suite runs under) is run,
# in order, in a fresh copy of the repository's tracked files with the binary under test as
# ./agentd, offline. `<run-id>` stands for the latest run. A block runs as one shell script
# (set -e), so a failing command fails its block; processes a block leaves in the
# background (servers) live until the tour ends.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
CO=$TMP/checkout
mkdir -p "$CO"
git ls-files -z | (cd "$PWD" && xargs -0 cp --parents -t "$CO") 2>"$TMP/cp.err" ||
    { fail "fresh copy of the tracked files" "$(cat "$TMP/cp.err")"; finish; exit 1; }
cp "$AGENTD" "$CO/agentd"
mkdir -p "$CO/build" "$PWD/build/npm" && ln -s "$PWD/build/npm" "$CO/build/npm" # npm cache only
python3 - README.md "$TMP/blocks" <<'PY'
import os, re, sys
text = open(sys.argv[1]).read()
out = sys.argv[2]
os.makedirs(out, exist_ok=True)
n = 0
for m in re.finditer(r"^```([^\n]*)\n(.*?)^```", text, re.S | re.M):
    info = m.group(1).split()
    if not info or info[0] != "sh" or "no-tour" in info[1:]:
        continue
    n += 1
    line = text[: m.start()].count("\n") + 1
    with open(os.path.join(out, "%02d.sh" % n), "w") as f:
        f.write("# README.md line %d\n" % line + m.group(2))
PY
nb=$(ls "$TMP/blocks" | wc -l)
[ "$nb" -ge 5 ] && ok "README has $nb tour blocks" || fail "README tour blocks" "found $nb"
PGIDS=
cleanup_bg() { for g in $PGIDS; do kill -- -"$g" 2>/dev/null; done; }
for b in "$TMP"/blocks/*.sh; do
    where=$(head -n 1 "$b" | sed 's/^# //')
    id=$(cd "$CO" && ./agentd runs --json --limit 1 2>/dev/null |
        python3 -c 'import json,sys
try: print(json.load(sys.stdin)[0]["id"])
except Exception: print("")')
    sed "s/<run-id>/$id/g" "$b" >"$b.run"
    # Its own session (process group), so what it leaves in the background can be stopped.
    (cd "$CO" && exec setsid sh -e "$b.run" \
        </dev/null >"$b.out" 2>&1) &
    pid=$!
    t=0
    while kill -0 "$pid" 2>/dev/null && [ $t -lt 1200 ]; do sleep 0.1; t=$((t + 1)); done
    if kill -0 "$pid" 2>/dev/null; then
        kill -- -"$pid" 2>/dev/null
        fail "$where runs" "did not finish within 120 s: $(tail -c 600 "$b.out")"
        continue
    fi
    wait "$pid"
    rc=$?
    PGIDS="$PGIDS $pid"
    if [ $rc -eq 0 ]; then ok "$where runs ($(grep -vc '^#' "$b") lines)"; else
        fail "$where runs" "rc=$rc: $(grep -v '^#' "$b" | head -n 3 | tr '\n' ';') -> $(tail -c 800 "$b.out")"
    fi
done
cleanup_bg
# What the first block promises: an answer, a run id and its trace file.
grep -q "Answer:" "$TMP/blocks/01.sh.out" && ok "the first run answers" || fail "the first run answers" "$(head -c 600 "$TMP/blocks/01.sh.out")"
n=$(ls "$CO"/traces/*.jsonl 2>/dev/null | wc -l)
[ "$n" -ge 1 ] && ok "trace files written where the README says ($n)" || fail "trace files" "none in traces/"
finish
