//! What the stages that run beside the scan engines (trace, OS detection) share in their
//! drivers: taking the next host off their queue, and sleeping on the capture socket until a
//! packet or the machine's next deadline, then reading what arrived.

use rustmap_netio::capture::{Capture, RecvBatch};
use std::os::fd::AsFd;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

/// The next job: waiting up to 100 ms for one when `idle` (nothing else to do), else only
/// taking one already queued.
pub(crate) fn next_job<J>(jobs: &Receiver<J>, idle: bool) -> Result<J, TryRecvError> {
    if idle {
        jobs.recv_timeout(Duration::from_millis(100)).map_err(|e| match e {
            RecvTimeoutError::Timeout => TryRecvError::Empty,
            RecvTimeoutError::Disconnected => TryRecvError::Disconnected,
        })
    } else {
        jobs.try_recv()
    }
}

/// Sleep until `wake` or a packet, then hand every packet waiting (at most 64 batches, so
/// the machine's timers are looked at again soon under a flood) to `on_packet` with the time
/// it was read.
pub(crate) fn wait_and_read(
    capture: &Capture,
    rx: &mut RecvBatch,
    wake: Instant,
    mut on_packet: impl FnMut(&[u8], Instant),
) {
    let now = Instant::now();
    let ms = u16::try_from(wake.saturating_duration_since(now).as_micros().div_ceil(1000)).unwrap_or(u16::MAX);
    let mut fds = [nix::poll::PollFd::new(capture.as_fd(), nix::poll::PollFlags::POLLIN)];
    let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms));
    for _ in 0..64 {
        if !matches!(capture.recv_batch(rx), Ok(n) if n > 0) {
            break;
        }
        let now = Instant::now();
        for k in 0..rx.len() {
            if let Some((_, frame)) = rx.get(k) {
                on_packet(frame, now);
            }
        }
    }
}
