//! Issue 18's SMB and RDP scripts against the namespace lab's real daemons (`tests/lab/lab.sh
//! up`): Samba's smbd (139, 445) and xrdp (3389) on h14. Each script's output is checked
//! against what the lab knows independently of RustMap: smb.conf and xrdp.ini as lab.sh wrote
//! them, the installed Samba package's version, the h14 namespace's host name, the test's clock
//! — and nmap's script of the same name.
//!
//! The scanner runs inside the lab's scanner namespace, which has no route out of the lab.
//! Without the lab these tests skip with a reason — except under `CI=true`, where they fail.

mod common;

use common::{conf_value, in_lab, lab, prefix, run_ok, script_block};
use std::process::Command;

const H14: &str = "198.18.0.14";

fn smb_conf(key: &str) -> String {
    conf_value("h14/samba/smb.conf", key)
}

/// The block's lines without the `|`/`|_` prefix and trailing spaces.
fn body(block: &[String]) -> Vec<String> {
    block.iter().map(|l| l[2..].trim_end().to_string()).collect()
}

fn nmap_out(ports: &str, script: &str) -> String {
    let o = in_lab("nmap", &["-n", "-Pn", "-p", ports, "--script", script, H14]);
    assert!(o.status.success(), "nmap: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Samba's protocol names, lowest first, with the dialect each stands for in our output.
const SAMBA_PROTOCOLS: &[(&str, &str)] = &[
    ("NT1", "NT LM 0.12 (SMBv1) [dangerous, but default]"),
    ("SMB2_02", "2:0:2"),
    ("SMB2_10", "2:1:0"),
    ("SMB3_00", "3:0:0"),
    ("SMB3_02", "3:0:2"),
    ("SMB3_11", "3:1:1"),
];

/// The dialects smb.conf's `server min protocol` .. `server max protocol` allow.
fn configured_dialects() -> Vec<&'static str> {
    let min = smb_conf("server min protocol");
    let max = smb_conf("server max protocol");
    let idx = |name: &str| SAMBA_PROTOCOLS.iter().position(|(p, _)| *p == name).unwrap_or_else(|| panic!("{name}"));
    SAMBA_PROTOCOLS[idx(&min)..=idx(&max)].iter().map(|(_, d)| *d).collect()
}

/// Seconds since the epoch of a `YYYY-MM-DDTHH:MM:SS` UTC time (with `date`).
fn epoch(stamp: &str) -> i64 {
    let o = Command::new("date").args(["-u", "-d", &format!("{stamp}Z"), "+%s"]).output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap_or_else(|_| panic!("bad time {stamp}"))
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn smb_protocols_lists_the_dialects_smb_conf_allows() {
    let Some(_lab) = lab() else { return };
    let want = configured_dialects();
    assert!(want.len() >= 2, "{want:?}");
    for port in ["445", "139"] {
        let out = run_ok(&["-sS", "-n", "--no-db", "-p", port, "--script", "smb-protocols", H14]);
        let got = body(&script_block(&out, "smb-protocols"));
        let mut expected = vec!["smb-protocols:".to_string(), "  dialects:".to_string()];
        expected.extend(want.iter().map(|d| format!("    {d}")));
        assert_eq!(got, expected, "port {port}:\n{out}");
    }
    // nmap's smb-protocols lists the same dialects (nmap 7.93 prints 2:0:2 as 202).
    let nmap = nmap_out("445", "smb-protocols");
    let theirs: Vec<String> =
        body(&script_block(&nmap, "smb-protocols")).into_iter().skip(2).map(|l| l.trim().to_string()).collect();
    let ours: Vec<String> =
        want.iter().map(|d| if d.contains("SMBv1") { d.to_string() } else { d.replace(':', "") }).collect();
    assert_eq!(theirs, ours, "nmap:\n{nmap}");
}

#[test]
fn smb_security_mode_reports_sambas_signing_and_smb1_security() {
    let Some(_lab) = lab() else { return };
    // server signing = auto: signing offered, not required (SMB2's SecurityMode 0x01, SMB1's
    // "security signatures enabled" without "required"); Samba is user-level with
    // challenge/response (the only modes Samba 4 has).
    assert_eq!(smb_conf("server signing"), "auto");
    let max = *configured_dialects().last().unwrap();
    let smb1 = configured_dialects()[0].contains("SMBv1");
    let out = run_ok(&["-sS", "-n", "--no-db", "-p", "445", "--script", "smb-security-mode", H14]);
    let got = body(&script_block(&out, "smb-security-mode"));
    let mut expected = vec!["smb-security-mode:".to_string()];
    if smb1 {
        expected.extend(
            ["  authentication_level: user", "  challenge_response: supported", "  message_signing: supported"]
                .map(String::from),
        );
    }
    expected.push(format!("  {max}: Message signing enabled but not required"));
    assert_eq!(got, expected, "{out}");
    // nmap: smb2-security-mode on the same dialect, and smb-security-mode's SMB1 lines.
    let nmap = nmap_out("445", "smb2-security-mode,smb-security-mode");
    let n2 = body(&script_block(&nmap, "smb2-security-mode"));
    assert_eq!(n2[1].trim(), format!("{}:", max.replace(':', "")), "nmap:\n{nmap}");
    assert_eq!(n2[2].trim(), "Message signing enabled but not required", "nmap:\n{nmap}");
    if smb1 {
        let n1 = body(&script_block(&nmap, "smb-security-mode"));
        for line in &expected[1..4] {
            assert!(n1.contains(line), "{line} not in nmap's:\n{nmap}");
        }
    }
}

#[test]
fn smb2_time_reads_the_servers_clock() {
    let Some(_lab) = lab() else { return };
    let out = run_ok(&["-sS", "-n", "--no-db", "-p", "445", "--script", "smb2-time", H14]);
    let got = body(&script_block(&out, "smb2-time"));
    assert_eq!(got.len(), 3, "{out}");
    // smbd shares the machine's clock: its SystemTime is the test's now.
    let date = got[1].strip_prefix("  date: ").unwrap_or_else(|| panic!("{out}"));
    assert!((epoch(date) - now()).abs() <= 5, "date {date} vs now {}", now());
    // Samba sends ServerStartTime 0.
    assert_eq!(got[2], "  start_date: N/A", "{out}");
    let nmap = nmap_out("445", "smb2-time");
    let n = body(&script_block(&nmap, "smb2-time"));
    let theirs = n[1].trim().strip_prefix("date: ").unwrap_or_else(|| panic!("nmap:\n{nmap}"));
    assert!((epoch(theirs) - epoch(date)).abs() <= 5, "nmap {theirs} vs ours {date}");
    assert_eq!(n[2].trim(), "start_date: N/A", "nmap:\n{nmap}");
}

#[test]
fn smb_os_discovery_reports_sambas_names_version_and_clock() {
    let Some(_lab) = lab() else { return };
    let name = smb_conf("netbios name");
    // The namespace's host name: Samba's DNS computer name (no DNS domain in the lab).
    let ns = format!("{}-h14", prefix());
    let o = Command::new("ip").args(["netns", "exec", &ns, "hostname"]).output().unwrap();
    let hostname = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let dpkg = Command::new("dpkg-query").args(["-W", "-f", "${Version}", "samba"]).output().unwrap();
    // 2:4.17.12+dfsg-0+deb12u4 -> 4.17.12, which Samba reports as "Samba 4.17.12-Debian".
    let full = String::from_utf8_lossy(&dpkg.stdout).into_owned();
    let version = full.split(':').next_back().unwrap().split(['+', '-']).next().unwrap().to_string();

    let out = run_ok(&["-sS", "-n", "--no-db", "-p", "445", "--script", "smb-os-discovery", H14]);
    let got = body(&script_block(&out, "smb-os-discovery"));
    let field = |k: &str| {
        got.iter()
            .find_map(|l| l.strip_prefix(&format!("  {k}: ")))
            .unwrap_or_else(|| panic!("no {k} in:\n{out}"))
            .to_string()
    };
    if configured_dialects()[0].contains("SMBv1") {
        // SMB1 session setup: Samba's NativeOS / NativeLanMan.
        assert_eq!(field("OS"), format!("Windows 6.1 (Samba {version}-Debian)"), "{out}");
    }
    // NTLMSSP CHALLENGE: the NetBIOS name; a standalone server is its own domain.
    assert_eq!(smb_conf("server role"), "standalone server");
    assert_eq!(field("NetBIOS computer name"), name, "{out}");
    assert_eq!(field("NetBIOS domain name"), name, "{out}");
    assert_eq!(field("FQDN"), hostname, "{out}");
    assert_eq!(field("Computer name"), hostname.split('.').next().unwrap(), "{out}");
    // Samba announces NTLM version 6.1, build 0.
    assert_eq!(field("OS version"), "6.1.0", "{out}");
    let t = field("System time");
    assert!((epoch(&t) - now()).abs() <= 5, "System time {t} vs now {}", now());

    // nmap's smb-os-discovery (SMB1 only in nmap 7.93) reads the same OS and names.
    if configured_dialects()[0].contains("SMBv1") {
        let nmap = nmap_out("445", "smb-os-discovery");
        let n = body(&script_block(&nmap, "smb-os-discovery"));
        assert!(n.contains(&format!("  OS: {}", field("OS"))), "nmap:\n{nmap}");
        assert!(n.contains(&format!("  FQDN: {hostname}")), "nmap:\n{nmap}");
        assert!(n.iter().any(|l| l.starts_with(&format!("  NetBIOS computer name: {name}"))), "nmap:\n{nmap}");
    }
}

/// The protocols xrdp selects for each `security_layer` (xrdp 0.9 has no CredSSP or RDSTLS).
fn xrdp_layers(security_layer: &str) -> Vec<&'static str> {
    match security_layer {
        "negotiate" => vec!["Native RDP", "SSL"],
        "tls" => vec!["SSL"],
        "rdp" => vec!["Native RDP"],
        other => panic!("security_layer={other}"),
    }
}

#[test]
fn rdp_enum_encryption_matches_xrdp_ini() {
    let Some(_lab) = lab() else { return };
    let layer = conf_value("h14/xrdp/xrdp.ini", "security_layer");
    let crypt = conf_value("h14/xrdp/xrdp.ini", "crypt_level");
    let out = run_ok(&["-sS", "-n", "--no-db", "-p", "3389", "--script", "rdp-enum-encryption", H14]);
    let got = body(&script_block(&out, "rdp-enum-encryption"));
    let mut expected = vec!["rdp-enum-encryption:".to_string(), "  Security layer".to_string()];
    let layers = xrdp_layers(&layer);
    expected.extend(layers.iter().map(|l| format!("    {l}: SUCCESS")));
    if layers.contains(&"Native RDP") {
        // xrdp's crypt_level: low = 40-bit, client = what the client asks, high = 128-bit, fips.
        let (level, methods): (&str, &[&str]) = match crypt.as_str() {
            "high" => ("High", &["128-bit RC4"]),
            "fips" => ("FIPS Compliant", &["FIPS 140-1"]),
            "low" => ("Low", &["40-bit RC4"]),
            other => panic!("crypt_level={other}"),
        };
        expected.push(format!("  RDP Encryption level: {level}"));
        expected.extend(methods.iter().map(|m| format!("    {m}: SUCCESS")));
        expected.push("  RDP Protocol Version: RDP 5.x, 6.x, 7.x, or 8.x server".into());
    }
    assert_eq!(got, expected, "{out}");
    // nmap prints the same lines (its version line has two spaces after the colon) for the
    // encryption level, methods and version, and for the layers xrdp selects; it also counts
    // as SUCCESS every protocol xrdp answers with a negotiation response, even where xrdp
    // selects another (CredSSP, RDSTLS), so its extra layer lines are not compared.
    let nmap = nmap_out("3389", "rdp-enum-encryption");
    let squeeze = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
    let n: Vec<String> = body(&script_block(&nmap, "rdp-enum-encryption")).iter().map(|l| squeeze(l)).collect();
    for line in &expected[1..] {
        assert!(n.contains(&squeeze(line)), "{line} not in nmap's:\n{nmap}");
    }
}

#[test]
fn rdp_ntlm_info_says_nothing_about_xrdp_without_credssp() {
    let Some(_lab) = lab() else { return };
    // xrdp 0.9 offers no CredSSP (security_layer is rdp, tls or negotiate, never NLA): the
    // script gets no NTLM challenge and reports nothing, without error; nmap's is as quiet.
    let layer = conf_value("h14/xrdp/xrdp.ini", "security_layer");
    assert!(["negotiate", "tls", "rdp"].contains(&layer.as_str()), "{layer}");
    // -d shows script errors in the output: there is none.
    let out = run_ok(&["-sS", "-n", "--no-db", "-d", "-p", "3389", "--script", "rdp-ntlm-info", H14]);
    assert!(out.contains("3389/tcp open"), "{out}");
    assert!(!out.contains("rdp-ntlm-info"), "{out}");
    let nmap = nmap_out("3389", "rdp-ntlm-info");
    assert!(!nmap.contains("rdp-ntlm-info"), "nmap:\n{nmap}");
}

#[test]
fn rdp_ntlm_info_reads_freerdps_nla_challenge() {
    let Some(_lab) = lab() else { return };
    // FreeRDP's shadow server on 3390 runs with /sec:nla: CredSSP only. Its NTLM challenge (WinPR)
    // names the namespace's host: NetBIOS names in capitals, DNS names as they are.
    let ns = format!("{}-h14", prefix());
    let o = Command::new("ip").args(["netns", "exec", &ns, "hostname"]).output().unwrap();
    let hostname = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let short = hostname.split('.').next().unwrap().to_string();
    // -sV names 3390 ms-wbt-server, which the scripts' port rules look for.
    let out =
        run_ok(&["-sS", "-sV", "-n", "--no-db", "-p", "3390", "--script", "rdp-ntlm-info,rdp-enum-encryption", H14]);
    let got = body(&script_block(&out, "rdp-ntlm-info"));
    let field = |k: &str| {
        got.iter()
            .find_map(|l| l.strip_prefix(&format!("  {k}: ")))
            .unwrap_or_else(|| panic!("no {k} in:\n{out}"))
            .to_string()
    };
    assert_eq!(field("NetBIOS_Computer_Name"), short.to_uppercase(), "{out}");
    assert_eq!(field("DNS_Computer_Name"), hostname, "{out}");
    let t = field("System_Time");
    assert!((epoch(&t) - now()).abs() <= 5, "System_Time {t} vs now {}", now());
    // rdp-enum-encryption: the server selects CredSSP and nothing else.
    let enc = body(&script_block(&out, "rdp-enum-encryption")).join("\n");
    assert!(enc.contains("CredSSP (NLA): SUCCESS"), "{enc}");
    assert!(!enc.contains("Native RDP") && !enc.contains("SSL:"), "{enc}");
    // (No nmap comparison: nmap 7.93's -sV leaves an NLA-only server unnamed ("dsc?"), so its
    // rdp-ntlm-info, which wants port 3389 or ms-wbt-server, does not run on 3390.)
}
