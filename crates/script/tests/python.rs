//! Python (`py-*`) scripts end to end: real worker processes of the machine's `python3`, real
//! daemons on 127.0.0.1 only. The built-in py-http-title, the sandbox (direct sockets,
//! processes, files, the guard itself), the rlimits (CPU, address space), the wall clock, the
//! target rule over the socket RPC, and a missing interpreter. Every test runs a further script
//! after the one that was stopped, to show the stop did not leak.

use rustmap_model::{HostResult, HostStatus, PortResult, PortState, Protocol, Reason, ScriptScope, ServiceInfo};
use rustmap_script::script::Origin;
use rustmap_script::{
    Catalog, Context, Engine, Kind, Limits, Outcome, PyConfig, Script, ScriptArgs, ScriptError, Targets,
};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn host(ports: &[u16], service: Option<&str>) -> HostResult {
    let mut h = HostResult::new(LOCAL, HostStatus::Up, Reason::SynAck);
    for &p in ports {
        let mut port = PortResult::new(Protocol::Tcp, p, PortState::Open, Reason::SynAck, 0);
        port.service = service.map(|s| ServiceInfo { name: s.into(), ..ServiceInfo::default() });
        h.ports.push(port);
    }
    h
}

fn ctx(args: &str) -> Context {
    Context { targets: Targets::new([LOCAL]), args: ScriptArgs::parse(args).unwrap(), ..Context::default() }
}

fn limits(secs: u64) -> Limits {
    Limits { timeout: Duration::from_secs(secs), ..Limits::default() }
}

fn py(id: &str, source: &str) -> Script {
    Script::parse_python(id, source, Origin::Builtin).unwrap()
}

/// A hostrule script whose action is `body` (indented by the caller's text).
fn hostrule(id: &str, body: &str) -> Script {
    py(id, &format!("categories = ['safe']\ndef hostrule(host):\n    return True\ndef action(host):\n{body}\n"))
}

const FINE: &str = "    return 'still fine'";

async fn run(scripts: Vec<Script>, config: PyConfig, secs: u64) -> Vec<Outcome> {
    let engine = Engine::new(scripts, ctx(""), limits(secs), 8).with_python(config);
    engine.run_host(&host(&[], None)).await
}

fn result_of(outcomes: &[Outcome], id: &str) -> Result<Option<String>, ScriptError> {
    let o = outcomes.iter().find(|o| o.id == id).unwrap_or_else(|| panic!("{id} missing: {outcomes:?}"));
    o.result.clone().map(|r| r.map(|r| r.output))
}

/// Runs `bad` and a well-behaved script next to it; returns `bad`'s error.
async fn stopped(bad: &str, config: PyConfig) -> ScriptError {
    let out = run(vec![hostrule("py-bad", bad), hostrule("py-fine", FINE)], config, 10).await;
    assert_eq!(result_of(&out, "py-fine").unwrap().as_deref(), Some("still fine"), "{out:?}");
    result_of(&out, "py-bad").expect_err("the bad script must be stopped")
}

/// A tiny HTTP server answering every request with `body`.
async fn http_server(body: &'static str) -> u16 {
    let l = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut buf = [0u8; 2048];
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn py_http_title_is_built_in_selectable_and_reads_a_real_page() {
    let port = http_server("<html><head><TITLE>RustMap  Python\n Lab</TITLE></head></html>").await;
    let mut catalog = Catalog::builtin().unwrap();
    let script = catalog.get("py-http-title").unwrap().clone();
    assert_eq!(script.kind, Kind::Python);
    assert!(script.rules.portrule && !script.rules.hostrule);
    assert_eq!(script.categories, vec!["discovery", "safe"]);
    assert!(script.help().contains("(Python)"));
    let chosen = catalog.select("safe and py-http-t*").unwrap();
    assert_eq!(chosen.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), vec!["py-http-title"]);
    let engine = Engine::new(chosen, ctx(""), limits(10), 8);
    // Two ports: the HTTP one, and one whose service the portrule declines.
    let mut h = host(&[port], Some("http"));
    h.ports.push(PortResult::new(Protocol::Tcp, 9, PortState::Open, Reason::SynAck, 0));
    // And an "http" port where nothing listens: no output, as http-title.
    let closed = std::net::TcpListener::bind((LOCAL, 0)).unwrap().local_addr().unwrap().port();
    let mut gone = PortResult::new(Protocol::Tcp, closed, PortState::Open, Reason::SynAck, 0);
    gone.service = Some(ServiceInfo { name: "http".into(), ..ServiceInfo::default() });
    h.ports.push(gone);
    let out = engine.run_host(&h).await;
    // Port 9 declined (no outcome); the unreachable one ran and returned nothing.
    assert_eq!(out.len(), 2, "{out:?}");
    let silent = out.iter().find(|o| matches!(o.scope, ScriptScope::Port { port, .. } if port == closed)).unwrap();
    assert_eq!(silent.result, Ok(None));
    let o = out.iter().find(|o| matches!(o.scope, ScriptScope::Port { port: p, .. } if p == port)).unwrap();
    let r = o.result.clone().unwrap().unwrap();
    assert_eq!(r.output, "\n  title: RustMap Python Lab");
    assert_eq!(r.elements, vec![("title".to_string(), "RustMap Python Lab".to_string())]);
}

