//! `--cloud`: the facade's side of cloud asset discovery. Validation checks the filters and
//! that this build can ask the providers; when the scan starts, [`expand`] asks them (the
//! `rustmap-cloud` crate) and adds the instances' addresses to the targets, and the event loop
//! attaches each address's [`CloudInstance`] to its host's result.

use crate::validate::{invalid, ConfigError, ConfigErrorKind};
use crate::ScanPlan;
use rustmap_model::{CloudConfig, CloudInstance, ScanConfig};
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The instances of a scan, by address.
pub(crate) type CloudMap = HashMap<IpAddr, CloudInstance>;

/// Check `--cloud` and its filters; `None` when no provider is asked.
pub(crate) fn cloud_plan(c: &ScanConfig) -> Result<Option<CloudConfig>, ConfigError> {
    let cloud = &c.cloud;
    rustmap_cloud::check(cloud).map_err(|e| {
        let (field, value) = match &e {
            rustmap_cloud::CloudError::BadTag(t) => ("cloud.tags", t.clone()),
            rustmap_cloud::CloudError::BadRegion(r) => ("cloud.regions", r.clone()),
            _ => ("cloud", String::new()),
        };
        invalid(field, value, e.to_string())
    })?;
    if !cloud.enabled() {
        return Ok(None);
    }
    for p in &cloud.providers {
        if !rustmap_cloud::supported(*p) {
            let why = rustmap_cloud::CloudError::NotBuilt { provider: *p };
            return Err(ConfigError {
                field: "cloud.providers",
                value: p.to_string(),
                kind: ConfigErrorKind::Unsupported,
                message: why.to_string(),
            });
        }
    }
    Ok(Some(cloud.clone()))
}

/// Ask the providers and return the plan with their instances' addresses added to its targets
/// and the instances kept by address; a notice says how many were found. Called before any
/// output file is opened, so a failure (no credentials, a denied permission) leaves files as
/// they were. `Ok(None)`: cancelled while asking.
pub(crate) async fn expand(plan: ScanPlan, cancel: &CancellationToken) -> Result<Option<ScanPlan>, String> {
    let Some(config) = plan.cloud.clone() else { return Ok(Some(plan)) };
    let options = rustmap_cloud::Options::default();
    let instances = tokio::select! {
        found = rustmap_cloud::discover(&config, &options) => found.map_err(|e| e.to_string())?,
        _ = cancel.cancelled() => return Ok(None),
    };
    let targets = rustmap_cloud::targets(&instances, config.addresses);
    let mut expanded = plan;
    let addrs: Vec<String> = targets.iter().map(|(ip, _)| ip.to_string()).collect();
    expanded.targets.add_args(&addrs).map_err(|e| format!("--cloud: {e}"))?;
    let providers: Vec<&str> = config.providers.iter().map(|p| p.name()).collect();
    let used: BTreeSet<_> = targets.iter().map(|(_, i)| (i.provider, &i.id)).collect();
    expanded.notices.push(if targets.is_empty() {
        format!("--cloud {}: {} instances matched, no address to scan", providers.join(","), instances.len())
    } else {
        format!("--cloud {}: {} instances, {} addresses to scan", providers.join(","), used.len(), targets.len())
    });
    let map: CloudMap = targets.into_iter().map(|(ip, i)| (ip, i.clone())).collect();
    expanded.cloud_instances = Arc::new(map);
    Ok(Some(expanded))
}
