#!/usr/bin/python3
"""Writes a ratings file of MovieLens 100k's shape, in its u.data format, for
examples/recommender where MovieLens itself cannot be downloaded.

    data/movielens_like.py [SEED] > u.data      # 100,000 lines

943 users and 1,682 items with Pareto-skewed activity and popularity; each
rating 3.5 + b_u + b_i + p_u . q_i + noise, rank-8 factors N(0, 0.5^2),
biases N(0, 0.4^2) and N(0, 0.5^2), noise N(0, 0.8^2), rounded to 1..5
stars; no (user, item) pair twice. The README's recommender row used seed 1.
"""
import bisect
import itertools
import random
import sys

random.seed(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
USERS, ITEMS, RATINGS, RANK = 943, 1682, 100000, 8
p = [[random.gauss(0, 0.5) for _ in range(RANK)] for _ in range(USERS)]
q = [[random.gauss(0, 0.5) for _ in range(RANK)] for _ in range(ITEMS)]
bu = [random.gauss(0, 0.4) for _ in range(USERS)]
bi = [random.gauss(0, 0.5) for _ in range(ITEMS)]
user_weight = list(itertools.accumulate(random.paretovariate(1.2) for _ in range(USERS)))
item_weight = list(itertools.accumulate(random.paretovariate(1.0) for _ in range(ITEMS)))
seen = set()
out = []
while len(out) < RATINGS:
    u = min(bisect.bisect(user_weight, random.random() * user_weight[-1]), USERS - 1)
    i = min(bisect.bisect(item_weight, random.random() * item_weight[-1]), ITEMS - 1)
    if (u, i) in seen:
        continue
    seen.add((u, i))
    r = 3.5 + bu[u] + bi[i] + sum(a * b for a, b in zip(p[u], q[i])) + random.gauss(0, 0.8)
    out.append(f"{u + 1}\t{i + 1}\t{min(5, max(1, round(r)))}\t{880000000 + len(out)}")
sys.stdout.write("\n".join(out) + "\n")
