#!/usr/bin/env bash
# Installs the system libraries the engine links (oneDNN, libpng, libjpeg, zlib), fetches oneDNN 3.2
# into .deps/ (scripts/fetch-onednn.sh; faster AVX2 convolutions than Debian's 2.6, which stays the
# fallback) and builds in release mode. Safe to run repeatedly. Needs root (or sudo) for apt-get
# on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs="libdnnl-dev libpng-dev libjpeg-dev zlib1g-dev python3-pip unzip ca-certificates"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq $missing
fi
if ! command -v swift >/dev/null 2>&1; then
    echo "error: the Swift toolchain (6.x) is not on PATH; install it from swift.org first." >&2
    exit 1
fi
scripts/fetch-onednn.sh
swift build -c release --product decidiffusion
