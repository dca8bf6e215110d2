//! Issue 18's database, remote-desktop and terminal scripts against real daemons on the lab's
//! h14 (`tests/lab/lab.sh up`): MariaDB (mysql-info), x11vnc on the lab's Xvfb (vnc-info),
//! inetutils' telnetd under inetd (telnet-banner) and Dovecot with winbind's NTLM
//! (imap-ntlm-info). Each output is checked against what the lab
//! knows without RustMap: the installed package versions, lab.sh's configuration (x11vnc runs
//! with a password file), the kernel the namespace runs on — and nmap's script of the same
//! name where there is one.
//!
//! The scanner runs inside the lab's scanner namespace, which has no route out of the lab.
//! Without the lab these tests skip with a reason — except under `CI=true`, where they fail.

mod common;

use common::{conf_value, in_lab, lab, lab_dir, run_ok, upstream_version};
use std::process::Command;

const H14: &str = "198.18.0.14";

fn value<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.trim_start_matches(['|', '_', ' ']).strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in:\n{out}"))
}

#[test]
fn mysql_info_reads_mariadbs_greeting() {
    let Some(_lab) = lab() else { return };
    let out = run_ok(&["-sT", "-n", "--no-db", "-p", "3306", "--script", "mysql-info", H14]);
    let version = value(&out, "Version");
    let want = upstream_version("mariadb-server");
    assert!(version.contains(&format!("{want}-MariaDB")), "want {want}: {out}");
    assert_eq!(value(&out, "Protocol"), "10");
    assert!(value(&out, "Some Capabilities").contains("Support41Auth"), "{out}");
    assert_eq!(value(&out, "Auth Plugin Name"), "mysql_native_password", "{out}");
    // nmap's mysql-info reads the same version string.
    let o = in_lab("nmap", &["-sT", "-n", "-p", "3306", "--script", "mysql-info", H14]);
    let nmap = String::from_utf8_lossy(&o.stdout);
    assert!(nmap.contains(&format!("Version: {version}")), "nmap:\n{nmap}");
}

#[test]
fn vnc_info_reports_x11vncs_version_and_password_authentication() {
    let Some(_lab) = lab() else { return };
    // lab.sh starts x11vnc with -rfbauth (a password file): VNC Authentication, type 2, only.
    assert!(lab_dir().join("h14/vnc/passwd").exists());
    let out = run_ok(&["-sT", "-n", "--no-db", "-p", "5900", "--script", "vnc-info", H14]);
    assert_eq!(value(&out, "Protocol version"), "3.8", "{out}");
    assert!(out.contains("|_    VNC Authentication (2)"), "{out}");
    assert!(!out.contains("WARNING"), "{out}");
    let o = in_lab("nmap", &["-sT", "-n", "-p", "5900", "--script", "vnc-info", H14]);
    let nmap = String::from_utf8_lossy(&o.stdout);
    assert!(nmap.contains("VNC Authentication (2)") && nmap.contains("3.8"), "nmap:\n{nmap}");
}

#[test]
fn telnet_banner_shows_telnetds_greeting_and_login_prompt() {
    let Some(_lab) = lab() else { return };
    let out = run_ok(&["-sT", "-n", "--no-db", "-p", "23", "--script", "telnet-banner", H14]);
    // inetutils' telnetd greets with the kernel's name and release, then login's prompt.
    let uname = |flag: &str| {
        String::from_utf8_lossy(&Command::new("uname").arg(flag).output().unwrap().stdout).trim().to_string()
    };
    assert!(out.contains(&format!("| telnet-banner: {} {} (", uname("-s"), uname("-r"))), "{out}");
    assert!(out.lines().any(|l| l.starts_with("|_") && l.ends_with(" login:")), "{out}");
    // No negotiation bytes leak into the text.
    assert!(!out.contains('\u{fffd}') && !out.contains("??"), "{out}");
}

