#!/usr/bin/env python3
"""Tables of a `nodes.sh` run: several okrhub nodes on one Redis against one node.

    python3 load-tests/nodes_table.py [--p99-bound-ms 10,50] RUNS.jsonl

Latency scenarios: per scenario and node count, the medians over the reps, and the ratio (or
the difference, for latencies) against the first node count of the run (the baseline, one
node), with the min-max of the per-rep paired values in brackets (same rep: run back to back).
With several nodes the deliveries are split into same-node (editor and receiver on one node)
and cross-node pairs. CPU per delivery is the window's CPU (schedstat ns, or clock ticks) of
every node process summed, and of redis-server apart, divided by the deliveries in the window.

Throughput (`saturate`): per node count, the highest delivered/s of a step whose edits all
reached every client ("sustained"), and of one whose p99 delivery also stayed within each bound.
"""
import argparse
import json
import statistics as st
from collections import defaultdict


def med(xs):
    xs = [x for x in xs if x is not None]
    return st.median(xs) if xs else None


def fmt(v, unit=""):
    if v is None:
        return "–"
    if abs(v) >= 100:
        return f"{v:,.0f}{unit}"
    return f"{v:.2f}{unit}"


def spread(xs, fmt_one):
    xs = [x for x in xs if x is not None]
    if not xs:
        return ""
    return f" ({fmt_one(min(xs))} – {fmt_one(max(xs))})"


def node_lat(r, kind, q):
    m = r["main"]
    if kind == "all":
        return m[f"delivery_{q}_us"] / 1000
    part = m.get(f"{kind}_node")
    return part[f"{q}_us"] / 1000 if part and part["deliveries"] else None


def total_cpu(r):
    m = r["main"]
    a, b = m.get("server_cpu_us_per_delivery"), m.get("store_cpu_us_per_delivery")
    return None if a is None or b is None else a + b


METRICS = [
    # (title, getter, kind): kind "ratio" compares with the baseline by n/1, "diff" by n − 1.
    ("delivered/s", lambda r: r["main"]["delivered_per_s"], "ratio"),
    ("p50 delivery, all pairs (ms)", lambda r: node_lat(r, "all", "p50"), "diff"),
    ("p50 same-node pairs (ms)", lambda r: node_lat(r, "same", "p50"), "diff"),
    ("p50 cross-node pairs (ms)", lambda r: node_lat(r, "cross", "p50"), "diff"),
    ("p99 delivery, all pairs (ms)", lambda r: node_lat(r, "all", "p99"), "diff"),
    ("p99 same-node pairs (ms)", lambda r: node_lat(r, "same", "p99"), "diff"),
    ("p99 cross-node pairs (ms)", lambda r: node_lat(r, "cross", "p99"), "diff"),
    ("CPU µs/delivery, okrhub nodes", lambda r: r["main"]["server_cpu_us_per_delivery"], "ratio"),
    ("CPU µs/delivery, redis-server", lambda r: r["main"].get("store_cpu_us_per_delivery"), "ratio"),
    ("CPU µs/delivery, nodes + redis", total_cpu, "ratio"),
]


