#!/usr/bin/env python3
"""Check a trace segment log against its database: every line in SEGDIR/segment-*.jsonl must
be the database's event (its body with run_id and seq, and an execute_tool event's part of
its tool_calls row, as runtime/trace_db.c joins it), compared as JSON values, and no event
may appear twice. Prints "BAD SEEN TOTAL": mismatched or repeated lines, distinct events in
the segments, events in the database (the difference: lines a kill lost).
usage: scripts/segments-check.py SEGDIR DB   (DB: a SQLite file or a postgres:// URL, read with psql)"""
import csv, io, json, os, re, sqlite3, subprocess, sys
# A body with short keys (runtime/trace_body.h) expanded, independently of the C reader; the
# dictionary is read from runtime/trace_body.c.
src = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "runtime",
                        "trace_body.c")).read()
def table(name):
    body = re.search(r"%s\[\]\s*=\s*\{(.*?)\};" % name, src, re.S).group(1)
    return [json.loads(x) for x in re.findall(r'"(?:[^"\\]|\\.)*"', body)]
ALPHA = re.search(r'ALPHABET\[\] = "([^"]*)"', src).group(1)
ATTRS = dict(zip(ALPHA, table("KEYS")))
PHASES = [json.loads(x) for x in table("PHASES")]
OPS = [json.loads(x) for x in table("OPS")]
STATUSES = [json.loads(x) for x in table("STATUSES")]
SLOTS = "tmsphoniaurx"  # a stored array's positions (trace_body.h)
FIELDS = dict(t="ts_ns", m="mono_ns", s="span_id", p="parent_id", h="phase", o="op", n="name",
              x="end_span", i="step", u="status", r="error", a="attrs")
NAMES = {2: "gen_ai.agent.name", 3: "gen_ai.tool.name", 4: "gen_ai.request.model",
         5: "gen_ai.response.model"}
def expand(rid, d):
    if isinstance(d, list):
        d = {k: v for k, v in zip(SLOTS, d) if v is not None}
    elif isinstance(d.get("f"), list):  # a transition: the view's fields, the rest as slots
        f = d.pop("f")
        d.update({k: v for k, v in zip(SLOTS, f) if v is not None and k not in "ti"})
    else:
        return d
    e = {FIELDS.get(k, k): v for k, v in d.items()}
    if isinstance(e.get("ts_ns"), int) and e["ts_ns"] < 0 and re.fullmatch("[0-9a-f]{16}", rid):
        e["ts_ns"] = int(rid[:12], 16) * 1000000 - e["ts_ns"] - 1
    B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for k in ("span_id", "parent_id", "end_span"):
        v = e.get(k)
        if v == 0:
            e[k] = rid
        elif isinstance(v, str) and len(v) == 11 and all(c in B64 for c in v):
            n = 0
            for c in v:
                n = n << 6 | B64.index(c)
            e[k] = "%016x" % n
        elif isinstance(v, str) and v.startswith("~"):
            e[k] = v[1:]
    if isinstance(e.get("phase"), int):
        e["phase"] = PHASES[e["phase"]]
    if isinstance(e.get("op"), int):
        e["op"] = OPS[e["op"]]
    if isinstance(e.get("status"), int):
        e["status"] = STATUSES[e["status"]]
    if "attrs" in e:
        a = {}
        for k, v in e["attrs"].items():
            k = ATTRS.get(k, k) if len(k) == 1 else k[1:] if k.startswith("~") else k
            a[k] = rid if k == "gen_ai.conversation.id" and v == 0 else v
        e["attrs"] = a
    if isinstance(e.get("name"), int):
        n = e["name"]
        e["name"] = e["op"] + " " + (e["state_to"] if n == 1 else e["attrs"][NAMES[n]])
    return e
# The database's event as a line: its body with run_id and seq, and an execute_tool event's
# part of its tool_calls row (runtime/trace_db.c), compared as JSON values.
NULL = "\\agentd-null"  # COPY's marker for NULL: an empty string stays ""
def rows(sql):
    if not re.match(r"postgres(ql)?://", sys.argv[2]):
        return sqlite3.connect(sys.argv[2]).execute(sql).fetchall()
    out = subprocess.run(["psql", sys.argv[2], "-XqAt", "-v", "ON_ERROR_STOP=1", "-c",
                          "\\copy (%s) TO STDOUT WITH (FORMAT csv, NULL '%s')" % (sql, NULL)],
                         check=True, capture_output=True, text=True).stdout
    return [[None if v == NULL else v for v in r] for r in csv.reader(io.StringIO(out))]
want = {(r, int(n)): b for r, n, b in rows("SELECT run_id, seq, body FROM events")}
calls = {(r, c): (a, i, res) for r, c, a, i, res in
         rows("SELECT run_id, call_id, args, coalesce(idem_key, run_id || ':' || call_id), result "
              "FROM tool_calls")}
def whole(k, body):
    e = dict(v=1, run_id=k[0], seq=k[1], **expand(k[0], json.loads(body)))
    a = e.get("attrs")
    if e["op"] == "execute_tool" and a and (k[0], a.get("gen_ai.tool.call.id")) in calls:
        args, idem, res = calls[(k[0], a["gen_ai.tool.call.id"])]
        if e["phase"] == "begin":
            a["gen_ai.tool.call.arguments"], a["agentd.idempotency_key"] = args, idem
        elif e["phase"] == "end" and res is not None:
            a["gen_ai.tool.call.result"] = res.encode()[:1024].decode("utf-8", "ignore")
    return e
seen, bad = set(), []
for name in sorted(os.listdir(sys.argv[1])):
    if not name.startswith("segment-"):
        continue
    for line in open(os.path.join(sys.argv[1], name)):
        e = json.loads(line)
        k = (e["run_id"], e["seq"])
        if k in seen or k not in want or e != whole(k, want[k]):
            bad.append(k)
        seen.add(k)
print("%d %d %d" % (len(bad), len(seen), len(want)))