#[test]
fn imap_ntlm_info_reads_the_challenge_dovecot_gets_from_winbind() {
    let Some(_lab) = lab() else { return };
    let conf = std::fs::read_to_string(lab_dir().join("h14/samba/smb.conf")).unwrap();
    let name = conf.lines().find_map(|l| l.trim().strip_prefix("netbios name = ")).unwrap().to_string();
    let ns = format!("{}-h14", common::prefix());
    let o = Command::new("ip").args(["netns", "exec", &ns, "hostname"]).output().unwrap();
    let hostname = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let out = run_ok(&["-sT", "-n", "--no-db", "-p", "143", "--script", "imap-ntlm-info,imap-capabilities", H14]);
    // dovecot.conf: auth_mechanisms = plain ntlm
    assert!(out.contains("AUTH=PLAIN AUTH=NTLM"), "{out}");
    assert_eq!(value(&out, "Target_Name"), name, "{out}");
    assert_eq!(value(&out, "NetBIOS_Computer_Name"), name, "{out}");
    assert_eq!(value(&out, "DNS_Computer_Name"), hostname, "{out}");
    let t = value(&out, "System_Time");
    let o = Command::new("date").args(["-u", "-d", t, "+%s"]).output().unwrap();
    let then: i64 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((now - then).abs() <= 5, "System_Time {t}");
    // nmap's imap-ntlm-info reads the same names.
    let o = in_lab("nmap", &["-sT", "-n", "-p", "143", "--script", "imap-ntlm-info", H14]);
    let nmap = String::from_utf8_lossy(&o.stdout);
    assert!(nmap.contains(&format!("NetBIOS_Computer_Name: {name}")), "nmap:\n{nmap}");
}

#[test]
fn mail_scripts_read_postfix_and_dovecot() {
    let Some(_lab) = lab() else { return };
    let out = run_ok(&[
        "-sT",
        "-n",
        "--no-db",
        "-p",
        "25,110,143",
        "--script",
        "smtp-commands,pop3-capabilities,imap-capabilities",
        H14,
    ]);
    // smtp-commands: Postfix's EHLO as main.cf shapes it: its host name first, SIZE from
    // message_size_limit, no VRFY (disable_vrfy_command = yes).
    let smtp = out.lines().find_map(|l| l.strip_prefix("|_smtp-commands: ")).unwrap_or_else(|| panic!("{out}"));
    let words: Vec<&str> = smtp.split(", ").collect();
    assert_eq!(words[0], conf_value("h14/postfix/main.cf", "myhostname"), "{smtp}");
    assert!(
        words.contains(&format!("SIZE {}", conf_value("h14/postfix/main.cf", "message_size_limit")).as_str()),
        "{smtp}"
    );
    assert_eq!(conf_value("h14/postfix/main.cf", "disable_vrfy_command"), "yes");
    assert!(!words.contains(&"VRFY"), "{smtp}");
    // Dovecot: the SASL mechanisms of auth_mechanisms, in POP3's CAPA and IMAP's CAPABILITY.
    let mechs: Vec<String> =
        conf_value("h14/dovecot/dovecot.conf", "auth_mechanisms").split(' ').map(|m| m.to_uppercase()).collect();
    let pop3 = out.lines().find_map(|l| l.strip_prefix("|_pop3-capabilities: ")).unwrap_or_else(|| panic!("{out}"));
    assert!(pop3.contains(&format!("SASL {}", mechs.join(" "))), "{pop3}");
    assert!(pop3.split(' ').any(|w| w == "USER"), "disable_plaintext_auth = no: {pop3}");
    let imap = out.lines().find_map(|l| l.strip_prefix("|_imap-capabilities: ")).unwrap_or_else(|| panic!("{out}"));
    for m in &mechs {
        assert!(imap.split(' ').any(|w| w == format!("AUTH={m}")), "{m}: {imap}");
    }
    // nmap's smtp-commands lists the same EHLO keywords.
    let o = in_lab("nmap", &["-sT", "-n", "-p", "25", "--script", "smtp-commands", H14]);
    let nmap = String::from_utf8_lossy(&o.stdout);
    for w in &words[1..] {
        assert!(nmap.contains(w), "nmap lacks {w}:\n{nmap}");
    }
}
