#!/usr/bin/env bash
# The product, end to end on this machine: the assist server with the default pack, and a
# sample Chinese call played through the live WebSocket path by the agent client.
#
# With a display (DISPLAY or WAYLAND_DISPLAY set) the agent's overlay window opens, always on
# top, and follows the call: transcript tail, customer emotion, alerts (fatal ones in red until
# acknowledged), script cards and knowledge snippets; it closes 20 s after the call ends.
# Without one (or with --headless) the same events are printed as text.
#
# Usage: scripts/demo.sh [--headless] [CALL.jsonl] [SPEED]     (SPEED: 2 for the window, 8 headless)
set -euo pipefail
cd "$(dirname "$0")/.."
headless=
if [ "${1:-}" = "--headless" ]; then headless=1; shift; fi
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then headless=1; fi
call="${1:-samples/zh_demo_call.jsonl}"
speed="${2:-$([ -n "$headless" ] && echo 8 || echo 2)}"

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
common=(--realtime --speed "$speed" --server "ws://$addr/ws" --agent-id agent-demo --transcript "$call")
if [ -n "$headless" ]; then
  echo "assist-server on ws://$addr/ws — playing $call at ${speed}x (no display: printing events)"
  echo
  ./target/release/agent-client --headless --pretty "${common[@]}"
else
  echo "assist-server on ws://$addr/ws — the overlay follows $call at ${speed}x"
  ./target/release/agent-client --linger 20 "${common[@]}"
fi
