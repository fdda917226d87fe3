#!/bin/sh
# `agentd serve` refuses bad HTTP with JSON, never libevent's HTML page (docs/api.md, "Errors"):
# raw sockets send what curl will not — a body over --max-body with and without
# Content-Length, a chunked body over it, a header block over --max-headers, a request line
# that is garbage or never ends, bad framing — whole or cut into pieces, alone or after a
# good request on the same connection. Every reply must be a 4xx {"error":{type,message}}
# with Content-Type application/json, and the refused connection must close.
. tests/integration/lib.sh
. tests/integration/lib_serve.sh
AG=tests/fixtures/serve/agents
unset AGENTD_CACHE AGENTD_API_TOKEN AGENTD_LISTEN AGENTD_AGENTS
start_serve "$TMP/srv.log" --agents $AG --tools tools --db "$TMP/l.db" --traces "$TMP/tr" \
    --max-body 4096 --max-headers 1024 || fail "serve starts" "$(cat "$TMP/srv.log")"
PORT=$(cat "$TMP/srv.port")

# raw [SPLIT]: send stdin's bytes (in SPLIT-byte pieces, 20 ms apart, when given), read
# until the server closes (3 s at most); print one line per reply: STATUS TYPE CT (TYPE "-"
# for a success or a reply without a body, as to HEAD), then "closed" or "open".
raw() {
    cat >"$TMP/raw.in"
    python3 - "$PORT" "${1:-0}" "$TMP/raw.in" <<'PY'
import json, socket, sys, time
data = open(sys.argv[3], "rb").read()
port, split = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
try:
    if split:
        for i in range(0, len(data), split):
            s.sendall(data[i:i + split]); time.sleep(0.02)
    else:
        s.sendall(data)
except OSError:
    pass
s.settimeout(3)
got, closed = b"", False
try:
    while True:
        b = s.recv(65536)
        if not b:
            closed = True; break
        got += b
except socket.timeout:
    pass
except OSError:
    closed = True
while got:
    head, _, rest = got.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    h = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    n = 0 if data.startswith(b"HEAD") else int(h.get("content-length", "0"))
    body, got = rest[:n], rest[n:]
    if not n:
        print(lines[0].split()[1], "-", h.get("content-type", "none")); continue
    try:
        t = json.loads(body)["error"]["type"] if lines[0].split()[1][0] != "2" else "-"
        if t != "-" and not json.loads(body)["error"]["message"]:
            t = "no-message"
    except Exception:
        t = "NOT-JSON:" + body[:30].decode("latin-1").replace("\n", " ")
    print(lines[0].split()[1], t, h.get("content-type", "none"))
print("closed" if closed else "open")
PY
}
# expect NAME "REPLIES" : the last raw output is exactly REPLIES (lines joined by "; ")
expect() {
    got=$(tr '\n' ';' <"$TMP/raw" | sed 's/;$//; s/;/; /g')
    [ "$got" = "$2" ] && ok "$1: $2" || fail "$1" "got: $got; want: $2"
}
J=application/json
big=$(head -c 10000 /dev/zero | tr '\0' a)

printf 'POST /v1/runs HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n%s' "$(echo "$big" | head -c 500)" | raw >"$TMP/raw"
expect "Content-Length over --max-body" "413 request_too_large $J; closed"
printf 'POST /v1/runs HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 99999999999\r\n\r\n' | raw >"$TMP/raw"
expect "huge Content-Length with Expect: 100-continue, no body sent" "413 request_too_large $J; closed"
{ printf 'POST /v1/runs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'
  for _ in 1 2 3 4 5; do printf '3e8\r\n%s\r\n' "$(echo "$big" | head -c 1000)"; done
  printf '0\r\n\r\n'; } | raw 700 >"$TMP/raw"
