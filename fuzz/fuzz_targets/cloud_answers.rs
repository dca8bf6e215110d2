//! What `--cloud azure` and `--cloud gcp` read from the providers (`rustmap-cloud`): Resource
//! Manager listings of VMs, network interfaces and public IPs, joined, and pages of GCP
//! Compute's `aggregated/instances`. Any JSON gives instances or nothing, never a panic; every
//! instance's addresses are ones the answer named.
#![no_main]
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(data) else { return };
    // Every string of the document, decoded: addresses may only come from these.
    let mut strings = std::collections::HashSet::new();
    let mut stack = vec![&v];
    while let Some(x) = stack.pop() {
        match x {
            Value::String(s) => {
                strings.insert(s.clone());
            }
            Value::Array(a) => stack.extend(a),
            Value::Object(o) => stack.extend(o.values()),
            _ => {}
        }
    }
    let named = |i: &rustmap_model::CloudInstance| {
        i.public_ips.iter().chain(&i.private_ips).all(|ip| strings.iter().any(|s| s.parse().ok() == Some(*ip)))
    };
    for i in rustmap_cloud::parse_gcp_page(&v) {
        assert!(named(&i), "{i:?}");
    }
    // One document as all three listings, and its parts as each.
    let parts = |k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    for (vms, nics, ips) in [(v.clone(), v.clone(), v.clone()), (parts("vms"), parts("nics"), parts("ips"))] {
        for i in rustmap_cloud::parse_azure(&vms, &nics, &ips) {
            assert!(named(&i), "{i:?}");
        }
    }
});
