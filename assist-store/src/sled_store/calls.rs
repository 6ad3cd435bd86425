//! The call log on sled: incremental writes, reading a call, trainer edits, retention.
//!
//! A call's items (lines, alerts, emotions, cards) are either one key each (`call id` NUL
//! suffix, written as the call runs) or **packed** in the call's bundle ([`super::bundle`]:
//! `[suffix hex, item]` pairs, written by [`super::bulk`] for a call stored whole). Every reader
//! here expands the packed items into the same (suffix, item) pairs the single keys would hold,
//! so the two forms read the same; appends to a call with packed items skip what the bundle
//! already holds, as they skip an existing key. The metadata and the summary are read from
//! their own trees first, then from the bundle.

use super::bundle::{Bundle, Kind};
use super::{
    call_key, call_prefix, check_id, decode, encode, key_suffix, read_u64, RowCache, SledStore,
    Write,
};
use crate::call::*;
use crate::error::{Result, StoreError};
use crate::query::CallRow;
use crate::SCHEMA_VERSION;
use assist_engine::mask_pii;
use assist_protocol::{Alert, Card, CardAction, CardKind, Emotion, Event, Summary, Tier};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use sled::Tree;
use std::collections::{HashMap, HashSet};

/// A card as stored: what the call page shows of it (not its body).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StoredCard {
    card_id: String,
    kind: CardKind,
    #[serde(default)]
    tier: Option<Tier>,
    title: String,
    t: f64,
}

impl StoredCard {
    pub(super) fn of(card: &Card) -> StoredCard {
        StoredCard {
            card_id: card.id.clone(),
            kind: card.kind,
            tier: card.tier,
            title: card.title.clone(),
            t: card.t,
        }
    }

    pub(super) fn card_id(&self) -> &str {
        &self.card_id
    }

    pub(super) fn kind(&self) -> CardKind {
        self.kind
    }
}

/// A verdict with the rule of its alert, so rows can be recomputed without reading alerts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct VerdictRecord {
    rule: String,
    verdict: Verdict,
}

impl SledStore {
    // -- Writes while the call runs -------------------------------------------------------------

    pub(super) fn begin_call_impl(&self, meta: &CallMeta) -> Result<bool> {
        check_id("call id", &meta.call_id)?;
        check_id("agent id", &meta.agent_id)?;
        let mut cache = self.cache_write();
        if cache.contains(&meta.call_id) {
            return Ok(false);
        }
        let meta = CallMeta {
            status: CallStatus::InProgress,
            ended_at: None,
            ..meta.clone()
        };
        let row = CallRow::new(&meta);
        let id = meta.call_id.as_bytes().to_vec();
        self.atomic(&[
            (&self.t.calls, id.clone(), Some(encode(&meta)?)),
            (&self.t.rows, id, Some(encode(&row)?)),
        ])?;
        cache.put(row);
        drop(cache);
        self.durable()?;
        Ok(true)
    }

    /// Stores a line and/or events; returns (line was new, events that were new).
    pub(super) fn append_turn_impl(
        &self,
        call_id: &str,
        line: Option<&StoredLine>,
        events: &[Event],
    ) -> Result<(bool, usize)> {
        let ended = match self.cache_read().get(call_id) {
            Some(row) => row.status == CallStatus::Ended,
            None => return Err(StoreError::not_found("call", call_id)),
        };
        // Only a call stored whole (always ended) has packed items.
        let packed = if ended {
            PackedSuffixes::of(&Bundle::read(&self.t, call_id)?, call_id)?
        } else {
            PackedSuffixes::default()
        };
        let new_line = match line {
            Some(line) => self.insert_line(call_id, line, &packed)?,
            None => false,
        };
        let mut fresh: Vec<Fresh> = Vec::new();
        for event in events {
            if let Some(item) = self.insert_event(call_id, event, &packed)? {
                fresh.push(item);
            }
        }
        if !new_line && fresh.is_empty() {
            return Ok((false, 0));
        }
        let new_events = fresh.len();
        let mut cache = self.cache_write();
        let updated = cache.update(call_id, |row| {
            if new_line {
                row.lines += 1;
            }
            for item in &fresh {
                match item {
                    Fresh::Alert(alert) => row.add_alert(alert),
                    Fresh::Emotion(emotion) => row.add_emotion(emotion),
                    Fresh::Card(card, action) => row.add_card(&card.card_id, card.kind, *action),
                    Fresh::Summary(summary) => row.apply_summary(summary),
                }
            }
        });
        if let Some(row) = updated.filter(|r| r.status == CallStatus::Ended) {
            // Events after the end (rare): keep the stored row in step.
            self.t.rows.insert(call_id.as_bytes(), encode(row)?)?;
        }
        drop(cache);
        self.durable()?;
        Ok((new_line, new_events))
    }

