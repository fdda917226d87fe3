#!/usr/bin/env python3
"""Synthetic corpus for scripts/bench-rag.sh: Markdown files of sections, one chunk each.

usage: bench-rag-corpus.py OUTDIR CHUNKS QUESTIONS.jsonl [NQUESTIONS]

Words are drawn from a Zipf-like distribution over a 30,000-word made-up vocabulary of
random letter strings (so postings lists have the long tail of real text: a few words in
most chunks, most words in few; and spellings vary like real words, which the offline
embedder's character trigrams need). Each file has 100 sections of 60-140 words under "## Heading" lines; a section fits in
one 200-token structure chunk, so CHUNKS sections make CHUNKS chunks. Each file has a topic:
40 words that make 30% of its text, as real pages keep to a subject. Questions are 6 words
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
letters = "etaoinshrdlcumwfgypbvkjxqz"
lw = [12.7, 9.1, 8.2, 7.5, 7.0, 6.7, 6.3, 6.1, 6.0, 4.3, 4.0, 2.8, 2.8, 2.4, 2.4, 2.2, 2.0,
      2.0, 1.9, 1.5, 1.0, 0.8, 0.2, 0.2, 0.1, 0.1]
vocab, seen = [], set()
while len(vocab) < 30000:
    w = "".join(rng.choices(letters, lw, k=rng.randint(3, 10)))
    if w not in seen:
        seen.add(w)
        vocab.append(w)
# Zipf weights 1/rank: cumulative table for bisect sampling
cum, s = [], 0.0
for r in range(1, len(vocab) + 1):
    s += 1.0 / r
    cum.append(s)


def words(n, topic=None):
    return [rng.choice(topic) if topic and rng.random() < 0.3 else
            vocab[bisect.bisect_left(cum, rng.random() * s)] for _ in range(n)]


os.makedirs(out, exist_ok=True)
per_file = 100
nfiles = (nchunks + per_file - 1) // per_file
pick = set(rng.sample(range(nchunks), min(nq, nchunks)))
qs = []
made = 0
for f in range(nfiles):
    name = "f%06d.md" % f
    parts = ["# Document %d\n\n" % f]
    topic = rng.sample(vocab[200:], 40)  # what the file is about: 30% of its words
    for _ in range(min(per_file, nchunks - made)):
        body = words(rng.randint(60, 140), topic)
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
