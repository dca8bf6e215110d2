//! An agent refuses a shard that names files of its machine (an output file to write, a probe
//! database to read), whoever published it: against a real nats-server with JetStream on
//! loopback. Nothing is scanned, so nothing is sent anywhere.

use futures_util::StreamExt;
use rustmap_distrib::agent::{self, AgentEvent, AgentOptions};
use rustmap_distrib::proto::{self, ResultMsg, ShardMsg, PROTO_VERSION};
use rustmap_distrib::{nats, NatsOptions};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_refuses_a_shard_that_names_local_files() {
    let Some(bin) =
        ["/usr/sbin/nats-server", "/usr/bin/nats-server"].into_iter().find(|p| std::path::Path::new(p).exists())
    else {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "nats-server is not installed (CI=true)");
        eprintln!("SKIP: nats-server not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = 17000 + (std::process::id() % 1000) as u16;
    let _server = Server(
        Command::new(bin)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir.path().join("js"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let end = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "nats-server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let opts = NatsOptions { url: format!("nats://127.0.0.1:{port}"), name: "test".into(), ..Default::default() };
    let cluster = nats::cluster(opts.connect().await.unwrap()).await.unwrap();
    // A shard as nobody's scheduler would send it: an output file and a probe database.
    let written = dir.path().join("written.xml");
    let mut config = rustmap::ScanConfig::new(["127.0.0.1"]);
    config.ports.spec = Some("9".into());
    config.output.files = vec![rustmap_model::config::OutputFile {
        format: rustmap_model::config::OutputFormat::Xml,
        path: written.display().to_string(),
    }];
    config.service.probe_db = vec!["/etc/passwd".into()];
    let shard = ShardMsg { v: PROTO_VERSION, scan_id: "ROGUE".into(), index: 0, group: 0, config };
    cluster
        .js
        .publish(proto::shard_subject("ROGUE", 0), serde_json::to_vec(&shard).unwrap().into())
        .await
        .unwrap()
        .await
        .unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let (drain, abort) = (tokio_util::sync::CancellationToken::new(), tokio_util::sync::CancellationToken::new());
    let agent = tokio::spawn(agent::run(
        AgentOptions {
            nats: opts,
            name: "a".into(),
            tags: Vec::new(),
            concurrency: 1,
            max_rate: None,
            ack_wait: Duration::from_secs(5),
            max_deliver: 3,
        },
        drain.clone(),
        abort,
        Arc::new(move |e: AgentEvent| seen.lock().unwrap().push(format!("{e:?}"))),
    ));
    // The failure is in the results stream, as the scheduler would read it.
    let consumer = cluster
        .results
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
            filter_subject: proto::result_subject("ROGUE"),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut results = consumer.messages().await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(20), results.next()).await.expect("a result").unwrap().unwrap();
    let ResultMsg::Failed { shard, error, .. } = proto::decode::<ResultMsg>("result", &m.payload).unwrap() else {
        panic!("not a failure: {:?}", String::from_utf8_lossy(&m.payload));
    };
    assert_eq!(shard, 0);
    assert!(error.contains("service.probe_db, output.files") && error.contains("refused"), "{error}");
    drain.cancel();
    let done = tokio::time::timeout(Duration::from_secs(20), agent).await.unwrap().unwrap().unwrap();
    assert_eq!(done, 0, "nothing scanned");
    assert!(!written.exists());
    // Given up for good: not left in the queue for another agent.
    let left = cluster.shards.get_last_raw_message_by_subject(&proto::shard_subject("ROGUE", 0)).await;
    assert!(left.is_err(), "the refused shard is still queued");
    assert!(events.lock().unwrap().iter().any(|e| e.contains("ShardFailed")));
}
