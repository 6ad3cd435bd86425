//! One conversation through the session engine, exactly as a live call or `replay` drives it:
//! final utterances in order, numbered 1, 2, 3…, then the end of the call. Cards are skipped
//! (nobody is on the call to read them); alerts, emotion, intents and the score are the same as
//! with cards ([`assist_engine::CallSession::without_cards`]).

use super::{guess_language, Conversation, Problem};
use assist_engine::{Engine, Knowledge};
use assist_protocol::{Event, Summary, Utterance};
use assist_store::{CallMeta, CallSource, CallStatus, StoredLine};
use std::sync::Arc;

/// A conversation after inspection: what the store gets.
#[derive(Debug, Clone)]
pub struct Inspected {
    pub meta: CallMeta,
    /// Masked, in seq order.
    pub lines: Vec<StoredLine>,
    /// Alerts and emotions (and cards, if asked for), the summary not included.
    pub events: Vec<Event>,
    pub summary: Summary,
    /// Turns the engine refused (each with its location); the rest were inspected.
    pub rejected: Vec<Problem>,
    /// Whether a stored conversation of the same id is replaced (`--force`, or left unfinished).
    pub replace: bool,
}

/// Knobs of [`inspect`].
#[derive(Debug, Clone, Copy, Default)]
pub struct InspectOptions {
    /// Pick cards as the live path does (slower: a knowledge query per customer question).
    pub cards: bool,
    /// Keep the masked transcript lines (for the store). Without, only events and summary.
    pub lines: bool,
}

/// Runs `conversation` through a new session of `engine`.
pub fn inspect(
    engine: &Arc<Engine>,
    knowledge: &dyn Knowledge,
    conversation: Conversation,
    options: InspectOptions,
) -> Inspected {
    let language = conversation
        .language
        .clone()
        .unwrap_or_else(|| guess_language(&conversation.turns).to_string());
    let mut session = engine
        .start_call(&language)
        .on_channel(conversation.channel);
    if !options.cards {
        session = session.without_cards();
    }
    let mut lines = Vec::with_capacity(conversation.turns.len());
    let mut events = Vec::new();
    let mut rejected = Vec::new();
    let mut last_end = 0.0f64;
    for (index, turn) in conversation.turns.into_iter().enumerate() {
        let seq = index as u64 + 1;
        let line = turn.line;
        // Masked once here, for the engine and the stored line alike (the engine's own
        // masking finds nothing left to do: masking is idempotent).
        let text = match assist_engine::mask::mask(&turn.text) {
            std::borrow::Cow::Borrowed(_) => turn.text,
            std::borrow::Cow::Owned(masked) => masked,
        };
        let utterance = Utterance {
            seq,
            speaker: turn.speaker,
            partial: false,
            text,
            start: turn.start,
            end: turn.end,
            prosody: turn.prosody,
        };
        match session.utterance(&utterance, knowledge) {
            Ok(out) => {
                last_end = last_end.max(utterance.end.unwrap_or(utterance.start));
                events.extend(out);
                if !options.lines {
                    continue;
                }
                lines.push(StoredLine {
                    seq,
                    speaker: utterance.speaker,
                    text: utterance.text,
                    start: utterance.start,
                    end: utterance.end,
                });
            }
            Err(e) => {
                let at = if line > 0 {
                    format!("{}:{line}", conversation.path)
                } else {
                    format!("{} at {:.1}s", conversation.path, utterance.start)
                };
                rejected.push(
                    Problem::at(at, e.to_string()).in_conversation(&conversation.external_id),
                );
            }
        }
    }
    let mut end = session.end(None);
    let summary = match end.pop() {
        Some(Event::Summary(summary)) => summary,
        _ => session.summary(),
    };
    events.extend(end);
    let ended_at = conversation.started_at + (last_end.max(0.0) * 1000.0).round() as i64;
    Inspected {
        meta: CallMeta {
            call_id: conversation.call_id,
            agent_id: conversation.agent_id,
            team: None,
            channel: conversation.channel,
            language,
            source: CallSource::Batch {
                path: conversation.path,
            },
            started_at: conversation.started_at,
            ended_at: Some(ended_at),
            status: CallStatus::Ended,
        },
        lines,
        events,
        summary,
        rejected,
        replace: false,
    }
}
