#!/usr/bin/env python3
"""Summarises benches/perf/compare.sh: per point and side, the median and
range of the per-run throughput ratios (server / baseline of the same run),
the after/before ratio of the medians, and a permutation test's p-value for
the difference of the medians (how often a random split of the pooled runs
differs as much: a large p means the two sides cannot be told apart).

    python3 benches/perf/compare.py benches/perf/results/compare
"""
import collections
import glob
import json
import math
import os
import random
import statistics
import sys


def main(folder):
    ratios = collections.defaultdict(list)
    rates = collections.defaultdict(list)
    others = collections.defaultdict(list)
    for path in glob.glob(os.path.join(folder, "*.json")):
        side, rest = os.path.basename(path).split("-", 1)
        point = rest.rsplit("-r", 1)[0]
        report = json.load(open(path))
        for server, baseline in zip(report["server"]["runs"], report["baseline"]["runs"]):
            ratios[point, side].append(server["requests_per_second"] / baseline["requests_per_second"])
            rates[point, side].append(server["requests_per_second"])
            others[point, side].append(server.get("other_cpus") or 0)
    medians = {"before": [], "after": []}
    print("| mix | connections | before: ratio, median (min–max) | after | runs | after / before | p | before req/s | after req/s | others |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for point in sorted({p for p, _ in ratios}):
        before, after = ratios[point, "before"], ratios[point, "after"]
        mb, ma = statistics.median(before), statistics.median(after)
        medians["before"].append(mb)
        medians["after"].append(ma)
        mix, connections = point.rsplit("-c", 1)
        print(
            f"| {mix.replace('-', ',')} | {connections} "
            f"| {mb:.2f} ({min(before):.2f}–{max(before):.2f}) "
            f"| {ma:.2f} ({min(after):.2f}–{max(after):.2f}) "
            f"| {len(before)} / {len(after)} | {ma / mb:.2f} | {permutation_p(before, after):.2f} "
            f"| {statistics.median(rates[point, 'before']):,.0f} "
            f"| {statistics.median(rates[point, 'after']):,.0f} "
            f"| {max(others[point, 'before'] + others[point, 'after']):.2f} |"
        )
    for side in ("before", "after"):
        values = medians[side]
        mean = math.exp(sum(map(math.log, values)) / len(values))
        print(f"\ngeometric mean of the medians, {side}: {mean:.3f}")


def permutation_p(a, b, rounds=4000):
    observed = abs(statistics.median(a) - statistics.median(b))
    pool = a + b
    rng = random.Random(1)
    hits = 0
    for _ in range(rounds):
        rng.shuffle(pool)
        if abs(statistics.median(pool[: len(a)]) - statistics.median(pool[len(a):])) >= observed:
            hits += 1
    return hits / rounds


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "benches/perf/results/compare")
