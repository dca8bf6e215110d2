//! `--cloud aws` end to end against moto_server, the AWS emulator (PyPI `moto[server]`, in the
//! lab's virtualenv), running on the scanner namespace's loopback: an EC2 inventory in two
//! regions whose subnets are the lab's own (tests/cloud/moto_setup.py), listed with `-sL`,
//! filtered by tag, state and region, and scanned; and the errors a user meets (no
//! credentials, an unknown region, a denied permission). Every address moto hands out is
//! checked to be inside 198.18.0.0/15 before anything is scanned, and the scanner's namespace
//! has no route out.
#![cfg(feature = "cloud")]

mod common;

use common::{lab, lab_home, scanner_ns};
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn venv() -> String {
    std::env::var("LAB_VENV").unwrap_or_else(|_| "/opt/rustmap-lab/venv".into())
}

/// A moto_server in the scanner namespace, killed when dropped.
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    fn start(port: u16, no_auth_actions: Option<u32>) -> Moto {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &scanner_ns(), &format!("{}/bin/moto_server", venv())])
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(n) = no_auth_actions {
            // moto enforces IAM policies after the first n requests.
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", n.to_string());
        }
        let child = cmd.spawn().expect("moto_server (tests/lab/install-deps.sh installs it)");
        let moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        let probe = format!("import socket; socket.create_connection(('127.0.0.1', {port}), 1)");
        loop {
            let o = common::in_lab(&format!("{}/bin/python", venv()), &["-c", &probe]);
            if o.status.success() {
                return moto;
            }
            assert!(Instant::now() < deadline, "moto_server did not listen on 127.0.0.1:{port} within 30 s");
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn setup(&self, what: &str) -> String {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/cloud/moto_setup.py");
        let o = common::in_lab(&format!("{}/bin/python", venv()), &[script, &self.endpoint(), what]);
        assert!(o.status.success(), "moto_setup.py {what}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// rustmap in the scanner namespace with AWS settings of the test's own: the emulator as the
/// endpoint, no shared config files, no instance metadata service.
fn aws_rustmap(endpoint: &str, key: Option<(&str, &str)>, args: &[&str]) -> Output {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &scanner_ns(), env!("CARGO_BIN_EXE_rustmap")])
        .args(args)
        .env("HOME", lab_home())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/rustmap-test/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/rustmap-test/credentials")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .stdin(Stdio::null());
    match key {
        Some((id, secret)) => cmd.env("AWS_ACCESS_KEY_ID", id).env("AWS_SECRET_ACCESS_KEY", secret),
        None => cmd.env_remove("AWS_ACCESS_KEY_ID").env_remove("AWS_SECRET_ACCESS_KEY"),
    };
    cmd.output().expect("ip netns exec")
}

const KEY: Option<(&str, &str)> = Some(("testing", "testing"));

fn json(endpoint: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--no-db", "--oJ", "-"]);
    let o = aws_rustmap(endpoint, KEY, &all);
    assert!(o.status.success(), "rustmap {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

fn addrs(v: &Value) -> BTreeSet<String> {
    v["hosts"].as_array().unwrap().iter().map(|h| h["addr"].as_str().unwrap().to_string()).collect()
}

fn set(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn in_lab_range(addr: &str) -> bool {
    match addr.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => a.octets()[0] == 198 && (a.octets()[1] & 0xfe) == 18,
        _ => false,
    }
}

#[test]
fn aws_instances_are_listed_filtered_and_scanned() {
    let Some(_lab) = lab() else { return };
    let moto = Moto::start(15301, None);
    moto.setup("inventory");
    let e = moto.endpoint();
    let list = ["--cloud", "aws", "--cloud-tag", "env=lab", "--cloud-running-only", "-sL"];

    // The issue's bar: exactly the running instances tagged env=lab, in both regions.
    let v = json(&e, &list);
    assert_eq!(addrs(&v), set(&["198.18.0.10", "198.18.0.11", "198.18.2.10"]), "{v}");
    for h in v["hosts"].as_array().unwrap() {
        let c = &h["cloud"];
        assert_eq!(c["provider"], "aws", "{h}");
        assert!(c["id"].as_str().unwrap().starts_with("i-"), "{h}");
        assert_eq!(c["state"], "running", "{h}");
        assert_eq!(c["tags"]["env"], "lab", "{h}");
        assert_eq!(c["instance_type"], "t3.micro", "{h}");
        let region = if h["addr"] == "198.18.2.10" { "us-west-2" } else { "us-east-1" };
        assert_eq!(c["region"], region, "{h}");
        assert!(c["zone"].as_str().unwrap().starts_with(region), "{h}");
        assert_eq!(c["private_ips"][0], h["addr"], "{h}");
        assert!(c.get("public_ips").is_none(), "{h}");
    }
    let h10 = v["hosts"].as_array().unwrap().iter().find(|h| h["addr"] == "198.18.0.10").unwrap();
    assert_eq!(h10["cloud"]["name"], "h10");

    // Every tag must match; a region list narrows; without --cloud-running-only the stopped
    // instance is there too; another tag, other instances.
    let v = json(&e, &["--cloud", "aws", "--cloud-tag", "env=lab", "--cloud-tag", "team=sec", "-sL"]);
    assert_eq!(addrs(&v), set(&["198.18.0.10"]));
    let v = json(
        &e,
        &["--cloud", "aws", "--cloud-tag", "env=lab", "--cloud-regions", "us-east-1", "--cloud-running-only", "-sL"],
    );
    assert_eq!(addrs(&v), set(&["198.18.0.10", "198.18.0.11"]));
    let v = json(&e, &["--cloud", "aws", "--cloud-tag", "env=lab", "-sL"]);
    assert_eq!(addrs(&v), set(&["198.18.0.10", "198.18.0.11", "198.18.0.13", "198.18.2.10"]));
    let stopped = v["hosts"].as_array().unwrap().iter().find(|h| h["addr"] == "198.18.0.13").unwrap();
    assert_eq!(stopped["cloud"]["state"], "stopped");
    let v = json(&e, &["--cloud", "aws", "--cloud-tag", "env=bulk", "-sL"]);
    let bulk = addrs(&v);
    assert_eq!(bulk.len(), 6, "{bulk:?}");
    assert!(bulk.iter().all(|a| a.starts_with("198.18.3.")), "{bulk:?}");
    // No public address anywhere: --cloud-public-only leaves nothing to scan, and says so.
    let o = aws_rustmap(&e, KEY, &["--cloud", "aws", "--cloud-public-only", "-sL", "--no-db"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("Warning: --cloud aws: 11 instances matched, no address to scan"), "{out}");
    // The dry run's normal output: each address with its instance.
    let o = aws_rustmap(&e, KEY, &list);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("Warning: --cloud aws: 3 instances, 3 addresses to scan"), "{out}");
    assert!(
        out.contains("(198.18.2.10)\nCloud instance: aws i-")
            && out.contains("(h20) us-west-2a running t3.micro env=lab"),
        "{out}"
    );

    // Whatever the emulator said, only lab addresses are scanned.
    let all = json(&e, &["--cloud", "aws", "-sL"]);
    assert!(addrs(&all).iter().all(|a| in_lab_range(a)), "{:?}", addrs(&all));

    // The scan: the lab hosts' open ports, each host carrying its instance into JSON, XML, CSV,
    // normal output and the history.
    let dir = tempfile::tempdir().unwrap();
    let path = |f: &str| dir.path().join(f).to_str().unwrap().to_string();
    let (xml, csv, normal, db) = (path("s.xml"), path("s.csv"), path("s.nmap"), path("h.db"));
    let mut scan = list[..list.len() - 1].to_vec();
    scan.extend(["--cloud-private-only", "-sT", "-Pn", "-p", "22,80", "--oX", &xml, "--oC", &csv, "--oN", &normal]);
    scan.extend(["--db", &db, "--oJ", "-"]);
    let o = aws_rustmap(&e, KEY, &scan);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(addrs(&v), set(&["198.18.0.10", "198.18.0.11", "198.18.2.10"]));
    for h in v["hosts"].as_array().unwrap() {
        assert_eq!(common::ports_in(h, "open"), BTreeSet::from([22, 80]), "{h}");
        assert_eq!(h["cloud"]["tags"]["env"], "lab");
    }
    let xml = std::fs::read_to_string(&xml).unwrap();
    assert!(xml.contains(r#"<script id="cloud-instance""#) && xml.contains("us-west-2"), "{xml}");
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert!(csv.lines().next().unwrap().split(',').any(|c| c == "cloud"), "{csv}");
    assert!(
        csv.lines().any(|l| l.starts_with("198.18.2.10,") && l.contains("aws i-") && l.contains("env=lab")),
        "{csv}"
    );
    let normal = std::fs::read_to_string(&normal).unwrap();
    assert!(
        normal.contains("cloud-instance: aws i-") && normal.contains("(h10) us-east-1a running t3.micro"),
        "{normal}"
    );
    let c = rusqlite::Connection::open(&db).unwrap();
    let stored: Vec<String> = c
        .prepare("SELECT result FROM hosts")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(stored.len(), 3);
    for s in stored {
        let h: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(h["cloud"]["provider"], "aws", "{h}");
    }
}

#[test]
fn aws_errors_say_what_is_wrong_and_touch_no_file() {
    let Some(_lab) = lab() else { return };
    let moto = Moto::start(15302, None);
    moto.setup("inventory");
    let e = moto.endpoint();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("keep.xml");
    std::fs::write(&out, "earlier results\n").unwrap();
    let out = out.to_str().unwrap();
    let fails = |e: &str, key, args: &[&str], code: i32, want: &str| {
        let o = aws_rustmap(e, key, args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: wanted {want:?} in: {err}");
        assert_eq!(std::fs::read_to_string(out).unwrap(), "earlier results\n", "{args:?} touched the output file");
    };
    fails(
        &e,
        None,
        &["--cloud", "aws", "--oX", out, "--no-db"],
        1,
        "no credentials found; tried the environment (AWS_ACCESS_KEY_ID",
    );
    fails(
        &e,
        KEY,
        &["--cloud", "aws", "--cloud-regions", "xx-nowhere-9", "--oX", out, "--no-db"],
        1,
        r#"no such region "xx-nowhere-9""#,
    );
    fails(
        &e,
        KEY,
        &["--cloud", "aws", "--cloud-tag", "env", "--oX", out, "--no-db"],
        2,
        r#"--cloud-tag "env": expected KEY=VALUE"#,
    );
    fails(&e, KEY, &["--cloud", "ibm", "--oX", out, "--no-db"], 2, r#"--cloud "ibm": unknown provider"#);
    fails(
        &e,
        KEY,
        &["--cloud-tag", "env=lab", "-sL", "198.18.0.10", "--oX", out, "--no-db"],
        2,
        "--cloud-tag needs --cloud",
    );
    fails(
        &e,
        KEY,
        &["--cloud", "aws", "--cloud-public-only", "--cloud-private-only", "--oX", out],
        2,
        "cannot be used with",
    );
    drop(moto);

    // A user without the permission: moto enforces IAM once the setup's two calls are made.
    let moto = Moto::start(15303, Some(2));
    let key: Value = serde_json::from_str(&moto.setup("denied")).unwrap();
    let (id, secret) = (key["id"].as_str().unwrap(), key["secret"].as_str().unwrap());
    fails(
        &moto.endpoint(),
        Some((id, secret)),
        &["--cloud", "aws", "--oX", out, "--no-db"],
        1,
        "permission ec2:DescribeRegions denied in us-east-1",
    );
}
