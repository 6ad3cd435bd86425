//! One agent's WebSocket connection: hello, then utterances in and events out.
//!
//! Every frame is handled in two steps: the engine work under the call's lock (pure, no await),
//! which gives the replies and the store writes; then the writes, and only once an accepted
//! utterance is durable, its `ack` and events.

use super::writer::WriteOp;
use super::{lock, AppState, Call, Input};
use crate::state::{now_ms, PackUpdate};
use assist_engine::SessionError;
use assist_protocol::{
    Channel, ClientMessage, ErrorCode, Event, ServerMessage, Utterance, MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
};
use assist_store::{CallMeta, CallSource, CallStatus, StoredLine};
use axum::extract::ws::{Message, WebSocket};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::broadcast::error::RecvError;

/// What a connection knows once its hello is accepted.
struct Greeted {
    call_id: String,
    team: Option<String>,
    call: Arc<Mutex<Call>>,
}

struct Connection {
    state: Arc<AppState>,
    greeted: Option<Greeted>,
}

/// Store writes of one frame.
#[derive(Default)]
struct Writes {
    ops: Vec<WriteOp>,
    /// Wait until the writes are durable before replying (accepted utterances, call end).
    durable: bool,
}

/// The replies to one frame, the store writes to make first, and whether to close afterwards.
#[derive(Default)]
struct Outcome {
    replies: Vec<ServerMessage>,
    writes: Writes,
    close: bool,
}

impl Outcome {
    fn reply(message: ServerMessage) -> Self {
        Outcome {
            replies: vec![message],
            ..Outcome::default()
        }
    }

    fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Outcome::reply(ServerMessage::error(code, message))
    }

    fn fatal(code: ErrorCode, message: impl Into<String>) -> Self {
        Outcome {
            replies: vec![ServerMessage::error(code, message)],
            close: true,
            ..Outcome::default()
        }
    }
}

pub async fn run(mut socket: WebSocket, state: Arc<AppState>) {
    let mut updates = state.pack_updates.subscribe();
    let mut conn = Connection {
        state,
        greeted: None,
    };
    loop {
        let mut outcome = tokio::select! {
            frame = socket.recv() => match frame {
                None => break,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "websocket closed with an error");
                    break;
                }
                Some(Ok(Message::Close(_))) => break,
                Some(Ok(message)) => conn.frame(message).await,
            },
            update = updates.recv(), if conn.greeted.is_some() => match update {
                Ok(update) => conn.pack_update(&update),
                Err(RecvError::Lagged(_)) => conn.current_pack(),
                Err(RecvError::Closed) => break,
            },
        };
        conn.store(&mut outcome).await;
        for reply in outcome.replies {
            let text = match serde_json::to_string(&reply) {
                Ok(text) => text,
                Err(e) => {
                    tracing::error!(error = %e, "cannot serialize a reply");
                    continue;
                }
            };
            if socket.send(Message::Text(text.into())).await.is_err() {
                return;
            }
        }
        if outcome.close {
            let _ = socket.send(Message::Close(None)).await;
            break;
        }
    }
    if let Some(greeted) = &conn.greeted {
        tracing::debug!(call_id = %greeted.call_id, "agent disconnected; call kept for a reconnect");
    }
}

