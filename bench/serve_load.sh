#!/usr/bin/env bash
# Load test: maas-serve against the Flask + PyTorch reference under gunicorn
# (../shared/ref/flask_predict.py --server gunicorn, 2 workers), one after
# the other on this machine, with the same model (the reference CNN with a
# softmax), the same bodies (../shared/ref/predict_body.py: Fashion-MNIST test
# images, NHWC, {"x_input": ...} to POST /predict) and the same wrk settings.
#
#   bench/serve_load.sh [BUILD_DIR]        (default build; needs maas-serve and
#                                           bench/serve_bench_model built)
# wrk waits up to 10 s for an answer (--timeout 10s), so slow answers count
# in the latencies instead of vanishing as timeouts.
# Environment: DURATION (s per run, default 10), REPS (runs per setting,
# median reported; default 3), RSS_SECONDS (default 60), DATA (Fashion-MNIST
# folder), REF (the folder of flask_predict.py, predict_body.py, wrk_post.lua).
# Needs wrk, ab (apache2-utils), gunicorn, python3-flask, python3-torch.
#
# Prints one table row per (server, connections, images per request):
# requests/s, images/s, p50 and p99 latency (wrk's, medians over REPS runs),
# then ab's figures for 32 connections and one image (ab counts requests that
# never complete as failures; wrk only reports their timeouts), a burst of
# 256 connections, the time a 33rd connection waits while 32 keep-alive ones
# stay open and idle, and maas-serve's RSS over RSS_SECONDS under load.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
DURATION=${DURATION:-10}
REPS=${REPS:-3}
RSS_SECONDS=${RSS_SECONDS:-60}
REF=${REF:-$(cd .. && pwd)/shared/ref}
DATA=${DATA:-}
for d in "$DATA" data/fashion-mnist /usr/share/datasets/fashion-mnist; do
  if [ -n "$d" ] && ls "$d"/t10k-images-idx3-ubyte* >/dev/null 2>&1; then DATA=$d; break; fi
done
[ -n "$DATA" ] || { echo "serve_load: no Fashion-MNIST test images (set DATA)" >&2; exit 1; }
for tool in wrk ab gunicorn; do
  command -v $tool >/dev/null || { echo "serve_load: $tool is missing (apt-get install wrk apache2-utils gunicorn)" >&2; exit 1; }
done
PY=/usr/bin/python3
work=$(mktemp -d /tmp/serve_load.XXXXXX)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$BUILD"/bench/serve_bench_model "$work/model.h5"
for n in 1 32; do $PY "$REF/predict_body.py" "$DATA" $n seed > "$work/body$n.json"; done
PORT_MAAS=18501
PORT_REF=18502

wait_ready() {  # url
  for _ in $(seq 1 600); do
    curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary @"$work/body1.json" "$1" && return 0
    sleep 0.1
  done
  echo "serve_load: $1 never answered" >&2
  exit 1
}

