//! Issue 18's UDP scripts (SNMP, NTP, SIP, NetBIOS) against the namespace lab's real daemons
//! (`tests/lab/lab.sh up`): net-snmp's snmpd and chrony on h10/h14, Kamailio and Samba's nmbd
//! on h14. Each script's output is checked against what the lab knows independently of
//! RustMap: the daemons' configuration files as lab.sh wrote them, the namespace's own
//! interfaces (`ip addr` inside it), the installed package versions, the test's clock — and,
//! where nmap has a script of the same name, nmap's answer.
//!
//! The scanner runs inside the lab's scanner namespace, which has no route out of the lab.
//! Without the lab these tests skip with a reason — except under `CI=true`, where they fail.

mod common;

use common::{conf_value, in_lab, lab, lab_dir, prefix, run_ok, script_block};
use std::process::Command;

const H10: &str = "198.18.0.10";
const H14: &str = "198.18.0.14";
const H12: &str = "198.18.0.12";

/// Runs `ip args` inside a lab host's namespace.
fn ip_in(host: &str, args: &[&str]) -> String {
    let ns = format!("{}-{host}", prefix());
    let o = Command::new("ip").args(["netns", "exec", &ns, "ip"]).args(args).output().unwrap();
    assert!(o.status.success(), "ip {args:?} in {ns}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn netmask(prefix_len: u32) -> String {
    let m = if prefix_len == 0 { 0 } else { u32::MAX << (32 - prefix_len) };
    std::net::Ipv4Addr::from(m).to_string()
}

#[test]
fn snmp_scripts_report_the_agents_configuration_and_the_hosts_interfaces() {
    let Some(_lab) = lab() else { return };
    let out =
        run_ok(&["-sU", "-n", "--no-db", "-p", "161", "--script", "snmp-sysdescr,snmp-info,snmp-interfaces", H10]);
    // snmp-sysdescr: the sysDescr snmpd.conf sets, and an uptime in timeticks.
    let descr = conf_value("h10/snmpd.conf", "sysDescr");
    let block = script_block(&out, "snmp-sysdescr");
    assert_eq!(block[0], format!("| snmp-sysdescr: {descr}"), "{out}");
    assert!(block[1].starts_with("|_  System uptime: ") && block[1].ends_with(" timeticks)"), "{out}");

    // snmp-info: the engine id snmpd.conf sets (net-snmp builds a text-format id from it).
    let engine = conf_value("h10/snmpd.conf", "engineID");
    let info = script_block(&out, "snmp-info").join("\n");
    assert!(info.contains("|   enterprise: net-snmp"), "{info}");
    assert!(info.contains("|   engineIDFormat: text"), "{info}");
    assert!(info.contains(&format!("|   engineIDData: {engine}")), "{info}");
    assert!(info.contains("snmpEngineBoots: ") && info.contains("snmpEngineTime: "), "{info}");

    // snmp-interfaces: every IPv4 address of the namespace, under its interface, with the
    // netmask of its prefix; eth0's MAC address.
    let ifaces = script_block(&out, "snmp-interfaces").join("\n");
    for line in ip_in("h10", &["-o", "-4", "addr", "show"]).lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (name, cidr) = (f[1], f[3]);
        let (addr, len) = cidr.split_once('/').unwrap();
        assert!(
            ifaces
                .contains(&format!("|   {name}\n|     IP address: {addr}  Netmask: {}", netmask(len.parse().unwrap()))),
            "{name} {cidr} missing in:\n{ifaces}"
        );
    }
    let link = ip_in("h10", &["-o", "link", "show", "eth0"]);
    let mac = link.split("link/ether ").nth(1).unwrap().split_whitespace().next().unwrap();
    assert!(ifaces.contains(&format!("|     MAC address: {mac}")), "{mac} missing in:\n{ifaces}");
    assert!(ifaces.contains("Type: softwareLoopback") && ifaces.contains("Type: ethernetCsmacd"), "{ifaces}");

    // nmap's snmp-sysdescr reads the same description.
    let o = in_lab("nmap", &["-sU", "-n", "-p", "161", "--script", "snmp-sysdescr", H10]);
    let nmap = String::from_utf8_lossy(&o.stdout);
    assert!(nmap.contains(&format!("| snmp-sysdescr: {descr}")), "nmap:\n{nmap}");

    // The tables reach the XML: engineIDData as an elem of snmp-info.
    let xml = run_ok(&["-sU", "-n", "--no-db", "-p", "161", "--script", "snmp-info", "-oX", "-", H10]);
    assert!(xml.contains(&format!("<elem key=\"engineIDData\">{engine}</elem>")), "{xml}");
}

