#!/usr/bin/env bash
# A/B comparison of two okrhub server binaries under the same load generator.
#
#   load-tests/ab.sh OLD_BIN NEW_BIN [SCENARIO...]      # default scenario: workshop
#   REPS=7 load-tests/ab.sh /work/old/target/release/okrhub target/release/okrhub workshop heavy
#   load-tests/ab.sh OLD NEW okr-typing okr-typing:draft-title   # SCENARIO:EDIT_KIND
#
# Each rep runs every scenario on both binaries, old then new (new then old on odd reps, so
# slow drift of the machine cancels out). Each run gets a fresh server, pinned to core 0, with an
# empty data dir; the generator (ONE binary, ./target/release/okrhub-load, for both sides) is
# pinned to core 1 and writes one JSON line per run. At the end a table gives, per scenario, the
# medians over the reps for old and new and the ratio new/old of the medians, plus the range of
# the per-rep (paired) ratios, which shows how much of a difference is noise. A scenario written
# SCENARIO:EDIT_KIND runs with `--edit-kind EDIT_KIND`; when both `S` and `S:draft-title` run,
# a last table sets each binary's OKR-title typing against its own unprojected baseline.
#
# Nothing else should run meanwhile (a cargo build on either core swamps the differences): each
# run prints how busy the machine was just before it, and warns above 10%.
# Env: REPS (5), PORT (24710), OUT (results dir, default a new /tmp/okrhub-ab.* dir),
#      GEN_TIMEOUT (s per generator run, 900), SETTLE (s of pause between runs, 1).
# Build both binaries the same way (`cargo build --release -p okrhub`): `cargo bench` rebuilds
# target/release/okrhub with the dev-dependencies' features (tokio test-util, …) unified in.
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: $0 OLD_BIN NEW_BIN [SCENARIO...]   (env REPS, PORT, OUT, GEN_TIMEOUT, SETTLE)" >&2
  exit 2
fi
OLD_BIN=$(realpath "$1") NEW_BIN=$(realpath "$2")    # relative to the caller's directory
shift 2
cd "$(dirname "$0")/.."
ROOT=$PWD
SCENARIOS=("${@:-workshop}")
REPS=${REPS:-5}
PORT=${PORT:-24710}                 # below the ephemeral range, away from peers.sh's 247xx
GEN_TIMEOUT=${GEN_TIMEOUT:-900}
SETTLE=${SETTLE:-1}
OUT=${OUT:-$(mktemp -d /tmp/okrhub-ab.XXXXXX)}
GEN=$ROOT/target/release/okrhub-load
mkdir -p "$OUT"
RUN=$OUT/runs.jsonl

for b in "$OLD_BIN" "$NEW_BIN"; do
  [[ -x $b ]] || { echo "not an executable: $b" >&2; exit 2; }
done
for s in "${SCENARIOS[@]}"; do
  [[ -f $ROOT/load-tests/scenarios/${s%%:*}.toml ]] || { echo "no scenario file: ${s%%:*}" >&2; exit 2; }
done
[[ $OLD_BIN == "$NEW_BIN" ]] && echo "note: OLD_BIN and NEW_BIN are the same file (harness test?)"
if [[ ! -x $GEN ]]; then
  echo "building the generator (okrhub-load)"
  cargo build --release --locked -p okrhub-load >/dev/null
fi
# The idle scenario needs ~18k descriptors; children (server and generator) inherit this.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
# Every generator connection comes from 127.0.0.1: no per-address cap (binaries without the
# flag ignore the variable).
export OKRHUB_MAX_CONNECTIONS_PER_IP=0

# --- server lifecycle ------------------------------------------------------------------------
SERVER_PID= SERVER_DATA=
stop_server() {
  if [[ -n $SERVER_PID ]]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do            # up to 10 s for a graceful exit, then SIGKILL
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "   server $SERVER_PID ignored SIGTERM for 10 s: SIGKILL" >&2
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
  if [[ -n $SERVER_DATA ]]; then rm -rf "$SERVER_DATA"; SERVER_DATA=; fi
}
GEN_PID=
cleanup() {
  if [[ -n $GEN_PID ]]; then kill -TERM "$GEN_PID" 2>/dev/null || true; wait "$GEN_PID" || true; fi
  stop_server
}
trap cleanup EXIT
trap 'exit 130' INT TERM                 # run the EXIT trap on ^C / kill too

