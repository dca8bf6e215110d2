//! Service coverage with hand-written fixtures: for each protocol, the answer a server sends
//! to RustMap's probe, built here byte by byte from the protocol's specification (the layout is
//! spelled out beside each builder), then
//!
//! - matched against the built-in rules (`match_response`), and
//! - served by a loopback responder that checks the probe's request the way a server would
//!   (it answers only a well-formed request of its protocol), so that the whole detector path
//!   (plan, connect, send, read, match) runs.
//!
//! These fixtures stand in for daemons that Debian does not package (MongoDB, Elasticsearch,
//! SQL Server, Oracle, Docker, Kubernetes, JDWP, RTSP...); the lab (`tests/lab`) runs the real
//! ones Debian has and the same kind of responders in Python, end to end through the CLI.

use rustmap_detect::matcher::match_response;
use rustmap_detect::{DetectOptions, Detector, ProbeDb, Transport};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

// ------------------------------------------------------------------------------------ builders

/// BER TLV with a short or long-form length (X.690 §8.1.3).
fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    match body.len() {
        n @ 0..=127 => v.push(n as u8),
        n @ 128..=255 => v.extend([0x81, n as u8]),
        n => v.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    v.extend_from_slice(body);
    v
}

/// LDAP (RFC 4511 §4.5.2): SearchResultEntry for the root DSE with an objectClass attribute,
/// then SearchResultDone (success), both message id 7.
fn ldap_rootdse(classes: &[&str]) -> Vec<u8> {
    let vals: Vec<u8> = classes.iter().flat_map(|c| tlv(0x04, c.as_bytes())).collect();
    let attr = tlv(0x30, &[tlv(0x04, b"objectClass"), tlv(0x31, &vals)].concat());
    let entry = tlv(0x64, &[tlv(0x04, b""), tlv(0x30, &attr)].concat());
    let done = tlv(0x65, &[tlv(0x0a, &[0]), tlv(0x04, b""), tlv(0x04, b"")].concat());
    [tlv(0x30, &[tlv(0x02, &[7]), entry].concat()), tlv(0x30, &[tlv(0x02, &[7]), done].concat())].concat()
}

/// SMB2 NEGOTIATE response (MS-SMB2 §2.2.4) in a direct-TCP frame: 64-byte header (response
/// flag, status 0, command 0), then StructureSize 65, SecurityMode, DialectRevision, ...
fn smb2_negotiate_response(dialect: u16) -> Vec<u8> {
    let mut h = b"\xfeSMB".to_vec();
    h.extend(64u16.to_le_bytes());
    h.extend([0; 2]); // credit charge
    h.extend([0; 4]); // status
    h.extend([0; 2]); // NEGOTIATE
    h.extend(1u16.to_le_bytes()); // credits granted
    h.extend(1u32.to_le_bytes()); // SERVER_TO_REDIR
    h.extend([0; 64 - 20]);
    assert_eq!(h.len(), 64);
    let mut b = 65u16.to_le_bytes().to_vec();
    b.extend(1u16.to_le_bytes()); // signing enabled
    b.extend(dialect.to_le_bytes());
    b.extend([0; 2]);
    b.extend(*b"0123456789abcdef"); // server GUID
    b.extend([0; 64 - 24]);
    let msg = [h, b].concat();
    [vec![0, 0, (msg.len() >> 8) as u8, msg.len() as u8], msg].concat()
}

/// NetBIOS name (RFC 1002 §4.1): 15 characters padded with blanks, and a suffix byte.
fn nb_entry(name: &str, suffix: u8, group: bool) -> Vec<u8> {
    let mut v = format!("{name:<15}").into_bytes();
    v.push(suffix);
    v.extend(if group { [0x84, 0x00] } else { [0x04, 0x00] });
    v
}

/// NODE STATUS RESPONSE (RFC 1002 §4.2.18) to the wildcard query, transaction id "RM", with a
/// unit ID (MAC address) as given.
fn nbstat_response(entries: &[Vec<u8>], unit_id: [u8; 6]) -> Vec<u8> {
    let mut v =
        b"RM\x84\x00\x00\x00\x00\x01\x00\x00\x00\x00\x20CKAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\x00\x00\x21\x00\x01".to_vec();
    v.extend([0; 4]); // TTL
    let mut data = vec![entries.len() as u8];
    for e in entries {
        data.extend_from_slice(e);
    }
    data.extend(unit_id);
    data.extend([0; 40]); // statistics
    v.extend((data.len() as u16).to_be_bytes());
    v.extend(data);
    v
}

