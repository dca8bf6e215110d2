//! The pipeline's trace stage: `--traceroute` and `--mtu-discovery` for each finished host that
//! is up, after service detection and before its `HostDone`. The engine's [`Tracer`] sends the
//! probes; this side picks the probe from what the scan found, names the hops by reverse DNS
//! (the scan's resolver, not with `-n`; each address looked up once per scan), folds the
//! results into the host and returns its `TraceHop` events.

use crate::dns::Resolver;
use crate::validate::{ConfigError, ConfigErrorKind};
use crate::ReverseDns;
use rustmap_engine::trace::{choose_probe, distance_from_ttl, TraceRequest, Tracer};
use rustmap_model::config::{OutputFormat, ScanMode};
use rustmap_model::ScanConfig;
use rustmap_model::{HostResult, HostStatus, ScanEvent};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Hop names kept per scan at most (routers repeat; a huge sweep must not grow it forever).
const NAMES_MAX: usize = 1 << 14;

/// What `--traceroute` and `--mtu-discovery` asked for, checked.
#[derive(Debug, Clone, Default)]
pub struct PathPlan {
    /// Trace every host that is up (`--traceroute`, or implied by `--topology`).
    pub traceroute: bool,
    /// Find every IPv4 host's path MTU (`--mtu-discovery`).
    pub mtu: bool,
    /// The topology graph: its format and file (`None`: standard output).
    pub topology: Option<(rustmap_model::config::TopologyFormat, Option<String>)>,
}

impl PathPlan {
    /// Does the stage send anything?
    pub fn probes(&self) -> bool {
        self.traceroute || self.mtu
    }
}

fn error(
    field: &'static str,
    value: impl Into<String>,
    kind: ConfigErrorKind,
    message: impl Into<String>,
) -> ConfigError {
    ConfigError { field, value: value.into(), kind, message: message.into() }
}

/// `--traceroute`, `--topology`, `--topology-output` and `--mtu-discovery`. A graph implies the
/// traceroute it is drawn from; without a file it goes to standard output (then in place of the
/// normal output, as `-oX -`); a file alone names its format by its extension.
pub(crate) fn path_plan(c: &ScanConfig, raw: bool, files: &[(OutputFormat, String)]) -> Result<PathPlan, ConfigError> {
    use rustmap_model::config::TopologyFormat;
    let p = &c.path;
    let format = match (p.topology, &p.topology_output) {
        (Some(f), _) => Some(f),
        (None, Some(file)) => {
            let ext = std::path::Path::new(file).extension().and_then(|e| e.to_str()).unwrap_or("");
            Some(TopologyFormat::parse(ext).ok_or_else(|| {
                error(
                    "path.topology_output",
                    file.clone(),
                    ConfigErrorKind::Invalid,
                    format!("--topology-output {file}: give the format with --topology dot|graphml|json"),
                )
            })?)
        }
        (None, None) => None,
    };
    let topology = format.map(|f| (f, p.topology_output.clone().filter(|o| o != "-")));
    if let Some((_, Some(file))) = &topology {
        if file.is_empty() {
            let message = "--topology-output needs a file name (or - for standard output)";
            return Err(error("path.topology_output", "", ConfigErrorKind::Missing, message));
        }
    }
    if matches!(topology, Some((_, None))) && files.iter().any(|(_, f)| f == "-") {
        return Err(error(
            "path.topology_output",
            "",
            ConfigErrorKind::Conflict,
            "only one output may go to standard output (-): give --topology-output a file",
        ));
    }
    let traceroute = p.traceroute || topology.is_some();
    let asked = if traceroute {
        Some(("path.traceroute", if p.traceroute { "--traceroute" } else { "--topology" }))
    } else if p.mtu_discovery {
        Some(("path.mtu_discovery", "--mtu-discovery"))
    } else {
        None
    };
    if let Some((field, flag)) = asked {
        if c.mode == ScanMode::List {
            let message = format!("-sL sends nothing: {flag} cannot be combined with it");
            return Err(error(field, "", ConfigErrorKind::Conflict, message));
        }
        if c.origin.proxy.is_some() {
            // Its probes cannot go through a SOCKS proxy: they would come from our own address.
            let message = format!(
                "{flag} sends raw packets from this machine's own address, which --proxy is there to hide; \
                 only -sT and -sV go through a proxy"
            );
            return Err(error(field, "", ConfigErrorKind::Conflict, message));
        }
        if !raw {
            let message = if c.origin.privileged == Some(false) {
                format!("{flag} sends raw packets, which --unprivileged rules out")
            } else {
                format!(
                    "{flag} sends raw packets and needs root or CAP_NET_RAW; to run it without sudo, give the \
                     binary the capabilities once: {} (docs/install.md)",
                    crate::privilege::GRANT_COMMAND
                )
            };
            return Err(error(field, flag, ConfigErrorKind::Privilege, message));
        }
    }
    Ok(PathPlan { traceroute, mtu: p.mtu_discovery, topology })
}

/// The stage: the tracer, and the names of hops already looked up.
pub(crate) struct TraceStage {
    tracer: Tracer,
    traceroute: bool,
    mtu: bool,
    resolver: Resolver,
    reverse: ReverseDns,
    names: Mutex<HashMap<IpAddr, Option<String>>>,
}

