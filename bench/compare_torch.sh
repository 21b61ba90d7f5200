#!/usr/bin/env bash
# compare_torch.sh: maas vs PyTorch on the reference CNN, same machine, same
# threads, same batch, in one invocation.
#
#   bench/compare_torch.sh [--data DIR] [--threads T] [--batch B] [--runs N] [--build DIR]
#                          [--torch-blas system|reference] [--bf16]
#
# Runs `BUILD/examples/mnist_cnn --data DIR --epochs 1 --batch B --threads T --json`
# and `/usr/bin/python3 ../shared/ref/torch_cnn.py DIR 1 T B` (paths relative
# to the repository root) N times each, alternating (maas, torch, maas, ...),
# each under `/usr/bin/time -f %M` for its peak RSS. Prints every run, then the
# median training and inference img/s and peak RSS of each and the ratios
# maas / torch. Defaults: Fashion-MNIST from the system data set, 2 threads,
# batch 64, 3 runs, build/. Both programs read the same IDX files; each times
# its own training epoch (train_img_s) and inference over the 10,000 test
# images in batches of 1000 (infer_img_s).
#
# PyTorch's Linear layers call the system BLAS (libblas.so.3, a Debian
# alternative): OpenBLAS once libopenblas-dev is installed (the OpenBLAS
# comparison in maas_bench needs it), the reference BLAS before. --torch-blas
# reference runs PyTorch on the reference BLAS/LAPACK as before that install
# (LD_LIBRARY_PATH, this process only); the default uses what the system has.
# The script prints which one PyTorch loaded. PyTorch runs with
# OPENBLAS_NUM_THREADS=1 unless that variable is set: its OpenMP threads and
# OpenBLAS' own pthreads otherwise oversubscribe the cores (measured here,
# 2 threads, batch 64: 4660 img/s with one OpenBLAS thread, 2645 without,
# 2348 on the reference BLAS), and with `1 thread` it would still run its
# Linear layers on every core.
#
# --bf16 adds the mixed-precision runs to each round: maas with
# `--precision bf16`, and PyTorch under autocast to bfloat16
# (TORCH_CNN_BF16=1), without and with channels_last (TORCH_CNN_CL=1); it
# then also prints maas bf16 against PyTorch's best bf16 mode (the one with
# the higher median) and against maas fp32.
#
# Environment: OMP_* variables pass through to both (both use libgomp);
# TORCH_REF overrides the reference script, PYTHON its interpreter.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
data=/usr/share/datasets/fashion-mnist
threads=2
batch=64
runs=3
build=$root/build
torch_blas=system
bf16=0
while [ $# -gt 0 ]; do
  case $1 in
    --data) data=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --torch-blas) torch_blas=$2; shift 2 ;;
    --bf16) bf16=1; shift ;;
    -h|--help) sed -n '2,34p' "$0"; exit 0 ;;
    *) echo "compare_torch.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

maas_bin=$build/examples/mnist_cnn
torch_ref=${TORCH_REF:-$root/../shared/ref/torch_cnn.py}
python=${PYTHON:-/usr/bin/python3}
[ -x "$maas_bin" ] || { echo "compare_torch.sh: $maas_bin not built (cmake --build $build)" >&2; exit 1; }
[ -f "$torch_ref" ] || { echo "compare_torch.sh: reference $torch_ref not found" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "compare_torch.sh: /usr/bin/time missing (apt-get install time)" >&2; exit 1; }
[ "$runs" -ge 1 ] 2>/dev/null || { echo "compare_torch.sh: --runs must be at least 1" >&2; exit 2; }
[ -d "$data" ] || { echo "compare_torch.sh: data directory $data not found" >&2; exit 1; }

torch_env=(OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1})
case $torch_blas in
  system) ;;
  reference) torch_env+=(LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/blas:/usr/lib/x86_64-linux-gnu/lapack${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}) ;;
  *) echo "compare_torch.sh: --torch-blas must be system or reference" >&2; exit 2 ;;
