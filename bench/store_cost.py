#!/usr/bin/env python3
"""What storing the history costs: one scan run alternately with --no-db and with a fresh
database (--db, --db-sync MODE), N runs each, medians of the wall time, and the database's size.

With --base OTHER_BINARY, two builds take turns (base --no-db, base stored, this --no-db, this
stored, N times): before/after figures from one run, on a machine whose load drifts. With
--reuse, each build's stored runs all write into one database, as a user's history grows, created
by a first stored run that is not counted (a fresh database pays for creating its file each run).
Besides the ratio of the medians, the median of each round's stored/--no-db ratio is printed: the
two runs of a round are seconds apart, so load that comes and goes moves both.

Usage (as root, from the repository root, a release build in target/release):
    # every host up (one row and one port row each): the AnyIP /16
    ANYIP_PREFIX=rmrsa python3 bench/anyip.py --keep
    python3 bench/store_cost.py --ns rmrsa-scan --runs 5 -- -sS -Pn -n -p 80 198.19.0.0/16
    # almost every host down (the packed down-host rows): the lab's routed /16
    python3 bench/store_cost.py --ns rmres-scan --runs 3 -- -sn -T4 -n 198.19.0.0/16
    # before/after: another build alternating with this one
    python3 bench/store_cost.py --ns rmrsa-scan --runs 9 --base /tmp/main/rustmap -- -sS -Pn -n -p 80 198.19.0.0/16

Safety: the scans run in the namespace given, whose targets are the lab's or AnyIP's; each run is
bounded by a timeout. The databases are written in a temporary directory and removed.
"""
import argparse, os, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(ns, binary, args, extra, timeout):
    t0 = time.monotonic()
    with open(os.devnull, "w") as null:
        subprocess.run(["ip", "netns", "exec", ns, binary, *args, "--no-progress", "-oX", os.devnull, *extra],
                       check=True, timeout=timeout, stdout=null, stderr=null)
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ns", required=True)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "rustmap"))
    ap.add_argument("--base", help="another build, alternating with --bin (before/after)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sync", default="normal", help="off, normal, full, or none (no --db-sync: older builds)")
    ap.add_argument("--reuse", action="store_true", help="one database per build for every stored run")
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("args", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    args = a.args[1:] if a.args[:1] == ["--"] else a.args
    if os.geteuid() != 0:
        sys.exit("store_cost.py: run as root (network namespaces)")
    builds = ([("before", a.base)] if a.base else []) + [("after" if a.base else "", a.bin)]
    sync = [] if a.sync == "none" else ["--db-sync", a.sync]
    kept = {b: tempfile.TemporaryDirectory() for _, b in builds} if a.reuse else {}
    for b, d in kept.items():
        run(a.ns, b, args, ["--db", os.path.join(d.name, "h.db"), *sync], a.timeout)
    nodb = {b: [] for _, b in builds}
    stored = {b: [] for _, b in builds}
    sizes = {b: [] for _, b in builds}
    for _ in range(a.runs):
        for _, b in builds:
            nodb[b].append(run(a.ns, b, args, ["--no-db"], a.timeout))
            with tempfile.TemporaryDirectory() as fresh:
                d = kept[b].name if b in kept else fresh
                stored[b].append(run(a.ns, b, args, ["--db", os.path.join(d, "h.db"), *sync], a.timeout))
                size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
                sizes[b].append(size / (len(stored[b]) + 1) if b in kept else size)
    print(f"rustmap {' '.join(args)}" + (", one database per build" if a.reuse else ""))
    for name, b in builds:
        m1, m2 = statistics.median(nodb[b]), statistics.median(stored[b])
        paired = statistics.median(s / n for s, n in zip(stored[b], nodb[b]))
        label = f"{name} ({b})" if name else ""
        if label:
            print(label)
        print(f"| --no-db | {', '.join(f'{t:.2f}' for t in nodb[b])} | {m1:.2f} s |")
        print(f"| stored (--db-sync {a.sync}) | {', '.join(f'{t:.2f}' for t in stored[b])} | "
              f"{m2:.2f} s ({100 * (m2 / m1 - 1):+.1f} %; per round {100 * (paired - 1):+.1f} %) |")
        print(f"database (with its WAL){' per scan' if b in kept else ''}: {statistics.median(sizes[b]) / 1e6:.2f} MB")
    for d in kept.values():
        d.cleanup()


if __name__ == "__main__":
    main()
