#!/usr/bin/env python3
"""What storing the history costs: one scan run alternately with --no-db and with a fresh
database (--db, --db-sync MODE), N runs each, medians of the wall time, and the database's size.

Usage (as root, from the repository root, a release build in target/release):
    # every host up (one row and one port row each): the AnyIP /16
    ANYIP_PREFIX=rmrsa python3 bench/anyip.py --keep
    python3 bench/store_cost.py --ns rmrsa-scan --runs 5 -- -sS -Pn -n -p 80 198.19.0.0/16
    # almost every host down (the packed down-host rows): the lab's routed /16
    python3 bench/store_cost.py --ns rmres-scan --runs 3 -- -sn -T4 -n 198.19.0.0/16

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
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sync", default="normal", help="off, normal, full, or none (no --db-sync: older builds)")
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("args", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    args = a.args[1:] if a.args[:1] == ["--"] else a.args
    if os.geteuid() != 0:
        sys.exit("store_cost.py: run as root (network namespaces)")
    nodb, stored, sizes = [], [], []
    for _ in range(a.runs):
        nodb.append(run(a.ns, a.bin, args, ["--no-db"], a.timeout))
        with tempfile.TemporaryDirectory() as d:
            db = os.path.join(d, "h.db")
            sync = [] if a.sync == "none" else ["--db-sync", a.sync]
            stored.append(run(a.ns, a.bin, args, ["--db", db, *sync], a.timeout))
            sizes.append(sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)))
    m1, m2 = statistics.median(nodb), statistics.median(stored)
    print(f"rustmap {' '.join(args)}")
    print(f"| --no-db | {', '.join(f'{t:.2f}' for t in nodb)} | {m1:.2f} s |")
    print(f"| stored (--db-sync {a.sync}) | {', '.join(f'{t:.2f}' for t in stored)} | {m2:.2f} s ({100 * (m2 / m1 - 1):+.1f} %) |")
    print(f"database (with its WAL): {statistics.median(sizes) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
