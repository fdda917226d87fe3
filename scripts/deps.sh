#!/bin/sh
# Install the Debian -dev packages agentd builds against, but only those that
# pkg-config cannot already find. Safe to run repeatedly; a no-op when all is present.
set -eu

# pkg-config name -> Debian package
need=""
check() {
    if ! pkg-config --exists "$1" 2>/dev/null; then
        need="$need $2"
    fi
}

command -v cc >/dev/null 2>&1 || need="$need gcc libc6-dev"
command -v pkg-config >/dev/null 2>&1 || need="$need pkg-config"
check lua5.4     liblua5.4-dev
check json-c     libjson-c-dev
check libevent   libevent-dev
check libcurl    libcurl4-openssl-dev
check sqlite3    libsqlite3-dev
check libpcre2-8 libpcre2-dev
check ncursesw   libncurses-dev
check libedit    libedit-dev
check libxml-2.0 libxml2-dev
check libpq      libpq-dev
# Test-only tools (make test sets AGENTD_DEPS_TEST=1): tmux drives the viewer tests,
# sqlite3/python3/curl check results, valgrind checks for leaks, promtool lints /metrics,
# sqlite3-doc is the retrieval corpus. (`make fuzz-schema` also
# needs clang, which it does not install.)
if [ "${AGENTD_DEPS_TEST:-0}" = 1 ]; then
    command -v tmux >/dev/null 2>&1 || need="$need tmux"
    command -v sqlite3 >/dev/null 2>&1 || need="$need sqlite3"
    command -v python3 >/dev/null 2>&1 || need="$need python3"
    command -v valgrind >/dev/null 2>&1 || need="$need valgrind"
    command -v curl >/dev/null 2>&1 || need="$need curl"
    # promtool (Debian's prometheus package) checks the /metrics output (server.sh)
    command -v promtool >/dev/null 2>&1 || need="$need prometheus"
    # a throwaway PostgreSQL cluster (scripts/pg.sh) for the store's tests on PostgreSQL
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need="$need postgresql"
fi
# SQLite's own HTML documentation: the corpus tests/integration/kb.sh and
# `scripts/bench-rag.sh --quality` (AGENTD_DEPS_RAG=1) measure retrieval quality on.
if [ "${AGENTD_DEPS_TEST:-0}" = 1 ] || [ "${AGENTD_DEPS_RAG:-0}" = 1 ]; then
    [ -f /usr/share/doc/sqlite3/lang_select.html ] || need="$need sqlite3-doc"
fi

# Node.js and npm (scripts/npm-deps.sh asks for them when a test drives an npm package).
if [ "${AGENTD_DEPS_NODE:-0}" = 1 ]; then
    command -v node >/dev/null 2>&1 || need="$need nodejs"
    command -v npm >/dev/null 2>&1 || need="$need npm"
fi

if [ -z "$need" ]; then
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
echo "deps: installing$need" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null || { echo "deps: apt-get update failed; install$need by hand" >&2; exit 1; }
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null || { echo "deps: apt-get install$need failed" >&2; exit 1; }
