#!/usr/bin/env bash
# gpt_compare.sh: maas' examples/gpt against its PyTorch reference
# (bench/torch_gpt.py), same model, recipe, data, threads and machine, in one
# invocation.
#
#   bench/gpt_compare.sh [--build DIR] [--threads T] [--iters N] [--batch B]
#                        [--eval-every N] [--eval-windows N]
#
# Builds nothing. Runs `DIR/examples/gpt --json --threads T --iters N ...` and
# `/usr/bin/python3 bench/torch_gpt.py --json --threads T --iters N ...`, each
# under `/usr/bin/time -f %M` for its peak RSS (Debian: apt-get install time),
# then prints each one's JSON lines and a table of val_loss, train tokens/s,
# gen tokens/s (200 tokens, batch 1) and peak RSS, with the ratios
# maas / torch. Defaults: build/, 2 threads, and the examples' own defaults
# for the rest (2,000 iterations, batch 12, an evaluation every 250 and
# 200 * batch validation windows). A short check:
#   bench/gpt_compare.sh --iters 50 --eval-every 25 --eval-windows 96
#
# PyTorch's Linear layers and attention products call the system BLAS
# (libblas.so.3), and that decides its speed: Debian's reference BLAS, where
# only python3-torch is installed, is over 20 times slower than OpenBLAS on
# these products. The script prints the library PyTorch loads. OpenBLAS
# without a system-wide install: `apt-get download libopenblas0-pthread`,
# `dpkg-deb -x` it into a folder, and run this script with LD_LIBRARY_PATH
# set to that folder's usr/lib/x86_64-linux-gnu/openblas-pthread.
# OPENBLAS_NUM_THREADS defaults to T: PyTorch calls the BLAS from its main
# thread here, outside its own OpenMP regions, so they do not oversubscribe.
#
# Environment: OMP_* and LD_LIBRARY_PATH pass through to both; PYTHON
# overrides the interpreter.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
threads=2
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --iters|--batch|--eval-every|--eval-windows) args+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "gpt_compare.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
[ "$threads" -ge 1 ] 2>/dev/null || { echo "gpt_compare.sh: --threads must be at least 1" >&2; exit 2; }

maas_bin=$build/examples/gpt
torch_ref=$root/bench/torch_gpt.py
python=${PYTHON:-/usr/bin/python3}
[ -x "$maas_bin" ] ||
  { echo "gpt_compare.sh: $maas_bin not built (cmake -DMAAS_BUILD_EXAMPLES=ON, target gpt)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "gpt_compare.sh: /usr/bin/time missing (apt-get install time)" >&2; exit 1; }
"$python" -c 'import torch' 2>/dev/null ||
  { echo "gpt_compare.sh: $python cannot import torch (apt-get install python3-torch)" >&2; exit 1; }

export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-$threads}
torch_lib=$("$python" -c 'import os, torch
print(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))')
torch_blas=$(ldd "$torch_lib" 2>/dev/null | sed -n 's/.*libblas.so.3 => \([^ ]*\).*/\1/p' |
  xargs -r readlink -f || true)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$root"

echo "# gpt_compare.sh: threads=$threads ${args[*]}"
echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; load at start:$(uptime | sed 's/.*load average://')"
echo "# maas:  $maas_bin --json --threads $threads ${args[*]}"
echo "# torch: OPENBLAS_NUM_THREADS=$OPENBLAS_NUM_THREADS $python $torch_ref --json --threads $threads ${args[*]}"
echo "# torch's libblas.so.3: ${torch_blas:-unknown}"
case $torch_blas in
  */blas/libblas.so.3*)
    echo "# warning: that is the reference BLAS; PyTorch's products run far below OpenBLAS (see --help)" ;;
esac

/usr/bin/time -f %M -o "$work/m.rss" "$maas_bin" --json --threads "$threads" "${args[@]}" >"$work/m.out"
sed 's/^/maas:  /' "$work/m.out"
/usr/bin/time -f %M -o "$work/t.rss" "$python" "$torch_ref" --json --threads "$threads" "${args[@]}" >"$work/t.out"
sed 's/^/torch: /' "$work/t.out"
echo "# load at end:$(uptime | sed 's/.*load average://')"

# The value of "key" in the last JSON line (the final summary) of a file.
json_value() {
  "$python" -c 'import json,sys
lines=[l for l in open(sys.argv[1]) if l.lstrip().startswith("{")]
print(json.loads(lines[-1])[sys.argv[2]])' "$1" "$2"
}
row() {  # name, maas value, torch value, printf format of the values
  awk -v n="$1" -v a="$2" -v b="$3" -v f="$4" \
    'BEGIN {printf "%-16s " f " " f "  %10s\n", n, a, b, (b != 0 ? sprintf("%.2f", a / b) : "-")}'
}
printf '%-16s %10s %10s  %10s\n' "" maas torch maas/torch
row val_loss "$(json_value "$work/m.out" val_loss)" "$(json_value "$work/t.out" val_loss)" '%10.4f'
row "train tok/s" "$(json_value "$work/m.out" train_tok_s)" "$(json_value "$work/t.out" train_tok_s)" '%10.0f'
row "gen tok/s" "$(json_value "$work/m.out" gen_tok_s)" "$(json_value "$work/t.out" gen_tok_s)" '%10.1f'
row "peak RSS (MB)" "$(awk '{print $1 / 1024}' <(tail -n 1 "$work/m.rss"))" \
  "$(awk '{print $1 / 1024}' <(tail -n 1 "$work/t.rss"))" '%10.1f'
