//! Process resource limits. A connect scan holds one file descriptor per probe in flight, so the
//! soft `RLIMIT_NOFILE` (often 1024) would cap concurrency or cause EMFILE; it is raised to the hard
//! limit once, and the engine sizes its window from what it got.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Descriptors kept free for everything else the process does (output files, DNS, stdio).
pub const RESERVED_FDS: u64 = 64;

/// Raise the soft open-file limit to the hard limit (capped at 1 << 20) and return the new soft
/// limit. Failure is not fatal: the current soft limit is returned.
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

/// How many probes may be in flight given the descriptor limit.
pub fn fd_budget() -> usize {
    let limit = raise_nofile_limit();
    usize::try_from(limit.saturating_sub(RESERVED_FDS).max(16)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    #[test]
    fn budget_is_at_least_the_old_soft_limit_minus_reserve() {
        let (soft, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        let b = super::fd_budget() as u64;
        assert!(b + super::RESERVED_FDS >= soft.min(1 << 20) || b == 16);
    }
}
