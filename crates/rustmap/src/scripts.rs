//! The scripts stage. [`script_plan`] checks the `scripts` section of a configuration
//! (`--script`, `-sC`, `--script-args`, `--script-args-file`, `--script-timeout`,
//! `--script-trace`) into a [`ScriptPlan`]: the selected scripts, loaded and parsed, with their
//! arguments and limits, so a bad name or argument is an error before any packet. At run time
//! [`ScriptStage`] owns the scan's [`Engine`]: prerules after `ScanStarted`, host and port rules
//! on each host that is up once its detection is done (portrules need the services), postrules
//! before `ScanFinished`.
//!
//! Scripts may connect only to the scan's hosts: each host is added to the engine's target set
//! when it reaches the stage, with the names the user gave it and its reverse-DNS name.

use crate::validate::{conflict, invalid, parse_time, ConfigError};
use rustmap_model::config::ScanMode;
use rustmap_model::{
    HostResult, HostStatus, PortState, ScanConfig, ScanEvent, ScriptScope, ServiceInfo, ServiceMethod,
};
use rustmap_script::engine::DEFAULT_CONCURRENCY;
use rustmap_script::{Catalog, Context, Engine, Limits, Outcome, PortChange, Script, ScriptArgs, ScriptError, Targets};
use std::net::SocketAddr;
use std::time::Duration;

/// The scripts of a scan, checked.
#[derive(Debug, Clone)]
pub(crate) struct ScriptPlan {
    scripts: Vec<Script>,
    args: ScriptArgs,
    timeout: Duration,
    trace: bool,
    /// User scripts that failed to load (`~/.rustmap/scripts/`): warnings, not errors, unless
    /// the selection needed them.
    pub(crate) notices: Vec<String>,
}

/// Check the `scripts` section. `None` when no scripts are asked for.
pub(crate) fn script_plan(c: &ScanConfig) -> Result<Option<ScriptPlan>, ConfigError> {
    let s = &c.scripts;
    let Some(select) = s.select.as_deref() else {
        let knob = if s.args.is_some() {
            Some("--script-args")
        } else if s.args_file.is_some() {
            Some("--script-args-file")
        } else if s.timeout.is_some() {
            Some("--script-timeout")
        } else if s.trace {
            Some("--script-trace")
        } else {
            None
        };
        return match knob {
            Some(k) => Err(conflict("scripts.select", format!("{k} needs --script or -sC (no scripts are selected)"))),
            None => Ok(None),
        };
    };
    if c.mode == ScanMode::List {
        return Err(conflict("scripts.select", "-sL sends nothing: scripts cannot run with it"));
    }
    if select.trim().is_empty() {
        return Err(invalid("scripts.select", select, "--script needs script names, categories or files"));
    }
    let mut catalog = Catalog::builtin()
        .map_err(|e| invalid("scripts.select", select, format!("the built-in scripts failed to load: {e}")))?;
    let mut notices = Vec::new();
    if let Some(dir) = Catalog::user_dir() {
        for e in catalog.add_dir(&dir) {
            notices.push(format!("a script in {} was skipped: {e}", dir.display()));
        }
    }
    let scripts =
        catalog.select(select).map_err(|e| invalid("scripts.select", select, format!("--script {select}: {e}")))?;
    let mut args = ScriptArgs::default();
    if let Some(path) = &s.args_file {
        let shown = path.display().to_string();
        let text = read_bounded(path).map_err(|e| invalid("scripts.args_file", shown.clone(), e))?;
        args = ScriptArgs::parse_file(&text)
            .map_err(|e| invalid("scripts.args_file", shown.clone(), format!("--script-args-file {shown}: {e}")))?;
    }
    if let Some(text) = &s.args {
        let more = ScriptArgs::parse(text)
            .map_err(|e| invalid("scripts.args", text.clone(), format!("--script-args {text:?}: {e}")))?;
        args.extend(more);
    }
    let timeout = match &s.timeout {
        Some(t) => {
            let d = parse_time("scripts.timeout", "--script-timeout", &t.0)?;
            if d.is_zero() {
                return Err(invalid("scripts.timeout", t.0.clone(), "--script-timeout must be more than 0"));
            }
            d
        }
        None => Limits::default().timeout,
    };
    Ok(Some(ScriptPlan { scripts, args, timeout, trace: s.trace, notices }))
}

/// Largest `--script-args-file` read.
const MAX_ARGS_FILE: u64 = 1024 * 1024;

fn read_bounded(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("--script-args-file {shown}: {e}"))?;
    let mut text = String::new();
    file.take(MAX_ARGS_FILE + 1).read_to_string(&mut text).map_err(|e| format!("--script-args-file {shown}: {e}"))?;
    if text.len() as u64 > MAX_ARGS_FILE {
        return Err(format!("--script-args-file {shown}: larger than {MAX_ARGS_FILE} bytes"));
    }
    Ok(text)
}

/// The scripts of one running scan.
pub(crate) struct ScriptStage {
    engine: Engine,
    targets: Targets,
    /// `-d`: failed scripts are shown as such (nmap shows them only when debugging).
    show_errors: bool,
    /// Print each run's trace (`--script-trace`, or its debug lines at `-d`).
    show_trace: bool,
    /// A `py-*` script found no Python: said once, not once per port.
    said_no_python: std::sync::atomic::AtomicBool,
}

