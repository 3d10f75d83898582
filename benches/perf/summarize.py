#!/usr/bin/env python3
"""Turns the JSON reports of `progjar-chat bench` in a directory into
markdown tables, checked against the performance targets.

Usage: python3 benches/perf/summarize.py [DIR]   (default benches/perf/results)

Reads matrix-*.json (benches/perf/run-matrix.sh), idle-r*.json, list.json,
drain-*.json and cycles-*.json (benches/perf/run-scenarios.sh); whatever is missing
is left out.
"""

import glob
import json
import os
import re
import statistics
import sys

THROUGHPUT_TARGET = 0.9  # server / baseline, at least
P99_TARGET = 1.5  # server / baseline, at most
IDLE_BYTES_TARGET = 5 * 1024  # per connection, at most
DRAIN_PEAK_TARGET = 3.0  # peak memory growth / reply size, at most


def load(path):
    with open(path) as f:
        return json.load(f)


def spread(values, fmt="{:.2f}"):
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    med = statistics.median(values)
    if len(values) == 1:
        return fmt.format(med)
    return f"{fmt.format(med)} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def thousands(x):
    return f"{x:,.0f}"


def ms(us):
    return f"{us / 1000:.3f}"


def mark(ok):
    return "yes" if ok else "**no**"


def others_of(report):
    """The most CPU time other processes took during any run of a point, in
    CPUs (0.1 = a tenth of one CPU); "–" when the reports do not say."""
    values = [
        run.get("other_cpus")
        for side in ("server", "baseline")
        for run in (report.get(side) or {}).get("runs", [])
    ]
    values = [v for v in values if v is not None]
    return f"{max(values):.2f}" if values else "–"


def machine_line(reports):
    m = reports[0]["machine"]
    loads = [r["machine"].get(k) for r in reports for k in ("load_average_start", "load_average_end")]
    loads = [x for x in loads if x is not None]
    mem = m.get("memory_kib")
    text = f"{m['cpus']} CPUs ({m.get('cpu_model') or 'unknown CPU'})"
    if mem:
        text += f", {mem / 1024 / 1024:.1f} GiB RAM"
    if m.get("kernel"):
        text += f", Linux {m['kernel']}"
    if loads:
        text += f"; 1-minute load average during the runs {min(loads):.2f}–{max(loads):.2f}"
    return text


def matrix(directory):
    paths = glob.glob(os.path.join(directory, "matrix-*.json"))
    rows = []
    for path in paths:
        r = load(path)
        p = r["params"]
        rows.append((p["mix"], p["connections"], p["pipeline"], r))
    if not rows:
        return [], []
    rows.sort(key=lambda row: (-len(row[0]), row[0], row[1], row[2]))
    out = [
        "| mix | connections | pipeline | server req/s | baseline req/s | throughput ratio | ≥ 0.9 "
        "| server p99 ms | baseline p99 ms | p99 ratio | ≤ 1.5 | errors | others |",
        "|---|---:|---:|---:|---:|---|:-:|---:|---:|---|:-:|---:|---:|",
    ]
    reports = []
    for mix, c, pipeline, r in rows:
        reports.append(r)
        s, b = r.get("server"), r.get("baseline")
        if not s or not b or not r.get("ratio"):
            continue
        ratio = r["ratio"]
        t = ratio["throughput"]
        q = ratio["p99"]
        errors = sum(run["error_replies"] + run["connection_failures"] for run in s["runs"])
        out.append(
            f"| {mix} | {c} | {pipeline} "
            f"| {thousands(s['summary']['requests_per_second']['median'])} "
            f"| {thousands(b['summary']['requests_per_second']['median'])} "
            f"| {t['median']:.2f} ({t['min']:.2f}–{t['max']:.2f}) | {mark(t['median'] >= THROUGHPUT_TARGET)} "
            f"| {ms(s['summary']['p99_us']['median'])} | {ms(b['summary']['p99_us']['median'])} "
            f"| {q['median']:.2f} ({q['min']:.2f}–{q['max']:.2f}) | {mark(q['median'] <= P99_TARGET)} "
            f"| {errors} | {others_of(r)} |"
        )
    return out, reports


def idle(directory):
    reports = [load(p) for p in sorted(glob.glob(os.path.join(directory, "idle*.json")))]
    per = []
    for r in reports:
        for run in (r.get("server") or {}).get("runs", []):
            memory = run.get("server_memory") or {}
            if memory.get("per_connection_bytes") is not None:
                per.append(memory["per_connection_bytes"])
    if not per:
        return [], reports
    n = reports[0]["params"]["idle"]
    worst = max(per)
    return [
        f"- **{thousands(n)} idle authenticated connections**: {spread(per, '{:,.0f}')} bytes of "
        f"server RSS per connection (target ≤ {IDLE_BYTES_TARGET:,}): {mark(worst <= IDLE_BYTES_TARGET)}."
    ], reports