/// TDS PRELOGIN answer (MS-TDS §2.2.6.5): a tabular-result message whose VERSION option is
/// major.minor.build.subbuild.
fn tds_prelogin(major: u8, minor: u8, build: u16) -> Vec<u8> {
    let mut opts = vec![
        0x00, 0x00, 0x1a, 0x00, 0x06, // VERSION
        0x01, 0x00, 0x20, 0x00, 0x01, // ENCRYPTION
        0x02, 0x00, 0x21, 0x00, 0x01, // INSTOPT
        0x03, 0x00, 0x22, 0x00, 0x00, // THREADID
        0x04, 0x00, 0x22, 0x00, 0x01, // MARS
        0xff,
    ];
    opts.extend([major, minor]);
    opts.extend(build.to_be_bytes());
    opts.extend([0, 0, 0x02, 0x00, 0x00]);
    let len = (8 + opts.len()) as u16;
    [vec![0x04, 0x01], len.to_be_bytes().to_vec(), vec![0, 0, 1, 0], opts].concat()
}

/// TNS REFUSE packet (type 4) with the listener's connect-data answer.
fn tns_refuse(vsnnum: u32) -> Vec<u8> {
    let data = format!("(DESCRIPTION=(TMP=)(VSNNUM={vsnnum})(ERR=1189)(ERROR_STACK=(ERROR=(CODE=1189)(EMFI=4))))");
    let mut body = vec![0x22, 0x00];
    body.extend((data.len() as u16).to_be_bytes());
    body.extend(data.as_bytes());
    let len = (8 + body.len()) as u16;
    [len.to_be_bytes().to_vec(), vec![0, 0, 4, 0, 0, 0], body].concat()
}

/// BSON string element.
fn bson_str(name: &str, value: &str) -> Vec<u8> {
    let mut v = vec![0x02];
    v.extend(name.as_bytes());
    v.push(0);
    v.extend(((value.len() + 1) as i32).to_le_bytes());
    v.extend(value.as_bytes());
    v.push(0);
    v
}

/// OP_MSG reply (MongoDB wire protocol) to request id "RMDB": {version, gitVersion, ok: 1.0}.
fn mongo_buildinfo(version: &str) -> Vec<u8> {
    let mut elems = bson_str("version", version);
    elems.extend(bson_str("gitVersion", "0123abcd"));
    elems.extend([0x01]);
    elems.extend(b"ok\x00");
    elems.extend(1.0f64.to_le_bytes());
    elems.push(0);
    let doc = [((elems.len() + 4) as i32).to_le_bytes().to_vec(), elems].concat();
    let body = [vec![0, 0, 0, 0, 0], doc].concat();
    let mut v = ((16 + body.len()) as i32).to_le_bytes().to_vec();
    v.extend(*b"\x01\x00\x00\x00RMDB");
    v.extend(2013i32.to_le_bytes());
    v.extend(body);
    v
}

/// AMQP long string (§4.2.5.3).
fn amqp_longstr(s: &str) -> Vec<u8> {
    [(s.len() as u32).to_be_bytes().to_vec(), s.as_bytes().to_vec()].concat()
}

/// AMQP 0-9-1 Connection.Start method frame (§4.2.3, class 10 method 10).
fn amqp_connection_start(product: &str, version: &str) -> Vec<u8> {
    let mut table = Vec::new();
    for (k, v) in [("product", product), ("version", version), ("platform", "Erlang/OTP 25.3")] {
        table.push(k.len() as u8);
        table.extend(k.as_bytes());
        table.push(b'S');
        table.extend(amqp_longstr(v));
    }
    let mut m = vec![0, 10, 0, 10, 0, 9];
    m.extend((table.len() as u32).to_be_bytes());
    m.extend(table);
    m.extend(amqp_longstr("PLAIN AMQPLAIN"));
    m.extend(amqp_longstr("en_US"));
    [vec![1, 0, 0], (m.len() as u32).to_be_bytes().to_vec(), m, vec![0xce]].concat()
}

/// PPTP Start-Control-Connection-Reply (RFC 2637 §2.2).
fn pptp_reply(host: &str, vendor: &str, firmware: u16) -> Vec<u8> {
    let mut v = vec![0x00, 0x9c, 0x00, 0x01, 0x1a, 0x2b, 0x3c, 0x4d, 0x00, 0x02, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00];
    v.extend([0, 0, 0, 1, 0, 0, 0, 1, 0, 0]);
    v.extend(firmware.to_be_bytes());
    for s in [host, vendor] {
        let mut f = s.as_bytes().to_vec();
        f.resize(64, 0);
        v.extend(f);
    }
    assert_eq!(v.len(), 156);
    v
}

