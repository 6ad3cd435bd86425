//! How a [`CallRow`] is built from a call's data, and how a [`CallFilter`] matches one.
//!
//! The same small steps build a row incrementally while the call runs (one alert, one card at a
//! time) and recompute it from scratch (at the end of a call, when a store is reopened), so the
//! two can never disagree.

use crate::call::{CallMeta, ManualScore, VerdictKind};
use crate::query::{CallFilter, CallRow};
use assist_protocol::{Alert, CardAction, CardKind, Emotion, EmotionLabel, Summary};

/// Categories whose rules count as complaint reasons in reports.
pub const COMPLAINT_CATEGORIES: [&str; 2] = ["complaint_risk", "customer_escalation"];

impl CallRow {
    /// The row of a call that has just begun.
    pub(crate) fn new(meta: &CallMeta) -> CallRow {
        CallRow {
            call_id: meta.call_id.clone(),
            agent_id: meta.agent_id.clone(),
            team: meta.team.clone(),
            channel: meta.channel,
            language: meta.language.clone(),
            source: meta.source.clone(),
            status: meta.status,
            started_at: meta.started_at,
            ended_at: meta.ended_at,
            auto_score: None,
            manual_score: None,
            lines: 0,
            hits: Default::default(),
            rule_hits: Default::default(),
            verdicts: Default::default(),
            worst_emotion: None,
            emotions_seen: Vec::new(),
            escalated: false,
            scripts: Default::default(),
            knowledge_cards: 0,
            intents: Vec::new(),
            complaint_reasons: Vec::new(),
        }
    }

    pub(crate) fn add_alert(&mut self, alert: &Alert) {
        *self.hits.entry(alert.category.clone()).or_default() += 1;
        *self.rule_hits.entry(alert.rule.clone()).or_default() += 1;
        if COMPLAINT_CATEGORIES.contains(&alert.category.as_str()) {
            if let Err(at) = self.complaint_reasons.binary_search(&alert.rule) {
                self.complaint_reasons.insert(at, alert.rule.clone());
            }
        }
    }

    pub(crate) fn add_emotion(&mut self, emotion: &Emotion) {
        let rank = label_rank(emotion.label);
        if self.worst_emotion.is_none_or(|w| rank < label_rank(w)) {
            self.worst_emotion = Some(emotion.label);
        }
        if !self.emotions_seen.contains(&emotion.label) {
            self.emotions_seen.push(emotion.label);
            self.emotions_seen.sort_by_key(|l| label_rank(*l));
        }
        self.escalated |= emotion.escalating;
    }

    pub(crate) fn add_card(&mut self, card_id: &str, kind: CardKind, action: Option<CardAction>) {
        match kind {
            CardKind::Script => {
                let entry = self.scripts.entry(card_id.to_string()).or_default();
                entry.0 += 1;
                if action == Some(CardAction::Used) {
                    entry.1 = entry.1.saturating_add(1).min(entry.0);
                }
            }
            CardKind::Knowledge => self.knowledge_cards += 1,
        }
    }

    /// The agent reacted to a script card already counted in the row (`previous` = the reaction
    /// stored before this one).
    pub(crate) fn change_card_action(
        &mut self,
        card_id: &str,
        previous: Option<CardAction>,
        action: CardAction,
    ) {
        let Some(entry) = self.scripts.get_mut(card_id) else {
            return;
        };
        let was_used = previous == Some(CardAction::Used);
        let is_used = action == CardAction::Used;
        if is_used && !was_used {
            entry.1 = entry.1.saturating_add(1).min(entry.0);
        } else if was_used && !is_used {
            entry.1 = entry.1.saturating_sub(1);
        }
    }

    pub(crate) fn apply_summary(&mut self, summary: &Summary) {
        self.auto_score = Some(summary.score);
        self.intents = summary.intents.clone();
    }

    pub(crate) fn apply_manual_score(&mut self, manual: Option<&ManualScore>) {
        self.manual_score = manual.map(|m| m.score);
    }

    /// Adds (`delta` = 1) or removes (`delta` = -1) one verdict on an alert of `rule`.
    pub(crate) fn count_verdict(&mut self, rule: &str, kind: VerdictKind, delta: i32) {
        let entry = self.verdicts.entry(rule.to_string()).or_default();
        let slot = match kind {
            VerdictKind::Confirmed => &mut entry.0,
            VerdictKind::Overturned => &mut entry.1,
        };
        *slot = slot.saturating_add_signed(delta);
        if *entry == (0, 0) {
            self.verdicts.remove(rule);
        }
    }
}

/// Negative < neutral < positive.
pub(crate) fn label_rank(label: EmotionLabel) -> u8 {
    match label {
        EmotionLabel::Negative => 0,
        EmotionLabel::Neutral => 1,
        EmotionLabel::Positive => 2,
    }
}

impl CallFilter {
    /// Whether a call's row passes the filter.
    pub fn matches(&self, row: &CallRow) -> bool {
        if let Some(agent) = &self.agent {
            if &row.agent_id != agent {
                return false;
            }
        }
        if let Some(team) = &self.team {
            if row.team.as_ref() != Some(team) {
                return false;
            }
        }
        if self.from.is_some_and(|from| row.started_at < from) {
            return false;
        }
        if self.to.is_some_and(|to| row.started_at >= to) {
            return false;
        }
        if self.min_score.is_some() || self.max_score.is_some() {
            let Some(score) = row.score() else {
                return false;
            };
            if self.min_score.is_some_and(|min| score < min)
                || self.max_score.is_some_and(|max| score > max)
            {
                return false;
            }
        }
        if let Some(category) = &self.category {
            if !row.hits.contains_key(category) {
                return false;
            }
        }
        if let Some(rule) = &self.rule {
            if !row.rule_hits.contains_key(rule) {
                return false;
            }
        }
        if self.channel.is_some_and(|c| row.channel != c) {
            return false;
        }
        if let Some(label) = self.emotion {
            if !row.emotions_seen.contains(&label) {
                return false;
            }
        }
        if self.escalated.is_some_and(|e| row.escalated != e) {
            return false;
        }
        if self.source.is_some_and(|s| row.source.kind() != s) {
            return false;
        }
        if let Some(language) = &self.language {
            if &row.language != language {
                return false;
            }
        }
        if self.status.is_some_and(|s| row.status != s) {
            return false;
        }
        true
    }
}
