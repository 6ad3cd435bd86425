//! Live sessions: agents' overlays connect over WebSocket (`/ws`), say hello, stream utterances
//! and get alerts, emotion and cards back as they happen.
//!
//! A call outlives its connection: a client that reconnects with the same call id resumes it,
//! told in the welcome which seq was accepted last, so nothing is lost or counted twice. Every
//! bad frame gets an error with a stable code and the connection keeps going; only a wrong
//! protocol version or a refused token closes it.

mod connection;
pub mod writer;

pub use crate::state::AppState;
use crate::state::{now_ms, ServedPack};
use assist_engine::CallSession;
use assist_protocol::{Channel, Event, Utterance};
use assist_store::{CallFilter, CallMeta, CallStatus, Page, SourceKind, StoreError, StoredLine};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, MethodRouter};
use axum::{Json, Router};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use writer::WriteOp;

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

/// What a call has been fed, kept so the call can move to a newly published pack: the session
/// is rebuilt by feeding the same input to the new pack's engine (events discarded).
#[derive(Debug, Clone)]
pub enum Input {
    /// An accepted final utterance, PII masked.
    Line(Utterance),
    Tick(f64),
}

/// A call in progress (or recently ended, kept so a late reconnect gets a clear answer).
pub struct Call {
    pub agent_id: String,
    pub team: Option<String>,
    /// Voice or chat: rules scoped to the other channel do not run on this call.
    pub channel: Channel,
    pub session: CallSession,
    /// The pack version the session runs on.
    pub pack: Arc<ServedPack>,
    pub last_active: Instant,
    inputs: Vec<Input>,
    /// Writes the store refused, retried with the call's next write.
    pub unsaved: Vec<WriteOp>,
}

impl Call {
    pub fn new(
        agent_id: String,
        team: Option<String>,
        language: &str,
        channel: Channel,
        pack: Arc<ServedPack>,
    ) -> Call {
        Call {
            agent_id,
            team,
            channel,
            session: pack.loaded.engine.start_call(language).on_channel(channel),
            pack,
            last_active: Instant::now(),
            inputs: Vec::new(),
            unsaved: Vec::new(),
        }
    }

    /// A call rebuilt from what was stored (a call in progress when the server stopped).
    pub fn resumed(meta: &CallMeta, lines: &[StoredLine], pack: Arc<ServedPack>) -> Call {
        let mut call = Call::new(
            meta.agent_id.clone(),
            meta.team.clone(),
            &meta.language,
            meta.channel,
            pack,
        );
        for line in lines {
            call.feed(Input::Line(Utterance {
                seq: line.seq,
                speaker: line.speaker,
                partial: false,
                text: line.text.clone(),
                start: line.start,
                end: line.end,
                prosody: None,
            }));
        }
        call
    }

    fn feed(&mut self, input: Input) {
        let knowledge = Arc::clone(&self.pack.loaded.knowledge);
        match &input {
            Input::Line(utt) => {
                if self.session.utterance(utt, knowledge.as_ref()).is_err() {
                    return;
                }
            }
            Input::Tick(t) => {
                self.session.tick(*t);
            }
        }
        self.record(input);
    }

    /// Remembers an input the session took. Consecutive ticks keep only the last.
    pub fn record(&mut self, input: Input) {
        if let (Input::Tick(_), Some(Input::Tick(_))) = (&input, self.inputs.last()) {
            self.inputs.pop();
        }
        self.inputs.push(input);
    }

    /// Moves the call to `pack` if it runs on another version: later utterances use the new
    /// rules and scripts; what the call already said is fed again (events discarded) so the
    /// call keeps its state (disclosures armed, emotion trend, cards already shown). Returns
    /// whether it switched.
    pub fn use_pack(&mut self, pack: &Arc<ServedPack>) -> bool {
        if pack.number == self.pack.number || self.session.is_ended() {
            return false;
        }
        let language = self.session.language().to_string();
        self.session = pack
            .loaded
            .engine
            .start_call(&language)
            .on_channel(self.channel);
        self.pack = Arc::clone(pack);
        for input in std::mem::take(&mut self.inputs) {
            self.feed(input);
        }
        true
    }
}

