//! `--script`, `-sC` and the `--script-*` flags end to end on loopback: built-in and user
//! scripts against real listeners, results in the normal, XML and JSON outputs and in the stored
//! history, the sandbox's typed errors at `-d`, and the usage errors (exit 2, naming the value).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn rustmap_in(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rustmap"))
        .args(args)
        .env("HOME", home)
        .stdin(Stdio::null())
        .output()
        .expect("run rustmap")
}

fn home() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// An HTTP server on 127.0.0.1 answering every request with a page titled `title`, for at most
/// 200 connections or 60 s (it lives on a thread of its own; the test process ends it).
fn http_server(title: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(60);
        let mut served = 0;
        while served < 200 && Instant::now() < end {
            let Ok((mut s, _)) = l.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            served += 1;
            let _ = s.set_nonblocking(false);
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = format!("<html><head><title>{title}</title></head><body>lab</body></html>");
            let reply = format!(
                "HTTP/1.1 200 OK\r\nServer: rmtest/1.0\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(reply.as_bytes());
        }
    });
    port
}

fn write_script(dir: &Path, name: &str, source: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, source).unwrap();
    path
}

#[test]
fn http_title_runs_with_service_detection_in_every_output() {
    let port = http_server("Scripted Lab Page").to_string();
    let h = home();
    let xml = h.path().join("out.xml");
    let json = h.path().join("out.json");
    let o = rustmap_in(
        h.path(),
        &[
            "-n",
            "-sT",
            "-sV",
            "-p",
            &port,
            "--script",
            "http-title",
            "-oX",
            xml.to_str().unwrap(),
            "-oJ",
            json.to_str().unwrap(),
            "127.0.0.1",
        ],
    );
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(out.contains("|_http-title: Scripted Lab Page"), "{out}");
    let x = std::fs::read_to_string(&xml).unwrap();
    assert!(
        x.contains("<script id=\"http-title\" output=\"Scripted Lab Page\"><elem key=\"title\">Scripted Lab Page</elem></script>"),
        "{x}"
    );
    let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(j["hosts"][0]["ports"][0]["scripts"][0]["output"], "Scripted Lab Page");
}

#[test]
fn script_args_reach_the_script() {
    let port = http_server("Args Page").to_string();
    let h = home();
    // A user script in ~/.rustmap/scripts/: found by name, reads its argument both ways.
    let dir = h.path().join(".rustmap").join("scripts");
    std::fs::create_dir_all(&dir).unwrap();
    write_script(
        &dir,
        "lab-args.nse",
        r#"
description = "Echoes its arguments."
categories = {"safe"}
local stdnse = require "stdnse"
portrule = function(host, port) return port.state == "open" end
action = function(host, port)
  local out = stdnse.output_table()
  out.path = stdnse.get_script_args(SCRIPT_NAME .. ".path")
  out.list = stdnse.get_script_args("list")
  out.nested = { inner = { deep = "yes" } }
  return out
end
"#,
    );
    let file = write_script(h.path(), "args.txt", "# a comment\nlab-args.path=/admin\n");
    let o = rustmap_in(
        h.path(),
        &[
            "-n",
            "-sT",
            "-p",
            &port,
            "--script",
            "lab-args",
            "--script-args-file",
            file.to_str().unwrap(),
            "--script-args",
            "list={a,b}",
            "-oX",
            "-",
            "127.0.0.1",
        ],
    );
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(out.contains("<elem key=\"path\">/admin</elem>"), "{out}");
    // Tables nest as nmap's XML does: unkeyed items, keyed tables.
    assert!(out.contains("<table key=\"list\"><elem>a</elem><elem>b</elem></table>"), "{out}");
    assert!(
        out.contains("<table key=\"nested\"><table key=\"inner\"><elem key=\"deep\">yes</elem></table></table>"),
        "{out}"
    );
}

