//! The evasion options on the wire: each scan of a lab host runs while tshark captures on the
//! host's side, and the test checks both what the host received (decoy sources in order,
//! fragments, source port, payload, TTL, options, checksums, source MAC) and that the scan's
//! answer is still exact against the lab's ground truth.
//!
//! The scanner runs inside the lab's scanner namespace, which has no route out; decoy and
//! random addresses are only ever sources, and the lab hosts have no route to answer them.
//! Without the lab these tests skip with a reason — except under `CI=true`, where they fail.

mod common;

use common::*;
use std::collections::BTreeSet;

const H10: &str = "198.18.0.10";
const H10_V6: &str = "fd00:18::10";
const ME: &str = "198.18.0.2";
/// Closed on h10 (nothing listens there), probed beside the open ones.
const CLOSED: [u16; 3] = [81, 1000, 9999];

/// h10's open ports (ground truth) plus some closed ones, as a `-p` list, and the open set.
fn h10_ports() -> (String, BTreeSet<u16>) {
    let open = truth_open_tcp("h10");
    let all: Vec<String> = open.iter().chain(CLOSED.iter()).map(u16::to_string).collect();
    (all.join(","), open)
}

/// The scan saw exactly the ground truth: the open ports open, the others closed.
fn assert_exact(v: &serde_json::Value, addr: &str, open: &BTreeSet<u16>) {
    let h = host(v, addr);
    assert_eq!(&ports_in(h, "open"), open, "{addr}: open ports");
    let closed: BTreeSet<u16> = CLOSED.into_iter().collect();
    assert_eq!(ports_in(h, "closed"), closed, "{addr}: closed ports");
}

#[test]
fn decoys_send_from_every_address_in_order_and_the_scan_stays_exact() {
    let Some(_lab) = lab() else { return };
    let (ports, open) = h10_ports();
    let mut cap = Capture::start("h10");
    let decoys = "198.18.0.201,ME,198.18.0.202,RND:2";
    let v = json_scan(&["-sS", "-Pn", "-n", "-p", &ports, "-D", decoys, H10]);
    assert_exact(&v, H10, &open);
    let syns = cap.fields("tcp.flags == 0x002 && ip.dst == 198.18.0.10", &["ip.src", "tcp.dstport"]);
    // Every probed port got a SYN from each of the five sources.
    let probed: BTreeSet<u16> = syns.iter().map(|r| r[1].parse().unwrap()).collect();
    assert_eq!(probed.len(), open.len() + CLOSED.len(), "{syns:?}");
    for port in &probed {
        let from: Vec<&str> = syns.iter().filter(|r| r[1] == port.to_string()).map(|r| r[0].as_str()).collect();
        // The first five SYNs to the port: the sources in the order given.
        assert!(from.len() >= 5, "port {port}: {from:?}");
        assert_eq!(&from[..3], ["198.18.0.201", ME, "198.18.0.202"], "port {port}");
        let random: BTreeSet<&str> = from[3..5].iter().copied().collect();
        assert_eq!(random.len(), 2, "two random decoys: {from:?}");
        for r in &random {
            assert!(!r.starts_with("198.18.") && !r.starts_with("10.") && !r.starts_with("127."), "{r}");
        }
    }
}

#[test]
fn fragments_of_8_16_and_24_bytes_ipv4_and_ipv6_and_the_scan_stays_exact() {
    let Some(_lab) = lab() else { return };
    let (ports, open) = h10_ports();
    for (flag, size) in [(vec!["-f"], 8usize), (vec!["-ff"], 16), (vec!["--mtu", "24"], 24)] {
        let mut cap = Capture::start("h10");
        let mut args = vec!["-sS", "-Pn", "-n", "-p", &ports];
        args.extend(flag.iter().copied());
        args.push(H10);
        let v = json_scan(&args);
        assert_exact(&v, H10, &open);
        let frags = cap.fields(
            "ip.src == 198.18.0.2 && ip.dst == 198.18.0.10 && (ip.flags.mf == 1 || ip.frag_offset > 0)",
            &["ip.len", "ip.hdr_len", "ip.flags.mf", "ip.frag_offset"],
        );
        // A SYN with its MSS option is 24 bytes of TCP: 3, 2 or 1 pieces.
        let pieces = 24usize.div_ceil(size);
        if pieces > 1 {
            assert!(frags.len() >= pieces * (open.len() + CLOSED.len()), "{flag:?}: {} fragments", frags.len());
        }
        for f in &frags {
            let payload = f[0].parse::<usize>().unwrap() - f[1].parse::<usize>().unwrap();
            assert!(payload <= size, "{flag:?}: a fragment of {payload} bytes");
            // tshark counts the offset in 8-byte units.
            assert_eq!(f[3].parse::<usize>().unwrap() * 8 % size, 0, "{flag:?}: offset {}", f[3]);
        }
    }
    // IPv6: fragment headers; the first fragment holds the whole TCP header (RFC 7112), the
    // payload follows in 8-byte pieces.
    let mut cap = Capture::start("h10");
    let v = json_scan(&["-sS", "-Pn", "-n", "-p", &ports, "-f", "--data-length", "20", H10_V6]);
    assert_exact(&v, H10_V6, &open);
    let frags = cap.fields("ipv6.src == fd00:18::2 && ipv6.fraghdr", &["ipv6.fraghdr.offset", "ipv6.fraghdr.more"]);
    // Offsets in 8-byte units: 0, then 24, 32 and 40 bytes.
    let offsets: BTreeSet<&str> = frags.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(offsets, BTreeSet::from(["0", "3", "4", "5"]), "{frags:?}");
    assert!(frags.iter().any(|r| r[1] == "0") && frags.iter().any(|r| r[1] == "1"), "{frags:?}");
}

