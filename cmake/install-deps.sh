#!/usr/bin/env bash
# Installs, from Debian's packages, whatever maas needs that is missing.
# Usage: cmake/install-deps.sh [--data]   (--data also installs the Fashion-MNIST data set)
set -euo pipefail

pkgs=(g++ make cmake libeigen3-dev catch2 libbenchmark-dev libhdf5-dev libstb-dev zlib1g-dev)
if [ "${1:-}" = "--data" ]; then
  pkgs+=(dataset-fashion-mnist)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