    /// Stores a line unless its seq is already stored.
    fn insert_line(
        &self,
        call_id: &str,
        line: &StoredLine,
        packed: &PackedSuffixes,
    ) -> Result<bool> {
        check_line(call_id, line)?;
        let suffix = line.seq.to_be_bytes();
        if packed.lines.contains(suffix.as_slice()) {
            return Ok(false);
        }
        let line = StoredLine {
            text: mask_pii(&line.text),
            ..line.clone()
        };
        let key = call_key(call_id, &suffix);
        Ok(insert_new(&self.t.lines, key, encode(&line)?)?)
    }

    /// Stores one event unless an identical one is stored at the same time; returns what is new.
    fn insert_event(
        &self,
        call_id: &str,
        event: &Event,
        packed: &PackedSuffixes,
    ) -> Result<Option<Fresh>> {
        let new = |tree: &Tree, held: &HashSet<Vec<u8>>, suffix: [u8; 16], value: Vec<u8>| {
            if held.contains(suffix.as_slice()) {
                return Ok(false);
            }
            insert_new(tree, call_key(call_id, &suffix), value)
        };
        Ok(match event {
            Event::Alert(alert) => {
                let alert = Alert {
                    text: mask_pii(&alert.text),
                    ..alert.clone()
                };
                let value = encode(&alert)?;
                let suffix = event_suffix(alert.t, &value);
                new(&self.t.alerts, &packed.alerts, suffix, value)?.then_some(Fresh::Alert(alert))
            }
            Event::Emotion(emotion) => {
                let value = encode(emotion)?;
                let suffix = event_suffix(emotion.t, &value);
                new(&self.t.emotions, &packed.emotions, suffix, value)?
                    .then(|| Fresh::Emotion(emotion.clone()))
            }
            Event::Card(card) => {
                let stored = StoredCard::of(card);
                let suffix = event_suffix(card.t, &encode(card)?);
                if new(&self.t.cards, &packed.cards, suffix, encode(&stored)?)? {
                    let action = self.card_action(call_id, &card.id)?;
                    Some(Fresh::Card(stored, action))
                } else {
                    None
                }
            }
            Event::Summary(summary) => {
                self.t
                    .summaries
                    .insert(call_id.as_bytes(), encode(summary)?)?;
                Some(Fresh::Summary(summary.clone()))
            }
        })
    }

    fn card_action(&self, call_id: &str, card_id: &str) -> Result<Option<CardAction>> {
        self.t
            .card_actions
            .get(call_key(call_id, card_id.as_bytes()))?
            .map(|raw| decode(&raw))
            .transpose()
    }

    pub(super) fn record_card_action_impl(
        &self,
        call_id: &str,
        card_id: &str,
        action: CardAction,
    ) -> Result<()> {
        check_id("card id", card_id)?;
        let mut cache = self.cache_write();
        let mut row = cache
            .get(call_id)
            .cloned()
            .ok_or_else(|| StoreError::not_found("call", call_id))?;
        let previous = self.card_action(call_id, card_id)?;
        row.change_card_action(card_id, previous, action);
        let key = call_key(call_id, card_id.as_bytes());
        self.write_with_row(
            &mut cache,
            row,
            vec![(&self.t.card_actions, key, Some(encode(&action)?))],
        )?;
        drop(cache);
        self.durable()
    }