#[test]
fn udp_and_icmp_probes_are_fragmented_too() {
    let Some(_lab) = lab() else { return };
    // h13 answers every closed UDP port with port-unreachable at once (no rate limit).
    let mut cap = Capture::start("h13");
    let v = json_scan(&["-sU", "-Pn", "-n", "-p", "9998,9999", "-f", "--data-length", "16", "198.18.0.13"]);
    assert_eq!(ports_in(host(&v, "198.18.0.13"), "closed"), BTreeSet::from([9998, 9999]));
    let udp = cap.fields("ip.src == 198.18.0.2 && ip.flags.mf == 1", &["ip.proto"]);
    assert!(udp.len() >= 4 && udp.iter().all(|r| r[0] == "17"), "UDP first fragments: {udp:?}");
    let mut cap = Capture::start("h13");
    let v = json_scan(&["-sn", "-PE", "--disable-arp-ping", "-n", "-f", "--data-length", "16", "198.18.0.13"]);
    assert_eq!(host(&v, "198.18.0.13")["status"], "up");
    let icmp = cap.fields("ip.src == 198.18.0.2 && ip.proto == 1 && ip.flags.mf == 1", &["ip.len"]);
    assert!(!icmp.is_empty(), "the echo request was fragmented");
}

#[test]
fn source_port_payload_and_ttl() {
    let Some(_lab) = lab() else { return };
    let (ports, open) = h10_ports();
    let mut cap = Capture::start("h10");
    let v = json_scan(&["-sS", "-Pn", "-n", "-p", &ports, "-g", "53", "--ttl", "33", "--data-hex", "deadbeef", H10]);
    // Closed ports answer with a reset that acknowledges the payload too: still matched.
    assert_exact(&v, H10, &open);
    let syns = cap
        .fields("ip.src == 198.18.0.2 && tcp.flags == 0x002", &["tcp.srcport", "ip.ttl", "tcp.payload", "tcp.dstport"]);
    assert!(syns.len() >= open.len() + CLOSED.len(), "{syns:?}");
    for s in &syns {
        assert_eq!((s[0].as_str(), s[1].as_str()), ("53", "33"), "{s:?}");
        assert_eq!(s[2].replace(':', ""), "deadbeef", "{s:?}");
    }
    // UDP: the payload replaces the protocol payloads, from the same source port.
    let mut cap = Capture::start("h13");
    let v = json_scan(&["-sU", "-Pn", "-n", "-p", "53,9999", "-g", "53", "--data-string", "HELLO", "198.18.0.13"]);
    assert!(ports_in(host(&v, "198.18.0.13"), "closed").contains(&9999));
    let udp = cap.fields("ip.src == 198.18.0.2 && udp", &["udp.srcport", "udp.length"]);
    assert!(!udp.is_empty());
    for u in &udp {
        assert_eq!((u[0].as_str(), u[1].as_str()), ("53", "13"), "8 bytes of header and HELLO: {u:?}");
    }
}

#[test]
fn bad_checksums_ip_options_and_a_spoofed_mac() {
    let Some(_lab) = lab() else { return };
    // Bad checksums: the host drops every probe, so nothing answers.
    let mut cap = Capture::start("h10");
    let v = json_scan(&["-sS", "-Pn", "-n", "-p", "22,81", "--badsum", "--max-retries", "1", H10]);
    let h = host(&v, H10);
    assert!(ports_in(h, "open").is_empty() && ports_in(h, "closed").is_empty(), "{h}");
    let sums = cap.fields("ip.src == 198.18.0.2 && tcp", &["tcp.checksum.status"]);
    assert!(!sums.is_empty() && sums.iter().all(|s| s[0] == "0"), "every checksum bad: {sums:?}");
    // Record route.
    let mut cap = Capture::start("h10");
    let v = json_scan(&["-sS", "-Pn", "-n", "-p", "22,81", "--ip-options", "R", H10]);
    assert_eq!(ports_in(host(&v, H10), "open"), BTreeSet::from([22]));
    let opts = cap.fields("ip.src == 198.18.0.2 && tcp", &["ip.hdr_len", "ip.opt.type"]);
    assert!(!opts.is_empty() && opts.iter().all(|o| o[0] == "60" && o[1].contains('7')), "{opts:?}");
    // A spoofed MAC: host discovery by ARP learns the next hop, so the probes are frames.
    let mut cap = Capture::start("h10");
    let v = json_scan(&["-sS", "-n", "-p", "22,81", "--spoof-mac", "02:de:ad:be:ef:01", H10]);
    assert_eq!(ports_in(host(&v, H10), "open"), BTreeSet::from([22]));
    let macs = cap.fields("ip.src == 198.18.0.2 && tcp.flags == 0x002", &["eth.src"]);
    assert!(!macs.is_empty() && macs.iter().all(|m| m[0] == "02:de:ad:be:ef:01"), "{macs:?}");
}

#[test]
fn randomize_hosts_scans_every_host_once() {
    let Some(_lab) = lab() else { return };
    let v = json_scan(&["-sS", "-Pn", "-n", "-p", "22", "--randomize-hosts", "198.18.0.10-14"]);
    let addrs: BTreeSet<String> =
        v["hosts"].as_array().unwrap().iter().map(|h| h["addr"].as_str().unwrap().to_string()).collect();
    assert_eq!(addrs.len(), 5, "{addrs:?}");
}
