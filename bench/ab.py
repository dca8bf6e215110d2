#!/usr/bin/env python3
"""Before/after: two RustMap builds run alternately on the lab's benchmark scenarios, in one run.

A refactor must not make any scan slower. The machines are noisy, so the two builds take turns
(base, new, base, new, ...) on each scenario and the medians are compared, within one run of this
script. nmap's figures are in bench.py's runs; this compares RustMap with itself.

Usage (as root, the lab up: bash tests/lab/lab.sh up):
    python3 bench/ab.py BASE_BINARY NEW_BINARY [--runs 5] [--only NAME ...]

Safety: every command runs in the lab's scanner namespace (no route out), targets are lab
addresses in 198.18.0.0/15 only, every run is bounded by a timeout.
"""
import argparse, os, statistics, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import run_in_ns  # noqa: E402

NS = f"{os.environ.get('LAB_PREFIX', 'rmlab')}-scan"
H10_SERVICES = "21,22,25,53,80,110,143,443,1883,4465,5432,6379,6667,7379,8080,8443,9443,10443,11211"
SCENARIOS = [
    ("connect", "-sT -p- h10", ["-n", "-sT", "-p-", "-T4", "198.18.0.10"], 60),
    ("syn", "-sS -p- h10", ["-n", "-sS", "-p-", "-T4", "198.18.0.10"], 60),
    ("syn", "-sS -p- h11 (firewalled)", ["-n", "-sS", "-p-", "-T4", "198.18.0.11"], 120),
    ("sweep", "-sT -p 80 /24", ["-n", "-sT", "-p", "80", "-T4", "198.18.0.0/24"], 60),
    ("discovery", "-sn /24 (ARP)", ["-n", "-sn", "198.18.0.0/24"], 60),
    ("discovery", "-sn -T4 routed /16", ["-n", "-sn", "-T4", "198.19.0.0/16"], 300),
    ("version", "-sV h10 services", ["-n", "-sT", "-sV", "-p", H10_SERVICES, "198.18.0.10"], 120),
    ("scripts", "-sV -sC h10 services", ["-n", "-sT", "-sV", "-sC", "-p", H10_SERVICES, "198.18.0.10"], 120),
    ("udp", "-sU -F h13", ["-n", "-sU", "-F", "-T4", "198.18.0.13"], 300),
    ("os", "-O h10 h17 h18", ["-n", "-O", "-p", "22,80,1", "198.18.0.10", "198.18.0.17", "198.18.0.18"], 120),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("new")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", nargs="*", default=None, help=" ".join(sorted({s[0] for s in SCENARIOS})))
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("ab.py: run as root (the lab's namespaces)")
    print(f"median of {a.runs} runs each, the two builds alternating\n")
    print("| scenario | before | RSS | after | RSS | after / before |")
    print("|---|---|---|---|---|---|")
    for name, label, args, timeout in SCENARIOS:
        if a.only is not None and name not in a.only:
            continue
        times = {a.base: [], a.new: []}
        rss = {a.base: [], a.new: []}
        for _ in range(a.runs):
            for b in (a.base, a.new):
                # No history: the two builds may read different schema versions of one database.
                m = run_in_ns(NS, [b, *args, "--no-progress", "--no-db", "-oX", "-"], timeout)
                if m["timed_out"] or m["code"] != 0:
                    sys.exit(f"{b} {label}: failed ({m['err'][-300:]})")
                times[b].append(m["wall"])
                rss[b].append(m["rss"])
        tb, tn = statistics.median(times[a.base]), statistics.median(times[a.new])
        print(f"| {label} | {tb:.2f} s | {max(rss[a.base]):.1f} MB | {tn:.2f} s | {max(rss[a.new]):.1f} MB | "
              f"{tn / tb:.2f} |", flush=True)


if __name__ == "__main__":
    main()
