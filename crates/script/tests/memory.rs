//! The process stays within its memory: many memory bombs at once, each stopped at its state's
//! limit, and no more states in flight than the engine's memory budget allows. Its own test
//! binary, so that no other test's allocations blur the peak.

use rustmap_model::{HostResult, HostStatus, Reason};
use rustmap_script::{Context, Engine, Limits, Script, ScriptError, Targets};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// Peak resident memory of this process (Linux `VmHWM`), in bytes.
fn peak_rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_memory_bombs_stay_within_the_budget() {
    const BOMB: &str = "categories = {'safe'}\nhostrule = function() return true end\naction = function() collectgarbage('stop') local t = {} for i = 1, 1e9 do t[i] = string.rep('x', 1000) .. i end end\n";
    let origin = || rustmap_script::script::Origin::Builtin;
    let scripts: Vec<Script> = (0..24).map(|i| Script::parse(&format!("bomb-{i}"), BOMB, origin()).unwrap()).collect();
    let limits = Limits { memory_bytes: 16 << 20, timeout: Duration::from_secs(30), ..Limits::default() };
    let ctx = Context { targets: Targets::new([IpAddr::V4(Ipv4Addr::LOCALHOST)]), ..Context::default() };
    let engine = Engine::new(scripts, ctx, limits, 64).with_memory_budget(64 << 20);
    assert_eq!(engine.in_flight(), 4);
    let before = peak_rss();
    let host = HostResult::new(IpAddr::V4(Ipv4Addr::LOCALHOST), HostStatus::Up, Reason::SynAck);
    let out = engine.run_host(&host).await;
    assert_eq!(out.len(), 24);
    assert!(out.iter().all(|o| matches!(o.result, Err(ScriptError::MemoryLimit { .. }))), "{out:?}");
    let grown = peak_rss().saturating_sub(before);
    eprintln!("peak resident memory grew by {} MiB", grown >> 20);
    // Four states of 16 MiB at once, plus allocator slack: far below 24 × 16 MiB.
    assert!(grown < 128 << 20, "peak grew by {} MiB", grown >> 20);
}
