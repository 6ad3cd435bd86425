//! Lists and reports: the compact per-call row, the list filter, report queries and results.

use crate::call::{CallSource, CallStatus, SourceKind, UnixMs};
use assist_protocol::{Channel, EmotionLabel};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The compact summary of one call that lists and reports work on. The store keeps one per call
/// (on disk and in memory) and updates it on every write to the call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRow {
    pub call_id: String,
    pub agent_id: String,
    #[serde(default)]
    pub team: Option<String>,
    pub channel: Channel,
    pub language: String,
    pub source: CallSource,
    pub status: CallStatus,
    pub started_at: UnixMs,
    #[serde(default)]
    pub ended_at: Option<UnixMs>,
    /// The engine's score, once the call ended.
    #[serde(default)]
    pub auto_score: Option<u32>,
    /// A trainer's score, which overrides the engine's.
    #[serde(default)]
    pub manual_score: Option<u32>,
    /// Transcript lines stored.
    pub lines: u32,
    /// Alert count per category, sorted by category.
    #[serde(default)]
    pub hits: BTreeMap<String, u32>,
    /// Alert count per rule, sorted by rule.
    #[serde(default)]
    pub rule_hits: BTreeMap<String, u32>,
    /// Trainer verdicts per rule: (confirmed, overturned).
    #[serde(default)]
    pub verdicts: BTreeMap<String, (u32, u32)>,
    /// The most negative emotion label the customer reached, if the customer spoke.
    #[serde(default)]
    pub worst_emotion: Option<EmotionLabel>,
    /// Emotion labels the customer showed at least once.
    #[serde(default)]
    pub emotions_seen: Vec<EmotionLabel>,
    /// The customer's emotion was escalating at some point.
    #[serde(default)]
    pub escalated: bool,
    /// Script cards: card id -> (shown, used).
    #[serde(default)]
    pub scripts: BTreeMap<String, (u32, u32)>,
    /// Knowledge cards shown.
    #[serde(default)]
    pub knowledge_cards: u32,
    /// Customer intents seen (from the summary), in order of first appearance.
    #[serde(default)]
    pub intents: Vec<String>,
    /// Complaint reasons: the rules of the complaint categories (`complaint_risk`,
    /// `customer_escalation`) that fired, sorted.
    #[serde(default)]
    pub complaint_reasons: Vec<String>,
}

impl CallRow {
    /// The score that counts: manual if set, else the engine's.
    pub fn score(&self) -> Option<u32> {
        self.manual_score.or(self.auto_score)
    }

    /// Wall-clock handle time in milliseconds, for ended calls.
    pub fn handle_time_ms(&self) -> Option<i64> {
        self.ended_at.map(|end| (end - self.started_at).max(0))
    }
}

/// Which calls a list or report covers. Every field is optional; set fields are AND-ed.
/// Deserializable from a query string (all fields default to "any").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CallFilter {
    pub agent: Option<String>,
    pub team: Option<String>,
    /// Calls that started at or after this time.
    pub from: Option<UnixMs>,
    /// Calls that started before this time (exclusive).
    pub to: Option<UnixMs>,
    /// Effective score at least this (calls without a score never match a score bound).
    pub min_score: Option<u32>,
    /// Effective score at most this (inclusive).
    pub max_score: Option<u32>,
    /// At least one alert of this category.
    pub category: Option<String>,
    /// At least one alert of this rule.
    pub rule: Option<String>,
    pub channel: Option<Channel>,
    /// The customer showed this emotion at least once.
    pub emotion: Option<EmotionLabel>,
    /// Whether the customer's emotion escalated.
    pub escalated: Option<bool>,
    pub source: Option<SourceKind>,
    pub language: Option<String>,
    pub status: Option<CallStatus>,
}

/// Which slice of a list to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Page {
    pub offset: usize,
    pub limit: usize,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            offset: 0,
            limit: 50,
        }
    }
}

/// One page of calls, newest first, with the number of calls matching the filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallPage {
    pub total: usize,
    pub rows: Vec<CallRow>,
}

/// How report rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Agent,
    Team,
    /// Calendar day of `started_at` (in the query's UTC offset), key `YYYY-MM-DD`.
    Day,
    /// Week of `started_at`, key = the Monday it starts on, `YYYY-MM-DD`.
    Week,
    Channel,
    /// A call counts in every category it hit; calls without hits are in group `none`.
    Category,
}

/// A report request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportQuery {
    #[serde(default)]
    pub filter: CallFilter,
    pub group_by: GroupBy,
    /// Offset of local time from UTC in minutes, for day and week boundaries (China: 480).
    #[serde(default)]
    pub utc_offset_minutes: i32,
    /// How many intents / complaint reasons to list per group.
    #[serde(default = "default_top")]
    pub top: usize,
}

fn default_top() -> usize {
    5
}

impl ReportQuery {
    pub fn new(group_by: GroupBy) -> Self {
        ReportQuery {
            filter: CallFilter::default(),
            group_by,
            utc_offset_minutes: 0,
            top: default_top(),
        }
    }
}

/// Card adoption of one script: how often it was shown and how often the agent used it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Adoption {
    pub shown: u64,
    pub used: u64,
}

impl Adoption {
    /// used / shown, `None` when never shown.
    pub fn rate(&self) -> Option<f64> {
        (self.shown > 0).then(|| self.used as f64 / self.shown as f64)
    }
}

/// The figures of one report group (or of the whole selection).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ReportGroup {
    pub key: String,
    pub calls: u64,
    /// Calls with a score (ended, or manually scored).
    pub scored_calls: u64,
    pub avg_score: Option<f64>,
    /// Score distribution in 10-point buckets: 0-9, 10-19, ..., 80-89, 90-100.
    pub score_histogram: [u64; 10],
    /// Alerts per category.
    pub hits_by_category: BTreeMap<String, u64>,
    /// Mean wall-clock handle time of the ended calls, seconds.
    pub avg_handle_time_secs: Option<f64>,
    /// Card adoption per script card id.
    pub card_adoption: BTreeMap<String, Adoption>,
    /// Most frequent customer intents (calls showing them), most frequent first.
    pub top_intents: Vec<(String, u64)>,
    /// Most frequent complaint reasons (calls showing them), most frequent first.
    pub top_complaints: Vec<(String, u64)>,
}

/// A rule's precision from trainer verdicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulePrecision {
    pub rule: String,
    pub hits: u64,
    pub confirmed: u64,
    pub overturned: u64,
    /// confirmed / (confirmed + overturned); `None` without verdicts.
    pub precision: Option<f64>,
}

/// A report: one group per key (sorted by key), totals over the selection, rule precision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub group_by: GroupBy,
    pub groups: Vec<ReportGroup>,
    pub totals: ReportGroup,
    /// Sorted by rule id; rules with hits in the selection.
    pub rule_precision: Vec<RulePrecision>,
}

/// Score figures of one agent over a time range (for before/after coaching comparisons).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ScoreStats {
    pub calls: u64,
    pub scored_calls: u64,
    pub avg_score: Option<f64>,
    /// Alerts per category over those calls.
    pub hits_by_category: BTreeMap<String, u64>,
}

/// Verdict counts, exported for callers that compute precision themselves.
pub fn precision(confirmed: u64, overturned: u64) -> Option<f64> {
    let judged = confirmed + overturned;
    (judged > 0).then(|| confirmed as f64 / judged as f64)
}

/// An agent's scores before and after a coaching task was created.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BeforeAfter {
    /// Calls started in `[created_at - window, created_at)`.
    pub before: ScoreStats,
    /// Calls started in `[created_at, created_at + window)`.
    pub after: ScoreStats,
}