    pub(super) fn end_call_impl(
        &self,
        call_id: &str,
        summary: &Summary,
        ended_at: UnixMs,
    ) -> Result<()> {
        let mut meta = self
            .read_meta(call_id)?
            .ok_or_else(|| StoreError::not_found("call", call_id))?;
        meta.status = CallStatus::Ended;
        meta.ended_at = Some(ended_at);
        let mut cache = self.cache_write();
        let bundle = Bundle::read(&self.t, call_id)?;
        let row = self.compute_row_with(&meta, Some(summary), &bundle)?;
        let id = call_id.as_bytes().to_vec();
        self.atomic(&[
            (&self.t.summaries, id.clone(), Some(encode(summary)?)),
            (&self.t.calls, id.clone(), Some(encode(&meta)?)),
            (&self.t.rows, id, Some(encode(&row)?)),
        ])?;
        cache.put(row);
        drop(cache);
        self.durable()
    }

    /// Writes keys of a call together with its updated row, and puts the row in the cache.
    /// Rows of ended calls are written in the same transaction; rows of calls in progress only
    /// live in memory (they are recomputed on open).
    fn write_with_row<'a>(
        &'a self,
        cache: &mut RowCache,
        row: CallRow,
        mut writes: Vec<Write<'a>>,
    ) -> Result<()> {
        if row.status == CallStatus::Ended {
            writes.push((
                &self.t.rows,
                row.call_id.as_bytes().to_vec(),
                Some(encode(&row)?),
            ));
        }
        self.atomic(&writes)?;
        cache.put(row);
        Ok(())
    }

    // -- Reading --------------------------------------------------------------------------------

    pub(super) fn read_meta(&self, call_id: &str) -> Result<Option<CallMeta>> {
        match self.t.calls.get(call_id.as_bytes())? {
            Some(raw) => Ok(Some(decode(&raw)?)),
            None => Bundle::read(&self.t, call_id)?.meta(),
        }
    }

    /// The metadata when the call's bundle is already read.
    fn meta_with(&self, call_id: &str, bundle: &Bundle) -> Result<Option<CallMeta>> {
        match self.t.calls.get(call_id.as_bytes())? {
            Some(raw) => Ok(Some(decode(&raw)?)),
            None => bundle.meta(),
        }
    }

    fn summary_with(&self, call_id: &str, bundle: &Bundle) -> Result<Option<Summary>> {
        match self.t.summaries.get(call_id.as_bytes())? {
            Some(raw) => Ok(Some(decode(&raw)?)),
            None => bundle.summary(),
        }
    }

    fn read_manual(&self, call_id: &str) -> Result<Option<ManualScore>> {
        self.t
            .manual_scores
            .get(call_id.as_bytes())?
            .map(|raw| decode(&raw))
            .transpose()
    }

    pub(super) fn last_seq_impl(&self, call_id: &str) -> Result<u64> {
        let last_key = match self.t.lines.scan_prefix(call_prefix(call_id)).next_back() {
            Some(item) => read_u64(key_suffix(&item?.0, call_id)).unwrap_or(0),
            None => 0,
        };
        let last_packed = Bundle::read(&self.t, call_id)?
            .items::<IgnoredAny>(Kind::Lines, call_id)?
            .iter()
            .filter_map(|(suffix, _)| read_u64(suffix))
            .max()
            .unwrap_or(0);
        Ok(last_key.max(last_packed))
    }

    /// Decodes every item stored under the call's prefix in `tree`, with its key suffix, in
    /// suffix order.
    fn scan_call<T: DeserializeOwned>(
        &self,
        tree: &Tree,
        call_id: &str,
    ) -> Result<Vec<(Vec<u8>, T)>> {
        tree.scan_prefix(call_prefix(call_id))
            .map(|item| {
                let (key, value) = item?;
                Ok((key_suffix(&key, call_id).to_vec(), decode(&value)?))
            })
            .collect()
    }

    /// A call's items of one kind, packed and single keys alike, in suffix order.
    fn items<T: DeserializeOwned>(
        &self,
        kind: Kind,
        call_id: &str,
        bundle: &Bundle,
    ) -> Result<Vec<(Vec<u8>, T)>> {
        let mut items = bundle.items(kind, call_id)?;
        if items.is_empty() {
            return self.scan_call(self.t.of_kind(kind), call_id);
        }
        let appended = self.scan_call(self.t.of_kind(kind), call_id)?;
        if !appended.is_empty() {
            items.extend(appended);
            items.sort_by(|a, b| a.0.cmp(&b.0));
        }
        Ok(items)
    }

    /// How many items of one kind the call has (without decoding single keys).
    fn count_items(&self, kind: Kind, call_id: &str, bundle: &Bundle) -> Result<usize> {
        let packed = bundle.items::<IgnoredAny>(kind, call_id)?.len();
        let single = self
            .t
            .of_kind(kind)
            .scan_prefix(call_prefix(call_id))
            .keys()
            .count();
        Ok(packed + single)
    }

    /// The item of one kind at `suffix`, single key or packed.
    fn item_at<T: DeserializeOwned>(
        &self,
        kind: Kind,
        call_id: &str,
        suffix: &[u8],
    ) -> Result<Option<T>> {
        if let Some(raw) = self.t.of_kind(kind).get(call_key(call_id, suffix))? {
            return Ok(Some(decode(&raw)?));
        }
        Ok(Bundle::read(&self.t, call_id)?
            .items::<T>(kind, call_id)?
            .into_iter()
            .find(|(s, _)| s == suffix)
            .map(|(_, item)| item))
    }

    fn card_actions(&self, call_id: &str) -> Result<HashMap<String, CardAction>> {
        Ok(self
            .scan_call::<CardAction>(&self.t.card_actions, call_id)?
            .into_iter()
            .map(|(suffix, action)| (String::from_utf8_lossy(&suffix).into_owned(), action))
            .collect())
    }

    pub(super) fn get_call_impl(&self, call_id: &str) -> Result<Option<CallRecord>> {
        let bundle = Bundle::read(&self.t, call_id)?;
        let Some(meta) = self.meta_with(call_id, &bundle)? else {
            return Ok(None);
        };
        let lines: Vec<StoredLine> = self
            .items(Kind::Lines, call_id, &bundle)?
            .into_iter()
            .map(|(_, line)| line)
            .collect();
        let verdicts: HashMap<String, VerdictRecord> = self
            .scan_call::<VerdictRecord>(&self.t.verdicts, call_id)?
            .into_iter()
            .map(|(suffix, v)| (String::from_utf8_lossy(&suffix).into_owned(), v))
            .collect();
        let line_finder = LineFinder::new(&lines);
        let alerts = self
            .items::<Alert>(Kind::Alerts, call_id, &bundle)?
            .into_iter()
            .map(|(suffix, alert)| {
                let id = hex(&suffix);
                StoredAlert {
                    line_seq: line_finder.line_at(alert.t),
                    verdict: verdicts.get(&id).map(|v| v.verdict.clone()),
                    id,
                    alert,
                }
            })
            .collect();
        let emotions = self
            .items::<Emotion>(Kind::Emotions, call_id, &bundle)?
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        let actions = self.card_actions(call_id)?;
        let ended = meta.status == CallStatus::Ended;
        let cards = self
            .items::<StoredCard>(Kind::Cards, call_id, &bundle)?
            .into_iter()
            .map(|(_, card)| CardShown {
                reaction: match actions.get(&card.card_id) {
                    Some(CardAction::Used) => CardReaction::Used,
                    Some(CardAction::Dismissed) => CardReaction::Dismissed,
                    None if ended => CardReaction::Ignored,
                    None => CardReaction::Pending,
                },
                card_id: card.card_id,
                kind: card.kind,
                tier: card.tier,
                title: card.title,
                t: card.t,
            })
            .collect();
        let comments = self
            .scan_call::<Comment>(&self.t.comments, call_id)?
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        Ok(Some(CallRecord {
            summary: self.summary_with(call_id, &bundle)?,
            manual_score: self.read_manual(call_id)?,
            meta,
            lines,
            alerts,
            emotions,
            cards,
            comments,
        }))
    }

    /// A call's row computed from its stored data.
    pub(super) fn compute_row(&self, meta: &CallMeta) -> Result<CallRow> {
        let bundle = Bundle::read(&self.t, &meta.call_id)?;
        let summary = self.summary_with(&meta.call_id, &bundle)?;
        self.compute_row_with(meta, summary.as_ref(), &bundle)
    }

    fn compute_row_with(
        &self,
        meta: &CallMeta,
        summary: Option<&Summary>,
        bundle: &Bundle,
    ) -> Result<CallRow> {
        let call_id = meta.call_id.as_str();
        let mut row = CallRow::new(meta);
        let line_count = self.count_items(Kind::Lines, call_id, bundle)?;
        row.lines = u32::try_from(line_count).unwrap_or(u32::MAX);
        for (_, alert) in self.items::<Alert>(Kind::Alerts, call_id, bundle)? {
            row.add_alert(&alert);
        }
        for (_, record) in self.scan_call::<VerdictRecord>(&self.t.verdicts, call_id)? {
            row.count_verdict(&record.rule, record.verdict.kind, 1);
        }
        for (_, emotion) in self.items::<Emotion>(Kind::Emotions, call_id, bundle)? {
            row.add_emotion(&emotion);
        }
        let actions = self.card_actions(call_id)?;
        for (_, card) in self.items::<StoredCard>(Kind::Cards, call_id, bundle)? {
            row.add_card(
                &card.card_id,
                card.kind,
                actions.get(&card.card_id).copied(),
            );
        }
        if let Some(summary) = summary {
            row.apply_summary(summary);
        }
        row.apply_manual_score(self.read_manual(call_id)?.as_ref());
        Ok(row)
    }

    // -- Trainer edits --------------------------------------------------------------------------

    pub(super) fn add_comment_impl(
        &self,
        call_id: &str,
        line_seq: u64,
        author: &str,
        text: &str,
        at: UnixMs,
    ) -> Result<Comment> {
        if !self.cache_read().contains(call_id) {
            return Err(StoreError::not_found("call", call_id));
        }
        if self
            .item_at::<IgnoredAny>(Kind::Lines, call_id, &line_seq.to_be_bytes())?
            .is_none()
        {
            return Err(StoreError::not_found(
                "transcript line",
                format!("{call_id}#{line_seq}"),
            ));
        }
        if text.trim().is_empty() {
            return Err(StoreError::Invalid("a comment needs some text".to_string()));
        }
        let comment = Comment {
            id: self.next_id("comment")?,
            line_seq,
            author: author.to_string(),
            text: text.to_string(),
            at,
        };
        self.t.comments.insert(
            call_key(call_id, &comment.id.to_be_bytes()),
            encode(&comment)?,
        )?;
        self.durable()?;
        Ok(comment)
    }

    pub(super) fn delete_comment_impl(&self, call_id: &str, comment_id: u64) -> Result<bool> {
        let removed = self
            .t
            .comments
            .remove(call_key(call_id, &comment_id.to_be_bytes()))?
            .is_some();
        self.durable()?;
        Ok(removed)
    }

    pub(super) fn set_verdict_impl(
        &self,
        call_id: &str,
        alert_id: &str,
        verdict: Option<Verdict>,
    ) -> Result<()> {
        let not_found = || StoreError::not_found("alert", format!("{call_id}/{alert_id}"));
        let suffix = unhex(alert_id).ok_or_else(not_found)?;
        let alert: Alert = self
            .item_at(Kind::Alerts, call_id, &suffix)?
            .ok_or_else(not_found)?;
        let key = call_key(call_id, alert_id.as_bytes());
        let mut cache = self.cache_write();
        let mut row = cache
            .get(call_id)
            .cloned()
            .ok_or_else(|| StoreError::not_found("call", call_id))?;
        let previous: Option<VerdictRecord> = self
            .t
            .verdicts
            .get(&key)?
            .map(|raw| decode(&raw))
            .transpose()?;
        if let Some(previous) = &previous {
            row.count_verdict(&alert.rule, previous.verdict.kind, -1);
        }
        let value = match verdict {
            Some(verdict) => {
                row.count_verdict(&alert.rule, verdict.kind, 1);
                Some(encode(&VerdictRecord {
                    rule: alert.rule.clone(),
                    verdict,
                })?)
            }
            None => None,
        };
        self.write_with_row(&mut cache, row, vec![(&self.t.verdicts, key, value)])?;
        drop(cache);
        self.durable()
    }

    pub(super) fn set_manual_score_impl(
        &self,
        call_id: &str,
        score: Option<ManualScore>,
    ) -> Result<()> {
        if let Some(manual) = &score {
            if manual.score > 100 {
                return Err(StoreError::Invalid(format!(
                    "a score is 0 to 100, got {}",
                    manual.score
                )));
            }
            if manual.reason.trim().is_empty() {
                return Err(StoreError::Invalid(
                    "a manual score needs a reason".to_string(),
                ));
            }
        }
        let mut cache = self.cache_write();
        let mut row = cache
            .get(call_id)
            .cloned()
            .ok_or_else(|| StoreError::not_found("call", call_id))?;
        row.apply_manual_score(score.as_ref());
        let value = score.as_ref().map(encode).transpose()?;
        self.write_with_row(
            &mut cache,
            row,
            vec![(&self.t.manual_scores, call_id.as_bytes().to_vec(), value)],
        )?;
        drop(cache);
        self.durable()
    }

    // -- Retention ------------------------------------------------------------------------------

    pub(super) fn purge_ended_before_impl(&self, cutoff: UnixMs) -> Result<usize> {
        let doomed: Vec<String> = self
            .cache_read()
            .rows()
            .filter(|r| r.status == CallStatus::Ended && r.ended_at.is_some_and(|e| e < cutoff))
            .map(|r| r.call_id.clone())
            .collect();
        let mut purged = 0;
        for call_id in &doomed {
            if self.delete_call_data(call_id)? {
                purged += 1;
            }
        }
        self.db.flush()?;
        tracing::info!(purged, cutoff, "calls purged");
        Ok(purged)
    }

    /// Removes everything about a call: its items first, its metadata and row last, so a crash
    /// midway leaves a listed call that a second delete or purge finishes.
    pub(super) fn delete_call_data(&self, call_id: &str) -> Result<bool> {
        let existed = self.cache_read().contains(call_id) || self.read_meta(call_id)?.is_some();
        if !existed {
            return Ok(false);
        }
        let prefix = call_prefix(call_id);
        for tree in self.t.per_call_prefixed() {
            let mut batch = sled::Batch::default();
            for key in tree.scan_prefix(&prefix).keys() {
                batch.remove(key?);
            }
            tree.apply_batch(batch)?;
        }
        let id = call_id.as_bytes().to_vec();
        let mut cache = self.cache_write();
        self.atomic(&[
            (&self.t.summaries, id.clone(), None),
            (&self.t.bundles, id.clone(), None),
            (&self.t.manual_scores, id.clone(), None),
            (&self.t.calls, id.clone(), None),
            (&self.t.rows, id, None),
        ])?;
        cache.remove(call_id);
        Ok(true)
    }

    pub(super) fn export_call_impl(&self, call_id: &str) -> Result<serde_json::Value> {
        let record = self
            .get_call_impl(call_id)?
            .ok_or_else(|| StoreError::not_found("call", call_id))?;
        let mut value = serde_json::to_value(&record)?;
        if let Some(object) = value.as_object_mut() {
            object.insert("schema_version".to_string(), SCHEMA_VERSION.into());
        }
        Ok(value)
    }
}

