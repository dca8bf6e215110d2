//! AWS through the real SDK against the fixture server's EC2 query API (`rustmap_cloud::fixture`):
//! the paging that moto does not do (`MaxResults` and `NextToken`), the enabled regions only,
//! and an opt-in region that is not enabled. Needs the `aws` and `fixture` features.
#![cfg(all(feature = "aws", feature = "fixture"))]

use rustmap_cloud::fixture::{FixtureServer, EC2_INSTANCES};
use rustmap_cloud::{discover, CloudError, Options};
use rustmap_model::{CloudConfig, CloudProvider};

/// The only test of this binary: it sets the process's AWS variables.
#[tokio::test]
async fn ec2_inventories_are_paged_and_opt_in_regions_checked() {
    let server = FixtureServer::start().unwrap();
    for (k, v) in [
        ("AWS_ENDPOINT_URL", server.base.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent/rustmap-test/config"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/rustmap-test/credentials"),
    ] {
        std::env::set_var(k, v);
    }
    for k in ["AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ENDPOINT_URL_EC2"] {
        std::env::remove_var(k);
    }
    let config =
        CloudConfig { providers: vec![CloudProvider::Aws], tags: vec!["env=bulk".into()], ..CloudConfig::default() };
    let found = discover(&config, &Options { page_size: 5 }).await.unwrap();
    assert_eq!(found.len(), EC2_INSTANCES);
    let mut addrs: Vec<String> = found.iter().map(|i| i.private_ips[0].to_string()).collect();
    addrs.sort_by_key(|a| a.rsplit('.').next().unwrap().parse::<u32>().unwrap());
    let want: Vec<String> = (1..=EC2_INSTANCES).map(|n| format!("198.18.4.{n}")).collect();
    assert_eq!(addrs, want);
    assert!(found.iter().all(|i| i.region == "us-east-1" && i.is_running() && i.tags["env"] == "bulk"));
    let log = server.requests();
    let pages: Vec<&String> = log.iter().filter(|r| r.contains("Action=DescribeInstances")).collect();
    // us-east-1 in three pages (5, 5, 2), us-west-2 in one; never the region not opted in.
    assert_eq!(pages.len(), 4, "{log:#?}");
    assert_eq!(
        pages.iter().filter(|r| r.contains("NextToken=p5") || r.contains("NextToken=p10")).count(),
        2,
        "{log:#?}"
    );
    assert!(pages.iter().all(|r| r.contains("MaxResults=5")), "{log:#?}");

    let config = CloudConfig {
        providers: vec![CloudProvider::Aws],
        regions: vec!["ap-east-1".into()],
        ..CloudConfig::default()
    };
    match discover(&config, &Options::default()).await {
        Err(e @ CloudError::Region { .. }) => {
            assert!(
                e.to_string()
                    .contains(r#"not enabled: region "ap-east-1" (the account's regions: us-east-1, us-west-2)"#),
                "{e}"
            )
        }
        other => panic!("{other:?}"),
    }
}