#[tokio::test]
async fn py_scripts_load_from_files_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("py-mine.py"),
        "description = 'mine'\ncategories = ['safe', 'intrusive']\ndef hostrule(h):\n    return True\n\ndef action(h):\n    print('hello trace')\n    return {'ip': h['ip'], 'args': rustmap.args('greeting'), 'list': [1, 'two']}\nimport rustmap\n",
    )
    .unwrap();
    // A helper module next to the scripts is not a script.
    std::fs::write(dir.path().join("helper.py"), "x = 1\n").unwrap();
    let mut c = Catalog::builtin().unwrap();
    let chosen = c.select(dir.path().to_str().unwrap()).unwrap();
    assert_eq!(chosen.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), vec!["py-mine"]);
    assert!(c.select("intrusive").is_ok());
    let engine = Engine::new(chosen, ctx("greeting=hi"), limits(10), 8);
    let out = engine.run_host(&host(&[], None)).await;
    let r = out[0].result.clone().unwrap().unwrap();
    assert_eq!(r.output, "\n  ip: 127.0.0.1\n  args: hi\n  list: \n    1\n    two");
    assert!(out[0].trace.iter().any(|l| l == "hello trace"), "{:?}", out[0].trace);
}

#[tokio::test]
async fn a_direct_socket_is_refused_even_inside_try() {
    let e = stopped(
        "    import socket\n    try:\n        socket.socket().connect(('127.0.0.2', 80))\n    except BaseException:\n        return 'caught'\n    return 'connected'",
        PyConfig::default(),
    )
    .await;
    assert!(matches!(&e, ScriptError::Forbidden { what } if what.starts_with("socket.")), "{e:?}");
}

#[tokio::test]
async fn processes_and_files_are_refused() {
    for (body, what) in [
        ("    import os\n    os.system('true')", "os.system"),
        ("    import subprocess\n    subprocess.run(['true'])", "import _posixsubprocess"),
        ("    import os\n    os.fork()", "os.fork"),
        ("    open('/tmp/rustmap-py-test', 'w')", "open for writing"),
        ("    return open('/etc/hostname').read()", "open /etc/hostname"),
        ("    import ctypes", "import"),
        // Through a symbolic link out of the interpreter's directory, and through `..`.
        (
            "    import os, sys\n    return open(sys.prefix + '/../../../../../../etc/hostname').read()",
            "open /etc/hostname",
        ),
        ("    import pathlib\n    return pathlib.Path('/etc/hostname').read_text()", "open"),
        (
            "    import os\n    os.getcwd = lambda: __import__('sys').prefix\n    return open('etc/hostname').read()",
            "open /etc/hostname",
        ),
    ] {
        let e = stopped(body, PyConfig::default()).await;
        assert!(matches!(&e, ScriptError::Forbidden { what: w } if w.starts_with(what)), "{body}: {e:?}");
    }
    assert!(!std::path::Path::new("/tmp/rustmap-py-test").exists());
}

#[tokio::test]
async fn the_guard_cannot_be_disarmed_from_the_script() {
    for body in [
        // Emptying the runner's list of refused events.
        "    import __main__\n    __main__._REFUSED = ()\n    import os\n    os.system('true')",
        // Neutering the exit the guard uses.
        "    import os\n    os._exit = lambda code: None\n    os.system('true')",
        // Swapping the hook's code.
        "    import __main__\n    __main__._hook.__code__ = (lambda e, a: None).__code__",
        "    import __main__\n    __main__._hook.__defaults__ = None",
        // Replacing the builtins the guard's checks use.
        "    import builtins\n    builtins.isinstance = lambda *a: False\n    builtins.any = lambda *a: False\n    builtins.str = lambda *a: ''\n    open('/tmp/rustmap-py-guard', 'w')",
    ] {
        let e = stopped(body, PyConfig::default()).await;
        assert!(matches!(e, ScriptError::Forbidden { .. }), "{body}: {e:?}");
    }
    assert!(!std::path::Path::new("/tmp/rustmap-py-guard").exists());
}

