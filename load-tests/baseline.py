#!/usr/bin/env python3
"""Each scenario against its unprojected baseline, pooled over every run of an ab.sh results file.

    python3 load-tests/baseline.py RUNS.jsonl [RUNS.jsonl ...]

ab.sh names each run ab-SPEC-REP-SIDE-PID, SPEC being SCENARIO or SCENARIO:EDIT_KIND (a colon
written as "__"). For every SCENARIO that ran beside SCENARIO:draft-title this prints the medians
of server CPU per delivery, p50 and p99 over all its runs (both sides: run ab.sh with the same
binary twice to get twice the samples) and the ratio to the baseline's. For okr-screens it adds
CPU per delivered message, /live events included (the baseline's screens get none).
"""
import json
import statistics as st
import sys
from collections import defaultdict

runs = defaultdict(list)
for path in sys.argv[1:]:
    for line in open(path):
        r = json.loads(line)
        spec = r["run_id"][len("ab-"):].rsplit("-", 3)[0].replace("__", ":")
        runs[spec].append(r)


def per_message(r):
    m = r["main"]
    cpu, sync = m["server_cpu_us_per_delivery"], m["delivered_per_s"]
    live = m.get("live_frames", 0) / m["window_s"] if m.get("window_s") else 0
    return cpu * sync / (sync + live) if cpu is not None and sync else None


METRICS = [
    ("server CPU µs/delivery", lambda r: r["main"]["server_cpu_us_per_delivery"]),
    ("… per delivered message (sync + /live)", per_message),
    ("p50 delivery ms", lambda r: r["main"]["delivery_p50_us"] / 1000),
    ("p99 delivery ms", lambda r: r["main"]["delivery_p99_us"] / 1000),
]

for s in sorted(runs):
    base = f"{s}:draft-title"
    if ":" in s or base not in runs:
        continue
    print(f"\n### {s}: {len(runs[s])} runs, {base}: {len(runs[base])} runs\n")
    print("| metric | OKR title (median) | unprojected (median) | OKR / unprojected |")
    print("|---|---|---|---|")
    for name, get in METRICS:
        a = [v for v in map(get, runs[s]) if v is not None]
        b = [v for v in map(get, runs[base]) if v is not None]
        if not a or not b:
            continue
        ma, mb = st.median(a), st.median(b)
        print(f"| {name} | {ma:.2f} | {mb:.2f} | {ma / mb:.3f} |")
