#!/bin/sh
# docs/openapi.json against the server: a well-formed OpenAPI 3.1 document (every $ref
# resolves, every path parameter declared, unique operation ids, every error response the
# Error schema), exactly the routes `agentd serve --routes` serves (no more, no fewer), and
# live replies of each kind valid against its schema (checked with `agentd schema check`)
# with a status code the document lists for that operation.
. tests/integration/lib.sh
. tests/integration/lib_serve.sh
SPEC=docs/openapi.json
"$AGENTD" serve --routes >"$TMP/routes" 2>&1 || fail "serve --routes" "$(cat "$TMP/routes")"
python3 - "$SPEC" "$TMP/routes" >"$TMP/check" 2>&1 <<'PY'
import json, re, sys
doc = json.load(open(sys.argv[1]))
errs = []
if doc.get("openapi") != "3.1.0": errs.append("openapi is not 3.1.0")
for k in ("title", "version"):
    if not doc.get("info", {}).get(k): errs.append("info.%s missing" % k)
def walk(o, path):
    if isinstance(o, dict):
        for k, v in o.items():
            if k == "$ref":
                node = doc
                for part in v.lstrip("#/").split("/"):
                    node = node.get(part) if isinstance(node, dict) else None
                if node is None: errs.append("%s: $ref %s does not resolve" % (path, v))
            else: walk(v, path + "/" + k)
    elif isinstance(o, list):
        for i, v in enumerate(o): walk(v, "%s/%d" % (path, i))
walk(doc, "#")
ops, ids = set(), set()
for p, item in doc["paths"].items():
    for m, op in item.items():
        ops.add((m.upper(), p))
        oid = op.get("operationId")
        if not oid or oid in ids: errs.append("%s %s: operationId missing or repeated" % (m, p))
        ids.add(oid)
        declared = {q["name"] for q in op.get("parameters", []) if q.get("in") == "path"}
        for name in re.findall(r"{(\w+)}", p):
            if name not in declared: errs.append("%s %s: path parameter %s not declared" % (m, p, name))
        if not op.get("responses"): errs.append("%s %s: no responses" % (m, p))
        for code, r in op.get("responses", {}).items():
            if not re.fullmatch(r"[1-5][0-9][0-9]", code): errs.append("%s %s: bad status %s" % (m, p, code))
            if code[0] in "45" and p != "/readyz":
                ref = r.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
                if ref != "#/components/schemas/Error": errs.append("%s %s %s: not the Error schema" % (m, p, code))
served = {tuple(l.split()) for l in open(sys.argv[2]) if l.strip()}
for r in sorted(served - ops): errs.append("served but not in the document: %s %s" % r)
for r in sorted(ops - served): errs.append("in the document but not served: %s %s" % r)
print("\n".join(errs) if errs else "ok %d operations" % len(ops))
sys.exit(1 if errs else 0)
PY
[ $? = 0 ] && ok "openapi.json: well-formed 3.1, routes match the server ($(cat "$TMP/check"))" || fail "openapi structure" "$(cat "$TMP/check")"

# A standalone JSON Schema for component NAME ($defs from the components).
schema_of() {
    python3 - "$SPEC" "$1" >"$TMP/schema.$1.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
text = json.dumps(doc["components"]["schemas"]).replace("#/components/schemas/", "#/$defs/")
defs = json.loads(text)
print(json.dumps({"$schema": "https://json-schema.org/draft/2020-12/schema",
                  "$ref": "#/$defs/" + sys.argv[2], "$defs": defs}))
PY
}
# documented METHOD PATH CODE: the document lists CODE for that operation
documented() {
    python3 -c "import json,sys; d=json.load(open('$SPEC')); sys.exit(0 if sys.argv[3] in d['paths'][sys.argv[2]][sys.argv[1].lower()]['responses'] else 1)" "$1" "$2" "$3"
}
# valid NAME COMPONENT METHOD TEMPLATE STATUS: the last body is valid and the status listed
valid() {
    schema_of "$2"
    if "$AGENTD" schema check "$TMP/schema.$2.json" "$TMP/body" >"$TMP/v" 2>&1 && documented "$3" "$4" "$5"; then
        ok "$1: $5 valid $2"
    else fail "$1" "status $5 $(head -c 400 "$TMP/v") $(head -c 300 "$TMP/body")"; fi
}
unset AGENTD_CACHE AGENTD_LISTEN AGENTD_AGENTS AGENTD_API_TOKEN
DB=$(newdb a) || { fail "new database" "a"; finish; exit 1; }
start_serve "$TMP/srv.log" --agents tests/fixtures/serve/agents --tools tools --db "$DB" \
    --traces "$TMP/tr" || fail "serve starts" "$(cat "$TMP/srv.log")"
s=$(req GET /v1/agents); valid "GET /v1/agents" AgentList GET /v1/agents "$s"
s=$(req POST /v1/runs -d '{"agent":"structured","input":"What is the status of order 1042?","wait":true}')
valid "POST /v1/runs wait" Run POST /v1/runs "$s"
id=$(jb .id)
s=$(req POST /v1/runs -d '{"agent":"approver","input":"Please open a ticket: order 1042 arrived damaged.","wait":true}')
valid "POST /v1/runs (waiting)" Run POST /v1/runs "$s"
wid=$(jb .id)
s=$(req GET "/v1/runs/$id"); valid "GET /v1/runs/{id}" Run GET "/v1/runs/{id}" "$s"
s=$(req GET "/v1/runs?limit=1"); valid "GET /v1/runs" RunList GET /v1/runs "$s"
s=$(req POST "/v1/runs/$wid/deny" -d '{"reason":"no"}'); valid "POST deny" Run POST "/v1/runs/{id}/deny" "$s"
s=$(req POST "/v1/runs/$wid/approve" -d '{}'); valid "POST approve (not waiting)" Error POST "/v1/runs/{id}/approve" "$s"
s=$(req POST "/v1/runs/$id/cancel"); valid "POST cancel (finished)" Error POST "/v1/runs/{id}/cancel" "$s"
s=$(req GET /v1/runs/0123456789abcdef); valid "GET unknown run" Error GET "/v1/runs/{id}" "$s"
s=$(req POST /v1/runs -d '{"agent":"../x","input":"x"}'); valid "POST bad agent" Error POST /v1/runs "$s"
s=$(req POST /v1/chat/completions -d '{"model":"agent:support","messages":[{"role":"user","content":"Where is my order 1042?"}]}')
valid "POST /v1/chat/completions" ChatCompletion POST /v1/chat/completions "$s"
s=$(req GET /healthz); valid "GET /healthz" Health GET /healthz "$s"
s=$(req GET /readyz); valid "GET /readyz" Health GET /readyz "$s"
s=$(req GET "/v1/runs/$id/events"); documented GET "/v1/runs/{id}/events" "$s" && grep -q "^Content-Type: text/event-stream" "$TMP/hdr" \
    && ok "GET events: $s text/event-stream" || fail "events" "$s"
s=$(req GET /metrics); documented GET /metrics "$s" && ok "GET /metrics: $s" || fail "metrics" "$s"
stop_serve
finish
