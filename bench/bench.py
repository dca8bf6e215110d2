#!/usr/bin/env python3
"""RustMap side-by-side benchmarks in the namespace lab.

Runs RustMap and its peers (nmap; RustScan and masscan when installed and relevant) inside the
lab's scanner namespace on the same targets, N times each, and prints medians, ratios and peak RSS.
Ratios from one run of this script are the figures to compare: the machines are noisy.

Usage (as root, from the repository root):
    python3 bench/bench.py [--runs 5] [--only NAME ...] [--keep-lab]

NAME: connect, syn, sweep, input, udp, sctp, discovery, version (-sV), rate (--max-rate), scripts, os (-O) (in the lab), anyip (a /16 where every address answers, in
namespaces of its own: bench/anyip.py).

Safety: every command runs inside the lab's scanner namespace (no route out); targets are lab
addresses in 198.18.0.0/15 only. Every run is bounded by a timeout.
"""
import argparse, json, os, re, shutil, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import run_in_ns  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREFIX = os.environ.get("LAB_PREFIX", "rmlab")
NS = f"{PREFIX}-scan"
# RUSTMAP_BIN: benchmark another build (e.g. a copy of the binary before a change); no build then.
RUSTMAP = os.environ.get("RUSTMAP_BIN") or os.path.join(ROOT, "target", "release", "rustmap")
TIMEOUT = 600


def lab_up():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return any(line.split()[0] == NS for line in out.splitlines() if line.strip())


def timed(cmd, timeout=TIMEOUT):
    """Wall time, the scanner's own peak RSS (MB) and its stdout (see measure.py for why not wait4)."""
    m = run_in_ns(NS, cmd, timeout)
    if m["timed_out"]:
        raise TimeoutError(" ".join(cmd))
    return m["wall"], m["rss"], m["out"]


def open_ports_xml(xml):
    return sorted({int(m.group(1)) for m in re.finditer(r'portid="(\d+)"><state state="open"', xml)})


def ground_truth(host):
    g = json.load(open(os.path.join(ROOT, "tests", "lab", "ground-truth.json")))
    h = next(h for h in g["hosts"] if h["name"] == host)
    return sorted(p["port"] for p in h["tcp"]["open"])


def median_of(runs, cmd, check=None, timeout=TIMEOUT):
    times, rss = [], []
    for _ in range(runs):
        t, m, out = timed(cmd, timeout)
        if check:
            check(out)
        times.append(t)
        rss.append(m)
    return statistics.median(times), max(rss)


def row(name, ours, theirs, peer):
    (t1, m1), (t2, m2) = ours, theirs
    ratio = t1 / t2 if t2 else float("nan")
    print(f"| {name} | {t1:.2f} s | {m1:.1f} MB | {peer} | {t2:.2f} s | {m2:.1f} MB | {ratio:.2f}x |", flush=True)


def bench_connect_all_ports(runs):
    want = ground_truth("h10")

    def check(out):
        got = open_ports_xml(out)
        if got != want:
            raise SystemExit(f"WRONG open set: {got} != {want}")

    ours = median_of(runs, [RUSTMAP, "-n", "-sT", "-p-", "-T4", "-oX", "-", "198.18.0.10"], check)
    nmap = median_of(runs, ["nmap", "-n", "-sT", "-p-", "-T4", "-oX", "-", "198.18.0.10"], check)
    row("-sT -p- h10 (15 open)", ours, nmap, "nmap -sT -p- -T4")
    rs = shutil.which("rustscan")
    if rs:
        r = median_of(runs, [rs, "-a", "198.18.0.10", "-r", "1-65535", "-g"])
        row("-sT -p- h10 (15 open)", ours, r, "rustscan -g")


