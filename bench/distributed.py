#!/usr/bin/env python3
"""Distributed scanning on the AnyIP /16: `-sS -Pn -n -p 80 198.19.0.0/16` split into shards
by `rustmap --distribute`, scanned by 1, 2 and 3 agents, each capped at the same packet rate
(`--agent ... --max-rate R`), through a real nats-server with JetStream.

It prints the wall time of each run, the hosts found with port 80 open (65,536 is all of them),
whether any host came twice, and the speed-up from 1 to 2 and 3 agents. A last run has three
agents and kills one (SIGKILL) in the middle of a shard: every host must still be found, once.

The namespaces are anyip.py's (prefix ANYIP_PREFIX, default rmdist here): the scanner's
namespace has no route out and the /16 is local to the target namespace. nats-server, the
agents and the scheduler all run in the scanner's namespace (NATS on its loopback). Every
process is bounded in time and killed on exit.

Usage (as root, from the repository root, after `cargo build --release`):
    python3 bench/distributed.py [--rate 2000] [--runs 1] [--ack-wait 5s]
"""
import argparse, os, re, shutil, signal, subprocess, sys, tempfile, time

os.environ.setdefault("ANYIP_PREFIX", "rmdist")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import anyip  # noqa: E402
from anyip import BLOCK, HOSTS, RUSTMAP, SCAN  # noqa: E402

NATS_PORT = 14333
URL = f"nats://127.0.0.1:{NATS_PORT}"
LIMIT = 600  # seconds, any one run

procs = []


def spawn(cmd, log):
    p = subprocess.Popen(["ip", "netns", "exec", SCAN, *cmd], stdout=subprocess.DEVNULL,
                         stderr=open(log, "w"), stdin=subprocess.DEVNULL, start_new_session=True)
    procs.append(p)
    return p


def stop(p, sig=signal.SIGKILL):
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def cleanup():
    for p in procs:
        stop(p)


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def until(seconds, what, cond):
    end = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > end:
            sys.exit(f"distributed.py: timed out waiting for {what}")
        time.sleep(0.05)


def count(path):
    """Hosts with 80 open, and addresses that came more than once."""
    xml = read(path)
    addrs = re.findall(r'<address addr="([0-9.]+)" addrtype="ipv4"/>', xml)
    found = len(re.findall(r'<port protocol="tcp" portid="80"><state state="open"', xml))
    return found, len(addrs) - len(set(addrs))


def cluster(d, n, rate, ack_wait, tag):
    """nats-server (fresh store) and n agents; returns (server, agents, logs)."""
    server = spawn(["nats-server", "-js", "-a", "127.0.0.1", "-p", str(NATS_PORT), "-sd", os.path.join(d, f"js-{tag}")],
                   os.path.join(d, f"nats-{tag}.log"))
    until(10, "nats-server", lambda: subprocess.run(
        ["ip", "netns", "exec", SCAN, "bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{NATS_PORT}"],
        stderr=subprocess.DEVNULL).returncode == 0)
    agents, logs = [], []
    for i in range(n):
        log = os.path.join(d, f"agent-{tag}-{i}.log")
        agents.append(spawn([RUSTMAP, "--agent", "--nats", URL, "--agent-name", f"{tag}-{i}", "--max-rate", str(rate),
                             "--shard-ack-wait", ack_wait], log))
        logs.append(log)
    for log in logs:
        until(20, "the agents", lambda log=log: "ready on" in read(log))
    return server, agents, logs


def scheduler(d, tag):
    out = os.path.join(d, f"out-{tag}.xml")
    log = os.path.join(d, f"scheduler-{tag}.log")
    cmd = [RUSTMAP, "--distribute", "--nats", URL, "-sS", "-Pn", "-n", "-p", "80", BLOCK, "--no-db",
           "--no-progress", "-oX", out]
    return spawn(cmd, log), out, log


