#!/usr/bin/env bash
# The README's main command: installs what is missing, builds maas, provisions
# Fashion-MNIST and trains the example CNN, printing its test accuracy.
# Extra arguments go to the example (e.g. --epochs 15 --bn).
set -euo pipefail
cd "$(dirname "$0")/.."
bash cmake/install-deps.sh --data
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
bash data/provision.sh fashion-mnist
build/examples/mnist_cnn --data data/fashion-mnist "$@"
