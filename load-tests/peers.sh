#!/usr/bin/env bash
# Runs every load scenario against okrhub and the two peers that speak the same protocol —
# the reference @y/websocket-server (npm) and y-sweet (crates.io) — in one run, several
# repetitions each, the server pinned to core 0 and the generator to core 1. Prints (and writes
# to load-tests/results/latest.md) the medians and the ratios okrhub / peer.
#
#   load-tests/peers.sh                      # all scenarios, 3 repetitions
#   REPS=5 SCENARIOS="workshop screens" load-tests/peers.sh
#   SERVERS="okrhub" load-tests/peers.sh      # okrhub only
#
# Everything runs on loopback; the peers are installed from the package registries into
# load-tests/.peers (git-ignored). y-sweet's first install compiles for ~2-5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PEERS=$ROOT/load-tests/.peers
OUT=$ROOT/load-tests/results
REPS=${REPS:-3}
SCENARIOS=${SCENARIOS:-"workshop screens heavy idle coldjoin saturate"}
SERVERS=${SERVERS:-"okrhub ywss ysweet"}
# Ports below 32768, away from the ephemeral range (see PEERS.md).
PORT_OKRHUB=24700 PORT_YWSS=24701 PORT_YSWEET=24702
mkdir -p "$PEERS" "$OUT"

install_peers() {
  if [[ " $SERVERS " == *" ywss "* && ! -f $PEERS/ywss/node_modules/@y/websocket-server/src/server.js ]]; then
    echo "installing @y/websocket-server 0.1.1 (+ yjs 13.6.33)"
    mkdir -p "$PEERS/ywss"
    npm install --prefix "$PEERS/ywss" --no-audit --no-fund --save-exact \
      @y/websocket-server@0.1.1 yjs@13.6.33 >/dev/null
  fi
  if [[ " $SERVERS " == *" ysweet "* && ! -x $PEERS/y-sweet/bin/y-sweet ]]; then
    echo "installing y-sweet 0.9.1 (cargo install, a few minutes)"
    cargo install y-sweet --version 0.9.1 --locked --root "$PEERS/y-sweet" >/dev/null
  fi
}

build() {
  cargo build --release --locked -p okrhub -p okrhub-load --bins >/dev/null
}

SERVER_PID=
stop_server() {
  if [[ -n $SERVER_PID ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
trap stop_server EXIT

wait_port() {
  for _ in $(seq 1 100); do
    (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "server on port $1 did not start" >&2
  return 1
}

# start_server NAME: starts it pinned to core 0, sets SERVER_PID and TARGET (generator flags).
start_server() {
  local data
  case $1 in
    okrhub)
      data=$(mktemp -d)
      # Every generator connection comes from 127.0.0.1 at machine rates: no per-address
      # caps or per-client limits.
      OKRHUB_MAX_CONNECTIONS_PER_IP=0 OKRHUB_MESSAGE_RATE=0 OKRHUB_NEW_ROOMS_PER_MINUTE=0 \
        taskset -c 0 "$ROOT/target/release/okrhub" serve \
        --listen 127.0.0.1:$PORT_OKRHUB --data-dir "$data" >"$OUT/okrhub.log" 2>&1 &
      SERVER_PID=$!
      wait_port $PORT_OKRHUB
      TARGET=(--url "ws://127.0.0.1:$PORT_OKRHUB/sync")
      ;;
    ywss)
      HOST=127.0.0.1 PORT=$PORT_YWSS taskset -c 0 node \
        "$PEERS/ywss/node_modules/@y/websocket-server/src/server.js" >"$OUT/ywss.log" 2>&1 &
      SERVER_PID=$!
      wait_port $PORT_YWSS
      TARGET=(--url "ws://127.0.0.1:$PORT_YWSS")
      ;;
    ysweet)
      taskset -c 0 "$PEERS/y-sweet/bin/y-sweet" serve --host 127.0.0.1 --port $PORT_YSWEET \
        >"$OUT/ysweet.log" 2>&1 &
      SERVER_PID=$!
      wait_port $PORT_YSWEET
      TARGET=(--url-template "ws://127.0.0.1:$PORT_YSWEET/d/{room}/ws/{room}"
              --create-doc-url "http://127.0.0.1:$PORT_YSWEET/doc/new" --room-separator -)
      ;;
  esac
}

install_peers
build
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
RUN=$OUT/run-$(date -u +%Y%m%dT%H%M%SZ).jsonl
echo "results: $RUN"
for scenario in $SCENARIOS; do
  for rep in $(seq 1 "$REPS"); do
    for server in $SERVERS; do
      start_server "$server"
      echo "== $scenario #$rep on $server"
      taskset -c 1 "$ROOT/target/release/okrhub-load" \
        --scenario "$ROOT/load-tests/scenarios/$scenario.toml" "${TARGET[@]}" \
        --server-pid "$SERVER_PID" --label "$server" --json \
        | grep '^{' | tee -a "$RUN" || echo "   (run failed)"
      stop_server
    done
  done
done
# The kernel's own cost of one small write per delivery in the scenario's pattern (no server):
# the floor under every server's CPU per delivery, measured in the same run.
floor_args() {
  case $1 in
    workshop) echo "--conns 500 --fanout 24 --bursts 120" ;;
    screens) echo "--conns 2000 --fanout 199 --bursts 50" ;;
    heavy) echo "--conns 1000 --fanout 9 --bursts 1000" ;;
  esac
}
for scenario in $SCENARIOS; do
  args=$(floor_args "$scenario")
  [[ -z $args ]] && continue
  conns=$(echo "$args" | awk '{print $2}')
  for rep in $(seq 1 "$REPS"); do
    echo "== $scenario #$rep: kernel floor"
    taskset -c 1 "$ROOT/target/release/sendfloor" read --port $PORT_OKRHUB --conns "$conns" &
    reader=$!
    # shellcheck disable=SC2086
    taskset -c 0 "$ROOT/target/release/sendfloor" send --port $PORT_OKRHUB $args --seconds 8 \
      --json "$scenario" | grep '^{' | tee -a "$RUN" || echo "   (floor run failed)"
    wait "$reader" || true
  done
done
python3 "$ROOT/load-tests/summarize.py" "$RUN" | tee "$OUT/latest.md"
