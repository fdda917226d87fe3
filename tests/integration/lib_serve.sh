# Helpers for the `agentd serve` tests (sourced after lib.sh; not a test itself).
# start_serve LOG ARGS...: start agentd serve on a free loopback port; sets SRV_PID, BASE.
start_serve() {
    log=$1; shift
    SRV_LOG=$log
    rm -f "$TMP/srv.port"
    "$AGENTD" serve --listen 127.0.0.1:0 --port-file "$TMP/srv.port" "$@" >"$log" 2>&1 &
    SRV_PID=$!
    for _ in $(seq 1 200); do
        [ -s "$TMP/srv.port" ] && break
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.05
    done
    BASE="http://127.0.0.1:$(cat "$TMP/srv.port" 2>/dev/null)"
    [ -s "$TMP/srv.port" ]
}
# stop_serve: SIGTERM, wait (bounded); the exit code in SRV_RC ("hung" if killed). Any exit
# but 0 (a crash, a sanitizer report) is a failed check.
stop_serve() {
    kill -TERM "$SRV_PID" 2>/dev/null
    for _ in $(seq 1 200); do
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$SRV_PID" 2>/dev/null; then
        kill -9 "$SRV_PID"
        wait "$SRV_PID" 2>/dev/null
        SRV_RC=hung
        fail "agentd serve stops on SIGTERM" "killed after 10 s"
        return
    fi
    wait "$SRV_PID"
    SRV_RC=$?
    [ "$SRV_RC" = 0 ] || fail "agentd serve exits 0" "rc=$SRV_RC $(tail -n 20 "$SRV_LOG")"
}
# req METHOD PATH [curl args...]: the status code on stdout, the body in $TMP/body, the
# headers in $TMP/hdr. Never waits more than 10 s.
req() {
    m=$1; p=$2; shift 2
    curl -s --max-time 10 -D "$TMP/hdr" -o "$TMP/body" -w '%{http_code}' -X "$m" "$BASE$p" "$@"
}
# jb EXPR: jq on the last body.
jb() { jq -r "$1" "$TMP/body" 2>/dev/null; }
# is_err STATUS: the last reply has that status and a JSON {error:{type,message}} body.
is_err() {
    [ "$1" = "$2" ] && [ -n "$(jb '.error.type // empty')" ] && [ -n "$(jb '.error.message // empty')" ]
}
