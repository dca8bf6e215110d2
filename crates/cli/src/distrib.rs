//! `--agent`, `--agents` and `--distribute`: the flags turned into the options of
//! `rustmap-distrib`, and what an agent reports printed on stderr. Thin: the scheduler, the
//! agents and the aggregation are the library's.

use crate::flags::Flags;
use rustmap_distrib::agent::{AgentEvent, AgentOptions};
use rustmap_distrib::proto::Manifest;
use rustmap_distrib::scheduler::{DistributeOptions, Distributed};
use rustmap_distrib::NatsOptions;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// The NATS connection the flags describe.
pub fn nats_options(f: &Flags, name: &str) -> Result<NatsOptions, String> {
    let url = f.nats.clone().filter(|u| !u.trim().is_empty()).ok_or("--nats URL is required")?;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    Ok(NatsOptions {
        url,
        token: f.nats_token.clone().or_else(|| env("RUSTMAP_NATS_TOKEN")),
        user: f.nats_user.clone(),
        password: f.nats_password.clone().or_else(|| f.nats_user.as_ref().and_then(|_| env("RUSTMAP_NATS_PASSWORD"))),
        nkey_file: f.nats_nkey.clone(),
        creds_file: f.nats_creds.clone(),
        tls_ca: f.nats_tls_ca.clone(),
        tls_cert: f.nats_tls_cert.clone().zip(f.nats_tls_key.clone()),
        tls_required: f.nats_tls,
        name: name.to_string(),
    })
}

/// `--api --nats`: how the API server runs the scans it is asked to distribute.
pub fn api_options(f: &Flags, allow: Option<rustmap::AllowList>) -> Result<Option<DistributeOptions>, String> {
    if f.nats.is_none() {
        return match cluster_flag(f) {
            Some(flag) => Err(format!("{flag} needs --nats URL")),
            None => Ok(None),
        };
    }
    let nats = nats_options(f, "rustmap --api")?;
    let (ack_wait, max_deliver) = consumer_settings(f)?;
    // The API cannot take a scan up again: a stopped one leaves nothing queued.
    Ok(Some(DistributeOptions {
        nats,
        hosts_per_shard: f.shard_hosts,
        ack_wait,
        max_deliver,
        allow,
        purge_on_cancel: true,
    }))
}

/// `--shard-ack-wait` and `--shard-max-deliver`.
fn consumer_settings(f: &Flags) -> Result<(Duration, i64), String> {
    let wait = match &f.shard_ack_wait {
        Some(s) => rustmap::validate::parse_time("shard_ack_wait", "--shard-ack-wait", s).map_err(|e| e.to_string())?,
        None => Duration::from_secs(30),
    };
    if wait < Duration::from_secs(3) || wait > Duration::from_secs(3600) {
        return Err(format!("--shard-ack-wait {:?}: between 3s and 1h", f.shard_ack_wait.as_deref().unwrap_or("")));
    }
    let max = f.shard_max_deliver.unwrap_or(5);
    if !(1..=100).contains(&max) {
        return Err(format!("--shard-max-deliver {max}: between 1 and 100"));
    }
    Ok((wait, max))
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| {
        eprintln!("rustmap: cannot start the runtime: {e}");
        ExitCode::from(1)
    })
}

fn usage(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("rustmap: {message}");
    ExitCode::from(2)
}