def list_sessions(directory):
    path = os.path.join(directory, "list.json")
    if not os.path.exists(path):
        return [], []
    r = load(path)
    ratio = r.get("ratio")
    if not ratio:
        return [], [r]
    t, q = ratio["throughput"], ratio["p99"]
    s = r["server"]["summary"]
    return [
        f"- **`list` with {thousands(r['params']['sessions'])} live sessions**, 100 connections: "
        f"{thousands(s['requests_per_second']['median'])} req/s, throughput ratio "
        f"{t['median']:.2f} ({t['min']:.2f}–{t['max']:.2f}) {mark(t['median'] >= THROUGHPUT_TARGET)}, "
        f"p99 ratio {q['median']:.2f} ({q['min']:.2f}–{q['max']:.2f}) {mark(q['median'] <= P99_TARGET)}."
    ], [r]


def drain(directory):
    by_size = {}
    reports = []
    for path in glob.glob(os.path.join(directory, "drain-*.json")):
        r = load(path)
        reports.append(r)
        for d in r.get("inbox_drain", []):
            by_size.setdefault(d["messages"], []).append(d)
    if not by_size:
        return [], reports
    out = [
        "| messages | drain time s | ns per message | reply MB | peak memory growth / reply | ≤ 3 | correct |",
        "|---:|---|---|---:|---|:-:|:-:|",
    ]
    for n in sorted(by_size):
        ds = by_size[n]
        peaks = [d["server_memory"]["peak_over_reply"] for d in ds if d.get("server_memory")]
        out.append(
            f"| {thousands(n)} | {spread([d['drain_seconds'] for d in ds], '{:.3f}')} "
            f"| {spread([d['ns_per_message'] for d in ds], '{:.0f}')} "
            f"| {statistics.median(d['reply_bytes'] for d in ds) / 1e6:.1f} "
            f"| {spread(peaks)} | {mark(bool(peaks) and max(peaks) <= DRAIN_PEAK_TARGET)} "
            f"| {mark(all(d['correct'] for d in ds))} |"
        )
    return out, reports


def cycles(directory):
    warm, big = (os.path.join(directory, f"cycles-{k}.json") for k in ("warm", "1m"))
    if not (os.path.exists(warm) and os.path.exists(big)):
        return [], []
    w, b = load(warm), load(big)

    def end(r):
        run = r["server"]["runs"][0]
        return (run.get("server_memory") or {}).get("end_kib"), run

    w_end, _ = end(w)
    b_end, run = end(b)
    if w_end is None or b_end is None:
        return [], [w, b]
    cycles_done = run["requests"] // 2
    growth = b_end - w_end
    return [
        f"- **{thousands(cycles_done)} auth/logout cycles** after {thousands(w['server']['runs'][0]['requests'] // 2)} "
        f"warm-up cycles, {thousands(run['requests_per_second'])} req/s: server RSS {w_end:,} KiB before, "
        f"{b_end:,} KiB after ({growth:+,} KiB), errors {run['error_replies']}: "
        f"{mark(growth <= 1024 and run['error_replies'] == 0)} (target: no growth; 1 MiB tolerance for allocator noise)."
    ], [w, b]


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "benches/perf/results"
    sections = []
    all_reports = []
    table, reports = matrix(directory)
    all_reports += reports
    if table:
        sections.append("### Throughput and latency, as ratios to the baseline\n\n"
                        "Median of the runs (min–max in brackets); each run of the server is paired "
                        "with a baseline run made right before or after it. *others*: the most "
                        "CPU time other processes on the machine took during any run of the point, "
                        "in CPUs (above about 0.1 they competed with the measurement).\n\n" + "\n".join(table))
    lines = []
    for part in (idle, list_sessions, cycles):
        text, reports = part(directory)
        lines += text
        all_reports += reports
    if lines:
        sections.append("### Resources\n\n" + "\n".join(lines))
    table, reports = drain(directory)
    all_reports += reports
    if table:
        sections.append("### Draining one large inbox\n\n" + "\n".join(table))
    if not all_reports:
        print(f"no reports in {directory}", file=sys.stderr)
        return 1
    print(f"Machine: {machine_line(all_reports)}.\n")
    print("\n\n".join(sections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
