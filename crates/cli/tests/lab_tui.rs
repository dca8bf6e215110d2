//! `rustmap --tui` driven as a person would: in a private tmux server (its own socket, so no
//! other tmux server is touched), a shell runs the scanner inside the lab's scanner namespace
//! against two lab hosts; the test reads the screen with `capture-pane`, types `j`, `h` and `q`,
//! and checks what a user would see: the hosts appear while the scan runs, the port panel follows
//! the selection, the help panel opens, `q` cancels the scan and gives back a usable terminal
//! (normal screen, cooked mode), with the scan stored as interrupted and `-oX` written.
//!
//! Without the lab this skips with a reason — except under `CI=true`, where it fails. A second
//! test needs no lab (a connect scan of 127.0.0.1): a finished scan stays on screen until `q`,
//! and Ctrl-C quits as `q` does. Every wait is bounded; the tmux server is killed on every way
//! out (a guard's `Drop`).

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How long the screen may take to show what is awaited.
const DEADLINE: Duration = Duration::from_secs(30);
const COLS: usize = 200;

/// A private tmux server with one session; killed on drop.
struct Tmux {
    socket: String,
    /// The server's socket file, removed on drop (kill-server leaves it behind).
    socket_path: Option<String>,
}

impl Tmux {
    fn start() -> Tmux {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let mut t = Tmux { socket: format!("rmtu-test-{}-{nanos}", std::process::id()), socket_path: None };
        let o = t.tmux(&[
            "new-session",
            "-d",
            "-x",
            &COLS.to_string(),
            "-y",
            "50",
            "-s",
            "tui",
            "env PS1='$ ' bash --norc --noprofile",
        ]);
        assert!(o.status.success(), "tmux new-session: {}", String::from_utf8_lossy(&o.stderr));
        let path = t.tmux(&["display", "-p", "#{socket_path}"]);
        t.socket_path = Some(String::from_utf8_lossy(&path.stdout).trim().to_string()).filter(|p| !p.is_empty());
        t
    }

    fn tmux(&self, args: &[&str]) -> Output {
        // -f /dev/null: none of the user's configuration (key bindings, status line) applies.
        Command::new("tmux").args(["-L", &self.socket, "-f", "/dev/null"]).args(args).output().expect("tmux")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "tui"]).stdout).into_owned()
    }

    fn alternate_on(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["display", "-p", "-t", "tui", "#{alternate_on}"]).stdout)
            .trim()
            .to_string()
    }

    /// Type `text` literally (no key names), then Enter if asked.
    fn type_text(&self, text: &str, enter: bool) {
        self.tmux(&["send-keys", "-t", "tui", "-l", text]);
        if enter {
            self.tmux(&["send-keys", "-t", "tui", "Enter"]);
        }
    }

    /// Poll the screen (every 100 ms, at most [`DEADLINE`]) until `ok` holds; panic with the last
    /// screen otherwise.
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(Instant::now() < end, "waited {DEADLINE:?} for {what}; the screen:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
        if let Some(p) = &self.socket_path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The right half of the screen: the port panel (the host list is the left half).
fn port_panel(screen: &str) -> String {
    let lines: Vec<String> = screen.lines().map(|l| l.chars().skip(COLS / 2).collect()).collect();
    lines.join("\n")
}

/// The address whose ports the port panel shows.
fn shown_host(screen: &str) -> Option<&'static str> {
    ["198.18.0.10", "198.18.0.11"].into_iter().find(|a| screen.contains(&format!("Ports of {a} ")))
}

fn tmux_present() -> bool {
    if Path::new("/usr/bin/tmux").exists() || Command::new("tmux").arg("-V").output().is_ok() {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "tmux is missing (tests/lab/install-deps.sh installs it)");
    eprintln!("SKIP: tmux is not installed (apt-get install tmux)");
    false
}

