//! Which process runs a scan, so that a scan whose row says `running` can be told apart: still
//! running (refuse to resume it), or its process is gone (killed, a power cut: resumable).
//!
//! A process id alone is not enough, since ids are reused. On Linux the owner is also tagged with
//! the boot's id and the process's start time (`/proc/PID/stat`, field 22), which together name
//! one process for ever. Elsewhere there is no tag, and a recorded process is taken as gone: the
//! user asked to resume, and a second runner would at worst write the same rows again.

/// This process, as recorded in `scans.pid` and `scans.owner`.
pub(crate) fn me() -> (i64, Option<String>) {
    let pid = std::process::id();
    (i64::from(pid), tag_of(pid))
}

/// Whether the process recorded as `pid` with `tag` still runs.
pub(crate) fn alive(pid: i64, tag: Option<&str>) -> bool {
    let Ok(pid) = u32::try_from(pid) else { return false };
    match (tag, tag_of(pid)) {
        (Some(want), Some(now)) => want == now,
        _ => false,
    }
}

/// `BOOT_ID/START_TICKS` of a process, on Linux; `None` when it does not exist or elsewhere.
fn tag_of(pid: u32) -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or parentheses itself:
    // the fields after it start after the last ')'. Start time is field 22, the 20th after it.
    let after = &stat[stat.rfind(')')? + 1..];
    let start = after.split_whitespace().nth(19)?;
    Some(format!("{}/{start}", boot.trim()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_is_alive_and_a_changed_tag_is_not() {
        let (pid, tag) = super::me();
        if cfg!(target_os = "linux") {
            let tag = tag.expect("a tag on Linux");
            assert!(super::alive(pid, Some(&tag)));
            assert!(!super::alive(pid, Some(&format!("{tag}0"))), "same pid, another process");
            assert!(!super::alive(i64::from(u32::MAX), Some(&tag)));
        }
        assert!(!super::alive(-1, None));
    }
}
