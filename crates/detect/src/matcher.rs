//! Matching one probe's response against the rules that read it: the probe's own rules, then its
//! fallbacks', then (for TCP) the banner rules of `null`. Pure: bytes in, an identification out.
//!
//! The cost is bounded: responses are cut to [`MAX_RESPONSE`] bytes before they get here, and every
//! rule is a linear-time regex (see [`crate::db`]), so one response costs at most
//! rules × length steps, whatever its content.

use crate::db::{ProbeDb, Rule, Transport};
use crate::version::{cpe_version, cpe_without_version, is_version_token};
use rustmap_model::{ServiceInfo, ServiceMethod};

/// The most bytes of one response that are kept and matched.
pub const MAX_RESPONSE: usize = 16 * 1024;

/// What a rule said about a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identified {
    /// Service name.
    pub service: String,
    /// Only the service is known (a soft match); probing may go on.
    pub soft: bool,
    /// Product.
    pub product: Option<String>,
    /// Version.
    pub version: Option<String>,
    /// Extra information.
    pub info: Option<String>,
    /// Announced host name.
    pub hostname: Option<String>,
    /// Operating system.
    pub os: Option<String>,
    /// Device type.
    pub device: Option<String>,
    /// CPE names.
    pub cpe: Vec<String>,
    /// Seen through, or asking for, TLS.
    pub tunnel_ssl: bool,
}

impl Identified {
    /// The model's shape, with nmap's confidence: 10 for a match, 8 for a soft match.
    pub fn into_service(self) -> ServiceInfo {
        ServiceInfo {
            conf: if self.soft { 8 } else { 10 },
            name: self.service,
            method: ServiceMethod::Probed,
            product: self.product,
            version: self.version,
            extrainfo: self.info,
            hostname: self.hostname,
            ostype: self.os,
            devicetype: self.device,
            tunnel: self.tunnel_ssl.then(|| "ssl".to_string()),
            cpe: self.cpe,
            quic: None,
            fingerprint: None,
        }
    }
}

/// Apply one rule to an answer: `None` if its pattern does not match, else what it reports.
///
/// This is where the precision rule ([`crate::version`]) is enforced for every rule, built-in or
/// `--probe-db`: the version is kept only if every capture group its template writes as text is
/// shaped like a version, and a CPE keeps its version part only if the version was kept and
/// that part is shaped like a version too. Otherwise the version (and the CPE's version part)
/// is dropped; the product and the other fields stay.
pub fn apply_rule(rule: &Rule, data: &[u8]) -> Option<Identified> {
    let caps = rule.regex.captures(data)?;
    let groups: Vec<Option<&[u8]>> = caps.iter().map(|m| m.map(|m| m.as_bytes())).collect();
    let t = &rule.templates;
    let r = |x: &Option<crate::template::Template>| x.as_ref().and_then(|t| t.render(&groups));
    let version_ok = t.version.as_ref().is_none_or(|v| {
        v.text_groups().all(|i| match groups.get(i).copied().flatten() {
            // A group that took no part renders nothing (the field is left out if empty).
            None | Some(b"") => true,
            Some(bytes) => std::str::from_utf8(bytes).is_ok_and(is_version_token),
        })
    });
    let cpe = t
        .cpe
        .iter()
        .filter_map(|c| c.render(&groups))
        .map(|c| {
            // A CPE whose version group was empty ends in ':'; the bare product CPE is still right.
            let c = c.trim_end_matches(':');
            match cpe_version(c) {
                Some(v) if !version_ok || !is_version_token(v) => cpe_without_version(c).to_string(),
                _ => c.to_string(),
            }
        })
        .collect();
    Some(Identified {
        service: rule.service.clone(),
        soft: rule.soft,
        product: r(&t.product),
        version: if version_ok { r(&t.version) } else { None },
        info: r(&t.info),
        hostname: r(&t.hostname),
        os: r(&t.os),
        device: r(&t.device),
        cpe,
        tunnel_ssl: rule.tunnel_ssl,
    })
}