impl ScriptStage {
    pub(crate) fn new(plan: &ScriptPlan, verbosity: u8, debugging: u8) -> ScriptStage {
        let targets = Targets::default();
        let ctx = Context {
            targets: targets.clone(),
            args: plan.args.clone(),
            verbosity,
            debugging,
            trace: plan.trace,
            ..Context::default()
        };
        let limits = Limits { timeout: plan.timeout, ..Limits::default() };
        let engine = Engine::new(plan.scripts.clone(), ctx, limits, DEFAULT_CONCURRENCY);
        ScriptStage {
            engine,
            targets,
            show_errors: debugging > 0,
            show_trace: plan.trace || debugging > 0,
            said_no_python: Default::default(),
        }
    }

    /// Whether any host or port rule may run on `h`.
    pub(crate) fn wants(&self, h: &HostResult) -> bool {
        h.status == HostStatus::Up
    }

    /// Runs the host and port rules on `h`, puts their results into it, and returns the events
    /// to deliver before its `HostDone`: each result, and each run's trace as warnings.
    pub(crate) async fn run_host(&self, h: &mut HostResult) -> Vec<ScanEvent> {
        self.targets.add(h.addr);
        for n in &h.hostnames {
            self.targets.add_name(&n.name, h.addr);
        }
        // Portrules see the ports a script may talk to (and, on a host open everywhere, the ones
        // detection examined: a fresh state per port and script is not free); the host's other
        // ports are no business of theirs.
        let subset = crate::pipeline::flood_examined(h);
        let ports = std::mem::take(&mut h.ports);
        let mut view = h.clone();
        view.ports = ports
            .iter()
            .filter(|p| {
                matches!(p.state, PortState::Open | PortState::OpenFiltered | PortState::Unfiltered)
                    && crate::pipeline::examined(&subset, p)
            })
            .cloned()
            .collect();
        h.ports = ports;
        let outcomes = self.engine.run_host(&view).await;
        let mut events = Vec::new();
        for mut o in self.sorted(outcomes) {
            self.push_trace(&o, &mut events);
            for c in std::mem::take(&mut o.changes) {
                apply_change(h, &c);
            }
            let Some(ev) = o.into_event(self.show_errors) else { continue };
            if let ScanEvent::ScriptOutput { scope, result } = &ev {
                match *scope {
                    ScriptScope::Port { protocol, port, .. } => {
                        if let Some(p) = h.ports.iter_mut().find(|p| p.protocol == protocol && p.port == port) {
                            p.scripts.push(result.clone());
                        }
                    }
                    _ => h.scripts.push(result.clone()),
                }
            }
            events.push(ev);
        }
        events
    }

    /// Runs the prerules (`pre`) or postrules; their events, in script order.
    pub(crate) async fn run_global(&self, pre: bool) -> Vec<ScanEvent> {
        let outcomes = if pre { self.engine.run_pre().await } else { self.engine.run_post().await };
        let mut events = Vec::new();
        for o in self.sorted(outcomes) {
            self.push_trace(&o, &mut events);
            events.extend(o.into_event(self.show_errors));
        }
        events
    }

    /// Outcomes in a stable order (scripts finish in any order): by scope, then script name, as
    /// nmap prints them.
    fn sorted(&self, mut outcomes: Vec<Outcome>) -> Vec<Outcome> {
        let key = |o: &Outcome| match o.scope {
            ScriptScope::Port { protocol, port, .. } => (1, protocol as u8, port),
            _ => (0, 0, 0),
        };
        outcomes.sort_by(|a, b| key(a).cmp(&key(b)).then_with(|| a.id.cmp(&b.id)));
        outcomes
    }

    fn push_trace(&self, o: &Outcome, events: &mut Vec<ScanEvent>) {
        if let Err(e @ ScriptError::NoInterpreter { .. }) = &o.result {
            if !self.said_no_python.swap(true, std::sync::atomic::Ordering::Relaxed) {
                events.push(ScanEvent::Warning { message: e.to_string() });
            }
        }
        if !self.show_trace || o.trace.is_empty() {
            return;
        }
        let at = match o.scope {
            ScriptScope::Pre => "prerule".to_string(),
            ScriptScope::Post => "postrule".to_string(),
            ScriptScope::Host { addr } => addr.to_string(),
            ScriptScope::Port { addr, protocol, port } => {
                format!("{}/{}", SocketAddr::new(addr, port), protocol.as_str())
            }
        };
        // One line each, as nmap prints them: a warning keeps to one line in every output.
        for line in &o.trace {
            events.push(ScanEvent::Warning { message: format!("NSE: [{} {at}] {line}", o.id) });
        }
    }
}

