#!/usr/bin/env bash
# Puts libvosk.so (the C library the `vosk` crate links to) in .tools/vosk/, from the `vosk`
# wheel on PyPI. Idempotent: does nothing when the library is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.3.45
dest=.tools/vosk
if [ -f "$dest/libvosk.so" ]; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-libvosk: downloading the vosk $VERSION wheel from PyPI"
python3 -m pip download --no-deps --quiet -d "$tmp" "vosk==$VERSION"
python3 - "$tmp" <<'PY'
import sys, zipfile, glob
wheel = glob.glob(sys.argv[1] + "/vosk-*.whl")[0]
zipfile.ZipFile(wheel).extractall(sys.argv[1] + "/x")
PY
mkdir -p "$dest"
cp "$tmp/x/vosk/libvosk.so" "$dest/libvosk.so"
echo "fetch-libvosk: $dest/libvosk.so"