#[test]
fn ntp_info_reads_chronys_stratum_and_a_clock_that_matches_ours() {
    let Some(_lab) = lab() else { return };
    let out = run_ok(&["-sU", "-n", "--no-db", "-p", "123", "--script", "ntp-info", H14]);
    let block = script_block(&out, "ntp-info").join("\n");
    // chrony.conf: "local stratum 10"; we ask in NTPv4, chrony answers in the same version.
    let stratum = conf_value("h14/chrony/chrony.conf", "local stratum");
    assert!(block.contains(&format!("|   stratum: {stratum}\n")), "{block}");
    assert!(block.contains("|   version: 4\n"), "{block}");
    assert!(block.contains("|   leap: no warning"), "{block}");
    // chrony runs with -x on the machine's own clock: the offset is at most a second either way
    // (our side reads the clock in whole seconds), and its receive time is the test's now.
    let offset = block.lines().find_map(|l| l.strip_prefix("|_  clock offset: ")).unwrap_or_else(|| panic!("{block}"));
    let secs: i64 = offset.trim_end_matches('s').parse().unwrap();
    assert!(secs.abs() <= 1, "offset {offset}:\n{block}");
    let stamp = block.lines().find_map(|l| l.strip_prefix("|   receive time stamp: ")).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let o = Command::new("date").args(["-u", "-d", stamp, "+%s"]).output().unwrap();
    let then: i64 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    assert!((now - then).abs() <= 30, "receive time {stamp} vs now {now}");
}

#[test]
fn sip_scripts_report_kamailios_allow_list_and_its_known_users() {
    let Some(_lab) = lab() else { return };
    let cfg = std::fs::read_to_string(lab_dir().join("h14/kamailio/kamailio.cfg")).unwrap();
    let allow = cfg.split("Allow: ").nth(1).unwrap().split("\\r\\n").next().unwrap().to_string();
    let out = run_ok(&["-sU", "-n", "--no-db", "-p", "5060", "--script", "sip-methods,sip-enum-users", H14]);
    let methods = script_block(&out, "sip-methods").join("\n");
    assert!(methods.contains(&format!("| sip-methods: Methods: {allow}")), "want {allow}:\n{out}");
    let dpkg = Command::new("dpkg-query").args(["-W", "-f", "${Version}", "kamailio"]).output().unwrap();
    let version = String::from_utf8_lossy(&dpkg.stdout).split(['-', '+']).next().unwrap().to_string();
    assert!(methods.contains(&format!("|_Server: kamailio ({version} ")), "want kamailio {version}:\n{methods}");

    // The users the configuration answers 401 for, and no other name of the candidates.
    let users = script_block(&out, "sip-enum-users").join("\n");
    let configured: Vec<&str> = cfg.split("$tU == \"").skip(1).map(|s| s.split('"').next().unwrap()).collect();
    assert_eq!(configured.len(), 2, "{cfg}");
    for u in &configured {
        assert!(users.contains(&format!("  {u} (password required)")), "{u} missing:\n{users}");
    }
    assert_eq!(users.matches("(password required)").count(), configured.len(), "{users}");

    // nmap's sip-methods reads the same Allow list.
    let o = in_lab("nmap", &["-sU", "-n", "-p", "5060", "--script", "sip-methods", H14]);
    let nmap = String::from_utf8_lossy(&o.stdout);
    assert!(nmap.contains(&allow), "nmap:\n{nmap}");
}

