#!/usr/bin/env python3
"""The scaling model of bench/RESULTS.md ("Data-parallel training over MPI").

One data-parallel step on N machines: compute B samples per machine, then
ring-allreduce the gradients (no overlap with backward):

  T_comp = B / X                       X: samples per second of one machine
  T_comm = 2 (N-1)/N * M / BW + 2 (N-1) * alpha
                                       M: gradient bytes (4 x parameters)
                                       BW: link bandwidth (bytes/s)
                                       alpha: per-message latency (2(N-1) ring steps)
  efficiency E = T_comp / (T_comp + T_comm)

E >= 0.9 needs T_comp >= 9 T_comm, i.e. B >= 9 X T_comm.

Usage: python3 bench/dist/scaling_model.py
"""
import math

ALPHA = 10e-6  # s per ring step: MPI over TCP on a LAN (RDMA would be ~2 us)
LINKS = {"10 Gbit/s": 10e9 / 8, "100 Gbit/s": 100e9 / 8}
MACHINES = [2, 8, 64]

# X: one machine like the reference one (2 vCPUs, AVX-512), bench/RESULTS.md:
# the reference CNN trains at 12,133 img/s (2 threads, batch 64, 5.28 ms);
# a ResNet-50 step costs ~3 x 4.1 GFLOP per 224x224 image, at the 187 GFLOP/s
# the CNN's training step reaches: 15.2 img/s.
MODELS = [
    ("reference CNN", 225_034, 12_133.0, 64),
    ("ResNet-50", 25_600_000, 187e9 / (3 * 4.1e9), 32),
]


def t_comm(n, params, bw):
    return 2 * (n - 1) / n * 4 * params / bw + 2 * (n - 1) * ALPHA


def main():
    print("| model (batch per machine) | link | N | T_comp | T_comm | efficiency | batch for 90% |")
    print("|---|---|---|---|---|---|---|")
    for name, params, x, b in MODELS:
        for link, bw in LINKS.items():
            for n in MACHINES:
                tc = b / x
                tm = t_comm(n, params, bw)
                e = tc / (tc + tm)
                b90 = math.ceil(9 * x * tm)
                print(f"| {name} (B={b}) | {link} | {n} | {tc*1e3:.2f} ms | {tm*1e3:.3f} ms | {100*e:.1f}% | {b90} |")


if __name__ == "__main__":
    main()
