#!/usr/bin/env bash
# llm_compare.sh: streamed completions from a saved GPT, maas-serve against the reference server
# (bench/flask_gpt.py: Flask under gunicorn, 2 sync workers, PyTorch on 1 thread each, a KV cache), one after
# the other on this machine, driven by bench/llm_load.py at 1 and 16 concurrent streams.
#
#   bench/llm_compare.sh --model gpt.h5          # a GPT saved by build/examples/gpt --save gpt.h5
#   bench/llm_compare.sh                         # trains one first: build/examples/gpt --iters 2000 --save
#   bench/llm_compare.sh --model gpt.h5 --build build-release
#
# Needs build/examples/gpt only to train (configure with -DMAAS_BUILD_EXAMPLES=ON, build target gpt), and
# BUILD/maas-serve for the maas rows: when it is missing, or its /v1/completions answers 404 (a maas-serve
# without the language-model routes), the maas rows are skipped with a message. Debian's /usr/bin/python3
# with python3-torch, python3-h5py, python3-flask, and gunicorn (apt-get install python3-flask gunicorn).
#
# Each setting sends REQUESTS_PER_STREAM (default 4) requests per stream after one warm-up request per stream,
# each for MAX_TOKENS (default 128) tokens at temperature 0.8 after llm_load.py's 64-character prompt.
# Environment: PORT_REF (default 18602), PORT_MAAS (18601), MAAS_SERVE_ARGS (more maas-serve options).
# Prints one table: per server and streams, completed/failed/rejected requests, aggregate tokens/s, time to
# first token p50/p99 and inter-token latency p50/p99 (ms), then the issue's targets where maas ran.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=""
BUILD=build
while [ $# -gt 0 ]; do
  case "$1" in
    --model) MODEL=${2:?--model expects a path}; shift 2 ;;
    --build) BUILD=${2:?--build expects a directory}; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "llm_compare: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
REQUESTS_PER_STREAM=${REQUESTS_PER_STREAM:-4}
MAX_TOKENS=${MAX_TOKENS:-128}
PORT_REF=${PORT_REF:-18602}
PORT_MAAS=${PORT_MAAS:-18601}
PY=/usr/bin/python3
command -v gunicorn >/dev/null ||
  { echo "llm_compare: gunicorn is missing (apt-get install gunicorn python3-flask)" >&2; exit 1; }

work=$(mktemp -d /tmp/llm_compare.XXXXXX)
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
cleanup() { stop_server; rm -rf "$work"; }
trap cleanup EXIT

if [ -z "$MODEL" ]; then
  [ -x "$BUILD/examples/gpt" ] || { echo "llm_compare: no --model and no $BUILD/examples/gpt to train one" \
    "(cmake -DMAAS_BUILD_EXAMPLES=ON, then cmake --build $BUILD --target gpt)" >&2; exit 1; }
  MODEL=$work/gpt.h5
  echo "llm_compare: training a GPT ($BUILD/examples/gpt --iters 2000 --save $MODEL) ..." >&2
  "$BUILD/examples/gpt" --iters 2000 --save "$MODEL" >&2
fi
[ -f "$MODEL" ] || { echo "llm_compare: $MODEL is not a file" >&2; exit 1; }
MODEL=$(realpath "$MODEL")
case "$MODEL" in *"'"*) echo "llm_compare: the model's path may not hold a quote: $MODEL" >&2; exit 1 ;; esac

# status URL: the HTTP status of a one-token completion ("000" when nothing answers).
status() {
  curl -s -o /dev/null -w '%{http_code}' -m 30 -X POST -H 'Content-Type: application/json' \
    --data '{"model": "gpt", "prompt": "A", "max_tokens": 1}' "$1/v1/completions" || true
}

# wait_up NAME URL: waits up to 120 s for the server just started to answer; prints its status.
wait_up() {
  local code
  for _ in $(seq 1 600); do
    kill -0 "$server_pid" 2>/dev/null || { echo "llm_compare: $1 exited while starting" >&2; echo 000; return; }
    code=$(status "$2")
    [ "$code" != 000 ] && { echo "$code"; return; }
    sleep 0.2
  done
  echo "llm_compare: $1 did not answer on $2 within 120 s" >&2
  echo 000
}