/// X11 connection setup Success (little-endian): release number and vendor at offset 40.
fn x11_success(release: u32, vendor: &str) -> Vec<u8> {
    let mut v = vec![1, 0, 11, 0, 0, 0, 0, 0];
    v.extend(release.to_le_bytes());
    v.extend([0; 12]); // resource-id base and mask, motion buffer size
    v.extend((vendor.len() as u16).to_le_bytes());
    v.extend(0xffffu16.to_le_bytes());
    v.extend([1, 1, 0, 0, 32, 32, 8, 255, 0, 0, 0, 0]);
    assert_eq!(v.len(), 40);
    v.extend(vendor.as_bytes());
    v
}

/// X11 connection setup Failed with a reason.
fn x11_failed(reason: &str) -> Vec<u8> {
    let mut v = vec![0, reason.len() as u8, 11, 0, 0, 0];
    v.extend((reason.len().div_ceil(4) as u16).to_le_bytes());
    v.extend(reason.as_bytes());
    v
}

/// JDWP handshake echo and the reply to VirtualMachine.Version (id 1).
fn jdwp_version(jdwp: &str, jvm: &str, vm: &str) -> Vec<u8> {
    let jstr = |s: &str| [(s.len() as u32).to_be_bytes().to_vec(), s.as_bytes().to_vec()].concat();
    let desc = format!(
        "Java Debug Wire Protocol (Reference Implementation) version {jdwp}\nJVM Debug Interface version {jdwp}\nJVM version {jvm} ({vm}, mixed mode, sharing)"
    );
    let data = [jstr(&desc), 17u32.to_be_bytes().to_vec(), 0u32.to_be_bytes().to_vec(), jstr(jvm), jstr(vm)].concat();
    let mut p = ((11 + data.len()) as u32).to_be_bytes().to_vec();
    p.extend(1u32.to_be_bytes());
    p.extend([0x80, 0, 0]);
    p.extend(data);
    [b"JDWP-Handshake".to_vec(), p].concat()
}

/// NTP mode 4 reply (RFC 5905 §7.3) echoing our transmit timestamp as its origin.
fn ntp_reply(first: u8, stratum: u8) -> Vec<u8> {
    let mut v = vec![first, stratum, 6, 0xe9];
    v.extend([0; 8]); // root delay, root dispersion
    v.extend([0x7f, 0x7f, 0x01, 0x01]); // reference id
    v.extend([0; 8]); // reference timestamp
    v.extend(*b"RMSVNTP!"); // origin = our transmit
    v.extend([0x11; 16]); // receive, transmit
    v
}

/// ONC RPC accepted reply (RFC 5531 §9) with PROG_MISMATCH low/high, optionally record-marked.
fn rpc_mismatch(xid: &[u8; 4], low: u32, high: u32, tcp: bool) -> Vec<u8> {
    let mut v = xid.to_vec();
    for w in [1u32, 0, 0, 0, 2, low, high] {
        v.extend(w.to_be_bytes());
    }
    if tcp {
        [(0x8000_0000u32 | v.len() as u32).to_be_bytes().to_vec(), v].concat()
    } else {
        v
    }
}