def finish(p, log, t0):
    end = time.monotonic() + LIMIT
    while p.poll() is None:
        if time.monotonic() > end:
            stop(p)
            sys.exit(f"distributed.py: the scheduler ran longer than {LIMIT} s")
        time.sleep(0.02)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"distributed.py: the scheduler failed: {read(log)[-2000:]}")
    return wall


def run_agents(d, n, rate, ack_wait):
    server, agents, _ = cluster(d, n, rate, ack_wait, f"n{n}")
    t0 = time.monotonic()
    p, out, log = scheduler(d, f"n{n}")
    wall = finish(p, log, t0)
    found, dups = count(out)
    for a in agents:
        stop(a, signal.SIGTERM)
    stop(server, signal.SIGTERM)
    return wall, found, dups


def run_kill(d, rate, ack_wait):
    server, agents, logs = cluster(d, 3, rate, ack_wait, "kill")
    t0 = time.monotonic()
    p, out, log = scheduler(d, "kill")

    def mid_shard():
        text = read(logs[0])
        started, done = text.count(" started "), text.count(" done: ")
        return started >= 3 and started > done
    until(LIMIT, "agent 0 to be in its third shard", mid_shard)
    stop(agents[0])
    killed = [line for line in read(logs[0]).splitlines() if " started " in line][-1].split()[2]
    wall = finish(p, log, t0)
    found, dups = count(out)
    redelivered = any(f"shard {killed} started (delivery 2)" in read(l) for l in logs[1:])
    for a in agents[1:]:
        stop(a, signal.SIGTERM)
    stop(server, signal.SIGTERM)
    return wall, found, dups, killed, redelivered


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=2000, help="each agent's --max-rate (packets per second)")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--ack-wait", default="5s")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("distributed.py: run as root (namespaces, raw sockets)")
    if not shutil.which("nats-server") and not os.path.exists("/usr/sbin/nats-server"):
        sys.exit("distributed.py: nats-server is missing: apt-get install nats-server")
    anyip.up()
    import atexit
    atexit.register(cleanup)
    with tempfile.TemporaryDirectory(prefix="rmdist-") as d:
        os.chmod(d, 0o755)
        print(f"# -sS -Pn -n -p 80 {BLOCK} on AnyIP, each agent --max-rate {args.rate}, {URL}", flush=True)
        walls = {}
        for n in (1, 2, 3):
            for r in range(args.runs):
                wall, found, dups = run_agents(d, n, args.rate, args.ack_wait)
                print(f"  {n} agent(s) run {r + 1}: {wall:.2f} s, found {found}/{HOSTS}, duplicates {dups}", flush=True)
                if found != HOSTS or dups:
                    sys.exit("distributed.py: hosts missing or duplicated")
                walls.setdefault(n, []).append(wall)
        # The same sweep on one machine, at the same cap, for the cost of the cluster itself.
        local = os.path.join(d, "local.xml")
        t0 = time.monotonic()
        p = spawn([RUSTMAP, "-sS", "-Pn", "-n", "-p", "80", BLOCK, "--max-rate", str(args.rate), "--no-db",
                   "--no-progress", "-oX", local], os.path.join(d, "local.log"))
        wall = finish(p, os.path.join(d, "local.log"), t0)
        print(f"  single machine, --max-rate {args.rate}: {wall:.2f} s, found {count(local)[0]}/{HOSTS}", flush=True)
        best = {n: sorted(w)[len(w) // 2] for n, w in walls.items()}
        print(f"speed-up 1 -> 2 agents: {best[1] / best[2]:.2f}x; 1 -> 3 agents: {best[1] / best[3]:.2f}x "
              f"(bar: >= 2.5x)")
        wall, found, dups, killed, redelivered = run_kill(d, args.rate, args.ack_wait)
        print(f"3 agents, one killed mid-shard ({killed}): {wall:.2f} s, found {found}/{HOSTS}, duplicates {dups}, "
              f"redelivered: {redelivered}")
        if found != HOSTS or dups or not redelivered:
            sys.exit("distributed.py: the kill run lost or duplicated hosts")
    anyip.down()


if __name__ == "__main__":
    main()