# load NAME URL: llm_load.py at 1 and 16 streams, to $work/NAME_STREAMS.json.
load() {
  for streams in 1 16; do
    echo "llm_compare: $1, $streams streams ..." >&2
    $PY bench/llm_load.py --url "$2" --model gpt --concurrency $streams --warmup $streams \
      --requests $((streams * REQUESTS_PER_STREAM)) --max-tokens "$MAX_TOKENS" --json > "$work/$1_$streams.json" ||
      echo "llm_compare: $1 completed no request at $streams streams" >&2
  done
}

OMP_NUM_THREADS=1 gunicorn --chdir bench -w 2 --threads 1 -b "127.0.0.1:$PORT_REF" --timeout 600 --log-level warning \
  "flask_gpt:create_app('$MODEL')" &
server_pid=$!
code=$(wait_up reference "http://127.0.0.1:$PORT_REF")
[ "$code" = 200 ] || { echo "llm_compare: the reference answered $code to a completion" >&2; exit 1; }
load reference "http://127.0.0.1:$PORT_REF"
stop_server

if [ ! -x "$BUILD/maas-serve" ]; then
  echo "llm_compare: no $BUILD/maas-serve (cmake --build $BUILD --target maas-serve): maas skipped" >&2
else
  # shellcheck disable=SC2086  # MAAS_SERVE_ARGS is a list of options
  "$BUILD/maas-serve" --model "gpt=$MODEL" --port "$PORT_MAAS" ${MAAS_SERVE_ARGS:-} > "$work/maas-serve.log" 2>&1 &
  server_pid=$!
  code=$(wait_up maas-serve "http://127.0.0.1:$PORT_MAAS")
  if [ "$code" = 200 ]; then
    load maas "http://127.0.0.1:$PORT_MAAS"
  elif [ "$code" = 404 ]; then
    echo "llm_compare: $BUILD/maas-serve answers 404 on /v1/completions (no language-model routes): maas skipped" >&2
  else
    echo "llm_compare: maas-serve answered $code to a completion: maas skipped; its log:" >&2
    tail -n 20 "$work/maas-serve.log" >&2
  fi
  stop_server
fi

$PY - "$work" "$MODEL" "$MAX_TOKENS" <<'EOF'
import json, os, sys
work, model, max_tokens = sys.argv[1], sys.argv[2], sys.argv[3]
rows = {}
for server in ('maas', 'reference'):
    for streams in (1, 16):
        path = os.path.join(work, '%s_%d.json' % (server, streams))
        if os.path.exists(path) and os.path.getsize(path):
            with open(path) as f:
                rows[server, streams] = json.load(f)
fmt = lambda v, spec='%.1f': 'n/a' if v is None else spec % v
print('%s, %s tokens per request after a 64-character prompt' % (model, max_tokens))
print('%-10s %7s %18s %9s %9s %9s %9s %9s' % ('server', 'streams', 'ok/failed/rejected', 'tokens/s',
                                              'TTFT p50', 'TTFT p99', 'ITL p50', 'ITL p99'))
for (server, streams), r in rows.items():
    print('%-10s %7d %18s %9s %9s %9s %9s %9s' % (
        server, streams, '%d/%d/%d' % (r['requests'], r['failed'], r['rejected']), fmt(r['tokens_per_s']),
        fmt(r['ttft_ms']['p50'], '%.2f'), fmt(r['ttft_ms']['p99'], '%.2f'),
        fmt(r['itl_ms']['p50'], '%.2f'), fmt(r['itl_ms']['p99'], '%.2f')))
    if r['errors']:
        print('%18s errors: %s' % ('', r['errors']))
print('(TTFT: time to first token, ITL: inter-token latency, both in ms)')
tps = lambda key: rows[key]['tokens_per_s'] if key in rows and rows[key]['tokens_per_s'] else None
if tps(('maas', 1)) and tps(('maas', 16)):
    print('targets:')
    print('  maas 16 streams / maas 1 stream:      %5.1fx (>= 6x)' % (tps(('maas', 16)) / tps(('maas', 1))))
    if tps(('reference', 16)):
        print('  maas 16 streams / reference 16:       %5.1fx (>= 10x)' % (tps(('maas', 16)) / tps(('reference', 16))))
    print('  maas TTFT p50 at 1 stream:          %s ms (<= 5 ms)' % fmt(rows['maas', 1]['ttft_ms']['p50'], '%7.2f'))
    print('  maas inter-token p99 at 16 streams: %s ms (<= 10 ms)' % fmt(rows['maas', 16]['itl_ms']['p99'], '%7.2f'))
EOF
