//! What can go wrong asking a cloud for its instances, worded for the person who runs the scan:
//! which credential sources were tried, which permission was missing, which region is unknown.

use rustmap_model::CloudProvider;
use thiserror::Error;

/// Why cloud discovery failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CloudError {
    /// This build has no support for the provider (AWS without the `aws` feature).
    #[error("--cloud {provider}: this rustmap was built without the AWS SDK; build it with `cargo build --release --features cloud` (docs/cloud.md)")]
    NotBuilt {
        /// The provider asked for.
        provider: CloudProvider,
    },
    /// A `--cloud-tag` that is not `key=value`.
    #[error("--cloud-tag {0:?}: expected KEY=VALUE (e.g. env=production)")]
    BadTag(String),
    /// A `--cloud-regions` item that cannot be a region name.
    #[error(
        "--cloud-regions {0:?}: not a region name (letters, digits and '-', e.g. us-east-1, eastus, europe-west1)"
    )]
    BadRegion(String),
    /// `--cloud-tag` or the other filters without `--cloud`.
    #[error("{0} needs --cloud PROVIDER")]
    NoProvider(&'static str),
    /// `--cloud-public-only` and `--cloud-private-only` together.
    #[error("--cloud-public-only and --cloud-private-only exclude each other")]
    BothAddressKinds,
    /// No credentials were found.
    #[error("--cloud {provider}: no credentials found; tried {tried}")]
    NoCredentials {
        /// The provider.
        provider: CloudProvider,
        /// The sources tried, in order.
        tried: String,
    },
    /// The provider refused a call the credentials are not allowed to make.
    #[error("--cloud {provider}: permission {permission} denied{}: {message}", region.as_deref().map(|r| format!(" in {r}")).unwrap_or_default())]
    Denied {
        /// The provider.
        provider: CloudProvider,
        /// The permission needed (`ec2:DescribeInstances`).
        permission: String,
        /// The region asked, if the call was regional.
        region: Option<String>,
        /// What the provider said.
        message: String,
    },
    /// A region of `--cloud-regions` the provider does not know or has not enabled.
    #[error("--cloud {provider}: {reason} region {region:?} (the account's regions: {})", known.join(", "))]
    Region {
        /// The provider.
        provider: CloudProvider,
        /// The region given.
        region: String,
        /// `no such` or `not enabled`.
        reason: &'static str,
        /// The regions the account can use.
        known: Vec<String>,
    },
    /// Any other failure of the provider's API (unreachable, throttled, malformed answer).
    #[error("--cloud {provider}{}: {message}", region.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    Api {
        /// The provider.
        provider: CloudProvider,
        /// The region asked, if the call was regional.
        region: Option<String>,
        /// What went wrong.
        message: String,
    },
}