#[test]
fn nbstat_reports_sambas_netbios_name_and_workgroup() {
    let Some(_lab) = lab() else { return };
    let name = conf_value("h14/samba/smb.conf", "netbios name");
    let workgroup = conf_value("h14/samba/smb.conf", "workgroup");
    let out = run_ok(&["-sS", "-n", "--no-db", "-p", "445", "--script", "nbstat", "-v", H14]);
    let block = script_block(&out, "nbstat").join("\n");
    assert!(
        block.contains(&format!(
            "nbstat: NetBIOS name: {name}, NetBIOS user: <unknown>, NetBIOS MAC: <unknown>, Workgroup: {workgroup}"
        )),
        "{block}"
    );
    assert!(block.contains(&format!("|   {name}<20> Unique Active")), "{block}");
    assert!(block.contains(&format!("{workgroup}<00> Group Active")), "{block}");
    // Without 137/udp or SMB open the hostrule stays quiet (h10 has neither).
    let quiet = run_ok(&["-sS", "-n", "--no-db", "-p", "80", "--script", "nbstat", H10]);
    assert!(!quiet.contains("nbstat"), "{quiet}");
    // nmap's nbstat names the same computer.
    let o = in_lab("nmap", &["-sS", "-n", "-p", "445", "--script", "nbstat", H14]);
    let nmap = String::from_utf8_lossy(&o.stdout);
    assert!(nmap.contains(&format!("NetBIOS name: {name}")), "nmap:\n{nmap}");
}

/// The ntp fixture's monitor list as tests/lab/lab_servers.py writes it: (address, port, mode,
/// version, count, seconds ago).
fn fixture_monlist() -> Vec<(String, u16, u8, u8, u64, u64)> {
    let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/lab/lab_servers.py");
    let src = std::fs::read_to_string(p).unwrap();
    let start = src.find("MONLIST = [").unwrap();
    let body = &src[start..start + src[start..].find("\n]").unwrap()];
    body.lines()
        .filter_map(|l| l.trim().strip_prefix("(\"")?.strip_suffix("),").map(str::to_string))
        .map(|l| {
            let f: Vec<String> = l.split(", ").map(|x| x.trim_matches('"').to_string()).collect();
            (
                f[0].clone(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
                f[5].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn ntp_monlist_lists_the_fixtures_monitor_entries_and_ntp_info_its_variables() {
    let Some(_lab) = lab() else { return };
    let want = fixture_monlist();
    assert!(want.len() > 6, "more entries than one datagram holds: {want:?}");
    let out = run_ok(&["-sU", "-n", "--no-db", "-p", "123", "--script", "ntp-monlist,ntp-info", H12]);
    let block = script_block(&out, "ntp-monlist").join("\n");
    for (addr, port, mode, version, count, ago) in &want {
        let line = format!("|   {addr} port {port}, mode {mode} (");
        let l = block.lines().find(|l| l.starts_with(&line)).unwrap_or_else(|| panic!("{addr} missing:\n{block}"));
        assert!(l.ends_with(&format!("version {version}, {count} packets, last {ago} s ago")), "{l}");
    }
    assert_eq!(block.matches(" packets, last ").count(), want.len(), "{block}");
    assert!(block.contains("CVE-2013-5211"), "{block}");
    // ntp-info's READVAR: the fixture's system variables.
    let info = script_block(&out, "ntp-info").join("\n");
    assert!(info.contains("|     version: ntpd 4.2.6p5@1.2349-o"), "{info}");
    assert!(info.contains("|   stratum: 2\n"), "{info}");
    // nmap's ntp-monlist lists the same addresses.
    let o = in_lab("nmap", &["-sU", "-n", "-p", "123", "--script", "ntp-monlist", H12]);
    let nmap = String::from_utf8_lossy(&o.stdout);
    for (addr, ..) in &want {
        assert!(nmap.contains(addr.as_str()), "nmap lacks {addr}:\n{nmap}");
    }
}
