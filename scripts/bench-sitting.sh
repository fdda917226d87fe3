#!/bin/sh
# One benchmark sitting for docs/performance.md (not a test): every figure of issue 17 for two
# builds, measured alternately in one go so the machine's state hits both alike.
#   BEFORE=/path/to/other/checkout scripts/bench-sitting.sh [ROUNDS]   (default 3)
# Each checkout needs ./agentd and build/release/fakellm (make build-all). Per round, in
# alternating order: scripts/bench.sh 1 (S1, S2 at 1,000, S3, DB), S2_RUNS=100
# scripts/bench.sh 1 (S2 at 100: run latency against the latency-bound ideal), the same with
# DURABILITY=normal (no fsync: is it the disk that S2 at 100 waits for?) and S2_RUNS=10; once per
# build: scripts/bench-step.sh (malloc calls and instructions per step) and
# scripts/scale.sh 10000. First, the disk: the median time of one fdatasync of a 4 KiB write
# here, and what S1's commits per step make of it (docs/durability.md, "Commits per step":
# a 4-step run of the benchmark commits 7 times, one after another). Prints each script's
# own lines, then a table of medians (min..max over the rounds). The scripts run are those
# of this checkout, for both builds.
set -u
ROOTA=$(cd "${BEFORE:?BEFORE=/path/to/checkout}" && pwd)
ROOTB=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${1:-3}
W=$(mktemp -d /tmp/agentd-sitting.XXXXXX)
trap 'rm -rf "$W"' EXIT
echo "sitting: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "before: $ROOTA ($(git -C "$ROOTA" rev-parse --short HEAD 2>/dev/null))"
echo "after:  $ROOTB ($(git -C "$ROOTB" rev-parse --short HEAD 2>/dev/null))"
python3 - "$W" >"$W/fsync" <<'PY'
import os, statistics, sys, time
p = os.path.join(sys.argv[1], "probe")
fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b"x" * 65536)
os.fdatasync(fd)
lat = []
for i in range(400):
    os.pwrite(fd, b"y" * 4096, (i % 16) * 4096)
    t = time.perf_counter()
    os.fdatasync(fd)
    lat.append((time.perf_counter() - t) * 1000)
os.close(fd)
lat.sort()
print("%.3f %.3f %.3f" % (statistics.median(lat), lat[len(lat) // 10], lat[len(lat) * 9 // 10]))
PY
read -r FS_MED FS_P10 FS_P90 <"$W/fsync"
echo "disk: fdatasync of a 4 KiB write: median $FS_MED ms (p10 $FS_P10, p90 $FS_P90)"
echo "      S1 commits 7 times per 4 steps in a row: $(python3 -c "print('%.3f' % (1.75 * $FS_MED))") ms of every step's wall is the disk's"
run() { # run WHICH ROOT OUTFILE [ENV...]: one bench.sh 1 of that build
    which=$1 root=$2 out=$3
    shift 3
    echo "--- $which: $* scripts/bench.sh 1"
    env "$@" AGENTD="$root/agentd" BUILD="$root/build/release" sh "$ROOTB/scripts/bench.sh" 1 |
        tee -a "$out"
}
r=0
while [ "$r" -lt "$ROUNDS" ]; do
    r=$((r + 1))
    if [ $((r % 2)) = 1 ]; then order="before after"; else order="after before"; fi
    for w in $order; do
        root=$ROOTB; [ "$w" = before ] && root=$ROOTA
        run "$w" "$root" "$W/$w.1000"
        run "$w" "$root" "$W/$w.100" S2_RUNS=100
        run "$w" "$root" "$W/$w.100n" S2_RUNS=100 DURABILITY=normal S1_RUNS=50
        run "$w" "$root" "$W/$w.10" S2_RUNS=10 S1_RUNS=50
    done
done
for w in before after; do
    root=$ROOTB; [ "$w" = before ] && root=$ROOTA
    echo "--- $w: scripts/bench-step.sh"
    AGENTD="$root/agentd" BUILD="$root/build/release" sh "$ROOTB/scripts/bench-step.sh" | tee "$W/$w.step"
    echo "--- $w: scripts/scale.sh ${SCALE_N:-10000}"
    AGENTD="$root/agentd" BUILD="$root/build/release" sh "$ROOTB/scripts/scale.sh" "${SCALE_N:-10000}" | tee "$W/$w.scale"
done
python3 - "$W" <<'PY'
import re, statistics, sys
w = sys.argv[1]
def nums(path, label, field=0):
    """Every round's first figure on the lines of `path` that start with `label`."""
    out = []
    try:
        for line in open(path):
            line = line.strip()
            if line.startswith(label):
                rest = line.split(":", 1)[1] if ":" in line else line[len(label):]
                rest = rest.split("[", 1)[0]  # not the target's figures
                v = re.findall(r"[-+]?\d[\d.,]*(?:e[-+]?\d+)?", rest)
                if len(v) > field:
                    out.append(float(v[field].replace(",", "")))
    except OSError:
        pass
    return out
def cell(v):
    if not v:
        return "—"
    m = statistics.median(v)
    return "%.4g" % m if len(v) == 1 else "%.4g (%.4g..%.4g)" % (m, min(v), max(v))
rows = [
    ("S1 CPU per step, ms", "1000", "S1  CPU per step", "≤ 0.4"),
    ("S1 wall per step, ms", "1000", "wall per step", "≤ 1.0"),
    ("S2 CPU per step at 1,000, ms", "1000", "S2  CPU per step", "≤ 0.15"),
    ("S2 throughput at 1,000, steps/s", "1000", "throughput", "—"),
    ("S2 peak RSS per concurrent run at 1,000, KB", "1000", "peak RSS per concurrent run", "≤ 30"),
    ("S2 marginal memory per run at 1,000, KB", "1000", "marginal memory per run", "—"),
    ("S2 run latency at 100 concurrent (median), ms", "100", "run latency", "≤ ideal + 10 %"),
    ("S2 CPU per step at 100, ms", "100", "S2  CPU per step", "—"),
    ("S2 run latency at 100, durability normal (no fsync), ms", "100n", "run latency", "—"),
    ("S2 run latency at 10 concurrent (median), ms", "10", "run latency", "≤ ideal + 10 %"),
    ("S3 step with 8 parallel 100 ms tools, ms", "1000", "S3  step", "≤ 102"),
    ("DB bytes per 4-step run", "1000", "DB  bytes", "≤ 9 KB"),
    ("malloc calls per step (S1)", "step", "malloc calls per step", "reported"),
    ("instructions per step (S1, callgrind)", "step", "instructions per step", "—"),
    ("10,000 concurrent runs: peak RSS, MB", "scale", "peak RSS", "≤ 300 MB"),
]
print("\n| figure | before | after | target |\n| --- | --- | --- | --- |")
for name, f, label, target in rows:
    print("| %s | %s | %s | %s |" % (name, cell(nums("%s/before.%s" % (w, f), label)),
                                     cell(nums("%s/after.%s" % (w, f), label)), target))
PY
