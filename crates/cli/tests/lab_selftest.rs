//! `--self-test` as root inside the lab's scanner namespace: the guide's eight checks, each a
//! pass or a warning with its reason (the GeoIP databases are not installed: a warning).
//! Without the lab this skips with a reason — except under `CI=true`, where it fails.

mod common;

use common::*;

#[test]
fn self_test_as_root_in_the_lab_passes_or_warns_every_check() {
    let Some(_lab) = lab() else { return };
    let o = rustmap(&["--self-test", "--oJ", "-"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let checks = v["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 8, "{v}");
    for c in checks {
        assert!(c["status"] == "PASS" || c["status"] == "WARN", "{c}");
        assert!(!c["detail"].as_str().unwrap().is_empty(), "{c}");
    }
    let status = |n: &str| checks.iter().find(|c| c["name"] == n).unwrap()["status"].clone();
    for must_pass in
        ["Privilege level", "Packet capture", "Raw socket access", "Network interfaces", "Loopback connectivity"]
    {
        assert_eq!(status(must_pass), "PASS", "{must_pass}: {v}");
    }
    assert_eq!(o.status.code(), Some(0));
}
