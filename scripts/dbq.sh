#!/bin/sh
# One SQL query against agentd's database, whichever the backend: a SQLite file through
# sqlite3, a postgres:// or postgresql:// URL through psql. Rows print one per line, columns
# separated by "|" (sqlite3's default list mode), so checks read the same on both.
# usage: scripts/dbq.sh DB SQL
# Keep SQL portable: no json_extract, no PRAGMA (sqlite3 only), no ::casts (psql only).
set -u
db=$1
sql=$2
case "$db" in
postgres://* | postgresql://*) exec psql "$db" -X -q -A -t -F '|' -v ON_ERROR_STOP=1 -c "$sql" ;;
*) exec sqlite3 -cmd '.timeout 10000' "$db" "$sql" ;;
esac
