#!/bin/sh
# A full disk: the database lives on a 1.5 MB tmpfs (room for the support agent's knowledge
# base, indexed first); a batch fills it. Every run that hit
# the error stops with one line saying so, the batch stops starting new runs and exits 4,
# nothing committed is lost (integrity_check ok, traces gap-free), and after space is freed
# `agentd resume --all` finishes the runs that were created.
# Needs permission to mount a tmpfs (root in CI); without it the test says so and skips.
. tests/integration/lib.sh
MNT="$TMP/small"
mkdir -p "$MNT"
if ! mount -t tmpfs -o size=1500k tmpfs "$MNT" 2>/dev/null; then
    echo "skipped: cannot mount a tmpfs here (needs root)"
    echo "0 passed, 0 failed"
    exit 0
fi
trap 'umount "$MNT" 2>/dev/null; rm -rf "$TMP"' EXIT
i=0; while [ $i -lt 200 ]; do echo "\"Where is order 10$((i % 20 + 40))?\""; i=$((i + 1)); done >"$TMP/in.jsonl"
"$AGENTD" batch agents/support.lua "$TMP/in.jsonl" --concurrency 4 --db "$MNT/f.db" \
    --traces "$MNT/tr" >"$TMP/out" 2>"$TMP/err"; rc=$?
[ $rc -eq 4 ] && ok "batch exits 4 on a full disk" || fail "exit 4" "rc=$rc $(cat "$TMP/out" "$TMP/err")"
grep -q "database or disk is full" "$TMP/err" && ok "the error is named" || fail "error named" "$(cat "$TMP/err")"
n=$(wc -l <"$TMP/err")
[ "$n" -le 8 ] && ok "one line per run in flight ($n), no flood" || fail "no flood" "$n lines"
grep -q "inputs were not started" "$TMP/out" && ok "new runs stop, the summary says so" || fail "summary" "$(cat "$TMP/out")"
[ "$(sqlite3 "$MNT/f.db" "PRAGMA integrity_check")" = ok ] && ok "integrity_check ok" || fail "integrity" ""
mount -o remount,size=20M "$MNT"
"$AGENTD" resume --all --db "$MNT/f.db" --traces "$MNT/tr" >"$TMP/r" 2>&1; rc=$?
left=$(sqlite3 "$MNT/f.db" "SELECT count(*) FROM runs WHERE state <> 'done'")
[ $rc -eq 0 ] && [ "$left" = 0 ] && ok "after freeing space resume --all finishes them ($(head -1 "$TMP/r"))" \
    || fail "resume after full disk" "rc=$rc left=$left $(cat "$TMP/r")"
gaps=$(sqlite3 "$MNT/f.db" "SELECT count(*) FROM (SELECT run_id, count(*) c, max(seq) m FROM events GROUP BY run_id) WHERE c <> m")
[ "$gaps" = 0 ] && ok "traces gap-free" || fail "traces gap-free" "$gaps"
finish
