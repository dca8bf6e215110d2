//! Start scans at once in one process and print their events as they stream, one JSON line per
//! event: `{"scan": ID, "t_ms": MILLISECONDS SINCE START, "event": {...}}`.
//!
//! ```sh
//! cargo run -p rustmap --example two_scans                      # two connect scans of 127.0.0.1
//! cargo run -p rustmap --example two_scans -- '{"targets":["127.0.0.1"],"ports":{"spec":"22"}}' \
//!                                             '{"targets":["::1"],"ports":{"top":100}}'
//! ```
//!
//! Each argument is a `ScanConfig` as JSON (docs/architecture.md); any number of them run
//! concurrently. Exit code 0 when every scan completed, 1 otherwise, 2 for a bad configuration.

use rustmap::{ScanConfig, ScanEvent, Scanner};
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

#[tokio::main]
async fn main() -> ExitCode {
    let mut configs: Vec<ScanConfig> = Vec::new();
    for arg in std::env::args().skip(1) {
        match serde_json::from_str(&arg) {
            Ok(c) => configs.push(c),
            Err(e) => {
                eprintln!("two_scans: not a scan configuration: {e}: {arg}");
                return ExitCode::from(2);
            }
        }
    }
    if configs.is_empty() {
        // Two connect scans of this machine's loopback, different ports.
        for spec in ["1-1024", "1025-2048"] {
            let mut c = ScanConfig::new(["127.0.0.1"]);
            c.scan_types = vec![rustmap_model::ScanType::Connect];
            c.ports.spec = Some(spec.into());
            configs.push(c);
        }
    }
    let started = Instant::now();
    // Start them all first, then read every stream on its own task.
    let mut readers = Vec::new();
    for config in configs {
        let mut scan = match Scanner::start(config) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("two_scans: {e}");
                return ExitCode::from(2);
            }
        };
        let mut events = scan.events().expect("the stream is taken once");
        readers.push(tokio::spawn(async move {
            let id = scan.id().to_string();
            while let Some(ev) = events.next().await {
                let line = serde_json::json!({
                    "scan": id,
                    "t_ms": started.elapsed().as_millis() as u64,
                    "event": ev,
                });
                // A closed pipe (`| head`) ends the reading; the scan is cancelled then.
                if writeln!(std::io::stdout().lock(), "{line}").is_err() {
                    scan.cancel();
                    break;
                }
                if let ScanEvent::ScanFinished(_) = ev {
                    break;
                }
            }
            scan.wait().await
        }));
    }
    let mut ok = true;
    for r in readers {
        match r.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                eprintln!("two_scans: scan failed: {e}");
                ok = false;
            }
            Err(e) => {
                eprintln!("two_scans: {e}");
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
