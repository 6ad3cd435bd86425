#!/usr/bin/env bash
# The product, end to end on this machine: the assist server with the default pack, and a
# sample Chinese call played through the live WebSocket path by the agent client, showing the
# alerts, emotion and cards an agent would see. Usage: scripts/demo.sh [CALL.jsonl] [SPEED]
set -euo pipefail
cd "$(dirname "$0")/.."
call="${1:-samples/zh_demo_call.jsonl}"
speed="${2:-8}"

cargo build --release --locked -p assist-server -p agent-client
log=$(mktemp)
./target/release/assist-server serve --listen 127.0.0.1:0 --pack knowledge >"$log.out" 2>"$log" &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -f "$log" "$log.out"' EXIT
for _ in $(seq 1 100); do
  grep -q "^listening on " "$log.out" 2>/dev/null && break
  if ! kill -0 $server 2>/dev/null; then cat "$log" >&2; exit 1; fi
  sleep 0.1
done
addr=$(sed -n 's/^listening on //p' "$log.out")
echo "assist-server on ws://$addr/ws — playing $call at ${speed}x"
echo
./target/release/agent-client --headless --pretty --realtime --speed "$speed" \
  --server "ws://$addr/ws" --agent-id agent-demo --transcript "$call"