#[tokio::test]
async fn an_infinite_loop_hits_the_cpu_limit_and_the_next_script_runs() {
    let config = PyConfig { cpu_seconds: Some(1), ..PyConfig::default() };
    // One second of CPU, well inside the 10 s wall clock even on a loaded machine.
    let e = stopped("    while True:\n        pass", config).await;
    assert_eq!(e, ScriptError::CpuLimit { seconds: 1 });
}

#[tokio::test]
async fn a_sleeping_script_is_killed_at_the_wall_clock_limit() {
    let started = Instant::now();
    let out = run(vec![hostrule("py-sleepy", "    import time\n    time.sleep(60)")], PyConfig::default(), 2).await;
    assert_eq!(result_of(&out, "py-sleepy"), Err(ScriptError::Timeout { after: Duration::from_secs(2) }));
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
}

#[tokio::test]
async fn memory_bombs_hit_the_address_space_limit() {
    let config = PyConfig { memory_bytes: 256 * 1024 * 1024, ..PyConfig::default() };
    for body in [
        "    x = bytearray(1 << 33)\n    return 'allocated'",
        "    keep = []\n    while True:\n        keep.append(bytearray(1 << 20))",
        // Caught and retried: the limit still holds, and the run ends as a memory error.
        "    keep = []\n    for _ in range(100000):\n        try:\n            keep.append(bytearray(1 << 20))\n        except MemoryError:\n            pass\n    raise MemoryError",
    ] {
        let e = stopped(body, config.clone()).await;
        assert_eq!(e, ScriptError::MemoryLimit { limit: 256 * 1024 * 1024 }, "{body}");
    }
}

#[tokio::test]
async fn rpc_connect_to_a_non_target_is_not_a_target_even_inside_try() {
    let e = stopped(
        "    import rustmap\n    try:\n        rustmap.socket().connect('127.0.0.2', 80)\n    except BaseException:\n        pass\n    return 'went on'",
        PyConfig::default(),
    )
    .await;
    assert_eq!(e, ScriptError::NotATarget { addr: "127.0.0.2".into() });
    let e = stopped("    import rustmap\n    rustmap.http_get('example.com', 80)", PyConfig::default()).await;
    assert_eq!(e, ScriptError::NotATarget { addr: "example.com".into() });
}

#[tokio::test]
async fn rpc_sockets_talk_to_a_local_daemon() {
    let l = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let _ = s.write_all(b"HELLO \xff\x00\r\n").await;
            let mut buf = [0u8; 64];
            if let Ok(n) = s.read(&mut buf).await {
                let _ = s.write_all(&buf[..n]).await;
            }
        }
    });
    let body = format!(
        "    import rustmap\n    s = rustmap.socket()\n    s.connect(host, {port})\n    first = s.recv()\n    s.send(b'echo\\x01')\n    back = s.recv()\n    s.close()\n    return repr(first) + ' ' + repr(back)"
    );
    let out = run(vec![hostrule("py-sock", &body)], PyConfig::default(), 10).await;
    assert_eq!(result_of(&out, "py-sock").unwrap().unwrap(), "b'HELLO \\xff\\x00\\r\\n' b'echo\\x01'");
}

#[tokio::test]
async fn script_errors_are_typed() {
    let out = run(
        vec![
            hostrule("py-raise", "    raise ValueError('nope')"),
            hostrule("py-deep", "    def f(n):\n        return f(n + 1)\n    f(0)"),
            py("py-syntax", "def hostrule(h):\n    return True\ndef action(h):\n    return (\n"),
        ],
        PyConfig::default(),
        10,
    )
    .await;
    assert_eq!(result_of(&out, "py-raise"), Err(ScriptError::Runtime { message: "ValueError: nope".into() }));
    assert_eq!(result_of(&out, "py-deep"), Err(ScriptError::StackOverflow));
    assert!(matches!(result_of(&out, "py-syntax"), Err(ScriptError::Load { .. })), "{out:?}");
    // Statically: a script without an action or a rule does not load at all.
    assert!(Script::parse_python("py-x", "def hostrule(h): return True\n", Origin::Builtin).is_err());
    assert!(Script::parse_python("py-x", "def action(h): return 1\n", Origin::Builtin).is_err());
}

