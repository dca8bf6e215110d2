//! The terminal side: raw mode and the alternate screen on the way in, restored on every way out
//! (return, error, panic on any thread), and the loop that drains the scan's events without ever
//! blocking on them, reads keys, and redraws at a fixed rate.

use crate::state::{Action, App, Key, Phase};
use crate::{Exit, Options, TuiError};
use futures_core::Stream;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::cursor::Show;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::Terminal;
use rustmap::EventStream;
use std::io::IsTerminal;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The terminal is in raw mode on the alternate screen (whoever restores it first clears this,
/// so the panic hook and the guard never both write the escape sequences).
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// A panic somewhere in the process restored the terminal under the loop's feet: the loop stops
/// instead of drawing over the shell's screen.
static RESTORED_BY_PANIC: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

/// Longest wait for a key between two looks at the event stream: short, so that a busy scan
/// never waits long for its reader (the stream is bounded and the scan waits when it is full).
const POLL: Duration = Duration::from_millis(20);
/// The wait for a key while events are flowing.
const BUSY_POLL: Duration = Duration::from_millis(1);
/// Events folded between two looks at the keyboard, so a flood cannot freeze the screen.
const DRAIN_MAX: usize = 4096;

fn restore() {
    let _ = disable_raw_mode();
    // Only a terminal took the escape sequences going in (`run` checks): none for a pipe.
    if std::io::stdout().is_terminal() {
        let _ = execute!(std::io::stdout(), LeaveAlternateScreen, Show);
    }
}

/// Restore the terminal if it is still ours.
fn release() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        restore();
    }
}

/// Restores the terminal when the loop ends, however it ends.
struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        release();
    }
}

