#!/usr/bin/env bash
# The coaching console with something in it: a server with a persistent store, the bootstrap
# admin, an agent (li.na, team east) who takes the sample Chinese call live through the agent
# client, and the sample chat logs inspected by batch QC — then the console URL to open.
#
# Usage: scripts/console.sh [--check]
#   Settings from the environment: ASSIST_DATA_DIR (default target/console-data),
#   ASSIST_LISTEN (default 127.0.0.1:7700), ASSIST_ADMIN_PASSWORD (default
#   admin-demo-password; only used when the store is new), PROFILE (release, or debug to use
#   the test build).
#   --check: instead of waiting for Ctrl-C, verify over the API that the sample call is in the
#   console's call list with its hits, then stop (CI runs this).
set -euo pipefail
cd "$(dirname "$0")/.."
check=
if [ "${1:-}" = "--check" ]; then check=1; shift; fi
data="${ASSIST_DATA_DIR:-target/console-data}"
listen="${ASSIST_LISTEN:-127.0.0.1:7700}"
admin_password="${ASSIST_ADMIN_PASSWORD:-admin-demo-password}"
agent=li.na
agent_password=li-na-demo-password
call_id=sample-zh-demo-call

profile=${PROFILE:-release}
[ "$profile" = release ] && flag=--release || flag=
cargo build $flag --locked -p assist-server -p agent-client
bin=target/$profile
mkdir -p "$data"

# Batch QC before the server starts (one process per store); a rerun skips what is stored.
echo "console: inspecting the sample chat logs into $data (batch QC)"
"$bin/assist-server" qc --data-dir "$data" --pack knowledge samples/chats/

log="$data/server.log"
ASSIST_ADMIN_PASSWORD="$admin_password" "$bin/assist-server" serve --listen "$listen" \
  --data-dir "$data" --pack knowledge >"$data/server.out" 2>"$log" &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do
  grep -q "^listening on " "$data/server.out" 2>/dev/null && break
  if ! kill -0 $server 2>/dev/null; then
    echo "console: the server did not start:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.1
done
addr=$(sed -n 's/^listening on //p' "$data/server.out")
base="http://$addr"

json_field() { # FIELD: reads JSON on stdin, prints the top-level string field
  python3 -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], ""))' "$1"
}
admin_token=$(curl -sf "$base/api/v1/login" -H 'content-type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$admin_password\"}" | json_field token) || {
  echo "console: cannot log in as admin: this store was created with another" \
    "ASSIST_ADMIN_PASSWORD (set it, or use a fresh ASSIST_DATA_DIR)" >&2
  exit 1
}
api() { # METHOD PATH [BODY]: prints the HTTP status
  curl -s -o /dev/null -w '%{http_code}' -X "$1" "$base$2" -H "authorization: Bearer $admin_token" \
    -H 'content-type: application/json' ${3:+-d "$3"}
}
api POST /api/v1/teams '{"id":"east","name":"East / 华东"}' >/dev/null
api POST /api/v1/users "{\"username\":\"$agent\",\"display_name\":\"李娜\",\"password\":\"$agent_password\",\"role\":\"agent\",\"team\":\"east\"}" >/dev/null

if [ "$(api GET "/api/v1/calls/$call_id")" != 200 ]; then
  echo "console: $agent takes the sample call live (samples/zh_demo_call.jsonl, 8x)"
  ASSIST_PASSWORD="$agent_password" ASSIST_LOG=warn "$bin/agent-client" --headless --realtime \
    --speed 8 --server "ws://$addr/ws" --username "$agent" --call-id "$call_id" \
    --spool-dir "$data/agent-spool" --transcript samples/zh_demo_call.jsonl >/dev/null
fi

if [ -n "$check" ]; then
  calls=$(curl -sf "$base/api/v1/calls?agent=$agent" -H "authorization: Bearer $admin_token")
  python3 - "$calls" "$call_id" <<'PY'
import json, sys
calls, call_id = json.loads(sys.argv[1]), sys.argv[2]
rows = [c for c in calls["calls"] if c.get("call_id", c.get("id")) == call_id]
assert rows, f"the sample call {call_id} is not in the call list: {calls}"
print(f"console --check: {call_id} is listed: {json.dumps(rows[0], ensure_ascii=False)[:300]}")
PY
  exit 0
fi

cat <<EOF

  Console:  $base/
  Log in as admin / $admin_password   (the agent: $agent / $agent_password)
  Calls → agent $agent → call $call_id: the sample call with its hits, emotion and cards;
  the sample chats (source: batch QC) are listed too. Reports → by team / category.
  Data in $data (kept; run again to reuse it). Ctrl-C stops the server.

EOF
wait $server
