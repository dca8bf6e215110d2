//! `WS /api/scans/{id}/events`: a scan's events as JSON text frames, one event per frame, in the
//! event stream's own schema (`{"event": "port_found", ...}`, as `--oJ-lines` writes them).
//!
//! A running scan's client gets the events so far, then the live ones, and the socket closes
//! after `scan_finished`. A scan that has ended is replayed from the store: `scan_started`, its
//! hosts' `host_done`, `scan_finished`. Frames from the client are ignored (their size is
//! capped); a client too slow for the live stream gets `{"event": "lagged", "missed": N}` and
//! goes on from there.

use crate::error::ApiError;
use crate::export;
use crate::routes::read_store;
use crate::runner::{State, Subscription};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::Path;
use axum::response::Response;
use rustmap_model::ScanEvent;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// The largest frame or message a client may send (they are ignored anyway).
const MAX_CLIENT_FRAME: usize = 4096;

/// Stream a scan's events.
#[utoipa::path(get, path = "/api/scans/{id}/events", tag = "scans",
    params(("id" = String, Path, description = "Scan id"),
        ("token" = Option<String>, Query, description = "The API key, for WebSocket clients that cannot send headers")),
    responses((status = 101, description = "WebSocket: one JSON event per text frame"),
        (status = 400, description = "Not a WebSocket upgrade", body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn events(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    Path(id): Path<String>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let upgrade = upgrade
        .map_err(|e| ApiError::bad_request(format!("a WebSocket upgrade is expected here: {}", e.body_text())))?;
    let upgrade = upgrade.max_message_size(MAX_CLIENT_FRAME).max_frame_size(MAX_CLIENT_FRAME);
    let stop = state.shutdown.clone();
    if let Some(live) = state.live(&id) {
        let sub = live.subscribe();
        return Ok(upgrade.on_upgrade(move |socket| async move {
            stream_live(socket, sub, stop).await;
        }));
    }
    let key = id.clone();
    let (record, hosts, scripts) =
        read_store(&state, move |s| Ok((s.scan(&key)?, s.hosts(&key)?, s.scan_scripts(&key)?))).await?;
    Ok(upgrade.on_upgrade(move |mut socket| async move {
        for ev in export::events(&record, hosts, scripts) {
            if send(&mut socket, &ev).await.is_err() {
                return;
            }
        }
        close(socket).await;
    }))
}

async fn send(socket: &mut WebSocket, ev: &ScanEvent) -> Result<(), ()> {
    let text = serde_json::to_string(ev).map_err(drop)?;
    socket.send(Message::Text(text.into())).await.map_err(drop)
}

async fn close(mut socket: WebSocket) {
    let frame =
        CloseFrame { code: axum::extract::ws::close_code::NORMAL, reason: Utf8Bytes::from_static("scan finished") };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

async fn stream_live(mut socket: WebSocket, sub: Subscription, stop: tokio_util::sync::CancellationToken) {
    let Subscription { backlog, truncated, live: rx } = sub;
    for ev in &backlog {
        if send(&mut socket, ev).await.is_err() {
            return;
        }
    }
    if truncated {
        let note = serde_json::json!({"event": "backlog_truncated"}).to_string();
        if socket.send(Message::Text(note.into())).await.is_err() {
            return;
        }
    }
    let Some(mut rx) = rx else { return close(socket).await };
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok(ev) => {
                    if send(&mut socket, &ev).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    let note = serde_json::json!({"event": "lagged", "missed": n}).to_string();
                    if socket.send(Message::Text(note.into())).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Closed) => return close(socket).await,
            },
            msg = socket.recv() => match msg {
                // The client's frames are not read for anything; a close or an error ends it.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            _ = stop.cancelled() => return close(socket).await,
        }
    }
}
