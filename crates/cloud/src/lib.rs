//! Cloud asset discovery (`--cloud`): asks AWS, Azure or GCP for their instances, keeps those
//! that pass `--cloud-running-only`, `--cloud-regions` and `--cloud-tag`, and turns their
//! addresses into targets, each carrying its [`CloudInstance`] into the results.
//!
//! This crate owns the providers' API calls and credentials, and nothing else: the facade
//! calls [`discover`] when a scan starts and feeds the addresses of [`targets`] to the engine.
//! Everything a provider answers is treated as hostile input: sizes and page counts are
//! bounded, and only addresses the provider returned as an instance's own become targets.

mod azure;
mod error;
mod filter;
mod gcp;
mod rest;

#[cfg(feature = "aws")]
mod aws;
#[cfg(feature = "fixture")]
pub mod fixture;

pub use error::CloudError;
pub use filter::{check, parse_tag, Filter};

use rustmap_model::{CloudAddresses, CloudConfig, CloudInstance, CloudProvider};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

/// The most instances one provider may return (a bound on memory, whatever it answers).
pub const MAX_INSTANCES: usize = 1_000_000;

/// How long one provider may take to answer everything, paging included.
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(300);

/// Tuning of [`discover`], for tests and large inventories.
#[derive(Debug, Clone)]
pub struct Options {
    /// Instances asked for per page (AWS: 5 to 1000; GCP: 1 to 500; Azure pages as it likes).
    pub page_size: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options { page_size: 1000 }
    }
}

/// Whether this build can ask `provider` (the `aws` feature for AWS).
pub fn supported(provider: CloudProvider) -> bool {
    match provider {
        CloudProvider::Aws => cfg!(feature = "aws"),
        CloudProvider::Azure | CloudProvider::Gcp => true,
    }
}

/// Ask every provider of `config` for its instances and keep those that pass its filters,
/// sorted by provider, region and id. Fails on the first provider that fails: a partial
/// inventory would silently leave instances unscanned.
pub async fn discover(config: &CloudConfig, options: &Options) -> Result<Vec<CloudInstance>, CloudError> {
    let filter = Filter::new(config)?;
    let mut out = Vec::new();
    for provider in config.providers.iter().copied().collect::<BTreeSet<_>>() {
        let found = tokio::time::timeout(PROVIDER_TIMEOUT, ask(provider, &filter, options)).await.map_err(|_| {
            CloudError::Api {
                provider,
                region: None,
                message: format!("no complete answer within {} s", PROVIDER_TIMEOUT.as_secs()),
            }
        })??;
        out.extend(found.into_iter().filter(|i| filter.keeps(i)));
    }
    out.sort_by(|a, b| (a.provider, &a.region, &a.id).cmp(&(b.provider, &b.region, &b.id)));
    Ok(out)
}

async fn ask(provider: CloudProvider, filter: &Filter, options: &Options) -> Result<Vec<CloudInstance>, CloudError> {
    let _ = (filter, options);
    match provider {
        #[cfg(feature = "aws")]
        CloudProvider::Aws => aws::discover(filter, options).await,
        #[cfg(not(feature = "aws"))]
        CloudProvider::Aws => Err(CloudError::NotBuilt { provider }),
        // Their REST calls block: on a thread of their own.
        CloudProvider::Azure => {
            let filter = filter.clone();
            blocking(provider, move || azure::discover(&filter)).await
        }
        CloudProvider::Gcp => {
            let (filter, page) = (filter.clone(), options.page_size);
            blocking(provider, move || gcp::discover(&filter, page)).await
        }
    }
}

async fn blocking<F>(provider: CloudProvider, f: F) -> Result<Vec<CloudInstance>, CloudError>
where
    F: FnOnce() -> Result<Vec<CloudInstance>, CloudError> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| CloudError::Api {
        provider,
        region: None,
        message: e.to_string(),
    })?
}

/// Azure virtual machines, network interfaces and public IP addresses, as Resource Manager
/// lists them (each a JSON array of resources), joined into instances. What `--cloud azure`
/// does with the listings; public for the fuzz target.
pub fn parse_azure(
    vms: &serde_json::Value,
    nics: &serde_json::Value,
    public: &serde_json::Value,
) -> Vec<CloudInstance> {
    let list = |v: &serde_json::Value| v.as_array().cloned().unwrap_or_default();
    azure::join(&list(vms), &list(nics), &list(public))
}

