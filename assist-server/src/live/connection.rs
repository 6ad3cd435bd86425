//! One agent's WebSocket connection: hello, then utterances in and events out.

use super::{lock, AppState, Call};
use assist_engine::SessionError;
use assist_protocol::{
    ClientMessage, ErrorCode, ServerMessage, Utterance, MAX_FRAME_BYTES, PROTOCOL_VERSION,
};
use axum::extract::ws::{Message, WebSocket};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::broadcast::error::RecvError;

/// What a connection knows once its hello is accepted.
struct Greeted {
    call_id: String,
    call: Arc<Mutex<Call>>,
}

struct Connection {
    state: Arc<AppState>,
    greeted: Option<Greeted>,
}

/// The replies to one frame, and whether to close afterwards.
#[derive(Default)]
struct Outcome {
    replies: Vec<ServerMessage>,
    close: bool,
}

impl Outcome {
    fn reply(message: ServerMessage) -> Self {
        Outcome {
            replies: vec![message],
            close: false,
        }
    }

    fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Outcome::reply(ServerMessage::error(code, message))
    }

    fn fatal(code: ErrorCode, message: impl Into<String>) -> Self {
        Outcome {
            replies: vec![ServerMessage::error(code, message)],
            close: true,
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
        let outcome = tokio::select! {
            frame = socket.recv() => match frame {
                None => break,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "websocket closed with an error");
                    break;
                }
                Some(Ok(Message::Close(_))) => break,
                Some(Ok(message)) => conn.frame(message),
            },
            update = updates.recv(), if conn.greeted.is_some() => match update {
                Ok(pack_version) => Outcome::reply(ServerMessage::PackUpdated { pack_version }),
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            },
        };
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
    fn frame(&mut self, message: Message) -> Outcome {
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
            Ok(message) => self.message(message),
            Err(e) => Outcome::error(
                ErrorCode::MalformedMessage,
                format!("not a protocol v{PROTOCOL_VERSION} message: {e}"),
            ),
        }
    }

    fn message(&mut self, message: ClientMessage) -> Outcome {
        match message {
            ClientMessage::Hello {
                version,
                agent_id,
                token,
                call_id,
                language,
                ..
            } => self.hello(version, agent_id, &token, call_id, language),
            other => {
                let Some(greeted) = &self.greeted else {
                    return Outcome::error(
                        ErrorCode::HelloRequired,
                        "say hello first: {\"type\":\"hello\",\"v\":1,...}",
                    );
                };
                let mut call = lock(&greeted.call);
                call.last_active = Instant::now();
                match other {
                    ClientMessage::Utterance(utt) => utterance(&mut call, &utt),
                    ClientMessage::Tick { t } => Outcome {
                        replies: call.session.tick(t).into_iter().map(Into::into).collect(),
                        close: false,
                    },
                    ClientMessage::CardFeedback { card_id, action } => {
                        call.card_feedback.push((card_id, action));
                        Outcome::default()
                    }
                    ClientMessage::CallEnd { t } => {
                        let events = call.session.end(Some(t));
                        tracing::info!(call_id = %greeted.call_id, "call ended");
                        Outcome {
                            replies: events.into_iter().map(Into::into).collect(),
                            close: false,
                        }
                    }
                    ClientMessage::Hello { .. } => unreachable!("handled above"),
                }
            }
        }
    }

    fn hello(
        &mut self,
        version: u32,
        agent_id: String,
        token: &str,
        call_id: String,
        language: String,
    ) -> Outcome {
        if version != PROTOCOL_VERSION {
            return Outcome::fatal(
                ErrorCode::UnsupportedVersion,
                format!(
                    "protocol version {version} is not supported; this server speaks v{PROTOCOL_VERSION}: update the client"
                ),
            );
        }
        if self.greeted.is_some() {
            return Outcome::error(
                ErrorCode::AlreadyGreeted,
                "this connection already has a call; open a new connection for another call",
            );
        }
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
        if !self.state.auth.check(&agent_id, token) {
            tracing::warn!(agent_id = %agent_id, "refused a hello with a wrong token");
            return Outcome::fatal(
                ErrorCode::Unauthorized,
                "the token does not match this agent: log in again",
            );
        }
        let pack = self.state.pack.load_full();
        let call = {
            let mut calls = self.state.calls();
            let entry = calls.entry(call_id.clone()).or_insert_with(|| {
                Arc::new(Mutex::new(Call {
                    agent_id: agent_id.clone(),
                    session: pack.engine.start_call(&language),
                    knowledge: Arc::clone(&pack.knowledge),
                    last_active: Instant::now(),
                    card_feedback: Vec::new(),
                }))
            });
            Arc::clone(entry)
        };
        let (owner, last_seq, ended) = {
            let mut c = lock(&call);
            c.last_active = Instant::now();
            (
                c.agent_id.clone(),
                c.session.last_seq(),
                c.session.is_ended(),
            )
        };
        if owner != agent_id {
            tracing::warn!(agent_id = %agent_id, call_id = %call_id, "refused another agent's call");
            return Outcome::fatal(ErrorCode::Forbidden, "this call belongs to another agent");
        }
        if ended {
            return Outcome::error(ErrorCode::CallEnded, "this call has already ended");
        }
        tracing::info!(agent_id = %agent_id, call_id = %call_id, resumed = last_seq > 0, "call connected");
        self.greeted = Some(Greeted {
            call_id: call_id.clone(),
            call,
        });
        Outcome::reply(ServerMessage::Welcome {
            version: PROTOCOL_VERSION,
            call_id,
            last_seq,
            pack_version: pack.engine.version().to_string(),
        })
    }
}

fn utterance(call: &mut Call, utt: &Utterance) -> Outcome {
    let knowledge = Arc::clone(&call.knowledge);
    match call.session.utterance(utt, knowledge.as_ref()) {
        Ok(events) => {
            let mut replies = Vec::with_capacity(events.len() + 1);
            if !utt.partial {
                replies.push(ServerMessage::Ack { seq: utt.seq });
            }
            replies.extend(events.into_iter().map(ServerMessage::from));
            Outcome {
                replies,
                close: false,
            }
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