#[tokio::test]
async fn a_missing_interpreter_is_a_clear_error() {
    let config = PyConfig { interpreter: Some(PathBuf::from("/nonexistent/python3")), ..PyConfig::default() };
    let scripts = Catalog::builtin().unwrap().select("py-http-title").unwrap();
    let engine = Engine::new(scripts, ctx(""), limits(10), 8).with_python(config);
    // Port 9 (discard) is declined by `rustmap.is_http` without a worker: no outcome, no error.
    let mut h = host(&[80], Some("http"));
    h.ports.push(PortResult::new(Protocol::Tcp, 9, PortState::Open, Reason::SynAck, 0));
    let out = engine.run_host(&h).await;
    assert_eq!(out.len(), 1, "{out:?}");
    let e = result_of(&out, "py-http-title").unwrap_err();
    assert!(matches!(e, ScriptError::NoInterpreter { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.starts_with("py-http-title needs Python 3: "), "{text}");
    assert!(text.contains("/nonexistent/python3"), "{text}");
    assert_eq!(e.kind(), "no-interpreter");
}

#[tokio::test]
async fn many_workers_are_bounded_by_the_pool() {
    let config = PyConfig { workers: 2, ..PyConfig::default() };
    let scripts: Vec<Script> = (0..6)
        .map(|i| hostrule(&format!("py-nap{i}"), "    import time\n    time.sleep(0.5)\n    return 'ok'"))
        .collect();
    let started = Instant::now();
    let out = run(scripts, config, 20).await;
    assert_eq!(out.iter().filter(|o| matches!(&o.result, Ok(Some(_)))).count(), 6, "{out:?}");
    // Six half-second naps, two at a time: at least three rounds.
    assert!(started.elapsed() >= Duration::from_millis(1500), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_symlink_out_of_the_interpreters_directory_is_refused() {
    // An interpreter prefix this test owns: a copy of the interpreter, its standard library
    // linked in, and a link inside the prefix that points at /etc.
    let probe = std::process::Command::new("python3")
        .args([
            "-I",
            "-S",
            "-c",
            "import sys; print(sys.executable); print(sys.prefix); print('python%d.%d' % sys.version_info[:2])",
        ])
        .output()
        .expect("python3 runs");
    let text = String::from_utf8(probe.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (exe, prefix, lib) = (lines[0], lines[1], lines[2]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("bin")).unwrap();
    std::fs::create_dir_all(dir.path().join("lib")).unwrap();
    std::fs::copy(exe, dir.path().join("bin/python3")).unwrap();
    std::os::unix::fs::symlink(format!("{prefix}/lib/{lib}"), dir.path().join("lib").join(lib)).unwrap();
    std::os::unix::fs::symlink("/etc", dir.path().join("leak")).unwrap();
    std::fs::write(dir.path().join("inside.txt"), "inside").unwrap();
    let config = PyConfig { interpreter: Some(dir.path().join("bin/python3")), ..PyConfig::default() };
    let e = stopped("    import sys\n    return open(sys.prefix + '/leak/hostname').read()", config.clone()).await;
    assert!(matches!(&e, ScriptError::Forbidden { what } if what == "open /etc/hostname"), "{e:?}");
    // A file inside the prefix is readable (that is how imports work).
    let allowed = hostrule("py-read", "    import sys\n    return open(sys.prefix + '/inside.txt').read()");
    let out = run(vec![allowed], config, 10).await;
    assert_eq!(result_of(&out, "py-read").unwrap().as_deref(), Some("inside"));
}

#[tokio::test]
async fn oversized_output_is_a_typed_error() {
    let e = stopped("    return 'x' * 10_000_000", PyConfig::default()).await;
    assert_eq!(e, ScriptError::OutputTooLarge { limit: Limits::default().output_bytes });
    let e = stopped("    return {str(i): 'y' * 100 for i in range(10_000)}", PyConfig::default()).await;
    assert_eq!(e, ScriptError::OutputTooLarge { limit: Limits::default().output_bytes });
}

#[tokio::test]
async fn prerule_and_postrule_scripts_run_without_a_host() {
    let pre = py("py-pre", "def prerule():\n    return True\ndef action():\n    return 'before'\n");
    let post = py("py-post", "def postrule():\n    return True\ndef action():\n    return 'after'\n");
    let engine = Engine::new(vec![pre, post], ctx(""), limits(10), 4);
    let before = engine.run_pre().await;
    assert_eq!(result_of(&before, "py-pre").unwrap().as_deref(), Some("before"));
    assert_eq!(before.len(), 1);
    let after = engine.run_post().await;
    assert_eq!(result_of(&after, "py-post").unwrap().as_deref(), Some("after"));
}
