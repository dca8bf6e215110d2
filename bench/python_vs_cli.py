#!/usr/bin/env python3
"""The same lab scans through the Python bindings and through the CLI, taking turns: median wall
times and the ratio python / cli (the bar: within 10 %).

Run as root from the repository root, with the lab up (`LAB_PREFIX=... bash tests/lab/lab.sh up`)
and the extension built into a virtualenv (`cd rustmap-python && maturin develop --release`):

    python3 bench/python_vs_cli.py --python /opt/rustmap-lab/pyvenv/bin/python \\
        --cli target/release/rustmap --runs 5

Both run as fresh processes inside the lab's scanner namespace. Two figures per scenario: the
whole process (interpreter start and `import rustmap` included, against the CLI's process), and
the scan alone (`rustmap.scan(...)` timed inside Python, against the CLI's process, which also
parses its flags and writes its JSON). The CLI writes `-oJ -` to a pipe and no history
(`--no-db`); the Python scan builds its result objects.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

# name: (CLI flags, the same scan as keyword arguments)
SCENARIOS: dict[str, tuple[list[str], dict[str, object]]] = {
    "syn-allports": (["-sS", "-n", "-T4", "-p-", "198.18.0.10"],
                     {"targets": "198.18.0.10", "scan_type": "syn", "timing": 4, "ports": "-",
                      "names": {"reverse": "never"}}),
    "sweep": (["-n", "-T4", "-p", "22,80", "198.18.0.0/24"],
              {"targets": "198.18.0.0/24", "timing": 4, "ports": "22,80", "names": {"reverse": "never"}}),
    "version": (["-sV", "-n", "-T4", "-p", "21,22,25,80,110,143,443,6379", "198.18.0.10"],
                {"targets": "198.18.0.10", "service_detection": True, "timing": 4,
                 "ports": "21,22,25,80,110,143,443,6379", "names": {"reverse": "never"}}),
}

PY_SCAN = """
import json, sys, time
t0 = time.perf_counter()
import rustmap
options = json.loads(sys.argv[1])
t1 = time.perf_counter()
result = rustmap.scan(**options)
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "scan": t2 - t1, "hosts": len(result.hosts),
                  "open": sum(len(h.open_ports) for h in result.hosts)}))
"""


def in_ns(ns: str, argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, env=env,
                         timeout=600, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        sys.exit(f"{argv[0]} failed: {out.stderr}")
    return wall, out.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", default="/opt/rustmap-lab/pyvenv/bin/python")
    ap.add_argument("--cli", default="target/release/rustmap")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", nargs="*", choices=sorted(SCENARIOS))
    args = ap.parse_args()
    ns = f"{os.environ.get('LAB_PREFIX', 'rmlab')}-scan"
    home = tempfile.mkdtemp(prefix="rm-bench-home-")
    env = dict(os.environ, HOME=home)
    print(f"| scenario | CLI process (s) | Python process (s) | ratio | Python scan alone (s) | ratio | hosts / open ports |")
    print("|---|---|---|---|---|---|---|")
    for name in args.only or SCENARIOS:
        flags, options = SCENARIOS[name]
        cli, py, scan, counts = [], [], [], set()
        for _ in range(args.runs):
            wall, out = in_ns(ns, [args.cli, *flags, "--no-db", "-oJ", "-"], env)
            cli.append(wall)
            doc = json.loads(out)
            counts.add(("cli", len(doc["hosts"]),
                        sum(1 for h in doc["hosts"] for p in h["ports"] if p["state"] == "open")))
            wall, out = in_ns(ns, [args.python, "-c", PY_SCAN, json.dumps(options)], env)
            py.append(wall)
            got = json.loads(out)
            scan.append(got["scan"])
            counts.add(("py", got["hosts"], got["open"]))
        c, p, s = statistics.median(cli), statistics.median(py), statistics.median(scan)
        found = " ".join(f"{who} {h}/{o}" for who, h, o in sorted(counts))
        print(f"| {name} | {c:.3f} | {p:.3f} | {p / c:.3f} | {s:.3f} | {s / c:.3f} | {found} |", flush=True)


if __name__ == "__main__":
    main()
