//! The link to the assist server: one WebSocket per call that survives the server going away.
//!
//! Final utterances wait in an outbox until the server acknowledges them. When the connection
//! drops, the link reconnects with exponential backoff and jitter, says hello again with the same
//! call id, learns from the welcome which seq the server already has, and resends the rest with
//! their original seq, so nothing is lost or counted twice. Partial results and clock ticks are
//! only sent while connected: they are stale once the connection is back.

use assist_protocol::{
    Channel, ClientMessage, ErrorCode, ServerMessage, Utterance, PROTOCOL_VERSION,
};
use futures_util::{SinkExt, StreamExt};
pub mod account;
pub mod outbox;
pub mod tls;

pub use account::{Account, AccountError, Credentials};
pub use outbox::{Outbox, OutboxLimits};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Where and who.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// `ws://127.0.0.1:7700/ws`, or `wss://…` with TLS.
    pub url: String,
    /// The TLS configuration for a `wss://` server (and its `https://` sign-in); `None` for
    /// `ws://` ([`tls::client_config`]).
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    pub agent_id: String,
    /// A token for the hello; empty when the link signs in with `credentials`.
    pub token: String,
    /// Sign in over REST for a token (and again when the server refuses it).
    pub credentials: Option<Credentials>,
    pub call_id: String,
    pub language: String,
    pub channel: Channel,
    /// Final utterances kept until acknowledged (in memory, then on disk); past the total the
    /// oldest are dropped (and said so).
    pub outbox: OutboxLimits,
    /// Where a long outage's utterances spill to (`<call id>.jsonl`, masked, removed when
    /// delivered).
    pub spool_dir: PathBuf,
    /// Give up after this long without a connection (None: never).
    pub give_up_after: Option<Duration>,
}

/// What the call produces for the server.
#[derive(Debug, Clone)]
pub enum Outgoing {
    Utterance(Utterance),
    Tick(f64),
    /// Sent by the overlay's card buttons.
    CardFeedback(String, assist_protocol::CardAction),
    /// The call is over; the link finishes once the summary arrives.
    End(f64),
}

/// What the link reports.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// Signed in over REST (when the link has credentials).
    SignedIn(Account),
    Connected {
        last_seq: u64,
        pack_version: String,
    },
    Disconnected {
        reason: String,
        retry_in: Duration,
    },
    /// An alert, emotion, card, summary or pack notice.
    Message(ServerMessage),
    /// The server refused something; the link goes on unless it is fatal.
    ServerError {
        code: ErrorCode,
        message: String,
    },
    /// The summary arrived after the call ended: the link is done.
    Finished,
    /// The link stopped for good (token refused, wrong version, gave up reconnecting).
    Failed(String),
}

