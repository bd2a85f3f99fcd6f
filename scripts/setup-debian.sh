#!/usr/bin/env bash
# Installs everything Peregrine builds and tests with, from Debian 12 packages only.
set -euo pipefail
packages=(
  build-essential g++ cmake ninja-build pkg-config git
  libspdlog-dev libfmt-dev libpcre2-dev nlohmann-json3-dev libutf8proc-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev
  libsqlite3-dev
  qtbase5-dev libkf5syntaxhighlighting-dev qt6-base-dev libgl-dev
  libcmark-gfm-dev libcmark-gfm-extensions-dev
  xvfb xauth
  desktop-file-utils appstream
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
