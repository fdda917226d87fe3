#!/bin/sh
# Runs every unit test binary and every integration script, once per build directory
# given (release, then ASan+UBSan). Each test program ends with "N passed, N failed";
# this adds them up and ends with the same line for the whole suite.
# Integration scripts get AGENTD (the binary) and BUILD (its build dir) in the environment.
set -u
cd "$(dirname "$0")/.."
total_pass=0
total_fail=0
failed_names=""
for build in "$@"; do
    label=$(basename "$build")
    for t in "$build"/tests/test_* tests/integration/*.sh; do
        [ -e "$t" ] || continue
        case "$(basename "$t")" in lib*.sh | *.d) continue ;; esac
        name="$label/$(basename "$t")"
        log="$build/logs/$(basename "$t").log"
        mkdir -p "$build/logs"
        start=$(date +%s)
        # pg_suite.sh runs a list of scripts (each under its own 900 s) on PostgreSQL
        limit=900
        [ "$(basename "$t")" = pg_suite.sh ] && limit=3600
        AGENTD="$PWD/$build/agentd" BUILD="$PWD/$build" ASAN_OPTIONS=detect_leaks=1 \
            timeout $limit "$t" >"$log" 2>&1
        rc=$?
        secs=$(( $(date +%s) - start ))
        line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
        if [ -n "$line" ]; then
            p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
            f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
        else
            p=0
            f=1
        fi
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
        total_pass=$((total_pass + p))
        total_fail=$((total_fail + f))
        if [ "$f" -ne 0 ]; then
            failed_names="$failed_names $name"
            echo "FAIL $name ($p passed, $f failed, rc=$rc, ${secs}s) — log: $log"
            grep -E '^FAIL|check failed|expected|ERROR|error:' "$log" | head -n 20 | sed 's/^/    /'
        else
            echo "ok   $name ($p passed, ${secs}s)"
        fi
    done
done
[ -n "$failed_names" ] && echo "failed:$failed_names"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
