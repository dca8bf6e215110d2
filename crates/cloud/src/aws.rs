//! AWS: EC2 instances through the official SDK. Credentials come from the SDK's standard chain
//! (environment, shared config and credentials files with profiles, SSO, web identity, ECS and
//! EC2 instance metadata); `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_EC2`) points it at another
//! endpoint, such as moto_server in the tests. TLS is rustls with ring, as everywhere else in
//! RustMap (the SDK's default would pull in a second crypto library).

use crate::{CloudError, Filter, Options, MAX_INSTANCES};
use aws_config::BehaviorVersion;
use aws_sdk_ec2::config::{ProvideCredentials, Region};
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_ec2::types::{Filter as Ec2Filter, Instance};
use aws_sdk_ec2::Client;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use rustmap_model::{CloudInstance, CloudProvider};
use std::collections::BTreeMap;
use std::net::IpAddr;

const P: CloudProvider = CloudProvider::Aws;

/// The sources of the SDK's default chain, for the error that none had credentials.
const TRIED: &str = "the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), the shared config and \
                     credentials files (~/.aws/config, ~/.aws/credentials; profile $AWS_PROFILE or default), \
                     SSO, web identity (AWS_WEB_IDENTITY_TOKEN_FILE), the ECS container endpoint and the EC2 \
                     instance metadata service";

/// Regions asked at the same time.
const PARALLEL_REGIONS: usize = 8;

/// The region asked for the list of regions when none is configured.
const HOME_REGION: &str = "us-east-1";

pub(crate) async fn discover(filter: &Filter, options: &Options) -> Result<Vec<CloudInstance>, CloudError> {
    let http =
        aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build_https();
    let shared = aws_config::defaults(BehaviorVersion::latest()).http_client(http).load().await;
    let Some(credentials) = shared.credentials_provider() else {
        return Err(CloudError::NoCredentials { provider: P, tried: TRIED.into() });
    };
    if let Err(e) = credentials.provide_credentials().await {
        return Err(match e {
            aws_credential_types::provider::error::CredentialsError::CredentialsNotLoaded(_) => {
                CloudError::NoCredentials { provider: P, tried: TRIED.into() }
            }
            e => CloudError::Api {
                provider: P,
                region: None,
                message: format!("credentials: {}", DisplayErrorContext(&e)),
            },
        });
    }
    let home = shared.region().map(|r| r.to_string()).unwrap_or_else(|| HOME_REGION.to_string());
    let client = |region: &str| {
        Client::from_conf(aws_sdk_ec2::config::Builder::from(&shared).region(Region::new(region.to_string())).build())
    };
    let regions = regions(&client(&home), &home, filter).await?;

    // Regions in parallel, a few at a time; the first failure fails the inventory.
    let mut out = Vec::new();
    let mut pending = regions.into_iter();
    let mut running = tokio::task::JoinSet::new();
    loop {
        while running.len() < PARALLEL_REGIONS {
            let Some(region) = pending.next() else { break };
            let c = client(&region);
            let (filter, page) = (filter.clone(), options.page_size.clamp(5, 1000));
            running.spawn(async move { instances(&c, &region, &filter, page).await });
        }
        let Some(done) = running.join_next().await else { break };
        let found = done.map_err(|e| CloudError::Api { provider: P, region: None, message: e.to_string() })??;
        out.extend(found);
        if out.len() > MAX_INSTANCES {
            return Err(CloudError::Api {
                provider: P,
                region: None,
                message: format!("more than {MAX_INSTANCES} instances"),
            });
        }
    }
    Ok(out)
}

