//! `RUSTMAP_PYTHON` naming an interpreter that is not there: a clear, typed error. In its own
//! test binary because it sets an environment variable for the whole process.

use rustmap_model::{HostResult, HostStatus, PortResult, PortState, Protocol, Reason, ServiceInfo};
use rustmap_script::{Catalog, Context, Engine, Limits, ScriptError, Targets};
use std::net::{IpAddr, Ipv4Addr};

#[tokio::test]
async fn rustmap_python_pointing_nowhere_is_a_clear_error() {
    std::env::set_var("RUSTMAP_PYTHON", "/nonexistent");
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut h = HostResult::new(local, HostStatus::Up, Reason::SynAck);
    let mut port = PortResult::new(Protocol::Tcp, 80, PortState::Open, Reason::SynAck, 0);
    port.service = Some(ServiceInfo { name: "http".into(), ..ServiceInfo::default() });
    h.ports.push(port);
    let scripts = Catalog::builtin().unwrap().select("py-http-title").unwrap();
    let ctx = Context { targets: Targets::new([local]), ..Context::default() };
    let engine = Engine::new(scripts, ctx, Limits::default(), 4);
    let out = engine.run_host(&h).await;
    let e = out[0].result.clone().unwrap_err();
    assert!(matches!(e, ScriptError::NoInterpreter { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "py-http-title needs Python 3: RUSTMAP_PYTHON=/nonexistent cannot be run: \
         No such file or directory (os error 2) (set RUSTMAP_PYTHON to a Python 3)"
    );
}
