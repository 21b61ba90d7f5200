#!/usr/bin/python3
"""Compare two maas_bench binaries (before and after a change) on a noisy machine.

    bench/interleave.py BEFORE/maas_bench AFTER/maas_bench --filter 'sgemm_maas|conv2d' \\
        [--rounds 3] [--repetitions 3] [--min-time 0.2]

Runs the two binaries in turn (before, after, before, after, ...) for
--rounds rounds, each run with --benchmark_repetitions, so that load from
other processes falls on both alike. Prints, per benchmark, the median real
and CPU times of each binary over all its repetitions and the ratios after /
before, as a Markdown table (below 1: the change is faster). On a busy
machine the CPU time of a one-thread benchmark is the steadier figure; with
threads only the real time means anything (CPU time sums the threads).
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections import OrderedDict


def run(binary, flt, reps, min_time):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([binary, f"--benchmark_filter={flt}", f"--benchmark_repetitions={reps}",
                        f"--benchmark_min_time={min_time}", f"--benchmark_out={out.name}",
                        "--benchmark_out_format=json"], check=True, stdout=subprocess.DEVNULL)
        doc = json.load(open(out.name))
    times = OrderedDict()
    for b in doc["benchmarks"]:
        if b.get("run_type") == "aggregate":
            continue
        times.setdefault(b["run_name"], []).append((b["real_time"], b["cpu_time"], b["time_unit"]))
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--filter", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--min-time", default="0.2")
    args = ap.parse_args()
    samples = {"before": OrderedDict(), "after": OrderedDict()}
    for r in range(args.rounds):
        for side in ("before", "after"):
            print(f"round {r + 1}/{args.rounds}: {side}", file=sys.stderr)
            for name, t in run(getattr(args, side), args.filter, args.repetitions, args.min_time).items():
                samples[side].setdefault(name, []).extend(t)
    print("| benchmark | real before | real after | ratio | CPU before | CPU after | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, before in samples["before"].items():
        after = samples["after"].get(name)
        if not after:
            continue
        unit = before[0][2]
        row = [name]
        for i in (0, 1):
            b = statistics.median(t[i] for t in before)
            a = statistics.median(t[i] for t in after)
            row += [f"{b:.4g} {unit}", f"{a:.4g} {unit}", f"{a / b:.3f}"]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
