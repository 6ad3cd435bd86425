#!/usr/bin/env bash
# Installs what the project needs on a fresh machine, idempotently. Safe to run again.
# Today: the Rust toolchain's fmt and clippy components. (ASR, audio and browser test
# dependencies are added here as those parts land.)
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
echo "setup: ok ($(cargo --version))"
