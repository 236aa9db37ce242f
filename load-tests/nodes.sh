#!/usr/bin/env bash
# Several okrhub nodes sharing rooms through one Redis (issue 13), against one node on the same
# kind of Redis, in one run.
#
#   load-tests/nodes.sh                                  # okr-typing and workshop, 1 vs 3 nodes,
#                                                        # 3 reps; then saturate on 1, 2, 3 nodes
#   REPS=5 SCENARIOS="okr-typing workshop heavy" load-tests/nodes.sh
#   THROUGHPUT= load-tests/nodes.sh                      # latency and CPU only
#   SCENARIOS= THROUGHPUT="1 3" load-tests/nodes.sh      # throughput only
#
# Every run starts its own redis-server (a free port, a temp dir, `--save "" --appendonly no`)
# and N okrhub nodes (`serve --store redis`, free ports), runs okrhub-load with the N node URLs
# (each room's clients dealt round-robin over the nodes; every delivery is timed as same-node
# or cross-node too) and the PIDs (CPU of the nodes summed; redis-server's apart), then stops
# everything. The nodes and redis-server are pinned to SERVER_CORES, the generator to
# GEN_CORES. Latency runs alternate the order of the node counts from one rep to the next.
# Throughput runs are `saturate` (map edits, deferred apply, the rate doubling each step).
# Prints (and writes to $OUT/table.md) medians over the reps and ratios against one node.
#
# Env: REPS (3), SCENARIOS ("okr-typing workshop"; SCENARIO:EDIT_KIND allowed), NODES ("1 3":
#      node counts of the latency runs, the first is the baseline), THROUGHPUT ("1 2 3": node
#      counts of the saturate runs; empty skips them), TP_REPS (REPS), TP_RATE (16: the first
#      step's edits/s per editor) and TP_FACTOR (1.5: from one step to the next; saturate.toml
#      has 8 and 2, too coarse to compare), P99_BOUND_MS ("10,50": the throughput "at a p99 bound"), SERVER_CORES (0), GEN_CORES (1), FLUSH_INTERVAL (the
#      server's default when empty), OUT (results dir, default a new /tmp/okrhub-nodes.* dir),
#      GEN_TIMEOUT (s per generator run, 900), SETTLE (s between runs, 1), REDIS_SERVER
#      (redis-server), GEN_ARGS (more okrhub-load flags for the latency runs, e.g.
#      "--clients 100"; word-split), OKRHUB_BIN (the node binary, default target/release/okrhub: to measure
#      another build; it is not rebuilt).
# Nothing else should run meanwhile: each run prints how busy the machine was just before it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
REPS=${REPS:-3}
SCENARIOS=${SCENARIOS-"okr-typing workshop"}
NODES=${NODES:-"1 3"}
THROUGHPUT=${THROUGHPUT-"1 2 3"}
TP_REPS=${TP_REPS:-$REPS}
TP_RATE=${TP_RATE:-16}
TP_FACTOR=${TP_FACTOR:-1.5}
P99_BOUND_MS=${P99_BOUND_MS:-10,50}
SERVER_CORES=${SERVER_CORES:-0}
GEN_CORES=${GEN_CORES:-1}
FLUSH_INTERVAL=${FLUSH_INTERVAL:-}
GEN_TIMEOUT=${GEN_TIMEOUT:-900}
SETTLE=${SETTLE:-1}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
read -ra GEN_EXTRA <<<"${GEN_ARGS:-}"
OUT=${OUT:-$(mktemp -d /tmp/okrhub-nodes.XXXXXX)}
BIN=${OKRHUB_BIN:-$ROOT/target/release/okrhub}
GEN=$ROOT/target/release/okrhub-load
mkdir -p "$OUT"
RUN=$OUT/runs.jsonl

command -v "$REDIS_SERVER" >/dev/null || { echo "no $REDIS_SERVER on PATH (set REDIS_SERVER)" >&2; exit 2; }
for s in $SCENARIOS; do
  [[ -f $ROOT/load-tests/scenarios/${s%%:*}.toml ]] || { echo "no scenario file: ${s%%:*}" >&2; exit 2; }
