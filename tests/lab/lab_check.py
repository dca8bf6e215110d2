#!/usr/bin/env python3
"""Check the running RustMap lab against tests/lab/ground-truth.json.

  lab_check.py listeners   (root namespace) every lab namespace's listening TCP/UDP
                           sockets, from `ss`, must equal the ground truth exactly
                           (sockets bound only to loopback are ignored: nothing in the
                           lab can reach them).
  lab_check.py probe       (run inside the scanner namespace) connect to every open TCP
                           port over IPv4 (and IPv6 where the host says so), check one
                           closed port, h11's reject/drop rules, DNS and routes.

Prefix from LAB_PREFIX (default rmlab). Exit status 0 when everything matches.
Only lab addresses from the ground-truth file are ever contacted.
"""

import errno
import ipaddress
import json
import os
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PREFIX = os.environ.get("LAB_PREFIX", "rmlab")
LAB_NETS = [ipaddress.ip_network(n) for n in ("198.18.0.0/15", "fd00::/8")]


def load_truth():
    with open(os.path.join(HERE, "ground-truth.json")) as f:
        return json.load(f)


def ss(ns, flags):
    out = subprocess.run(
        ["ip", "netns", "exec", f"{PREFIX}-{ns}", "ss", "-H", flags],
        check=True, capture_output=True, text=True, timeout=10,
    ).stdout
    socks = []
    for line in out.splitlines():
        cols = line.split()
        if len(cols) < 4:
            continue
        local = cols[3]  # State Recv-Q Send-Q Local:Port Peer:Port
        addr, _, port = local.rpartition(":")
        addr = addr.split("%", 1)[0].strip("[]")
        socks.append((addr, int(port)))
    return socks


def families(addr, host):
    """Which address families of `host` a socket bound to `addr` can receive on."""
    if addr == "*":  # IPv6 wildcard without IPV6_V6ONLY: both families
        return {4, 6}
    if addr in ("0.0.0.0", host.get("ipv4")):
        return {4}
    if addr in ("::", host.get("ipv6")):
        return {6}
    if addr in host.get("other_addresses", []):
        return {6} if ":" in addr else {4}
    return set()


def is_loopback(addr):
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


def check_listeners(truth):
    errors = []
    hosts = {h["ns"]: h for h in truth["hosts"]}
    # namespaces without hosts entries must listen on nothing reachable
    for ns in ("scan", "sw"):
        hosts.setdefault(ns, {"name": ns, "tcp": {"open": []}, "udp": {"open": []}})
    for ns, host in hosts.items():
        for proto, flags in (("tcp", "-ltn"), ("udp", "-lun")):
            want = {p["port"] for p in host[proto]["open"]}
            seen = {}
            loop = set()
            for addr, port in ss(ns, flags):
                if is_loopback(addr):
                    loop.add(port)
                    continue
                fams = families(addr, host)
                if not fams:
                    errors.append(f"{ns}: {proto} {addr}:{port} bound to an address that is not the host's")
                seen.setdefault(port, set()).update(fams)
            extra = sorted(set(seen) - want)
            missing = sorted(want - set(seen))
            if extra:
                errors.append(f"{ns}: unexpected {proto} listeners {extra} (add them to ground-truth.json or stop them)")
            if missing:
                errors.append(f"{ns}: {proto} ports {missing} from ground-truth.json are not listening")
            need = {4, 6} if host.get("ipv6_same_ports") else {4}
            for port in sorted(want & set(seen)):
                lacking = need - seen[port]
                if lacking:
                    errors.append(f"{ns}: {proto}/{port} not listening on IPv{'/IPv'.join(map(str, sorted(lacking)))}")
            status = "ok" if not (extra or missing) else "MISMATCH"
            print(f"  {ns:5} {proto}: {sorted(seen) or '-'}"
                  + (f" (loopback-only, ignored: {sorted(loop)})" if loop else "") + f"  {status}")
    return errors


def in_lab(addr):
    ip = ipaddress.ip_address(addr)
    return any(ip in n for n in LAB_NETS)


def connect(addr, port, timeout):
    """Return 'open', 'refused', 'unreachable', 'timeout' or an errno name."""
    assert in_lab(addr), addr  # never touch anything outside the lab
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((addr, port))
        return "open"
    except socket.timeout:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    except OSError as e:
        # ICMP unreachable / admin-prohibited (IPv4: EHOSTUNREACH; ICMPv6 code 1: EACCES)
        if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES):
            return "unreachable"
        return errno.errorcode.get(e.errno, str(e))
    finally:
        s.close()


def check_probe(truth):
    errors = []

    verbose = os.environ.get("LAB_VERBOSE") == "1"
    count = [0]

    def expect(what, got, want):
        ok = got == want
        count[0] += 1
        if verbose or not ok:
            print(f"  {what:44} {got:14} {'ok' if ok else 'EXPECTED ' + want}")
        if not ok:
            errors.append(f"{what}: got {got}, expected {want}")

    for host in truth["hosts"]:
        addrs = [host["ipv4"]] + ([host["ipv6"]] if host.get("ipv6_same_ports") else [])
        for addr in addrs:
            tag = f"[{addr}]" if ":" in addr else addr
            for p in host["tcp"]["open"]:
                expect(f"{host['name']} {tag}:{p['port']}", connect(addr, p["port"], 3.0), "open")
            closed_probe = 1  # tcpmux: never used in the lab
            if host["tcp"]["default"] == "closed":
                expect(f"{host['name']} {tag}:{closed_probe} (closed)", connect(addr, closed_probe, 3.0), "refused")
            else:
                expect(f"{host['name']} {tag}:{closed_probe} (dropped)", connect(addr, closed_probe, 1.0), "timeout")
            for r in host["tcp"]["rejected"]:
                want = "refused" if r["reject_with"] == "tcp-reset" else "unreachable"
                expect(f"{host['name']} {tag}:{r['port']} ({r['reject_with']})", connect(addr, r["port"], 3.0), want)

    # DNS inside the lab: the scanner namespace's resolv.conf points at h10's dnsmasq.
    for name, addrs in truth["dns"]["records"].items():
        try:
            got = socket.gethostbyaddr(addrs[0])[0]
        except OSError as e:
            got = f"error:{e}"
        expect(f"PTR {addrs[0]}", got, name)
    try:
        got = sorted({ai[4][0] for ai in socket.getaddrinfo("h20.lab.test", None, proto=socket.IPPROTO_TCP)})
    except OSError as e:
        got = [f"error:{e}"]
    expect("A/AAAA h20.lab.test", ",".join(got), ",".join(sorted(truth["dns"]["records"]["h20.lab.test"])))

    # No way out: the scanner namespace must have no default route.
    for fam in ("-4", "-6"):
        out = subprocess.run(["ip", fam, "route", "show", "default"], capture_output=True, text=True, timeout=5).stdout
        expect(f"default route ({fam})", out.strip() or "none", "none")
    print(f"  {count[0]} checks (TCP connects over IPv4 and IPv6, h11 firewall, DNS, routes)"
          + ("" if verbose else "; LAB_VERBOSE=1 lists them"))
    return errors


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("listeners", "probe"):
        print(__doc__, file=sys.stderr)
        return 2
    truth = load_truth()
    errors = check_listeners(truth) if sys.argv[1] == "listeners" else check_probe(truth)
    if errors:
        print(f"lab_check {sys.argv[1]}: {len(errors)} mismatch(es) against ground-truth.json:", file=sys.stderr)
        for e in errors:
            print(f"  - {e}", file=sys.stderr)
        return 1
    print(f"lab_check {sys.argv[1]}: matches ground-truth.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
