//! Wire types shared by the agent client and the assist server.
//!
//! Every message is one JSON object in one WebSocket text frame, tagged by `"type"`. The client
//! opens with [`ClientMessage::Hello`] carrying [`PROTOCOL_VERSION`]; the server answers with
//! [`ServerMessage::Welcome`] or an [`ServerMessage::Error`] with a stable [`ErrorCode`].
//!
//! The event types ([`Alert`], [`Emotion`], [`Card`], [`Summary`]) are the same objects that
//! `assist-server replay` prints one per line, so a call gives the same events live and in replay.
//! See docs/protocol.md for the full story.

use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks. A client announcing another version is refused with
/// [`ErrorCode::UnsupportedVersion`].
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest text frame a server accepts, in bytes.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Who said something on the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    Agent,
    Customer,
}

impl Speaker {
    pub fn as_str(self) -> &'static str {
        match self {
            Speaker::Agent => "agent",
            Speaker::Customer => "customer",
        }
    }
}

/// The medium of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    #[default]
    Voice,
    Chat,
}

/// Prosody of one utterance, each relative to that speaker's own running baseline
/// (1.0 = as usual; 1.3 = 30% faster / higher / louder).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Prosody {
    /// Words (or characters for Chinese) per second, relative to baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f32>,
    /// Median pitch relative to baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pitch: Option<f32>,
    /// RMS energy relative to baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy: Option<f32>,
}

/// One recognized (or typed) utterance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Utterance {
    /// Per call, increasing. A partial carries the seq of the final it will become.
    pub seq: u64,
    pub speaker: Speaker,
    /// `true` for a partial (still being spoken) result.
    #[serde(default)]
    pub partial: bool,
    pub text: String,
    /// Seconds from the start of the call.
    pub start: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prosody: Option<Prosody>,
}

/// What the agent did with a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CardAction {
    Used,
    Dismissed,
}

/// Messages from the agent client to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Opens (or resumes, with the same `call_id`) a call. Must be the first message.
    Hello {
        #[serde(rename = "v")]
        version: u32,
        agent_id: String,
        token: String,
        call_id: String,
        /// `zh` or `en`.
        language: String,
        #[serde(default)]
        channel: Channel,
    },
    Utterance(Utterance),
    /// The call clock moved on with nobody speaking; lets timers (response time) fire live.
    Tick {
        t: f64,
    },
    CardFeedback {
        card_id: String,
        action: CardAction,
    },
    /// The call is over: the server answers with the summary.
    CallEnd {
        t: f64,
    },
}

/// Severity of a rule hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    General,
    Serious,
    Fatal,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::General => "general",
            Severity::Serious => "serious",
            Severity::Fatal => "fatal",
        }
    }
}

/// A compliance alert: a rule fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub t: f64,
    pub rule: String,
    pub category: String,
    pub severity: Severity,
    pub speaker: Speaker,
    /// The utterance that fired the rule, PII masked.
    pub text: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmotionLabel {
    Negative,
    Neutral,
    Positive,
}

/// The customer's emotion after one utterance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Emotion {
    pub t: f64,
    pub speaker: Speaker,
    pub label: EmotionLabel,
    /// -1 (very negative) ..= 1 (very positive).
    pub score: f32,
    /// The trend over the call is worsening.
    pub escalating: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CardKind {
    Script,
    Knowledge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Basic,
    Advanced,
    Expert,
}

/// A suggestion for the agent: a script to say, or a knowledge snippet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Card {
    pub t: f64,
    pub kind: CardKind,
    pub id: String,
    pub title: String,
    pub body: String,
    /// Scripts only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// Terms of `body` to highlight (knowledge snippets).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub highlights: Vec<String>,
}

/// Hits of one rule over a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleHits {
    pub rule: String,
    pub category: String,
    pub severity: Severity,
    pub count: u32,
}

/// The end-of-call summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// 0..=100; 0 when any fatal rule fired.
    pub score: u32,
    pub passed: bool,
    /// Sorted by rule id.
    pub hits: Vec<RuleHits>,
    pub utterances: u32,
    /// Seconds, from the first utterance's start to the last one's end.
    pub duration: f64,
    /// Mean customer emotion score over the call, if the customer spoke.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_emotion: Option<f32>,
    pub cards_shown: u32,
    /// Customer intents seen, in order of first appearance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intents: Vec<String>,
}

/// What the engine produces for a call; the server forwards them to the client as they happen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Alert(Alert),
    Emotion(Emotion),
    Card(Card),
    Summary(Summary),
}

/// Stable error codes. Clients may branch on them; the message is for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not valid JSON or not a known message.
    MalformedMessage,
    /// The frame is larger than [`MAX_FRAME_BYTES`].
    FrameTooLarge,
    /// A binary frame: the protocol is text-only (audio never leaves the agent's machine).
    BinaryNotSupported,
    /// The hello's protocol version is not one the server speaks.
    UnsupportedVersion,
    /// A message other than hello before hello.
    HelloRequired,
    /// A second hello on a session that has one.
    AlreadyGreeted,
    /// The token does not authenticate the agent.
    Unauthorized,
    /// The call id belongs to another agent.
    Forbidden,
    /// The utterance's seq was already accepted; it was ignored (safe after a resend).
    DuplicateSeq,
    /// The utterance starts before the previous final one; it was ignored.
    OutOfOrder,
    /// The message is well-formed but a field is not acceptable (empty text, bad language...).
    InvalidField,
    /// The call has already ended.
    CallEnded,
    /// The server is shutting down or overloaded.
    Unavailable,
}

