#!/bin/sh
# The Dockerfile, without a Docker daemon (none on the test machines): linted by
# dockerfilelint (npm; hadolint is not in Debian), every COPY source present in the build
# context and not excluded by .dockerignore, the build stage's command the README's `make`,
# a dry run of it in a scratch copy holding only what the build stage copies, every shared
# library the binary needs provided by the runtime stage's packages (or their direct
# dependencies, or the slim base's libc), and the image's ENTRYPOINT run as the image
# would: from a copy of its /opt/agentd layout, refusing to start without a token on
# 0.0.0.0 and serving a run with one. What only `docker build` would show (the base images,
# apt inside them) is not checked here.
. tests/integration/lib.sh
. tests/integration/lib_serve.sh
NODE_PATH=$(scripts/npm-deps.sh dockerfilelint@1) || { fail "npm install dockerfilelint" "see above"; finish; exit 1; }
"$NODE_PATH/.bin/dockerfilelint" Dockerfile >"$TMP/lint" 2>&1 && grep -q "Issues: None found" "$TMP/lint" \
    && ok "dockerfilelint: no issues" || fail "dockerfilelint" "$(cat "$TMP/lint")"
printf 'FROM debian:bookworm\nRUN apt-get install foo\nCOPYY a b\n' >"$TMP/Bad.Dockerfile"
! "$NODE_PATH/.bin/dockerfilelint" "$TMP/Bad.Dockerfile" >/dev/null 2>&1 && ok "dockerfilelint fails a bad Dockerfile" || fail "lint can fail" ""

# COPY sources (not --from): present, not ignored.
bad=""
for src in $(awk '/^COPY / && !/--from/ {for (i = 2; i < NF; i++) print $i}' Dockerfile); do
    [ -e "$src" ] || bad="$bad $src(missing)"
    while read -r pat; do
        case "$pat" in ''|'#'*) continue ;; esac
        case "$src" in $pat|$pat/*) bad="$bad $src(ignored by $pat)" ;; esac
    done <.dockerignore
done
[ -z "$bad" ] && ok "every COPY source is in the build context" || fail "COPY sources" "$bad"
# The build stage runs the README's build command.
build=$(sed -n 's/^RUN \(make[^&]*\)&&.*/\1/p' Dockerfile | sed 's/ *$//')
[ "$build" = 'make -j"$(nproc)"' ] && grep -q '^make run ' README.md && grep -q '^all: deps agentd' Makefile \
    && grep -q '^COPY --from=build /src/agentd ' Dockerfile \
    && ok "build stage: the README's make (all: deps agentd), ./agentd copied out" || fail "build command" "$build"
# A scratch copy with only what the build stage copies: make resolves everything.
mkdir -p "$TMP/src"
for src in $(awk '/^COPY / && !/--from/ && /\.\/$|runtime|scripts/ {for (i = 2; i < NF; i++) print $i}' Dockerfile); do
    cp -r "$src" "$TMP/src/"
done
(cd "$TMP/src" && ./scripts/deps.sh && make -n -j2 >"$TMP/dry" 2>&1) && grep -q "runtime/cli/main.c" "$TMP/dry" \
    && ok "in a scratch copy of the build stage's files: deps.sh has nothing to install, make resolves every target" \
    || fail "scratch make" "$(tail -5 "$TMP/dry")"

# Runtime stage: its packages provide every library agentd needs.
pkgs=$(awk '/^FROM debian:bookworm-slim/ {r = 1} r && /apt-get install/ {p = 1} p {print} p && !/\\$/ {p = 0}' Dockerfile \
    | tr ' \\' '\n\n' | grep -E '^lib[a-z0-9.+-]+$|^ca-certificates$' | sort -u)
deps=$(for p in $pkgs; do apt-cache depends "$p" 2>/dev/null | awk '/Depends:/ {print $2}'; done | sort -u)
missing=""
# (the sanitizer runtimes of the ASan test build are not the image's)
for lib in $(readelf -d "$AGENTD" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | grep -Ev '^lib(a|ub|l|t)san\.'); do
    path=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64|x86_64/ {print $NF; exit}')
    real=$(readlink -f "$path")
    pkg=""
    for f in "$path" "$real" "$(echo "$real" | sed 's#^/usr/lib/#/lib/#')"; do # usrmerge
        [ -n "$pkg" ] || pkg=$(dpkg -S "$f" 2>/dev/null | head -1 | cut -d: -f1)
    done
    [ "$pkg" = libc6 ] && continue
    echo "$pkgs $deps" | tr ' ' '\n' | grep -qx "$pkg" || missing="$missing $lib($pkg)"
done
[ -z "$missing" ] && ok "runtime stage: every shared library of agentd comes from its packages" || fail "runtime libraries" "$missing"

# The ENTRYPOINT as the image runs it, from a copy of /opt/agentd (port 0 in place of 8080).
mkdir -p "$TMP/opt/agentd" "$TMP/data"
cp -r agents tools "$TMP/opt/agentd/"
args=$(sed -n 's/^ENTRYPOINT \[\(.*\)\]/\1/p' Dockerfile | tr -d '",' | sed "s#/opt/agentd#$TMP/opt/agentd#g; s#0.0.0.0:8080#0.0.0.0:0#")
set -- $args
shift 2 # "agentd serve"
[ "$(sed -n 's/^ENTRYPOINT \["\([a-z]*\)", "\([a-z]*\)".*/\1 \2/p' Dockerfile)" = "agentd serve" ] || fail "entrypoint" "not agentd serve"
(cd "$TMP/opt/agentd" && AGENTD_DB="$TMP/data/agentd.db" AGENTD_API_TOKEN= "$AGENTD" serve "$@" >"$TMP/e" 2>&1); rc=$?
[ $rc = 2 ] && grep -q AGENTD_API_TOKEN "$TMP/e" && ok "the image without AGENTD_API_TOKEN refuses to start (exit 2)" \
    || fail "no token" "rc=$rc $(cat "$TMP/e")"
cd "$TMP/opt/agentd"
AGENTD_DB="$TMP/data/agentd.db" AGENTD_API_TOKEN=tok-docker-1 start_serve "$TMP/srv.log" "$@" \
    || fail "entrypoint starts" "$(cat "$TMP/srv.log")"
BASE=$(echo "$BASE" | sed 's/0.0.0.0/127.0.0.1/')
s=$(req POST /v1/runs -H 'Authorization: Bearer tok-docker-1' -d '{"agent":"support","input":"Where is my order 1042?","wait":true}')
[ "$s" = 200 ] && [ "$(jb .state)" = done ] && [ -s "$TMP/data/agentd.db" ] \
    && ok "the entrypoint serves a run from /opt/agentd/agents, the database on the data volume" \
    || fail "entrypoint run" "$s $(head -c 300 "$TMP/body")"
stop_serve
finish