expect "chunked body over --max-body, sent in pieces" "413 request_too_large $J; closed"
printf 'POST /v1/runs HTTP/1.1\r\nHost: x\r\n\r\n%s' "$big" | raw >"$TMP/raw"
expect "body without Content-Length: no body, then its bytes are a request line too long" \
    "400 invalid_request $J; 431 headers_too_large $J; closed"
{ printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n'; for i in $(seq 1 40); do printf 'X-Pad-%02d: %040d\r\n' "$i" 0; done; printf '\r\n'; } | raw 100 >"$TMP/raw"
expect "header block over --max-headers, in pieces" "431 headers_too_large $J; closed"
printf 'GET /%s HTTP/1.1\r\n\r\n' "$(echo "$big" | head -c 2000)" | raw >"$TMP/raw"
expect "request line over --max-headers" "431 headers_too_large $J; closed"
printf 'GET /%s' "$(echo "$big" | head -c 3000)" | raw 500 >"$TMP/raw"
expect "request line that never ends" "431 headers_too_large $J; closed"
printf 'HELLO THERE\r\n\r\n' | raw >"$TMP/raw"
expect "garbage request line" "400 invalid_request $J; closed"
printf '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n\n' | raw >"$TMP/raw"
expect "binary garbage (a TLS hello)" "400 invalid_request $J; closed"
printf 'BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n' | raw >"$TMP/raw"
expect "unknown method" "405 method_not_allowed $J; closed"
printf 'GET /healthz HTTP/2.0\r\n\r\n' | raw >"$TMP/raw"
expect "unsupported HTTP version" "400 invalid_request $J; closed"
printf 'GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n' | raw >"$TMP/raw"
expect "header line without a colon" "400 invalid_request $J; closed"
printf 'POST /v1/runs HTTP/1.1\r\nContent-Length: 12x\r\n\r\n' | raw >"$TMP/raw"
expect "bad Content-Length" "400 invalid_request $J; closed"
printf 'POST /v1/runs HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}' | raw >"$TMP/raw"
expect "two Content-Lengths" "400 invalid_request $J; closed"
printf 'POST /v1/runs HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n' | raw >"$TMP/raw"
expect "Transfer-Encoding other than chunked" "400 invalid_request $J; closed"
printf 'POST /v1/runs HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n' | raw >"$TMP/raw"
expect "bad chunk size" "400 invalid_request $J; closed"
printf 'POST /v1/runs HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nno colon\r\n\r\n' | raw >"$TMP/raw"
expect "bad trailer line" "400 invalid_request $J; closed"
printf 'POST /v1/runs HTTP/1.1\r\nExpect: tea\r\nContent-Length: 2\r\n\r\n{}' | raw >"$TMP/raw"
expect "Expect other than 100-continue" "417 expectation_failed $J; closed"
printf 'HEAD /healthz HTTP/1.1\r\nX-Big: %s\r\n\r\n' "$(echo "$big" | head -c 2000)" | raw >"$TMP/raw"
expect "HEAD with a header over the limit (no body in a reply to HEAD)" "431 - $J; closed"

# The same faults with the request cut in 5-byte pieces: evhttp has taken its first lines
# (or its first chunks) before the fault arrives.
printf 'POST /v1/runs HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}' | raw 5 >"$TMP/raw"
expect "in pieces: a second Content-Length" "400 invalid_request $J; closed"
printf 'POST /v1/runs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nbad\r\n\r\n' | raw 5 >"$TMP/raw"
expect "in pieces: a bad header after Transfer-Encoding" "400 invalid_request $J; closed"
printf 'POST /v1/runs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\nzz\r\n' | raw 5 >"$TMP/raw"
expect "in pieces: a bad chunk size after a good chunk" "400 invalid_request $J; closed"
printf 'POST /v1/runs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nA: b\r\nno colon\r\n\r\n' | raw 5 >"$TMP/raw"
expect "in pieces: a bad trailer line" "400 invalid_request $J; closed"
printf 'HEAD /healthz HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n' "$(echo "$big" | head -c 2000)" | raw 50 >"$TMP/raw"
expect "in pieces: HEAD with a header over the limit (no body in a reply to HEAD)" "431 - $J; closed"
printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nExpect: tea\r\n\r\n' | raw 5 >"$TMP/raw"
expect "in pieces: a good request, then a bad one on the same connection" "200 - $J; 417 expectation_failed $J; closed"

# Good requests around bad ones on one connection: the good ones are answered normally.
printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\nJUNK\r\n\r\n' | raw >"$TMP/raw"
expect "pipelined: two good requests, then garbage" "200 - $J; 200 - $J; 400 invalid_request $J; closed"
body='{"agent":"support","input":"Where is my order 1042?","wait":true}'
{ printf 'POST /v1/runs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n'
  printf '%x\r\n%s\r\n0\r\nX-Trailer: ok\r\n\r\n' "$(printf %s "$body" | wc -c)" "$body"; } | raw 9 >"$TMP/raw"
expect "a chunked body under the limit, byte-split with a trailer, runs the agent" "200 - $J; closed"
printf 'POST /v1/runs HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
    "$(printf %s "$body" | wc -c)" "$body" | raw 7 >"$TMP/raw"
expect "Content-Length body split in 7-byte pieces" "200 - $J; closed"
s=$(curl -s --max-time 10 -o "$TMP/body" -w '%{http_code}' -H 'Expect: 100-continue' -X POST "$BASE/v1/runs" -d "$body")
[ "$s" = 200 ] && [ "$(jq -r .state "$TMP/body")" = done ] && ok "curl with Expect: 100-continue under the limit" || fail "expect continue" "$s"
s=$(curl -s --max-time 10 -D "$TMP/hdr" -o "$TMP/body" -w '%{http_code}' -X POST "$BASE/v1/runs" --data-binary "@-" <<EOB
$big
EOB
)
[ "$s" = 413 ] && [ "$(jq -r .error.type "$TMP/body")" = request_too_large ] && grep -qi '^Content-Type: application/json' "$TMP/hdr" \
    && ok "curl: a body over the limit gets 413 JSON" || fail "curl 413" "$s $(head -c 200 "$TMP/body")"
[ "$(req GET /metrics)" = 200 ] && grep -q 'agentd_http_requests_total{route="other",method="",code="413"}' "$TMP/body" \
    && grep -q 'agentd_http_requests_total{route="other",method="",code="431"}' "$TMP/body" \
    && ok "refusals counted in /metrics (route other)" || fail "refusals in metrics" "$(grep http_requests_total "$TMP/body" | head)"
[ "$(req GET /healthz)" = 200 ] && ok "still serving" || fail "alive" ""
stop_serve
! grep -qi "html" "$TMP/srv.log" && ok "no HTML anywhere" || fail "html in log" ""
finish