def latency_tables(runs, out):
    by_spec = defaultdict(lambda: defaultdict(dict))  # spec -> nodes -> rep -> run
    for r in runs:
        if r["spec"] == "saturate":
            continue
        by_spec[r["spec"]][r["nodes"]][r["rep"]] = r
    for spec, per_n in by_spec.items():
        counts = sorted(per_n)
        base_n = counts[0]
        base = per_n[base_n]
        reps = max(len(v) for v in per_n.values())
        out.append(f"\n### {spec}: {' vs '.join(f'{n} node' + ('s' if n > 1 else '') for n in counts)}"
                   f" (medians of {reps} runs; in brackets the per-rep range)\n")
        head = "| metric | " + " | ".join(f"{n} node{'s' if n > 1 else ''}" for n in counts)
        head += "".join(f" | {n} vs {base_n}" for n in counts[1:]) + " |"
        out.append(head)
        out.append("|---" * (1 + len(counts) + len(counts) - 1) + "|")
        for title, get, kind in METRICS:
            cells = []
            for n in counts:
                vals = [get(r) for r in per_n[n].values()]
                cells.append(fmt(med(vals)))
            for n in counts[1:]:
                paired = []
                for rep, r in per_n[n].items():
                    b = base.get(rep)
                    if b is None or get(r) is None or get(b) is None:
                        continue
                    if kind == "ratio":
                        paired.append(get(r) / get(b) if get(b) else None)
                    else:
                        paired.append(get(r) - get(b))
                mn = med([get(r) for r in per_n[n].values()])
                mb = med([get(r) for r in base.values()])
                if mn is None or mb is None:
                    cells.append("–")
                elif kind == "ratio":
                    cells.append(f"{mn / mb:.2f}×" + spread(paired, lambda v: f"{v:.2f}"))
                else:
                    cells.append(f"{mn - mb:+.2f} ms" + spread(paired, lambda v: f"{v:+.2f}"))
            out.append(f"| {title} | " + " | ".join(cells) + " |")
        # Cross-node against same-node pairs of the same run.
        for n in [c for c in counts if c > 1]:
            d50 = [node_lat(r, "cross", "p50") - node_lat(r, "same", "p50")
                   for r in per_n[n].values()
                   if node_lat(r, "cross", "p50") is not None and node_lat(r, "same", "p50") is not None]
            d99 = [node_lat(r, "cross", "p99") - node_lat(r, "same", "p99")
                   for r in per_n[n].values()
                   if node_lat(r, "cross", "p99") is not None and node_lat(r, "same", "p99") is not None]
            if d50:
                out.append(f"\n{n} nodes, cross-node minus same-node pairs of the same run: p50 "
                           f"{med(d50):+.2f} ms{spread(d50, lambda v: f'{v:+.2f}')}, p99 "
                           f"{med(d99):+.2f} ms{spread(d99, lambda v: f'{v:+.2f}')}")
            shares = [r["main"]["cross_node"]["deliveries"] / max(1, r["main"]["timed_deliveries"])
                      for r in per_n[n].values() if r["main"].get("cross_node")]
            if shares:
                out.append(f"(cross-node pairs are {100 * med(shares):.0f} % of the timed deliveries)")
        conv = []
        for n in counts:
            rs = list(per_n[n].values())
            errs = sum(r.get("relay", {}).get("okrhub_relay_errors_total", 0) for r in rs)
            inc = sum(r["main"]["incomplete_edits"] for r in rs)
            conv.append(f"{n} node{'s' if n > 1 else ''}: converged {sum(r['converged'] for r in rs)}/{len(rs)}, "
                        f"incomplete edits {inc}, relay errors {errs}, "
                        f"busy before {max(r.get('busy_before_pct', 0) for r in rs)} % at most")
        out.append("\n" + "; ".join(conv))
        for n in counts:
            rs = [r for r in per_n[n].values() if r.get("redis_commands")]
            if not rs:
                continue
            names = sorted({c for r in rs for c in r["redis_commands"]},
                           key=lambda c: -med([r["redis_commands"].get(c, {}).get("usec", 0) for r in rs]))
            cells = []
            for c in names[:8]:
                calls = med([r["redis_commands"].get(c, {}).get("calls", 0) for r in rs])
                usec = med([r["redis_commands"].get(c, {}).get("usec", 0) for r in rs])
                cells.append(f"{c} {calls:,.0f} ({usec / 1000:,.0f} ms)")
            xr = med([r["redis_commands"].get("xrange", {}).get("calls", 0) for r in rs])
            out.append(f"\nredis-server over the whole run, {n} node{'s' if n > 1 else ''} (median calls, "
                       f"and CPU inside the command): " + ", ".join(cells)
                       + f"; XRANGE (room loads and the relay's reads of the log) {xr:,.0f}")


def complete(s):
    return s["incomplete_edits"] == 0 and s["timed_deliveries"] >= s["expected_deliveries"]


def best_step(r, bound_ms=None):
    steps = r.get("steps") or [r["main"]]
    ok = [s for s in steps if complete(s)
          and (bound_ms is None or s["delivery_p99_us"] <= bound_ms * 1000)]
    return max(ok, key=lambda s: s["delivered_per_s"]) if ok else None


def store_pct(s):
    return (s.get("store_cpu_s") or 0) * 100 / s["window_s"]


