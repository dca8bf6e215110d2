//! `--cloud azure` and `--cloud gcp` against the loopback fixture server of `rustmap-cloud`
//! (the Resource Manager and Compute REST shapes, paged): listings with `-sL`, which sends
//! nothing to the instances, so no lab is needed; the credential paths (service principal, the
//! Azure CLI, a service-account key, a user login, the metadata server) and the errors.

use rustmap_cloud::fixture::{self, FixtureServer};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The cloud variables a test may set: cleared for every run, so the machine's own never leak in.
const CLOUD_VARS: &[&str] = &[
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_SUBSCRIPTION_ID",
    "AZURE_AUTHORITY_HOST",
    "RUSTMAP_AZURE_ARM_URL",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_PROJECT",
    "CLOUDSDK_CORE_PROJECT",
    "CLOUDSDK_CONFIG",
    "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE",
    "GCE_METADATA_HOST",
];

fn run(home: &Path, path: Option<&Path>, env: &[(&str, String)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rustmap"));
    cmd.args(args).arg("--no-db").env("HOME", home).stdin(Stdio::null());
    for v in CLOUD_VARS {
        cmd.env_remove(v);
    }
    // Without a fake `az`, PATH holds no Azure CLI.
    cmd.env("PATH", path.map(|p| p.display().to_string()).unwrap_or_else(|| "/nonexistent".into()));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("rustmap")
}

fn listing(o: &Output) -> Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

fn addrs(v: &Value) -> BTreeSet<String> {
    v["hosts"].as_array().unwrap().iter().map(|h| h["addr"].as_str().unwrap().to_string()).collect()
}

fn set(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn failed(o: &Output, code: i32, want: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{err}");
    assert!(err.contains(want), "wanted {want:?} in: {err}");
}

#[test]
fn azure_virtual_machines_through_resource_manager() {
    let server = FixtureServer::start().unwrap();
    let home = tempfile::tempdir().unwrap();
    let sp = |secret: &str| {
        vec![
            ("AZURE_TENANT_ID", "lab-tenant".to_string()),
            ("AZURE_CLIENT_ID", "rustmap".to_string()),
            ("AZURE_CLIENT_SECRET", secret.to_string()),
            ("AZURE_SUBSCRIPTION_ID", fixture::AZURE_SUBSCRIPTION.to_string()),
            ("AZURE_AUTHORITY_HOST", server.base.clone()),
            ("RUSTMAP_AZURE_ARM_URL", server.base.clone()),
        ]
    };
    let env = sp(fixture::AZURE_SECRET);
    let list = ["--cloud", "azure", "--cloud-tag", "env=lab", "--cloud-running-only", "-sL", "--oJ", "-"];
    let v = listing(&run(home.path(), None, &env, &list));
    assert_eq!(addrs(&v), set(&["198.18.0.10", "198.18.5.10", "198.18.2.10"]), "{v}");
    let web = v["hosts"].as_array().unwrap().iter().find(|h| h["addr"] == "198.18.5.10").unwrap();
    let c = &web["cloud"];
    assert_eq!(
        (c["provider"].as_str(), c["name"].as_str(), c["region"].as_str()),
        (Some("azure"), Some("vm-web"), Some("eastus"))
    );
    assert_eq!((c["state"].as_str(), c["instance_type"].as_str()), (Some("running"), Some("Standard_B1s")));
    assert_eq!(c["public_ips"], serde_json::json!(["198.18.5.10"]), "the public IP joined through the NIC: {c}");
    assert_eq!(c["private_ips"], serde_json::json!(["198.18.0.10"]));
    assert!(c["id"].as_str().unwrap().ends_with("/virtualMachines/vm-web"));
    // Four VMs, two per page: the listing followed nextLink.
    let vm_pages = server.requests().iter().filter(|r| r.contains("/virtualMachines")).count();
    assert!(vm_pages >= 2, "{:?}", server.requests());

    // Locations, the address kinds, the deallocated VM.
    let v =
        listing(&run(home.path(), None, &env, &["--cloud", "azure", "--cloud-regions", "westus2", "-sL", "--oJ", "-"]));
    assert_eq!(addrs(&v), set(&["198.18.2.10"]));
    let v = listing(&run(
        home.path(),
        None,
        &env,
        &["--cloud", "azure", "--cloud-tag", "env=lab", "--cloud-private-only", "-sL", "--oJ", "-"],
    ));
    assert_eq!(addrs(&v), set(&["198.18.0.10", "198.18.0.13", "198.18.2.10"]));
    let db = v["hosts"].as_array().unwrap().iter().find(|h| h["addr"] == "198.18.0.13").unwrap();
    assert_eq!(db["cloud"]["state"], "deallocated");
    let v = listing(&run(home.path(), None, &env, &["--cloud", "azure", "--cloud-public-only", "-sL", "--oJ", "-"]));
    assert_eq!(addrs(&v), set(&["198.18.5.10"]));

    // The Azure CLI's login, when no service principal is set.
    let bin = tempfile::tempdir().unwrap();
    let az = bin.path().join("az");
    let token = serde_json::json!({"accessToken": fixture::AZURE_TOKEN, "subscription": fixture::AZURE_SUBSCRIPTION, "tokenType": "Bearer"});
    std::fs::write(&az, format!("#!/bin/sh\n[ \"$1 $2\" = 'account get-access-token' ] || exit 2\necho '{token}'\n"))
        .unwrap();
    std::fs::set_permissions(&az, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let arm = [("RUSTMAP_AZURE_ARM_URL", server.base.clone())];
    let v = listing(&run(home.path(), Some(bin.path()), &arm, &list));
    assert_eq!(addrs(&v).len(), 3, "{v}");

    // Errors: none of the credentials, a wrong secret, a denied permission, an unknown location.
    failed(
        &run(home.path(), None, &arm, &list),
        1,
        "--cloud azure: no credentials found; tried a service principal (AZURE_TENANT_ID",
    );
    failed(&run(home.path(), None, &sp("wrong"), &list), 1, "AADSTS7000215: Invalid client secret provided.");
    failed(
        &run(home.path(), None, &sp("denied"), &list),
        1,
        "permission Microsoft.Compute/virtualMachines/read denied",
    );
    failed(
        &run(home.path(), None, &env, &["--cloud", "azure", "--cloud-regions", "mars", "-sL"]),
        1,
        r#"no such region "mars" (the account's regions: eastus, westus2)"#,
    );
}

#[test]
fn gcp_instances_through_compute() {
    let server = FixtureServer::start().unwrap();
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let compute = ("CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE", format!("{}/compute/v1/", server.base));

    // A service-account key: the JWT is signed with a key made here.
    let pem = dir.path().join("key.pem");
    let o = Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
        .arg(&pem)
        .output()
        .expect("openssl");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let key = serde_json::json!({
        "type": "service_account", "project_id": fixture::GCP_PROJECT, "private_key_id": "1",
        "private_key": std::fs::read_to_string(&pem).unwrap(), "client_email": "scanner@rustmap-lab.iam.gserviceaccount.com",
        "token_uri": format!("{}/token", server.base)
    });
    let key_file = dir.path().join("sa.json");
    std::fs::write(&key_file, key.to_string()).unwrap();
    let env = [("GOOGLE_APPLICATION_CREDENTIALS", key_file.display().to_string()), compute.clone()];
    let list = ["--cloud", "gcp", "--cloud-tag", "env=lab", "--cloud-running-only", "-sL", "--oJ", "-"];
    let v = listing(&run(home.path(), None, &env, &list));
    assert_eq!(addrs(&v), set(&["198.18.0.10", "198.18.5.10", "198.18.2.10"]), "{v}");
    let eu = v["hosts"].as_array().unwrap().iter().find(|h| h["addr"] == "198.18.2.10").unwrap();
    let c = &eu["cloud"];
    assert_eq!((c["provider"].as_str(), c["id"].as_str(), c["name"].as_str()), (Some("gcp"), Some("1003"), Some("eu")));
    assert_eq!((c["region"].as_str(), c["zone"].as_str()), (Some("europe-west1"), Some("europe-west1-b")));
    assert_eq!((c["state"].as_str(), c["instance_type"].as_str()), (Some("running"), Some("e2-micro")));
    let pages = server.requests().iter().filter(|r| r.contains("aggregated/instances")).count();
    assert!(pages >= 2, "two per page: {:?}", server.requests());
    let v = listing(&run(
        home.path(),
        None,
        &env,
        &["--cloud", "gcp", "--cloud-tag", "env=lab", "--cloud-private-only", "-sL", "--oJ", "-"],
    ));
    assert_eq!(addrs(&v), set(&["198.18.0.10", "198.18.0.13", "198.18.2.10"]));
    let v = listing(&run(
        home.path(),
        None,
        &env,
        &["--cloud", "gcp", "--cloud-regions", "us-central1", "--cloud-running-only", "-sL", "--oJ", "-"],
    ));
    assert_eq!(addrs(&v), set(&["198.18.0.10", "198.18.5.10", "198.18.0.14"]));

    // A user login (gcloud auth application-default login) in gcloud's place for it.
    let gcloud = home.path().join(".config/gcloud");
    std::fs::create_dir_all(&gcloud).unwrap();
    let user = serde_json::json!({"type": "authorized_user", "client_id": "c", "client_secret": "s",
        "refresh_token": fixture::GCP_REFRESH, "quota_project_id": fixture::GCP_PROJECT, "token_uri": format!("{}/token", server.base)});
    std::fs::write(gcloud.join("application_default_credentials.json"), user.to_string()).unwrap();
    assert_eq!(addrs(&listing(&run(home.path(), None, std::slice::from_ref(&compute), &list))).len(), 3);
    std::fs::remove_file(gcloud.join("application_default_credentials.json")).unwrap();

    // The metadata server of a Compute Engine machine.
    let meta = [("GCE_METADATA_HOST", server.base.trim_start_matches("http://").to_string()), compute.clone()];
    assert_eq!(addrs(&listing(&run(home.path(), None, &meta, &list))).len(), 3);

    // Errors.
    failed(
        &run(home.path(), None, std::slice::from_ref(&compute), &list),
        1,
        "--cloud gcp: no credentials found; tried GOOGLE_APPLICATION_CREDENTIALS",
    );
    failed(
        &run(home.path(), None, &env, &["--cloud", "gcp", "--cloud-regions", "moon1", "-sL"]),
        1,
        r#"no such region "moon1""#,
    );
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"type": "external_account"}"#).unwrap();
    let env = [("GOOGLE_APPLICATION_CREDENTIALS", bad.display().to_string()), compute];
    failed(&run(home.path(), None, &env, &list), 1, r#"type "external_account" is not supported"#);
}

#[test]
fn without_the_aws_sdk_aws_says_how_to_build_it() {
    if cfg!(feature = "cloud") {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let o = run(home.path(), None, &[], &["--cloud", "aws", "-sL"]);
    failed(&o, 2, "--features cloud");
}

/// The issue's bar: a default build compiles no cloud SDK; the `cloud` feature brings the AWS one.
#[test]
fn a_default_build_compiles_no_cloud_sdk() {
    let tree = |features: &[&str]| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let o = Command::new(cargo)
            .args(["tree", "-p", "rustmap-cli", "-e", "normal,build", "--prefix", "none", "--locked"])
            .args(features)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo tree");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| l.split(' ').next().unwrap_or("").to_string())
            .collect::<BTreeSet<_>>()
    };
    let default = tree(&[]);
    assert!(default.contains("rustmap-cloud"), "Azure and GCP are in every build");
    let sdk: Vec<_> = default
        .iter()
        .filter(|c| c.starts_with("aws-") || c.starts_with("google-cloud") || c.starts_with("azure_"))
        .collect();
    assert!(sdk.is_empty(), "a default build compiles {sdk:?}");
    assert!(tree(&["--features", "cloud"]).contains("aws-sdk-ec2"));
}
