#!/bin/sh
# The OpenAI-compatible embedder (kb add --embedder openai:MODEL) against the fake provider
# (tests/helpers/fakellm.c, POST /v1/embeddings): batches, the bearer key sent but never
# stored or printed, the cache (unchanged text never re-sent), cost recorded per add from the
# price table, retries on 500/429/malformed replies, a stalled endpoint ended by the timeout,
# an unreachable endpoint mid-ingest (nothing half-indexed; the same add resumes), a refused
# key not retried, and a query embedded by another model refused.
. tests/integration/lib.sh
KB="$TMP/kb.db" # a knowledge base is a SQLite file on either engine (docs/rag.md)
RUNS=$(newdb runs) || { fail "new database" "runs"; finish; exit 1; }
D="$TMP/docs"
mkdir -p "$D"
for i in 1 2 3 4 5 6; do
    {
        echo "# Topic $i"
        echo
        echo "Section $i explains the replication lag of follower number $i in detail."
        echo
        echo "## Failover $i"
        echo
        echo "When the leader dies, follower $i is promoted after an election timeout."
    } >"$D/t$i.md"
done
KEY=sk-canary-7d1f0e
echo '{"openai:emb-small": {"input": 2.0, "output": 0}}' >"$TMP/prices.json"
export OPENAI_API_KEY=$KEY AGENTD_PRICES="$TMP/prices.json"
export AGENTD_RETRY_BASE_MS=20 AGENTD_RETRY_CAP_MS=100
get() { python3 -c "import json,sys; print(json.loads(sys.argv[1])$2)" "$1" 2>/dev/null; }
stats() { curl -s "http://127.0.0.1:$FAKE_PORT/stats"; }
add() { # add KB PATHS... : kb add over the fake provider, JSON on stdout, stderr in $TMP/err
    kb=$1
    shift
    OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" "$AGENTD" kb add "$kb" "$@" \
        --embedder openai:emb-small --kb-db "$KB" --json 2>"$TMP/err"
}

start_fake --embed-dim 48 --require-key "$KEY" || { fail "fakellm" "did not start"; finish; exit 1; }
out=$(add h "$D")
rc=$?
s=$(stats)
[ $rc -eq 0 ] && [ "$(get "$out" "['added']")" = 6 ] && ok "add over HTTP: 6 files" \
    || fail "add over HTTP" "rc=$rc $out $(cat "$TMP/err")"
chunks=$(sqlite3 "$KB" "SELECT count(*) FROM kb_chunks")
[ "$(get "$s" "['embed_inputs']")" = "$chunks" ] && [ "$(get "$s" "['unauthorized']")" = 0 ] \
    && ok "every chunk embedded once ($chunks), with the key" || fail "embed inputs" "$s chunks=$chunks"
[ "$(get "$s" "['embeddings']")" -le 8 ] && ok "batched: $(get "$s" "['embeddings']") requests for $chunks texts" \
    || fail "batched" "$s"
dim=$(sqlite3 "$KB" "SELECT dim || ' ' || embedder FROM kb WHERE name='h'")
vb=$(sqlite3 "$KB" "SELECT min(length(vec)) || '-' || max(length(vec)) FROM kb_chunks")
[ "$dim" = "48 openai:emb-small" ] && [ "$vb" = "192-192" ] && ok "model and dimension recorded; float32 vectors" \
    || fail "dimension" "$dim $vb"
# cost: the fake's tokens (bytes / 4 + 1 per input) priced at $2 per million
tok=$(sqlite3 "$KB" "SELECT tokens FROM kb_usage WHERE op='add' ORDER BY id DESC LIMIT 1")
want=$(sqlite3 "$KB" "SELECT sum(length(CAST(d.title || char(10) || c.heading || char(10) || c.text AS BLOB)) / 4 + 1) FROM kb_chunks c JOIN kb_docs d ON d.id = c.doc_id")
cost=$(sqlite3 "$KB" "SELECT printf('%.9f', cost_usd) FROM kb_usage ORDER BY id DESC LIMIT 1")
wantc=$(python3 -c "print('%.9f' % ($tok * 2.0 / 1e6))")
[ -n "$tok" ] && [ "$tok" = "$want" ] && [ "$cost" = "$wantc" ] && [ "$(get "$out" "['embed_tokens']")" = "$tok" ] \
    && ok "usage recorded: $tok tokens, \$$cost" || fail "usage" "tok=$tok want=$want cost=$cost/$wantc $out"
st=$("$AGENTD" kb stats h --kb-db "$KB")
echo "$st" | grep -q "embedding  [0-9]* request(s), $tok tokens" && ok "stats shows the embedding cost" \
    || fail "stats cost" "$st"

