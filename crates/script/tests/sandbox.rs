//! The sandbox's escapes and bombs: each is stopped with a typed error, and a further script
//! still runs afterwards within its limits.

use rustmap_script::{Limits, Sandbox, ScriptError};
use std::time::Duration;

fn limits() -> Limits {
    Limits {
        memory_bytes: 8 * 1024 * 1024,
        instructions: 5_000_000,
        timeout: Duration::from_secs(5),
        output_bytes: 4096,
    }
}

async fn run(source: &str) -> Result<String, ScriptError> {
    let sandbox = Sandbox::new(limits())?;
    let f = sandbox.load(source, "test")?;
    let out = sandbox.call::<mlua::Value>(&f, ()).await;
    assert!(sandbox.lua().used_memory() <= limits().memory_bytes, "state outgrew its limit");
    let v = out?;
    Ok(v.to_string().unwrap_or_default())
}

/// Runs `source`, checks its error with `expect`, then checks a further script still runs.
async fn stopped(source: &str, expect: impl Fn(&ScriptError) -> bool) {
    let err = run(source).await.expect_err("the script should have been stopped");
    assert!(expect(&err), "unexpected error for {source:?}: {err:?}");
    assert_eq!(run("return 'still here'").await.unwrap(), "still here");
}

#[tokio::test]
async fn os_execute_is_forbidden() {
    stopped("os.execute('id')", |e| matches!(e, ScriptError::Forbidden { what } if what == "os.execute")).await;
}

#[tokio::test]
async fn io_open_is_forbidden_even_inside_pcall() {
    stopped(
        "local ok = pcall(function() return io.open('/etc/passwd') end) return 'went on'",
        |e| matches!(e, ScriptError::Forbidden { what } if what == "io.open"),
    )
    .await;
}

#[tokio::test]
async fn bytecode_is_forbidden() {
    stopped("return load('\\27Lua\\84\\0')", |e| matches!(e, ScriptError::Forbidden { .. })).await;
    stopped("return string.dump(function() end)", |e| matches!(e, ScriptError::Forbidden { .. })).await;
}

#[tokio::test]
async fn string_rep_memory_bomb_hits_the_memory_limit() {
    stopped("local s = string.rep('x', 1 << 30) return #s", |e| matches!(e, ScriptError::MemoryLimit { .. })).await;
    stopped("local ok = pcall(string.rep, 'x', 1 << 30) return 'went on'", |e| {
        matches!(e, ScriptError::MemoryLimit { .. })
    })
    .await;
}

#[tokio::test]
async fn infinite_loop_inside_pcall_hits_the_budget() {
    stopped("while true do pcall(function() while true do end end) end", |e| {
        matches!(e, ScriptError::InstructionBudget { .. })
    })
    .await;
}

#[tokio::test]
async fn infinite_loop_in_a_coroutine_and_a_sort_comparator_hits_the_budget() {
    stopped(
        "local co = coroutine.create(function() while true do end end) while true do coroutine.resume(co) end",
        |e| matches!(e, ScriptError::InstructionBudget { .. }),
    )
    .await;
    stopped("table.sort({3,2,1}, function(a, b) while true do pcall(function() while true do end end) end end)", |e| {
        matches!(e, ScriptError::InstructionBudget { .. })
    })
    .await;
}

#[tokio::test]
async fn deep_recursion_is_stopped() {
    stopped("local function f(n) return 1 + f(n + 1) end return f(1)", |e| {
        matches!(e, ScriptError::StackOverflow | ScriptError::MemoryLimit { .. })
    })
    .await;
}

#[tokio::test]
async fn gc_stopped_with_table_growth_hits_the_memory_limit() {
    stopped("collectgarbage('stop') local t = {} for i = 1, 1e9 do t[i] = {i} end", |e| {
        matches!(e, ScriptError::MemoryLimit { .. })
    })
    .await;
}

#[tokio::test]
async fn pattern_bomb_is_refused() {
    stopped(
        "return string.find(string.rep('a', 20000), '.-.-.-.-.-.-.-b')",
        |e| matches!(e, ScriptError::Forbidden { what } if what.contains("pattern")),
    )
    .await;
    // One quantifier is enough when every start position scans to the end.
    stopped(
        "return (string.rep('a', 1000000)):find('a-b')",
        |e| matches!(e, ScriptError::Forbidden { what } if what.contains("pattern")),
    )
    .await;
    stopped(
        "for w in string.gmatch(string.rep('a', 30000), '(.-)(.-)x') do end",
        |e| matches!(e, ScriptError::Forbidden { what } if what.contains("pattern")),
    )
    .await;
    // A title on a large page is cheap however long the page.
    assert_eq!(
        run("return (string.rep('x', 1000000) .. '<title>Big</title>'):match('<title>(.-)</title>')").await.unwrap(),
        "Big"
    );
    // Ordinary patterns still work.
    assert_eq!(run("return ('<title>Hi</title>'):match('<title>(.-)</title>')").await.unwrap(), "Hi");
}

