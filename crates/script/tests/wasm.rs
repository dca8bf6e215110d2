//! WASM scripts (feature `wasm`): the example `wasm-banner.wat` against a real daemon on
//! 127.0.0.1, and the limits: fuel (an infinite loop), memory growth, the target rule, output
//! size, traps and load errors. Each stopped script runs next to a well-behaved one.
#![cfg(feature = "wasm")]

use rustmap_model::{HostResult, HostStatus, PortResult, PortState, Protocol, Reason};
use rustmap_script::script::Origin;
use rustmap_script::{Catalog, Context, Engine, Kind, Limits, Outcome, Script, ScriptArgs, ScriptError, Targets};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn example() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/wasm/wasm-banner.wat"))
}

fn host(ports: &[u16]) -> HostResult {
    let mut h = HostResult::new(LOCAL, HostStatus::Up, Reason::SynAck);
    for &p in ports {
        h.ports.push(PortResult::new(Protocol::Tcp, p, PortState::Open, Reason::SynAck, 0));
    }
    h
}

fn ctx(args: &str) -> Context {
    Context { targets: Targets::new([LOCAL]), args: ScriptArgs::parse(args).unwrap(), ..Context::default() }
}

fn limits() -> Limits {
    Limits { timeout: Duration::from_secs(10), ..Limits::default() }
}

async fn banner_server(greeting: &'static [u8]) -> u16 {
    let l = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let _ = s.write_all(greeting).await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            });
        }
    });
    port
}

/// A hostrule module whose action is `body` (WAT instructions, leaving an i32).
fn hostrule(id: &str, extra: &str, body: &str) -> Script {
    build(id, "", extra, body)
}

/// As [`hostrule`], with more imports.
fn hostrule_with_imports(id: &str, imports: &str, body: &str) -> Script {
    build(id, imports, "", body)
}

fn build(id: &str, imports: &str, extra: &str, body: &str) -> Script {
    let wat = format!(
        r#"(module
  {imports}
  (import "rustmap" "host_ip" (func $host_ip (param i32 i32) (result i32)))
  (import "rustmap" "connect" (func $connect (param i32 i32 i32) (result i32)))
  (import "rustmap" "output" (func $output (param i32 i32)))
  (import "rustmap" "field" (func $field (param i32 i32 i32 i32)))
  (import "rustmap" "arg" (func $arg (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "127.0.0.2")
  (data (i32.const 16) "ok")
  (data (i32.const 32) "greeting")
  {extra}
  (func (export "hostrule") (param i32 i32) (result i32) (i32.const 1))
  (func (export "action") (param i32 i32) (result i32) (local i32) {body}))"#
    );
    Script::parse_wasm(id, wat.as_bytes(), Origin::Builtin).unwrap()
}

fn fine() -> Script {
    hostrule("wasm-fine", "", "(call $output (i32.const 16) (i32.const 2)) (i32.const 0)")
}

async fn run(scripts: Vec<Script>, limits: Limits) -> Vec<Outcome> {
    Engine::new(scripts, ctx("greeting=hello"), limits, 8).run_host(&host(&[])).await
}

fn result_of(outcomes: &[Outcome], id: &str) -> Result<Option<String>, ScriptError> {
    let o = outcomes.iter().find(|o| o.id == id).unwrap_or_else(|| panic!("{id} missing: {outcomes:?}"));
    o.result.clone().map(|r| r.map(|r| r.output))
}

async fn stopped(bad: Script, limits: Limits) -> ScriptError {
    let out = run(vec![bad, fine()], limits).await;
    assert_eq!(result_of(&out, "wasm-fine").unwrap().as_deref(), Some("ok"), "{out:?}");
    result_of(&out, "wasm-bad").expect_err("the bad script must be stopped")
}

#[tokio::test]
async fn the_example_reads_a_local_banner() {
    let port = banner_server(b"SSH-2.0-RustMapWasm_1.0\r\n").await;
    let mut catalog = Catalog::builtin().unwrap();
    let chosen = catalog.select(example().to_str().unwrap()).unwrap();
    let script = &chosen[0];
    assert_eq!((script.id.as_str(), script.kind), ("wasm-banner", Kind::Wasm));
    assert_eq!(script.categories, vec!["discovery", "safe"]);
    assert!(script.rules.portrule && !script.rules.hostrule);
    assert!(script.help().contains("(WASM)") && script.help().contains("banner"));
    // Once loaded, selectable by name and category like any script.
    assert!(catalog.select("wasm-* and safe").is_ok());
    let out = Engine::new(chosen, ctx(""), limits(), 8).run_host(&host(&[port])).await;
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].result.clone().unwrap().unwrap().output, "SSH-2.0-RustMapWasm_1.0");
}

