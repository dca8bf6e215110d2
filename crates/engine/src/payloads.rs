//! RustMap's own UDP probe payloads: what a UDP scan sends to well-known ports.
//!
//! An empty datagram goes unanswered by most UDP services, so an open port would look exactly
//! like a filtered one (`open|filtered`). For ports whose protocol we know, the scan sends a
//! small, harmless request that a real server answers: a DNS query for the root's NS records, an
//! SNMP get of `sysDescr.0` with community `public`, an NTP client request, and so on. Every
//! payload here was written for RustMap from the protocol specifications named beside it;
//! docs/udp-payloads.md lists them.
//!
//! Payloads are built once, on first use, from readable parts (DNS names, BER TLVs) rather than
//! kept as opaque byte strings, so each can be checked against its specification in the tests.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The payload for a UDP port; empty when the port has no protocol-specific probe.
pub fn for_port(port: u16) -> &'static [u8] {
    table().get(&port).map_or(&[][..], Vec::as_slice)
}

/// Every port with a payload, ascending (for documentation and tests).
pub fn ports() -> Vec<u16> {
    let mut v: Vec<u16> = table().keys().copied().collect();
    v.sort_unstable();
    v
}

fn table() -> &'static HashMap<u16, Vec<u8>> {
    static TABLE: OnceLock<HashMap<u16, Vec<u8>>> = OnceLock::new();
    TABLE.get_or_init(build)
}

/// A DNS message with one question (RFC 1035 §4.1), recursion desired.
fn dns_query(id: u16, labels: &[&str], qtype: u16, qclass: u16) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00]); // standard query, RD
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // QDCOUNT 1, no other sections
    for l in labels {
        m.push(l.len() as u8);
        m.extend_from_slice(l.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&qclass.to_be_bytes());
    m
}

/// A BER TLV with a short or long length (X.690 §8.1.3).
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let n = content.len();
    if n < 0x80 {
        v.push(n as u8);
    } else {
        let bytes = (n as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        v.push(0x80 | (4 - skip) as u8);
        v.extend_from_slice(&bytes[skip..]);
    }
    v.extend_from_slice(content);
    v
}

/// SNMPv2c GetRequest for sysDescr.0 (RFC 3416 PDU inside the RFC 1901 community message).
fn snmp_get_sysdescr(community: &str, request_id: u32) -> Vec<u8> {
    // 1.3.6.1.2.1.1.1.0: first two arcs packed as 40*1+3 = 0x2b.
    let oid = tlv(0x06, &[0x2b, 6, 1, 2, 1, 1, 1, 0]);
    let varbind = tlv(0x30, &[oid, vec![0x05, 0x00]].concat());
    let varbinds = tlv(0x30, &varbind);
    let mut rid = request_id.to_be_bytes().to_vec();
    // INTEGER is signed: keep it positive.
    rid[0] &= 0x7f;
    let pdu = tlv(0xa0, &[tlv(0x02, &rid), tlv(0x02, &[0]), tlv(0x02, &[0]), varbinds].concat());
    // version 1 = SNMPv2c
    tlv(0x30, &[tlv(0x02, &[1]), tlv(0x04, community.as_bytes()), pdu].concat())
}

/// An ONC RPC call of procedure 0 (NULL) with AUTH_NONE (RFC 5531 §9).
fn rpc_null_call(xid: u32, program: u32, version: u32) -> Vec<u8> {
    let mut m = Vec::new();
    for w in [xid, 0 /* CALL */, 2 /* RPC version */, program, version, 0 /* NULL proc */, 0, 0, 0, 0] {
        m.extend_from_slice(&w.to_be_bytes());
    }
    m
}

/// NetBIOS name-service NBSTAT query for the wildcard name `*` (RFC 1002 §4.2.17).
fn netbios_nbstat(id: u16) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    // First-level encoding (RFC 1001 §14.1): each nibble + 'A'; the name is `*` padded with NULs.
    let mut name = [0u8; 16];
    name[0] = b'*';
    m.push(32);
    for b in name {
        m.push(b'A' + (b >> 4));
        m.push(b'A' + (b & 0x0f));
    }
    m.push(0);
    m.extend_from_slice(&[0x00, 0x21, 0x00, 0x01]); // NBSTAT, IN
    m
}