fn http(head: &str, body: &str) -> Vec<u8> {
    format!("{head}\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

const ES_ROOT: &str = "{\n  \"name\" : \"h14\",\n  \"cluster_name\" : \"lab\",\n  \"version\" : {\n    \"number\" : \"8.11.1\",\n    \"build_flavor\" : \"default\",\n    \"lucene_version\" : \"9.8.0\"\n  },\n  \"tagline\" : \"You Know, for Search\"\n}\n";
const K8S_VERSION: &str = "{\n  \"major\": \"1\",\n  \"minor\": \"28\",\n  \"gitVersion\": \"v1.28.4\",\n  \"gitTreeState\": \"clean\",\n  \"goVersion\": \"go1.20.11\",\n  \"compiler\": \"gc\",\n  \"platform\": \"linux/amd64\"\n}";
const K8S_PATHS: &str =
    "{\n  \"paths\": [\n    \"/api\",\n    \"/api/v1\",\n    \"/apis\",\n    \"/healthz\",\n    \"/version\"\n  ]\n}";

// ---------------------------------------------------------------------------------- the table

/// What a fixture must be identified as.
struct Want {
    service: &'static str,
    product: Option<&'static str>,
    version: Option<&'static str>,
    info: Option<&'static str>,
}

const fn want(
    service: &'static str,
    product: Option<&'static str>,
    version: Option<&'static str>,
    info: Option<&'static str>,
) -> Want {
    Want { service, product, version, info }
}

/// (probe, transport, answer, expected)
fn fixtures() -> Vec<(&'static str, Transport, Vec<u8>, Want)> {
    use Transport::{Tcp, Udp};
    vec![
        (
            "ldap-rootdse",
            Tcp,
            ldap_rootdse(&["top", "OpenLDAProotDSE"]),
            want("ldap", Some("OpenLDAP"), None, None),
        ),
        ("smb2-negotiate", Tcp, smb2_negotiate_response(0x0302), want("microsoft-ds", None, None, Some("SMB dialect 3.0.2"))),
        ("smb2-negotiate", Tcp, smb2_negotiate_response(0x0210), want("microsoft-ds", None, None, Some("SMB dialect 2.1"))),
        (
            "netbios-session",
            Tcp,
            [vec![0x82, 0, 0, 0], smb2_negotiate_response(0x0302)].concat(),
            want("netbios-ssn", None, None, Some("SMB dialect 3.0.2")),
        ),
        (
            "rdp-negotiate",
            Tcp,
            b"\x03\x00\x00\x13\x0e\xd0\x00\x00\x12\x34\x00\x02\x1f\x08\x00\x02\x00\x00\x00".to_vec(),
            want("ms-wbt-server", None, None, Some("security: CredSSP")),
        ),
        (
            "rdp-negotiate",
            Tcp,
            b"\x03\x00\x00\x13\x0e\xd0\x00\x00\x00\x00\x00\x02\x00\x08\x00\x01\x00\x00\x00".to_vec(),
            want("ms-wbt-server", None, None, Some("security: TLS")),
        ),
        (
            "mssql-prelogin",
            Tcp,
            tds_prelogin(15, 0, 2000),
            want("ms-sql-s", Some("Microsoft SQL Server 2019"), Some("15.0.2000"), None),
        ),
        (
            "mssql-prelogin",
            Tcp,
            tds_prelogin(16, 0, 1000),
            want("ms-sql-s", Some("Microsoft SQL Server 2022"), Some("16.0.1000"), None),
        ),
        (
            "oracle-tns-version",
            Tcp,
            tns_refuse(0x1300_0000),
            want("oracle-tns", Some("Oracle TNS listener"), Some("19"), Some("unauthorized; VSNNUM 318767104")),
        ),
        (
            "oracle-tns-version",
            Tcp,
            tns_refuse(0x1500_0000),
            want("oracle-tns", Some("Oracle TNS listener"), Some("21"), Some("unauthorized; VSNNUM 352321536")),
        ),
        ("mongodb-buildinfo", Tcp, mongo_buildinfo("7.0.5"), want("mongodb", Some("MongoDB"), Some("7.0.5"), None)),
        (
            "amqp-header",
            Tcp,
            amqp_connection_start("RabbitMQ", "3.10.8"),
            want("amqp", Some("RabbitMQ"), Some("3.10.8"), Some("AMQP 0-9-1")),
        ),
        (
            "amqp-header",
            Tcp,
            amqp_connection_start("qpidd", "1.39.0"),
            want("amqp", Some("qpidd"), Some("1.39.0"), Some("AMQP 0-9-1")),
        ),
        ("amqp-header", Tcp, b"AMQP\x00\x00\x09\x01".to_vec(), want("amqp", None, None, None)),
        (
            "sip-options",
            Tcp,
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP rustmap.invalid:5060;branch=z9hG4bK-rustmap-1\r\nCSeq: 42 OPTIONS\r\nServer: kamailio (5.6.3 (x86_64/linux))\r\nContent-Length: 0\r\n\r\n".to_vec(),
            want("sip", Some("Kamailio SIP proxy"), Some("5.6.3"), None),
        ),
        (
            "sip-options",
            Udp,
            b"SIP/2.0 200 OK\r\nCSeq: 42 OPTIONS\r\nUser-Agent: Asterisk PBX 20.5.0\r\nContent-Length: 0\r\n\r\n".to_vec(),
            want("sip", Some("Asterisk PBX"), Some("20.5.0"), None),
        ),
        (
            "rtsp-options",
            Tcp,
            b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nDate: Mon, Jan 01 2024 00:00:00 GMT\r\nPublic: OPTIONS, DESCRIBE, SETUP, TEARDOWN, PLAY, PAUSE, GET_PARAMETER, SET_PARAMETER\r\nServer: LIVE555 Streaming Media v2023.01.19\r\n\r\n".to_vec(),
            want("rtsp", Some("LIVE555 Streaming Media"), Some("2023.01.19"), None),
        ),
        (
            "pptp-start",
            Tcp,
            pptp_reply("local", "linux", 1),
            want("pptp", Some("linux"), None, Some("firmware 1")),
        ),
        (
            "http-version",
            Tcp,
            http("HTTP/1.1 200 OK\r\nContent-Type: application/json", K8S_VERSION),
            want("http", Some("Kubernetes API server"), Some("1.28.4"), Some("platform linux/amd64")),
        ),
        (
            "http-get",
            Tcp,
            http("HTTP/1.1 200 OK\r\nAudit-Id: 1\r\nContent-Type: application/json", K8S_PATHS),
            want("http", Some("Kubernetes API server"), None, None),
        ),
        (
            "http-get",
            Tcp,
            http("HTTP/1.1 200 OK\r\nX-elastic-product: Elasticsearch\r\ncontent-type: application/json", ES_ROOT),
            want("http", Some("Elasticsearch REST API"), Some("8.11.1"), None),
        ),
        (
            "http-get",
            Tcp,
            http("HTTP/1.1 404 Not Found\r\nApi-Version: 1.43\r\nContent-Type: application/json\r\nDocker-Experimental: false\r\nOstype: linux\r\nServer: Docker/24.0.7 (linux)", "{\"message\":\"page not found\"}\n"),
            want("docker", Some("Docker Engine API"), Some("24.0.7"), Some("API 1.43")),
        ),
        (
            "http-get",
            Tcp,
            http("HTTP/1.1 200 OK\r\nServer: CouchDB/3.3.2 (Erlang OTP/24)\r\nContent-Type: application/json", "{\"couchdb\":\"Welcome\",\"version\":\"3.3.2\",\"vendor\":{\"name\":\"The Apache Software Foundation\"}}\n"),
            want("http", Some("Apache CouchDB"), Some("3.3.2"), None),
        ),
        (
            "http-get",
            Tcp,
            http("HTTP/1.1 403 Forbidden\r\nX-Content-Type-Options: nosniff\r\nX-Jenkins: 2.426.1\r\nX-Hudson: 1.395", ""),
            want("http", Some("Jenkins"), Some("2.426.1"), None),
        ),
        (
            "http-get",
            Tcp,
            http("HTTP/1.1 200 \r\nContent-Type: text/html;charset=UTF-8", "<!DOCTYPE html>\n<html><head><title>Apache Tomcat/9.0.58</title></head></html>"),
            want("http", Some("Apache Tomcat"), Some("9.0.58"), None),
        ),
        (
            "http-get",
            Tcp,
            http("HTTP/1.1 200 OK\r\nServer: Caddy\r\nContent-Type: text/html", "<html><head><title>Lab dashboard</title></head></html>"),
            want("http", Some("Caddy"), None, Some("Lab dashboard")),
        ),
        (
            "http-get",
            Tcp,
            http("HTTP/1.0 200 OK\r\nContent-Type: text/html", "<html><head><TITLE>Router login</TITLE></head></html>"),
            want("http", None, None, Some("Router login")),
        ),
        (
            "x11-setup",
            Tcp,
            x11_success(12_101_007, "The X.Org Foundation"),
            want("X11", Some("X.Org X server"), None, Some("open; release 12101007")),
        ),
        (
            "x11-setup",
            Tcp,
            x11_failed("Authorization required, but no authorization protocol specified\n"),
            want("X11", None, None, Some("access denied: Authorization required, but no authorization protocol specified")),
        ),
        (
            "jdwp-version",
            Tcp,
            jdwp_version("17.0", "17.0.9", "OpenJDK 64-Bit Server VM"),
            want("jdwp", Some("Java Debug Wire Protocol"), Some("17.0"), Some("JVM 17.0.9, OpenJDK 64-Bit Server VM")),
        ),
        ("rpc-portmap", Tcp, rpc_mismatch(b"RMRP", 2, 4, true), want("rpcbind", None, Some("2-4"), Some("RPC #100000"))),
        ("rpc-portmap", Udp, rpc_mismatch(b"RMRP", 2, 4, false), want("rpcbind", None, Some("2-4"), Some("RPC #100000"))),
        ("rpc-nfs", Tcp, rpc_mismatch(b"RMNF", 3, 4, true), want("nfs", None, Some("3-4"), Some("RPC #100003"))),
        ("ntp-client", Udp, ntp_reply(0x24, 10), want("ntp", None, None, Some("v4; stratum 10"))),
        ("ntp-client", Udp, ntp_reply(0x1c, 2), want("ntp", None, None, Some("v3; stratum 2"))),
        (
            "netbios-nbstat",
            Udp,
            nbstat_response(&[
                nb_entry("H14", 0x00, false),
                nb_entry("H14", 0x03, false),
                nb_entry("H14", 0x20, false),
                nb_entry("RUSTMAPLAB", 0x00, true),
                nb_entry("RUSTMAPLAB", 0x1e, true),
            ], [0; 6]),
            want("netbios-ns", Some("Samba nmbd"), None, Some("workgroup: RUSTMAPLAB")),
        ),
        (
            "netbios-nbstat",
            Udp,
            nbstat_response(&[nb_entry("WIN-HOST", 0x00, false), nb_entry("CORP", 0x00, true)], [0x52, 0x54, 0, 0x12, 0x34, 0x56]),
            want("netbios-ns", None, None, Some("workgroup: CORP")),
        ),
        ("null", Tcp, b"@RSYNCD: 31.0 sha512 sha256 sha1 md5 md4\n".to_vec(), want("rsync", None, None, Some("protocol version 31.0"))),
        ("null", Tcp, b"@RSYNCD: 30.0\n".to_vec(), want("rsync", None, None, Some("protocol version 30.0"))),
    ]
}

fn index(db: &ProbeDb, t: Transport, name: &str) -> usize {
    db.index_of(t, name).unwrap_or_else(|| panic!("no {t:?} probe {name}"))
}

#[test]
fn every_fixture_is_identified() {
    let db = ProbeDb::builtin();
    for (probe, t, answer, w) in fixtures() {
        let m = match_response(&db, index(&db, t, probe), &answer)
            .unwrap_or_else(|| panic!("{probe}: no match for {:?}", String::from_utf8_lossy(&answer)));
        let got = (m.service.as_str(), m.product.as_deref(), m.version.as_deref(), m.info.as_deref());
        assert_eq!(got, (w.service, w.product, w.version, w.info), "{probe}: {:?}", String::from_utf8_lossy(&answer));
        assert!(!m.soft, "{probe}");
    }
}

#[test]
fn fixture_details_hostname_os_cpe() {
    let db = ProbeDb::builtin();
    let f = fixtures();
    let get = |i: usize| match_response(&db, index(&db, f[i].1, f[i].0), &f[i].2).unwrap();
    let nb = f.iter().position(|x| x.0 == "netbios-nbstat").unwrap();
    assert_eq!(get(nb).hostname.as_deref(), Some("H14"));
    let pptp = f.iter().position(|x| x.0 == "pptp-start").unwrap();
    assert_eq!(get(pptp).hostname.as_deref(), Some("local"));
    let sip = f.iter().position(|x| x.0 == "sip-options").unwrap();
    assert_eq!(get(sip).os.as_deref(), Some("Linux"));
    assert_eq!(get(sip).cpe, ["cpe:/a:kamailio:kamailio:5.6.3"]);
    let mongo = f.iter().position(|x| x.0 == "mongodb-buildinfo").unwrap();
    assert_eq!(get(mongo).cpe, ["cpe:/a:mongodb:mongodb:7.0.5"]);
}

#[test]
fn truncated_and_foreign_answers_are_not_misread() {
    let db = ProbeDb::builtin();
    for (probe, t, answer, w) in fixtures() {
        // Half an answer: whatever matches must still be the right service (or nothing).
        let half = &answer[..answer.len() / 2];
        if let Some(m) = match_response(&db, index(&db, t, probe), half) {
            // Half of an HTTP API's answer (no Server header yet) is still HTTP; half of an
            // RPC program's reply is still RPC.
            let broader = (w.service == "docker" && m.service == "http")
                || (m.service == "rpc" && ["rpcbind", "nfs"].contains(&w.service));
            assert!(
                m.service == w.service || broader,
                "{probe}: {} for half of {}: {:?}",
                m.service,
                w.service,
                String::from_utf8_lossy(half)
            );
        }
    }
    // Another transaction's RPC reply, another request id's MongoDB reply: not ours.
    let mut other = rpc_mismatch(b"XXXX", 2, 4, true);
    assert!(match_response(&db, index(&db, Transport::Tcp, "rpc-portmap"), &other).is_none());
    other = mongo_buildinfo("7.0.5");
    other[8..12].copy_from_slice(b"XXXX");
    assert!(match_response(&db, index(&db, Transport::Tcp, "mongodb-buildinfo"), &other).is_none());
    // An NTP packet that does not echo our timestamp.
    let mut ntp = ntp_reply(0x24, 2);
    ntp[24..32].copy_from_slice(b"someone!");
    assert!(match_response(&db, index(&db, Transport::Udp, "ntp-client"), &ntp).is_none());
}

#[test]
fn probes_are_well_formed_requests() {
    let db = ProbeDb::builtin();
    let payload = |t, n| db.probes()[index(&db, t, n)].payload.clone();
    // BER: the outer LDAPMessage length covers the rest.
    let ldap = payload(Transport::Tcp, "ldap-rootdse");
    assert_eq!(ldap[1] as usize, ldap.len() - 2);
    assert_eq!(ldap[6] as usize, ldap.len() - 7, "SearchRequest length");
    // Direct-TCP SMB2: 24-bit length of the SMB2 message; 64-byte header; 4 dialects.
    let smb = payload(Transport::Tcp, "smb2-negotiate");
    assert_eq!(u32::from_be_bytes([0, smb[1], smb[2], smb[3]]) as usize, smb.len() - 4);
    assert_eq!(&smb[4..8], b"\xfeSMB");
    assert_eq!(u16::from_le_bytes([smb[70], smb[71]]), 4);
    // NetBIOS session request (68 bytes of names) then the same SMB2 message.
    let nbs = payload(Transport::Tcp, "netbios-session");
    assert_eq!((nbs[0], u16::from_be_bytes([nbs[2], nbs[3]])), (0x81, 68));
    assert_eq!(&nbs[72..], &smb[..]);
    // TPKT length; TDS length; TNS length and connect-data offset/length.
    let rdp = payload(Transport::Tcp, "rdp-negotiate");
    assert_eq!(u16::from_be_bytes([rdp[2], rdp[3]]) as usize, rdp.len());
    let tds = payload(Transport::Tcp, "mssql-prelogin");
    assert_eq!(u16::from_be_bytes([tds[2], tds[3]]) as usize, tds.len());
    let tns = payload(Transport::Tcp, "oracle-tns-version");
    assert_eq!(u16::from_be_bytes([tns[0], tns[1]]) as usize, tns.len());
    let (cd_len, cd_off) =
        (u16::from_be_bytes([tns[24], tns[25]]) as usize, u16::from_be_bytes([tns[26], tns[27]]) as usize);
    assert_eq!(&tns[cd_off..cd_off + cd_len], b"(CONNECT_DATA=(COMMAND=version))");
    // MongoDB: message length, BSON length.
    let mongo = payload(Transport::Tcp, "mongodb-buildinfo");
    assert_eq!(u32::from_le_bytes(mongo[..4].try_into().unwrap()) as usize, mongo.len());
    assert_eq!(u32::from_le_bytes(mongo[21..25].try_into().unwrap()) as usize, mongo.len() - 21);
    // RPC: record mark = length of the call; NTP 48 bytes; PPTP 156; JDWP command length 11.
    for n in ["rpc-portmap", "rpc-nfs"] {
        let rpc = payload(Transport::Tcp, n);
        assert_eq!(u32::from_be_bytes(rpc[..4].try_into().unwrap()), 0x8000_0000 | (rpc.len() as u32 - 4), "{n}");
    }
    assert_eq!(payload(Transport::Tcp, "rpc-portmap")[4..], payload(Transport::Udp, "rpc-portmap")[..]);
    assert_eq!(payload(Transport::Udp, "ntp-client").len(), 48);
    assert_eq!(payload(Transport::Tcp, "pptp-start").len(), 156);
    let jdwp = payload(Transport::Tcp, "jdwp-version");
    assert_eq!(u32::from_be_bytes(jdwp[14..18].try_into().unwrap()) as usize, jdwp.len() - 14);
    // SIP: the UDP and TCP requests differ only in the Via transport.
    let (st, su) = (payload(Transport::Tcp, "sip-options"), payload(Transport::Udp, "sip-options"));
    assert_eq!(String::from_utf8(st).unwrap().replace("SIP/2.0/TCP", "SIP/2.0/UDP"), String::from_utf8(su).unwrap());
}

// ------------------------------------------------------------------- through the whole detector

/// Does `req` look like the request of `probe`'s protocol? Each responder answers only that,
/// as a server would (the checks are on the protocol's framing, not on our exact bytes).
fn accepts(probe: &str, req: &[u8]) -> bool {
    let be16 = |i: usize| req.get(i..i + 2).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize);
    match probe {
        "ldap-rootdse" => req.first() == Some(&0x30) && req.get(5) == Some(&0x63),
        "smb2-negotiate" => req.get(4..8) == Some(b"\xfeSMB") && req.get(16..18) == Some(&[0, 0]),
        "netbios-session" => req.first() == Some(&0x81),
        "rdp-negotiate" => req.starts_with(b"\x03\x00") && req.get(5) == Some(&0xe0),
        "mssql-prelogin" => req.first() == Some(&0x12) && be16(2) == Some(req.len()),
        "oracle-tns-version" => req.get(4) == Some(&1) && be16(0) == Some(req.len()),
        "mongodb-buildinfo" => {
            req.get(12..16) == Some(&2013i32.to_le_bytes()) && req.windows(9).any(|w| w == b"buildInfo")
        }
        "amqp-header" => req.starts_with(b"AMQP"),
        "sip-options" => req.starts_with(b"OPTIONS sip:") && req.ends_with(b"\r\n\r\n"),
        "rtsp-options" => req.starts_with(b"OPTIONS ") && req.windows(8).any(|w| w == b"RTSP/1.0"),
        "pptp-start" => req.len() == 156 && req.get(4..8) == Some(b"\x1a\x2b\x3c\x4d"),
        "http-version" => req.starts_with(b"GET /version "),
        "http-get" => req.starts_with(b"GET / "),
        "x11-setup" => req.first() == Some(&b'l') && req.get(2) == Some(&11),
        "jdwp-version" => req.starts_with(b"JDWP-Handshake"),
        "rpc-portmap" => req.len() >= 44 && req.get(12..20) == Some(&[0, 0, 0, 2, 0, 1, 0x86, 0xa0]),
        "rpc-nfs" => req.len() >= 44 && req.get(16..20) == Some(&[0, 1, 0x86, 0xa3]),
        "null" => true,
        _ => false,
    }
}

/// A loopback TCP server speaking one fixture: banner services greet, others answer a request
/// they accept.
async fn tcp_responder(probe: &'static str, answer: Vec<u8>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let answer = Arc::clone(&answer);
            tokio::spawn(async move {
                if probe == "null" {
                    let _ = s.write_all(&answer).await;
                } else {
                    let mut buf = vec![0u8; 4096];
                    let mut n = 0;
                    // Read until the request is complete (or 2 s pass): probes arrive in one write.
                    while n < buf.len() {
                        match tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf[n..])).await {
                            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
                            Ok(Ok(k)) => n += k,
                        }
                        if accepts(probe, &buf[..n]) {
                            let _ = s.write_all(&answer).await;
                            break;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_secs(3)).await;
            });
        }
    });
    addr
}

