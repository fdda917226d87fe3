#!/usr/bin/env python3
"""Check a trace segment log against its database: every line in SEGDIR/segment-*.jsonl must
be the database's event (its body with run_id and seq, and an execute_tool event's part of
its tool_calls row, as runtime/trace_db.c joins it), compared as JSON values, and no event
may appear twice. Prints "BAD SEEN TOTAL": mismatched or repeated lines, distinct events in
the segments, events in the database (the difference: lines a kill lost).
usage: scripts/segments-check.py SEGDIR DB"""
import json, os, sqlite3, sys
# The database's event as a line: its body with run_id and seq, and an execute_tool event's
# part of its tool_calls row (runtime/trace_db.c), compared as JSON values.
db = sqlite3.connect(sys.argv[2])
want = {(r, n): b for r, n, b in db.execute("SELECT run_id, seq, body FROM events")}
calls = {(r, c): (a, i, res) for r, c, a, i, res in
         db.execute("SELECT run_id, call_id, args, idem_key, result FROM tool_calls")}
def whole(k, body):
    e = dict(v=1, run_id=k[0], seq=k[1], **json.loads(body))
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