#[test]
fn tui_shows_the_live_scan_follows_the_keys_and_gives_the_terminal_back() {
    let Some(_lab) = lab() else { return };
    if !tmux_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tui.db");
    let xml = dir.path().join("scan.xml");
    let tmux = Tmux::start();
    // Slow on purpose, so that it is still running while the screen is read: every TCP port in
    // order (the lab's open ports are low: they come within the first second), one probe every
    // 5 ms per host — minutes in all, cut short by `q`.
    let cmd = format!(
        "ip netns exec {ns} env HOME={home} {bin} --tui -sS -p 1-65535 -r --scan-delay 5ms --db {db} --oX {xml} \
         198.18.0.10 198.18.0.11; echo EXIT=$?",
        ns = scanner_ns(),
        home = lab_home().display(),
        bin = env!("CARGO_BIN_EXE_rustmap"),
        db = db.display(),
        xml = xml.display(),
    );
    tmux.type_text(&cmd, true);

    // Both hosts listed, with open ports found, while the scan is still running.
    let s = tmux.wait_for("both hosts in the host list while the scan runs", |s| {
        s.contains("198.18.0.10")
            && s.contains("198.18.0.11")
            && s.contains("running")
            && port_panel(s).contains("22/tcp")
    });
    assert_eq!(tmux.alternate_on(), "1", "the TUI draws on the alternate screen:\n{s}");
    assert!(s.contains("Hosts: 2 up"), "{s}");
    assert!(s.contains("Events"), "{s}");
    assert!(s.contains("is up"), "the event log shows the hosts found:\n{s}");
    let first = shown_host(&s).unwrap_or_else(|| panic!("the port panel names a host:\n{s}"));
    let second = if first == "198.18.0.10" { "198.18.0.11" } else { "198.18.0.10" };
    // h10 has ftp on 21, h11 has no port below 22 open: the two port panels tell them apart.
    let has_ftp = |s: &str| port_panel(s).contains("21/tcp");
    let first_has_ftp = first == "198.18.0.10";
    let s =
        tmux.wait_for("the first host's ports", |s| has_ftp(s) == first_has_ftp && port_panel(s).contains("22/tcp"));
    assert_eq!(shown_host(&s), Some(first), "{s}");

    // j: the second host is selected, and its ports are shown instead.
    tmux.type_text("j", false);
    let s = tmux.wait_for("the second host's ports after j", |s| {
        shown_host(s) == Some(second) && has_ftp(s) != first_has_ftp && port_panel(s).contains("22/tcp")
    });
    assert!(s.contains("running"), "still running:\n{s}");
    // k: back to the first.
    tmux.type_text("k", false);
    tmux.wait_for("the first host again after k", |s| shown_host(s) == Some(first));

    // h: the help panel; h again: gone.
    tmux.type_text("h", false);
    let s = tmux.wait_for("the help panel after h", |s| s.contains("Help (h to close)"));
    assert!(s.contains("select the next host"), "{s}");
    tmux.type_text("h", false);
    tmux.wait_for("the help panel closed after h", |s| !s.contains("Help (h to close)"));

    // q while the scan runs: cancelled as by Ctrl-C (exit code 130), the terminal given back.
    tmux.type_text("q", false);
    // At the start of a line: the typed command line holds "echo EXIT=$?" too.
    let s = tmux.wait_for("rustmap to exit after q", |s| s.lines().any(|l| l.starts_with("EXIT=")));
    assert!(s.contains("EXIT=130"), "q cancels a running scan, reported as Ctrl-C is:\n{s}");
    assert!(s.contains("interrupted; resume it with: rustmap --resume"), "{s}");
    assert_eq!(tmux.alternate_on(), "0", "the alternate screen is left:\n{s}");
    assert!(!s.contains("Hosts:") && !s.contains("Ports of"), "no leftovers of the TUI on the shell's screen:\n{s}");
    // The shell is usable, and the terminal is back in cooked mode with echo.
    tmux.type_text("stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' '; echo; echo PANE-$((6*7))", true);
    let s = tmux.wait_for("the shell to answer", |s| s.contains("PANE-42"));
    assert!(s.contains("icanon echo"), "raw mode was left on:\n{s}");

    // The scan as a Ctrl-C'd one: stored as interrupted, -oX written whole.
    let o = Command::new(env!("CARGO_BIN_EXE_rustmap")).arg("--db").arg(&db).arg("--history").output().unwrap();
    let history = String::from_utf8_lossy(&o.stdout);
    assert!(history.contains("interrupted"), "{history}");
    let x = std::fs::read_to_string(&xml).unwrap();
    assert!(x.trim_end().ends_with("</nmaprun>"), "{x}");
    assert!(x.contains("198.18.0.11"), "{x}");
}

/// No lab needed: connect scans of 127.0.0.1 only. A finished scan stays on the screen, marked
/// finished, until `q` (exit code 0); Ctrl-C while a scan runs quits as `q` does (exit code 130).
#[test]
fn tui_stays_up_after_the_scan_and_ctrl_c_quits_like_q() {
    if !tmux_present() {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("scan.xml");
    let tmux = Tmux::start();
    let bin = env!("CARGO_BIN_EXE_rustmap");
    let home = dir.path().display();
    tmux.type_text(
        &format!("env HOME={home} {bin} --tui -sT -p {open} --no-db --oX {} 127.0.0.1; echo EXIT=$?", xml.display()),
        true,
    );
    let s = tmux.wait_for("the finished scan", |s| s.contains("finished 100%") && s.contains("scan completed"));
    assert!(port_panel(&s).contains(&format!("{open}/tcp")), "{s}");
    // Still there a while later: the TUI waits for q.
    std::thread::sleep(Duration::from_millis(1500));
    let s = tmux.screen();
    assert!(s.contains("finished 100%") && !s.lines().any(|l| l.starts_with("EXIT=")), "{s}");
    assert_eq!(tmux.alternate_on(), "1", "{s}");
    tmux.type_text("q", false);
    let s = tmux.wait_for("rustmap to exit after q", |s| s.lines().any(|l| l.starts_with("EXIT=")));
    assert!(s.contains("EXIT=0"), "q after the end is a normal exit:\n{s}");
    assert_eq!(tmux.alternate_on(), "0", "{s}");
    assert!(std::fs::read_to_string(&xml).unwrap().contains(&format!("portid=\"{open}\"")));

    // Ctrl-C while a (slow) scan runs.
    tmux.type_text("clear", true);
    tmux.type_text(
        &format!("env HOME={home} {bin} --tui -sT -p 1-65535 -r --scan-delay 5ms --no-db 127.0.0.1; echo EXIT=$?"),
        true,
    );
    tmux.wait_for("the running scan", |s| s.contains("running") && s.contains("Ports of 127.0.0.1"));
    tmux.tmux(&["send-keys", "-t", "tui", "C-c"]);
    let s = tmux.wait_for("rustmap to exit after Ctrl-C", |s| s.lines().any(|l| l.starts_with("EXIT=")));
    assert!(s.contains("EXIT=130"), "Ctrl-C cancels a running scan, as q does:\n{s}");
    assert!(s.contains("scan interrupted"), "{s}");
    assert_eq!(tmux.alternate_on(), "0", "{s}");
    drop(listener);
}
