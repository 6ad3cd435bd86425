//! Every call's [`CallRow`] in memory, with a compact index so filters scan flat memory.
//!
//! Rows are kept sorted by (started_at, call id), so a date range is two binary searches and
//! "newest first" is a reverse walk. Beside each row sits a [`RowKey`]: the filterable fields
//! as small integers (agent, team and language interned, categories as a bit set, score as a
//! byte) in one contiguous vector. A list or report walks the keys and only touches the rows
//! that pass, instead of chasing each row's heap strings.

use super::fast_report::Facts;
use crate::call::{CallStatus, SourceKind, UnixMs};
use crate::query::{CallFilter, CallRow};
use crate::rows::label_rank;
use assist_protocol::Channel;
use std::collections::HashMap;

pub(super) const NONE: u32 = u32::MAX;
pub(super) const NO_SCORE: u8 = u8::MAX;
/// Categories past the 63rd share the last bit; a filter on one of them checks the row.
const OVERFLOW_BIT: u32 = 63;

#[derive(Default)]
pub(super) struct RowCache {
    rows: Vec<CallRow>,
    /// Parallel to `rows`.
    keys: Vec<RowKey>,
    /// Parallel to `rows`: what reports add up, as interned ids (see [`super::fast_report`]).
    facts: Vec<Facts>,
    started: HashMap<String, UnixMs>,
    pub(super) names: Interners,
}

/// One interner per kind of name, so ids stay small and dense per kind.
#[derive(Default)]
pub(super) struct Interners {
    /// Agents, teams, languages.
    pub(super) symbols: Interner,
    pub(super) categories: Interner,
    pub(super) scripts: Interner,
    pub(super) intents: Interner,
    /// Rules (hits, verdicts, complaint reasons).
    pub(super) rules: Interner,
}

/// The filterable fields of a row as small integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RowKey {
    pub(super) started_at: UnixMs,
    pub(super) agent: u32,
    /// [`NONE`] without a team.
    pub(super) team: u32,
    language: u32,
    /// Bit per category id (see [`OVERFLOW_BIT`]).
    categories: u64,
    /// The effective score, or [`NO_SCORE`].
    pub(super) score: u8,
    /// Wall-clock handle time of an ended call, or -1.
    pub(super) handle_ms: i64,
    pub(super) channel: u8,
    source: u8,
    status: u8,
    /// Bit per emotion label seen.
    emotions: u8,
    escalated: bool,
}

/// Strings to dense ids and back.
#[derive(Default)]
pub(super) struct Interner {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    pub(super) fn intern(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(NONE - 1);
        self.ids.insert(text.to_string(), id);
        self.names.push(text.to_string());
        id
    }

    fn get(&self, text: &str) -> Option<u32> {
        self.ids.get(text).copied()
    }

    pub(super) fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", String::as_str)
    }
}

impl RowCache {
    pub(super) fn from_rows(mut rows: Vec<CallRow>) -> RowCache {
        rows.sort_by(|a, b| order_key(a).cmp(&order_key(b)));
        let mut cache = RowCache {
            keys: Vec::with_capacity(rows.len()),
            facts: Vec::with_capacity(rows.len()),
            ..RowCache::default()
        };
        for row in &rows {
            cache.keys.push(make_key(row, &mut cache.names));
            cache.facts.push(Facts::of(row, &mut cache.names));
            cache.started.insert(row.call_id.clone(), row.started_at);
        }
        cache.rows = rows;
        cache
    }

    pub(super) fn rows(&self) -> impl Iterator<Item = &CallRow> {
        self.rows.iter()
    }

    fn position(&self, call_id: &str) -> Option<usize> {
        let started = *self.started.get(call_id)?;
        self.rows
            .binary_search_by(|r| order_key(r).cmp(&(started, call_id)))
            .ok()
    }

    pub(super) fn get(&self, call_id: &str) -> Option<&CallRow> {
        self.position(call_id).map(|i| &self.rows[i])
    }

    pub(super) fn contains(&self, call_id: &str) -> bool {
        self.started.contains_key(call_id)
    }

