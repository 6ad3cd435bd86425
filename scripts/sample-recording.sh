#!/usr/bin/env bash
# Generates the sample recordings for `assist-server qc` (not committed; small):
#   samples/recordings/ko_call.wav        stereo, 8 kHz: agent on the left, customer on the right
#   samples/recordings/ko_mono.wav        mono, 16 kHz, with ko_mono.speakers.jsonl (who speaks when)
# Korean speech (espeak-ng), because the test model is Korean (models/fetch.sh ko). Needs
# espeak-ng and sox (scripts/setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
out=samples/recordings
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
espeak-ng -v ko -s 140 -w "$tmp/agent.wav" "안녕하세요 고객님 무엇을 도와드릴까요"
espeak-ng -v ko -s 140 -w "$tmp/customer.wav" "배송이 너무 늦어요 환불을 원합니다"
espeak-ng -v ko -s 140 -w "$tmp/agent2.wav" "죄송합니다 오늘 바로 처리해 드리겠습니다 감사합니다"
# The agent speaks, then the customer, then the agent again.
sox "$tmp/agent.wav" -r 16000 "$tmp/a1.wav" pad 0 1
sox "$tmp/customer.wav" -r 16000 "$tmp/c1.wav"
sox "$tmp/agent2.wav" -r 16000 "$tmp/a2.wav"
a1=$(soxi -D "$tmp/a1.wav"); c1=$(soxi -D "$tmp/c1.wav")
sox -n -r 16000 -c 1 -b 16 "$tmp/gap.wav" trim 0 "$c1"
sox "$tmp/a1.wav" "$tmp/gap.wav" "$tmp/a2.wav" "$tmp/left.wav"
sox "$tmp/c1.wav" "$tmp/right.wav" pad "$a1" 0
sox -M "$tmp/left.wav" "$tmp/right.wav" -r 8000 "$out/ko_call.wav"
sox "$tmp/a1.wav" "$tmp/c1.wav" "$tmp/a2.wav" "$out/ko_mono.wav"
end1=$(python3 -c "print(round($a1, 2))"); end2=$(python3 -c "print(round($a1 + $c1, 2))")
cat > "$out/ko_mono.speakers.jsonl" <<JSON
{"start": 0.0, "end": $end1, "speaker": "agent"}
{"start": $end1, "end": $end2, "speaker": "customer"}
{"start": $end2, "end": 3600, "speaker": "agent"}
JSON
ls -l "$out"
