#!/usr/bin/env python3
"""Synthetic corpus for scripts/bench-rag.sh: Markdown files of sections, one chunk each.

usage: bench-rag-corpus.py OUTDIR CHUNKS QUESTIONS.jsonl [NQUESTIONS]

Words are drawn from a Zipf-like distribution over a 30,000-word made-up vocabulary (so
postings lists have the long tail of real text: a few words in most chunks, most words in
few). Each file has 100 sections of 60-140 words under "## Heading" lines; a section fits in
one 200-token structure chunk, so CHUNKS sections make CHUNKS chunks. Questions are 6 words
taken from a random section (mixed with 2 common words), labelled with the file it came
from, so `agentd kb eval` reports both latency and a recall sanity check. Deterministic.
"""
import bisect
import json
import os
import random
import sys

out, nchunks, qpath = sys.argv[1], int(sys.argv[2]), sys.argv[3]
nq = int(sys.argv[4]) if len(sys.argv) > 4 else 200
rng = random.Random(42)
syl = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "pe", "qua", "dor", "ble", "tri",
       "an", "es", "ux", "ol", "ir", "zen", "gra"]
vocab, seen = [], set()
while len(vocab) < 30000:
    w = "".join(rng.choice(syl) for _ in range(rng.randint(2, 4)))
    if w not in seen:
        seen.add(w)
        vocab.append(w)
# Zipf weights 1/rank: cumulative table for bisect sampling
cum, s = [], 0.0
for r in range(1, len(vocab) + 1):
    s += 1.0 / r
    cum.append(s)


def words(n):
    return [vocab[bisect.bisect_left(cum, rng.random() * s)] for _ in range(n)]


os.makedirs(out, exist_ok=True)
per_file = 100
nfiles = (nchunks + per_file - 1) // per_file
pick = set(rng.sample(range(nchunks), min(nq, nchunks)))
qs = []
made = 0
for f in range(nfiles):
    name = "f%06d.md" % f
    parts = ["# Document %d\n\n" % f]
    for _ in range(min(per_file, nchunks - made)):
        body = words(rng.randint(60, 140))
        parts.append("## %s %s\n\n" % tuple(words(2)))
        # paragraphs of about 40 words, sentences of about 12
        for p in range(0, len(body), 40):
            sent = body[p:p + 40]
            parts.append(". ".join(" ".join(sent[i:i + 12]) for i in range(0, len(sent), 12)))
            parts.append(".\n\n")
        if made in pick:
            i = rng.randint(0, len(body) - 6)
            q = body[i:i + 6] + [vocab[rng.randint(0, 20)] for _ in range(2)]
            rng.shuffle(q)
            qs.append({"q": " ".join(q), "pages": [name]})
        made += 1
    with open(os.path.join(out, name), "w") as fh:
        fh.write("".join(parts))
with open(qpath, "w") as fh:
    for q in qs:
        fh.write(json.dumps(q) + "\n")