def throughput_table(runs, bounds, out):
    per_n = defaultdict(dict)
    for r in runs:
        if r["spec"] == "saturate":
            per_n[r["nodes"]][r["rep"]] = r
    if not per_n:
        return
    counts = sorted(per_n)
    base_n = counts[0]
    reps = max(len(v) for v in per_n.values())
    some = next(iter(per_n[base_n].values()))
    rates = [s["rate"] for s in some.get("steps") or [some["main"]]]
    factor = rates[1] / rates[0] if len(rates) > 1 else 1
    out.append(f"\n### Throughput (saturate: 10 rooms × 10 clients, 5 editors, map edits, deferred apply; "
               f"rate from {rates[0]:g}/s per editor × {factor:.3g} a step; medians of {reps} runs)\n")
    out.append(f"| nodes | sustained delivered/s | vs {base_n} | its p99 ms | nodes CPU % | redis CPU % "
               f"| µs/delivery nodes + redis | "
               + " | ".join(f"with p99 ≤ {b:g} ms: delivered/s | vs {base_n} | its p99 ms" for b in bounds) + " |")
    out.append("|---" * (7 + 3 * len(bounds)) + "|")
    rows = {}
    for n in counts:
        rs = list(per_n[n].values())
        best = [best_step(r) for r in rs]
        within = [[best_step(r, b) for r in rs] for b in bounds]
        rows[n] = [med([(s or {}).get("delivered_per_s", 0) for s in best])] + \
            [med([(s or {}).get("delivered_per_s", 0) for s in w]) for w in within]
        us_n = med([s["server_cpu_us_per_delivery"] for s in best if s])
        us_r = med([s.get("store_cpu_us_per_delivery") for s in best if s])
        out.append(
            f"| {n} | {fmt(rows[n][0])} | {rows[n][0] / rows[base_n][0]:.2f}× "
            f"| {fmt(med([s['delivery_p99_us'] / 1000 for s in best if s]))} "
            f"| {fmt(med([s['server_cpu_pct'] for s in best if s]))} "
            f"| {fmt(med([store_pct(s) for s in best if s]))} "
            f"| {fmt(us_n)} + {fmt(us_r)} = {fmt((us_n or 0) + (us_r or 0))} | "
            + " | ".join(
                f"{fmt(rows[n][i + 1])} | "
                f"{(rows[n][i + 1] / rows[base_n][i + 1]) if rows[base_n][i + 1] else float('nan'):.2f}× | "
                f"{fmt(med([s['delivery_p99_us'] / 1000 for s in w if s]))}"
                for i, w in enumerate(within)) + " |")
    # The same offered rate on each node count: what relaying an update to one more node costs.
    by_rate = defaultdict(lambda: defaultdict(list))
    for n in counts:
        for r in per_n[n].values():
            for s in r.get("steps") or [r["main"]]:
                if complete(s):
                    by_rate[round(s["rate"], 3)][n].append(s)
    out.append(f"\nAt equal offered rates (medians of the complete steps): updates/s, the nodes' and "
               f"redis-server's CPU (% of a core), redis-server's CPU per update (µs), and the nodes' extra "
               f"CPU per update relayed to one more node, (CPU(N) − CPU({base_n})) / ((N − {base_n}) × updates/s) (µs):\n")
    out.append("| rate/s per editor | updates/s | " + " | ".join(
        f"{n} node{'s' if n > 1 else ''}: nodes % / redis % / redis µs/update"
        + ("" if n == base_n else " / relay µs") for n in counts) + " |")
    out.append("|---" * (2 + len(counts)) + "|")
    for rate in sorted(by_rate):
        row = by_rate[rate]
        if base_n not in row:
            continue
        ups = med([s["edits_per_s"] for s in row[base_n]])
        base_cpu = med([s["server_cpu_pct"] for s in row[base_n]])
        cells = []
        for n in counts:
            if n not in row:
                cells.append("–")
                continue
            u = med([s["edits_per_s"] for s in row[n]])
            c = med([s["server_cpu_pct"] for s in row[n]])
            rc = med([store_pct(s) for s in row[n]])
            cell = f"{fmt(c)} / {fmt(rc)} / {fmt(rc / 100 / u * 1e6)}"
            if n != base_n:
                cell += f" / {fmt((c - base_cpu) / 100 / ((n - base_n) * u) * 1e6)}"
            cells.append(cell)
        out.append(f"| {rate:g} | {fmt(ups)} | " + " | ".join(cells) + " |")
    out.append("\nSustained: the best step whose every edit reached every client (a step past it lost "
               "clients to the slow-consumer cut-off or left edits undelivered). Every step of every run:")
    out.append("\n| nodes | rep | rate/s per editor | delivered/s | p50 ms | p99 ms | same-node p50 / p99 ms "
               "| cross-node p50 / p99 ms | nodes CPU % | redis CPU % | µs/delivery nodes + redis | complete |")
    out.append("|---" * 12 + "|")
    for n in counts:
        for rep, r in sorted(per_n[n].items()):
            for s in r.get("steps") or [r["main"]]:
                pair = lambda k: (f"{s[k]['p50_us'] / 1000:.2f} / {s[k]['p99_us'] / 1000:.2f}"
                                  if s.get(k) and s[k]["deliveries"] else "–")
                us = (s.get("server_cpu_us_per_delivery") or 0) + (s.get("store_cpu_us_per_delivery") or 0)
                out.append(f"| {n} | {rep + 1} | {s['rate']:g} | {fmt(s['delivered_per_s'])} | "
                           f"{s['delivery_p50_us'] / 1000:.2f} | {s['delivery_p99_us'] / 1000:.2f} | "
                           f"{pair('same_node')} | {pair('cross_node')} | "
                           f"{fmt(s['server_cpu_pct'])} | {fmt(store_pct(s))} | {us:.2f} | "
                           f"{'yes' if complete(s) else 'no: %d edits incomplete' % s['incomplete_edits']} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--p99-bound-ms", default="10,50", help="comma-separated bounds (ms)")
    ap.add_argument("runs")
    a = ap.parse_args()
    runs = [json.loads(line) for line in open(a.runs) if line.startswith("{")]
    out = []
    latency_tables(runs, out)
    throughput_table(runs, [float(b) for b in a.p99_bound_ms.split(",")], out)
    print("\n".join(out))


if __name__ == "__main__":
    main()