/// The instances of one page of GCP Compute's `aggregated/instances`. What `--cloud gcp` does
/// with each page; public for the fuzz target.
pub fn parse_gcp_page(page: &serde_json::Value) -> Vec<CloudInstance> {
    gcp::page_instances(page)
}

/// The addresses to scan: each instance's public and/or private addresses, as `addresses`
/// says, once each (an address two instances claim goes with the first).
pub fn targets(instances: &[CloudInstance], addresses: CloudAddresses) -> Vec<(IpAddr, &CloudInstance)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for i in instances {
        let public = i.public_ips.iter().filter(|_| addresses != CloudAddresses::PrivateOnly);
        let private = i.private_ips.iter().filter(|_| addresses != CloudAddresses::PublicOnly);
        for ip in public.chain(private) {
            if seen.insert(*ip) {
                out.push((*ip, i));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn instance(id: &str, public: &[&str], private: &[&str]) -> CloudInstance {
        CloudInstance {
            provider: CloudProvider::Aws,
            id: id.into(),
            name: None,
            region: "us-east-1".into(),
            zone: None,
            state: "running".into(),
            instance_type: None,
            tags: BTreeMap::new(),
            public_ips: public.iter().map(|s| s.parse().unwrap()).collect(),
            private_ips: private.iter().map(|s| s.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn targets_follow_the_address_choice_and_dedupe() {
        let list =
            [instance("a", &["192.0.2.1"], &["198.18.0.10"]), instance("b", &[], &["198.18.0.10", "198.18.0.12"])];
        let ips = |a| targets(&list, a).into_iter().map(|(ip, i)| format!("{ip}:{}", i.id)).collect::<Vec<_>>();
        assert_eq!(ips(CloudAddresses::All), ["192.0.2.1:a", "198.18.0.10:a", "198.18.0.12:b"]);
        assert_eq!(ips(CloudAddresses::PrivateOnly), ["198.18.0.10:a", "198.18.0.12:b"]);
        assert_eq!(ips(CloudAddresses::PublicOnly), ["192.0.2.1:a"]);
    }

    #[test]
    fn hostile_answers_give_what_is_sound_and_never_panic() {
        use serde_json::json;
        // Wrong types everywhere: nothing, and no panic.
        for junk in [json!(null), json!(1), json!("x"), json!([1, "a", null, {}]), json!({"value": 3})] {
            assert!(parse_azure(&junk, &junk, &junk).is_empty());
            assert!(parse_gcp_page(&junk).is_empty());
            assert!(parse_gcp_page(&json!({"items": {"zones/a": {"instances": junk.clone()}}})).is_empty());
        }
        // A VM whose interface is unknown, with a bad address and a non-string tag: kept, without them.
        let vms = json!([{"id": "/x/vm", "name": "vm", "location": "eastus", "tags": {"a": 1, "b": "c"},
            "properties": {"networkProfile": {"networkInterfaces": [{"id": "/x/nic-missing"}]}}}]);
        let nics = json!([{"id": "/X/NIC", "properties": {"ipConfigurations": [{"properties": {"privateIPAddress": "999.1.1.1"}}]}}]);
        let got = parse_azure(&vms, &nics, &json!([]));
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].state.as_str(), got[0].tags.len()), ("unknown", 1));
        assert!(got[0].private_ips.is_empty());
        // GCP: an id as a number, a zone URL with no dash, an instance without a zone (dropped).
        let page = json!({"items": {"zones/z": {"instances": [
            {"id": 7, "zone": "https://x/zones/nodash", "status": "RUNNING", "networkInterfaces": [{"networkIP": "198.18.0.9"}]},
            {"id": "8"}
        ]}}});
        let got = parse_gcp_page(&page);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].id.as_str(), got[0].region.as_str(), got[0].state.as_str()), ("7", "nodash", "running"));
        assert_eq!(got[0].private_ips, ["198.18.0.9".parse::<IpAddr>().unwrap()]);
    }

    #[tokio::test]
    async fn providers_this_build_cannot_ask_say_so() {
        if !supported(CloudProvider::Aws) {
            let config = CloudConfig { providers: vec![CloudProvider::Aws], ..CloudConfig::default() };
            let e = discover(&config, &Options::default()).await.unwrap_err().to_string();
            assert!(e.contains("--features cloud"), "{e}");
        }
    }
}