impl Connection {
    async fn frame(&mut self, message: Message) -> Outcome {
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                return Outcome::error(
                    ErrorCode::BinaryNotSupported,
                    "binary frames are not accepted: send JSON text (audio never leaves the agent's machine)",
                )
            }
            // Pings are answered by the WebSocket layer.
            _ => return Outcome::default(),
        };
        if text.len() > MAX_FRAME_BYTES {
            return Outcome::error(
                ErrorCode::FrameTooLarge,
                format!(
                    "frame of {} bytes is over the {} byte limit; it was ignored",
                    text.len(),
                    MAX_FRAME_BYTES
                ),
            );
        }
        match serde_json::from_str::<ClientMessage>(text.as_str()) {
            Ok(ClientMessage::Hello {
                version,
                agent_id,
                token,
                call_id,
                language,
                channel,
            }) => {
                self.hello(Hello {
                    version,
                    agent_id,
                    token,
                    call_id,
                    language,
                    channel,
                })
                .await
            }
            Ok(message) => self.message(message),
            Err(e) => Outcome::error(
                ErrorCode::MalformedMessage,
                format!("not a protocol v{PROTOCOL_VERSION} message: {e}"),
            ),
        }
    }

    /// A message after hello: engine work under the call's lock, no await.
    fn message(&mut self, message: ClientMessage) -> Outcome {
        let Some(greeted) = &self.greeted else {
            return Outcome::error(
                ErrorCode::HelloRequired,
                "say hello first: {\"type\":\"hello\",\"v\":1,...}",
            );
        };
        let call_id = greeted.call_id.clone();
        let mut call = lock(&greeted.call);
        call.last_active = Instant::now();
        // A pack published since the last message applies from this one on.
        let packs = self.state.packs.load();
        let pack = Arc::clone(packs.for_team(call.team.as_deref()));
        if call.use_pack(&pack) {
            tracing::debug!(call_id = %call_id, version = pack.number, "call moved to a new pack version");
        }
        let mut outcome = match message {
            ClientMessage::Utterance(utt) => utterance(&mut call, &call_id, utt),
            ClientMessage::Tick { t } => {
                let events = call.session.tick(t);
                if t.is_finite() {
                    call.record(Input::Tick(t));
                }
                let mut outcome = Outcome::default();
                if !events.is_empty() {
                    outcome.writes.ops.push(WriteOp::Events {
                        call_id,
                        events: events.clone(),
                    });
                }
                outcome.replies = events.into_iter().map(Into::into).collect();
                outcome
            }
            ClientMessage::CardFeedback { card_id, action } => {
                let mut outcome = Outcome::default();
                outcome.writes.ops.push(WriteOp::Card {
                    call_id,
                    card_id,
                    action,
                });
                outcome
            }
            ClientMessage::CallEnd { t } => {
                let already = call.session.is_ended();
                let mut events = call.session.end(Some(t));
                let mut outcome = Outcome::default();
                if !already {
                    tracing::info!(call_id = %call_id, "call ended");
                    if let Some(Event::Summary(summary)) = events.last().cloned() {
                        let alerts = events[..events.len() - 1].to_vec();
                        outcome.writes.ops.push(WriteOp::Events {
                            call_id: call_id.clone(),
                            events: alerts,
                        });
                        outcome.writes.ops.push(WriteOp::End {
                            call_id,
                            summary,
                            ended_at: now_ms(),
                        });
                        outcome.writes.durable = true;
                    }
                }
                outcome.replies = events.drain(..).map(Into::into).collect();
                outcome
            }
            ClientMessage::Hello { .. } => Outcome::error(
                ErrorCode::AlreadyGreeted,
                "this connection already has a call; open a new connection for another call",
            ),
        };
        if !outcome.writes.ops.is_empty() && !call.unsaved.is_empty() {
            // Writes the store refused earlier go first.
            let mut ops = std::mem::take(&mut call.unsaved);
            ops.append(&mut outcome.writes.ops);
            outcome.writes.ops = ops;
        }
        outcome
    }

    /// Makes the outcome's store writes; an accepted utterance is acknowledged only once it is
    /// durable, and gets `unavailable` instead of its ack when the store refused it (the write
    /// is retried with the call's next one).
    async fn store(&mut self, outcome: &mut Outcome) {
        let writes = std::mem::take(&mut outcome.writes);
        if writes.ops.is_empty() {
            return;
        }
        if !writes.durable {
            self.state.writer.queue(writes.ops).await;
            return;
        }
        if let Err(e) = self.state.writer.write(writes.ops).await {
            tracing::error!(error = %e.message, "the store refused a live write; it will be retried");
            if let Some(greeted) = &self.greeted {
                lock(&greeted.call).unsaved.extend(e.unapplied);
            }
            for reply in &mut outcome.replies {
                if let ServerMessage::Ack { seq } = reply {
                    *reply = ServerMessage::Error {
                        code: ErrorCode::Unavailable,
                        message: "the call log could not store this utterance; send it again"
                            .into(),
                        seq: Some(*seq),
                    };
                }
            }
        }
    }

    fn pack_update(&self, update: &PackUpdate) -> Outcome {
        let Some(greeted) = &self.greeted else {
            return Outcome::default();
        };
        if !update.scope.applies_to(greeted.team.as_deref()) {
            return Outcome::default();
        }
        Outcome::reply(ServerMessage::PackUpdated {
            pack_version: update.pack_version.clone(),
        })
    }

    /// After missing updates (a slow connection), the version this agent gets now.
    fn current_pack(&self) -> Outcome {
        let Some(greeted) = &self.greeted else {
            return Outcome::default();
        };
        let packs = self.state.packs.load();
        Outcome::reply(ServerMessage::PackUpdated {
            pack_version: packs.for_team(greeted.team.as_deref()).pack_version(),
        })
    }

    async fn hello(&mut self, hello: Hello) -> Outcome {
        if hello.version != PROTOCOL_VERSION {
            return Outcome::fatal(
                ErrorCode::UnsupportedVersion,
                format!(
                    "protocol version {} is not supported; this server speaks v{PROTOCOL_VERSION}: update the client",
                    hello.version
                ),
            );
        }
        if self.greeted.is_some() {
            return Outcome::error(
                ErrorCode::AlreadyGreeted,
                "this connection already has a call; open a new connection for another call",
            );
        }
        let Hello {
            agent_id,
            token,
            call_id,
            language,
            channel,
            ..
        } = hello;
        if agent_id.trim().is_empty() || call_id.trim().is_empty() {
            return Outcome::error(
                ErrorCode::InvalidField,
                "agent_id and call_id must not be empty",
            );
        }
        let language = language.to_ascii_lowercase();
        if language != "zh" && language != "en" {
            return Outcome::error(
                ErrorCode::InvalidField,
                format!("language `{language}` is not supported: use `zh` or `en`"),
            );
        }
        let team = match authenticate(&self.state, &agent_id, &token).await {
            Ok(team) => team,
            Err(()) => {
                tracing::warn!(agent_id = %agent_id, "refused a hello with a wrong token");
                return Outcome::fatal(
                    ErrorCode::Unauthorized,
                    "the token does not match this agent: log in again",
                );
            }
        };
        let (call, begun) = match self
            .find_call(&call_id, &agent_id, &team, &language, channel)
            .await
        {
            Ok(found) => found,
            Err(outcome) => return outcome,
        };
        let (owner, last_seq, ended, pack_version) = {
            let mut c = lock(&call);
            c.last_active = Instant::now();
            let packs = self.state.packs.load();
            let pack = Arc::clone(packs.for_team(c.team.as_deref()));
            c.use_pack(&pack);
            (
                c.agent_id.clone(),
                c.session.last_seq(),
                c.session.is_ended(),
                c.pack.pack_version(),
            )
        };
        if owner != agent_id {
            tracing::warn!(agent_id = %agent_id, call_id = %call_id, "refused another agent's call");
            return Outcome::fatal(ErrorCode::Forbidden, "this call belongs to another agent");
        }
        if ended {
            return Outcome::error(ErrorCode::CallEnded, "this call has already ended");
        }
        if begun {
            let meta = CallMeta {
                call_id: call_id.clone(),
                agent_id: agent_id.clone(),
                team: team.clone(),
                channel,
                language: language.clone(),
                source: CallSource::Live,
                started_at: now_ms(),
                ended_at: None,
                status: CallStatus::InProgress,
            };
            if let Err(e) = self.state.writer.write(vec![WriteOp::Begin(meta)]).await {
                tracing::error!(call_id = %call_id, error = %e.message, "cannot store a new call");
                self.state.calls().remove(&call_id);
                return Outcome::error(
                    ErrorCode::Unavailable,
                    "the call log is not available right now: try again shortly",
                );
            }
        }
        tracing::info!(agent_id = %agent_id, call_id = %call_id, resumed = last_seq > 0, "call connected");
        self.greeted = Some(Greeted {
            call_id: call_id.clone(),
            team,
            call,
        });
        Outcome::reply(ServerMessage::Welcome {
            version: PROTOCOL_VERSION,
            call_id,
            last_seq,
            pack_version,
        })
    }

    /// The call in the registry; else the one the store has (a call in progress before a
    /// restart, rebuilt from its stored lines); else a new one (`true`: begin it in the store).
    async fn find_call(
        &self,
        call_id: &str,
        agent_id: &str,
        team: &Option<String>,
        language: &str,
        channel: Channel,
    ) -> Result<(Arc<Mutex<Call>>, bool), Outcome> {
        if let Some(call) = self.state.calls().get(call_id) {
            return Ok((Arc::clone(call), false));
        }
        let state = Arc::clone(&self.state);
        let id = call_id.to_string();
        let stored = tokio::task::spawn_blocking(move || state.store.get_call(&id)).await;
        let stored = match stored {
            Ok(Ok(stored)) => stored,
            Ok(Err(e)) => {
                tracing::error!(call_id = %call_id, error = %e, "cannot read a call from the store");
                return Err(Outcome::error(
                    ErrorCode::Unavailable,
                    "the call log is not available right now: try again shortly",
                ));
            }
            Err(e) => {
                tracing::error!(error = %e, "store task failed");
                return Err(Outcome::error(ErrorCode::Unavailable, "try again shortly"));
            }
        };
        let packs = self.state.packs.load();
        let (call, begun) = match stored {
            Some(record) => {
                if record.meta.agent_id != agent_id {
                    tracing::warn!(agent_id = %agent_id, call_id = %call_id, "refused another agent's stored call");
                    return Err(Outcome::fatal(
                        ErrorCode::Forbidden,
                        "this call belongs to another agent",
                    ));
                }
                if record.meta.status == CallStatus::Ended {
                    return Err(Outcome::error(
                        ErrorCode::CallEnded,
                        "this call has already ended",
                    ));
                }
                let pack = Arc::clone(packs.for_team(record.meta.team.as_deref()));
                (Call::resumed(&record.meta, &record.lines, pack), false)
            }
            None => {
                let pack = Arc::clone(packs.for_team(team.as_deref()));
                (
                    Call::new(agent_id.to_string(), team.clone(), language, channel, pack),
                    true,
                )
            }
        };
        let mut calls = self.state.calls();
        match calls.get(call_id) {
            // Another connection got there first.
            Some(existing) => Ok((Arc::clone(existing), false)),
            None => {
                let call = Arc::new(Mutex::new(call));
                calls.insert(call_id.to_string(), Arc::clone(&call));
                Ok((call, begun))
            }
        }
    }
}

