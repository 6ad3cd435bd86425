//! Live sessions: agents' overlays connect over WebSocket (`/ws`), say hello, stream utterances
//! and get alerts, emotion and cards back as they happen.
//!
//! A call outlives its connection: a client that reconnects with the same call id resumes it,
//! told in the welcome which seq was accepted last, so nothing is lost or counted twice. Every
//! bad frame gets an error with a stable code and the connection keeps going; only a wrong
//! protocol version or a refused token closes it.

mod connection;

use crate::packs::LoadedPack;
use arc_swap::ArcSwap;
use assist_engine::CallSession;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// Hard limit on one WebSocket message; frames between [`assist_protocol::MAX_FRAME_BYTES`] and
/// this get a `frame_too_large` error, larger ones close the connection (code 1009).
pub const HARD_MESSAGE_LIMIT: usize = 1024 * 1024;

/// Who may connect. With no tokens configured the server runs open (development), which it
/// logs loudly at start.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    tokens: HashMap<String, String>,
}

impl Auth {
    pub fn new(tokens: HashMap<String, String>) -> Self {
        Auth { tokens }
    }

    pub fn is_open(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn check(&self, agent_id: &str, token: &str) -> bool {
        self.is_open() || self.tokens.get(agent_id).is_some_and(|t| t == token)
    }
}

/// A call in progress (or recently ended, kept so a late reconnect gets a clear answer).
pub struct Call {
    pub agent_id: String,
    pub session: CallSession,
    pub knowledge: Arc<crate::kb::KnowledgeBase>,
    pub last_active: Instant,
    pub card_feedback: Vec<(String, assist_protocol::CardAction)>,
}

/// What every connection shares.
pub struct AppState {
    pub pack: ArcSwap<LoadedPack>,
    pub auth: Auth,
    calls: Mutex<HashMap<String, Arc<Mutex<Call>>>>,
    /// Pack versions published while running (issue: live script pushes).
    pub pack_updates: broadcast::Sender<String>,
    /// How long a call with no traffic is kept for a reconnect.
    pub idle_call_ttl: Duration,
}

impl AppState {
    pub fn new(pack: LoadedPack, auth: Auth, idle_call_ttl: Duration) -> Arc<Self> {
        let (pack_updates, _) = broadcast::channel(16);
        Arc::new(AppState {
            pack: ArcSwap::from_pointee(pack),
            auth,
            calls: Mutex::new(HashMap::new()),
            pack_updates,
            idle_call_ttl,
        })
    }

    fn calls(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Mutex<Call>>>> {
        self.calls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn active_calls(&self) -> usize {
        self.calls().len()
    }

    /// Drops calls idle for longer than the TTL; returns how many.
    pub fn reap_idle_calls(&self) -> usize {
        let ttl = self.idle_call_ttl;
        let mut calls = self.calls();
        let before = calls.len();
        calls.retain(|_, call| lock(call).last_active.elapsed() < ttl);
        before - calls.len()
    }
}

/// Locks a call, recovering from a poisoned lock (a panic elsewhere must not take every later
/// utterance of the call down with it).
pub fn lock(call: &Mutex<Call>) -> std::sync::MutexGuard<'_, Call> {
    call.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The HTTP routes of the live service.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/ws", get(upgrade))
        .route("/healthz", get(health))
        .with_state(state)
}

async fn upgrade(ws: WebSocketUpgrade, State(state): State<Arc<AppState>>) -> impl IntoResponse {
    ws.max_message_size(HARD_MESSAGE_LIMIT)
        .max_frame_size(HARD_MESSAGE_LIMIT)
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(256 * 1024)
        .on_upgrade(move |socket| connection::run(socket, state))
}

async fn health(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let pack = state.pack.load();
    Json(serde_json::json!({
        "status": "ok",
        "pack": pack.engine.meta.name,
        "pack_version": pack.engine.version(),
        "calls": state.active_calls(),
    }))
}

/// Runs the idle-call reaper until the process ends.
pub fn spawn_reaper(state: Arc<AppState>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            let dropped = state.reap_idle_calls();
            if dropped > 0 {
                tracing::info!(dropped, "dropped idle calls");
            }
        }
    });
}
