//! Connecting to NATS (auth and TLS as the user gave them) and the JetStream objects every
//! process of a cluster shares: the shard work queue, the results stream and two key-value
//! buckets. Whoever comes first creates them; the others use them as they are.

use crate::DistError;
use async_nats::jetstream::{self, kv, stream};
use std::path::PathBuf;
use std::time::Duration;

/// The work queue of shards: each message is taken by one agent and removed when acked.
pub const SHARDS_STREAM: &str = "RUSTMAP_SHARDS";
/// What agents found, kept for a week so that a restarted scheduler can read it again.
pub const RESULTS_STREAM: &str = "RUSTMAP_RESULTS";
/// Agents alive: one key per agent, gone [`AGENT_TTL`] after its last refresh.
pub const AGENTS_BUCKET: &str = "rustmap-agents";
/// Distributed scans' manifests (configuration, permutation key, shard count), by scan id.
pub const SCANS_BUCKET: &str = "rustmap-scans";
/// The durable pull consumer all agents share.
pub const AGENTS_CONSUMER: &str = "agents";
/// How long an agent's registry entry lives without a refresh.
pub const AGENT_TTL: Duration = Duration::from_secs(15);
/// How long a message id is remembered for de-duplication.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(30 * 60);
/// How long results are kept.
pub const RESULTS_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// How to reach the NATS server: `--nats` and its auth and TLS options.
#[derive(Debug, Clone, Default)]
pub struct NatsOptions {
    /// `nats://host:port` (or `tls://`); several separated by commas.
    pub url: String,
    /// `--nats-token`.
    pub token: Option<String>,
    /// `--nats-user`.
    pub user: Option<String>,
    /// `--nats-password`.
    pub password: Option<String>,
    /// `--nats-nkey`: a file holding an nkey seed (`SU...`).
    pub nkey_file: Option<PathBuf>,
    /// `--nats-creds`: a `.creds` file (user JWT and seed).
    pub creds_file: Option<PathBuf>,
    /// `--nats-tls-ca`: certificates to trust for the server.
    pub tls_ca: Option<PathBuf>,
    /// `--nats-tls-cert` and `--nats-tls-key`: a client certificate.
    pub tls_cert: Option<(PathBuf, PathBuf)>,
    /// `--nats-tls`: refuse a connection without TLS.
    pub tls_required: bool,
    /// The connection's name, as the server's monitoring shows it.
    pub name: String,
}

impl NatsOptions {
    /// Connect, with a bounded wait.
    pub async fn connect(&self) -> Result<async_nats::Client, DistError> {
        let fail = |message: String| DistError::Connect { url: self.url.clone(), message };
        let mut o = match &self.creds_file {
            Some(path) => async_nats::ConnectOptions::with_credentials_file(path.clone())
                .await
                .map_err(|e| DistError::File { path: path.display().to_string(), message: e.to_string() })?,
            None => async_nats::ConnectOptions::new(),
        };
        if let Some(t) = &self.token {
            o = o.token(t.clone());
        }
        match (&self.user, &self.password) {
            (Some(u), Some(p)) => o = o.user_and_password(u.clone(), p.clone()),
            (Some(_), None) | (None, Some(_)) => {
                return Err(DistError::Config("--nats-user and --nats-password go together".into()))
            }
            (None, None) => {}
        }
        if let Some(path) = &self.nkey_file {
            let seed = std::fs::read_to_string(path)
                .map_err(|e| DistError::File { path: path.display().to_string(), message: e.to_string() })?;
            let seed = seed.lines().map(str::trim).find(|l| l.starts_with("SU")).ok_or_else(|| DistError::File {
                path: path.display().to_string(),
                message: "no user nkey seed (a line starting with SU) in it".into(),
            })?;
            o = o.nkey(seed.to_string());
        }
        if let Some(ca) = &self.tls_ca {
            o = o.add_root_certificates(ca.clone());
        }
        if let Some((cert, key)) = &self.tls_cert {
            o = o.add_client_certificate(cert.clone(), key.clone());
        }
        if self.tls_required {
            o = o.require_tls(true);
        }
        let o = o
            .name(&self.name)
            .connection_timeout(Duration::from_secs(10))
            .request_timeout(Some(Duration::from_secs(10)));
        let servers: Vec<async_nats::ServerAddr> = self
            .url
            .split(',')
            .map(|u| u.trim().parse::<async_nats::ServerAddr>().map_err(|e| fail(format!("not a NATS URL: {e}"))))
            .collect::<Result<_, _>>()?;
        o.connect(servers).await.map_err(|e| fail(e.to_string()))
    }
}

/// The JetStream objects of a cluster.
pub struct Cluster {
    /// The JetStream context.
    pub js: jetstream::Context,
    /// The shard work queue.
    pub shards: stream::Stream,
    /// The results stream.
    pub results: stream::Stream,
    /// Agents alive.
    pub agents: kv::Store,
    /// Scan manifests.
    pub scans: kv::Store,
}

/// Open (creating them if needed) the streams and buckets on `client`.
pub async fn cluster(client: async_nats::Client) -> Result<Cluster, DistError> {
    let js = jetstream::new(client);
    let shards = js
        .get_or_create_stream(stream::Config {
            name: SHARDS_STREAM.into(),
            subjects: vec!["rustmap.shard.>".into()],
            retention: stream::RetentionPolicy::WorkQueue,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        })
        .await
        .map_err(|e| DistError::js("the shard stream", e))?;
    let results = js
        .get_or_create_stream(stream::Config {
            name: RESULTS_STREAM.into(),
            subjects: vec!["rustmap.result.>".into()],
            retention: stream::RetentionPolicy::Limits,
            max_age: RESULTS_MAX_AGE,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        })
        .await
        .map_err(|e| DistError::js("the results stream", e))?;
    let agents = bucket(&js, AGENTS_BUCKET, AGENT_TTL).await?;
    let scans = bucket(&js, SCANS_BUCKET, RESULTS_MAX_AGE).await?;
    Ok(Cluster { js, shards, results, agents, scans })
}

async fn bucket(js: &jetstream::Context, name: &str, max_age: Duration) -> Result<kv::Store, DistError> {
    if let Ok(s) = js.get_key_value(name).await {
        return Ok(s);
    }
    // The bucket's stream, made as the key-value convention has it (`KV_<bucket>` on
    // `$KV.<bucket>.>`, one value per key). Not `create_key_value`: it first asks for the
    // account's limits, whose answer from a 2.9 server (Debian 12's) the client cannot read.
    let config = stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    };
    let made = js.get_or_create_stream(config).await;
    match js.get_key_value(name).await {
        Ok(s) => Ok(s),
        Err(e) => Err(match made {
            Err(m) => DistError::js(&format!("the {name} bucket"), m),
            Ok(_) => DistError::js(&format!("the {name} bucket"), e),
        }),
    }
}
