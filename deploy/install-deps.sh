#!/usr/bin/env bash
# Installs the Debian 12 packages flashrack builds, runs and tests with.
# Idempotent and non-interactive: installs only what is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libuv1-dev libzmq3-dev libprotobuf-c-dev protobuf-c-compiler libsqlite3-dev
  libcurl4-openssl-dev libssl-dev libusb-1.0-0-dev libimobiledevice-dev libirecovery-1.0-dev
  libplist-dev libzip-dev libjansson-dev libmicrohttpd-dev libcairo2-dev
  libcmocka-dev python3 python3-zmq sqlite3 procps
  idevicerestore libimobiledevice-utils
  libsystemd-dev systemd dpkg-dev file groff-base man-db poppler-utils
  chromium python3-websocket  # the rack page in a real browser (tests/integration/test_rack_page_browser.py)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
  SUDO=sudo
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
