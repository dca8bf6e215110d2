//! Process resource limits. A connect scan holds one file descriptor per probe in flight, so the
//! soft `RLIMIT_NOFILE` (often 1024) would cap concurrency or cause EMFILE. Raising it changes the
//! whole process, so the library never does so itself: a program calls [`raise_nofile_limit`] once
//! at start, and each scan sizes its window from [`fd_budget`], which only reads the limit.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Descriptors kept free for everything else the process does (output files, DNS, stdio).
pub const RESERVED_FDS: u64 = 64;

/// Raise the soft open-file limit to the hard limit (capped at 1 << 20) and return the new soft
/// limit. Failure is not fatal: the current soft limit is returned. Process-wide: for a program's
/// `main`, never for a library.
pub fn raise_nofile_limit() -> u64 {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            let want = hard.min(1 << 20);
            if want > soft && setrlimit(Resource::RLIMIT_NOFILE, want, hard).is_ok() {
                want
            } else {
                soft
            }
        }
        Err(_) => 1024,
    }
}

/// How many probes may be in flight given the descriptor limit as it stands (read only).
pub fn fd_budget() -> usize {
    let limit = getrlimit(Resource::RLIMIT_NOFILE).map(|(soft, _)| soft).unwrap_or(1024);
    usize::try_from(limit.saturating_sub(RESERVED_FDS).max(16)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use nix::sys::resource::{getrlimit, Resource};

    #[test]
    fn budget_reads_the_limit_and_changes_nothing() {
        let before = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        let b = super::fd_budget() as u64;
        assert_eq!(getrlimit(Resource::RLIMIT_NOFILE).unwrap(), before, "fd_budget must not raise the limit");
        assert_eq!(b, before.0.saturating_sub(super::RESERVED_FDS).max(16));
        // Raising is explicit, and gives at least what there was.
        assert!(super::raise_nofile_limit() >= before.0.min(1 << 20));
    }
}