struct Hello {
    version: u32,
    agent_id: String,
    token: String,
    call_id: String,
    language: String,
    channel: Channel,
}

/// Who may open a call as `agent_id`: a login token of that user, or a static token from the
/// config. With no static tokens configured (development), an agent id that is not a user of
/// the store may connect with any token that is not another user's login token; a user of the
/// store always needs a valid (unexpired) login token of their own. Returns the agent's team.
async fn authenticate(
    state: &Arc<AppState>,
    agent_id: &str,
    token: &str,
) -> Result<Option<String>, ()> {
    let lookup = {
        let state = Arc::clone(state);
        let agent = agent_id.to_string();
        let token = token.to_string();
        tokio::task::spawn_blocking(move || {
            let by_token = if token.is_empty() {
                None
            } else {
                state.store.user_for_token(&token, now_ms()).ok().flatten()
            };
            let by_name = state.store.user(&agent).ok().flatten();
            (by_token, by_name)
        })
        .await
    };
    let (by_token, by_name) = lookup.map_err(|_| ())?;
    if let Some(user) = by_token {
        return if user.username == agent_id {
            Ok(user.team)
        } else {
            Err(())
        };
    }
    if state.auth.is_open() {
        return match by_name {
            Some(_) => Err(()),
            None => Ok(None),
        };
    }
    if state.auth.check(agent_id, token) {
        return Ok(by_name.and_then(|u| u.team));
    }
    Err(())
}