impl TraceStage {
    pub(crate) fn new(tracer: Tracer, plan: &PathPlan, resolver: Resolver, reverse: ReverseDns) -> TraceStage {
        TraceStage {
            tracer,
            traceroute: plan.traceroute,
            mtu: plan.mtu,
            resolver,
            reverse,
            names: Mutex::new(HashMap::new()),
        }
    }

    /// Does this host go through the stage?
    pub(crate) fn wants(&self, h: &HostResult) -> bool {
        h.status == HostStatus::Up
    }

    /// The name of a hop's address, looked up once per scan.
    async fn name(&self, ip: IpAddr) -> Option<String> {
        if self.reverse == ReverseDns::Never {
            return None;
        }
        if let Some(n) = self.names.lock().ok()?.get(&ip) {
            return n.clone();
        }
        let name = self.resolver.reverse(ip).await;
        if let Ok(mut m) = self.names.lock() {
            if m.len() >= NAMES_MAX {
                m.clear();
            }
            m.insert(ip, name.clone());
        }
        name
    }

    /// Trace `h` (and find its path MTU, as asked), fold what was found into it, and return its
    /// `TraceHop` events. Nothing when the stage stopped (a cancelled scan).
    pub(crate) async fn run(self: &Arc<Self>, h: &mut HostResult) -> Vec<ScanEvent> {
        // The distance hint: the TTL of the answer that found the host up, else of a port's.
        let ttl = Some(h.reason_ttl)
            .filter(|t| *t > 0)
            .or_else(|| h.ports.iter().map(|p| p.reason_ttl).find(|t| *t > 0))
            .unwrap_or(0);
        let req = TraceRequest {
            addr: h.addr,
            probe: choose_probe(h),
            distance: distance_from_ttl(ttl),
            srtt: h.srtt_us.map(Duration::from_micros),
            traceroute: self.traceroute,
            mtu: self.mtu,
        };
        let Some(out) = self.tracer.trace(req).await else { return Vec::new() };
        h.path_mtu = out.path_mtu;
        if !self.traceroute {
            return Vec::new();
        }
        let mut hops = out.hops;
        for hop in &mut hops {
            if let Some(a) = hop.addr {
                hop.hostname = self.name(a).await;
            }
        }
        h.trace_probe = Some(out.probe);
        h.trace = hops.clone();
        hops.into_iter().map(|hop| ScanEvent::TraceHop { addr: h.addr, hop }).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustmap_model::ScanType;

    fn config(f: impl FnOnce(&mut ScanConfig)) -> ScanConfig {
        let mut c = ScanConfig::new(["127.0.0.1"]);
        c.scan_types = vec![ScanType::Connect];
        f(&mut c);
        c
    }

    #[test]
    fn traceroute_topology_and_mtu_discovery() {
        use rustmap_model::config::TopologyFormat;
        let raw = |f: &dyn Fn(&mut ScanConfig)| {
            config(|c| {
                c.origin.privileged = Some(true);
                f(c);
            })
        };
        // --topology implies --traceroute; without a file the graph goes to stdout.
        let plan = crate::validate::validate(&raw(&|c| c.path.topology = Some(TopologyFormat::Dot))).unwrap();
        assert!(plan.path.traceroute && !plan.path.mtu);
        assert_eq!(plan.path.topology, Some((TopologyFormat::Dot, None)));
        // A file alone names its format by its extension.
        let plan = crate::validate::validate(&raw(&|c| c.path.topology_output = Some("net.graphml".into()))).unwrap();
        assert_eq!(plan.path.topology, Some((TopologyFormat::Graphml, Some("net.graphml".into()))));
        let e = crate::validate::validate(&raw(&|c| c.path.topology_output = Some("net.txt".into()))).unwrap_err();
        assert_eq!((e.field, e.kind), ("path.topology_output", ConfigErrorKind::Invalid));
        let e = crate::validate::validate(&raw(&|c| {
            c.path.topology = Some(TopologyFormat::Json);
            c.output.files = vec![rustmap_model::config::OutputFile { format: OutputFormat::Xml, path: "-".into() }];
        }))
        .unwrap_err();
        assert_eq!(e.kind, ConfigErrorKind::Conflict, "{e}");
        let e = crate::validate::validate(&raw(&|c| {
            c.path.traceroute = true;
            c.mode = ScanMode::List;
            c.scan_types.clear();
        }))
        .unwrap_err();
        assert!(e.message.contains("-sL"), "{e}");
        // Without raw sockets: a privilege error naming the flag.
        for (f, flag) in [
            (&(|c: &mut ScanConfig| c.path.traceroute = true) as &dyn Fn(&mut ScanConfig), "--traceroute"),
            (&|c: &mut ScanConfig| c.path.mtu_discovery = true, "--mtu-discovery"),
            (&|c: &mut ScanConfig| c.path.topology = Some(TopologyFormat::Dot), "--topology"),
        ] {
            let e = crate::validate::validate(&config(|c| {
                c.origin.privileged = Some(false);
                f(c);
            }))
            .unwrap_err();
            assert_eq!((e.kind, e.value.as_str()), (ConfigErrorKind::Privilege, flag), "{e}");
        }
    }
}
