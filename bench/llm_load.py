#!/usr/bin/python3
"""llm_load.py: a load generator for streamed completions (OpenAI's POST /v1/completions, stream: true).

    bench/llm_load.py --url http://127.0.0.1:8600 --model gpt --concurrency 16 --requests 64
    bench/llm_load.py --url http://127.0.0.1:8600 --concurrency 1 --duration 20 --max-tokens 128 --json

--concurrency workers each send requests back to back, one at a time, until --requests have been sent in all
or, with --duration S, until S seconds have passed (a request under way then runs to its end). Request i
(counted from 0 over the whole run) has the body
    {"model": MODEL, "prompt": PROMPT, "max_tokens": M, "temperature": T, "seed": i, "stream": true}
and its answer is read as a client reads Server-Sent Events: each `data: {json}` line is one chunk whose
choices[0].text holds one token or a few, `data: [DONE]` ends the stream. The model is character-level (maas'
CharTokenizer): a chunk's text of k characters counts as k tokens.

Measured per request: the time to first token (from sending the request to the first chunk with text) and
the gaps between chunks; a chunk of k tokens arriving g seconds after the previous one counts as k gaps of
g / k (so inter-token latency is time per output token). Reported over the run: aggregate tokens/s (the
tokens of the completed requests over the run's wall time), p50/p99/mean of the time to first token and of inter-token
latency, p50/p99 of request duration, completed and failed requests, errors by kind.

Answers other than a stream:
- 503 (the server's queue is full): counted as `rejected`; the worker waits the Retry-After seconds (default
  1, at most 10, never past the end of a --duration run) and sends the same request again;
- any other status, a connection refused or reset, a stream that ends without `data: [DONE]` and a read
  that waits more than --timeout seconds: counted as a failed request under errors[kind]; the worker
  waits 0.1 s and goes on with its next request.
No read waits longer than --timeout, so a run ends at most --timeout seconds after its last request began.

--warmup N sends N requests (same settings, not measured) before the run. --json prints one object:
{"url", "model", "concurrency", "max_tokens", "prompt_chars", "requests", "failed", "rejected", "errors",
 "tokens", "seconds", "tokens_per_s", "ttft_ms": {"p50", "p99", "mean"}, "itl_ms": {"p50", "p99", "mean"},
 "request_ms": {"p50", "p99"}, "client_cpu_s"}. client_cpu_s is this process' CPU time over the run:
near the run's seconds, the client (not the server) sets the pace on a small machine. Exit status: 0 when at
least one request completed, 1 otherwise. Standard library only (http.client and threads).
"""
import argparse
import http.client
import json
import os
import socket
import sys
import threading
import time
import urllib.parse

# 64 characters of the Shakespeare-like text the model learns (every character in tiny-shakespeare's vocabulary).
DEFAULT_PROMPT = 'ROMEO:\nWhat light through yonder window breaks? It is the east, '


def positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError('%s is not a positive whole number' % text)
    return value


def parse_args():
    p = argparse.ArgumentParser(description='Load generator for streamed completions (see the file header).')
    p.add_argument('--url', default='http://127.0.0.1:8600', help='the server: scheme, host and port')
    p.add_argument('--model', default='gpt', help='the "model" field of each request')
    p.add_argument('--concurrency', type=positive, default=1, help='concurrent streams')
    p.add_argument('--requests', type=positive, default=None, help='requests in all (default 4 x concurrency)')
    p.add_argument('--duration', type=float, default=None, help='seconds to send requests for (instead of --requests)')
    p.add_argument('--prompt', default=DEFAULT_PROMPT)
    p.add_argument('--max-tokens', type=positive, default=128)
    p.add_argument('--temperature', type=float, default=0.8)
    p.add_argument('--timeout', type=float, default=60.0, help='seconds any one connect or read may wait')
    p.add_argument('--warmup', type=int, default=0, help='requests sent before the measured run')
    p.add_argument('--json', action='store_true', help='print one JSON object')
    a = p.parse_args()
    if a.requests is not None and a.duration is not None:
        p.error('--requests and --duration exclude each other')
    if a.duration is not None and a.duration <= 0:
        p.error('--duration must be > 0 seconds')
    if a.requests is None and a.duration is None:
        a.requests = 4 * a.concurrency
    if a.timeout <= 0 or a.warmup < 0:
        p.error('--timeout must be > 0 and --warmup >= 0')
    url = urllib.parse.urlsplit(a.url)
    if url.scheme not in ('http', 'https') or not url.hostname:
        p.error('--url %r is not http://HOST[:PORT]' % a.url)
    a.host, a.port, a.https = url.hostname, url.port or (443 if url.scheme == 'https' else 80), url.scheme == 'https'
    a.path = url.path.rstrip('/') + '/v1/completions'
    return a