    /// Changes a row in place (not its start time) and returns it.
    pub(super) fn update(
        &mut self,
        call_id: &str,
        change: impl FnOnce(&mut CallRow),
    ) -> Option<&CallRow> {
        let i = self.position(call_id)?;
        change(&mut self.rows[i]);
        self.reindex(i);
        Some(&self.rows[i])
    }

    /// Inserts or replaces a row (its start time must not change).
    pub(super) fn put(&mut self, row: CallRow) {
        if let Some(i) = self.position(&row.call_id) {
            self.rows[i] = row;
            self.reindex(i);
            return;
        }
        let at = self
            .rows
            .partition_point(|r| order_key(r) < (row.started_at, row.call_id.as_str()));
        self.keys.insert(at, make_key(&row, &mut self.names));
        self.facts.insert(at, Facts::of(&row, &mut self.names));
        self.started.insert(row.call_id.clone(), row.started_at);
        self.rows.insert(at, row);
    }

    /// Inserts the rows of calls not in the cache (ids distinct), in one merge: the rows after
    /// the first insertion point move once, instead of once per row as with [`Self::put`].
    /// Rows that all start after the newest one cached are simply appended.
    pub(super) fn insert_new(&mut self, mut new: Vec<CallRow>) {
        new.sort_by(|a, b| order_key(a).cmp(&order_key(b)));
        let Some(first) = new.first() else {
            return;
        };
        let at = self
            .rows
            .partition_point(|r| order_key(r) < order_key(first));
        let tail = self
            .rows
            .split_off(at)
            .into_iter()
            .zip(self.keys.split_off(at))
            .zip(self.facts.split_off(at));
        let mut tail = tail.peekable();
        let mut new = new.into_iter().peekable();
        loop {
            let old_first = match (tail.peek(), new.peek()) {
                (Some(((old, _), _)), Some(row)) => order_key(old) < order_key(row),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if old_first {
                if let Some(((row, key), facts)) = tail.next() {
                    self.rows.push(row);
                    self.keys.push(key);
                    self.facts.push(facts);
                }
            } else if let Some(row) = new.next() {
                self.keys.push(make_key(&row, &mut self.names));
                self.facts.push(Facts::of(&row, &mut self.names));
                self.started.insert(row.call_id.clone(), row.started_at);
                self.rows.push(row);
            }
        }
    }

    pub(super) fn remove(&mut self, call_id: &str) -> Option<CallRow> {
        let i = self.position(call_id)?;
        self.started.remove(call_id);
        self.keys.remove(i);
        self.facts.remove(i);
        Some(self.rows.remove(i))
    }

    /// Rows matching the filter, newest first.
    pub(super) fn matching<'a>(
        &'a self,
        filter: &'a CallFilter,
    ) -> impl Iterator<Item = &'a CallRow> + 'a {
        self.matching_indexes(filter).map(|i| &self.rows[i])
    }

