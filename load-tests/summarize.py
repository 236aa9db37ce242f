#!/usr/bin/env python3
"""Summarises okrhub-load JSON lines (one per run) into a markdown table: the median of each
number per scenario and server, and the ratio okrhub / peer for each peer.

    python3 load-tests/summarize.py load-tests/results/run-*.jsonl
"""
import json
import statistics
import sys
from collections import defaultdict

# (column title, how to read it from a report, lower is better)
METRICS = [
    ("server CPU µs/delivery", lambda r: r["main"].get("server_cpu_us_per_delivery"), True),
    ("delivered/s", lambda r: r["main"].get("delivered_per_s"), False),
    ("p50 delivery ms", lambda r: r["main"]["delivery_p50_us"] / 1000, True),
    ("p99 delivery ms", lambda r: r["main"]["delivery_p99_us"] / 1000, True),
    ("p99 last client ms", lambda r: r["main"]["complete_p99_us"] / 1000, True),
    ("RSS KiB/conn", lambda r: r.get("server_rss_per_conn_kib"), True),
    ("server CPU ms/join", lambda r: r.get("server_cpu_ms_per_join"), True),
    ("peak delivered/s", lambda r: r.get("peak_delivered_per_s"), False),
]
# Which numbers each scenario is about (the others are printed only where they make sense).
FOCUS = {
    "workshop": [0, 1, 2, 3, 4],
    "screens": [0, 1, 2, 3, 4],
    "heavy": [0, 1, 2, 3, 4],
    "saturate": [7],
    "idle": [5],
    "coldjoin": [6],
    # The OKR scenarios and their baselines (the same file with --edit-kind draft-title) are
    # told apart by their edit kind: see scenario_of.
    "okr-typing (okr-title)": [0, 1, 2, 3, 4],
    "okr-typing (draft-title)": [0, 1, 2, 3, 4],
    "okr-screens (okr-title)": [0, 1, 2, 3, 4],
    "okr-screens (draft-title)": [0, 1, 2, 3, 4],
    "okr-heavy (okr-title)": [0, 1, 2, 3, 4],
    "okr-heavy (draft-title)": [0, 1, 2, 3, 4],
}


def scenario_of(r):
    """The scenario of a report; for the title edit kinds with the kind, as the generator's
    table row prints it, since a scenario and its baseline share one file."""
    kind = r.get("edit_kind")
    if kind in ("okr-title", "draft-title"):
        return f'{r["scenario"]} ({kind})'
    return r["scenario"]


def main(paths):
    runs = defaultdict(list)
    diverged = defaultdict(int)
    bounds = defaultdict(lambda: defaultdict(int))
    for path in paths:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                r = json.loads(line)
                s = scenario_of(r)
                runs[(s, r["label"])].append(r)
                if r["label"] != "floor" and not r.get("converged", False):
                    diverged[(s, r["label"])] += 1
                if r.get("peak_bound"):
                    bounds[(s, r["label"])][r["peak_bound"]] += 1
    scenarios = sorted({s for s, _ in runs}, key=lambda s: list(FOCUS).index(s) if s in FOCUS else 99)
    labels = sorted({l for _, l in runs}, key=lambda l: (l != "okrhub", l))
    print("| scenario | metric | " + " | ".join(labels) + " | " +
          " | ".join(f"okrhub / {l}" for l in labels if l != "okrhub") + " |")
    print("|---|---|" + "---|" * (2 * len(labels) - 1))
    for s in scenarios:
        for i in FOCUS.get(s, range(len(METRICS))):
            title, get, _ = METRICS[i]
            medians = {}
            for l in labels:
                vals = [v for v in (read(get, r) for r in runs.get((s, l), [])) if v is not None]
                medians[l] = statistics.median(vals) if vals else None
            if all(v is None for v in medians.values()):
                continue
            cells = [fmt(medians[l]) for l in labels]
            ratios = []
            for l in labels:
                if l == "okrhub":
                    continue
                a, b = medians.get("okrhub"), medians[l]
                ratios.append(f"{a / b:.2f}" if a is not None and b else "–")
            print(f"| {s} | {title} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    n = {k: len(v) for k, v in runs.items()}
    print()
    print("runs: " + ", ".join(f"{s}/{l}: {c}" for (s, l), c in sorted(n.items())))
    if bounds:
        # What bounded each saturation peak: the server's CPU, the generator's, or neither.
        print("peaks bounded by: " + "; ".join(
            f"{s}/{l}: " + ", ".join(f"{b} {c}" for b, c in sorted(bs.items()))
            for (s, l), bs in sorted(bounds.items())))
    if diverged:
        print("NOT CONVERGED: " + ", ".join(f"{s}/{l}: {c}" for (s, l), c in diverged.items()))
    else:
        print("every room converged in every run")


def read(get, report):
    """A metric of a report, or None where the report does not have it (the kernel floor)."""
    try:
        return get(report)
    except (KeyError, TypeError):
        return None


def fmt(v):
    if v is None:
        return "–"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.2f}"


if __name__ == "__main__":
    main(sys.argv[1:])