#[test]
fn a_script_stopped_by_the_sandbox_reports_a_typed_error_and_the_others_run() {
    let port = http_server("Still Here").to_string();
    let h = home();
    let dir = h.path().join("scripts");
    std::fs::create_dir_all(&dir).unwrap();
    write_script(
        &dir,
        "escape.nse",
        r#"
description = "Tries to reach an address that is not a target."
categories = {"safe"}
portrule = function() return true end
action = function(host, port)
  local nmap = require "nmap"
  local s = nmap.new_socket()
  s:connect("127.0.0.2", port.number)
  return "should not get here"
end
"#,
    );
    write_script(
        &dir,
        "spin.nse",
        r#"
description = "Loops forever inside pcall."
categories = {"safe"}
portrule = function() return true end
action = function() while true do pcall(function() end) end end
"#,
    );
    write_script(
        &dir,
        "fine.nse",
        r#"
description = "Says hello."
categories = {"safe"}
portrule = function() return true end
action = function() return "hello" end
"#,
    );
    let started = Instant::now();
    let o = rustmap_in(
        h.path(),
        &["-n", "-sT", "-p", &port, "--script", dir.to_str().unwrap(), "--script-timeout", "3s", "-d", "127.0.0.1"],
    );
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(out.contains("|_escape: ERROR: Script execution failed (not-a-target"), "{out}");
    assert!(out.contains("|_spin: ERROR: Script execution failed (timeout: timed out after 3s)"), "{out}");
    assert!(out.contains("fine: hello"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(30), "the timeout held: {:?}", started.elapsed());
    // Without -d a failed script shows nothing, as in nmap.
    let o = rustmap_in(h.path(), &["-n", "-sT", "-p", &port, "--script", dir.to_str().unwrap(), "127.0.0.1"]);
    let out = text(&o.stdout);
    assert!(!out.contains("escape") && out.contains("fine: hello"), "{out}");
}

#[test]
fn pre_and_post_rules_and_host_rules_print_where_nmap_puts_them() {
    let port = http_server("Rules").to_string();
    let h = home();
    let dir = h.path().join("rules");
    std::fs::create_dir_all(&dir).unwrap();
    write_script(
        &dir,
        "lab-rules.nse",
        r#"
description = "One of each rule."
categories = {"safe"}
prerule = function() return true end
hostrule = function(host) return true end
postrule = function() return true end
action = function(host)
  if SCRIPT_TYPE == "hostrule" then return "host " .. host.ip end
  return SCRIPT_TYPE .. " ran"
end
"#,
    );
    let json = h.path().join("out.json");
    let o = rustmap_in(
        h.path(),
        &["-n", "-sT", "-p", &port, "--script", dir.to_str().unwrap(), "-oJ", json.to_str().unwrap(), "127.0.0.1"],
    );
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(out.contains("Pre-scan script results:\n|_lab-rules: prerule ran"), "{out}");
    assert!(out.contains("Host script results:\n|_lab-rules: host 127.0.0.1"), "{out}");
    assert!(out.contains("Post-scan script results:\n|_lab-rules: postrule ran"), "{out}");
    let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(j["prescript"][0]["output"], "prerule ran");
    assert_eq!(j["postscript"][0]["output"], "postrule ran");
    assert_eq!(j["hosts"][0]["scripts"][0]["output"], "host 127.0.0.1");
    // The history keeps the pre- and postrule results with the scan.
    let db = h.path().join(".rustmap").join("rustmap.db");
    let conn = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut st = conn.prepare("SELECT phase, result FROM scan_scripts ORDER BY rowid").unwrap();
    let rows: Vec<(String, String)> =
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].0, "pre");
    assert!(rows[1].1.contains("postrule ran"), "{rows:?}");
}

#[test]
fn script_trace_shows_the_socket_traffic() {
    let port = http_server("Traced").to_string();
    let h = home();
    let o = rustmap_in(
        h.path(),
        &["-n", "-sT", "-sV", "-p", &port, "--script", "http-title", "--script-trace", "-oN", "-", "127.0.0.1"],
    );
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(out.contains(&format!("NSE: [http-title 127.0.0.1:{port}/tcp] NSOCK CONNECT 127.0.0.1:{port}")), "{out}");
    assert!(out.contains("NSOCK SEND"), "{out}");
}