    /// Indexes of the rows matching the filter, newest first.
    pub(super) fn matching_indexes<'a>(
        &'a self,
        filter: &'a CallFilter,
    ) -> impl Iterator<Item = usize> + 'a {
        let compiled = self.compile(filter);
        // Sorted by start time: narrow the date range by binary search first.
        let (low, high) = match compiled {
            None => (0, 0),
            Some(_) => {
                let low = filter
                    .from
                    .map_or(0, |from| self.keys.partition_point(|k| k.started_at < from));
                let high = filter.to.map_or(self.keys.len(), |to| {
                    self.keys.partition_point(|k| k.started_at < to)
                });
                (low, high.max(low))
            }
        };
        (low..high).rev().filter(move |&i| {
            compiled.is_some_and(|c| {
                c.passes(&self.keys[i]) && (!c.check_row || filter.matches(&self.rows[i]))
            })
        })
    }

    pub(super) fn key(&self, i: usize) -> &RowKey {
        &self.keys[i]
    }

    pub(super) fn facts(&self, i: usize) -> &Facts {
        &self.facts[i]
    }

    fn reindex(&mut self, i: usize) {
        self.keys[i] = make_key(&self.rows[i], &mut self.names);
        self.facts[i] = Facts::of(&self.rows[i], &mut self.names);
    }

    /// The filter in key terms; `None` when no row can match (a name never seen).
    fn compile(&self, filter: &CallFilter) -> Option<CompiledFilter> {
        let symbol = |text: &Option<String>| -> Option<Option<u32>> {
            match text {
                None => Some(None),
                Some(text) => self.names.symbols.get(text).map(Some),
            }
        };
        let (category_bit, category_overflow) = match &filter.category {
            None => (0, false),
            Some(category) => {
                let id = self.names.categories.get(category)?;
                let bit = id.min(OVERFLOW_BIT);
                (1u64 << bit, bit == OVERFLOW_BIT)
            }
        };
        Some(CompiledFilter {
            agent: symbol(&filter.agent)?,
            team: symbol(&filter.team)?,
            language: symbol(&filter.language)?,
            category_bit,
            min_score: filter.min_score,
            max_score: filter.max_score,
            channel: filter.channel.map(channel_code),
            source: filter.source.map(source_code),
            status: filter.status.map(status_code),
            emotion_bit: filter.emotion.map_or(0, |l| 1 << label_rank(l)),
            escalated: filter.escalated,
            // What the key cannot answer exactly is checked on the row.
            check_row: category_overflow || filter.rule.is_some(),
        })
    }
}

fn make_key(row: &CallRow, names: &mut Interners) -> RowKey {
    let symbols = &mut names.symbols;
    let categories = &mut names.categories;
    RowKey {
        started_at: row.started_at,
        agent: symbols.intern(&row.agent_id),
        team: row.team.as_deref().map_or(NONE, |t| symbols.intern(t)),
        language: symbols.intern(&row.language),
        categories: row.hits.keys().fold(0, |bits, c| {
            bits | 1u64 << categories.intern(c).min(OVERFLOW_BIT)
        }),
        score: row
            .score()
            .map_or(NO_SCORE, |s| u8::try_from(s.min(100)).unwrap_or(100)),
        handle_ms: row.handle_time_ms().unwrap_or(-1),
        channel: channel_code(row.channel),
        source: source_code(row.source.kind()),
        status: status_code(row.status),
        emotions: row
            .emotions_seen
            .iter()
            .fold(0, |bits, l| bits | 1 << label_rank(*l)),
        escalated: row.escalated,
    }
}

#[derive(Clone, Copy)]
struct CompiledFilter {
    agent: Option<u32>,
    team: Option<u32>,
    language: Option<u32>,
    category_bit: u64,
    min_score: Option<u32>,
    max_score: Option<u32>,
    channel: Option<u8>,
    source: Option<u8>,
    status: Option<u8>,
    emotion_bit: u8,
    escalated: Option<bool>,
    check_row: bool,
}

impl CompiledFilter {
    fn passes(&self, key: &RowKey) -> bool {
        if self.agent.is_some_and(|a| key.agent != a)
            || self.team.is_some_and(|t| key.team != t)
            || self.language.is_some_and(|l| key.language != l)
            || key.categories & self.category_bit != self.category_bit
            || key.emotions & self.emotion_bit != self.emotion_bit
            || self.channel.is_some_and(|c| key.channel != c)
            || self.source.is_some_and(|s| key.source != s)
            || self.status.is_some_and(|s| key.status != s)
            || self.escalated.is_some_and(|e| key.escalated != e)
        {
            return false;
        }
        if self.min_score.is_some() || self.max_score.is_some() {
            if key.score == NO_SCORE {
                return false;
            }
            let score = u32::from(key.score);
            if self.min_score.is_some_and(|m| score < m)
                || self.max_score.is_some_and(|m| score > m)
            {
                return false;
            }
        }
        true
    }
}

fn order_key(row: &CallRow) -> (UnixMs, &str) {
    (row.started_at, row.call_id.as_str())
}

fn channel_code(channel: Channel) -> u8 {
    match channel {
        Channel::Voice => 0,
        Channel::Chat => 1,
    }
}