async fn udp_responder(probe: &'static str, answer: Vec<u8>) -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            let req = &buf[..n];
            let ok = match probe {
                "sip-options" => req.starts_with(b"OPTIONS sip:"),
                "ntp-client" => n == 48 && req[0] & 7 == 3,
                "netbios-nbstat" => req.get(n - 4..) == Some(b"\x00\x21\x00\x01"),
                "rpc-portmap" => req.get(12..16) == Some(&[0, 1, 0x86, 0xa0]),
                _ => false,
            };
            if ok {
                let _ = sock.send_to(&answer, from).await;
            }
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detector_identifies_every_fixture_server() {
    // Every fixture on a random loopback port: no probe is "made for" it, so each service is
    // found by the second wave, at an intensity that sends every probe.
    let detector = Detector::new(ProbeDb::builtin(), DetectOptions { intensity: 9, ..Default::default() });
    let mut runs = Vec::new();
    for (probe, t, answer, w) in fixtures() {
        let addr = match t {
            Transport::Tcp => tcp_responder(probe, answer).await,
            Transport::Udp => udp_responder(probe, answer).await,
        };
        runs.push((probe, t, addr, w));
    }
    let detector = Arc::new(detector);
    let mut set = tokio::task::JoinSet::new();
    for (probe, t, addr, w) in runs {
        let d = Arc::clone(&detector);
        set.spawn(async move { (probe, d.detect(addr, t, Some(Duration::from_micros(100))).await, w) });
    }
    let mut checked = 0;
    while let Some(r) = set.join_next().await {
        let (probe, out, w) = r.unwrap();
        let s = out.service.unwrap_or_else(|| panic!("{probe}: nothing identified"));
        assert_eq!(
            (s.name.as_str(), s.product.as_deref(), s.version.as_deref(), s.extrainfo.as_deref()),
            (w.service, w.product, w.version, w.info),
            "{probe}"
        );
        checked += 1;
    }
    assert_eq!(checked, fixtures().len());
}