def percentile(values, q):
    """The q-th percentile (0-100) of values, interpolated between the nearest ranks (numpy's default)."""
    if not values:
        return None
    s = sorted(values)
    pos = (len(s) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


class Rejected(Exception):
    """A 503: the server asks to come back after `retry_after` seconds."""

    def __init__(self, retry_after):
        super().__init__('503')
        self.retry_after = retry_after


class Failed(Exception):
    """A request that did not complete; `kind` names the error in the report."""

    def __init__(self, kind):
        super().__init__(kind)
        self.kind = kind


def stream_once(a, body):
    """One streamed request: (ttft_s, [(gap_s, tokens)], tokens, duration_s). Raises Rejected or Failed."""
    cls = http.client.HTTPSConnection if a.https else http.client.HTTPConnection
    conn = cls(a.host, a.port, timeout=a.timeout)
    try:
        t0 = time.perf_counter()
        conn.request('POST', a.path, body=body, headers={'Content-Type': 'application/json',
                                                         'Accept': 'text/event-stream'})
        resp = conn.getresponse()
        if resp.status == 503:
            try:
                retry = float(resp.getheader('Retry-After', '1'))
            except ValueError:
                retry = 1.0
            resp.read()
            raise Rejected(min(max(retry, 0.0), 10.0))
        if resp.status != 200:
            resp.read()
            raise Failed('http_%d' % resp.status)
        ttft, last, gaps, tokens = None, None, [], 0
        while True:
            line = resp.readline()
            if not line:
                raise Failed('stream_ended_without_done')
            line = line.strip()
            if not line.startswith(b'data:'):
                continue  # blank separators, comments, event: or id: fields
            data = line[5:].strip()
            if data == b'[DONE]':
                break
            try:
                chunk = json.loads(data)
                text = chunk['choices'][0].get('text', '')
            except (ValueError, KeyError, IndexError, TypeError):
                raise Failed('bad_chunk')
            if not text:
                continue
            now = time.perf_counter()
            if ttft is None:
                ttft = now - t0
            else:
                gaps.append((now - last, len(text)))
            last = now
            tokens += len(text)
        return ttft, gaps, tokens, time.perf_counter() - t0
    except socket.timeout:
        raise Failed('timeout')
    except ConnectionRefusedError:
        raise Failed('connection_refused')
    except (ConnectionError, http.client.HTTPException, OSError) as e:
        raise Failed(type(e).__name__)
    finally:
        conn.close()


class Run:
    """Workers sharing a request counter and the results."""

    def __init__(self, a, count, deadline):
        self.a, self.count, self.deadline = a, count, deadline
        self.lock = threading.Lock()
        self.next = 0
        self.ttft, self.itl, self.duration = [], [], []
        self.tokens = self.failed = self.rejected = 0
        self.errors = {}

    def take(self):
        """The next request's index, or None when the run is over."""
        with self.lock:
            if self.count is not None and self.next >= self.count:
                return None
            if self.deadline is not None and time.perf_counter() >= self.deadline:
                return None
            self.next += 1
            return self.next - 1

    def worker(self):
        a = self.a
        while True:
            i = self.take()
            if i is None:
                return
            body = json.dumps({'model': a.model, 'prompt': a.prompt, 'max_tokens': a.max_tokens,
                               'temperature': a.temperature, 'seed': i, 'stream': True})
            while True:
                try:
                    ttft, gaps, tokens, seconds = stream_once(a, body)
                except Rejected as r:
                    with self.lock:
                        self.rejected += 1
                    wait = r.retry_after
                    if self.deadline is not None:
                        wait = min(wait, self.deadline - time.perf_counter())
                        if wait <= 0:
                            break
                    time.sleep(wait)
                    continue
                except Failed as f:
                    with self.lock:
                        self.failed += 1
                        self.errors[f.kind] = self.errors.get(f.kind, 0) + 1
                    time.sleep(0.1)
                    break
                with self.lock:
                    if ttft is not None:
                        self.ttft.append(ttft)
                    for gap, k in gaps:
                        self.itl.extend([gap / k] * k)
                    self.duration.append(seconds)
                    self.tokens += tokens
                break

    def go(self):
        threads = [threading.Thread(target=self.worker, daemon=True) for _ in range(self.a.concurrency)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - t0


def ms(values, *qs):
    out = {'p%d' % q: None if not values else round(1000 * percentile(values, q), 3) for q in qs}
    return out


def main():
    a = parse_args()
    if a.warmup:
        Run(a, a.warmup, None).go()
    run = Run(a, a.requests, None if a.duration is None else time.perf_counter() + a.duration)
    cpu0 = os.times()
    seconds = run.go()
    cpu = sum(os.times()[:2]) - sum(cpu0[:2])
    mean = lambda v: None if not v else round(1000 * sum(v) / len(v), 3)
    report = {
        'url': a.url, 'model': a.model, 'concurrency': a.concurrency, 'max_tokens': a.max_tokens,
        'prompt_chars': len(a.prompt), 'requests': len(run.duration), 'failed': run.failed,
        'rejected': run.rejected, 'errors': run.errors, 'tokens': run.tokens, 'seconds': round(seconds, 3),
        'tokens_per_s': round(run.tokens / seconds, 1) if seconds > 0 else None,
        'ttft_ms': dict(ms(run.ttft, 50, 99), mean=mean(run.ttft)),
        'itl_ms': dict(ms(run.itl, 50, 99), mean=mean(run.itl)),
        'request_ms': ms(run.duration, 50, 99), 'client_cpu_s': round(cpu, 3),
    }
    if a.json:
        print(json.dumps(report))
    else:
        fmt = lambda v: 'n/a' if v is None else '%.2f' % v
        print('%s  %d streams, %d requests completed, %d failed%s, %d rejected (503)'
              % (a.url, a.concurrency, report['requests'], run.failed,
                 ' %s' % run.errors if run.errors else '', run.rejected))
        print('%d tokens in %.2f s: %s tokens/s' % (run.tokens, seconds, fmt(report['tokens_per_s'])))
        for name, key in (('time to first token', 'ttft_ms'), ('inter-token latency', 'itl_ms')):
            r = report[key]
            print('%-20s p50 %s ms, p99 %s ms, mean %s ms' % (name, fmt(r['p50']), fmt(r['p99']), fmt(r['mean'])))
        print('%-20s p50 %s ms, p99 %s ms' % ('request', fmt(report['request_ms']['p50']),
                                               fmt(report['request_ms']['p99'])))
        print('this client used %.2f s of CPU' % cpu)
    return 0 if run.duration else 1


if __name__ == '__main__':
    sys.exit(main())