/// `rustmap --agent`.
pub fn agent(f: &Flags) -> ExitCode {
    if !f.targets.is_empty() || !f.input_list.is_empty() {
        return usage("--agent takes its targets from the work queue: give no targets");
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name = f.agent_name.clone().unwrap_or_else(|| format!("{}-{}", host.trim(), std::process::id()));
    if name.trim().is_empty() || name.len() > 64 {
        return usage(format!("--agent-name {name:?}: 1 to 64 characters"));
    }
    let concurrency = f.agent_concurrency.unwrap_or(1);
    if !(1..=64).contains(&concurrency) {
        return usage(format!("--agent-concurrency {concurrency}: between 1 and 64"));
    }
    if let Some(r) = f.max_rate {
        if !(r.is_finite() && r > 0.0) {
            return usage(format!("--max-rate {r}: must be a positive number"));
        }
    }
    let (ack_wait, max_deliver) = match consumer_settings(f) {
        Ok(s) => s,
        Err(e) => return usage(e),
    };
    let nats = match nats_options(f, &format!("rustmap agent {name}")) {
        Ok(n) => n,
        Err(e) => return usage(e),
    };
    let url = nats.url.clone();
    let opts = AgentOptions {
        nats,
        name,
        tags: f.agent_tags.iter().filter(|t| !t.is_empty()).cloned().collect(),
        concurrency,
        max_rate: f.max_rate,
        ack_wait,
        max_deliver,
    };
    rustmap::raise_fd_limit();
    let rt = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    rt.block_on(async move {
        let drain = tokio_util::sync::CancellationToken::new();
        let abort = tokio_util::sync::CancellationToken::new();
        {
            let (drain, abort) = (drain.clone(), abort.clone());
            tokio::spawn(async move {
                if crate::termination().await.is_none() {
                    return;
                }
                drain.cancel();
                if crate::termination().await.is_some() {
                    abort.cancel();
                }
            });
        }
        let report = Arc::new(move |ev: AgentEvent| match ev {
            AgentEvent::Ready { name } => eprintln!("rustmap: agent {name} ready on {url}"),
            AgentEvent::ShardStarted { scan, shard, delivered } => {
                eprintln!("rustmap: shard {scan}/{shard} started (delivery {delivered})")
            }
            AgentEvent::ShardDone { scan, shard, hosts, secs } => {
                eprintln!("rustmap: shard {scan}/{shard} done: {hosts} hosts in {secs:.1} s")
            }
            AgentEvent::ShardFailed { scan, shard, error } => {
                eprintln!("rustmap: shard {scan}/{shard} failed: {}", rustmap_model::sanitize(&error))
            }
            AgentEvent::Problem(e) => eprintln!("rustmap: warning: {}", rustmap_model::sanitize(&e)),
            AgentEvent::Draining => {
                eprintln!("rustmap: stopping: finishing the shards in hand (signal again to give them back)")
            }
        });
        match rustmap_distrib::agent::run(opts, drain, abort, report).await {
            Ok(n) => {
                eprintln!("rustmap: agent stopped after {n} shard(s)");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rustmap: {e}");
                ExitCode::from(1)
            }
        }
    })
}

/// `rustmap --agents`: the agents alive, one line each.
pub fn list(f: &Flags) -> ExitCode {
    let nats = match nats_options(f, "rustmap --agents") {
        Ok(n) => n,
        Err(e) => return usage(e),
    };
    let rt = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    match rt.block_on(rustmap_distrib::scheduler::agents(&nats)) {
        Ok(agents) => {
            println!("{} agent(s) alive on {}", agents.len(), nats.url);
            for a in agents {
                let tags = if a.tags.is_empty() { "-".to_string() } else { a.tags.join(",") };
                let scanning = if a.scanning.is_empty() { "idle".to_string() } else { a.scanning.join(" ") };
                println!(
                    "{}\ttags={tags}\tconcurrency={}\tdone={}\t{scanning}",
                    rustmap_model::sanitize(&a.name),
                    a.concurrency,
                    a.shards_done
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rustmap: {e}");
            ExitCode::from(1)
        }
    }
}

/// `--distribute --resume ID`: the scan's manifest from the cluster.
pub fn manifest(f: &Flags, id: &str) -> Result<Manifest, ExitCode> {
    if !f.targets.is_empty() || !f.input_list.is_empty() {
        return Err(usage("--distribute --resume takes the scan's own configuration: give no targets"));
    }
    let nats = nats_options(f, "rustmap --distribute").map_err(usage)?;
    let rt = runtime()?;
    match rt.block_on(rustmap_distrib::scheduler::manifest(&nats, id)) {
        Ok(m) => Ok(m),
        Err(e @ rustmap_distrib::DistError::UnknownScan(_)) => Err(usage(e)),
        Err(e) => {
            eprintln!("rustmap: {e}");
            Err(ExitCode::from(1))
        }
    }
}

/// Flags a distributed scan cannot honour yet.
pub fn check(f: &Flags) -> Result<(), ExitCode> {
    for (on, flag) in
        [(f.watch, "--watch"), (f.fast_discovery, "--fast-discovery"), (f.predict_ports, "--predict-ports")]
    {
        if on && f.distribute {
            return Err(usage(format!("{flag} with --distribute: not yet supported")));
        }
    }
    if f.resume.is_some() && !f.distribute && f.nats.is_some() {
        return Err(usage("--resume with --nats: add --distribute to take up a distributed scan"));
    }
    // Here only for a scan, an agent or the registry (the API server checks its own).
    if let (Some(flag), false) = (cluster_flag(f), f.agent || f.distribute || f.agents) {
        return Err(usage(format!("{flag} goes with --distribute, --agent, --agents or --api")));
    }
    consumer_settings(f).map(|_| ()).map_err(usage)
}

/// The first cluster flag given (`--nats` and its auth, TLS and work-queue settings): they mean
/// nothing to a scan that runs here, so one given without a cluster mode is refused, not ignored.
pub fn cluster_flag(f: &Flags) -> Option<&'static str> {
    [
        (f.nats.is_some(), "--nats"),
        (f.nats_token.is_some(), "--nats-token"),
        (f.nats_user.is_some(), "--nats-user"),
        (f.nats_password.is_some(), "--nats-password"),
        (f.nats_nkey.is_some(), "--nats-nkey"),
        (f.nats_creds.is_some(), "--nats-creds"),
        (f.nats_tls, "--nats-tls"),
        (f.nats_tls_ca.is_some(), "--nats-tls-ca"),
        (f.nats_tls_cert.is_some(), "--nats-tls-cert"),
        (f.shard_ack_wait.is_some(), "--shard-ack-wait"),
        (f.shard_max_deliver.is_some(), "--shard-max-deliver"),
    ]
    .into_iter()
    .find_map(|(on, flag)| on.then_some(flag))
}

/// Publish the shards of `plan` (or take up `resumed`) and announce it.
pub async fn start(f: &Flags, plan: &rustmap::ScanPlan, resumed: Option<&Manifest>) -> Result<Distributed, ExitCode> {
    let nats = nats_options(f, "rustmap --distribute").map_err(usage)?;
    let (ack_wait, max_deliver) = consumer_settings(f).map_err(usage)?;
    if f.shard_hosts == Some(0) {
        return Err(usage("--shard-hosts 0: at least 1"));
    }
    let opts = DistributeOptions {
        nats,
        hosts_per_shard: f.shard_hosts,
        ack_wait,
        max_deliver,
        allow: None,
        purge_on_cancel: false,
    };
    let id = resumed.map(|m| m.scan_id.clone()).unwrap_or_else(rustmap::new_scan_id);
    match rustmap_distrib::scheduler::start(&opts, plan, id, resumed).await {
        Ok(d) => {
            let names: Vec<String> = d.agents.iter().map(|a| rustmap_model::sanitize(&a.name).into_owned()).collect();
            eprintln!(
                "rustmap: distributed scan {}{}: {} shard(s) of up to {} host(s) × {} port group(s); agents alive: {}",
                d.scan_id,
                if resumed.is_some() { " (resumed)" } else { "" },
                d.shards,
                d.hosts_per_shard,
                d.groups,
                names.join(", ")
            );
            Ok(d)
        }
        Err(e @ rustmap_distrib::DistError::Config(_)) => Err(usage(e)),
        Err(e) => {
            eprintln!("rustmap: {e}");
            Err(ExitCode::from(1))
        }
    }
}

/// How to take up an interrupted distributed scan.
pub fn resume_command(f: &Flags, id: &str) -> String {
    let mut cmd = format!("rustmap --distribute --nats {} --resume {id}", f.nats.as_deref().unwrap_or(""));
    if let Some(db) = &f.db {
        cmd.push_str(&format!(" --db {}", db.display()));
    }
    cmd
}
