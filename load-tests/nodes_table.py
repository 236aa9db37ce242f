#!/usr/bin/env python3
"""Tables of a `nodes.sh` run: several okrhub nodes on one Redis against one node.

    python3 load-tests/nodes_table.py [--p99-bound-ms 10] RUNS.jsonl

Latency scenarios: per scenario and node count, the medians over the reps, and the ratio (or
the difference, for latencies) against the first node count of the run (the baseline, one
node), with the min-max of the per-rep paired values in brackets (same rep: run back to back).
With several nodes the deliveries are split into same-node (editor and receiver on one node)
and cross-node pairs. CPU per delivery is the window's CPU (schedstat ns, or clock ticks) of
every node process summed, and of redis-server apart, divided by the deliveries in the window.

Throughput (`saturate`): per node count, the peak delivered/s, and the highest delivered/s of
a step whose p99 delivery stayed within the bound and whose edits all arrived.
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
        for n in counts[1:]:
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


def best_within(r, bound_ms):
    steps = r.get("steps") or [r["main"]]
    ok = [s for s in steps if s["delivery_p99_us"] <= bound_ms * 1000 and s["incomplete_edits"] == 0]
    return max(ok, key=lambda s: s["delivered_per_s"]) if ok else None


def throughput_table(runs, bound_ms, out):
    per_n = defaultdict(dict)
    for r in runs:
        if r["spec"] == "saturate":
            per_n[r["nodes"]][r["rep"]] = r
    if not per_n:
        return
    counts = sorted(per_n)
    base_n = counts[0]
    reps = max(len(v) for v in per_n.values())
    out.append(f"\n### Throughput (saturate: 10 rooms × 10 clients, 5 editors, map edits, deferred apply; "
               f"medians of {reps} runs)\n")
    out.append(f"| nodes | peak delivered/s | vs {base_n} | at the peak: p99 ms | nodes CPU % | redis CPU % "
               f"| µs/delivery nodes + redis | best step with p99 ≤ {bound_ms:g} ms: delivered/s | vs {base_n} "
               f"| its p99 ms | peak bound |")
    out.append("|---" * 11 + "|")
    base_peak = med([r["main"]["delivered_per_s"] for r in per_n[base_n].values()])
    base_ok = med([(best_within(r, bound_ms) or {}).get("delivered_per_s", 0) for r in per_n[base_n].values()])
    for n in counts:
        rs = list(per_n[n].values())
        peak = med([r["main"]["delivered_per_s"] for r in rs])
        p99 = med([r["main"]["delivery_p99_us"] / 1000 for r in rs])
        ncpu = med([r["main"]["server_cpu_pct"] for r in rs])
        rcpu = med([(r["main"].get("store_cpu_s") or 0) * 100 / r["main"]["window_s"] for r in rs])
        us = med([total_cpu(r) for r in rs])
        nus = med([r["main"]["server_cpu_us_per_delivery"] for r in rs])
        rus = med([r["main"].get("store_cpu_us_per_delivery") for r in rs])
        oks = [best_within(r, bound_ms) for r in rs]
        ok = med([(s or {}).get("delivered_per_s", 0) for s in oks])
        ok_p99 = med([s["delivery_p99_us"] / 1000 for s in oks if s])
        bounds = ", ".join(sorted({str(r.get("peak_bound")) for r in rs}))
        out.append(f"| {n} | {fmt(peak)} | {peak / base_peak:.2f}× | {fmt(p99)} | {fmt(ncpu)} | {fmt(rcpu)} "
                   f"| {fmt(nus)} + {fmt(rus)} = {fmt(us)} | {fmt(ok)} | "
                   f"{(ok / base_ok) if base_ok else float('nan'):.2f}× | {fmt(ok_p99)} | {bounds} |")
    out.append("\nPeak bound: what the generator's stop rule saw (`server`: the nodes' summed CPU near "
               "one core; redis-server's CPU is not in it). Every step of every run:")
    out.append("\n| nodes | rep | rate/s per editor | delivered/s | p50 ms | p99 ms | nodes CPU % | redis CPU % | incomplete |")
    out.append("|---" * 9 + "|")
    for n in counts:
        for rep, r in sorted(per_n[n].items()):
            for s in r.get("steps") or [r["main"]]:
                rc = (s.get("store_cpu_s") or 0) * 100 / s["window_s"]
                out.append(f"| {n} | {rep + 1} | {s['rate']:g} | {fmt(s['delivered_per_s'])} | "
                           f"{s['delivery_p50_us'] / 1000:.2f} | {s['delivery_p99_us'] / 1000:.2f} | "
                           f"{fmt(s['server_cpu_pct'])} | {fmt(rc)} | {s['incomplete_edits']} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--p99-bound-ms", type=float, default=10.0)
    ap.add_argument("runs")
    a = ap.parse_args()
    runs = [json.loads(line) for line in open(a.runs) if line.startswith("{")]
    out = []
    latency_tables(runs, out)
    throughput_table(runs, a.p99_bound_ms, out)
    print("\n".join(out))


if __name__ == "__main__":
    main()
