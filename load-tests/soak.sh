#!/usr/bin/env bash
# Memory soak: one server, ROUNDS rounds of typing into KR titles of 20 fresh seeded OKR rooms
# (the okr-typing scenario for DURATION seconds), then idle until every room has unloaded; the
# server's RSS is read after each round, once /metrics says nothing is held (no room loaded or
# alive, no connection). A server that gives back what a round took ends every round within a
# few percent of the first.
#
#   load-tests/soak.sh [ROUNDS] [DURATION]      # default 5 rounds of 60 s
#
# Prints one line a round: round, RSS (KiB), rooms alive, connections, RSS / round 1.
# Needs: cargo, curl, taskset. Runs only on loopback, and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
DURATION=${2:-60}
PORT=${PORT:-24790}
cargo build --release --quiet -p okrhub -p okrhub-load
DATA=$(mktemp -d /tmp/okrhub-soak.XXXXXX)
LOG=$DATA/server.log
OKRHUB_MESSAGE_RATE=0 OKRHUB_NEW_ROOMS_PER_MINUTE=0 OKRHUB_MAX_CONNECTIONS_PER_IP=0 \
  taskset -c 0 ./target/release/okrhub --listen 127.0.0.1:$PORT --data-dir "$DATA/store" \
  --idle-unload 2s >"$LOG" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DATA"' EXIT

metric() { curl -sf -m 2 "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
rss() { awk '/^VmRSS/ { print $2 }' /proc/$SERVER/status; }
for _ in $(seq 1 100); do curl -sf -m 1 -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.1; done

echo "round rss_kib rooms_alive connections ratio"
FIRST=
for round in $(seq 1 "$ROUNDS"); do
  taskset -c 1 ./target/release/okrhub-load --url "ws://127.0.0.1:$PORT/sync" --server-pid $SERVER \
    --scenario load-tests/scenarios/okr-typing.toml --duration "$DURATION" \
    --run-id "soak$round" >/dev/null 2>"$DATA/round$round.txt"
  # Idle until every room has unloaded and nothing is connected (at most 60 s).
  for _ in $(seq 1 600); do
    [ "$(metric okrhub_rooms_alive)" = 0 ] && [ "$(metric okrhub_connections)" = 0 ] && break
    sleep 0.1
  done
  R=$(rss)
  FIRST=${FIRST:-$R}
  echo "$round $R $(metric okrhub_rooms_alive) $(metric okrhub_connections) $(awk -v r="$R" -v f="$FIRST" 'BEGIN { printf "%.3f", r / f }')"
done
