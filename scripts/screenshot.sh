#!/usr/bin/env bash
# The real overlay window under Xvfb, following a sample Chinese call with a fatal alert,
# captured to target/screenshots/overlay.png (drawn on the CPU, the default) and overlay-gl.png
# (drawn through OpenGL) and checked: the window is drawn, the fatal alert's red frame is on it,
# and there is enough text on it to be the overlay (not a blank window).
# Usage: scripts/screenshot.sh [CALL.jsonl]   (CI runs it; look at the picture yourself too)
set -euo pipefail
cd "$(dirname "$0")/.."
call="${1:-assist-server/tests/calls/zh_angry_complaint.jsonl}"
out=target/screenshots
mkdir -p "$out"
profile=${PROFILE:-debug}
[ "$profile" = release ] && flag=--release || flag=
cargo build $flag --locked -p assist-server -p agent-client
bin=target/$profile

display=":$((90 + RANDOM % 9))"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

Xvfb "$display" -screen 0 1024x768x24 >/dev/null 2>&1 &
pids+=($!)
"$bin/assist-server" serve --listen 127.0.0.1:0 --pack knowledge >"$out/server.out" 2>"$out/server.log" &
pids+=($!)
for _ in $(seq 1 100); do grep -q "^listening on " "$out/server.out" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/^listening on //p' "$out/server.out")
[ -n "$addr" ] || { echo "screenshot: the server did not start" >&2; cat "$out/server.log" >&2; exit 1; }

# Both renderers: the window drawn on the CPU (the default) -> overlay.png, and through OpenGL
# (Mesa's llvmpipe here) -> overlay-gl.png. Each is checked the same way.
shoot() { # renderer png
  local renderer=$1 png=$2
  # A fresh HOME so a remembered window position from another run does not move it.
  local home
  home=$(mktemp -d)
  HOME="$home" DISPLAY="$display" LIBGL_ALWAYS_SOFTWARE=1 LANG=zh_CN.UTF-8 \
    "$bin/agent-client" --renderer "$renderer" --server "ws://$addr/ws" --transcript "$call" \
    --realtime --speed 25 --linger 30 >"$out/client-$renderer.out" 2>"$out/client-$renderer.log" &
  local client=$!
  pids+=($client)
  # The call takes ~4 s at 25x; give the window time to draw the end of it.
  sleep 9
  kill -0 "$client" 2>/dev/null || { echo "screenshot: the client exited early" >&2; cat "$out/client-$renderer.log" >&2; exit 1; }
  DISPLAY="$display" import -window root "$out/overlay-full.png"
  kill "$client" 2>/dev/null || true
  wait "$client" 2>/dev/null || true
  rm -rf "$home"
  convert "$out/overlay-full.png" -crop 380x620+0+0 +repage "$png"
  python3 - "$png" <<'PY'
import subprocess, sys
path = sys.argv[1]
# Pixel statistics through ImageMagick: no Python imaging library needed.
def count(expr):
    out = subprocess.run(["convert", path, "-fx", expr, "-format", "%[fx:mean*w*h]", "info:"],
                         capture_output=True, text=True, check=True).stdout
    return float(out)
red = count("(r>0.75 && g<0.35 && b<0.3) ? 1 : 0")
dark = count("(r<0.35 && g<0.35 && b<0.35) ? 1 : 0")
drawn = count("(r+g+b < 2.7 && r+g+b > 0.15) ? 1 : 0")
print(f"screenshot: {path}: red {red:.0f}, dark text {dark:.0f}, drawn {drawn:.0f} pixels")
if red < 200:
    sys.exit("screenshot: no fatal alert frame (red) on the overlay")
if dark < 800 or drawn < 20000:
    sys.exit("screenshot: the overlay has too little text: blank window or missing font?")
PY
  echo "screenshot: ok ($renderer) -> $png"
}
shoot software "$out/overlay.png"
shoot gl "$out/overlay-gl.png"