/// Something an append stored for the first time, to fold into the call's row.
enum Fresh {
    Alert(Alert),
    Emotion(Emotion),
    Card(StoredCard, Option<CardAction>),
    Summary(Summary),
}

/// Refuses a line whose start time is not a time.
pub(super) fn check_line(call_id: &str, line: &StoredLine) -> Result<()> {
    if !line.start.is_finite() || line.start < 0.0 {
        return Err(StoreError::Invalid(format!(
            "line {} of call {call_id} has an invalid start time",
            line.seq
        )));
    }
    Ok(())
}

/// The suffixes a call's bundle holds, per kind (empty for a call without one).
#[derive(Default)]
struct PackedSuffixes {
    lines: HashSet<Vec<u8>>,
    alerts: HashSet<Vec<u8>>,
    emotions: HashSet<Vec<u8>>,
    cards: HashSet<Vec<u8>>,
}

impl PackedSuffixes {
    fn of(bundle: &Bundle, call_id: &str) -> Result<PackedSuffixes> {
        let suffixes = |kind| -> Result<HashSet<Vec<u8>>> {
            Ok(bundle
                .items::<IgnoredAny>(kind, call_id)?
                .into_iter()
                .map(|(suffix, _)| suffix)
                .collect())
        };
        Ok(PackedSuffixes {
            lines: suffixes(Kind::Lines)?,
            alerts: suffixes(Kind::Alerts)?,
            emotions: suffixes(Kind::Emotions)?,
            cards: suffixes(Kind::Cards)?,
        })
    }
}

