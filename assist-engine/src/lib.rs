//! The QC engine of the agent-assist product: pure code, no I/O, no clock, no async.
//!
//! A knowledge pack ([`Pack`], parsed from file contents the caller has read) compiles into an
//! [`Engine`]: per call language, one Aho-Corasick automaton over its rules' phrases and its rule
//! regexes; the intent and script-trigger automata and an emotion model per language. Each call
//! gets a [`CallSession`] that takes utterances in call order and returns [`Event`]s — alerts,
//! the customer's emotion, cards — and a [`Summary`] at the end.
//!
//! The live server, `assist-server replay` and batch QC all drive the same session, so a rule
//! behaves the same during the call and after it. Knowledge snippets come through the
//! [`Knowledge`] trait, which the server implements with a tantivy index.
//!
//! ```text
//! utterance -> mask PII -> normalize -> rules (one pass) -> emotion -> cards -> events
//! ```
//!
//! Modules, top-down: [`session`] drives a call; [`rules`], [`emotion`], [`cards`] and
//! [`questions`] do one job each; [`pack`] is the data; [`text`], [`negation`] and [`mask`]
//! are the shared text tools.

pub mod cards;
pub mod emotion;
pub mod mask;
pub mod negation;
pub mod pack;
pub mod questions;
pub mod rules;
pub mod session;
pub mod text;

pub use assist_protocol::{Event, Summary};
pub use mask::mask_pii;
pub use pack::{Article, Pack, PackError, PackErrors, PackFile, PackMeta};
pub use session::{CallSession, SessionError};

use cards::{IntentModel, ScriptModel};
use emotion::EmotionModel;
use rules::RuleSet;
use std::sync::Arc;

/// The best passage of the knowledge base for a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    /// Stable per passage: `article-id#paragraph`.
    pub id: String,
    pub title: String,
    pub text: String,
    pub score: f32,
    /// Query terms found in the passage, for highlighting.
    pub highlights: Vec<String>,
}

/// Where knowledge snippets come from. Implementations must be cheap: this is on the hot path.
pub trait Knowledge: Send + Sync {
    /// The best passage in `language` for `query`, if any scores at least `min_score`.
    fn best_passage(&self, language: &str, query: &str, min_score: f32) -> Option<Passage>;
}

/// No knowledge base (tests, or a pack without articles).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoKnowledge;

impl Knowledge for NoKnowledge {
    fn best_passage(&self, _: &str, _: &str, _: f32) -> Option<Passage> {
        None
    }
}

/// A compiled pack, shared by every call.
#[derive(Debug)]
pub struct Engine {
    pub meta: PackMeta,
    pub rules: RuleSet,
    pub intents: IntentModel,
    pub scripts: ScriptModel,
    pub emotions: Vec<EmotionModel>,
    /// Kept for the knowledge index, which the caller builds.
    pub articles: Vec<Article>,
}

impl Engine {
    /// Compiles a validated pack.
    pub fn new(pack: Pack) -> Result<Engine, PackErrors> {
        let rules = RuleSet::new(pack.rules).map_err(|message| {
            PackErrors(vec![PackError {
                file: "rules/".into(),
                line: 0,
                message,
            }])
        })?;
        Ok(Engine {
            meta: pack.meta,
            rules,
            intents: IntentModel::new(pack.intents),
            scripts: ScriptModel::new(pack.scripts),
            emotions: pack.lexicons.iter().map(EmotionModel::new).collect(),
            articles: pack.articles,
        })
    }

    /// Parses and compiles in one step.
    pub fn from_files(files: &[PackFile]) -> Result<Engine, PackErrors> {
        Engine::new(Pack::parse(files)?)
    }

    /// Starts a call in `language` (`zh` or `en`).
    pub fn start_call(self: &Arc<Self>, language: &str) -> CallSession {
        CallSession::new(Arc::clone(self), language)
    }

    pub fn version(&self) -> &str {
        &self.meta.version
    }
}
