#!/usr/bin/env python3
"""Compare scan results in nmap XML format (from nmap, or RustMap's -oX) with ground-truth.json.

    check_scan.py [--sweep CIDR] [--strict-services] RESULT.xml...

For every host the XML reports, checks:
  * the host is a lab host expected up (or the scanner itself);
  * every port state, both the listed <port>s and the <extraports> ranges, against the host's
    open / rejected / default states (and the reason, where ground-truth.json names one);
    TCP, UDP and SCTP (a COOKIE-ECHO scan, scaninfo type sctpcookieecho, uses the states
    of the host's sctp.cookie_echo entry where it gives them);
  * the service name of open ports: method="table" must equal port_table_name; a probed name
    (-sV) that differs from "service" is a warning (an error with --strict-services);
  * reverse-DNS name, MAC address, traceroute hops and network distance, where the XML has them.
With --sweep CIDR (for ping scans): every host expected up inside CIDR must be reported up.
Exit status 0 when everything agrees; mismatches are listed one per line.
"""

import argparse
import ipaddress
import json
import os
import sys
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))


def port_ranges(spec):
    for part in spec.split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        yield from range(int(lo), int(hi or lo) + 1)


class Truth:
    def __init__(self, path):
        with open(path) as f:
            self.doc = json.load(f)
        self.by_addr = {}
        for h in self.doc["hosts"]:
            for a in [h["ipv4"], h.get("ipv6")] + h.get("other_addresses", []):
                if a:
                    self.by_addr[str(ipaddress.ip_address(a))] = h
        sc = self.doc["scanner"]
        self.scanner = {str(ipaddress.ip_address(sc["ipv4"])), str(ipaddress.ip_address(sc["ipv6"]))}

    @staticmethod
    def expected(host, proto, port, scan_type=None):
        """(state, reason or None) that ground truth predicts for host/proto/port. For SCTP,
        scan_type "sctpcookieecho" (nmap -sZ) takes the states from the "cookie_echo" entry."""
        spec = host[proto]
        alt = spec.get("cookie_echo", {}) if scan_type == "sctpcookieecho" else {}
        for p in spec["open"]:
            if p["port"] == port:
                return alt.get("open", "open"), None
        for r in spec.get("rejected", []):
            if r["port"] == port:
                return r["expected_state"], r.get("expected_reason")
        return alt.get("default", spec["default"]), None

    @staticmethod
    def open_entry(host, proto, port):
        return next((p for p in host[proto]["open"] if p["port"] == port), None)


