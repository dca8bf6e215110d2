//! The filters of `--cloud-running-only`, `--cloud-regions` and `--cloud-tag`, checked once and
//! applied to every instance a provider returns (providers filter on their side too, where
//! they can, but the result never depends on that).

use crate::CloudError;
use rustmap_model::{CloudAddresses, CloudConfig, CloudInstance};

/// The longest region name or tag accepted (providers' own limits are lower).
const MAX_LEN: usize = 256;

/// `--cloud-tag KEY=VALUE`, split at the first `=`; the key may not be empty, the value may.
pub fn parse_tag(tag: &str) -> Result<(String, String), CloudError> {
    match tag.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() && tag.len() <= MAX_LEN && !tag.chars().any(char::is_control) => {
            Ok((k.to_string(), v.to_string()))
        }
        _ => Err(CloudError::BadTag(tag.to_string())),
    }
}

fn check_region(r: &str) -> Result<(), CloudError> {
    let ok = !r.is_empty() && r.len() <= 64 && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(CloudError::BadRegion(r.to_string()))
    }
}

/// Check a configuration without asking anybody: tags, region names, filters without a
/// provider, both address kinds.
pub fn check(config: &CloudConfig) -> Result<(), CloudError> {
    if !config.enabled() {
        let filter = if !config.tags.is_empty() {
            Some("--cloud-tag")
        } else if !config.regions.is_empty() {
            Some("--cloud-regions")
        } else if config.running_only {
            Some("--cloud-running-only")
        } else if config.addresses != CloudAddresses::All {
            Some("--cloud-public-only / --cloud-private-only")
        } else {
            None
        };
        return filter.map_or(Ok(()), |f| Err(CloudError::NoProvider(f)));
    }
    Filter::new(config).map(|_| ())
}

/// The checked filters.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only running instances.
    pub running_only: bool,
    /// Only these regions (empty: all the account has enabled).
    pub regions: Vec<String>,
    /// Tags that must all be there with these values.
    pub tags: Vec<(String, String)>,
}

impl Filter {
    /// Check and take the filters of `config`.
    pub fn new(config: &CloudConfig) -> Result<Filter, CloudError> {
        let tags = config.tags.iter().map(|t| parse_tag(t)).collect::<Result<Vec<_>, _>>()?;
        for r in &config.regions {
            check_region(r)?;
        }
        let mut regions = config.regions.clone();
        regions.sort();
        regions.dedup();
        Ok(Filter { running_only: config.running_only, regions, tags })
    }

    /// Whether `i` passes every filter.
    pub fn keeps(&self, i: &CloudInstance) -> bool {
        (!self.running_only || i.is_running())
            && (self.regions.is_empty() || self.regions.contains(&i.region))
            && self.tags.iter().all(|(k, v)| i.tags.get(k) == Some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustmap_model::CloudProvider;

    #[test]
    fn tags_and_regions_are_checked() {
        assert_eq!(parse_tag("env=prod").unwrap(), ("env".into(), "prod".into()));
        assert_eq!(parse_tag("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert_eq!(parse_tag("empty=").unwrap(), ("empty".into(), String::new()));
        for bad in ["env", "=x", "", "k=\u{7}"] {
            assert!(matches!(parse_tag(bad), Err(CloudError::BadTag(_))), "{bad:?}");
        }
        let mut c = CloudConfig { providers: vec![CloudProvider::Aws], ..CloudConfig::default() };
        c.regions = vec!["us-east-1".into(), "eu west".into()];
        assert!(check(&c).unwrap_err().to_string().contains("\"eu west\""));
        let c = CloudConfig { tags: vec!["a=b".into()], ..CloudConfig::default() };
        assert!(check(&c).unwrap_err().to_string().contains("--cloud-tag needs --cloud"));
        assert!(check(&CloudConfig::default()).is_ok());
    }

    #[test]
    fn every_filter_must_pass() {
        let c = CloudConfig {
            providers: vec![CloudProvider::Aws],
            running_only: true,
            regions: vec!["us-east-1".into()],
            tags: vec!["env=lab".into(), "team=sec".into()],
            ..CloudConfig::default()
        };
        let f = Filter::new(&c).unwrap();
        let mut i = CloudInstance {
            provider: CloudProvider::Aws,
            id: "i-1".into(),
            name: None,
            region: "us-east-1".into(),
            zone: None,
            state: "running".into(),
            instance_type: None,
            tags: [("env".to_string(), "lab".to_string()), ("team".to_string(), "sec".to_string())].into(),
            public_ips: Vec::new(),
            private_ips: Vec::new(),
        };
        assert!(f.keeps(&i));
        i.state = "stopped".into();
        assert!(!f.keeps(&i));
        i.state = "running".into();
        i.tags.insert("team".into(), "ops".into());
        assert!(!f.keeps(&i));
        i.tags.insert("team".into(), "sec".into());
        i.region = "eu-west-1".into();
        assert!(!f.keeps(&i));
    }
}