#[test]
fn script_help_describes_the_selection() {
    let h = home();
    let o = rustmap_in(h.path(), &["--script-help", "default"]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    for id in ["http-title", "ssl-cert", "ssh-hostkey", "ftp-anon", "rtsp-methods", "mongodb-info"] {
        assert!(out.lines().any(|l| l == id), "{id} missing from:\n{out}");
    }
    // As in nmap, banner is a discovery script, not a default one.
    assert!(!out.lines().any(|l| l == "banner"), "{out}");
    assert!(out.contains("Categories: default"), "{out}");
}

#[test]
fn bad_script_flags_are_usage_errors_naming_the_value() {
    let h = home();
    let cases: &[(&[&str], &str)] = &[
        (&["--script", "no-such-script", "127.0.0.1"], "no-such-script"),
        (&["--script", "default and (", "127.0.0.1"], "default and ("),
        (&["--script", "http-title", "--script-args", "a={b", "127.0.0.1"], "a={b"),
        (&["--script", "http-title", "--script-args-file", "/nonexistent/args", "127.0.0.1"], "/nonexistent/args"),
        (&["--script", "http-title", "--script-timeout", "soon", "127.0.0.1"], "soon"),
        (&["--script-args", "a=b", "127.0.0.1"], "needs --script or -sC"),
        (&["-sL", "-sC", "127.0.0.1"], "-sL"),
        (&["--script-help", "nothing-like-this"], "nothing-like-this"),
    ];
    for (args, named) in cases {
        let o = rustmap_in(h.path(), args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(named), "{args:?}: {err}");
        assert!(!text(&o.stdout).contains("scan report"), "{args:?} scanned");
    }
}

#[test]
fn sc_and_the_guides_spellings_select_the_default_scripts() {
    let port = http_server("Default Page").to_string();
    let h = home();
    for flags in [&["-sC"][..], &["--sC"][..], &["--script", "default"][..], &["-sCV"][..]] {
        let mut args = vec!["-n", "-sT", "-sV", "-p", &port];
        args.extend_from_slice(flags);
        args.push("127.0.0.1");
        let o = rustmap_in(h.path(), &args);
        let out = text(&o.stdout);
        assert!(o.status.success(), "{flags:?}: {out}{}", text(&o.stderr));
        assert!(out.contains("|_http-title: Default Page"), "{flags:?}: {out}");
    }
}

#[test]
fn script_results_are_kept_in_the_history() {
    let port = http_server("Stored Page").to_string();
    let h = home();
    let o = rustmap_in(h.path(), &["-n", "-sT", "-sV", "-p", &port, "--script", "http-title", "127.0.0.1"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let db = h.path().join(".rustmap").join("rustmap.db");
    assert!(db.exists(), "no history at {}", db.display());
    let conn = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let result: String = conn.query_row("SELECT result FROM hosts", [], |r| r.get(0)).unwrap();
    let host: serde_json::Value = serde_json::from_str(&result).unwrap();
    assert_eq!(host["ports"][0]["scripts"][0]["id"], "http-title", "{host}");
    assert_eq!(host["ports"][0]["scripts"][0]["output"], "Stored Page", "{host}");
}

#[test]
fn set_port_version_carries_a_scripts_findings_into_the_result() {
    let port = http_server("Versioned").to_string();
    let h = home();
    let script = write_script(
        h.path(),
        "lab-version.nse",
        r#"
local nmap = require "nmap"
description = "Names the service it finds."
categories = {"version"}
portrule = function(host, port) return port.state == "open" end
action = function(host, port)
  port.version.name = "lab-proto"
  port.version.product = "LabServer"
  port.version.version = "1.2"
  port.version.extrainfo = "set\27[2J by a script"
  nmap.set_port_version(host, port, "hardmatched")
end
"#,
    );
    let o = rustmap_in(
        h.path(),
        &["-n", "-sT", "-p", &port, "--script", script.to_str().unwrap(), "-oX", "-", "127.0.0.1"],
    );
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(
        out.contains(
            "<service name=\"lab-proto\" product=\"LabServer\" version=\"1.2\" extrainfo=\"set\\x1B[2J by a script\""
        ),
        "{out}"
    );
}
