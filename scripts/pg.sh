#!/bin/sh
# A throwaway PostgreSQL cluster for tests, benchmarks and demos: no pre-existing server.
#
#   scripts/pg.sh start DIR   initdb a cluster in DIR (created; must not hold one already),
#                             start it on a free port of 127.0.0.1 and print its URL:
#                             postgres://agentd:PASSWORD@127.0.0.1:PORT/postgres
#   scripts/pg.sh url DIR     print the URL of the cluster running in DIR
#   scripts/pg.sh restart DIR restart the server (same port): tests of reconnection
#   scripts/pg.sh down DIR    stop the server, keeping DIR (an outage); up DIR starts it again
#   scripts/pg.sh stop DIR    stop the server and remove DIR
#
# The server runs as an unprivileged user (initdb refuses root): the caller, or when root the
# system user agentd-test, created once with useradd. The superuser `agentd` logs in over TCP
# with a random password (scram-sha-256), so every test goes through password auth; the Unix
# socket lives in DIR. AGENTD_PG_FSYNC=off turns fsync off (the unit tests: they check logic,
# not durability, and the CI machine has two cores); benchmarks keep the default, on.
# Binaries: $PG_BIN, else `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin
# (Debian's `postgresql` package, which scripts/deps.sh installs with AGENTD_DEPS_TEST=1).
set -eu

die() { echo "pg.sh: $*" >&2; exit 1; }

bindir() {
    if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
    d=$(pg_config --bindir 2>/dev/null || true)
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
    d=$(command -v initdb 2>/dev/null || true)
    [ -n "$d" ] || die "no initdb found: install Debian's postgresql (AGENTD_DEPS_TEST=1 scripts/deps.sh)"
    dirname "$d"
}

# Run a command as the cluster's owner.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u agentd-test -- "$@"
    else
        "$@"
    fi
}

owner_setup() {
    [ "$(id -u)" = 0 ] || return 0
    if ! id agentd-test >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin agentd-test 2>/dev/null ||
            id agentd-test >/dev/null 2>&1 || die "useradd agentd-test failed"
    fi
}

start() {
    dir=$1
    [ ! -e "$dir/data/PG_VERSION" ] || die "$dir already holds a cluster (stop it first)"
    bin=$(bindir)
    owner_setup
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    # the owner must reach DIR through its parents (a mktemp folder is 0700)
    chmod 0755 "$dir"
    pw=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
    printf '%s\n' "$pw" >"$dir/password"
    chmod 0644 "$dir/password"
    if [ "$(id -u)" = 0 ]; then chown agentd-test "$dir"; fi
    as_owner "$bin/initdb" -D "$dir/data" -U agentd --pwfile="$dir/password" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed in $dir"; }
    cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = 100
shared_buffers = 32MB
fsync = ${AGENTD_PG_FSYNC:-on}
full_page_writes = ${AGENTD_PG_FSYNC:-on}
log_min_messages = warning
EOF
    tries=0
    while :; do
        port=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000 ))
        if ! ss -ltn 2>/dev/null | grep -q "[:.]$port "; then
            if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
                -o "-p $port" start >/dev/null 2>&1; then
                break
            fi
        fi
        tries=$((tries + 1))
        [ "$tries" -lt 10 ] || { tail -n 20 "$dir/server.log" >&2 2>/dev/null; die "could not start a server in $dir"; }
    done
    echo "$port" >"$dir/port"
    url "$dir"
}

url() {
    dir=$1
    [ -f "$dir/port" ] || die "no cluster running in $dir"
    echo "postgres://agentd:$(cat "$dir/password")@127.0.0.1:$(cat "$dir/port")/postgres"
}

# restart|start|stop the server of DIR on its port
ctl() {
    dir=$(cd "$2" && pwd)
    port=$(cat "$dir/port")
    as_owner "$(bindir)/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -m fast \
        -o "-p $port" "$1" >/dev/null
}

stop() {
    dir=$1
    [ -d "$dir" ] || return 0
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "$(bindir)/pg_ctl" -D "$dir/data" -w -t 60 -m fast stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

[ $# -eq 2 ] || die "usage: scripts/pg.sh start|url|restart|down|up|stop DIR"
case $1 in
start) start "$2" ;;
url) url "$2" ;;
restart) ctl restart "$2" ;;
down) ctl stop "$2" ;;
up) ctl start "$2" ;;
stop) stop "$2" ;;
*) die "unknown command $1 (start, url, restart, down, up, stop)" ;;
esac
