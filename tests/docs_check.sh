#!/bin/sh
# The API reference builds without a Doxygen warning for the public headers.
# usage: docs_check.sh DIR   (DIR holds the configured Doxyfile; the HTML
# and warnings.log are written there). Exit 77 (skipped) without doxygen.
set -u
dir=$1
if ! command -v doxygen >/dev/null 2>&1; then
  echo "docs_check: doxygen is not installed (apt-get install doxygen): skipped"
  exit 77
fi
rm -f "$dir/warnings.log"
doxygen "$dir/Doxyfile" || { echo "docs_check: doxygen failed"; exit 1; }
[ -f "$dir/html/index.html" ] || { echo "docs_check: no $dir/html/index.html"; exit 1; }
if [ -s "$dir/warnings.log" ]; then
  echo "docs_check: Doxygen warnings:"
  cat "$dir/warnings.log"
  exit 1
fi
echo "docs_check: no warnings; $(ls "$dir/html" | wc -l) files in $dir/html"