done
echo "building okrhub and okrhub-load (release)"
cargo build --release --locked -p okrhub -p okrhub-load >/dev/null
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# --- processes ---------------------------------------------------------------------------------
REDIS_PID= REDIS_DIR= NODE_PIDS=() GEN_PID=
stop_all() {
  local p
  for p in "${NODE_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${NODE_PIDS[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$p" 2>/dev/null; then
      echo "   node $p ignored SIGTERM for 10 s: SIGKILL" >&2
      kill -KILL "$p" 2>/dev/null || true
    fi
    wait "$p" 2>/dev/null || true
  done
  NODE_PIDS=()
  if [[ -n $REDIS_PID ]]; then
    kill -TERM "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
    REDIS_PID=
  fi
  if [[ -n $REDIS_DIR ]]; then rm -rf "$REDIS_DIR"; REDIS_DIR=; fi
}
cleanup() {
  if [[ -n $GEN_PID ]]; then kill -TERM "$GEN_PID" 2>/dev/null || true; wait "$GEN_PID" || true; fi
  stop_all
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_ports N: N TCP ports free on 127.0.0.1 now (the kernel's choice).
free_ports() {
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# busy_pct: % of all cores busy over 0.5 s (nothing of ours runs then: this is other load).
busy_pct() {
  local a b
  a=($(head -1 /proc/stat)); sleep 0.5; b=($(head -1 /proc/stat))
  local idle=$(( b[4] + b[5] - a[4] - a[5] )) total=0 i
  for i in 1 2 3 4 5 6 7 8; do total=$(( total + b[i] - a[i] )); done
  echo $(( total > 0 ? 100 * (total - idle) / total : 0 ))
}

# start_all N TAG: a fresh redis-server and N nodes on it; sets REDIS_PID, REDIS_PORT,
# NODE_PIDS, URLS.
start_all() {
  local n=$1 tag=$2 ports i
  ports=($(free_ports $((n + 1))))
  REDIS_PORT=${ports[0]}
  REDIS_DIR=$(mktemp -d /tmp/okrhub-nodes-redis.XXXXXX)
  taskset -c "$SERVER_CORES" "$REDIS_SERVER" --port "${ports[0]}" --bind 127.0.0.1 \
    --save "" --appendonly no --dir "$REDIS_DIR" >"$OUT/$tag.redis.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 1 100); do
    redis-cli -p "${ports[0]}" ping >/dev/null 2>&1 && break
    kill -0 "$REDIS_PID" 2>/dev/null || { echo "redis-server exited at start, see $OUT/$tag.redis.log" >&2; exit 1; }
    sleep 0.1
  done
  local extra=()
  [[ -n $FLUSH_INTERVAL ]] && extra=(--flush-interval "$FLUSH_INTERVAL")
  URLS=()
  for i in $(seq 1 "$n"); do
    # One client address at machine rates: no per-address caps, no per-client limits.
    OKRHUB_MESSAGE_RATE=0 OKRHUB_NEW_ROOMS_PER_MINUTE=0 OKRHUB_MAX_CONNECTIONS_PER_IP=0 \
      taskset -c "$SERVER_CORES" "$BIN" serve --store redis \
      --redis-url "redis://127.0.0.1:${ports[0]}" --listen "127.0.0.1:${ports[$i]}" \
      "${extra[@]}" >"$OUT/$tag.node$i.log" 2>&1 &
    NODE_PIDS+=($!)
    URLS+=("ws://127.0.0.1:${ports[$i]}/sync")
  done
  for i in $(seq 1 "$n"); do
    local ok=
    for _ in $(seq 1 100); do
      kill -0 "${NODE_PIDS[$((i - 1))]}" 2>/dev/null || { echo "node $i exited at start, see $OUT/$tag.node$i.log" >&2; exit 1; }
      if curl -sf -m 1 -o /dev/null "http://127.0.0.1:${ports[$i]}/readyz"; then ok=1; break; fi
      sleep 0.1
    done
    [[ -n $ok ]] || { echo "node $i not ready within 10 s, see $OUT/$tag.node$i.log" >&2; exit 1; }
  done
}

# relay_counters: the nodes' relay counters summed, as JSON.
relay_counters() {
  local u
  for u in "${URLS[@]}"; do
    u=${u#ws://}; curl -sf -m 2 "http://${u%/sync}/metrics" || true
  done | python3 -c '
import json, sys
want = ("okrhub_relayed_total", "okrhub_relay_errors_total", "okrhub_store_errors_total",
        "okrhub_slow_consumer_disconnects_total")
t = dict.fromkeys(want, 0.0)
for line in sys.stdin:
    parts = line.split()
    if len(parts) == 2 and parts[0] in t:
        t[parts[0]] += float(parts[1])
print(json.dumps({k: int(v) for k, v in t.items()}))'
}

# redis_commands: redis-server's calls and CPU per command (INFO commandstats), as JSON.
redis_commands() {
  redis-cli -p "$REDIS_PORT" info commandstats 2>/dev/null | python3 -c '
import json, re, sys
out = {}
for line in sys.stdin:
    m = re.match(r"cmdstat_([^:]+):calls=(\d+),usec=(\d+)", line.strip())
    if m:
        out[m.group(1)] = {"calls": int(m.group(2)), "usec": int(m.group(3))}
print(json.dumps(out))'
}

# one_run N SCENARIO TAG REP [generator flags...]: starts, runs, stops; appends the JSON line.
one_run() {
  local n=$1 spec=$2 tag=$3 rep=$4; shift 4
  local bg rc pids extra=()
  bg=$(busy_pct)
  start_all "$n" "$tag"
  pids=$(IFS=,; echo "${NODE_PIDS[*]}")
  [[ $spec == *:* ]] && extra=(--edit-kind "${spec#*:}")
  timeout -k 10 "$GEN_TIMEOUT" taskset -c "$GEN_CORES" "$GEN" --json "${extra[@]}" "$@" \
    --url "$(IFS=,; echo "${URLS[*]}")" --scenario "$ROOT/load-tests/scenarios/${spec%%:*}.toml" \
    --server-pid "$pids" --store-pid "$REDIS_PID" --label "nodes$n" \
    --run-id "nodes-${spec/:/__}-$rep-$n-$$" >"$OUT/$tag.json" 2>"$OUT/$tag.gen.log" &
  GEN_PID=$!
  rc=0; wait "$GEN_PID" || rc=$?
  GEN_PID=
  local counters cmds; counters=$(relay_counters); cmds=$(redis_commands)
  stop_all
  if grep -q '^{' "$OUT/$tag.json"; then
    grep '^{' "$OUT/$tag.json" | python3 -c '
import json, sys
r = json.loads(sys.stdin.readline())
r["spec"], r["rep"], r["busy_before_pct"] = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r["relay"] = json.loads(sys.argv[4])
r["redis_commands"] = json.loads(sys.argv[5] or "{}")
print(json.dumps(r))' "$spec" "$rep" "$bg" "$counters" "$cmds" >>"$RUN"
    tail -1 "$RUN" | python3 -c '
import json, sys
r = json.loads(sys.stdin.readline()); m = r["main"]
ms = lambda v: "%.2f" % (v / 1e3)
nodes = ""
if m.get("cross_node"):
    s, c = m["same_node"], m["cross_node"]
    nodes = ", same-node p50 %s / cross-node p50 %s ms" % (ms(s["p50_us"]), ms(c["p50_us"]))
cpu = lambda v: "–" if v is None else "%.1f" % v
print("== %s rep %d, %d node(s): %.0f delivered/s, p50 %s ms, p99 %s ms%s; CPU µs/delivery nodes %s + redis %s; converged %s; %d%% busy before" % (
    r["spec"], r["rep"] + 1, r["nodes"], m["delivered_per_s"], ms(m["delivery_p50_us"]),
    ms(m["delivery_p99_us"]), nodes, cpu(m["server_cpu_us_per_delivery"]),
    cpu(m.get("store_cpu_us_per_delivery")), r["converged"], r["busy_before_pct"]))'
  else
    echo "== $tag: FAILED (exit $rc), see $OUT/$tag.gen.log" >&2
  fi
  (( bg > 10 )) && echo "   warning: the machine was ${bg}% busy before this run (other load)" >&2
  sleep "$SETTLE"
}

echo "results: $RUN   (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
read -ra NODE_COUNTS <<<"$NODES"
for rep in $(seq 0 $((REPS - 1))); do
  [[ -z $SCENARIOS ]] && break
  order=("${NODE_COUNTS[@]}")
  if (( rep % 2 == 1 )); then   # alternate the order: drift of the machine hits both sides
    order=(); for (( i=${#NODE_COUNTS[@]}-1; i>=0; i-- )); do order+=("${NODE_COUNTS[$i]}"); done
  fi
  for s in $SCENARIOS; do
    for n in "${order[@]}"; do
      one_run "$n" "$s" "${s/:/__}.$rep.n$n" "$rep" "${GEN_EXTRA[@]}"
    done
  done
done
read -ra TP_COUNTS <<<"$THROUGHPUT"
for rep in $(seq 0 $((TP_REPS - 1))); do
  [[ ${#TP_COUNTS[@]} -eq 0 ]] && break
  order=("${TP_COUNTS[@]}")
  if (( rep % 2 == 1 )); then
    order=(); for (( i=${#TP_COUNTS[@]}-1; i>=0; i-- )); do order+=("${TP_COUNTS[$i]}"); done
  fi
  for n in "${order[@]}"; do
    one_run "$n" saturate "saturate.$rep.n$n" "$rep" \
      --rate "$TP_RATE" --rate-factor "$TP_FACTOR" --max-steps 16
  done
done

python3 "$ROOT/load-tests/nodes_table.py" --p99-bound-ms "$P99_BOUND_MS" "$RUN" | tee "$OUT/table.md"
echo "JSON lines: $RUN; logs in $OUT"