fn utterance(call: &mut Call, call_id: &str, utt: Utterance) -> Outcome {
    let knowledge = Arc::clone(&call.pack.loaded.knowledge);
    match call.session.utterance(&utt, knowledge.as_ref()) {
        Ok(events) => {
            let mut outcome = Outcome::default();
            if utt.partial {
                if !events.is_empty() {
                    outcome.writes.ops.push(WriteOp::Events {
                        call_id: call_id.to_string(),
                        events: events.clone(),
                    });
                }
            } else {
                let masked = Utterance {
                    text: assist_engine::mask_pii(&utt.text),
                    prosody: None,
                    ..utt.clone()
                };
                outcome.writes.ops.push(WriteOp::Turn {
                    call_id: call_id.to_string(),
                    line: StoredLine::from_utterance(&masked),
                    events: events.clone(),
                });
                outcome.writes.durable = true;
                call.record(Input::Line(masked));
                outcome.replies.push(ServerMessage::Ack { seq: utt.seq });
            }
            outcome
                .replies
                .extend(events.into_iter().map(ServerMessage::from));
            outcome
        }
        Err(e) => {
            let code = match e {
                SessionError::DuplicateSeq { .. } => ErrorCode::DuplicateSeq,
                SessionError::OutOfOrder { .. } => ErrorCode::OutOfOrder,
                SessionError::EmptyText { .. } | SessionError::BadTime { .. } => {
                    ErrorCode::InvalidField
                }
                SessionError::Ended => ErrorCode::CallEnded,
            };
            Outcome::reply(ServerMessage::Error {
                code,
                message: e.to_string(),
                seq: Some(utt.seq),
            })
        }
    }
}