#[tokio::test]
async fn the_example_loads_from_a_directory_as_binary_too() {
    let dir = tempfile::tempdir().unwrap();
    let binary = wat::parse_file(example()).unwrap();
    std::fs::write(dir.path().join("wasm-banner.wasm"), binary).unwrap();
    let mut c = Catalog::default();
    assert!(c.add_dir(dir.path()).is_empty());
    assert_eq!(c.get("wasm-banner").unwrap().kind, Kind::Wasm);
}

#[tokio::test]
async fn an_infinite_loop_runs_out_of_fuel() {
    let bad = hostrule("wasm-bad", "", "(loop $l (br $l)) (i32.const 0)");
    let started = Instant::now();
    let e = stopped(bad, Limits { instructions: 5_000_000, ..limits() }).await;
    assert_eq!(e, ScriptError::InstructionBudget { budget: 5_000_000 });
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[tokio::test]
async fn memory_growth_past_the_limit_is_a_memory_error() {
    let small = Limits { memory_bytes: 1 << 20, ..limits() };
    // Growing one page at a time until the limit: the grow that crosses it stops the run.
    let grow = "(loop $l (br_if $l (i32.ge_s (memory.grow (i32.const 1)) (i32.const 0)))) (i32.const 0)";
    let e = stopped(hostrule("wasm-bad", "", grow), small).await;
    assert_eq!(e, ScriptError::MemoryLimit { limit: 1 << 20 });
    // A module that asks for more memory up front than the limit does not start.
    let wat = r#"(module (memory 64) (func (export "hostrule") (param i32 i32) (result i32) (i32.const 1))
        (func (export "action") (param i32 i32) (result i32) (i32.const 0)))"#;
    let big = Script::parse_wasm("wasm-bad", wat.as_bytes(), Origin::Builtin).unwrap();
    assert_eq!(stopped(big, small).await, ScriptError::MemoryLimit { limit: 1 << 20 });
}

#[tokio::test]
async fn the_wall_clock_stops_a_script_waiting_on_a_silent_peer() {
    let l = std::net::TcpListener::bind((LOCAL, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    // Accepts (the backlog does) and never sends.
    let recv = format!(
        "(local.set 2 (call $connect (i32.const 64) (call $host_ip (i32.const 64) (i32.const 64)) (i32.const {port})))
         (drop (call $recv (local.get 2) (i32.const 128) (i32.const 64) (i32.const 60000)))
         (i32.const 0)"
    );
    let extra = r#"(import "rustmap" "recv" (func $recv (param i32 i32 i32 i32) (result i32)))"#;
    let bad = hostrule_with_imports("wasm-bad", extra, &recv);
    let started = Instant::now();
    let e = stopped(bad, Limits { timeout: Duration::from_secs(2), ..limits() }).await;
    assert_eq!(e, ScriptError::Timeout { after: Duration::from_secs(2) });
    assert!(started.elapsed() < Duration::from_secs(6), "{:?}", started.elapsed());
    drop(l);
}

#[tokio::test]
async fn connect_to_a_non_target_is_refused() {
    let body = "(drop (call $connect (i32.const 0) (i32.const 9) (i32.const 80))) (call $output (i32.const 16) (i32.const 2)) (i32.const 0)";
    let e = stopped(hostrule("wasm-bad", "", body), limits()).await;
    assert_eq!(e, ScriptError::NotATarget { addr: "127.0.0.2".into() });
}

#[tokio::test]
async fn output_is_bounded_and_fields_are_ordered() {
    let tiny = Limits { output_bytes: 100, ..limits() };
    let flood = "(loop $l (call $output (i32.const 0) (i32.const 64)) (br $l)) (i32.const 0)";
    assert_eq!(stopped(hostrule("wasm-bad", "", flood), tiny).await, ScriptError::OutputTooLarge { limit: 100 });
    // Fields in order, and a script argument read back.
    let body = "(call $field (i32.const 16) (i32.const 2) (i32.const 0) (i32.const 9))
        (call $field (i32.const 32) (i32.const 8) (i32.const 100) (call $arg (i32.const 32) (i32.const 8) (i32.const 100) (i32.const 50)))
        (i32.const 0)";
    let out = run(vec![hostrule("wasm-fields", "", body)], limits()).await;
    let o = out.iter().find(|o| o.id == "wasm-fields").unwrap();
    let r = o.result.clone().unwrap().unwrap();
    assert_eq!(r.output, "\n  ok: 127.0.0.2\n  greeting: hello");
    assert_eq!(r.elements[1], ("greeting".to_string(), "hello".to_string()));
}

#[tokio::test]
async fn traps_and_bad_modules_are_typed() {
    let e = stopped(hostrule("wasm-bad", "", "(unreachable)"), limits()).await;
    assert!(matches!(e, ScriptError::Runtime { ref message } if message.contains("unreachable")), "{e:?}");
    let deep = "(func $f (param i32) (result i32) (call $f (local.get 0)))";
    let e = stopped(hostrule("wasm-bad", deep, "(call $f (i32.const 0))"), limits()).await;
    assert_eq!(e, ScriptError::StackOverflow);
    let e = stopped(hostrule("wasm-bad", "", "(i32.const 7)"), limits()).await;
    assert_eq!(e, ScriptError::Runtime { message: "action returned 7".into() });
    // Not WASM, no action, an unknown import: load errors.
    for wat in [
        "not a module",
        r#"(module (func (export "hostrule") (result i32) (i32.const 1)))"#,
        r#"(module (func (export "action") (param i32 i32) (result i32) (i32.const 0)))"#,
    ] {
        assert!(matches!(Script::parse_wasm("wasm-x", wat.as_bytes(), Origin::Builtin), Err(ScriptError::Load { .. })));
    }
    let unknown = r#"(module (import "env" "system" (func)) (func (export "hostrule") (param i32 i32) (result i32) (i32.const 1))
        (func (export "action") (param i32 i32) (result i32) (i32.const 0)))"#;
    let s = Script::parse_wasm("wasm-bad", unknown.as_bytes(), Origin::Builtin).unwrap();
    assert!(matches!(stopped(s, limits()).await, ScriptError::Load { .. }));
    // Hostile bytes never panic.
    let mut seed = 3u64;
    for n in 0..300 {
        let mut bytes = b"\0asm\x01\0\0\0".to_vec();
        for _ in 0..n % 64 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            bytes.push((seed >> 56) as u8);
        }
        let _ = Script::parse_wasm("wasm-x", &bytes, Origin::Builtin);
    }
}