esac
torch_lib=$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))' 2>/dev/null || true)
torch_blas_lib=$([ -n "$torch_lib" ] && env "${torch_env[@]}" ldd "$torch_lib" 2>/dev/null | sed -n 's/.*libblas.so.3 => \([^ ]*\).*/\1/p' | xargs -r readlink -f || true)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The value of "key" in the last JSON line of a file (both programs print one
# flat object per epoch).
json_value() {
  "$python" -c 'import json,sys
lines=[l for l in open(sys.argv[1]) if l.lstrip().startswith("{")]
print(json.loads(lines[-1])[sys.argv[2]])' "$1" "$2"
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }

echo "# compare_torch.sh: threads=$threads batch=$batch runs=$runs data=$data"
echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; load at start:$(uptime | sed 's/.*load average://')"
echo "# maas:  $maas_bin --data $data --epochs 1 --batch $batch --threads $threads --json"
echo "# torch: ${torch_env[*]} $python $torch_ref $data 1 $threads $batch"
echo "# torch's libblas.so.3: ${torch_blas_lib:-unknown} (--torch-blas $torch_blas)"
m_train=() m_infer=() m_rss=() t_train=() t_infer=() t_rss=()
for i in $(seq 1 "$runs"); do
  /usr/bin/time -f %M -o "$work/m.rss" "$maas_bin" --data "$data" --epochs 1 --batch "$batch" --threads "$threads" \
    --json >"$work/m.out"
  m_train+=("$(json_value "$work/m.out" train_img_s)")
  m_infer+=("$(json_value "$work/m.out" infer_img_s)")
  m_rss+=("$(tail -n 1 "$work/m.rss")")
  env "${torch_env[@]}" /usr/bin/time -f %M -o "$work/t.rss" "$python" "$torch_ref" "$data" 1 "$threads" "$batch" \
    >"$work/t.out"
  t_train+=("$(json_value "$work/t.out" train_img_s)")
  t_infer+=("$(json_value "$work/t.out" infer_img_s)")
  t_rss+=("$(tail -n 1 "$work/t.rss")")
  printf 'run %d: maas train %8.0f img/s infer %8.0f img/s rss %7d KB | torch train %8.0f img/s infer %8.0f img/s rss %7d KB | test_acc maas %s torch %s\n' \
    "$i" "${m_train[-1]}" "${m_infer[-1]}" "${m_rss[-1]}" "${t_train[-1]}" "${t_infer[-1]}" "${t_rss[-1]}" \
    "$(json_value "$work/m.out" test_acc)" "$(json_value "$work/t.out" test_acc)"
done
mt=$(median "${m_train[@]}") mi=$(median "${m_infer[@]}") mr=$(median "${m_rss[@]}")
tt=$(median "${t_train[@]}") ti=$(median "${t_infer[@]}") tr=$(median "${t_rss[@]}")
echo "# load at end:$(uptime | sed 's/.*load average://')"
printf 'median   train img/s: maas %8.0f  torch %8.0f  ratio %s\n' "$mt" "$tt" "$(ratio "$mt" "$tt")"
printf 'median   infer img/s: maas %8.0f  torch %8.0f  ratio %s\n' "$mi" "$ti" "$(ratio "$mi" "$ti")"
printf 'median peak RSS (KB): maas %8d  torch %8d  ratio %s\n' "$mr" "$tr" "$(ratio "$mr" "$tr")"
[ "$bf16" = 1 ] || exit 0

# The bf16 rounds: maas --precision bf16, torch autocast bf16, torch autocast
# bf16 + channels_last, alternating.
echo "# bf16: maas --precision bf16; torch TORCH_CNN_BF16=1 [TORCH_CNN_CL=1]; load:$(uptime | sed 's/.*load average://')"
b_train=() b_infer=() u_train=() u_infer=() c_train=() c_infer=()
for i in $(seq 1 "$runs"); do
  "$maas_bin" --data "$data" --epochs 1 --batch "$batch" --threads "$threads" --json --precision bf16 \
    >"$work/b.out" 2>/dev/null
  b_train+=("$(json_value "$work/b.out" train_img_s)")
  b_infer+=("$(json_value "$work/b.out" infer_img_s)")
  env "${torch_env[@]}" TORCH_CNN_BF16=1 "$python" "$torch_ref" "$data" 1 "$threads" "$batch" >"$work/u.out"
  u_train+=("$(json_value "$work/u.out" train_img_s)")
  u_infer+=("$(json_value "$work/u.out" infer_img_s)")
  env "${torch_env[@]}" TORCH_CNN_BF16=1 TORCH_CNN_CL=1 "$python" "$torch_ref" "$data" 1 "$threads" "$batch" \
    >"$work/c.out"
  c_train+=("$(json_value "$work/c.out" train_img_s)")
  c_infer+=("$(json_value "$work/c.out" infer_img_s)")
  printf 'bf16 run %d: maas train %8.0f infer %8.0f | torch bf16 train %8.0f infer %8.0f | torch bf16+CL train %8.0f infer %8.0f | test_acc maas %s torch %s %s\n' \
    "$i" "${b_train[-1]}" "${b_infer[-1]}" "${u_train[-1]}" "${u_infer[-1]}" "${c_train[-1]}" "${c_infer[-1]}" \
    "$(json_value "$work/b.out" test_acc)" "$(json_value "$work/u.out" test_acc)" "$(json_value "$work/c.out" test_acc)"
done
bt=$(median "${b_train[@]}") bi=$(median "${b_infer[@]}")
ut=$(median "${u_train[@]}") ui=$(median "${u_infer[@]}")
ct=$(median "${c_train[@]}") ci=$(median "${c_infer[@]}")
best_t=$(awk -v a="$ut" -v b="$ct" 'BEGIN {print (a > b ? a : b)}')
best_i=$(awk -v a="$ui" -v b="$ci" 'BEGIN {print (a > b ? a : b)}')
echo "# load at end:$(uptime | sed 's/.*load average://')"
printf 'median bf16 train img/s: maas %8.0f  torch bf16 %8.0f  torch bf16+CL %8.0f  maas/best torch %s  maas bf16/fp32 %s\n' \
  "$bt" "$ut" "$ct" "$(ratio "$bt" "$best_t")" "$(ratio "$bt" "$mt")"
printf 'median bf16 infer img/s: maas %8.0f  torch bf16 %8.0f  torch bf16+CL %8.0f  maas/best torch %s  maas bf16/fp32 %s\n' \
  "$bi" "$ui" "$ci" "$(ratio "$bi" "$best_i")" "$(ratio "$bi" "$mi")"
