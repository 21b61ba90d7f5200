#!/usr/bin/env bash
# Installs, from Debian's packages, whatever maas needs that is missing.
# Usage: cmake/install-deps.sh [--data] [--tests] [--bench]
#   --data   also the Fashion-MNIST data set
#   --tests  also python3-h5py and hdf5-tools (a test reads a checkpoint with h5py),
#            doxygen (the docs target; a test checks it warns of nothing) and
#            chromium (a test renders the training report headless)
#   --bench  also libdnnl-dev (oneDNN 2.6: maas_bench's bf16 and int8 matmul and
#            convolution anchors; the library never links it)
set -euo pipefail

pkgs=(g++ make cmake catch2 libbenchmark-dev libhdf5-dev nlohmann-json3-dev libstb-dev zlib1g-dev libeigen3-dev
      libcpp-httplib-dev libsimdjson-dev pkg-config libopenmpi-dev openmpi-bin)
for arg in "$@"; do
  case "$arg" in
    --data) pkgs+=(dataset-fashion-mnist) ;;
    --tests) pkgs+=(python3-h5py hdf5-tools doxygen chromium) ;;
    --bench) pkgs+=(libdnnl-dev) ;;
    *) echo "install-deps: unknown option $arg" >&2; exit 2 ;;
  esac
done

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