# vector search embeds the query over HTTP too
r=$(OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" "$AGENTD" kb search h "failover follower 4 promoted election" \
    --mode vector --kb-db "$KB" --json 2>"$TMP/err")
[ "$(get "$r" "['vector']['results'][0]['source']")" = "$D/t4.md" ] && [ "$(get "$r" "['vector']['embed_tokens']")" -gt 0 ] \
    && ok "vector search over HTTP" || fail "vector search" "$r $(cat "$TMP/err")"
bad=$(OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" "$AGENTD" kb search h x --embedder offline --kb-db "$KB" 2>&1)
rc=$?
[ $rc -eq 2 ] && echo "$bad" | grep -q 'embedded with openai:emb-small; a query embedded with offline' \
    && ok "a query with another model is refused" || fail "other model" "rc=$rc $bad"

# cache: unchanged files cost nothing; a changed file sends only its new text
curl -s -X POST "http://127.0.0.1:$FAKE_PORT/reset" >/dev/null
add h "$D" >/dev/null
[ "$(get "$(stats)" "['embeddings']")" = 0 ] && ok "re-add: no request" || fail "re-add" "$(stats)"
echo "A new paragraph about quorum reads." >>"$D/t2.md"
out=$(add h "$D")
s=$(stats)
[ "$(get "$out" "['updated']")" = 1 ] && [ "$(get "$s" "['embed_inputs']")" = 1 ] \
    && [ "$(get "$out" "['embed_cached']")" -ge 1 ] && ok "changed file: only the new chunk sent, the rest from the cache" \
    || fail "cache" "$out $s"

# nothing secret stored or printed
for f in "$KB" "$KB-wal" "$TMP/err"; do
    [ -e "$f" ] && grep -q "$KEY" "$f" && fail "key leaked" "$f"
done
ok "the key is in no database file and no output"
stop_fake

# retries: a 500, a 429 with Retry-After and a malformed body are retried (the model client's
# policy: 4 attempts); the add succeeds
start_fake --embed-dim 48 --fail-first 3 --faults 500,429,malformed --retry-after 1
printf '# Retry\n\nRetried pages are indexed once.\n' >"$D/r1.md"
t0=$(date +%s)
out=$(add h "$D")
rc=$?
s=$(stats)
[ $rc -eq 0 ] && [ "$(get "$out" "['added']")" = 1 ] && [ "$(get "$s" "['faults_injected']")" = 3 ] \
    && ok "500, 429, malformed retried; add succeeds ($(get "$s" "['embeddings']") requests)" \
    || fail "retries" "rc=$rc $out $s $(cat "$TMP/err")"
[ $(( $(date +%s) - t0 )) -ge 1 ] && ok "Retry-After honoured" || fail "Retry-After" "too fast"
stop_fake

# a stalled endpoint: each attempt ends at the timeout, the add stops with one line; what was
# committed stays, and the document being embedded is not half-written
start_fake --embed-dim 48 --fail-first 100 --faults stall
printf '# Stall\n\nThis page waits for a stalled server.\n' >"$D/s1.md"
docs0=$(sqlite3 "$KB" "SELECT count(*) FROM kb_docs")
t0=$(date +%s)
out=$(AGENTD_EMBED_TIMEOUT_MS=300 AGENTD_RETRY_BUDGET_MS=400 add h "$D")
rc=$?
el=$(( $(date +%s) - t0 ))
[ $rc -eq 1 ] && [ "$el" -le 5 ] && grep -q "timed out\|timeout" "$TMP/err" && [ "$(wc -l <"$TMP/err")" -eq 1 ] \
    && grep -q "run the same add again to resume" "$TMP/err" \
    && ok "stalled endpoint: timeout, exit 1 in ${el}s, one line" || fail "stall" "rc=$rc ${el}s $(cat "$TMP/err")"
[ "$(sqlite3 "$KB" "SELECT count(*) FROM kb_docs")" = "$docs0" ] \
    && [ "$(sqlite3 "$KB" "SELECT count(*) FROM kb_docs WHERE path LIKE '%s1.md'")" = 0 ] \
    && ok "nothing half-indexed after the stall" || fail "half-indexed" "$(sqlite3 "$KB" "SELECT path FROM kb_docs")"
stop_fake

# unreachable endpoint mid-ingest: a folder of new files, the server gone after the first
# requests; the add stops, every document is whole, and the same add later resumes
mkdir -p "$D/more"
for i in 1 2 3 4 5 6 7 8; do
    printf '# More %s\n\nPage %s about snapshot isolation and vacuum.\n' "$i" "$i" >"$D/more/m$i.md"
done
start_fake --embed-dim 48 --latency-ms 150
( sleep 0.5; kill "$FAKE_PID" ) &
out=$(add h "$D")
rc=$?
wait
n=$(get "$out" "['added']")
[ $rc -eq 1 ] && [ "${n:-0}" -ge 1 ] && [ "$n" -lt 9 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] \
    && ok "endpoint gone mid-ingest: stops after $n file(s), one line" || fail "mid-ingest" "rc=$rc $out $(cat "$TMP/err")"
bad=$(sqlite3 "$KB" "SELECT count(*) FROM kb_docs d WHERE d.chunks != (SELECT count(*) FROM kb_chunks c WHERE c.doc_id = d.id)")
fts=$(sqlite3 "$KB" "SELECT (SELECT count(*) FROM kb_chunks WHERE kb_id = 1) - (SELECT count(*) FROM kb_fts_1)")
[ "$bad" = 0 ] && [ "$fts" = 0 ] && ok "every document whole (chunks, FTS rows)" || fail "whole" "bad=$bad fts=$fts"
FAKE_PID=
start_fake --embed-dim 48
out=$(add h "$D")
rc=$?
[ $rc -eq 0 ] && [ "$(get "$out" "['added']")" -ge 1 ] && [ "$(sqlite3 "$KB" "SELECT count(*) FROM kb_docs WHERE path LIKE '%/more/%'")" = 8 ] \
    && [ "$(sqlite3 "$KB" "SELECT count(*) FROM kb_docs WHERE path LIKE '%s1.md'")" = 1 ] \
    && ok "the same add resumes: all files indexed" || fail "resume" "rc=$rc $out $(cat "$TMP/err")"
stop_fake

# an agent's retrieve on the HTTP-embedded KB: the query's embedding cost lands in the trace
cat >"$TMP/script.json" <<'EOF'
[{"tool_calls": [{"name": "retrieve", "arguments": {"query": "failover election timeout", "k": 2}}]},
 {"text": "The follower is promoted after an election timeout."}]
EOF
printf 'return { name = "reader", model = "openai:fake", tools = { "retrieve" }, kb = "h" }\n' >"$TMP/reader.lua"
start_fake --embed-dim 48 --script "$TMP/script.json"
out=$(OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" AGENTD_KB_DB="$KB" "$AGENTD" run "$TMP/reader.lua" \
    "When is a follower promoted?" --tools tools --db "$RUNS" --traces "$TMP/tr" --json 2>"$TMP/err")
id=$(get "$out" "['run_id']")
res=$(dbq "$RUNS" "SELECT result FROM tool_calls WHERE run_id='$id' AND name='retrieve'")
ev=$(dbq "$RUNS" "SELECT body FROM events WHERE run_id='$id' AND body LIKE '%query embedded over HTTP%'")
echo "$res" | grep -q '"count":2' && echo "$ev" | grep -q 'kb.search h: query embedded over HTTP, [1-9][0-9]* tokens' \
    && ok "retrieve over an HTTP-embedded KB; the query's embedding cost in the run's trace" \
    || fail "retrieve over HTTP" "$out $res $ev $(cat "$TMP/err")"
stop_fake

# int8 vectors of a dimension that is not a multiple of the scan's 16-wide blocks (the tail)
start_fake --embed-dim 40
out=$(OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" "$AGENTD" kb add h8 "$D" --embedder openai:emb-small \
    --quant int8 --kb-db "$KB" --json 2>"$TMP/err")
r=$(OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" "$AGENTD" kb search h8 "failover follower 4 promoted election" \
    --mode vector --kb-db "$KB" --json 2>>"$TMP/err")
[ "$(sqlite3 "$KB" "SELECT dim || ' ' || quant FROM kb WHERE name='h8'")" = "40 int8" ] \
    && [ "$(get "$r" "['vector']['results'][0]['source']")" = "$D/t4.md" ] \
    && ok "int8 vectors of dimension 40: the right hit" || fail "int8 dim 40" "$out $r $(cat "$TMP/err")"
stop_fake

# a refused key is not retried, and the message does not echo it
start_fake --embed-dim 48 --require-key other-key
printf '# Auth\n\nKeys.\n' >"$D/a1.md"
out=$(add h "$D")
rc=$?
s=$(stats)
[ $rc -eq 1 ] && grep -q "HTTP 401" "$TMP/err" && ! grep -q "$KEY" "$TMP/err" && [ "$(get "$s" "['unauthorized']")" = 1 ] \
    && ok "401: one attempt, one line, no key in it" || fail "401" "rc=$rc $s $(cat "$TMP/err")"
stop_fake
finish
