#!/usr/bin/env bash
# Installs the system packages morgue's build and tests need, only when missing:
# a C toolchain, make and pkg-config for the bundled librdkafka, OpenSSL and zlib
# headers for its ssl/zlib support, Python's venv for the test servers, tmux for
# end-to-end tests, and kcat (a test produces with it as a team's script would).
# Runs `apt-get update` once before installing anything.
set -euo pipefail

need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

have_cmd cc || need+=(gcc)
have_cmd c++ || need+=(g++)
have_cmd make || need+=(make)
have_cmd pkg-config || need+=(pkg-config)
have_cmd perl || need+=(perl)
have_cmd tmux || need+=(tmux)
have_cmd kcat || need+=(kcat)
have_cmd openssl || need+=(openssl)
have_pkg libssl-dev || need+=(libssl-dev)
have_pkg zlib1g-dev || need+=(zlib1g-dev)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)

if [ ${#need[@]} -gt 0 ]; then
  echo "bootstrap: installing ${need[*]}" >&2
  if [ "$(id -u)" != 0 ]; then
    echo "bootstrap: need root to install ${need[*]}; install them and run again" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "bootstrap: cargo not found; install Rust (rustup) first" >&2
  exit 1
fi