/// Once per process: a panic hook that gives the terminal back before the panic message is
/// printed (in raw mode on the alternate screen the message would be lost, and the shell left
/// unusable), then runs the hook that was there before.
fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if ACTIVE.swap(false, Ordering::SeqCst) {
                restore();
                RESTORED_BY_PANIC.store(true, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

fn key_of(k: KeyEvent) -> Option<Key> {
    if k.kind == KeyEventKind::Release {
        return None;
    }
    if k.modifiers.contains(KeyModifiers::CONTROL) || k.modifiers.contains(KeyModifiers::ALT) {
        // Raw mode turns Ctrl-C into a key, not SIGINT: it quits as `q` does.
        return matches!(k.code, KeyCode::Char('c')).then_some(Key::Quit);
    }
    Some(match k.code {
        KeyCode::Char('q') => Key::Quit,
        KeyCode::Up | KeyCode::Char('k') => Key::Up,
        KeyCode::Down | KeyCode::Char('j') => Key::Down,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Home | KeyCode::Char('g') => Key::First,
        KeyCode::End | KeyCode::Char('G') => Key::Last,
        KeyCode::Char('h') | KeyCode::Char('?') => Key::Help,
        KeyCode::Esc => Key::Escape,
        _ => return None,
    })
}

/// Run the TUI on this (blocking) thread until the user quits or the scan was cancelled from
/// elsewhere (a signal): `cancel` is called when the user quits a scan that still runs.
pub(crate) fn run(
    mut events: EventStream,
    cancel: Box<dyn FnOnce() + Send>,
    options: Options,
) -> Result<Exit, TuiError> {
    install_panic_hook();
    RESTORED_BY_PANIC.store(false, Ordering::SeqCst);
    enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    let _guard = Guard;
    execute!(std::io::stdout(), EnterAlternateScreen)?;
    let mut terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    terminal.clear()?;

    let start = Instant::now();
    let frame_every = Duration::from_secs(1) / options.fps.max(1);
    let mut next_frame = start;
    let mut app = App::new(options.log_lines);
    let mut stream_open = true;
    // Polled, never awaited: nobody needs waking, the loop looks again within milliseconds.
    let mut cx = Context::from_waker(Waker::noop());
    let mut cancel = Some(cancel);
    loop {
        if RESTORED_BY_PANIC.load(Ordering::SeqCst) {
            return Err(TuiError::Panicked);
        }
        let mut drained = 0;
        while stream_open && drained < DRAIN_MAX {
            match Pin::new(&mut events).poll_next(&mut cx) {
                Poll::Ready(Some(ev)) => {
                    app.scan.apply(&ev);
                    drained += 1;
                }
                Poll::Pending => break,
                Poll::Ready(None) => {
                    stream_open = false;
                    if !app.scan.finished() {
                        app.scan.log_line("the scan's event stream ended before the scan finished", true);
                    }
                }
            }
        }
        // Cancelled by someone else (SIGTERM, a sink that asked to stop): nothing more will come,
        // and whoever cancelled wants the process to end, not a screen to read.
        if cancel.is_some() && matches!(&app.scan.phase, Phase::Finished(o) if o == "cancelled") {
            return Ok(Exit::CancelledElsewhere);
        }
        let now = Instant::now();
        if now >= next_frame {
            app.scan.tick(now - start);
            terminal.draw(|f| crate::ui::draw(f, &mut app))?;
            next_frame = now + frame_every;
        }
        // While events flow, only glance at the keyboard: the scan waits whenever the stream's
        // buffer is full, so a sleeping reader would slow a sweep down (by a second for a /16).
        let wait = if drained > 0 { BUSY_POLL } else { next_frame.saturating_duration_since(Instant::now()).min(POLL) };
        if !event::poll(wait)? {
            continue;
        }
        match event::read()? {
            Event::Key(k) => {
                let Some(key) = key_of(k) else { continue };
                if app.on_key(key) == Action::Quit {
                    let running = !app.scan.finished();
                    if running {
                        if let Some(c) = cancel.take() {
                            c();
                        }
                    }
                    return Ok(Exit::Quit { scan_running: running });
                }
                // Answer a key at once, not at the next tick.
                next_frame = Instant::now();
            }
            Event::Resize(..) => next_frame = Instant::now(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::crossterm::event::KeyEventState;

    fn key(code: KeyCode, modifiers: KeyModifiers, kind: KeyEventKind) -> Option<Key> {
        key_of(KeyEvent { code, modifiers, kind, state: KeyEventState::NONE })
    }

    #[test]
    fn keys_map_as_the_guide_says() {
        let press = |c| key(c, KeyModifiers::NONE, KeyEventKind::Press);
        assert_eq!(press(KeyCode::Char('j')), Some(Key::Down));
        assert_eq!(press(KeyCode::Down), Some(Key::Down));
        assert_eq!(press(KeyCode::Char('k')), Some(Key::Up));
        assert_eq!(press(KeyCode::Up), Some(Key::Up));
        assert_eq!(press(KeyCode::Char('h')), Some(Key::Help));
        assert_eq!(press(KeyCode::Char('q')), Some(Key::Quit));
        assert_eq!(press(KeyCode::Char('x')), None);
        assert_eq!(key(KeyCode::Char('c'), KeyModifiers::CONTROL, KeyEventKind::Press), Some(Key::Quit));
        assert_eq!(key(KeyCode::Char('j'), KeyModifiers::CONTROL, KeyEventKind::Press), None);
        assert_eq!(key(KeyCode::Char('q'), KeyModifiers::NONE, KeyEventKind::Release), None);
        assert_eq!(key(KeyCode::Char('G'), KeyModifiers::SHIFT, KeyEventKind::Press), Some(Key::Last));
    }
}

#[cfg(test)]
mod panic_tests {
    use super::*;

    /// A panic while the terminal is ours gives it back before the panic goes on (the hook), and
    /// tells the loop to stop; the guard then has nothing left to do.
    #[test]
    fn a_panic_restores_the_terminal_once() {
        install_panic_hook();
        ACTIVE.store(true, Ordering::SeqCst);
        RESTORED_BY_PANIC.store(false, Ordering::SeqCst);
        let r = std::panic::catch_unwind(|| {
            let _guard = Guard;
            panic!("boom (expected by this test)");
        });
        assert!(r.is_err());
        assert!(!ACTIVE.load(Ordering::SeqCst), "the terminal was released");
        assert!(RESTORED_BY_PANIC.load(Ordering::SeqCst), "by the hook, before unwinding reached the guard");
        // Without a panic the guard releases it, and the hook's flag stays down.
        RESTORED_BY_PANIC.store(false, Ordering::SeqCst);
        ACTIVE.store(true, Ordering::SeqCst);
        drop(Guard);
        assert!(!ACTIVE.load(Ordering::SeqCst));
        assert!(!RESTORED_BY_PANIC.load(Ordering::SeqCst));
    }
}