# run_wrk URL CONNECTIONS BODY -> "req/s p50_ms p99_ms"
run_wrk() {
  local threads=2
  [ "$2" -lt 2 ] && threads=1
  BODY=$3 wrk -t$threads -c$2 -d${DURATION}s --timeout 10s --latency -s "$REF/wrk_post.lua" "$1" > "$work/wrk.txt"
  awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /^Requests\/sec/ { rps = $2 }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    /Socket errors/ { err = $0 }
    END { if (p50 == "") p50 = "nan"; if (p99 == "") p99 = "nan"; printf "%s %s %s\n", rps, p50, p99 }' "$work/wrk.txt"
  grep -E "Socket errors|Non-2xx" "$work/wrk.txt" >&2 || true
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# bench NAME URL: the four settings, REPS times each; appends to results.
bench() {
  for conns in 1 32; do
    for imgs in 1 32; do
      : > "$work/runs"
      for _ in $(seq 1 "$REPS"); do run_wrk "$2" $conns "$work/body$imgs.json" >> "$work/runs"; done
      local rps p50 p99
      rps=$(awk '{print $1}' "$work/runs" | median)
      p50=$(awk '{print $2}' "$work/runs" | median)
      p99=$(awk '{print $3}' "$work/runs" | median)
      echo "$1 $conns $imgs $rps $p50 $p99" >> "$work/results"
      printf '%-10s conns=%-3s images=%-3s req/s=%-9s p50=%sms p99=%sms (runs: %s)\n' "$1" $conns $imgs "$rps" "$p50" "$p99" \
        "$(awk '{printf "%s ", $1}' "$work/runs")"
    done
  done
}

burst() {  # NAME URL: 256 connections, one image
  local r
  r=$(run_wrk "$2" 256 "$work/body1.json")
  echo "$1 burst256: req/s p50_ms p99_ms = $r"
}

keepalive33() {  # URL: 32 keep-alive connections answered once and left idle; ms for a 33rd's answer (median of 5)
  $PY - "$1" "$work/body1.json" <<'PY'
import http.client, statistics, sys, time, urllib.parse
url = urllib.parse.urlsplit(sys.argv[1]); body = open(sys.argv[2], "rb").read()
def ask(c):
    c.request("POST", url.path, body, {"Content-Type": "application/json"})
    r = c.getresponse(); r.read(); assert r.status == 200, r.status
idle = [http.client.HTTPConnection(url.hostname, url.port) for _ in range(32)]
for c in idle: ask(c)
ms = []
for _ in range(5):
    t = time.perf_counter(); c = http.client.HTTPConnection(url.hostname, url.port); ask(c); c.close()
    ms.append(1000 * (time.perf_counter() - t))
print("33rd keep-alive connection (32 idle): %.2f ms (median of 5: %s)" % (statistics.median(ms), " ".join("%.2f" % m for m in ms)))
PY
}

cross_check() {  # NAME URL: ab, 32 keep-alive connections, one image
  ab -q -k -c 32 -t "$DURATION" -n 10000000 -p "$work/body1.json" -T application/json "$1" > "$work/ab.txt" 2>&1 || true
  grep -E "^apr_|^Total of" "$work/ab.txt" >&2 || true
  echo "ab $2: $(grep -E '^Requests per second' "$work/ab.txt" | awk '{print $4}') req/s," \
       "failed $(grep -E '^Failed requests' "$work/ab.txt" | awk '{print $3}')," \
       "p50 $(awk '$1 == "50%" {print $2}' "$work/ab.txt") ms, p99 $(awk '$1 == "99%" {print $2}' "$work/ab.txt") ms"
}

: > "$work/results"
echo "== maas-serve ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
"$BUILD"/maas-serve --model mnist="$work/model.h5" --port $PORT_MAAS 2> "$work/maas.log" &
server_pid=$!
wait_ready "http://127.0.0.1:$PORT_MAAS/predict"
bench maas "http://127.0.0.1:$PORT_MAAS/predict"
burst maas "http://127.0.0.1:$PORT_MAAS/predict"
keepalive33 "http://127.0.0.1:$PORT_MAAS/predict"
cross_check "http://127.0.0.1:$PORT_MAAS/predict" maas
# RSS over RSS_SECONDS under 32 connections (sampled each second after a 5 s warm-up).
( BODY="$work/body1.json" wrk -t2 -c32 -d$((RSS_SECONDS + 5))s -s "$REF/wrk_post.lua" "http://127.0.0.1:$PORT_MAAS/predict" > /dev/null ) &
wrk_pid=$!
sleep 5
: > "$work/rss"
for _ in $(seq 1 "$RSS_SECONDS"); do awk '/^VmRSS/ {print $2}' /proc/$server_pid/status >> "$work/rss"; sleep 1; done
wait $wrk_pid
awk 'NR == 1 {first = $1; min = $1; max = $1} {if ($1 < min) min = $1; if ($1 > max) max = $1; last = $1}
     END {printf "maas RSS over %d s under load: first %d KiB, last %d KiB, min %d, max %d (spread %.1f%%)\n",
          NR, first, last, min, max, 100 * (max - min) / min}' "$work/rss"
kill -TERM $server_pid; wait $server_pid || true; server_pid=""

echo "== gunicorn + Flask + PyTorch (flask_predict.py --server gunicorn, 2 workers)"
$PY "$REF/flask_predict.py" --server gunicorn --port $PORT_REF > "$work/ref.log" 2>&1 &
server_pid=$!
wait_ready "http://127.0.0.1:$PORT_REF/predict"
bench gunicorn "http://127.0.0.1:$PORT_REF/predict"
burst gunicorn "http://127.0.0.1:$PORT_REF/predict"
cross_check "http://127.0.0.1:$PORT_REF/predict" gunicorn
kill -TERM $server_pid; wait $server_pid || true; server_pid=""

echo
echo "| connections | images/request | maas req/s | gunicorn req/s | ratio | maas images/s | gunicorn images/s | maas p50 / p99 ms | gunicorn p50 / p99 ms | p99 ratio |"
echo "|---|---|---|---|---|---|---|---|---|---|"
awk '{ key = $2 " " $3; if ($1 == "maas") { m[key] = $0 } else { g[key] = $0 } }
     END {
       n = split("1 1,1 32,32 1,32 32", keys, ",")
       for (i = 1; i <= n; ++i) {
         k = keys[i]; split(m[k], a, " "); split(g[k], b, " ")
         printf "| %s | %s | %.0f | %.0f | %.1fx | %.0f | %.0f | %.2f / %.2f | %.2f / %.2f | %.1fx |\n",
           a[2], a[3], a[4], b[4], a[4] / b[4], a[4] * a[3], b[4] * b[3], a[5], a[6], b[5], b[6], b[6] / a[6]
       }
     }' "$work/results"