def bench_syn_all_ports(runs):
    """-sS -p- of the services host and of the firewalled host, against nmap (and masscan)."""
    want = ground_truth("h10")

    def check(out):
        got = open_ports_xml(out)
        if got != want:
            raise SystemExit(f"WRONG open set: {got} != {want}")

    ours = median_of(runs, [RUSTMAP, "-n", "-sS", "-p-", "-T4", "-oX", "-", "198.18.0.10"], check)
    nmap = median_of(runs, ["nmap", "-n", "-sS", "-p-", "-T4", "-oX", "-", "198.18.0.10"], check)
    row("-sS -p- h10 (15 open)", ours, nmap, "nmap -sS -p- -T4")

    fw_want = ground_truth("h11")

    def fw_check(out):
        got = open_ports_xml(out)
        if got != fw_want:
            raise SystemExit(f"WRONG open set on h11: {got} != {fw_want}")

    ours = median_of(runs, [RUSTMAP, "-n", "-sS", "-p-", "-T4", "-oX", "-", "198.18.0.11"], fw_check)
    # nmap needs ~90 s for this one: fewer runs keep the bench short; the ratio is what counts.
    nmap = median_of(max(1, runs // 5), ["nmap", "-n", "-sS", "-p-", "-T4", "-oX", "-", "198.18.0.11"], fw_check)
    row("-sS -p- h11 (firewalled, 2 open)", ours, nmap, "nmap -sS -p- -T4")
    ms = shutil.which("masscan")
    if ms:
        # masscan has no adaptive timing: its wait after the last packet is fixed (--wait).
        # The scanner namespace has no default route, so masscan is told its interface and the
        # next hop's MAC (h11's own: the lab's fixed MAC scheme).
        for rate in (100000, 20000):
            cmd = [ms, "-p1-65535", "--rate", str(rate), "--wait", "1", "-e", "eth0",
                   "--router-mac", "02:52:4d:00:00:0b", "-oX", "-", "198.18.0.11"]
            try:
                m = median_of(runs, cmd, fw_check, timeout=60)
            except (SystemExit, TimeoutError) as e:
                print(f"| masscan --rate {rate}: incomplete result ({e}) |", flush=True)
                continue
            row("-sS -p- h11 (firewalled, 2 open)", ours, m, f"masscan --rate {rate} --wait 1")
            break


def udp_states_xml(xml):
    return {int(m.group(1)): m.group(2) for m in re.finditer(r'protocol="udp" portid="(\d+)"><state state="([^"]+)"', xml)}


def bench_udp(runs):
    """UDP: the unlimited closed host (speed) and the services host, whose kernel rations ICMP
    port-unreachable to about one a second (accuracy: how many ports each scanner decides right)."""
    def all_closed(out):
        if "open" in " ".join(udp_states_xml(out).values()):
            raise SystemExit("WRONG: an open UDP port on h13")

    ours = median_of(runs, [RUSTMAP, "-n", "-sU", "-F", "-T4", "-oX", "-", "198.18.0.13"], all_closed)
    nmap = median_of(runs, ["nmap", "-n", "-sU", "-F", "-T4", "-oX", "-", "198.18.0.13"], all_closed)
    row("-sU -F h13 (all closed, no ICMP limit)", ours, nmap, "nmap -sU -F -T4")

    g = json.load(open(os.path.join(ROOT, "tests", "lab", "ground-truth.json")))
    h10 = next(h for h in g["hosts"] if h["name"] == "h10")
    want_open = {p["port"] for p in h10["udp"]["open"]}
    ports = [7, 9, 13, 53, 69, 111, 123, 137, 161, 1900, 5060, 11211, 40000, 5353, 500, 514, 520, 1434, 4500, 49152]
    arg = ",".join(map(str, ports))
    for name, cmd in (("RustMap", [RUSTMAP, "-n", "-sU", "-T4", "-p", arg, "-oX", "-", "198.18.0.10"]),
                      ("nmap", ["nmap", "-n", "-sU", "-T4", "-p", arg, "-oX", "-", "198.18.0.10"])):
        t, m, out = timed(cmd)
        st = udp_states_xml(out)
        right = sum(1 for p in ports if st.get(p, "closed") == ("open" if p in want_open else "closed"))
        print(f"| -sU -T4 {len(ports)} ports of h10 (ICMP-limited) | {name} | {t:.2f} s | {m:.1f} MB | {right}/{len(ports)} ports right |", flush=True)


def bench_sctp(runs):
    """SCTP INIT scan of every port of the lab's SCTP responder host."""
    def check(out):
        got = sorted(int(m.group(1)) for m in re.finditer(r'protocol="sctp" portid="(\d+)"><state state="open"', out))
        if got != [2905, 3868]:
            raise SystemExit(f"WRONG open SCTP set: {got}")

    ours = median_of(runs, [RUSTMAP, "-n", "-sY", "-p-", "-T4", "-oX", "-", "198.18.0.10"], check)
    nmap = median_of(runs, ["nmap", "-n", "-sY", "-p-", "-T4", "-oX", "-", "198.18.0.10"], check)
    row("-sY -p- h10 (SCTP responder, 2 open)", ours, nmap, "nmap -sY -p- -T4")


def bench_sweep(runs):
    for net in ["198.18.0.0/24", "198.18.0.0/22"]:
        ours = median_of(runs, [RUSTMAP, "-n", "-sT", "-p", "80", "-T4", "-oX", "-", net])
        nmap = median_of(runs, ["nmap", "-n", "-sT", "-p", "80", "-T4", "-oX", "-", net])
        row(f"-sT -p 80 {net}", ours, nmap, "nmap -sT -p 80 -T4")


def up_hosts_xml(xml):
    """Addresses of the hosts up in an nmap-format XML document (ping scans write `<host>`)."""
    up = set()
    for block in re.split(r"<host[ >]", xml)[1:]:
        st = re.search(r'<status state="(\w+)"', block)
        ad = re.search(r'<address addr="([^"]+)" addrtype="ipv[46]"', block)
        if st and ad and st.group(1) == "up":
            up.add(ad.group(1))
    return up


def bench_discovery(runs):
    """-sn of the switched /24 (ARP) and of the routed /16 with 50 live addresses (the lab's crowd)."""
    g = json.load(open(os.path.join(ROOT, "tests", "lab", "ground-truth.json")))
    lan = {h["ipv4"] for h in g["hosts"] if h["up"] and h["ipv4"].startswith("198.18.0.")} | {"198.18.0.2"}
    crowd = set(g["crowd"]["addresses"])

    def expect(want):
        def check(out):
            got = up_hosts_xml(out)
            if got != want:
                raise SystemExit(f"WRONG live set: missing {sorted(want - got)}, extra {sorted(got - want)}")
        return check

    ours = median_of(runs, [RUSTMAP, "-n", "-sn", "-oX", "-", "198.18.0.0/24"], expect(lan))
    nmap = median_of(runs, ["nmap", "-n", "-sn", "-oX", "-", "198.18.0.0/24"], expect(lan))
    row("-sn switched /24 (ARP, 6 live)", ours, nmap, "nmap -sn")
    # nmap needs minutes for the /16: one run each.
    ours = median_of(1, [RUSTMAP, "-n", "-sn", "-T4", "-oX", "-", "198.19.0.0/16"], expect(crowd), timeout=1800)
    nmap = median_of(1, ["nmap", "-n", "-sn", "-T4", "-oX", "-", "198.19.0.0/16"], expect(crowd), timeout=1800)
    row("-sn -T4 routed /16 (50 live)", ours, nmap, "nmap -sn -T4")


def bench_input_list():
    """-iL with 100k lab-range targets: time until the first host is reported."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("198.18.0.10\n")
        for i in range(100_000 - 1):
            # 198.18.3.0 upward: inside the lab range, no route in the scanner namespace.
            a = 3 * 256 + i
            f.write(f"198.{18 + a // 65536}.{(a // 256) % 256}.{a % 256}\n")
        path = f.name
    os.chmod(path, 0o644)
    cmd = ["ip", "netns", "exec", NS, RUSTMAP, "-n", "-Pn", "-p", "22", "--max-hostgroup", "1", "-iL", path]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    first = None
    try:
        while True:
            line = p.stdout.readline()
            if not line:
                break
            if line.startswith("RustMap scan report for 198.18.0.10"):
                first = time.perf_counter() - t0
                break
            if time.perf_counter() - t0 > 30:
                break
    finally:
        p.kill()
        p.wait()
        os.unlink(path)
    print(f"| -iL 100k targets: first host reported after | {first:.3f} s |" if first else "| -iL 100k: no report within 30 s |")


def services_xml(xml):
    """{(proto, port): (name, product, version, tunnel)} from an -oX with -sV (ours or nmap's)."""
    out = {}
    for m in re.finditer(r'<port protocol="(\w+)" portid="(\d+)">(.*?)</port>', xml, re.S):
        svc = re.search(r'<service ([^>]*?)/?>', m.group(3))
        attrs = dict(re.findall(r'(\w+)="([^"]*)"', svc.group(1))) if svc else {}
        out[(m.group(1), int(m.group(2)))] = (attrs.get("name"), attrs.get("product"), attrs.get("version"),
                                              attrs.get("tunnel"))
    return out


def bench_version(runs):
    """-sV over every open TCP port of the lab's service hosts, against nmap -sV -T4; then the cost
    of a port that never answers usefully (h12's tarpit) with and without -sV."""
    g = json.load(open(os.path.join(ROOT, "tests", "lab", "ground-truth.json")))
    for h in g["hosts"]:
        opened = [p for p in h["tcp"]["open"] if p.get("daemon")]
        if h["name"] not in ("h10", "h14") or not opened:
            continue
        ports = ",".join(str(p["port"]) for p in opened)
        addr = h["ipv4"]
        ours = median_of(runs, [RUSTMAP, "-n", "-sT", "-sV", "-p", ports, "-oX", "-", addr])
        # nmap -sV takes minutes on some of these ports: fewer runs, the ratio is what counts.
        nmap_runs = max(1, runs // 5)
        nmap_t, nmap_m, nmap_out = timed(["nmap", "-n", "-sT", "-sV", "-T4", "-p", ports, "-oX", "-", addr])
        row(f"-sV {len(opened)} TCP services of {h['name']}", ours, (nmap_t, nmap_m), "nmap -sV -T4")
        _, _, our_out = timed([RUSTMAP, "-n", "-sT", "-sV", "-p", ports, "-oX", "-", addr])
        mine, theirs = services_xml(our_out), services_xml(nmap_out)
        # What -sV must name: the ground truth's sv_name (e.g. "http" through TLS) or its service.
        def want(p):
            return p.get("sv_name", p["service"])
        wrong = [(p["port"], (mine.get(("tcp", p["port"])) or (None,))[0], want(p)) for p in opened
                 if (mine.get(("tcp", p["port"])) or (None,))[0] != want(p)]
        names_right = len(opened) - len(wrong)
        announced = [p for p in opened if (theirs.get(("tcp", p["port"])) or (None, None))[1]]
        differ = [(p["port"], (mine.get(("tcp", p["port"])) or (None, None))[1], theirs[("tcp", p["port"])][1])
                  for p in announced
                  if (mine.get(("tcp", p["port"])) or (None, None))[1] != theirs[("tcp", p["port"])][1]]
        same_product = len(announced) - len(differ)
        # Product and version against what the lab knows the daemon announces (ground truth).
        known = [p for p in opened if p.get("product") or p.get("version")]
        gt_wrong = [(p["port"], mine.get(("tcp", p["port"]))) for p in known
                    if (p.get("product") and (mine.get(("tcp", p["port"])) or (None, None))[1] != p["product"])
                    or (p.get("version") and (mine.get(("tcp", p["port"])) or (None, None, None))[2] != p["version"])]
        if known:
            print(f"|   product+version ({h['name']}) | as the ground truth where it names them: "
                  f"{len(known) - len(gt_wrong)}/{len(known)} {gt_wrong or ''} |", flush=True)
        if wrong or differ:
            print(f"|   differences ({h['name']}) | names (port, ours, truth): {wrong} | products (port, ours, nmap's): {differ} |",
                  flush=True)
        print(f"|   accuracy ({h['name']}) | names as ground truth: {names_right}/{len(opened)} | "
              f"product as nmap's where nmap names one: {same_product}/{len(announced)} | (nmap runs: {nmap_runs}) |",
              flush=True)
    plain = median_of(runs, [RUSTMAP, "-n", "-sT", "-p", "2222", "-oX", "-", "198.18.0.12"])
    with_sv = median_of(runs, [RUSTMAP, "-n", "-sT", "-sV", "-p", "2222", "-oX", "-", "198.18.0.12"])
    print(f"| -sV cost of h12's tarpit port (one byte per 3 s) | {with_sv[0] - plain[0]:.2f} s added "
          f"({plain[0]:.2f} s -> {with_sv[0]:.2f} s) | bar: <= 3 s |", flush=True)
    nmap_t, nmap_m, _ = timed(["nmap", "-n", "-sT", "-sV", "-T4", "-p", "2222", "-oX", "-", "198.18.0.12"])
    print(f"| nmap -sV -T4 on the same port | {nmap_t:.2f} s | | |", flush=True)


def script_ids_xml(xml):
    """{(port, script id)} of every port script in an -oX (ours or nmap's)."""
    out = set()
    for m in re.finditer(r'<port protocol="\w+" portid="(\d+)">(.*?)</port>', xml, re.S):
        for sid in re.findall(r'<script id="([^"]+)"', m.group(2)):
            out.add((int(m.group(1)), sid))
    return out


def bench_scripts(runs):
    """-sV -sC over every open TCP port of the lab's services host (h10), against nmap -sV -sC -T4
    on the same ports; then what -sC adds to -sV alone, ours and nmap's."""
    g = json.load(open(os.path.join(ROOT, "tests", "lab", "ground-truth.json")))
    h = next(h for h in g["hosts"] if h["name"] == "h10")
    opened = [p for p in h["tcp"]["open"] if p.get("daemon")]
    ports = ",".join(str(p["port"]) for p in opened)
    addr = h["ipv4"]
    ours_sc = median_of(runs, [RUSTMAP, "-n", "-sT", "-sV", "-sC", "--no-db", "-p", ports, "-oX", "-", addr])
    ours_sv = median_of(runs, [RUSTMAP, "-n", "-sT", "-sV", "--no-db", "-p", ports, "-oX", "-", addr])
    nmap_runs = max(1, runs // 5)
    nmap_sc = median_of(nmap_runs, ["nmap", "-n", "-sT", "-sV", "-sC", "-T4", "-p", ports, "-oX", "-", addr])
    nmap_sv = median_of(nmap_runs, ["nmap", "-n", "-sT", "-sV", "-T4", "-p", ports, "-oX", "-", addr])
    row(f"-sV -sC {len(opened)} TCP services of h10", ours_sc, nmap_sc, "nmap -sV -sC -T4")
    print(f"|   -sC alone (-sV -sC minus -sV) | {ours_sc[0] - ours_sv[0]:.2f} s | | nmap | "
          f"{nmap_sc[0] - nmap_sv[0]:.2f} s | | {(ours_sc[0] - ours_sv[0]) / max(nmap_sc[0] - nmap_sv[0], 1e-9):.2f}x |",
          flush=True)
    _, _, our_out = timed([RUSTMAP, "-n", "-sT", "-sV", "-sC", "--no-db", "-p", ports, "-oX", "-", addr])
    _, _, nmap_out = timed(["nmap", "-n", "-sT", "-sV", "-sC", "-T4", "-p", ports, "-oX", "-", addr])
    mine, theirs = script_ids_xml(our_out), script_ids_xml(nmap_out)
    print(f"|   script results | ours: {len(mine)} | nmap's: {len(theirs)} | both ran: "
          f"{sorted(mine & theirs)} | (nmap runs: {nmap_runs}) |", flush=True)


def os_families_xml(xml):
    """{address: family of the best <osmatch>} from an -oX with -O (ours or nmap's)."""
    out = {}
    for m in re.finditer(r'<host\b.*?</host>', xml, re.S):
        addr = re.search(r'<address addr="([^"]+)" addrtype="ipv4"', m.group(0))
        fam = re.search(r'<osclass [^>]*osfamily="([^"]+)"', m.group(0))
        if addr:
            out[addr.group(1)] = fam.group(1) if fam else None
    return out


def bench_os(runs):
    """-O of the lab's Linux hosts with an open and a closed port (h10 one hop away, h20 behind two
    routers, h14), all three in one scan, against nmap -O -T4 on the same ports; every host must
    come out Linux in both. Then the two user-space stacks (h17, h18)."""
    hosts = ["198.18.0.10", "198.18.2.10", "198.18.0.14"]
    args = ["-n", "-Pn", "-sS", "-O", "-p", "22,389,1", "-oX", "-"]

    def family_check(addrs, family):
        def check(out):
            fams = os_families_xml(out)
            if any(fams.get(h) != family for h in addrs):
                raise SystemExit(f"WRONG OS families: {fams}")
        return check

    check = family_check(hosts, "Linux")
    ours = median_of(runs, [RUSTMAP, "--no-db"] + args + hosts, check)
    nmap = median_of(runs, ["nmap", "-T4"] + args + hosts, check)
    row("-O of 3 Linux hosts (1 and 3 hops)", ours, nmap, "nmap -O -T4")
    one = median_of(runs, [RUSTMAP, "--no-db"] + args + hosts[:1], check=None)
    nmap_one = median_of(runs, ["nmap", "-T4"] + args + hosts[:1], check=None)
    row("-O of h10 alone", one, nmap_one, "nmap -O -T4")
    # The user-space stacks (h17 smoltcp, h18 lwIP): ours must name both; nmap has no match for
    # either (its fingerprint is printed), so its family is not checked.
    embedded = ["198.18.0.17", "198.18.0.18"]
    eargs = ["-n", "-Pn", "-sS", "-O", "-p", "80,1", "-oX", "-"]

    ours_e = median_of(runs, [RUSTMAP, "--no-db"] + eargs + embedded, family_check(embedded, "embedded"))
    nmap_e = median_of(runs, ["nmap", "-T4"] + eargs + embedded, check=None)
    row("-O of h17 and h18 (smoltcp, lwIP)", ours_e, nmap_e, "nmap -O -T4")


def tx_packets(pid):
    """Frames sent from eth0 of the network namespace process `pid` is in (read from the root
    namespace through /proc, so sampling costs no process start)."""
    with open(f"/proc/{pid}/net/dev") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name.strip() == "eth0":
                return int(rest.split()[9])
    raise RuntimeError("no eth0")


def achieved_rate(cmd, timeout=120):
    """Run cmd in the scanner namespace and sample its eth0 tx counter every millisecond: probes on
    the wire, wall time, and the send rate between 1 % and 99 % of the probes (start-up and the
    final wait for answers excluded)."""
    t0 = time.perf_counter()
    # `ip netns exec` execs the command itself, so the pid is the scanner's once it has started.
    p = subprocess.Popen(["ip", "netns", "exec", NS] + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples = []
    base = None
    own_ns = os.readlink("/proc/self/ns/net")
    while p.poll() is None:
        try:
            # Until `ip` has entered the namespace, /proc/PID/net is ours: not sampled.
            entered = os.readlink(f"/proc/{p.pid}/ns/net") != own_ns
            n = tx_packets(p.pid) if entered else None
        except (OSError, RuntimeError):
            n = None
        if n is not None:
            if base is None:
                base = n
            samples.append((time.perf_counter(), n - base))
        if time.perf_counter() - t0 > timeout:
            p.kill()
            raise TimeoutError(" ".join(cmd))
        time.sleep(0.001)
    wall = time.perf_counter() - t0
    total = samples[-1][1] if samples else 0
    lo = next((t for t, n in samples if n >= total * 0.01), None)
    hi = next((t for t, n in samples if n >= total * 0.99), None)
    rate = (total * 0.98) / (hi - lo) if lo is not None and hi is not None and hi > lo else float("nan")
    return total, wall, rate


def bench_rate(runs):
    """--max-rate R: the send rate achieved (h10, all answered, so every probe is sent once)."""
    print("| `-sS -Pn -n --max-rate R` h10 | ports | probes on the wire | wall | achieved rate (1-99 %) | of R |")
    print("|---|---|---|---|---|---|")
    for r, ports in ((10, 50), (1000, 5000), (10000, 20000), (100000, 20000)):
        cmd = [RUSTMAP, "-sS", "-Pn", "-n", "-p", f"1-{ports}", "--max-rate", str(r), "198.18.0.10"]
        got = [achieved_rate(cmd) for _ in range(max(1, runs // 2) if r > 10 else 1)]
        total, wall, rate = sorted(got, key=lambda g: g[2])[len(got) // 2]
        print(f"| --max-rate {r} | {ports} | {total} | {wall:.2f} s | {rate:,.0f}/s | {rate / r:.2f} |", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", nargs="*", default=None, help="connect syn sweep input udp sctp discovery version rate scripts os anyip")
    ap.add_argument("--keep-lab", action="store_true")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench.py: run as root (the lab needs network namespaces)")
    if not os.environ.get("RUSTMAP_BIN"):
        subprocess.run(["cargo", "build", "--release", "--bin", "rustmap"], cwd=ROOT, check=True)
    lab_benches = {"connect": lambda: bench_connect_all_ports(a.runs), "syn": lambda: bench_syn_all_ports(a.runs),
                   "sweep": lambda: bench_sweep(a.runs), "input": bench_input_list,
                   "udp": lambda: bench_udp(a.runs), "sctp": lambda: bench_sctp(a.runs),
                   "discovery": lambda: bench_discovery(a.runs), "version": lambda: bench_version(a.runs),
                   "rate": lambda: bench_rate(a.runs), "scripts": lambda: bench_scripts(a.runs),
                   "os": lambda: bench_os(a.runs)}
    wanted = [n for n in lab_benches if a.only is None or n in a.only]
    started_lab = False
    if wanted and not lab_up():
        subprocess.run(["bash", os.path.join(ROOT, "tests", "lab", "lab.sh"), "up"], check=True)
        started_lab = True
    try:
        if wanted:
            print(f"\nmedian of {a.runs} runs; peak RSS is the largest of the runs\n")
            print("| scenario | RustMap | RSS | peer | peer time | peer RSS | ratio |")
            print("|---|---|---|---|---|---|---|")
            for name in wanted:
                lab_benches[name]()
    finally:
        if started_lab and not a.keep_lab:
            subprocess.run(["bash", os.path.join(ROOT, "tests", "lab", "lab.sh"), "down"])
    if a.only is None or "anyip" in a.only:
        # Its own two namespaces (bench/anyip.py), not the lab's.
        import anyip
        anyip.run(a.runs)


if __name__ == "__main__":
    main()
