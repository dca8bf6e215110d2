#!/usr/bin/env python3
"""The AnyIP benchmark: `-sS -Pn -p 80` of a /16 where every address answers.

Two network namespaces joined by one veth pair, built and torn down by this script:

    rmany-scan   eth0 198.18.100.2/30, route 198.19.0.0/16 via 198.18.100.1, no default route
    rmany-anyip  eth0 198.18.100.1/30, `ip route add local 198.19.0.0/16 dev lo`: every address
                 of the /16 is local; one listener on 0.0.0.0:80 answers SYN/ACK on all of them

RustMap, zmap (at RustMap's send rate and at its own maximum) and masscan (when it works) scan
198.19.0.0/16 from rmany-scan, N runs each. Each run records wall time, peak RSS (the scanner's
own, from GNU time; see measure.py), hosts found with port 80 open (65536 is 100 %) and the
packets it sent. A sampler inside rmany-scan reads eth0's tx counter and the kernel's TCP OutRsts
every 10 ms: the probes are tx minus the RSTs the scanner's kernel sends for every SYN/ACK (it
has no socket for them), and the send rate is the middle 98 % of the probes over the time they
took (1 % to 99 %).

Usage (as root, from the repository root; bench.py --only anyip builds and runs the same):
    python3 bench/anyip.py [--runs 5] [--skip-top100] [--perf SECONDS] [--keep]

Safety: everything lives in the two namespaces this script creates (prefix ANYIP_PREFIX, default
rmany); the veth pair is born inside them; the scanner's namespace has no route out and targets
only 198.19.0.0/16, which is local to rmany-anyip. Sysctls are raised inside the namespaces only.
Every run has a timeout; the namespaces and the listener are removed on exit, failure or signal.
"""
import argparse, atexit, os, re, signal, shutil, statistics, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import run_in_ns  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUSTMAP = os.environ.get("RUSTMAP", os.path.join(ROOT, "target", "release", "rustmap"))
PREFIX = os.environ.get("ANYIP_PREFIX", "rmany")
SCAN, TGT = f"{PREFIX}-scan", f"{PREFIX}-anyip"
BLOCK, HOSTS = "198.19.0.0/16", 65536
SCAN_IP, TGT_IP = "198.18.100.2", "198.18.100.1"
SCAN_MAC, TGT_MAC = "02:52:4d:64:00:02", "02:52:4d:64:00:01"
TIMEOUT = 300

# Inside rmany-anyip only. The listener's SYN queue and accept queue are sized so that a SYN is
# never dropped: syncookies stay on (1) as the overflow valve; the kernel RST from the scanner's
# side removes each request socket within one round trip.
TARGET_SYSCTLS = {
    "net.core.somaxconn": 65535,
    "net.ipv4.tcp_max_syn_backlog": 262144,
    "net.ipv4.tcp_syncookies": 1,
    "net.ipv4.tcp_synack_retries": 1,  # a request whose RST got lost lives 3 s, not 63
    "net.ipv6.conf.all.disable_ipv6": 1,
}
SCAN_SYSCTLS = {
    "net.ipv6.conf.all.disable_ipv6": 1,
    # A wide ephemeral range: RustMap reserves one source port, zmap and masscan pick their own.
    "net.ipv4.ip_local_port_range": "32768 60999",
}

# A listener on 0.0.0.0:80 in rmany-anyip: with the local /16 route it owns port 80 of every
# address. It accepts and closes (the reachability check completes handshakes) and exits by
# itself after MAX_LIFE seconds whatever happens to this script.
LISTENER = r"""
import signal, socket, sys
signal.alarm(int(sys.argv[1]))
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 80))
s.listen(65535)
print("listening", flush=True)
while True:
    c, _ = s.accept()
    c.close()
"""

