//! `--proxy` against a real SOCKS5 server: Debian's dante (`danted`), run inside the lab's
//! scanner namespace on its loopback (127.0.0.1:1080 without authentication, 127.0.0.1:1081
//! with user name and password), its log in the test's temporary directory. The scans go
//! through it to the lab's services host, h10, and are checked against the lab's ground truth
//! and against what dante logged.
//!
//! Needs the lab (`tests/lab/lab.sh up`, as root) and dante-server (`tests/lab/install-deps.sh`).
//! Without them the tests skip with a reason, except under `CI=true`, where they fail. Every
//! process a test starts (dante and its children: one process group) is ended when the test ends,
//! whatever the outcome, and so is the throwaway system user of the authentication tests.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const DANTED: &str = "/usr/sbin/danted";
const H10: &str = "198.18.0.10";

fn prefix() -> String {
    std::env::var("LAB_PREFIX").unwrap_or_else(|_| "rmlab".into())
}

fn scanner_ns() -> String {
    format!("{}-scan", prefix())
}

fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// One lab test at a time: they share the proxy ports and the lab's hosts.
static LAB_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Take the lab if it is up and dante is installed. Outside CI a missing piece skips the test.
fn lab() -> Option<std::sync::MutexGuard<'static, ()>> {
    let guard = LAB_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let up = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.split_whitespace().next() == Some(&scanner_ns())))
        .unwrap_or(false);
    let missing = if !up {
        Some(format!("lab namespace {} not found (needs root: bash tests/lab/lab.sh up)", scanner_ns()))
    } else if !Path::new(DANTED).exists() {
        Some(format!("{DANTED} not installed (bash tests/lab/install-deps.sh installs dante-server)"))
    } else {
        None
    };
    if let Some(why) = missing {
        if in_ci() {
            panic!("{why} (CI=true: not skipping)");
        }
        eprintln!("SKIP: {why}");
        return None;
    }
    Some(guard)
}

fn ground_truth() -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/lab/ground-truth.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn truth_open_tcp(name: &str) -> BTreeSet<u16> {
    let hosts = ground_truth()["hosts"].as_array().unwrap().clone();
    let h = hosts.iter().find(|h| h["name"] == name).unwrap();
    h["tcp"]["open"].as_array().unwrap().iter().map(|p| p["port"].as_u64().unwrap() as u16).collect()
}

/// A HOME of the lab tests' own (the scans below also say --no-db).
fn lab_home() -> PathBuf {
    let d = std::env::temp_dir().join(format!("{}-home", prefix()));
    let _ = std::fs::create_dir_all(&d);
    d
}

