//! The call log's record types: what is stored about one call and what the call page shows.

use assist_protocol::{
    Alert, CardKind, Channel, Emotion, Event, Speaker, Summary, Tier, Utterance,
};
use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch (UTC).
pub type UnixMs = i64;

/// Where a call came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CallSource {
    /// A live call over the agent WebSocket.
    Live,
    /// Batch QC of a file (recording or transcript); `path` as given to the batch job.
    Batch { path: String },
    /// A chat conversation posted through the chat API.
    ChatApi,
}

impl CallSource {
    /// The kind of source, without its details (what list filters match on).
    pub fn kind(&self) -> SourceKind {
        match self {
            CallSource::Live => SourceKind::Live,
            CallSource::Batch { .. } => SourceKind::Batch,
            CallSource::ChatApi => SourceKind::ChatApi,
        }
    }
}

/// The kind of a [`CallSource`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Live,
    Batch,
    ChatApi,
}

/// Whether a call is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    #[default]
    InProgress,
    Ended,
}

/// Who, where and when of a call. Given to [`crate::CallStore::begin_call`]; `status` and
/// `ended_at` are managed by the store (whatever the caller puts there is ignored on begin).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallMeta {
    pub call_id: String,
    pub agent_id: String,
    /// The agent's team at the time of the call, if any.
    #[serde(default)]
    pub team: Option<String>,
    #[serde(default)]
    pub channel: Channel,
    /// `zh`, `en`...
    pub language: String,
    pub source: CallSource,
    pub started_at: UnixMs,
    #[serde(default)]
    pub ended_at: Option<UnixMs>,
    #[serde(default)]
    pub status: CallStatus,
}

/// One final utterance of the transcript, PII masked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredLine {
    /// The utterance's seq: unique per call, the idempotency key of [`crate::CallStore::append_line`].
    pub seq: u64,
    pub speaker: Speaker,
    /// Masked by the engine; the store masks again on write as a belt-and-braces check.
    pub text: String,
    /// Seconds from the start of the call.
    pub start: f64,
    #[serde(default)]
    pub end: Option<f64>,
}

impl StoredLine {
    /// The stored form of a final utterance. Pass the *masked* text when you have it (the
    /// store masks again anyway).
    pub fn from_utterance(utterance: &Utterance) -> Self {
        StoredLine {
            seq: utterance.seq,
            speaker: utterance.speaker,
            text: utterance.text.clone(),
            start: utterance.start,
            end: utterance.end,
        }
    }
}

/// A whole conversation that is already over (batch QC, a posted chat), for
/// [`crate::CallStore::store_finished_calls`]: everything the incremental path would write
/// with `begin_call`, `append_line`, `append_events` and `end_call`, in one go.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedCall {
    /// `status` and `ended_at` are ignored (the call is stored ended at [`Self::ended_at`]).
    pub meta: CallMeta,
    /// The transcript, masked (the store masks again). A seq given twice keeps its first line.
    pub lines: Vec<StoredLine>,
    /// Alerts, emotions and cards as the engine emitted them. A summary among them is ignored:
    /// [`Self::summary`] is the call's summary.
    pub events: Vec<Event>,
    pub summary: Summary,
    pub ended_at: UnixMs,
    /// What to do when a call of this id is already stored: `true` replaces it (as
    /// `delete_call` followed by the writes would), `false` leaves it as it is.
    pub replace: bool,
}

/// A trainer's judgement of one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    /// The rule was right.
    Confirmed,
    /// A false positive: counts against the rule's precision.
    Overturned,
}

/// A verdict with who gave it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub kind: VerdictKind,
    pub by: String,
    pub at: UnixMs,
    #[serde(default)]
    pub note: Option<String>,
}

/// An alert as the engine emitted it, with its stable id and the trainer's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAlert {
    /// Stable within the call (derived from the alert's time and content, so re-appending the
    /// same alert keeps the same id).
    pub id: String,
    pub alert: Alert,
    /// The transcript line the alert is about (the line that starts at the alert's time, or
    /// the last one starting before it); `None` for alerts without a line (e.g. dead air at the
    /// start). Computed when the call is read.
    #[serde(default)]
    pub line_seq: Option<u64>,
    #[serde(default)]
    pub verdict: Option<Verdict>,
}

/// What the agent did with a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardReaction {
    /// The call is still going and the agent has not reacted yet.
    Pending,
    Used,
    Dismissed,
    /// The call ended without feedback on the card.
    Ignored,
}

/// One card shown to the agent, and the agent's reaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardShown {
    pub card_id: String,
    pub kind: CardKind,
    #[serde(default)]
    pub tier: Option<Tier>,
    pub title: String,
    /// Seconds from the start of the call.
    pub t: f64,
    pub reaction: CardReaction,
}

/// A score set by a trainer; it overrides the engine's score everywhere (lists, reports).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManualScore {
    /// 0..=100.
    pub score: u32,
    pub reason: String,
    pub by: String,
    pub at: UnixMs,
}

/// A trainer's comment on one transcript line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    /// Unique within the call, increasing.
    pub id: u64,
    pub line_seq: u64,
    pub author: String,
    pub text: String,
    pub at: UnixMs,
}

/// Everything about one call: what the call page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    pub meta: CallMeta,
    /// In seq order.
    pub lines: Vec<StoredLine>,
    /// In time order.
    pub alerts: Vec<StoredAlert>,
    /// The customer's emotion timeline, in time order.
    pub emotions: Vec<Emotion>,
    /// In time order.
    pub cards: Vec<CardShown>,
    /// The engine's end-of-call summary, once the call ended.
    pub summary: Option<Summary>,
    pub manual_score: Option<ManualScore>,
    /// In id order.
    pub comments: Vec<Comment>,
}

impl CallRecord {
    /// The score that counts: the manual score if a trainer set one, else the engine's.
    pub fn score(&self) -> Option<u32> {
        effective_score(self.manual_score.as_ref(), self.summary.as_ref())
    }
}

pub(crate) fn effective_score(
    manual: Option<&ManualScore>,
    summary: Option<&Summary>,
) -> Option<u32> {
    manual.map(|m| m.score).or_else(|| summary.map(|s| s.score))
}