#[tokio::test]
async fn require_of_anything_but_a_library_is_forbidden() {
    stopped("return require('os')", |e| matches!(e, ScriptError::Forbidden { .. })).await;
}

#[tokio::test]
async fn wall_clock_timeout_stops_a_busy_script() {
    let limits = Limits { instructions: u64::MAX, timeout: Duration::from_millis(300), ..limits() };
    let sandbox = Sandbox::new(limits).unwrap();
    let f = sandbox.load("while true do end", "busy").unwrap();
    let err = sandbox.call::<()>(&f, ()).await.unwrap_err();
    assert!(matches!(err, ScriptError::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn runtime_errors_are_typed_and_syntax_errors_are_load_errors() {
    assert!(matches!(run("error('boom')").await, Err(ScriptError::Runtime { message }) if message.contains("boom")));
    assert!(matches!(run("this is not lua").await, Err(ScriptError::Load { .. })));
}

#[tokio::test]
async fn a_loop_in_a_load_reader_hits_the_budget() {
    stopped("while true do load(function() while true do end end) end", |e| {
        matches!(e, ScriptError::InstructionBudget { .. })
    })
    .await;
}

#[tokio::test]
async fn finalizers_are_forbidden() {
    stopped(
        "while true do setmetatable({}, {__gc = function() while true do end end}) end",
        |e| matches!(e, ScriptError::Forbidden { what } if what.contains("__gc")),
    )
    .await;
}

#[tokio::test]
async fn a_loop_in_a_close_handler_hits_the_budget() {
    stopped(
        "while true do local co = coroutine.create(function() local x <close> = setmetatable({}, {__close = function() while true do end end}) coroutine.yield() end) coroutine.resume(co) coroutine.close(co) end",
        |e| matches!(e, ScriptError::InstructionBudget { .. }),
    )
    .await;
}

#[tokio::test]
async fn c_loops_the_hook_cannot_reach_are_refused() {
    assert_eq!(run("return #string.rep('', 1 << 50)").await.unwrap(), "0");
    stopped("local t = {} table.move(t, 1, 1 << 50, 2) return 'x'", |e| matches!(e, ScriptError::Forbidden { .. }))
        .await;
    assert_eq!(run("return table.concat(table.move({1,2,3}, 1, 3, 2), ',')").await.unwrap(), "1,1,2,3");
}

#[tokio::test]
async fn pattern_work_counts_against_the_budget() {
    // Each call stays under the per-call step limit, but together they exceed the budget.
    stopped("local s = string.rep('a', 2000) for i = 1, 1e6 do s:find('a-b') end", |e| {
        matches!(e, ScriptError::InstructionBudget { .. })
    })
    .await;
}

#[tokio::test]
async fn a_busy_script_yields_to_others_and_coroutines_are_not_disturbed() {
    // On this single-threaded runtime, the sleeper finishes first only if the busy script yields.
    let limits = Limits { instructions: 50_000_000, ..limits() };
    let busy = async {
        let sandbox = Sandbox::new(limits).unwrap();
        let f = sandbox.load("local x = 0 for i = 1, 3000000 do x = x + i end return x", "busy").unwrap();
        let v: i64 = sandbox.call(&f, ()).await.unwrap();
        (v, std::time::Instant::now())
    };
    let sleeper = async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        std::time::Instant::now()
    };
    let ((v, busy_done), sleeper_done) = tokio::join!(busy, sleeper);
    assert_eq!(v, 4_500_001_500_000);
    assert!(sleeper_done < busy_done, "the busy script never yielded");
    // A coroutine the script made runs to its end in one resume, however long.
    let co = "local co = coroutine.create(function() local x = 0 for i = 1, 3000000 do x = x + i end return x end)\nlocal ok, v = coroutine.resume(co) return tostring(v) .. ' ' .. coroutine.status(co)";
    let sandbox = Sandbox::new(limits).unwrap();
    let f = sandbox.load(co, "co").unwrap();
    let out: String = sandbox.call(&f, ()).await.unwrap();
    assert_eq!(out, "4500001500000 dead");
}

#[tokio::test]
async fn error_objects_with_looping_metamethods_are_stopped() {
    let looping =
        "setmetatable({}, {__tostring = function() while true do end end, __index = function() while true do end end})";
    stopped(&format!("error({looping})"), |e| {
        matches!(e, ScriptError::InstructionBudget { .. } | ScriptError::Runtime { .. })
    })
    .await;
    stopped(&format!("local ok, e = pcall(error, {looping}) return tostring(e)"), |e| {
        matches!(e, ScriptError::InstructionBudget { .. })
    })
    .await;
}