fn build() -> HashMap<u16, Vec<u8>> {
    let mut t: HashMap<u16, Vec<u8>> = HashMap::new();
    let mut add = |ports: &[u16], payload: Vec<u8>| {
        for p in ports {
            t.insert(*p, payload.clone());
        }
    };
    // Echo, discard, daytime, chargen, time: any datagram is answered (or swallowed).
    add(&[7, 9, 13, 19, 37], b"rustmap\r\n".to_vec());
    // DNS: root NS, class IN (RFC 1035).
    add(&[53, 5353, 5355], dns_query(0x5254, &[], 2, 1));
    // mDNS service enumeration would need multicast semantics; the unicast root query above is
    // answered by responders that answer unicast at all.
    // TFTP read request (RFC 1350) for a file that should not exist: servers answer with an error.
    add(&[69], [&[0u8, 1][..], b"rustmap-probe\0octet\0"].concat());
    // ONC RPC NULL to portmapper v2 (111) and NFS v3 (2049).
    add(&[111], rpc_null_call(0x5254_0001, 100_000, 2));
    add(&[2049], rpc_null_call(0x5254_0002, 100_003, 3));
    // NTP v4 client request (RFC 5905): LI 3 (unsynchronized), VN 4, mode 3; the rest zero.
    let mut ntp = vec![0u8; 48];
    ntp[0] = 0xe3;
    add(&[123], ntp);
    // NetBIOS name service node status.
    add(&[137], netbios_nbstat(0x5254));
    // SNMP v2c get sysDescr.0, community "public" (agents and traps ports).
    add(&[161, 162], snmp_get_sysdescr("public", 0x5254_0161));
    // NAT-PMP external address request (RFC 6886 §3.2).
    add(&[5351], vec![0, 0]);
    // SQL Server Resolution Protocol: CLNT_UCAST_EX (MC-SQLR §2.2.2).
    add(&[1434], vec![0x03]);
    // OpenVPN: P_CONTROL_HARD_RESET_CLIENT_V2 (opcode 7, key id 0), session id, no acks, packet id 0.
    add(&[1194], [&[0x38u8][..], b"RUSTMAP!", &[0], &[0, 0, 0, 0]].concat());
    // SSDP discovery (UPnP Device Architecture 2.0 §1.3.2), sent unicast.
    add(
        &[1900],
        b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n"
            .to_vec(),
    );
    // SIP OPTIONS (RFC 3261 §11).
    add(
        &[5060],
        b"OPTIONS sip:nobody@rustmap.invalid SIP/2.0\r\n\
Via: SIP/2.0/UDP rustmap.invalid;branch=z9hG4bK-rustmap\r\n\
Max-Forwards: 70\r\nTo: <sip:nobody@rustmap.invalid>\r\n\
From: <sip:rustmap@rustmap.invalid>;tag=5254\r\nCall-ID: rustmap-probe\r\nCSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n"
            .to_vec(),
    );
    // CoAP confirmable GET /.well-known/core (RFC 7252 §3, RFC 6690).
    add(&[5683], [&[0x40u8, 0x01, 0x52, 0x54, 0xbb][..], b".well-known", &[0x04], b"core"].concat());
    // memcached UDP frame header (request id, sequence 0, 1 datagram, reserved) + "stats".
    add(&[11211], [&[0u8, 1, 0, 0, 0, 1, 0, 0][..], b"stats\r\n"].concat());
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walk a BER TLV; returns (tag, content, rest).
    fn ber(b: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = b[0];
        let (len, hdr) = if b[1] < 0x80 {
            (b[1] as usize, 2)
        } else {
            let n = (b[1] & 0x7f) as usize;
            (b[2..2 + n].iter().fold(0usize, |a, x| a << 8 | *x as usize), 2 + n)
        };
        (tag, &b[hdr..hdr + len], &b[hdr + len..])
    }

    #[test]
    fn snmp_message_is_well_formed_ber() {
        let m = for_port(161);
        let (tag, msg, rest) = ber(m);
        assert_eq!((tag, rest.len()), (0x30, 0));
        let (t, version, msg) = ber(msg);
        assert_eq!((t, version), (0x02, &[1u8][..]));
        let (t, community, msg) = ber(msg);
        assert_eq!((t, community), (0x04, &b"public"[..]));
        let (t, pdu, rest) = ber(msg);
        assert_eq!((t, rest.len()), (0xa0, 0));
        let (_, _rid, pdu) = ber(pdu);
        let (_, _err, pdu) = ber(pdu);
        let (_, _idx, pdu) = ber(pdu);
        let (t, vbl, _) = ber(pdu);
        assert_eq!(t, 0x30);
        let (_, vb, _) = ber(vbl);
        let (t, oid, null) = ber(vb);
        assert_eq!((t, oid), (0x06, &[0x2b, 6, 1, 2, 1, 1, 1, 0][..]));
        assert_eq!(null, [0x05, 0x00]);
    }

    #[test]
    fn dns_query_asks_one_question() {
        let m = for_port(53);
        assert_eq!(m.len(), 12 + 1 + 4);
        assert_eq!(&m[4..6], &[0, 1]);
        assert_eq!(&m[12..], &[0, 0, 2, 0, 1]);
    }

    #[test]
    fn netbios_name_is_first_level_encoded() {
        let m = for_port(137);
        assert_eq!(m[12], 32);
        assert_eq!(&m[13..15], b"CK");
        assert!(m[15..45].iter().all(|b| *b == b'A'));
        assert_eq!(&m[46..], &[0x00, 0x21, 0x00, 0x01]);
    }

    #[test]
    fn fixed_size_payloads() {
        assert_eq!(for_port(123).len(), 48);
        assert_eq!(for_port(123)[0] & 0x07, 3);
        assert_eq!(for_port(111).len(), 40);
        assert_eq!(&for_port(11211)[8..], b"stats\r\n");
        assert!(for_port(40000).is_empty());
        assert!(ports().contains(&1900));
    }

    #[test]
    fn long_ber_lengths() {
        let v = tlv(0x04, &[7u8; 300]);
        assert_eq!(&v[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(v.len(), 304);
    }
}