/// The regions to ask: those of `--cloud-regions`, each checked against the account's list,
/// or every region enabled for the account.
async fn regions(client: &Client, home: &str, filter: &Filter) -> Result<Vec<String>, CloudError> {
    let answer =
        client.describe_regions().all_regions(true).send().await.map_err(|e| error(e, "ec2:DescribeRegions", home))?;
    let mut all = Vec::new();
    let mut enabled = Vec::new();
    for r in answer.regions() {
        let Some(name) = r.region_name() else { continue };
        all.push(name.to_string());
        if r.opt_in_status() != Some("not-opted-in") {
            enabled.push(name.to_string());
        }
    }
    if filter.regions.is_empty() {
        return Ok(enabled);
    }
    for r in &filter.regions {
        let reason = if !all.contains(r) {
            "no such"
        } else if !enabled.contains(r) {
            "not enabled:"
        } else {
            continue;
        };
        return Err(CloudError::Region { provider: P, region: r.clone(), reason, known: enabled });
    }
    Ok(filter.regions.clone())
}

/// Every instance of one region that the provider's own filters let through.
async fn instances(
    client: &Client,
    region: &str,
    filter: &Filter,
    page: u32,
) -> Result<Vec<CloudInstance>, CloudError> {
    let mut filters: Vec<Ec2Filter> =
        filter.tags.iter().map(|(k, v)| Ec2Filter::builder().name(format!("tag:{k}")).values(v).build()).collect();
    if filter.running_only {
        filters.push(Ec2Filter::builder().name("instance-state-name").values("running").build());
    }
    let mut pages =
        client.describe_instances().set_filters(Some(filters)).max_results(page as i32).into_paginator().send();
    let mut out = Vec::new();
    while let Some(answer) = pages.next().await {
        let answer = answer.map_err(|e| error(e, "ec2:DescribeInstances", region))?;
        for r in answer.reservations() {
            out.extend(r.instances().iter().filter_map(|i| instance(i, region)));
        }
        if out.len() > MAX_INSTANCES {
            break;
        }
    }
    Ok(out)
}

fn instance(i: &Instance, region: &str) -> Option<CloudInstance> {
    let id = i.instance_id()?.to_string();
    let tags: BTreeMap<String, String> = i
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
        .collect();
    let mut public = Vec::new();
    let mut private = Vec::new();
    let add = |list: &mut Vec<IpAddr>, ip: Option<&str>| {
        if let Some(ip) = ip.and_then(|s| s.parse::<IpAddr>().ok()) {
            if !list.contains(&ip) {
                list.push(ip);
            }
        }
    };
    add(&mut public, i.public_ip_address());
    add(&mut private, i.private_ip_address());
    for nic in i.network_interfaces() {
        add(&mut public, nic.association().and_then(|a| a.public_ip()));
        for a in nic.private_ip_addresses() {
            add(&mut private, a.private_ip_address());
            add(&mut public, a.association().and_then(|a| a.public_ip()));
        }
        // EC2's IPv6 addresses are global: reachable from outside unless a security group says no.
        for a in nic.ipv6_addresses() {
            add(&mut public, a.ipv6_address());
        }
    }
    Some(CloudInstance {
        provider: P,
        id,
        name: tags.get("Name").cloned(),
        region: region.to_string(),
        zone: i.placement().and_then(|p| p.availability_zone()).map(str::to_string),
        state: i.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()).unwrap_or_else(|| "unknown".into()),
        instance_type: i.instance_type().map(|t| t.as_str().to_string()),
        tags,
        public_ips: public,
        private_ips: private,
    })
}

/// An SDK error, with the permission named when AWS refused it.
fn error<E, R>(e: aws_sdk_ec2::error::SdkError<E, R>, permission: &str, region: &str) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = e.code().unwrap_or_default().to_string();
    let message = e.message().map(str::to_string).unwrap_or_else(|| DisplayErrorContext(&e).to_string());
    let region = Some(region.to_string());
    match code.as_str() {
        "UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException" => {
            CloudError::Denied { provider: P, permission: permission.to_string(), region, message }
        }
        "" => CloudError::Api { provider: P, region, message },
        _ => CloudError::Api { provider: P, region, message: format!("{code}: {message}") },
    }
}