# Inside rmany-scan: eth0's tx/rx packet counters and the kernel's TCP OutRsts every 10 ms, one
# line each, until stdin closes or MAX_LIFE seconds pass.
SAMPLER = r"""
import os, select, sys, time
end = time.monotonic() + float(sys.argv[1])
tx = open("/sys/class/net/eth0/statistics/tx_packets")
rx = open("/sys/class/net/eth0/statistics/rx_packets")
snmp = open("/proc/net/snmp")
col = None
def sample():
    global col
    tx.seek(0); rx.seek(0); snmp.seek(0)
    t = time.monotonic()
    # OutRsts before tx: an RST counted here is then in tx too
    lines = [l.split() for l in snmp.read().splitlines() if l.startswith("Tcp:")]
    if col is None:
        col = lines[0].index("OutRsts")
    sys.stdout.write(f"{t:.4f} {tx.read().strip()} {rx.read().strip()} {lines[1][col]}\n")
    sys.stdout.flush()
while time.monotonic() < end:
    sample()
    r, _, _ = select.select([sys.stdin], [], [], 0.01)
    if r and not sys.stdin.read(1):
        break
sample()
"""
MAX_LIFE = 3600


def sh(*cmd, check=True, capture=False, **kw):
    return subprocess.run(list(cmd), check=check, capture_output=capture, text=True, **kw)


def in_ns(ns, *cmd, **kw):
    return sh("ip", "netns", "exec", ns, *cmd, **kw)


