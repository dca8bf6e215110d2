#!/usr/bin/env python3
"""--predict-ports: how soon the first open port comes, first scan against a second scan that
uses the history, on lab hosts. Each round uses a fresh database: one plain scan (it stores the
host), then one with --predict-ports. Reports the medians of the first open port's time and of
the whole scan's time, from the JSON-lines event stream (first_open_port, scan_finished).

Usage (as root, the lab up: LAB_PREFIX=rmres bash tests/lab/lab.sh up):
    python3 bench/predict.py [--bin target/release/rustmap] [--runs 3]

Safety: every command runs in the lab's scanner namespace (no route out), on lab addresses only,
each bounded by a timeout.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile

NS = f"{os.environ.get('LAB_PREFIX', 'rmlab')}-scan"
CASES = [
    ("-sS -p- h10 (services)", ["-sS", "-n", "-p-", "198.18.0.10"]),
    ("-sS -p- h11 (firewalled, 2 open)", ["-sS", "-n", "-p-", "198.18.0.11"]),
    ("-sS -p- h14 (services)", ["-sS", "-n", "-p-", "198.18.0.14"]),
]


def scan(binary, args, db, extra):
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as out:
        cmd = ["ip", "netns", "exec", NS, os.path.abspath(binary), *args, "--db", db, "--no-progress", "--oJ-lines", out.name, *extra]
        subprocess.run(cmd, check=True, timeout=300, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        events = [json.loads(line) for line in open(out.name)]
    first = next((e["after_secs"] for e in events if e["event"] == "first_open_port"), None)
    total = next(e["elapsed_secs"] for e in events if e["event"] == "scan_finished")
    return first, total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/rustmap")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("predict.py: run as root (the lab's namespaces)")
    print("| scan | first scan: first open / total | with --predict-ports: first open / total | first open / first scan's total |")
    print("|---|---|---|---|")
    for label, args in CASES:
        f1, t1, f2, t2 = [], [], [], []
        for _ in range(a.runs):
            with tempfile.TemporaryDirectory() as d:
                db = os.path.join(d, "h.db")
                f, t = scan(a.bin, args, db, [])
                f1.append(f); t1.append(t)
                f, t = scan(a.bin, args, db, ["--predict-ports"])
                f2.append(f); t2.append(t)
        m = statistics.median
        print(f"| {label} | {m(f1):.3f} s / {m(t1):.2f} s | {m(f2):.3f} s / {m(t2):.2f} s | {100 * m(f2) / m(t1):.1f} % |",
              flush=True)


if __name__ == "__main__":
    main()