/// A script's `nmap.set_port_state` / `set_port_version`, applied to the host's port of that
/// number and protocol (a port the scan did not report is left alone, as are states RustMap
/// does not know).
fn apply_change(h: &mut HostResult, c: &PortChange) {
    let Some(p) = h.ports.iter_mut().find(|p| p.port == c.port && p.protocol.as_str() == c.protocol) else { return };
    if let Some(state) = c.state.as_deref().and_then(port_state) {
        p.state = state;
    }
    if c.version.is_empty() {
        return;
    }
    let s =
        p.service.get_or_insert_with(|| ServiceInfo { method: ServiceMethod::Probed, conf: 10, ..Default::default() });
    for (key, value) in &c.version {
        let slot = match key.as_str() {
            "name" => {
                s.name = value.clone();
                continue;
            }
            "product" => &mut s.product,
            "version" => &mut s.version,
            "extrainfo" => &mut s.extrainfo,
            "hostname" => &mut s.hostname,
            "ostype" => &mut s.ostype,
            "devicetype" => &mut s.devicetype,
            "service_tunnel" => &mut s.tunnel,
            _ => continue,
        };
        *slot = Some(value.clone());
    }
}

fn port_state(text: &str) -> Option<PortState> {
    Some(match text {
        "open" => PortState::Open,
        "closed" => PortState::Closed,
        "filtered" => PortState::Filtered,
        "unfiltered" => PortState::Unfiltered,
        "open|filtered" => PortState::OpenFiltered,
        "closed|filtered" => PortState::ClosedFiltered,
        _ => return None,
    })
}

/// `--script-help`: what the scripts `spec` selects do, one block per script, for printing.
/// The selection is checked as `--script`'s is.
pub fn script_help(spec: &str) -> Result<String, ConfigError> {
    let mut c = ScanConfig::default();
    c.scripts.select = Some(spec.to_string());
    let Some(plan) = script_plan(&c)? else { return Ok(String::new()) };
    Ok(plan.scripts.iter().map(Script::help).collect::<Vec<_>>().join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::ConfigErrorKind;

    fn plan(f: impl FnOnce(&mut rustmap_model::config::ScriptsConfig)) -> Result<Option<ScriptPlan>, ConfigError> {
        let mut c = ScanConfig::new(["127.0.0.1"]);
        f(&mut c.scripts);
        script_plan(&c)
    }

    #[test]
    fn selections_arguments_and_timeouts_are_checked() {
        assert!(plan(|_| {}).unwrap().is_none());
        let p = plan(|s| s.select = Some("default".into())).unwrap().unwrap();
        // The default category, as nmap's -sC: every script chosen is in it, and the classic
        // ones are there (the full list grows with the built-ins: crates/script/tests/engine.rs).
        let ids: Vec<&str> = p.scripts.iter().map(|s| s.id.as_str()).collect();
        assert!(p.scripts.iter().all(|s| s.categories.iter().any(|c| c == "default")), "{ids:?}");
        for id in ["ftp-anon", "http-title", "mongodb-info", "rtsp-methods", "ssh-hostkey", "ssl-cert"] {
            assert!(ids.contains(&id), "{id} not in {ids:?}");
        }
        assert!(!ids.contains(&"banner"), "{ids:?}");
        let p = plan(|s| {
            s.select = Some("http-* or banner".into());
            s.args = Some("http-title.url=/admin".into());
            s.timeout = Some("2s".into());
        })
        .unwrap()
        .unwrap();
        // The eight built-in http-* scripts and banner.
        assert_eq!(p.scripts.len(), 9);
        assert_eq!(p.timeout, Duration::from_secs(2));
        type Case<'a> = (&'a dyn Fn(&mut rustmap_model::config::ScriptsConfig), &'a str, &'a str, ConfigErrorKind);
        let bad: [Case; 5] = [
            (&|s| s.select = Some("nope".into()), "scripts.select", "nope", ConfigErrorKind::Invalid),
            (&|s| s.select = Some(" ".into()), "scripts.select", " ", ConfigErrorKind::Invalid),
            (
                &|s| {
                    s.select = Some("banner".into());
                    s.args = Some("a={".into());
                },
                "scripts.args",
                "a={",
                ConfigErrorKind::Invalid,
            ),
            (
                &|s| {
                    s.select = Some("banner".into());
                    s.timeout = Some("0".into());
                },
                "scripts.timeout",
                "0",
                ConfigErrorKind::Invalid,
            ),
            (&|s| s.trace = true, "scripts.select", "", ConfigErrorKind::Conflict),
        ];
        for (f, field, value, kind) in bad {
            let e = plan(f).unwrap_err();
            assert_eq!((e.field, e.value.as_str(), e.kind), (field, value, kind), "{e}");
        }
    }

    #[test]
    fn list_scans_cannot_run_scripts() {
        let mut c = ScanConfig::new(["127.0.0.1"]);
        c.mode = ScanMode::List;
        c.scripts.select = Some("default".into());
        assert_eq!(script_plan(&c).unwrap_err().kind, ConfigErrorKind::Conflict);
    }

    #[test]
    fn help_names_each_selected_script() {
        let text = script_help("ssh-hostkey").unwrap();
        assert!(text.starts_with("ssh-hostkey\n") && text.contains("Categories:"), "{text}");
        assert_eq!(script_help("no-such").unwrap_err().field, "scripts.select");
    }
}