/// RustMap in the scanner namespace, which has no route out of the lab.
fn rustmap(args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", &scanner_ns(), env!("CARGO_BIN_EXE_rustmap"), "--no-db", "--no-progress"])
        .args(args)
        .env("HOME", lab_home())
        .stdin(Stdio::null())
        .output()
        .expect("ip netns exec")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A JSON scan that must succeed.
fn json_scan(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--oJ", "-"]);
    let o = rustmap(&all);
    assert!(o.status.success(), "rustmap {args:?}: {}", text(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("JSON from {args:?}: {e}: {}", text(&o.stdout)))
}

fn the_host(v: &Value) -> &Value {
    let hosts = v["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 1, "{v}");
    &hosts[0]
}

fn ports_in(h: &Value, state: &str) -> BTreeSet<u16> {
    h["ports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["state"] == state)
        .map(|p| p["port"].as_u64().unwrap() as u16)
        .collect()
}

/// A dante server in the scanner namespace, ended (with all its children) when dropped.
struct Dante {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Dante {
    /// Start danted on 127.0.0.1:`port` with `socksmethod` (`none` or `username`); wait until it
    /// runs.
    fn start(port: u16, socksmethod: &str) -> Dante {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("danted.log");
        let conf = dir.path().join("danted.conf");
        // Log every connection: the tests read which targets dante connected to.
        let config = format!(
            "logoutput: {log}\n\
             internal: 127.0.0.1 port = {port}\n\
             external: eth0\n\
             clientmethod: none\n\
             socksmethod: {socksmethod}\n\
             user.privileged: root\n\
             user.unprivileged: nobody\n\
             client pass {{\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n  log: connect disconnect error\n}}\n\
             socks pass {{\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n  command: connect\n  log: connect disconnect error\n}}\n",
            log = log.display()
        );
        std::fs::write(&conf, config).unwrap();
        let out = std::fs::File::create(dir.path().join("danted.out")).unwrap();
        let err = out.try_clone().unwrap();
        // Its own process group: the mother and every child it forks end together.
        let child = std::os::unix::process::CommandExt::process_group(
            Command::new("ip")
                .args(["netns", "exec", &scanner_ns(), DANTED, "-f"])
                .arg(&conf)
                .arg("-p")
                .arg(dir.path().join("danted.pid"))
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err),
            0,
        )
        .spawn()
        .expect("start danted");
        let mut dante = Dante { child, dir, port };
        let started = Instant::now();
        loop {
            if dante.log().contains(" running") {
                return dante;
            }
            if let Ok(Some(status)) = dante.child.try_wait() {
                panic!("danted exited ({status}): {}{}", dante.log(), dante.output());
            }
            if started.elapsed() > Duration::from_secs(15) {
                panic!("danted not running after 15 s: {}{}", dante.log(), dante.output());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self, scheme: &str, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((u, p)) => format!("{scheme}://{u}:{p}@127.0.0.1:{}", self.port),
            None => format!("{scheme}://127.0.0.1:{}", self.port),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("danted.log")).unwrap_or_default()
    }

    fn output(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("danted.out")).unwrap_or_default()
    }

    /// Ports of `addr` that dante opened a connection to (its `tcp/connect [` lines: a session
    /// through the proxy began), with the user it logged for each.
    fn connected(&self, addr: &str) -> Vec<(u16, String)> {
        let tail = format!(" {addr}.");
        self.log()
            .lines()
            .filter(|l| l.contains("tcp/connect [:"))
            .filter_map(|l| {
                let port = l.rsplit_once(&tail)?.1.trim().parse().ok()?;
                let user = l.split("username%").nth(1).and_then(|u| u.split('@').next()).unwrap_or("").to_string();
                Some((port, user))
            })
            .collect()
    }

    fn connected_ports(&self, addr: &str) -> BTreeSet<u16> {
        self.connected(addr).into_iter().map(|(p, _)| p).collect()
    }
}

impl Drop for Dante {
    fn drop(&mut self) {
        // The mother first: on SIGTERM it ends and reaps its children itself.
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).stderr(Stdio::null()).status();
        let group = format!("-{}", self.child.id());
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Whatever is left of the group (children are ended by their mother on SIGTERM).
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.child.wait();
    }
}

/// A throwaway system user for dante's `socksmethod: username` (it checks the system's password
/// database), deleted when dropped.
struct TempUser {
    name: String,
    password: String,
}

impl TempUser {
    fn create() -> TempUser {
        let name = format!("rmpx{}", std::process::id());
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let password = format!("Px-{nanos:x}-w0rd");
        // A leftover of a run that was killed.
        let _ = Command::new("userdel").arg(&name).stderr(Stdio::null()).status();
        let ok = Command::new("useradd")
            .args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", &name])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "useradd {name} failed (needs root)");
        let user = TempUser { name, password };
        let mut chpasswd = Command::new("chpasswd").stdin(Stdio::piped()).spawn().expect("chpasswd");
        {
            use std::io::Write;
            let mut stdin = chpasswd.stdin.take().unwrap();
            writeln!(stdin, "{}:{}", user.name, user.password).unwrap();
        }
        assert!(chpasswd.wait().unwrap().success(), "chpasswd failed");
        user
    }
}

impl Drop for TempUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

#[test]
fn connect_scan_through_dante_finds_exactly_the_open_ports_and_dante_logs_them() {
    let Some(_lab) = lab() else { return };
    let dante = Dante::start(1080, "none");
    let want = truth_open_tcp("h10");
    // -sT is the default with a proxy, as root too.
    let v = json_scan(&["-n", "-p-", "--proxy", &dante.url("socks5", None), H10]);
    let h = the_host(&v);
    assert_eq!(h["addr"], H10);
    assert_eq!(ports_in(h, "open"), want, "open ports through the proxy vs ground truth");
    assert_eq!(v["scans"][0]["scan_type"], "connect", "{}", v["scans"]);
    let scanned: u64 = h["ports"].as_array().unwrap().len() as u64
        + h["extraports"].as_array().unwrap().iter().map(|e| e["count"].as_u64().unwrap()).sum::<u64>();
    assert_eq!(scanned, 65535);
    // dante connected to exactly those ports: every open port went through it.
    assert_eq!(dante.connected_ports(H10), want, "dante's log");
    // Discovery did not run (it would bypass the proxy), and the user is told.
    assert_eq!(h["reason"], "user-set");
    let warnings = v["warnings"].to_string();
    assert!(warnings.contains("as -Pn"), "{warnings}");
}

#[test]
fn service_detection_goes_through_dante() {
    let Some(_lab) = lab() else { return };
    let dante = Dante::start(1080, "none");
    let v = json_scan(&["-n", "-sV", "-p", "21,22,80,6379", "--proxy", &dante.url("socks5", None), H10]);
    let h = the_host(&v);
    let service = |port: u64| {
        let p = h["ports"].as_array().unwrap().iter().find(|p| p["port"] == port).unwrap();
        (p["service"]["name"].as_str().unwrap_or("").to_string(), p["service"]["method"].clone())
    };
    for (port, name) in [(21, "ftp"), (22, "ssh"), (80, "http"), (6379, "redis")] {
        let (got, method) = service(port);
        assert_eq!((got.as_str(), method), (name, Value::from("probed")), "port {port}: {h}");
    }
    // The probes of -sV went through dante too: more than one connection per port.
    let ssh = dante.connected(H10).iter().filter(|(p, _)| *p == 22).count();
    assert!(ssh >= 2, "dante saw {ssh} connections to port 22: {}", dante.log());
    assert!(v["warnings"].to_string().contains("UDP and QUIC"), "{}", v["warnings"]);
}

#[test]
fn username_authentication_right_wrong_and_missing() {
    let Some(_lab) = lab() else { return };
    let user = TempUser::create();
    let dante = Dante::start(1081, "username");
    let ports = "21,22,23,80,443,8080";
    let want: BTreeSet<u16> = [21, 22, 80, 443, 8080].into();
    let good = dante.url("socks5", Some((&user.name, &user.password)));
    let v = json_scan(&["-n", "-p", ports, "--proxy", &good, H10]);
    let h = the_host(&v);
    assert_eq!(ports_in(h, "open"), want);
    assert_eq!(ports_in(h, "closed"), [23].into());
    // dante logged the connections, as made by our user.
    let seen = dante.connected(H10);
    assert_eq!(seen.iter().map(|(p, _)| *p).collect::<BTreeSet<_>>(), want, "{}", dante.log());
    assert!(seen.iter().all(|(_, u)| *u == user.name), "{seen:?}");
    // The password is in no output.
    assert!(!v.to_string().contains(&user.password), "the password leaked into the JSON output");

    // A wrong password: a clear error, exit 1, no port reported, nothing sent to the target.
    let before = dante.connected(H10).len();
    let bad = dante.url("socks5", Some((&user.name, "not-the-password")));
    let o = rustmap(&["-n", "-p", ports, "--proxy", &bad, H10]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(err.contains("authentication failed") && err.contains(&user.name), "{err}");
    assert!(!out.contains("/tcp"), "no port may be reported: {out}");
    assert_eq!(dante.connected(H10).len(), before, "no connection made");

    // No credentials for a proxy that wants them.
    let o = rustmap(&["-n", "-p", ports, "--proxy", &dante.url("socks5", None), H10]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("without authentication") && err.contains("USER:PASS"), "{err}");
    assert!(!text(&o.stdout).contains("/tcp"));
}

#[test]
fn no_proxy_listening_is_a_clear_error() {
    let Some(_lab) = lab() else { return };
    // Nothing listens on 127.0.0.1:1089 in the scanner namespace.
    let o = rustmap(&["-n", "-p", "22,80", "--proxy", "socks5://127.0.0.1:1089", H10]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(err.contains("SOCKS5 proxy 127.0.0.1:1089 is unreachable"), "{err}");
    assert!(!out.contains("/tcp") && !out.contains("filtered"), "{out}");
}

#[test]
fn socks5h_hands_target_names_to_the_proxy() {
    let Some(_lab) = lab() else { return };
    let dante = Dante::start(1080, "none");
    // A DNS server that answers nothing (h13 has no DNS): a name resolved by RustMap would fail.
    let no_dns = ["--dns-servers", "198.18.0.13", "--resolve-timeout", "2s"];
    let mut args = vec!["-p", "22,80,81", "--proxy"];
    let url = dante.url("socks5h", None);
    args.push(&url);
    args.extend(no_dns);
    args.push("h10.lab.test");
    let v = json_scan(&args);
    let h = the_host(&v);
    assert_eq!(h["hostnames"][0]["name"], "h10.lab.test");
    assert_eq!(h["addr"], "0.0.0.1", "a placeholder: RustMap never learned the address");
    assert_eq!(ports_in(h, "open"), [22, 80].into());
    assert_eq!(ports_in(h, "closed"), [81].into());
    // dante resolved the name and connected to h10.
    assert_eq!(dante.connected_ports(H10), [22, 80].into());
    // The same with socks5://: the name is resolved here, and the DNS server does not answer.
    let url = dante.url("socks5", None);
    let mut args = vec!["-p", "22", "--proxy", &url];
    args.extend(no_dns);
    args.push("h10.lab.test");
    let v = json_scan(&args);
    assert!(v["hosts"].as_array().unwrap().is_empty(), "{v}");
    assert!(v["warnings"].to_string().contains("Failed to resolve"), "{}", v["warnings"]);
}

/// Raw scan types would bypass the proxy: a usage error, whatever the privileges. No lab needed.
#[test]
fn raw_scans_with_a_proxy_are_refused() {
    // nmap's -sY is spelled as the guide's -sZ in messages.
    for (scan, spelled) in [("-sS", "-sS"), ("-sU", "-sU"), ("-sA", "-sA"), ("-sY", "-sZ")] {
        let o = Command::new(env!("CARGO_BIN_EXE_rustmap"))
            .args(["--no-db", "--privileged", scan, "--proxy", "socks5://127.0.0.1:1080", "127.0.0.1"])
            .env("HOME", lab_home())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{scan}: {err}");
        assert!(
            err.contains(&format!("{spelled} cannot go through --proxy")) && err.contains("bypass the proxy"),
            "{err}"
        );
        assert!(o.stdout.is_empty(), "{scan}: nothing scanned");
    }
}