/// Locks a call, recovering from a poisoned lock (a panic elsewhere must not take every later
/// utterance of the call down with it).
pub fn lock(call: &Mutex<Call>) -> std::sync::MutexGuard<'_, Call> {
    call.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl AppState {
    pub(crate) fn calls(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Mutex<Call>>>> {
        self.calls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn active_calls(&self) -> usize {
        self.calls().len()
    }

    /// Drops calls idle for longer than the TTL. A call that never ended is ended now (its
    /// summary as it stands). Returns how many were dropped and the store writes that close
    /// them.
    pub fn reap_idle_calls(&self) -> (usize, Vec<WriteOp>) {
        let ttl = self.settings.idle_call_ttl;
        let now = now_ms();
        let mut writes = Vec::new();
        let mut calls = self.calls();
        let before = calls.len();
        calls.retain(|call_id, call| {
            let mut call = lock(call);
            let idle = call.last_active.elapsed();
            if idle < ttl {
                return true;
            }
            writes.append(&mut call.unsaved);
            if !call.session.is_ended() {
                let mut events = call.session.end(None);
                if let Some(Event::Summary(summary)) = events.pop() {
                    writes.push(WriteOp::Events {
                        call_id: call_id.clone(),
                        events,
                    });
                    writes.push(WriteOp::End {
                        call_id: call_id.clone(),
                        summary,
                        ended_at: now - idle.as_millis() as i64,
                    });
                }
            }
            false
        });
        (before - calls.len(), writes)
    }

    /// Puts the calls the store has as in progress (the server stopped during them) back in
    /// the registry, so a reconnecting agent resumes where the store left off and the reaper
    /// ends the ones nobody comes back to. Returns how many.
    pub fn resume_open_calls(&self) -> Result<usize, StoreError> {
        let filter = CallFilter {
            status: Some(CallStatus::InProgress),
            source: Some(SourceKind::Live),
            ..CallFilter::default()
        };
        let mut rows = Vec::new();
        loop {
            let page = Page {
                offset: rows.len(),
                limit: 1000,
            };
            let page = self.store.list_calls(&filter, page)?;
            let done = page.rows.len() < 1000;
            rows.extend(page.rows);
            if done {
                break;
            }
        }
        let packs = self.packs.load();
        let mut resumed = 0;
        for row in rows {
            let Some(record) = self.store.get_call(&row.call_id)? else {
                continue;
            };
            let pack = Arc::clone(packs.for_team(record.meta.team.as_deref()));
            let call = Call::resumed(&record.meta, &record.lines, pack);
            self.calls()
                .entry(row.call_id)
                .or_insert_with(|| Arc::new(Mutex::new(call)));
            resumed += 1;
        }
        Ok(resumed)
    }
}

/// `GET /ws`: the agents' WebSocket.
pub fn ws_route() -> MethodRouter<Arc<AppState>> {
    get(upgrade)
}

/// `GET /healthz`.
pub fn health_route() -> MethodRouter<Arc<AppState>> {
    get(health)
}

/// Every route of the server: the live service, the API and the console.
pub fn router(state: Arc<AppState>) -> Router {
    crate::web::router(state)
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
    let packs = state.packs.load();
    let pack = packs.global();
    Json(serde_json::json!({
        "status": "ok",
        "pack": pack.loaded.engine.meta.name,
        "pack_version": pack.pack_version(),
        "calls": state.active_calls(),
    }))
}

/// Runs the idle-call reaper until the process ends: ends calls nobody came back to and stores
/// their end.
pub fn spawn_reaper(state: Arc<AppState>) {
    tokio::spawn(async move {
        let every = (state.settings.idle_call_ttl / 4)
            .clamp(Duration::from_secs(1), Duration::from_secs(60));
        let mut every = tokio::time::interval(every);
        loop {
            every.tick().await;
            let (dropped, writes) = state.reap_idle_calls();
            if dropped > 0 {
                tracing::info!(dropped, "dropped idle calls");
            }
            if let Err(e) = state.writer.write(writes).await {
                tracing::error!(error = %e, "could not store the end of idle calls");
            }
        }
    });
}
