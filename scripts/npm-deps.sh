#!/bin/sh
# Install npm packages that tests drive (third-party clients and servers: the `openai`
# client, MCP servers and SDK, protobufjs, ajv, ...) into the git-ignored build/npm, once.
#   scripts/npm-deps.sh openai@4 @modelcontextprotocol/sdk@1
# Prints the node_modules folder on stdout (for NODE_PATH). Each test names the packages
# it needs, so there is no central list to keep in step. Installs Node.js and npm from
# Debian's archive through scripts/deps.sh if they are missing. Fails loudly: a test that
# needs a package must never skip silently.
set -eu
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    AGENTD_DEPS_NODE=1 ./scripts/deps.sh >&2
fi
dir="$PWD/build/npm"
mkdir -p "$dir"
[ -f "$dir/package.json" ] || echo '{"name":"agentd-test-deps","private":true}' >"$dir/package.json"
missing=""
for spec in "$@"; do
    # name without the version: "@scope/pkg@1" -> "@scope/pkg", "pkg@1" -> "pkg"
    name=$(printf '%s' "$spec" | sed -E 's/^(@?[^@]+).*$/\1/')
    [ -f "$dir/node_modules/$name/package.json" ] || missing="$missing $spec"
done
if [ -n "$missing" ]; then
    # One install at a time: tests of the release and ASan builds may ask concurrently.
    exec 9>"$dir/.lock"
    flock 9
    # shellcheck disable=SC2086
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error $missing >&2) ||
        { echo "npm-deps: npm install$missing failed (is the npm registry reachable?)" >&2; exit 1; }
fi
echo "$dir/node_modules"