#[tokio::test]
async fn a_prerule_module_runs_before_the_hosts() {
    let wat = r#"(module
      (import "rustmap" "output" (func $output (param i32 i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "before")
      (func (export "prerule") (param i32 i32) (result i32) (i32.const 1))
      (func (export "action") (param i32 i32) (result i32) (call $output (i32.const 0) (i32.const 6)) (i32.const 0)))"#;
    let s = Script::parse_wasm("wasm-pre", wat.as_bytes(), Origin::Builtin).unwrap();
    assert!(s.rules.prerule && !s.rules.hostrule);
    let out = Engine::new(vec![s], ctx(""), limits(), 4).run_pre().await;
    assert_eq!(result_of(&out, "wasm-pre").unwrap().as_deref(), Some("before"));
}

#[tokio::test]
async fn lua_python_and_wasm_scripts_run_side_by_side_in_one_engine() {
    let port = banner_server(b"220 RustMap FTP ready\r\n").await;
    let mut catalog = Catalog::builtin().unwrap();
    let mut scripts = catalog.select("banner").unwrap();
    scripts.extend(catalog.select(example().to_str().unwrap()).unwrap());
    // A Python script that depends on the Lua one: it runs in the next runlevel.
    let py = "dependencies = ['banner']\nimport rustmap\ndef portrule(host, port):\n    return True\n\ndef action(host, port):\n    s = rustmap.socket()\n    s.connect(host, port)\n    return s.recv().decode().strip()\n";
    scripts.push(Script::parse_python("py-banner", py, Origin::Builtin).unwrap());
    let kinds: Vec<Kind> = scripts.iter().map(|s| s.kind).collect();
    assert_eq!(kinds, vec![Kind::Lua, Kind::Wasm, Kind::Python]);
    let out = Engine::new(scripts, ctx(""), limits(), 8).run_host(&host(&[port])).await;
    for id in ["banner", "wasm-banner", "py-banner"] {
        assert_eq!(result_of(&out, id).unwrap().as_deref(), Some("220 RustMap FTP ready"), "{id}: {out:?}");
    }
    // Completion order within a level is free, but the dependent comes after its dependency.
    let pos = |id: &str| out.iter().position(|o| o.id == id).unwrap();
    assert!(pos("py-banner") > pos("banner"));
}