/// The probes whose rules read answers to probe `index`, in order.
fn readers(db: &ProbeDb, index: usize) -> Vec<usize> {
    let probes = db.probes();
    let Some(p) = probes.get(index) else { return Vec::new() };
    let mut v = vec![index];
    for f in &p.fallback {
        if let Some(i) = db.index_of(p.transport, f) {
            if !v.contains(&i) {
                v.push(i);
            }
        }
    }
    if p.transport == Transport::Tcp {
        for (i, q) in probes.iter().enumerate() {
            if q.is_null() && !v.contains(&i) {
                v.push(i);
            }
        }
    }
    v
}

/// Match the answer to probe `index`: the first hard match, else the first soft one.
pub fn match_response(db: &ProbeDb, index: usize, data: &[u8]) -> Option<Identified> {
    if data.is_empty() {
        return None;
    }
    let data = &data[..data.len().min(MAX_RESPONSE)];
    let mut soft = None;
    for i in readers(db, index) {
        for rule in &db.probes()[i].rules {
            if rule.soft && soft.is_some() {
                continue;
            }
            if let Some(found) = apply_rule(rule, data) {
                if !found.soft {
                    return Some(found);
                }
                soft = Some(found);
            }
        }
    }
    soft
}

/// Does any probe in `indices` have a hard rule for `service` (softmatch narrowing)?
pub fn probe_knows(db: &ProbeDb, index: usize, service: &str) -> bool {
    readers(db, index).iter().any(|i| db.probes()[*i].rules.iter().any(|r| !r.soft && r.service == service))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn db() -> ProbeDb {
        ProbeDb::builtin()
    }

    fn tcp(name: &str) -> usize {
        db().index_of(Transport::Tcp, name).unwrap()
    }

    fn udp(name: &str) -> usize {
        db().index_of(Transport::Udp, name).unwrap()
    }

    #[test]
    fn openssh_debian_banner() {
        let m = match_response(&db(), tcp("null"), b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n").unwrap();
        assert_eq!(m.service, "ssh");
        assert_eq!(m.product.as_deref(), Some("OpenSSH"));
        assert_eq!(m.version.as_deref(), Some("9.2p1 Debian 2+deb12u3"));
        assert_eq!(m.info.as_deref(), Some("protocol 2.0"));
        assert_eq!(m.os.as_deref(), Some("Linux"));
        assert_eq!(m.cpe, ["cpe:/a:openbsd:openssh:9.2p1", "cpe:/o:linux:linux_kernel"]);
    }

    #[test]
    fn unknown_ssh_software_still_names_ssh() {
        let m = match_response(&db(), tcp("null"), b"SSH-1.99-FancySSH 3\r\n").unwrap();
        assert_eq!((m.service.as_str(), m.product.as_deref()), ("ssh", None));
        assert_eq!(m.info.as_deref(), Some("protocol 1.99"));
    }

    #[test]
    fn banner_rules_read_answers_to_other_probes() {
        // An FTP server greets before it reads our GET.
        let m = match_response(&db(), tcp("http-get"), b"220 (vsFTPd 3.0.3)\r\n500 OOPS\r\n").unwrap();
        assert_eq!(
            (m.service.as_str(), m.product.as_deref(), m.version.as_deref()),
            ("ftp", Some("vsftpd"), Some("3.0.3"))
        );
        assert_eq!(m.cpe, ["cpe:/a:vsftpd:vsftpd:3.0.3"]);
    }

    #[test]
    fn mail_and_chat_banners() {
        let d = db();
        let n = tcp("null");
        let smtp = match_response(&d, n, b"220 h10.lab.test ESMTP RustMapLab-smtpd 1.0 ready\r\n").unwrap();
        assert_eq!((smtp.service.as_str(), smtp.hostname.as_deref()), ("smtp", Some("h10.lab.test")));
        assert_eq!(match_response(&d, n, b"+OK RustMapLab POP3 server ready\r\n").unwrap().service, "pop3");
        let imap = b"* OK [CAPABILITY IMAP4rev1] RustMapLab IMAP server ready\r\n";
        assert_eq!(match_response(&d, n, imap).unwrap().service, "imap");
        let irc = match_response(&d, n, b":h10.lab.test NOTICE * :*** Looking up your hostname...\r\n").unwrap();
        assert_eq!((irc.service.as_str(), irc.hostname.as_deref()), ("irc", Some("h10.lab.test")));
    }

    #[test]
    fn nginx_server_header_and_title() {
        let resp = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: x\r\nContent-Type: text/html\r\n\r\n<!doctype html>\n<html><head><title>RustMap lab h10</title></head></html>\n";
        let m = match_response(&db(), tcp("http-get"), resp).unwrap();
        assert_eq!((m.product.as_deref(), m.version.as_deref()), (Some("nginx"), Some("1.22.1")));
        assert_eq!(m.info.as_deref(), Some("RustMap lab h10"));
        assert_eq!(m.cpe, ["cpe:/a:igor_sysoev:nginx:1.22.1"]);
        assert!(!m.tunnel_ssl);
    }

    #[test]
    fn nginx_without_version_and_plain_http_on_tls_port() {
        let m = match_response(&db(), tcp("http-get"), b"HTTP/1.1 404 Not Found\r\nServer: nginx\r\n\r\n").unwrap();
        assert_eq!((m.product.as_deref(), m.version), (Some("nginx"), None));
        assert_eq!(m.cpe, ["cpe:/a:igor_sysoev:nginx"]);
        let tls = b"HTTP/1.1 400 Bad Request\r\nServer: nginx/1.22.1\r\nContent-Type: text/html\r\n\r\n<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>\r\n";
        let m = match_response(&db(), tcp("http-get"), tls).unwrap();
        assert!(m.tunnel_ssl);
        assert_eq!((m.service.as_str(), m.version.as_deref()), ("http", Some("1.22.1")));
    }

    #[test]
    fn other_http_servers() {
        let d = db();
        let g = tcp("http-get");
        let m = match_response(&d, g, b"HTTP/1.0 200 OK\r\nServer: RustMapLab-httpd/1.0\r\n\r\n").unwrap();
        assert_eq!((m.product.as_deref(), m.version.as_deref()), (Some("RustMapLab-httpd"), Some("1.0")));
        let m = match_response(&d, g, b"HTTP/1.1 200 OK\r\nServer: Apache/2.4.62 (Debian)\r\n\r\n").unwrap();
        assert_eq!(
            (m.product.as_deref(), m.version.as_deref(), m.info.as_deref()),
            (Some("Apache httpd"), Some("2.4.62"), Some("Debian"))
        );
        let m = match_response(&d, g, b"HTTP/1.1 302 Found\r\nLocation: /\r\n\r\n").unwrap();
        assert_eq!((m.service.as_str(), m.product), ("http", None));
    }

    #[test]
    fn tls_alert_is_a_soft_match() {
        let m = match_response(&db(), tcp("http-get"), b"\x15\x03\x01\x00\x02\x02\x32").unwrap();
        assert!(m.soft);
        assert_eq!(m.service, "ssl");
        assert!(probe_knows(&db(), tcp("http-get"), "http"));
        assert!(!probe_knows(&db(), tcp("redis-info"), "ssl"));
    }

    #[test]
    fn redis_memcached_postgres_mqtt() {
        let d = db();
        let info = b"$1000\r\n# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\n";
        let m = match_response(&d, tcp("redis-info"), info).unwrap();
        assert_eq!((m.product.as_deref(), m.version.as_deref()), (Some("Redis key-value store"), Some("7.0.15")));
        let m = match_response(&d, tcp("memcached-version"), b"VERSION 1.6.18\r\n").unwrap();
        assert_eq!((m.service.as_str(), m.version.as_deref()), ("memcached", Some("1.6.18")));
        // AuthenticationSASL (RFC 5802 mechanisms list), as PostgreSQL sends before checking the role.
        let sasl = b"R\x00\x00\x00\x17\x00\x00\x00\x0aSCRAM-SHA-256\x00\x00";
        let m = match_response(&d, tcp("postgres-startup"), sasl).unwrap();
        assert_eq!((m.service.as_str(), m.product.as_deref()), ("postgresql", Some("PostgreSQL DB")));
        let err = b"E\x00\x00\x00\x60SFATAL\x00VFATAL\x00C28000\x00Mno pg_hba.conf entry\x00\x00";
        let m = match_response(&d, tcp("postgres-startup"), err).unwrap();
        assert_eq!(m.version.as_deref(), Some("9.6 or later"));
        let mqtt = b"\x20\x02\x00\x00\x90\x03\x00\x01\x00\x31\x2d\x00\x13$SYS/broker/versionmosquitto version 2.0.11";
        let m = match_response(&d, tcp("mqtt-connect"), mqtt).unwrap();
        assert_eq!(
            (m.service.as_str(), m.product.as_deref(), m.version.as_deref()),
            ("mqtt", Some("Eclipse Mosquitto"), Some("2.0.11"))
        );
        let m = match_response(&d, tcp("mqtt-connect"), b"\x20\x02\x00\x00").unwrap();
        assert_eq!((m.service.as_str(), m.product), ("mqtt", None));
    }

    #[test]
    fn dns_version_bind_over_tcp_and_udp() {
        let d = db();
        // Header: id RM, QR+AA, 1 question, 1 answer; the question, then the TXT answer.
        let mut msg = b"RM\x84\x00\x00\x01\x00\x01\x00\x00\x00\x00\x07version\x04bind\x00\x00\x10\x00\x03".to_vec();
        msg.extend_from_slice(b"\xc0\x0c\x00\x10\x00\x03\x00\x00\x00\x00\x00\x0d\x0cdnsmasq-2.89");
        let m = match_response(&d, udp("dns-version"), &msg).unwrap();
        assert_eq!(
            (m.service.as_str(), m.product.as_deref(), m.version.as_deref()),
            ("domain", Some("dnsmasq"), Some("2.89"))
        );
        let mut framed = vec![0, msg.len() as u8];
        framed.extend_from_slice(&msg);
        let m = match_response(&d, tcp("dns-version-tcp"), &framed).unwrap();
        assert_eq!(m.product.as_deref(), Some("dnsmasq"));
        // REFUSED, no answer: still DNS.
        let m = match_response(&d, udp("dns-version"), b"RM\x80\x05\x00\x01\x00\x00\x00\x00\x00\x00").unwrap();
        assert_eq!((m.service.as_str(), m.product), ("domain", None));
    }

    #[test]
    fn snmp_get_response() {
        // GetResponse: sysDescr "Linux vm 6.1.0 #1 SMP x86_64", sysObjectID 1.3.6.1.4.1.8072.3.2.10,
        // sysName "h10.lab.test".
        let seq = |tag: u8, body: &[u8]| {
            let mut v = vec![tag, body.len() as u8];
            v.extend_from_slice(body);
            v
        };
        let oid = |last: u8| vec![0x06, 0x08, 0x2b, 6, 1, 2, 1, 1, last, 0];
        let vb1 = [oid(1), seq(0x04, b"Linux vm 6.1.0 #1 SMP x86_64")].concat();
        let vb2 = [oid(2), seq(0x06, &[0x2b, 6, 1, 4, 1, 0xbf, 0x08, 3, 2, 10])].concat();
        let vb3 = [oid(5), seq(0x04, b"h10.lab.test")].concat();
        let list = [seq(0x30, &vb1), seq(0x30, &vb2), seq(0x30, &vb3)].concat();
        let pdu = [b"\x02\x04RMSV\x02\x01\x00\x02\x01\x00".to_vec(), seq(0x30, &list)].concat();
        let msg = seq(0x30, &[b"\x02\x01\x01\x04\x06public".to_vec(), seq(0xa2, &pdu)].concat());
        let m = match_response(&db(), udp("snmp-v2c-public"), &msg).unwrap();
        assert_eq!((m.service.as_str(), m.product.as_deref()), ("snmp", Some("net-snmp")));
        assert_eq!((m.hostname.as_deref(), m.os.as_deref()), (Some("h10.lab.test"), Some("Linux")));
        // The request in the database is well-formed BER: every length matches what follows.
        let d = db();
        let req = &d.probes()[udp("snmp-v2c-public")].payload;
        assert_eq!(req[1] as usize, req.len() - 2);
        assert_eq!(req[14] as usize, req.len() - 15, "PDU length");
        assert_eq!(req[28] as usize, req.len() - 29, "varbind list length");
    }

    #[test]
    fn ldap_vendor_strings_end_where_the_next_element_starts() {
        // vendorName "389 Project", then the vendorVersion attribute (SEQUENCE 0x30 0x34): the
        // SEQUENCE's "0" and length "4" are printable but not part of the name.
        let entry = b"0\x5a\x02\x01\x07\x64\x55\x04\x00\x30\x51\x30\x19\x04\x0avendorName\x31\x0b\x04\x09389 Project\x30\x34\x04\x0dvendorVersion\x31\x23\x04\x21389-Directory/2.3.10 B2023.046.0000";
        let m = match_response(&db(), tcp("ldap-rootdse"), entry).unwrap();
        assert_eq!((m.product.as_deref(), m.version.as_deref()), (Some("389 Project"), Some("2.3.10")));
        // A version that ends the attribute, followed by SearchResultDone (0x30 0x0c 0x02...).
        let entry = b"0\x40\x02\x01\x07\x64\x3b\x04\x00\x30\x37\x30\x1b\x04\x0avendorName\x31\x0d\x04\x0bExample Inc\x30\x18\x04\x0dvendorVersion\x31\x07\x04\x05v4.2.10\x30\x0c\x02\x01\x07\x65\x07\x0a\x01\x00\x04\x00\x04\x00";
        let m = match_response(&db(), tcp("ldap-rootdse"), entry).unwrap();
        assert_eq!((m.product.as_deref(), m.version.as_deref()), (Some("Example Inc"), Some("v4.2.10")));
    }

    #[test]
    fn unrelated_bytes_match_nothing() {
        assert_eq!(match_response(&db(), tcp("null"), b"hello there\r\n"), None);
        assert_eq!(match_response(&db(), tcp("null"), b""), None);
        assert_eq!(match_response(&db(), udp("dns-version"), b"XX\x84\x00"), None);
    }

    #[test]
    fn hostile_input_is_matched_quickly_and_safely() {
        let d = db();
        // Worst cases for the patterns above: long runs that almost match, escapes, invalid UTF-8.
        let mut inputs: Vec<Vec<u8>> = vec![
            b"HTTP/1.1 200 ".iter().copied().chain(std::iter::repeat_n(b'\r', MAX_RESPONSE)).collect(),
            [b"SSH-2.0-".to_vec(), vec![b'a'; MAX_RESPONSE]].concat(),
            [b"R\x00\x00\x00".to_vec(), vec![0; MAX_RESPONSE]].concat(),
            (0..MAX_RESPONSE).map(|i| (i * 7 % 256) as u8).collect(),
            b"\x1b[2J\x1b]0;x\x07".repeat(MAX_RESPONSE / 8),
        ];
        inputs.push(
            b"HTTP/1.0 200 OK\r\nServer: ".iter().copied().chain(std::iter::repeat_n(b'<', MAX_RESPONSE * 4)).collect(),
        );
        for input in &inputs {
            for i in 0..d.probes().len() {
                let t = Instant::now();
                let m = match_response(&d, i, input);
                let took = t.elapsed();
                // Debug builds are slow; a release build is ~10x faster than this bound.
                assert!(took < Duration::from_millis(250), "probe {i} took {took:?}");
                if let Some(m) = m {
                    for f in [&m.product, &m.version, &m.info, &m.hostname].into_iter().flatten() {
                        assert!(!f.chars().any(char::is_control), "{f:?}");
                        assert!(f.chars().count() <= crate::template::MAX_FIELD);
                    }
                }
            }
        }
    }
}