def check_file(path, truth, args, errors, warnings, seen_up):
    root = ET.parse(path).getroot()
    tag = os.path.basename(path)
    scan_types = {si.get("protocol"): si.get("type") for si in root.findall("scaninfo")}
    for hx in root.iter("host"):
        status = hx.find("status")
        addr = next((a.get("addr") for a in hx.findall("address") if a.get("addrtype") in ("ipv4", "ipv6")), None)
        if addr is None or status is None:
            continue
        addr = str(ipaddress.ip_address(addr))
        up = status.get("state") == "up"
        if up:
            seen_up.add(addr)
        host = truth.by_addr.get(addr)
        if addr in truth.scanner:
            continue
        if host is None:
            if up:
                errors.append(f"{tag}: {addr} reported up but is not a lab host (unused addresses must be down)")
            continue
        name = host["name"]
        for hn in hx.iter("hostname"):
            if hn.get("type") == "PTR" and hn.get("name") != host["hostname"] and addr in (host["ipv4"], host.get("ipv6")):
                errors.append(f"{tag}: {name} {addr} reverse DNS {hn.get('name')!r}, expected {host['hostname']!r}")
        mac = next((a.get("addr") for a in hx.findall("address") if a.get("addrtype") == "mac"), None)
        if mac and host.get("mac") and mac.lower() != host["mac"]:
            errors.append(f"{tag}: {name} MAC {mac}, expected {host['mac']}")
        if up != host["up"]:
            errors.append(f"{tag}: {name} {addr} reported {status.get('state')}, expected {'up' if host['up'] else 'down'}")
        ports = hx.find("ports")
        if ports is not None:
            for px in ports.findall("port"):
                proto, port = px.get("protocol"), int(px.get("portid"))
                st = px.find("state")
                want, reason = truth.expected(host, proto, port, scan_types.get(proto))
                if st.get("state") != want:
                    errors.append(f"{tag}: {name} {port}/{proto} is {st.get('state')} ({st.get('reason')}), expected {want}")
                elif reason and st.get("reason") != reason:
                    errors.append(f"{tag}: {name} {port}/{proto} reason {st.get('reason')}, expected {reason}")
                svc = px.find("service")
                entry = truth.open_entry(host, proto, port)
                if svc is not None and entry and st.get("state") == want:
                    got = svc.get("name")
                    if svc.get("method") == "table":
                        if got != entry["port_table_name"]:
                            errors.append(f"{tag}: {name} {port}/{proto} service {got!r}, expected {entry['port_table_name']!r}")
                    else:
                        ok = {entry["service"], entry["port_table_name"]}
                        if entry.get("tls") and svc.get("tunnel") == "ssl":
                            ok.add("http")
                        if entry.get("sv_name"):
                            ok.add(entry["sv_name"])
                        if got not in ok:
                            (errors if args.strict_services else warnings).append(
                                f"{tag}: {name} {port}/{proto} probed service {got!r}, ground truth {entry['service']!r}")
            for ex in ports.findall("extraports"):
                state = ex.get("state")
                for er in ex.findall("extrareasons"):
                    proto = er.get("proto")
                    if not er.get("ports") or not proto:
                        continue
                    bad = []
                    for port in port_ranges(er.get("ports")):
                        want, reason = truth.expected(host, proto, port, scan_types.get(proto))
                        if state != want or (reason and er.get("reason") != reason):
                            bad.append(port)
                    if bad:
                        errors.append(f"{tag}: {name} {len(bad)} {proto} port(s) reported {state} ({er.get('reason')}) "
                                      f"but expected otherwise, e.g. {bad[:10]}")
        trace = hx.find("trace")
        key = "traceroute6" if ":" in addr else "traceroute"
        if trace is not None and key in host:
            hops = [h.get("ipaddr") for h in sorted(trace.findall("hop"), key=lambda h: int(h.get("ttl")))]
            if hops != host[key]:
                errors.append(f"{tag}: {name} traceroute {hops}, expected {host[key]}")
        dist = hx.find("distance")
        if dist is not None and int(dist.get("value")) != host["distance"]:
            errors.append(f"{tag}: {name} distance {dist.get('value')}, expected {host['distance']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("xml", nargs="+")
    ap.add_argument("--sweep", metavar="CIDR", help="every expected-up lab host in CIDR must be reported up")
    ap.add_argument("--strict-services", action="store_true", help="probed service names must match too")
    ap.add_argument("--truth", default=os.path.join(HERE, "ground-truth.json"))
    args = ap.parse_args()

    truth = Truth(args.truth)
    errors, warnings, seen_up = [], [], set()
    for path in args.xml:
        check_file(path, truth, args, errors, warnings, seen_up)
    if args.sweep:
        net = ipaddress.ip_network(args.sweep)
        want = {a for a, h in truth.by_addr.items() if h["up"] and ipaddress.ip_address(a) in net}
        want |= {a for a in truth.scanner if ipaddress.ip_address(a) in net}
        for a in sorted(want - seen_up, key=ipaddress.ip_address):
            errors.append(f"sweep {args.sweep}: {a} ({truth.by_addr.get(a, {}).get('name', 'scanner')}) not reported up")
    for w in warnings:
        print(f"warning: {w}")
    for e in errors:
        print(f"MISMATCH: {e}")
    print(f"check_scan: {len(args.xml)} file(s), {len(errors)} mismatch(es), {len(warnings)} warning(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
