//! Cloud instances as scan targets (`--cloud`): which providers to ask and how to filter their
//! inventories ([`CloudConfig`]), and what a host's result keeps of the instance it belongs to
//! ([`CloudInstance`]), which every output format and the history carry.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// A cloud whose instances can become targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CloudProvider {
    /// Amazon EC2.
    Aws,
    /// Azure Virtual Machines.
    Azure,
    /// Google Compute Engine.
    Gcp,
}

impl CloudProvider {
    /// Every provider, in the order they are asked.
    pub const ALL: [CloudProvider; 3] = [CloudProvider::Aws, CloudProvider::Azure, CloudProvider::Gcp];

    /// The name `--cloud` takes.
    pub fn name(self) -> &'static str {
        match self {
            CloudProvider::Aws => "aws",
            CloudProvider::Azure => "azure",
            CloudProvider::Gcp => "gcp",
        }
    }

    /// The provider `--cloud NAME` names, if any.
    pub fn from_name(name: &str) -> Option<CloudProvider> {
        CloudProvider::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(name))
    }
}

impl std::fmt::Display for CloudProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which of an instance's addresses become targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloudAddresses {
    /// Public and private (the default).
    #[default]
    All,
    /// Public addresses only (`--cloud-public-only`).
    PublicOnly,
    /// Private addresses only (`--cloud-private-only`).
    PrivateOnly,
}

/// `--cloud` and its filters: the instances of these providers become targets.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CloudConfig {
    /// Providers to ask (`--cloud aws,gcp`); empty: no cloud discovery.
    pub providers: Vec<CloudProvider>,
    /// Only instances that are running (`--cloud-running-only`).
    pub running_only: bool,
    /// Regions to ask (`--cloud-regions`); empty: every region enabled for the account.
    pub regions: Vec<String>,
    /// Tags that must all match, each `key=value` (`--cloud-tag`, repeatable).
    pub tags: Vec<String>,
    /// Which addresses become targets.
    pub addresses: CloudAddresses,
}

impl CloudConfig {
    /// Whether any provider is asked.
    pub fn enabled(&self) -> bool {
        !self.providers.is_empty()
    }
}

/// The cloud instance an address belongs to, as its provider describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudInstance {
    /// Whose instance it is.
    pub provider: CloudProvider,
    /// The provider's id (`i-0abc...`, an Azure resource id, a GCE instance id).
    pub id: String,
    /// Its name (the `Name` tag on AWS), if it has one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    /// Region (AWS, GCP) or location (Azure).
    pub region: String,
    /// Availability zone, if the provider places instances in one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub zone: Option<String>,
    /// State as the provider words it (`running`, `stopped`, `deallocated`, `TERMINATED`...).
    pub state: String,
    /// Instance type, VM size or machine type.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub instance_type: Option<String>,
    /// Tags (AWS, Azure) or labels (GCP).
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub tags: BTreeMap<String, String>,
    /// Public addresses.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub public_ips: Vec<IpAddr>,
    /// Private addresses.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub private_ips: Vec<IpAddr>,
}

impl CloudInstance {
    /// Whether the provider says it is running.
    pub fn is_running(&self) -> bool {
        self.state.eq_ignore_ascii_case("running")
    }

    /// One line for text outputs: `aws i-0abc (web-1) us-east-1a running t3.micro env=lab`.
    /// Control characters (from the provider's names and tags) are escaped (`\x1b`).
    pub fn summary(&self) -> String {
        crate::sanitize(&self.raw_summary()).into_owned()
    }

    fn raw_summary(&self) -> String {
        let mut out = format!("{} {}", self.provider, self.id);
        if let Some(n) = &self.name {
            out.push_str(&format!(" ({n})"));
        }
        out.push(' ');
        out.push_str(self.zone.as_deref().unwrap_or(&self.region));
        out.push(' ');
        out.push_str(&self.state);
        if let Some(t) = &self.instance_type {
            out.push(' ');
            out.push_str(t);
        }
        // AWS keeps the name as the tag Name: shown once.
        for (k, v) in self.tags.iter().filter(|(k, v)| !(k.as_str() == "Name" && self.name.as_ref() == Some(*v))) {
            out.push_str(&format!(" {k}={v}"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_and_names() {
        let mut i = CloudInstance {
            provider: CloudProvider::Aws,
            id: "i-1".into(),
            name: Some("web".into()),
            region: "us-east-1".into(),
            zone: Some("us-east-1a".into()),
            state: "running".into(),
            instance_type: Some("t3.micro".into()),
            tags: BTreeMap::new(),
            public_ips: Vec::new(),
            private_ips: vec!["198.18.0.10".parse().unwrap()],
        };
        i.tags.insert("env".into(), "lab".into());
        i.tags.insert("Name".into(), "web".into());
        assert_eq!(i.summary(), "aws i-1 (web) us-east-1a running t3.micro env=lab");
        i.tags.insert("note".into(), "a\x1b[2Jb\n".into());
        assert_eq!(i.summary(), "aws i-1 (web) us-east-1a running t3.micro env=lab note=a\\x1b[2Jb\\x0a");
        assert!(i.is_running());
        assert_eq!(CloudProvider::from_name("GCP"), Some(CloudProvider::Gcp));
        assert_eq!(CloudProvider::from_name("ibm"), None);
        let json = serde_json::to_string(&i).unwrap();
        assert_eq!(serde_json::from_str::<CloudInstance>(&json).unwrap(), i);
    }
}
