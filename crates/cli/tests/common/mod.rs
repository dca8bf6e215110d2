//! What the lab test files share: finding the namespace lab, running RustMap (and other
//! programs) inside its scanner namespace, reading the ground truth, and capturing packets on
//! a lab host with tshark. The lab itself is `tests/lab/lab.sh` (docs/lab.md).
#![allow(dead_code)]

use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn prefix() -> String {
    std::env::var("LAB_PREFIX").unwrap_or_else(|_| "rmlab".into())
}

pub fn scanner_ns() -> String {
    format!("{}-scan", prefix())
}

/// Lab tests of one file run one at a time: concurrent scans of the same hosts would skew
/// each other's timing and captures.
static LAB_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Take the lab if it is up. Outside CI a missing lab skips the test; in CI it is a failure.
pub fn lab() -> Option<std::sync::MutexGuard<'static, ()>> {
    let guard = LAB_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let up = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.split_whitespace().next() == Some(&scanner_ns())))
        .unwrap_or(false);
    if !up {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("the lab is not up: run `bash tests/lab/lab.sh up` as root first (CI=true: not skipping)");
        }
        eprintln!("SKIP: lab namespace {} not found (needs root: bash tests/lab/lab.sh up)", scanner_ns());
        return None;
    }
    Some(guard)
}

pub fn ground_truth() -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/lab/ground-truth.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

pub fn truth_open_tcp(name: &str) -> BTreeSet<u16> {
    let hosts = ground_truth()["hosts"].as_array().unwrap().clone();
    let h = hosts.iter().find(|h| h["name"] == name).unwrap();
    h["tcp"]["open"].as_array().unwrap().iter().map(|p| p["port"].as_u64().unwrap() as u16).collect()
}

/// A HOME of the lab tests' own, so nothing touches the user's history database.
pub fn lab_home() -> PathBuf {
    let d = std::env::temp_dir().join(format!("{}-home", prefix()));
    let _ = std::fs::create_dir_all(&d);
    d
}

/// Run `program` inside the scanner namespace (no route out of the lab).
pub fn in_lab(program: &str, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", &scanner_ns(), program])
        .args(args)
        .env("HOME", lab_home())
        .stdin(Stdio::null())
        .output()
        .expect("ip netns exec")
}

pub fn rustmap(args: &[&str]) -> Output {
    in_lab(env!("CARGO_BIN_EXE_rustmap"), args)
}

/// A scan's JSON document (the scan must succeed).
pub fn json_scan(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--no-db", "--oJ", "-"]);
    let o = rustmap(&all);
    assert!(o.status.success(), "rustmap {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("JSON from {args:?}: {e}: {}", String::from_utf8_lossy(&o.stdout)))
}

pub fn host<'a>(v: &'a Value, addr: &str) -> &'a Value {
    v["hosts"].as_array().unwrap().iter().find(|h| h["addr"] == addr).unwrap_or_else(|| panic!("{addr} not in {v}"))
}

/// The ports of a host in a state (shown ones only).
pub fn ports_in(h: &Value, state: &str) -> BTreeSet<u16> {
    h["ports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["state"] == state)
        .map(|p| p["port"].as_u64().unwrap() as u16)
        .collect()
}

/// tshark capturing on `eth0` of lab namespace `ns` (e.g. "h10") into a file, for as long as
/// it is alive; stopped (and the file read) with [`Capture::fields`]. Killed on drop.
pub struct Capture {
    child: Child,
    file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Capture {
    /// Start capturing and wait (at most 20 s) until tshark says it is.
    pub fn start(ns: &str) -> Capture {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cap.pcapng");
        let mut child = Command::new("ip")
            .args(["netns", "exec", &format!("{}-{ns}", prefix()), "tshark", "-i", "eth0", "-n", "-w"])
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tshark (apt-get install tshark)");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("Capturing on") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(20)).expect("tshark started capturing");
        // It says so a moment before the capture socket is really reading.
        std::thread::sleep(Duration::from_millis(700));
        Capture { child, file, _dir: dir }
    }

    /// Stop the capture and read `fields` of every packet matching `filter`, one row each.
    pub fn fields(&mut self, filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
        // Give the last answers time to land, then end tshark cleanly so the file is whole.
        std::thread::sleep(Duration::from_millis(500));
        let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        read_fields(&self.file, filter, fields)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `fields` of the packets of a capture file that match a display filter.
pub fn read_fields(file: &Path, filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(file).args(["-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"]);
    cmd.args(["-Y", filter, "-T", "fields", "-E", "separator=|"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let o = cmd.output().expect("tshark -r");
    assert!(o.status.success(), "tshark -r: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).lines().map(|l| l.split('|').map(str::to_string).collect()).collect()
}

/// Where `lab.sh` keeps the lab's files (`LAB_DIR`, else `/tmp/$LAB_PREFIX`).
pub fn lab_dir() -> PathBuf {
    std::env::var_os("LAB_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp").join(prefix()))
}

/// A scan in the lab that must succeed: its standard output.
pub fn run_ok(args: &[&str]) -> String {
    let o = rustmap(args);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "rustmap {args:?}: {out}{}", String::from_utf8_lossy(&o.stderr));
    out
}

/// The lines of one script's output in normal output (from `| name:` to its `|_` line).
pub fn script_block(out: &str, name: &str) -> Vec<String> {
    let head = format!("| {name}:");
    let head_last = format!("|_{name}:");
    let mut lines = out.lines().skip_while(|l| !l.starts_with(&head) && !l.starts_with(&head_last));
    let Some(first) = lines.next() else { panic!("no {name} output in:\n{out}") };
    let mut block = vec![first.to_string()];
    if first.starts_with("|_") {
        return block;
    }
    for l in lines {
        block.push(l.to_string());
        if l.starts_with("|_") {
            break;
        }
    }
    block
}

/// [`script_block`] as one string.
pub fn script_text(out: &str, name: &str) -> String {
    script_block(out, name).join("\n")
}

/// The value of `key` in a lab daemon's configuration file, as lab.sh wrote it under
/// [`lab_dir`] (`key value`, `key = value` and `key=value` lines).
pub fn conf_value(file: &str, key: &str) -> String {
    let path = lab_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key).filter(|rest| rest.starts_with([' ', '\t', '='])))
        .map(|v| v.trim_start_matches([' ', '\t', '=']).trim().to_string())
        .unwrap_or_else(|| panic!("no {key} in {}", path.display()))
}

/// The upstream version of an installed Debian package (`1:2.90-4~deb12u2` -> `2.90`).
pub fn upstream_version(package: &str) -> String {
    let o = Command::new("dpkg-query").args(["-W", "-f", "${Version}", package]).output().unwrap();
    let full = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success() && !full.is_empty(), "dpkg-query {package}: {full}");
    let no_epoch = full.split_once(':').map_or(full.as_str(), |(_, v)| v);
    no_epoch.split(['-', '+']).next().unwrap().to_string()
}