fn source_code(source: SourceKind) -> u8 {
    match source {
        SourceKind::Live => 0,
        SourceKind::Batch => 1,
        SourceKind::ChatApi => 2,
    }
}

fn status_code(status: CallStatus) -> u8 {
    match status {
        CallStatus::InProgress => 0,
        CallStatus::Ended => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{CallMeta, CallSource};

    fn row(id: &str, started_at: UnixMs, categories: &[String]) -> CallRow {
        let mut row = CallRow::new(&CallMeta {
            call_id: id.into(),
            agent_id: "ann".into(),
            team: None,
            channel: Channel::Voice,
            language: "zh".into(),
            source: CallSource::Live,
            started_at,
            ended_at: None,
            status: CallStatus::InProgress,
        });
        for c in categories {
            row.hits.insert(c.clone(), 1);
        }
        row
    }

    #[test]
    fn categories_past_the_bit_set_are_checked_on_the_row() {
        let many: Vec<String> = (0..70).map(|i| format!("cat{i:02}")).collect();
        let mut cache = RowCache::from_rows(vec![row("all", 1, &many)]);
        cache.put(row("only-69", 2, &many[69..]));
        cache.put(row("only-68", 3, &many[68..69]));
        let ids = |category: &str| -> Vec<String> {
            let filter = CallFilter {
                category: Some(category.into()),
                ..Default::default()
            };
            cache.matching(&filter).map(|r| r.call_id.clone()).collect()
        };
        assert_eq!(ids("cat69"), vec!["only-69", "all"]);
        assert_eq!(ids("cat68"), vec!["only-68", "all"]);
        assert_eq!(ids("cat00"), vec!["all"]);
        assert!(ids("never-seen").is_empty());
    }

    #[test]
    fn rows_inserted_at_once_land_where_puts_would_put_them() {
        let mut by_put = RowCache::default();
        let mut at_once = RowCache::default();
        for (id, at) in [("m", 50), ("d", 20)] {
            by_put.put(row(id, at, &[]));
            at_once.put(row(id, at, &[]));
        }
        let new = [
            ("z", 90),
            ("a", 10),
            ("n", 50),
            ("c", 20),
            ("e", 35),
            ("y", 60),
        ];
        for (id, at) in new {
            by_put.put(row(id, at, &["abuse".to_string()]));
        }
        at_once.insert_new(
            new.iter()
                .map(|(id, at)| row(id, *at, &["abuse".to_string()]))
                .collect(),
        );
        at_once.insert_new(vec![row("zz", 99, &[])]);
        by_put.put(row("zz", 99, &[]));
        let all = CallFilter::default();
        let ids = |cache: &RowCache| -> Vec<String> {
            cache.matching(&all).map(|r| r.call_id.clone()).collect()
        };
        assert_eq!(ids(&at_once), ids(&by_put));
        assert_eq!(ids(&at_once)[..3], ["zz", "z", "y"]);
        let abuse = CallFilter {
            category: Some("abuse".into()),
            ..Default::default()
        };
        assert_eq!(at_once.matching(&abuse).count(), 6);
        for (id, _) in new {
            assert!(at_once.get(id).is_some(), "{id} is found by its id");
        }
        assert_eq!(at_once.keys.len(), at_once.rows.len());
        assert_eq!(at_once.facts.len(), at_once.rows.len());
    }

    #[test]
    fn rows_stay_sorted_and_indexed_through_puts_and_removes() {
        let mut cache = RowCache::default();
        for (id, at) in [("b", 20), ("a", 10), ("c", 30), ("a2", 10)] {
            cache.put(row(id, at, &[]));
        }
        assert!(cache.remove("c").is_some());
        let all = CallFilter::default();
        let order: Vec<&str> = cache.matching(&all).map(|r| r.call_id.as_str()).collect();
        assert_eq!(order, vec!["b", "a2", "a"]);
        assert_eq!(cache.keys.len(), cache.rows.len());
        assert!(cache.get("a2").is_some() && cache.get("c").is_none());
    }
}
