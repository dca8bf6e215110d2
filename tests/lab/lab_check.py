#!/usr/bin/env python3
"""Check the running RustMap lab against tests/lab/ground-truth.json.

  lab_check.py listeners   (root namespace) every lab namespace's listening TCP/UDP
                           sockets, from `ss`, must equal the ground truth exactly
                           (sockets bound only to loopback are ignored: nothing in the
                           lab can reach them). A host whose IP stack runs in user space
                           ("user_space_stack": h17, smoltcp on a TAP device) has no kernel
                           sockets to compare: there the kernel must listen on nothing, and
                           its ports are checked by the probe.
                           SCTP has no listening sockets (no SCTP in the kernels): a host
                           with open SCTP ports must have raw sockets for IP protocol 132
                           (sctp_responder.py), IPv4 and IPv6; every other host must have
                           none (one would silence the kernel's ICMP protocol unreachable).
  lab_check.py probe       (run inside the scanner namespace) connect to every open TCP
                           port over IPv4 (and IPv6 where the host says so), check one
                           closed port, h11's reject/drop rules, DNS and routes; send one
                           SCTP INIT to every open SCTP port and to one other port of every
                           host and check the answer (INIT-ACK, ABORT, ICMP, nothing).

Prefix from LAB_PREFIX (default rmlab). Exit status 0 when everything matches.
Only lab addresses from the ground-truth file are ever contacted.
"""

import errno
import ipaddress
import json
import os
import select
import socket
import struct
import subprocess
import sys
import time

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
    if addr == host.get("broadcast"):  # nmbd listens for NetBIOS broadcasts on the LAN's broadcast address
        return {4}
    return set()


def raw_sctp_families(ns):
    """Address families that have a raw socket for IP protocol 132 in namespace ns."""
    fams = set()
    for fam, flag in ((4, "-w4"), (6, "-w6")):
        if any(port == 132 for _addr, port in ss(ns, "-l" + flag[1:] + "n")):
            fams.add(fam)
    return fams


def check_sctp_responders(truth):
    errors = []
    for host in truth["hosts"]:
        sctp = host.get("sctp")
        if sctp is None:
            continue
        want = set()
        if sctp["open"]:
            want = {4, 6} if host.get("ipv6_same_ports") else {4}
        got = raw_sctp_families(host["ns"])
        ok = got >= want if want else not got
        if not ok:
            if want:
                errors.append(f"{host['ns']}: open SCTP ports in ground-truth.json but no raw protocol-132 socket "
                              f"for IPv{'/IPv'.join(map(str, sorted(want - got)))} (is sctp_responder.py running?)")
            else:
                errors.append(f"{host['ns']}: raw protocol-132 socket (IPv{'/IPv'.join(map(str, sorted(got)))}) on a "
                              "host whose SCTP ports are all closed/filtered: the kernel would stop sending ICMP")
        print(f"  {host['ns']:5} sctp: " + (f"raw protocol 132 on IPv{'/IPv'.join(map(str, sorted(got)))}" if got else "-")
              + f"  {'ok' if ok else 'MISMATCH'}")
    return errors


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
            us = host.get("user_space_stack")
            if us:
                # ss sees the kernel's sockets only; this host's are the program's (probe checks them).
                # The namespace's kernel has no address on the LAN: it must listen on nothing.
                kernel = sorted({port for addr, port in ss(ns, flags) if not is_loopback(addr)})
                if kernel:
                    errors.append(f"{ns}: {proto} kernel listeners {kernel} in the namespace of a user-space "
                                  f"stack ({us['impl']}): nothing should listen there")
                print(f"  {ns:5} {proto}: {sorted(want) or '-'} in user space ({us['impl']}, {us['program']}; "
                      f"not seen by ss{', probed' if want and proto == 'tcp' else ''}), "
                      f"kernel listeners: {kernel or '-'}  {'ok' if not kernel else 'MISMATCH'}")
                continue
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


