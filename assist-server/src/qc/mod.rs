//! Full-coverage QC: every recorded call and chat log through the live rules.
//!
//! `assist-server qc PATH...` takes files and folders. Each input format has a reader that
//! turns a file into a stream of [`Conversation`]s without holding the file in memory:
//!
//! - [`transcript`]: transcripts in the `replay` format (one conversation per file);
//! - [`chat`]: chat logs in JSONL and CSV, many conversations per file (grouped, or
//!   interleaved within a bounded window of open conversations);
//! - [`audio`]: WAV recordings, transcribed here with Vosk (stereo with a channel map, or mono
//!   with a declared speaker split).
//!
//! Conversations flow through bounded channels: readers → a pool of workers that drive the
//! same [`assist_engine::CallSession`] as live calls ([`inspect`]) → one store writer that
//! writes each conversation in one batch (begin, lines, events, end) and flushes periodically.
//! Memory stays flat however large the input: a reader holds at most the conversations still
//! open, the channels hold a few per worker.
//!
//! Every conversation gets a deterministic call id ([`ids`]), so a rerun skips what is already
//! in the store (unless `--force`). A bad file, row or recording is reported with its location
//! and skipped; the batch goes on. [`pipeline::run`] drives it all and returns a
//! [`report::QcSummary`]; [`rescore`] re-inspects stored conversations under a candidate pack
//! without writing anything.
//!
//! The formats, options and figures are documented in docs/qc.md.

pub mod audio;
pub mod chat;
pub mod cli;
pub mod discover;
pub mod ids;
pub mod inspect;
pub mod lines;
pub mod pipeline;
pub mod report;
pub mod rescore;
pub mod time;
pub mod transcript;

use assist_protocol::{Channel, Prosody, Speaker};
use assist_store::UnixMs;
use serde::{Deserialize, Serialize};

/// One turn of a conversation, as read from its source.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub speaker: Speaker,
    pub text: String,
    /// Seconds from the start of the conversation.
    pub start: f64,
    pub end: Option<f64>,
    pub prosody: Option<Prosody>,
    /// Where the turn came from: the line (or row) of its file; 0 when there is none (audio).
    pub line: u64,
}

/// A conversation ready to inspect.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    /// The store's call id: deterministic, so a rerun finds it ([`ids`]).
    pub call_id: String,
    /// The file, as given on the command line (what the store keeps as the source).
    pub path: String,
    /// The conversation's own id in its source (chat logs), or the file name.
    pub external_id: String,
    pub agent_id: String,
    pub channel: Channel,
    /// `zh` / `en`; `None`: guessed from the text.
    pub language: Option<String>,
    pub started_at: UnixMs,
    pub turns: Vec<Turn>,
}

impl Conversation {
    /// `path:first-last` lines of the conversation, for messages.
    pub fn location(&self) -> String {
        let lines = self.turns.iter().map(|t| t.line).filter(|l| *l > 0);
        let first = lines.clone().min();
        let last = lines.max();
        match (first, last) {
            (Some(a), Some(b)) if a == b => format!("{}:{a}", self.path),
            (Some(a), Some(b)) => format!("{}:{a}-{b}", self.path),
            _ => self.path.clone(),
        }
    }
}

/// Something that could not be used, with where it is. Reported and skipped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// `path`, `path:line` or `path:first-last`.
    pub location: String,
    /// The conversation it belongs to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<String>,
    pub message: String,
}

impl Problem {
    pub fn at(location: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            location: location.into(),
            conversation: None,
            message: message.into(),
        }
    }

    pub fn in_conversation(mut self, id: impl Into<String>) -> Problem {
        self.conversation = Some(id.into());
        self
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.conversation {
            Some(c) => write!(f, "{}: conversation {c}: {}", self.location, self.message),
            None => write!(f, "{}: {}", self.location, self.message),
        }
    }
}

/// What a reader hands on.
#[derive(Debug)]
pub enum ReadItem {
    /// A whole conversation.
    Conversation(Conversation),
    /// A row that could not be used; its conversation (if any) goes on without it.
    BadRow(Problem),
    /// A file or conversation that could not be inspected at all.
    Failed(Problem),
    /// Bytes of input consumed since the last report (progress).
    Progress(u64),
}

/// Parses `agent` / `customer` and the usual synonyms of chat platforms.
pub fn parse_role(raw: &str) -> Option<Result<Speaker, ()>> {
    let role = raw.trim().to_ascii_lowercase();
    match role.as_str() {
        "agent" | "staff" | "service" | "servicer" | "operator" | "support" | "客服" | "坐席" => {
            Some(Ok(Speaker::Agent))
        }
        "customer" | "user" | "client" | "visitor" | "buyer" | "客户" | "顾客" | "用户"
        | "买家" => Some(Ok(Speaker::Customer)),
        // Messages of the platform itself are not part of the QC conversation.
        "system" | "bot" | "robot" | "auto" | "系统" | "机器人" => None,
        _ => Some(Err(())),
    }
}

/// The conversation's language: `zh` when its text is mostly Chinese, else `en`.
pub fn guess_language(turns: &[Turn]) -> &'static str {
    let (mut cjk, mut latin) = (0usize, 0usize);
    // A few hundred letters say it as well as all of them.
    'turns: for turn in turns {
        for c in turn.text.chars() {
            if assist_engine::text::is_cjk(c) {
                cjk += 1;
            } else if c.is_alphabetic() {
                latin += 1;
            }
            if cjk + latin >= 400 {
                break 'turns;
            }
        }
    }
    if cjk * 2 >= latin && cjk > 0 {
        "zh"
    } else {
        "en"
    }
}