/// Messages from the server to the agent client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The hello was accepted. `last_seq` is the highest final seq already accepted for this
    /// call (0 for a new call): a reconnecting client resends everything after it.
    Welcome {
        #[serde(rename = "v")]
        version: u32,
        call_id: String,
        last_seq: u64,
        pack_version: String,
    },
    /// A final utterance was accepted (durably, once the store exists).
    Ack {
        seq: u64,
    },
    Alert(Alert),
    Emotion(Emotion),
    Card(Card),
    Summary(Summary),
    /// A new pack was published; new cards and rules apply from the next utterance.
    PackUpdated {
        pack_version: String,
    },
    Error {
        code: ErrorCode,
        message: String,
        /// The seq of the utterance the error is about, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
}

impl From<Event> for ServerMessage {
    fn from(event: Event) -> Self {
        match event {
            Event::Alert(a) => ServerMessage::Alert(a),
            Event::Emotion(e) => ServerMessage::Emotion(e),
            Event::Card(c) => ServerMessage::Card(c),
            Event::Summary(s) => ServerMessage::Summary(s),
        }
    }
}

impl ServerMessage {
    /// The event inside, for messages that carry one.
    pub fn into_event(self) -> Option<Event> {
        match self {
            ServerMessage::Alert(a) => Some(Event::Alert(a)),
            ServerMessage::Emotion(e) => Some(Event::Emotion(e)),
            ServerMessage::Card(c) => Some(Event::Card(c)),
            ServerMessage::Summary(s) => Some(Event::Summary(s)),
            _ => None,
        }
    }

    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            code,
            message: message.into(),
            seq: None,
        }
    }
}

/// One line of a transcript file, the input of `assist-server replay` and of the agent client's
/// `--transcript` mode: `{"t": 12.5, "speaker": "agent", "text": "..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptLine {
    pub t: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<f64>,
    pub speaker: Speaker,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prosody: Option<Prosody>,
}

/// A transcript line that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct TranscriptError {
    pub line: usize,
    pub reason: String,
}

/// Parses one transcript line (1-based `line` for the error). Blank lines give `Ok(None)`.
pub fn parse_transcript_line(
    line: usize,
    raw: &str,
) -> Result<Option<TranscriptLine>, TranscriptError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let parsed: TranscriptLine = serde_json::from_str(raw).map_err(|e| TranscriptError {
        line,
        reason: e.to_string(),
    })?;
    if !parsed.t.is_finite() || parsed.t < 0.0 {
        return Err(TranscriptError {
            line,
            reason: format!(
                "t must be a non-negative number of seconds, got {}",
                parsed.t
            ),
        });
    }
    Ok(Some(parsed))
}

impl TranscriptLine {
    /// The final utterance this line becomes, with its seq.
    pub fn into_utterance(self, seq: u64) -> Utterance {
        Utterance {
            seq,
            speaker: self.speaker,
            partial: false,
            text: self.text,
            start: self.t,
            end: self.end,
            prosody: self.prosody,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_serializes_in_the_replay_contract_shape() {
        let event = Event::Alert(Alert {
            t: 1.5,
            rule: "r".into(),
            category: "abuse".into(),
            severity: Severity::Fatal,
            speaker: Speaker::Agent,
            text: "x".into(),
            message: "m".into(),
        });
        let json: serde_json::Value = serde_json::to_value(&event).expect("serializes");
        assert_eq!(json["type"], "alert");
        assert_eq!(json["severity"], "fatal");
        assert_eq!(json["speaker"], "agent");
        let wire = serde_json::to_value(ServerMessage::from(event)).expect("serializes");
        assert_eq!(json, wire, "live and replay events must serialize the same");
    }

    #[test]
    fn hello_round_trips_with_version_field_v() {
        let raw =
            r#"{"type":"hello","v":1,"agent_id":"a1","token":"t","call_id":"c1","language":"zh"}"#;
        let msg: ClientMessage = serde_json::from_str(raw).expect("parses");
        match msg {
            ClientMessage::Hello {
                version, channel, ..
            } => {
                assert_eq!(version, 1);
                assert_eq!(channel, Channel::Voice);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unknown_message_type_is_an_error() {
        let raw = r#"{"type":"launch_missiles"}"#;
        assert!(serde_json::from_str::<ClientMessage>(raw).is_err());
    }

    #[test]
    fn transcript_line_rejects_negative_time_with_its_line_number() {
        let err = parse_transcript_line(7, r#"{"t":-1,"speaker":"agent","text":"hi"}"#)
            .expect_err("negative t");
        assert_eq!(err.line, 7);
        assert!(parse_transcript_line(1, "   ").expect("blank ok").is_none());
    }
}