# busy_pct: % of all cores busy over 0.5 s (our server is stopped then: this is other load).
busy_pct() {
  local a b
  a=($(head -1 /proc/stat)); sleep 0.5; b=($(head -1 /proc/stat))
  local idle=$(( b[4] + b[5] - a[4] - a[5] )) total=0 i
  for i in 1 2 3 4 5 6 7 8; do total=$(( total + b[i] - a[i] )); done
  echo $(( total > 0 ? 100 * (total - idle) / total : 0 ))
}

healthy() { curl -sf -m 1 -o /dev/null "http://127.0.0.1:$PORT/healthz"; }

# start_server BIN LOGFILE: fresh data dir, pinned to core 0; waits (≤ 10 s) for /healthz.
start_server() {
  if healthy; then   # something else already answers here: its numbers would not be ours
    echo "port $PORT already serves /healthz; set PORT" >&2; exit 1
  fi
  SERVER_DATA=$(mktemp -d /tmp/okrhub-ab-data.XXXXXX)
  # The generator is one client address sending far above a person's rates: the per-client
  # limits are off (environment variables, which older binaries ignore).
  OKRHUB_MESSAGE_RATE=0 OKRHUB_NEW_ROOMS_PER_MINUTE=0 \
    taskset -c 0 "$1" --listen "127.0.0.1:$PORT" --data-dir "$SERVER_DATA" >"$2" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "server exited at start, see $2" >&2; exit 1; }
    healthy && return 0
    sleep 0.1
  done
  echo "server did not answer /healthz within 10 s, see $2" >&2
  exit 1
}

# --- the runs --------------------------------------------------------------------------------
echo "results: $RUN   (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
for rep in $(seq 0 $((REPS - 1))); do
  order=(old new)
  (( rep % 2 == 1 )) && order=(new old)
  for s in "${SCENARIOS[@]}"; do
    for side in "${order[@]}"; do
      bin=$OLD_BIN; [[ $side == new ]] && bin=$NEW_BIN
      tag=$s.$rep.$side
      bg=$(busy_pct)
      (( bg > 10 )) && echo "   warning: the machine was ${bg}% busy before this run (other load)" >&2
      start_server "$bin" "$OUT/$tag.server.log"
      # In the background + wait, so that a signal reaches the traps at once (timeout passes a
      # SIGTERM on to the generator).
      extra=(); [[ $s == *:* ]] && extra=(--edit-kind "${s#*:}")
      timeout -k 10 "$GEN_TIMEOUT" taskset -c 1 "$GEN" --json "${extra[@]}" \
        --url "ws://127.0.0.1:$PORT/sync" --scenario "$ROOT/load-tests/scenarios/${s%%:*}.toml" \
        --server-pid "$SERVER_PID" --label "$side" --run-id "ab-${s/:/__}-$rep-$side-$$" \
        >"$OUT/$tag.json" 2>"$OUT/$tag.gen.log" &
      GEN_PID=$!
      rc=0; wait "$GEN_PID" || rc=$?
      GEN_PID=
      stop_server
      # exit 0: converged; 1: some room diverged (the JSON line is still there); 2: set-up
      # failed; 124/137: timed out.
      if grep -q '^{' "$OUT/$tag.json"; then
        grep '^{' "$OUT/$tag.json" >>"$RUN"
        echo "== rep $((rep + 1))/$REPS $s $side: $(python3 -c '
import json, sys
r = json.loads(sys.stdin.readline()); m = r["main"]; c = m["server_cpu_us_per_delivery"]
print("%s µs/deliv (%s), p50 %.2f ms, p99 %.2f ms, %.0f deliveries/s, converged %s, %s%% busy before" % (
    "–" if c is None else "%.2f" % c, m["server_cpu_clock"], m["delivery_p50_us"] / 1e3,
    m["delivery_p99_us"] / 1e3, m["delivered_per_s"], r["converged"], sys.argv[1]))' "$bg" \
          <"$OUT/$tag.json")"
      else
        echo "== rep $((rep + 1))/$REPS $s $side: FAILED (exit $rc), see $OUT/$tag.gen.log" >&2
      fi
      sleep "$SETTLE"
    done
  done