/// Backoff between reconnects: doubles from 200 ms to 5 s, with ±25% jitter.
fn backoff(attempt: u32) -> Duration {
    let base = 200u64.saturating_mul(1 << attempt.min(5)).min(5_000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    let jitter = (nanos % (base / 2 + 1)) as i64 - (base / 4) as i64;
    Duration::from_millis((base as i64 + jitter).max(50) as u64)
}

/// Runs the link until the call's summary arrives, `outgoing` closes, or it fails for good.
pub async fn run(
    config: LinkConfig,
    mut outgoing: mpsc::Receiver<Outgoing>,
    incoming: mpsc::Sender<Incoming>,
) {
    let mut outbox = Outbox::new(
        config
            .spool_dir
            .join(format!("{}.jsonl", file_safe(&config.call_id))),
        config.outbox,
    );
    let mut ending: Option<f64> = None;
    let mut producer_open = true;
    let mut attempt = 0u32;
    let mut disconnected_since = std::time::Instant::now();
    let mut token = config.token.clone();
    let mut fresh_token = false;
    loop {
        let signed_in = match (&config.credentials, token.is_empty()) {
            (Some(credentials), true) => {
                match account::sign_in(&config.url, config.tls.as_ref(), credentials).await {
                    Ok(account) => {
                        token = account.token.clone();
                        fresh_token = true;
                        let _ = incoming.send(Incoming::SignedIn(account)).await;
                        Ok(())
                    }
                    Err(e) if e.is_final() => {
                        let _ = incoming.send(Incoming::Failed(e.to_string())).await;
                        return;
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            _ => Ok(()),
        };
        let ended = match signed_in {
            Err(reason) => SessionEnd::Dropped {
                reason,
                was_connected: false,
            },
            Ok(()) => {
                session(
                    &config,
                    &token,
                    &mut outgoing,
                    &incoming,
                    &mut outbox,
                    &mut ending,
                    &mut producer_open,
                )
                .await
            }
        };
        match ended {
            SessionEnd::Finished => {
                let _ = incoming.send(Incoming::Finished).await;
                return;
            }
            SessionEnd::TokenRefused(reason) => {
                // An expired token: sign in again, at once — unless it was just issued.
                if config.credentials.is_none() || fresh_token {
                    let _ = incoming.send(Incoming::Failed(reason)).await;
                    return;
                }
                token.clear();
            }
            SessionEnd::Fatal(reason) => {
                let _ = incoming.send(Incoming::Failed(reason)).await;
                return;
            }
            SessionEnd::ProducerGone => return,
            SessionEnd::Dropped {
                reason,
                was_connected,
            } => {
                if was_connected {
                    fresh_token = false;
                    attempt = 0;
                    disconnected_since = std::time::Instant::now();
                }
                if let Some(limit) = config.give_up_after {
                    if disconnected_since.elapsed() > limit {
                        let _ = incoming
                            .send(Incoming::Failed(format!(
                                "no connection to {} for {:?}: {reason}; {} utterance(s) not delivered",
                                config.url,
                                limit,
                                outbox.len()
                            )))
                            .await;
                        return;
                    }
                }
                let wait = backoff(attempt);
                attempt += 1;
                let _ = incoming
                    .send(Incoming::Disconnected {
                        reason,
                        retry_in: wait,
                    })
                    .await;
                // Keep taking the call's output while waiting, so the producer never blocks.
                let deadline = tokio::time::sleep(wait);
                tokio::pin!(deadline);
                loop {
                    tokio::select! {
                        _ = &mut deadline => break,
                        next = outgoing.recv(), if producer_open => match next {
                            Some(item) => buffer(item, &mut outbox, &mut ending, &incoming).await,
                            None => producer_open = false,
                        },
                    }
                }
            }
        }
    }
}

enum SessionEnd {
    Finished,
    /// The hello's token was refused.
    TokenRefused(String),
    Fatal(String),
    ProducerGone,
    Dropped {
        reason: String,
        was_connected: bool,
    },
}

/// A call id as a file name: anything but letters, digits, `-` and `_` becomes `_`.
fn file_safe(call_id: &str) -> String {
    call_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

async fn buffer(
    item: Outgoing,
    outbox: &mut Outbox,
    ending: &mut Option<f64>,
    incoming: &mpsc::Sender<Incoming>,
) {
    match item {
        // Once the call is ending (a stop mid-call), nothing later belongs to it.
        Outgoing::Utterance(_) | Outgoing::Tick(_) if ending.is_some() => {}
        Outgoing::Utterance(u) if !u.partial => {
            let (dropped, spill_error) = outbox.push(u);
            for seq in dropped {
                let _ = incoming
                    .send(Incoming::ServerError {
                        code: ErrorCode::Unavailable,
                        message: format!("offline buffer full: utterance {seq} dropped"),
                    })
                    .await;
            }
            if let Some(e) = spill_error {
                let _ = incoming
                    .send(Incoming::ServerError {
                        code: ErrorCode::Unavailable,
                        message: format!("{e}; keeping the utterances in memory"),
                    })
                    .await;
            }
        }
        Outgoing::End(t) => *ending = Some(t),
        // Partials, ticks and feedback are not worth keeping across a reconnect.
        _ => {}
    }
}

async fn session(
    config: &LinkConfig,
    token: &str,
    outgoing: &mut mpsc::Receiver<Outgoing>,
    incoming: &mpsc::Sender<Incoming>,
    outbox: &mut Outbox,
    ending: &mut Option<f64>,
    producer_open: &mut bool,
) -> SessionEnd {
    let dropped = |reason: String, was_connected: bool| SessionEnd::Dropped {
        reason,
        was_connected,
    };
    let connector = config.tls.clone().map(tokio_tungstenite::Connector::Rustls);
    let connecting = tokio_tungstenite::connect_async_tls_with_config(
        config.url.as_str(),
        None,
        false,
        connector,
    );
    let (mut ws, _) = match connecting.await {
        Ok(ok) => ok,
        Err(e) => return dropped(format!("cannot connect to {}: {e}", config.url), false),
    };
    let hello = ClientMessage::Hello {
        version: PROTOCOL_VERSION,
        agent_id: config.agent_id.clone(),
        token: token.to_string(),
        call_id: config.call_id.clone(),
        language: config.language.clone(),
        channel: config.channel,
    };
    if let Err(e) = send(&mut ws, &hello).await {
        return dropped(e, false);
    }
    // Wait for the welcome (or a refusal).
    let last_seq = loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => match serde_json::from_str::<ServerMessage>(&text) {
                Ok(ServerMessage::Welcome {
                    last_seq,
                    pack_version,
                    ..
                }) => {
                    let _ = incoming
                        .send(Incoming::Connected {
                            last_seq,
                            pack_version,
                        })
                        .await;
                    break last_seq;
                }
                Ok(ServerMessage::Error { code, message, .. }) => {
                    let reason = format!("the server refused the call ({code:?}): {message}");
                    return if code == ErrorCode::Unauthorized {
                        SessionEnd::TokenRefused(reason)
                    } else {
                        SessionEnd::Fatal(reason)
                    };
                }
                Ok(_) => continue,
                Err(e) => return dropped(format!("unreadable reply to hello: {e}"), false),
            },
            Some(Ok(_)) => continue,
            Some(Err(e)) => return dropped(format!("connection lost during hello: {e}"), false),
            None => {
                return dropped(
                    "the server closed the connection during hello".into(),
                    false,
                )
            }
        }
    };
    outbox.settled_through(last_seq);
    let pending = match outbox.pending() {
        Ok(pending) => pending,
        Err(e) => return SessionEnd::Fatal(format!("{e}: the buffered utterances are lost")),
    };
    for u in pending {
        if let Err(e) = send(&mut ws, &ClientMessage::Utterance(u)).await {
            return dropped(e, true);
        }
    }
    let mut end_sent = false;
    loop {
        if let Some(t) = *ending {
            if outbox.is_empty() && !end_sent {
                if let Err(e) = send(&mut ws, &ClientMessage::CallEnd { t }).await {
                    return dropped(e, true);
                }
                end_sent = true;
            }
        }
        tokio::select! {
            next = outgoing.recv(), if *producer_open => {
                let Some(item) = next else {
                    *producer_open = false;
                    if ending.is_none() {
                        return SessionEnd::ProducerGone;
                    }
                    continue;
                };
                let message = match &item {
                    Outgoing::Utterance(_) | Outgoing::Tick(_) if ending.is_some() => continue,
                    Outgoing::Utterance(u) => ClientMessage::Utterance(u.clone()),
                    Outgoing::Tick(t) => ClientMessage::Tick { t: *t },
                    Outgoing::CardFeedback(id, action) => ClientMessage::CardFeedback { card_id: id.clone(), action: *action },
                    Outgoing::End(_) => {
                        buffer(item, outbox, ending, incoming).await;
                        continue;
                    }
                };
                buffer(item, outbox, ending, incoming).await;
                if let Err(e) = send(&mut ws, &message).await {
                    return dropped(e, true);
                }
            }
            frame = ws.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None => return dropped("the server closed the connection".into(), true),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return dropped(format!("connection lost: {e}"), true),
                };
                let message = match serde_json::from_str::<ServerMessage>(&text) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(error = %e, "ignored an unreadable server message");
                        continue;
                    }
                };
                match message {
                    ServerMessage::Ack { seq } => outbox.settled_through(seq),
                    ServerMessage::Error { code: ErrorCode::DuplicateSeq, seq: Some(seq), .. } => {
                        // The server had it already (sent before a reconnect): as good as an ack.
                        outbox.settled_through(seq);
                    }
                    ServerMessage::Error { code, message, seq } => {
                        if let Some(seq) = seq {
                            // Refused for good (empty text, bad time): resending will not help.
                            outbox.settled_through(seq);
                        }
                        let _ = incoming.send(Incoming::ServerError { code, message }).await;
                    }
                    ServerMessage::Summary(_) => {
                        let _ = incoming.send(Incoming::Message(message)).await;
                        if end_sent {
                            let _ = ws.close(None).await;
                            return SessionEnd::Finished;
                        }
                    }
                    other => {
                        let _ = incoming.send(Incoming::Message(other)).await;
                    }
                }
            }
        }
    }
}

async fn send<S>(ws: &mut S, message: &ClientMessage) -> Result<(), String>
where
    S: futures_util::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    let text = serde_json::to_string(message).map_err(|e| format!("cannot encode: {e}"))?;
    ws.send(Message::Text(text.into()))
        .await
        .map_err(|e| format!("send failed: {e}"))
}