/// Inserts `value` at `key` unless the key exists; returns whether it was inserted.
fn insert_new(tree: &Tree, key: Vec<u8>, value: Vec<u8>) -> sled::Result<bool> {
    Ok(tree
        .compare_and_swap(key, None as Option<&[u8]>, Some(value))?
        .is_ok())
}

/// The key suffix of an event: its time in milliseconds, then a fingerprint of its content.
/// Events sort by time; the same event stored twice lands on the same key.
pub(super) fn event_suffix(t: f64, encoded: &[u8]) -> [u8; 16] {
    let ms = if t.is_finite() && t > 0.0 {
        (t * 1000.0).round() as u64
    } else {
        0
    };
    let mut suffix = [0u8; 16];
    suffix[..8].copy_from_slice(&ms.to_be_bytes());
    suffix[8..].copy_from_slice(&fnv1a(encoded).to_be_bytes());
    suffix
}

/// FNV-1a, 64 bits: stable across builds and platforms (unlike std's hasher).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

pub(super) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

pub(super) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// Finds the transcript line an alert is about: the last line starting at or before its time.
struct LineFinder {
    by_start: Vec<(f64, u64)>,
}

impl LineFinder {
    fn new(lines: &[StoredLine]) -> LineFinder {
        let mut by_start: Vec<(f64, u64)> = lines.iter().map(|l| (l.start, l.seq)).collect();
        by_start.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        LineFinder { by_start }
    }

    fn line_at(&self, t: f64) -> Option<u64> {
        let after = self
            .by_start
            .partition_point(|(start, _)| *start <= t + 1e-6);
        after.checked_sub(1).map(|i| self.by_start[i].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(hex(&bytes), "0001abff");
        assert_eq!(unhex("0001abff"), Some(bytes.to_vec()));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
    }

    #[test]
    fn event_keys_sort_by_time() {
        assert!(event_suffix(1.5, b"b") < event_suffix(2.0, b"a"));
        assert_eq!(event_suffix(1.5, b"a"), event_suffix(1.5, b"a"));
        assert_ne!(event_suffix(1.5, b"a"), event_suffix(1.5, b"b"));
    }
}