done

# --- the table -------------------------------------------------------------------------------
python3 - "$RUN" "${SCENARIOS[@]}" <<'EOF' | tee "$OUT/table.md"
import json, sys, statistics as st
from collections import defaultdict
runs = defaultdict(dict)   # (spec, label) -> {rep: report}; run ids are ab-SPEC-REP-SIDE-PID
for line in open(sys.argv[1]):
    r = json.loads(line)
    spec, rep, _, _ = r["run_id"][len("ab-"):].rsplit("-", 3)
    spec = spec.replace("__", ":")   # run ids cannot hold a colon
    runs[(spec, r["label"])][int(rep)] = r
METRICS = [("server CPU µs/delivery", lambda r: r["main"]["server_cpu_us_per_delivery"]),
           ("p50 delivery ms", lambda r: r["main"]["delivery_p50_us"] / 1000),
           ("p99 delivery ms", lambda r: r["main"]["delivery_p99_us"] / 1000),
           ("delivered/s", lambda r: r["main"]["delivered_per_s"])]
f = lambda v: "–" if v is None else f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"
for s in sys.argv[2:]:
    old, new = runs.get((s, "old"), {}), runs.get((s, "new"), {})
    print(f"\n### {s}  (runs: old {len(old)}, new {len(new)})\n")
    print("| metric | old (median) | new (median) | new/old | per-rep new/old min–max |")
    print("|---|---|---|---|---|")
    for title, get in METRICS:
        o = {k: v for k, v in ((k, get(r)) for k, r in old.items()) if v is not None}
        n = {k: v for k, v in ((k, get(r)) for k, r in new.items()) if v is not None}
        mo = st.median(o.values()) if o else None
        mn = st.median(n.values()) if n else None
        ratio = f"{mn / mo:.3f}" if mo and mn is not None else "–"
        paired = [n[k] / o[k] for k in o if k in n and o[k]]   # same rep: run back to back
        spread = f"{min(paired):.3f}–{max(paired):.3f}" if paired else "–"
        print(f"| {title} | {f(mo)} | {f(mn)} | {ratio} | {spread} |")
    conv = lambda rs: ("yes" if rs and all(r["converged"] for r in rs.values()) else "NO") + \
        f" ({sum(r['converged'] for r in rs.values())}/{len(rs)})"
    print(f"| converged | {conv(old)} | {conv(new)} | | |")
    ticks = sum(r["main"]["server_cpu_clock"] == "ticks" for r in [*old.values(), *new.values()])
    if ticks:
        print(f"\n{ticks} run(s) read server CPU from 10 ms clock ticks (coarse)")
for s in sys.argv[2:]:
    base = f"{s}:draft-title"
    if ":" in s or base not in sys.argv[2:]:
        continue
    print(f"\n### {s} against its unprojected baseline ({base}), per binary\n")
    print("| metric | old: okr / draft | new: okr / draft | per-rep new okr/draft min–max |")
    print("|---|---|---|---|")
    for title, get in METRICS:
        cells = []
        for side in ("old", "new"):
            a = {k: get(r) for k, r in runs.get((s, side), {}).items() if get(r) is not None}
            b = {k: get(r) for k, r in runs.get((base, side), {}).items() if get(r) is not None}
            ratio = st.median(a.values()) / st.median(b.values()) if a and b and st.median(b.values()) else None
            paired = [a[k] / b[k] for k in a if k in b and b[k]]
            cells.append(("–" if ratio is None else f"{ratio:.3f}", paired))
        spread = cells[1][1]
        spread = f"{min(spread):.3f}–{max(spread):.3f}" if spread else "–"
        print(f"| {title} | {cells[0][0]} | {cells[1][0]} | {spread} |")
EOF
echo "JSON lines: $RUN (python3 load-tests/summarize.py $RUN gives every metric); logs in $OUT"
