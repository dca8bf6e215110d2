//! RustMap's REST and WebSocket API server (`rustmap --api`): scans started, watched, stopped,
//! exported and compared over HTTP, each scan a library session ([`rustmap::Scanner`]) whose
//! event stream feeds the store and any number of WebSocket clients.
//!
//! - [`ApiOptions`] and [`serve`]: bind, refuse an unsafe setup (no key on a non-loopback
//!   address), run until the shutdown future resolves, then stop the running scans (stored as
//!   interrupted) before returning.
//! - `routes`: the endpoints of the guide's table, each in one handler.
//! - `runner`: the running scans — limits (10 at once, one start per second per target, a
//!   bounded queue), the event fan-out, cancellation.
//! - `auth`: Bearer tokens compared in constant time, `?token=` with an Origin check for
//!   WebSocket clients.
//! - `export`: a stored scan written in any output format, from the same writers as the CLI's.
//! - `openapi`: the OpenAPI document generated from the handlers, and an offline docs page.
//! - `error`: every error as JSON of one shape: `{"error": {"code", "message", "field"?}}`.
//!
//! The server never re-validates a scan: a request body becomes a [`rustmap::ScanRequest`],
//! then a [`rustmap::ScanConfig`] checked by [`rustmap::validate()`], whose typed errors become
//! 400 answers naming the field.

#![forbid(unsafe_code)]

mod auth;
mod error;
mod export;
mod openapi;
mod routes;
mod runner;
mod vuln;
mod ws;

pub use error::ApiError;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use thiserror::Error;

/// Scans running at once, at most (the guide's limit).
pub const MAX_CONCURRENT_SCANS: usize = 10;

/// Scans waiting for a free slot, at most, when the request asks to wait (`?queue=true`).
pub const MAX_QUEUED_SCANS: usize = 20;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The largest export or scan document served; bigger ones get 413 and a hint to filter.
pub const MAX_EXPORT_BYTES: usize = 64 * 1024 * 1024;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The Bearer token clients must send; `None` allows loopback only.
    pub api_key: Option<String>,
    /// The only addresses scans may send to (`--api-allow`).
    pub allow: Option<rustmap::AllowList>,
    /// The scan history database.
    pub db: PathBuf,
    /// Saved profiles' directory (`None`: built-in profiles only).
    pub profiles: Option<PathBuf>,
    /// The CVE database of `/api/vuln/*` and of scans' `vuln.check` (`None`: `$RUSTMAP_VULN_DB`,
    /// else `~/.rustmap/vuln.db`).
    pub vuln_db: Option<PathBuf>,
    /// The NVD CVE API `/api/vuln/update` fetches (`None`: `$RUSTMAP_NVD_URL`, else the NVD's).
    pub nvd_url: Option<String>,
    /// The KEV feed `/api/vuln/update` fetches (`None`: `$RUSTMAP_KEV_URL`, else CISA's).
    pub kev_url: Option<String>,
    /// `--nats`: scans with `"distributed": true` run on this cluster's agents (`None`: such
    /// scans are refused).
    pub distribute: Option<rustmap_distrib::scheduler::DistributeOptions>,
}

/// Why the server could not run.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServeError {
    /// No API key, and an address other than loopback.
    #[error(
        "--listen {0}: without --api-key the API only listens on loopback (127.0.0.1, ::1); give --api-key TOKEN to \
         listen on {0}"
    )]
    NeedsKey(SocketAddr),
    /// An empty or whitespace key.
    #[error("--api-key: the key is empty")]
    EmptyKey,
    /// The address could not be bound.
    #[error("--listen {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The history database could not be opened.
    #[error("database {path}: {source}")]
    Store {
        /// Its path.
        path: String,
        /// Why.
        source: rustmap_store::StoreError,
    },
    /// Serving failed.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// A bound server, not yet serving: [`Server::local_addr`] tells the port when `:0` was asked.
pub struct Server {
    listener: tokio::net::TcpListener,
    state: Arc<runner::State>,
    orphans: Vec<String>,
}

impl Server {
    /// Check the options, open (and migrate) the database, bind.
    pub async fn bind(options: ApiOptions) -> Result<Server, ServeError> {
        if options.api_key.as_deref().is_some_and(|k| k.trim().is_empty()) {
            return Err(ServeError::EmptyKey);
        }
        if options.api_key.is_none() && !options.listen.ip().is_loopback() {
            return Err(ServeError::NeedsKey(options.listen));
        }
        let db = options.db.clone();
        // Scans a killed server left `running` are marked interrupted (resumable with --resume).
        let orphans = tokio::task::spawn_blocking(move || rustmap_store::Store::open(&db)?.mark_orphans())
            .await
            .map_err(|e| ServeError::Io(std::io::Error::other(e.to_string())))?
            .map_err(|source| ServeError::Store { path: options.db.display().to_string(), source })?;
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|source| ServeError::Bind { addr: options.listen, source })?;
        Ok(Server { listener, state: Arc::new(runner::State::new(options)), orphans })
    }

    /// The scans found `running` at start whose process was gone, now marked interrupted.
    pub fn orphans(&self) -> &[String] {
        &self.orphans
    }

    /// The address bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serve until `shutdown` resolves; then stop accepting, cancel the running scans and wait
    /// for them to be stored (as interrupted) before returning.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
        let state = Arc::clone(&self.state);
        let app = routes::router(Arc::clone(&state));
        let stop = state.shutdown.clone();
        axum::serve(self.listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                shutdown.await;
                // WebSocket streams end too, or the graceful shutdown would wait for them.
                stop.cancel();
            })
            .await?;
        state.stop_all().await;
        Ok(())
    }
}

/// Bind and serve until `shutdown` resolves.
pub async fn serve(options: ApiOptions, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
    Server::bind(options).await?.run(shutdown).await
}