def sctp_probe(truth, timeout=2.0, grace=0.3):
    """Send one SCTP INIT to every open SCTP port and to one unlisted port of every host (IPv4,
    and IPv6 where ipv6_same_ports) and classify what comes back: init-ack, abort, icmp (protocol
    unreachable / ICMPv6 unrecognized next header), none, or what else arrived. Returns
    [(what, got, want)]. Raw sockets: while ours are open, this namespace's kernel does not answer
    the INIT-ACKs with ICMP of its own. Bounded: `timeout` seconds at most, at most 4096 packets."""
    sys.path.insert(0, HERE)
    sys.dont_write_bytecode = True  # no __pycache__ in the source tree
    import sctp_responder as sr  # the CRC32c and packet helpers

    probes = {}  # (family, target, port, our port) -> [what, want, our tag, got]
    for host in truth["hosts"]:
        sctp = host.get("sctp")
        if sctp is None:
            continue
        addrs = [host["ipv4"]] + ([host["ipv6"]] if host.get("ipv6_same_ports") else [])
        wants = [(p["port"], "init-ack") for p in sctp["open"]]
        others = {p["port"] for p in sctp["open"]} | {p["port"] for p in sctp.get("rejected", [])}
        other = next(p for p in (9, 7, 13) if p not in others)
        wants.append((other, {"abort": "abort", "none": "none"}.get(sctp["default_answer"], "icmp")))
        for addr in addrs:
            assert in_lab(addr), addr
            tag = f"[{addr}]" if ":" in addr else addr
            for port, want in wants:
                our_port = 47000 + len(probes)
                fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
                probes[(fam, str(ipaddress.ip_address(addr)), port, our_port)] = [
                    f"{host['name']} {tag} sctp/{port} INIT", want, sr.rand32(nonzero=True), "none"]
    if not probes:
        return []
    socks = {
        "s4": socket.socket(socket.AF_INET, socket.SOCK_RAW, 132),
        "s6": socket.socket(socket.AF_INET6, socket.SOCK_RAW, 132),
        "i4": socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
        "i6": socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6),
    }
    try:
        for (fam, addr, port, our_port), p in probes.items():
            init = struct.pack("!IIHHI", p[2], 65535, 10, 10, sr.rand32())
            pkt = sr.packet(our_port, port, 0, sr.chunk(sr.INIT, 0, init))
            s = socks["s6" if fam == socket.AF_INET6 else "s4"]
            s.sendto(pkt, (addr, 0, 0, 0) if fam == socket.AF_INET6 else (addr, 0))

        def record(fam, src, sport, dport, got):
            p = probes.get((fam, str(ipaddress.ip_address(src)), sport, dport))
            if p is not None and p[3] == "none":
                p[3] = got

        def on_sctp(fam, src, data):
            if len(data) < 16 or not sr.checksum_ok(data):
                return
            sport, dport, vtag = struct.unpack_from("!HHI", data)
            chunks = sr.parse_chunks(data)
            p = probes.get((fam, str(ipaddress.ip_address(src)), sport, dport))
            if not chunks or p is None:
                return
            ctype, flags, _v = chunks[0]
            name = {sr.INIT_ACK: "init-ack", sr.ABORT: "abort"}.get(ctype, f"chunk-{ctype}")
            if vtag != p[2] or (ctype == sr.ABORT and flags & 1):
                name += "(bad vtag/T bit)"
            record(fam, src, sport, dport, name)

        def on_icmp(fam, src, data):
            # data: ICMP message; the quoted packet starts 8 bytes in
            if fam == socket.AF_INET:
                if len(data) < 8 + 20 + 4 or data[0] != 3:
                    return
                q = data[8:]
                ihl = (q[0] & 0x0F) * 4
                if q[9] != 132 or len(q) < ihl + 4:
                    return
                dst = socket.inet_ntop(socket.AF_INET, q[16:20])
                sport, dport = struct.unpack_from("!HH", q, ihl)
                got = "icmp" if data[1] == 2 else f"icmp-unreach-{data[1]}"
            else:
                if len(data) < 8 + 40 + 4 or data[0] not in (1, 4):
                    return
                q = data[8:]
                if q[6] != 132:
                    return
                dst = socket.inet_ntop(socket.AF_INET6, q[24:40])
                sport, dport = struct.unpack_from("!HH", q, 40)
                got = "icmp" if (data[0], data[1]) == (4, 1) else f"icmp6-{data[0]}/{data[1]}"
            if dst == src:  # the quoted packet is ours to the host that answers
                record(fam, src, dport, sport, got)

        by_fd = {s.fileno(): name for name, s in socks.items()}
        poller = select.poll()
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        start = time.monotonic()
        deadline = start + timeout
        for _ in range(4096):
            now = time.monotonic()
            if all(p[3] != "none" for p in probes.values() if p[1] != "none"):
                deadline = min(deadline, now + grace) if now < start + timeout else now
            if now >= deadline:
                break
            for fd, _ev in poller.poll(max(1, int((deadline - now) * 1000))):
                name = by_fd[fd]
                data, addr = socks[name].recvfrom(65535)
                fam = socket.AF_INET6 if name.endswith("6") else socket.AF_INET
                src = addr[0].split("%", 1)[0]
                if name == "s4" or name == "i4":  # IPv4 raw sockets deliver the IP header
                    if len(data) < 20:
                        continue
                    data = data[(data[0] & 0x0F) * 4:]
                (on_sctp if name.startswith("s") else on_icmp)(fam, src, data)
    finally:
        for s in socks.values():
            s.close()
    return [(p[0], p[3], p[1]) for p in probes.values()]


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
            elif host["tcp"]["default"] == "open":  # every port accepts (h16's portspoof-like redirect)
                expect(f"{host['name']} {tag}:{closed_probe} (redirected)", connect(addr, closed_probe, 3.0), "open")
            else:
                expect(f"{host['name']} {tag}:{closed_probe} (dropped)", connect(addr, closed_probe, 1.0), "timeout")
            for r in host["tcp"]["rejected"]:
                want = "refused" if r["reject_with"] == "tcp-reset" else "unreachable"
                expect(f"{host['name']} {tag}:{r['port']} ({r['reject_with']})", connect(addr, r["port"], 3.0), want)

    # SCTP: the responder on h10, the firewall on h11, the kernels' ICMP everywhere else.
    for what, got, want in sctp_probe(truth):
        expect(what, got, want)

    # DNS inside the lab: the scanner namespace's resolv.conf points at h10's dnsmasq.
    for name, addrs in truth["dns"]["records"].items():
        for addr in addrs:
            try:
                got = socket.gethostbyaddr(addr)[0]
            except OSError as e:
                got = f"error:{e}"
            expect(f"PTR {addr}", got, name)
    try:
        got = sorted({ai[4][0] for ai in socket.getaddrinfo("h20.lab.test", None, proto=socket.IPPROTO_TCP)})
    except OSError as e:
        got = [f"error:{e}"]
    expect("A/AAAA h20.lab.test", ",".join(got), ",".join(sorted(truth["dns"]["records"]["h20.lab.test"])))
    for name, addr in truth["dns"]["hosts_file"]["entries"].items():
        try:
            got = socket.gethostbyaddr(addr)[0] + " " + socket.gethostbyname(name)
        except OSError as e:
            got = f"error:{e}"
        expect(f"/etc/hosts {name}", got, f"{name} {addr}")
    for name, addrs in truth["dns"].get("multi", {}).items():
        try:
            got = sorted({ai[4][0] for ai in socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)})
        except OSError as e:
            got = [f"error:{e}"]
        expect(f"A/AAAA {name}", ",".join(got), ",".join(sorted(addrs)))

    # No way out: the scanner namespace must have no default route.
    for fam in ("-4", "-6"):
        out = subprocess.run(["ip", fam, "route", "show", "default"], capture_output=True, text=True, timeout=5).stdout
        expect(f"default route ({fam})", out.strip() or "none", "none")
    print(f"  {count[0]} checks (TCP connects and SCTP INITs over IPv4 and IPv6, h11 firewall, DNS, routes)"
          + ("" if verbose else "; LAB_VERBOSE=1 lists them"))
    return errors


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("listeners", "probe"):
        print(__doc__, file=sys.stderr)
        return 2
    truth = load_truth()
    if sys.argv[1] == "listeners":
        errors = check_listeners(truth) + check_sctp_responders(truth)
    else:
        errors = check_probe(truth)
    if errors:
        print(f"lab_check {sys.argv[1]}: {len(errors)} mismatch(es) against ground-truth.json:", file=sys.stderr)
        for e in errors:
            print(f"  - {e}", file=sys.stderr)
        return 1
    print(f"lab_check {sys.argv[1]}: matches ground-truth.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
