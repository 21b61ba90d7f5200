#!/usr/bin/python3
"""Summarise maas_bench JSON output (--benchmark_format=json or --benchmark_out).

    build/bench/maas_bench --benchmark_filter=sgemm --benchmark_repetitions=5 \\
        --benchmark_out=gemm.json --benchmark_out_format=json
    bench/summarize.py gemm.json [more.json ...]

For every benchmark (repetitions folded together) prints the median real
time, the median CPU time, and GFLOP/s and fraction of peak computed from
each. On a busy machine the CPU time of a single-threaded run is the steadier
number (time the process was descheduled does not count); with threads, CPU
time sums over threads, so only real time is meaningful. Then, for the GEMM
benchmarks, the ratio maas / OpenBLAS per size and thread count.
"""
import json
import re
import statistics
import sys
from collections import OrderedDict


def load(paths):
    runs = OrderedDict()
    context = None
    for p in paths:
        with open(p) as f:
            doc = json.load(f)
        context = context or doc.get("context", {})
        for b in doc["benchmarks"]:
            if b.get("run_type") == "aggregate":
                continue
            name = b.get("run_name", b["name"])
            runs.setdefault(name, []).append(b)
    return runs, context


def to_seconds(value, unit):
    return value * {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[unit]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    runs, context = load(sys.argv[1:])
    print("# %s, %s CPUs, %s MHz; load avg %s" % (context.get("host_name", "?"), context.get("num_cpus", "?"),
                                                  context.get("mhz_per_cpu", "?"),
                                                  context.get("load_avg", "?")))
    print("%-62s %5s %11s %11s %9s %9s %6s %6s %s" % ("benchmark", "reps", "real", "cpu", "GF/s", "GF/s",
                                                      "peak", "peak", "label"))
    print("%-62s %5s %11s %11s %9s %9s %6s %6s" % ("", "", "(median)", "(median)", "(real)", "(cpu)", "(real)",
                                                   "(cpu)"))
    gflops = {}
    for name, rs in runs.items():
        unit = rs[0]["time_unit"]
        real = statistics.median(to_seconds(r["real_time"], unit) for r in rs)
        cpu = statistics.median(to_seconds(r["cpu_time"], unit) for r in rs)
        rate = statistics.median(r["GFLOP/s"] for r in rs) if "GFLOP/s" in rs[0] else None
        frac = statistics.median(r["peak_frac"] for r in rs) if "peak_frac" in rs[0] else None
        gf_real = gf_cpu = pk_real = pk_cpu = ""
        if rate is not None:
            flops = rate * real  # counters are per real second
            gf_real, gf_cpu = "%.1f" % (rate / 1e9), "%.1f" % (flops / cpu / 1e9)
            gflops[name] = (rate / 1e9, flops / cpu / 1e9)
            if frac is not None:
                pk_real, pk_cpu = "%.2f" % frac, "%.2f" % (frac * real / cpu)
        extra = rs[0].get("label", "")
        if "items_per_second" in rs[0]:
            extra += " %.0f items/s (real)" % statistics.median(r["items_per_second"] for r in rs)
        if "bytes_per_second" in rs[0]:
            extra += " %.1f GB/s (real)" % (statistics.median(r["bytes_per_second"] for r in rs) / 1e9)
        print("%-62s %5d %9.3fms %9.3fms %9s %9s %6s %6s %s" % (name, len(rs), real * 1e3, cpu * 1e3, gf_real,
                                                                 gf_cpu, pk_real, pk_cpu, extra.strip()))
    # maas / OpenBLAS on the same size and thread count.
    pairs = []
    for name, (real, cpu) in gflops.items():
        m = re.match(r"BM_sgemm_maas(_cnn)?/(.*)", name)
        if m:
            other = "BM_sgemm_openblas%s/%s" % (m.group(1) or "", m.group(2))
            if other in gflops:
                pairs.append((name, real / gflops[other][0], cpu / gflops[other][1]))
    if pairs:
        print("\n%-62s %12s %12s" % ("maas / OpenBLAS", "real time", "cpu time"))
        for name, r_real, r_cpu in pairs:
            print("%-62s %12.2f %12.2f" % (name, r_real, r_cpu))


if __name__ == "__main__":
    main()