def namespaces():
    out = sh("ip", "netns", "list", capture=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


_listener = None


def down():
    """Kill what runs in our namespaces (by pid) and delete them."""
    global _listener
    if _listener and _listener.poll() is None:
        _listener.kill()
        _listener.wait()
    _listener = None
    for ns in (SCAN, TGT):
        if ns not in namespaces():
            continue
        pids = [int(p) for p in sh("ip", "netns", "pids", ns, capture=True, check=False).stdout.split()]
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        sh("ip", "netns", "del", ns, check=False)


def up():
    global _listener
    if not re.fullmatch(r"[a-z][a-z0-9]{0,7}", PREFIX) or PREFIX.startswith(("rmlab", "sx")):
        sys.exit(f"anyip.py: ANYIP_PREFIX must be a short lowercase name of our own (got {PREFIX!r})")
    down()
    atexit.register(down)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(130))
    for ns in (SCAN, TGT):
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    # The pair is born inside the two namespaces under names unique to this process, then renamed
    # there; nothing is ever created in the root namespace.
    a, b = f"{PREFIX}a{os.getpid() % 100000}", f"{PREFIX}b{os.getpid() % 100000}"
    sh("ip", "link", "add", a, "netns", SCAN, "type", "veth", "peer", "name", b, "netns", TGT)
    for ns, tmp, mac, ip in ((SCAN, a, SCAN_MAC, SCAN_IP), (TGT, b, TGT_MAC, TGT_IP)):
        sh("ip", "-n", ns, "link", "set", tmp, "name", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "address", mac)
        sh("ip", "-n", ns, "addr", "add", f"{ip}/30", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
    sh("ip", "-n", SCAN, "route", "add", BLOCK, "via", TGT_IP)
    sh("ip", "-n", TGT, "route", "add", "local", BLOCK, "dev", "lo")
    # Static neighbours: no ARP in the measurements.
    sh("ip", "-n", SCAN, "neigh", "replace", TGT_IP, "lladdr", TGT_MAC, "dev", "eth0", "nud", "permanent")
    sh("ip", "-n", TGT, "neigh", "replace", SCAN_IP, "lladdr", SCAN_MAC, "dev", "eth0", "nud", "permanent")
    for ns, table in ((TGT, TARGET_SYSCTLS), (SCAN, SCAN_SYSCTLS)):
        in_ns(ns, "sysctl", "-qw", *[f"{k}={v}" for k, v in table.items()])
    _listener = subprocess.Popen(
        ["ip", "netns", "exec", TGT, sys.executable, "-c", LISTENER, str(MAX_LIFE)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    if _listener.stdout.readline().strip() != "listening":
        sys.exit("anyip.py: the listener did not start")
    # Open on the first, a middle and the last address (network and broadcast addresses of the
    # /16 are ordinary local addresses here), and the route out really is absent.
    probe = ("import socket,sys\nfor a in sys.argv[1:]:\n"
             "    s=socket.create_connection((a,80),timeout=2); s.close()\n")
    in_ns(SCAN, sys.executable, "-c", probe, "198.19.0.0", "198.19.123.45", "198.19.255.255")
    # `ip route get` only consults the routing table (nothing is sent); 192.0.2.1 is TEST-NET-1.
    if in_ns(SCAN, "ip", "route", "get", "192.0.2.1", check=False, capture=True).returncode == 0:
        sys.exit(f"anyip.py: {SCAN} has a route out; refusing to scan")


class Sampler:
    """eth0 counters inside the scanner's namespace, every 10 ms, for the duration of a run. A
    thread reads the samples as they come, so the sampler never blocks on a full pipe."""

    def __enter__(self):
        self.p = subprocess.Popen(["ip", "netns", "exec", SCAN, sys.executable, "-c", SAMPLER, str(TIMEOUT + 30)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lines = [self.p.stdout.readline()]  # the sampler runs before the scanner starts
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.p.stdout), daemon=True)
        self.reader.start()
        return self

    def __exit__(self, *exc):
        time.sleep(0.05)
        self.p.stdin.close()  # the sampler takes a last sample and exits
        self.p.wait(10)
        self.reader.join(10)
        rows = [tuple(float(x) for x in line.split()) for line in self.lines if line.strip()]
        # probes = tx - kernel RSTs, per sample
        self.series = [(t, tx - rsts) for t, tx, _rx, rsts in rows]
        p0 = self.series[0][1]
        self.probes = int(self.series[-1][1] - p0)
        # The send phase: from 1 % to 99 % of the probes (robust to the counters' read skew).
        lo = next((t for t, p in self.series if p - p0 >= 0.01 * self.probes), None)
        hi = next((t for t, p in self.series if p - p0 >= 0.99 * self.probes), None)
        self.rate = 0.98 * self.probes / (hi - lo) if self.probes > 100 and hi and hi > lo else 0.0
        return False


HEALTH = ["ListenOverflows", "ListenDrops", "TCPReqQFullDrop", "TCPReqQFullDoCookies", "SyncookiesSent",
          "TCPBacklogDrop"]


def health():
    """Counters that show a dropped SYN or answer: the target's TCP ones and both veth ends'."""
    text = in_ns(TGT, "cat", "/proc/net/netstat", capture=True).stdout.splitlines()
    vals = {}
    for head, body in zip(text[::2], text[1::2]):
        vals.update(zip(head.split()[1:], body.split()[1:]))
    c = {k: int(vals.get(k, 0)) for k in HEALTH}
    for ns, side in ((SCAN, "scan"), (TGT, "anyip")):
        for k in ("rx_dropped", "tx_dropped"):
            c[f"{side} eth0 {k}"] = int(in_ns(ns, "cat", f"/sys/class/net/eth0/statistics/{k}", capture=True).stdout)
    return c


def timed(cmd, timeout=TIMEOUT):
    """Run cmd in the scanner's namespace; wall time, peak RSS (MB), probes sent, send-phase rate."""
    with Sampler() as s:
        m = run_in_ns(SCAN, cmd, timeout, stdout=False)
    r = {"wall": m["wall"], "rss": m["rss"], "probes": s.probes, "rate": s.rate}
    if m["timed_out"]:
        r["failed"] = f"killed after {timeout} s"
    elif m["code"] != 0:
        r["failed"] = f"exit {m['code']}: {m['err'].strip()[-300:]}"
    return r


def count_rustmap(path):
    with open(path) as f:
        xml = f.read()
    return len(re.findall(r'<port protocol="tcp" portid="80"><state state="open"', xml))


def count_lines(path, pattern):
    addrs = set()
    with open(path) as f:
        for line in f:
            m = re.search(pattern, line)
            if m:
                addrs.add(m.group(1))
    return len(addrs)


def runs_of(n, label, cmd_for, count, timeout=TIMEOUT):
    """n runs of one scanner, each bounded by timeout; what it found is counted even when it
    failed. Returns per-run dicts."""
    results = []
    for i in range(n):
        with tempfile.TemporaryDirectory(prefix=f"{PREFIX}-") as d:
            os.chmod(d, 0o755)
            out = os.path.join(d, "out")
            r = timed(cmd_for(out), timeout)
            r["found"] = count(out) if os.path.exists(out) else 0
        bad = f" FAILED ({r['failed']})" if "failed" in r else ""
        print(f"  {label} run {i + 1}: {r['wall']:.2f} s, {r['rss']:.1f} MB, found {r['found']}, "
              f"{r['probes']} probes, {r['rate'] / 1e3:.0f} kpps while sending{bad}", flush=True)
        results.append(r)
    return results


def summary(results):
    """Medians of the runs; a failed run (timeout, non-zero exit) makes the row a failure."""
    med = lambda k: statistics.median(r[k] for r in results)
    fails = sorted({r["failed"] for r in results if "failed" in r})
    return {"wall": med("wall"), "rss": max(r["rss"] for r in results), "found": min(r["found"] for r in results),
            "probes": med("probes"), "rate": med("rate"), "pps": med("probes") / med("wall"),
            "runs": len(results), "failed": "; ".join(fails)}


def rustmap_cmd(extra):
    return lambda out: [RUSTMAP, "-sS", "-Pn", "-n", *extra, BLOCK, "--no-progress", "-oX", out]


def zmap_cmd(rate, blacklist):
    return lambda out: ["zmap", "-p", "80", BLOCK, "-r", str(rate), "-i", "eth0", "-S", SCAN_IP, "-G", TGT_MAC,
                        "-b", blacklist, "-c", "1", "-q", "-o", out]


def masscan_cmd(rate):
    return lambda out: ["masscan", "-p80", BLOCK, "--rate", str(rate), "--wait", "1", "-e", "eth0",
                        "--adapter-ip", SCAN_IP, "--router-mac", TGT_MAC, "-oL", out]


def perf_profile(seconds):
    """perf record (all CPUs) for a few seconds of a /16 × top-100 RustMap scan: CPU share per
    thread, then the engine thread's hottest symbols, children included (kernel time under a
    syscall counts for the syscall)."""
    perf = shutil.which("perf")
    if not perf:
        print("perf not installed (apt-get install linux-perf): no profile")
        return
    with tempfile.TemporaryDirectory(prefix=f"{PREFIX}-perf-") as d:
        os.chmod(d, 0o755)
        data = os.path.join(d, "perf.data")
        p = subprocess.Popen(["ip", "netns", "exec", SCAN] + rustmap_cmd(["--top-ports", "100"])(os.path.join(d, "o.xml")),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            time.sleep(2)
            sh(perf, "record", "-q", "-a", "-g", "-F", "4000", "-o", data, "--", "sleep", str(seconds),
               check=False, capture=True)
        finally:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        rep = lambda *a: [ln for ln in sh(perf, "report", "-i", data, "--stdio", "-g", "none", *a, check=False,
                                          capture=True).stdout.splitlines() if ln.strip() and not ln.startswith("#")]
        print(f"\nperf, {seconds} s of `rustmap --top-ports 100` (share of all samples, both CPUs):")
        print("\n".join(rep("--no-children", "--sort", "cpu,comm")[:8]))
        print("\nthe engine thread (tokio-rt-worker), children included:")
        print("\n".join(rep("--comm", "tokio-rt-worker", "--children", "--sort", "sym")[:45]))


def row(name, s, ours=None):
    ratio = f"{ours['wall'] / s['wall']:.2f}x" if ours and not s["failed"] else ""  # RustMap / peer, as bench.py
    wall = f"{s['wall']:.2f} s" + (f" (**{s['failed']}**)" if s["failed"] else "")
    print(f"| {name} | {s['runs']} | {wall} | {s['rss']:.1f} MB | {s['found']} | {s['probes']:.0f} | "
          f"{s['rate'] / 1e3:.0f} kpps | {s['pps'] / 1e3:.0f} kpps | {ratio} |", flush=True)


def empty_blacklist():
    """An empty zmap blacklist file (zmap's default one excludes 198.18.0.0/15, the benchmark
    range), removed at exit."""
    f = tempfile.NamedTemporaryFile("w", prefix=f"{PREFIX}-", suffix=".conf", delete=False)
    f.write("# empty: zmap's default blacklist excludes 198.18.0.0/15, the benchmark range\n")
    f.close()
    os.chmod(f.name, 0o644)
    atexit.register(os.unlink, f.name)
    return f.name


def run(runs, top100=True, perf_seconds=0):
    up()
    blacklist = empty_blacklist()
    before = health()
    rm_ok = lambda p: count_rustmap(p)
    zm_ok = lambda p: count_lines(p, r"^(\d+\.\d+\.\d+\.\d+)$")
    ms_ok = lambda p: count_lines(p, r"^open tcp 80 (\S+)")
    print(f"\n{BLOCK} from {SCAN} to {TGT} over one veth; median of {runs} runs; peak RSS is the largest\n", flush=True)
    ours = summary(runs_of(runs, "rustmap", rustmap_cmd(["-p", "80"]), rm_ok))
    rate = int(ours["rate"]) if ours["rate"] else 100000
    table = [("`rustmap -sS -Pn -n -p 80`", ours, None)]
    if shutil.which("zmap"):
        for r, label in ((rate, "RustMap's rate"), (10_000_000, "its max")):
            table.append((f"`zmap -p 80 -r {r} -c 1` ({label})",
                          summary(runs_of(runs, f"zmap -r {r}", zmap_cmd(r, blacklist), zm_ok)), ours))
    else:
        print("zmap not installed (apt-get install zmap): skipped")
    if shutil.which("masscan"):
        # masscan 1.3.2 does not exit here after its --wait (it counts the wait down into negative
        # numbers): one run per rate, killed after 30 s, and what it wrote by then is counted.
        for r, label in ((rate, "RustMap's rate"), (10_000_000, "its max")):
            table.append((f"`masscan -p80 --rate {r} --wait 1` ({label})",
                          summary(runs_of(1, f"masscan --rate {r}", masscan_cmd(r), ms_ok, timeout=30)), ours))
    if top100:
        n = max(1, min(runs, 3))
        table.append(("`rustmap -sS -Pn -n --top-ports 100`",
                      summary(runs_of(n, "rustmap top-100", rustmap_cmd(["--top-ports", "100"]), rm_ok)), None))
    print("\n| scenario | runs | wall | peak RSS | hosts with 80 open | probes | send rate | probes / wall | RustMap / peer |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, s, ref in table:
        row(name, s, ref)
    print(f"\n(100 % is {HOSTS} hosts; send rate: probes between 1 % and 99 % of the total, over that span)", flush=True)
    after = health()
    print("target and link counters over the whole benchmark (non-zero means a SYN or an answer was dropped "
          "or the SYN queue overflowed):")
    print("  " + ", ".join(f"{k} {after[k] - before[k]}" for k in after), flush=True)
    if perf_seconds:
        perf_profile(perf_seconds)


def run_formats(runs):
    """Every output format at once on the /16 sweep, against XML alone: the cost of writing them
    (bar: at most 10 % more wall time, peak RSS at most 200 MB)."""
    up()
    rm_ok = lambda p: count_rustmap(p)
    all_ok = lambda p: count_rustmap(p + ".xml")
    base = ["-p", "80"]
    every = lambda out: [RUSTMAP, "-sS", "-Pn", "-n", "-p", "80", BLOCK, "--no-progress", "-oA", out,
                         "--oCEF", out + ".cef", "--oLEEF", out + ".leef", "--oH", out + ".html",
                         "--oJ-lines", out]
    print(f"\n{BLOCK}: -oX alone against every format at once (-oA: normal, XML, JSON, grepable, YAML, CSV; "
          f"CEF, LEEF, HTML, JSON lines); median of {runs} runs, interleaved\n", flush=True)
    xml_only, all_formats = [], []
    for _ in range(runs):
        xml_only += runs_of(1, "rustmap -oX", rustmap_cmd(base), rm_ok)
        all_formats += runs_of(1, "rustmap all formats", every, all_ok)
    a, b = summary(xml_only), summary(all_formats)
    print("\n| outputs | runs | wall | peak RSS | hosts with 80 open | all / XML alone |")
    print("|---|---|---|---|---|---|")
    print(f"| `-oX` | {a['runs']} | {a['wall']:.2f} s | {a['rss']:.1f} MB | {a['found']} | |")
    print(f"| every format | {b['runs']} | {b['wall']:.2f} s | {b['rss']:.1f} MB | {b['found']} | "
          f"{b['wall'] / a['wall']:.2f}x |", flush=True)


def drop_at_ingress():
    """Make the target a sink: an nftables netdev chain drops every frame at the ingress of its
    eth0, before any protocol sees it, so no answer and no stack work comes back to the sender's
    core. (tc's matchall classifier and gact action are not in this kernel; nft's netdev hook is.)"""
    if not shutil.which("nft"):
        sys.exit("anyip.py --send-rate: needs nft (apt-get install nftables)")
    in_ns(TGT, "nft", "add", "table", "netdev", "rmsink")
    in_ns(TGT, "nft", "add", "chain", "netdev", "rmsink", "in",
          '{ type filter hook ingress device "eth0" priority 0; policy drop; }')


SINK_BLOCK, SINK_PORTS = "198.19.0.0/22", "1-1000"  # 1,024 hosts x 1,000 ports: 1,024,000 probes


def run_send_rate(runs):
    """Pure sending rate into a veth whose far end drops everything: RustMap (Ethernet frames by
    sendmmsg, and --send-ip), zmap and masscan at their maximum, ~1 M probes each."""
    up()
    drop_at_ingress()
    blacklist = empty_blacklist()
    none = lambda p: 0
    # Nothing answers, so the congestion window learns nothing: --min-rate keeps the engine
    # sending at full speed, --max-retries 0 sends each probe once.
    blast = ["-p", SINK_PORTS, "--max-retries", "0", "--min-rate", "10000000", "--max-parallelism", "2000000",
             "--min-hostgroup", "1024"]
    rm = lambda extra: lambda out: [RUSTMAP, "-sS", "-Pn", "-n", *extra, SINK_BLOCK, "--no-progress", "-oX", out]
    print(f"\nsend rate into a sink ({TGT} drops every frame at eth0 ingress); median of {runs} runs\n", flush=True)
    table = [("`rustmap -sS -Pn -n -p 1-1000 198.19.0.0/22 --min-rate 10000000 ...` (frames)",
              summary(runs_of(runs, "rustmap frames", rm(blast), none)))]
    table.append(("same with `--send-ip` (raw IP socket)",
                  summary(runs_of(runs, "rustmap --send-ip", rm(["--send-ip", *blast]), none))))
    if shutil.which("zmap"):
        z = lambda out: ["zmap", "-p", "80", BLOCK, "-P", "16", "-r", "10000000", "-i", "eth0", "-S", SCAN_IP,
                         "-G", TGT_MAC, "-b", blacklist, "-c", "0", "-q", "-o", out]
        table.append(("`zmap -p 80 198.19.0.0/16 -P 16 -r 10000000 -c 0`", summary(runs_of(runs, "zmap", z, none))))
    if shutil.which("masscan"):
        m = lambda out: ["masscan", "-p1-16", BLOCK, "--rate", "10000000", "--wait", "0", "-e", "eth0",
                         "--adapter-ip", SCAN_IP, "--router-mac", TGT_MAC, "-oL", out]
        table.append(("`masscan -p1-16 198.19.0.0/16 --rate 10000000` (killed at 30 s, see above)",
                      summary(runs_of(1, "masscan", m, none, timeout=30))))
    print("\n| scenario | runs | wall | probes | send rate |")
    print("|---|---|---|---|---|")
    for name, s in table:
        wall = f"{s['wall']:.2f} s" + (f" ({s['failed']})" if s["failed"] else "")
        print(f"| {name} | {s['runs']} | {wall} | {s['probes']:.0f} | {s['rate'] / 1e3:.0f} kpps |", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--skip-top100", action="store_true")
    ap.add_argument("--perf", type=int, default=0, metavar="SECONDS", help="profile RustMap with perf record")
    ap.add_argument("--keep", action="store_true", help="leave the namespaces up (for debugging) and exit")
    ap.add_argument("--formats", action="store_true",
                    help="instead: every output format at once against -oX alone (the cost of writing them)")
    ap.add_argument("--send-rate", action="store_true",
                    help="instead: the pure send rate into a target that drops everything at ingress")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("anyip.py: run as root (network namespaces, raw sockets)")
    if a.keep:
        up()
        atexit.unregister(down)
        print(f"up: ip netns exec {SCAN} ...; tear down with: ip netns del {SCAN}; ip netns del {TGT}")
        return
    if a.formats:
        run_formats(a.runs)
    elif a.send_rate:
        run_send_rate(a.runs)
    else:
        run(a.runs, top100=not a.skip_top100, perf_seconds=a.perf)


if __name__ == "__main__":
    main()
