//! One call: utterances in, events out.
//!
//! The live server, `replay` and batch QC all drive a [`CallSession`] the same way: partial and
//! final utterances in call order, optional clock ticks, then [`CallSession::end`]. For each
//! final utterance the session masks PII, runs the rules, reads the customer's emotion and picks
//! cards, in that order; everything it emits is already masked. Time only comes in with the
//! utterances, so the session is deterministic.

use crate::cards::{Candidate, CardContext};
use crate::emotion::{escalating, EmotionModel, Reading};
use crate::mask::mask;
use crate::pack::{Condition, Within};
use crate::questions::{features, is_question, similarity, Features};
use crate::rules::{LanguageRules, RuleScan};
use crate::text::{is_mostly_cjk, normalize_into};
use crate::{Engine, Knowledge};
use assist_protocol::{
    Alert, Card, CardKind, Channel, Emotion, EmotionLabel, Event, RuleHits, Severity, Speaker,
    Summary, Utterance,
};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;

/// How far (seconds) an utterance may start before the previous final one: two speakers
/// overlap, and their recognizers finish in either order.
pub const OVERLAP_TOLERANCE: f64 = 30.0;

/// Why an utterance was not taken. Nothing about the call changes when one is returned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SessionError {
    #[error("utterance seq {seq} was already accepted (last accepted: {last})")]
    DuplicateSeq { seq: u64, last: u64 },
    #[error("utterance seq {seq} starts at {start:.1}s, more than {OVERLAP_TOLERANCE}s before the previous one ({previous:.1}s)")]
    OutOfOrder { seq: u64, start: f64, previous: f64 },
    #[error("the utterance has no text")]
    EmptyText { seq: u64 },
    #[error("time must be a finite, non-negative number of seconds")]
    BadTime { seq: u64 },
    #[error("the call has already ended")]
    Ended,
}

/// Per-rule state for the stateful kinds.
#[derive(Debug, Clone, Default)]
struct RuleState {
    /// disclosure: armed by its trigger; bits of the items said since.
    armed: bool,
    said: u64,
    /// order: a `first` phrase was said.
    first_seen: bool,
    /// any kind that fires at most once per call.
    done: bool,
    /// required: turns of the watched speaker seen, and (last_turns) whether each matched.
    turns: usize,
    recent: VecDeque<bool>,
    /// negative_streak: negative customer turns in a row.
    streak: usize,
}

/// A customer question: when it was asked and what it said (masked).
#[derive(Debug, Clone)]
struct Asked {
    start: f64,
    end: f64,
    text: String,
}

#[derive(Debug, Clone)]
struct Question {
    asked: Asked,
    features: Features,
    intents: Vec<usize>,
}

pub struct CallSession {
    engine: Arc<Engine>,
    language: String,
    /// Whether final utterances get script and knowledge cards (see [`CallSession::without_cards`]).
    cards: bool,
    call: Call,
    /// Buffers every utterance of the call reuses: its normalized text and its rule scan.
    normalized: String,
    scans: Vec<(usize, RuleScan)>,
}

/// What a call has accumulated. Kept apart from the engine so that the session can lend both
/// at once: the methods take the engine (and the call language's rules) as arguments.
struct Call {
    emotion: Option<usize>,
    /// Per rule that keeps state, at its [`RuleSet::state_slot`](crate::rules::RuleSet::state_slot).
    states: Vec<RuleState>,
    last_seq: u64,
    last_start: f64,
    /// The latest time the call has reached (utterance ends, ticks).
    clock: f64,
    /// End of the latest utterance: dead air is measured from it.
    speech_end: f64,
    silence_reported_at: Option<f64>,
    first_start: Option<f64>,
    utterances: u32,
    hits: BTreeMap<usize, u32>,
    /// (speaker, rule) alerts already raised on a partial of the speaker's current utterance.
    /// Keyed by speaker, not seq: the two speakers' recognizers interleave, so a client only
    /// knows an utterance's final seq when it is final.
    partial_alerts: Vec<(Speaker, usize)>,
    customer_scores: Vec<f32>,
    questions: VecDeque<Question>,
    /// The customer's oldest unanswered question, and the response-time rules fired on it.
    pending: Option<(Asked, Vec<usize>)>,
    shown: HashSet<String>,
    cards_shown: u32,
    intents_seen: Vec<usize>,
    ended: bool,
    /// Rules that do not apply on this call's channel (sorted; empty for most calls).
    off_channel: Vec<usize>,
}

impl CallSession {
    pub fn new(engine: Arc<Engine>, language: &str) -> Self {
        let language = language.to_ascii_lowercase();
        let call = Call {
            emotion: engine.emotions.iter().position(|m| m.language == language),
            states: vec![RuleState::default(); engine.rules.stateful()],
            last_seq: 0,
            last_start: 0.0,
            clock: 0.0,
            speech_end: 0.0,
            silence_reported_at: None,
            first_start: None,
            utterances: 0,
            hits: BTreeMap::new(),
            partial_alerts: Vec::new(),
            customer_scores: Vec::new(),
            questions: VecDeque::new(),
            pending: None,
            shown: HashSet::new(),
            cards_shown: 0,
            intents_seen: Vec::new(),
            ended: false,
            off_channel: Vec::new(),
        };
        CallSession {
            engine,
            language,
            cards: true,
            call,
            normalized: String::new(),
            scans: Vec::new(),
        }
        .on_channel(Channel::Voice)
    }

    /// A session that picks no cards: no script candidates and no knowledge query, so no
    /// [`Event::Card`] and `cards_shown` 0 in the summary. For inspecting conversations after
    /// the fact (batch QC, re-scoring), where nobody is there to read a card. Everything else —
    /// alerts, emotion, intents, the score — is exactly what the same input gives with cards:
    /// cards are chosen after the rules and never feed back into them.
    pub fn without_cards(mut self) -> CallSession {
        self.cards = false;
        self
    }

    /// A session for a conversation on `channel`: rules scoped to other channels
    /// (`channels = ["voice"]` in the pack: dead air, a 10 s response time) never fire. A
    /// session is a voice call until told otherwise (as the protocol's `hello` is).
    pub fn on_channel(mut self, channel: Channel) -> CallSession {
        self.call.off_channel = self
            .engine
            .rules
            .rules
            .iter()
            .enumerate()
            .filter(|(_, rule)| !rule.channels.is_empty() && !rule.channels.contains(&channel))
            .map(|(index, _)| index)
            .collect();
        self
    }

    pub fn language(&self) -> &str {
        &self.language
    }

    /// The highest final seq accepted so far (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.call.last_seq
    }

    pub fn is_ended(&self) -> bool {
        self.call.ended
    }

    /// Takes one utterance, partial or final.
    pub fn utterance(
        &mut self,
        utt: &Utterance,
        knowledge: &dyn Knowledge,
    ) -> Result<Vec<Event>, SessionError> {
        let call = &self.call;
        if call.ended {
            return Err(SessionError::Ended);
        }
        let times_ok = utt.start.is_finite()
            && utt.start >= 0.0
            && utt.end.is_none_or(|e| e.is_finite() && e >= 0.0);
        if !times_ok {
            return Err(SessionError::BadTime { seq: utt.seq });
        }
        if utt.partial {
            // A partial of an utterance already finalized is stale: ignore it quietly.
            if utt.seq <= call.last_seq {
                return Ok(Vec::new());
            }
            return Ok(self.partial(utt));
        }
        if utt.seq <= call.last_seq {
            return Err(SessionError::DuplicateSeq {
                seq: utt.seq,
                last: call.last_seq,
            });
        }
        if utt.text.trim().is_empty() {
            return Err(SessionError::EmptyText { seq: utt.seq });
        }
        if utt.start + OVERLAP_TOLERANCE < call.last_start {
            return Err(SessionError::OutOfOrder {
                seq: utt.seq,
                start: utt.start,
                previous: call.last_start,
            });
        }
        Ok(self.final_utterance(utt, knowledge))
    }

    /// Rules on a partial result: raise a stateless rule's alert while the agent is still
    /// speaking; the speaker's next final result will not raise it again.
    fn partial(&mut self, utt: &Utterance) -> Vec<Event> {
        let CallSession {
            engine,
            language,
            call,
            normalized,
            scans,
            ..
        } = self;
        let rules = engine.rules.for_language(language);
        let masked = mask(&utt.text);
        normalize_into(&masked, normalized);
        engine.rules.scan_into(rules, normalized, scans);
        let mut events = Vec::new();
        for rule in engine.rules.instant_hits(scans, utt.speaker) {
            if !call.on(rule) {
                continue;
            }
            if !call.partial_alerts.contains(&(utt.speaker, rule)) {
                call.partial_alerts.push((utt.speaker, rule));
                events.push(alert(engine, rule, utt.start, utt.speaker, &masked));
            }
        }
        events
    }

    fn final_utterance(&mut self, utt: &Utterance, knowledge: &dyn Knowledge) -> Vec<Event> {
        let CallSession {
            engine,
            language,
            cards,
            call,
            normalized,
            scans,
        } = self;
        let engine: &Engine = engine;
        let rules = engine.rules.for_language(language);
        let masked = mask(&utt.text);
        normalize_into(&masked, normalized);
        let normalized = normalized.as_str();
        let end = utt.end.unwrap_or(utt.start).max(utt.start);
        let mut events = Vec::new();

        // Timers first: they fired before this utterance began.
        call.check_silence(engine, rules, utt.start, &masked, &mut events);
        call.check_response_time(engine, rules, utt.start, &mut events);
        if utt.speaker == Speaker::Agent {
            call.pending = None;
        }

        call.last_seq = utt.seq;
        call.last_start = call.last_start.max(utt.start);
        call.first_start = Some(call.first_start.map_or(utt.start, |s| s.min(utt.start)));
        call.clock = call.clock.max(end);
        call.speech_end = call.speech_end.max(end);
        call.utterances += 1;

        engine.rules.scan_into(rules, normalized, scans);
        let mut fired: Vec<usize> = Vec::new();
        for rule in engine.rules.instant_hits(scans, utt.speaker) {
            if !call.on(rule) {
                continue;
            }
            fired.push(rule);
            let raised_on_partial = call.partial_alerts.contains(&(utt.speaker, rule));
            call.count_hit(rule);
            if !raised_on_partial {
                events.push(alert(engine, rule, utt.start, utt.speaker, &masked));
            }
        }
        call.partial_alerts
            .retain(|(speaker, _)| *speaker != utt.speaker);
        for rule in call.stateful_hits(engine, rules, scans, utt.speaker) {
            if !call.on(rule) {
                continue;
            }
            fired.push(rule);
            call.count_hit(rule);
            events.push(alert(engine, rule, utt.start, utt.speaker, &masked));
        }

        let mut context = CardContext {
            language,
            from_customer: utt.speaker == Speaker::Customer,
            ..CardContext::default()
        };
        if utt.speaker == Speaker::Customer {
            let intents = engine.intents.detect(normalized);
            for &i in &intents {
                if !call.intents_seen.contains(&i) {
                    call.intents_seen.push(i);
                }
            }
            let reading = call.read_emotion(engine, normalized, utt);
            let now_escalating =
                escalating(&call.customer_scores, engine.meta.emotion.escalation_window);
            if let Some(reading) = reading {
                events.push(Event::Emotion(Emotion {
                    t: utt.start,
                    speaker: Speaker::Customer,
                    label: reading.label,
                    score: (reading.score * 100.0).round() / 100.0,
                    escalating: now_escalating,
                }));
                for rule in call.streak_hits(engine, rules, reading.label) {
                    if !call.on(rule) {
                        continue;
                    }
                    fired.push(rule);
                    call.count_hit(rule);
                    events.push(alert(engine, rule, utt.start, utt.speaker, &masked));
                }
                context.negative = reading.label == EmotionLabel::Negative;
                context.escalating = now_escalating;
            }
            if is_question(normalized) {
                let question = Question {
                    asked: Asked {
                        start: utt.start,
                        end,
                        text: masked.to_string(),
                    },
                    features: features(normalized),
                    intents: intents.clone(),
                };
                for rule in call.repeat_hits(engine, rules, &question) {
                    if !call.on(rule) {
                        continue;
                    }
                    fired.push(rule);
                    call.count_hit(rule);
                    events.push(alert(engine, rule, utt.start, utt.speaker, &masked));
                }
                call.remember_question(question);
            }
            if *cards {
                context.intents = intents
                    .iter()
                    .map(|&i| engine.intents.intents[i].id.as_str())
                    .collect();
            }
        }
        if *cards {
            context.categories = fired
                .iter()
                .map(|&r| engine.rules.rules[r].category.as_str())
                .collect();
            let cards = call.pick_cards(engine, normalized, &masked, utt, &context, knowledge);
            events.extend(cards);
        }
        events
    }

    /// A clock tick: lets response-time and silence rules fire while nobody speaks.
    pub fn tick(&mut self, t: f64) -> Vec<Event> {
        let call = &mut self.call;
        if call.ended || !t.is_finite() || t <= call.clock {
            return Vec::new();
        }
        call.clock = t;
        let engine: &Engine = &self.engine;
        let rules = engine.rules.for_language(&self.language);
        let mut events = Vec::new();
        call.check_silence(engine, rules, t, "", &mut events);
        call.check_response_time(engine, rules, t, &mut events);
        events
    }

    /// Ends the call: disclosures never made, greetings and closings missing, then the summary.
    /// Ending twice returns the summary again with no new alerts.
    pub fn end(&mut self, t: Option<f64>) -> Vec<Event> {
        let mut events = Vec::new();
        let call = &mut self.call;
        if !call.ended {
            call.ended = true;
            let at = t
                .filter(|t| t.is_finite())
                .unwrap_or(call.clock)
                .max(call.clock);
            call.clock = at;
            let engine: &Engine = &self.engine;
            for &index in &engine.rules.for_language(&self.language).at_end {
                if !call.on(index) {
                    continue;
                }
                let rule = &engine.rules.rules[index];
                let Some(slot) = engine.rules.state_slot(index) else {
                    continue;
                };
                let state = &call.states[slot];
                if state.done {
                    continue;
                }
                let missing = match &rule.condition {
                    Condition::Disclosure { require, .. } if state.armed => {
                        let items: Vec<&str> = require
                            .iter()
                            .enumerate()
                            .filter(|(k, _)| state.said & (1 << k) == 0)
                            .map(|(_, item)| item.item.as_str())
                            .collect();
                        (!items.is_empty()).then(|| items.join(", "))
                    }
                    Condition::Required {
                        within: Within::FirstTurns,
                        ..
                    } => Some(String::new()),
                    Condition::Required {
                        within: Within::LastTurns,
                        ..
                    } => (!state.recent.iter().any(|m| *m)).then(String::new),
                    _ => None,
                };
                if let Some(missing) = missing {
                    call.states[slot].done = true;
                    call.count_hit(index);
                    let mut alert = alert_struct(engine, index, at, rule_speaker(rule), "");
                    if !missing.is_empty() {
                        alert.message = format!("{} [{}]", alert.message, missing);
                    }
                    events.push(Event::Alert(alert));
                }
            }
        }
        events.push(Event::Summary(self.summary()));
        events
    }

    /// The summary as it stands (the final one once the call has ended).
    pub fn summary(&self) -> Summary {
        let call = &self.call;
        let rules = &self.engine.rules.rules;
        let scoring = &self.engine.meta.scoring;
        let mut fatal = false;
        let mut deducted: u32 = 0;
        let mut hits: Vec<RuleHits> = call
            .hits
            .iter()
            .map(|(&index, &count)| {
                let rule = &rules[index];
                fatal |= rule.severity == Severity::Fatal;
                deducted = deducted.saturating_add(scoring.weight(rule.severity) * count);
                RuleHits {
                    rule: rule.id.clone(),
                    category: rule.category.clone(),
                    severity: rule.severity,
                    count,
                }
            })
            .collect();
        hits.sort_by(|a, b| a.rule.cmp(&b.rule));
        let score = if fatal {
            0
        } else {
            100u32.saturating_sub(deducted)
        };
        let customer_emotion = (!call.customer_scores.is_empty()).then(|| {
            let mean = call.customer_scores.iter().sum::<f32>() / call.customer_scores.len() as f32;
            (mean * 100.0).round() / 100.0
        });
        Summary {
            score,
            passed: !fatal && score >= 60,
            hits,
            utterances: call.utterances,
            duration: ((call.clock - call.first_start.unwrap_or(0.0)).max(0.0) * 10.0).round()
                / 10.0,
            customer_emotion,
            cards_shown: call.cards_shown,
            intents: call
                .intents_seen
                .iter()
                .map(|&i| self.engine.intents.intents[i].id.clone())
                .collect(),
        }
    }
}

impl Call {
    /// The state of a rule of a kind that keeps one.
    fn state(&mut self, engine: &Engine, rule: usize) -> Option<&mut RuleState> {
        let slot = engine.rules.state_slot(rule)?;
        self.states.get_mut(slot)
    }

    fn count_hit(&mut self, rule: usize) {
        *self.hits.entry(rule).or_insert(0) += 1;
    }

    /// Whether rule `index` applies on this call's channel.
    fn on(&self, index: usize) -> bool {
        self.off_channel.is_empty() || self.off_channel.binary_search(&index).is_err()
    }

    fn check_silence(
        &mut self,
        engine: &Engine,
        rules: &LanguageRules,
        now: f64,
        masked: &str,
        events: &mut Vec<Event>,
    ) {
        if self.utterances == 0 || self.silence_reported_at == Some(self.speech_end) {
            return;
        }
        let gap = now - self.speech_end;
        let mut reported = false;
        for &index in &rules.silence {
            if !self.on(index) {
                continue;
            }
            let rule = &engine.rules.rules[index];
            let Condition::Silence { max_seconds } = rule.condition else {
                continue;
            };
            if gap > max_seconds {
                reported = true;
                self.count_hit(index);
                events.push(alert(
                    engine,
                    index,
                    self.speech_end,
                    rule_speaker(rule),
                    masked,
                ));
            }
        }
        if reported {
            self.silence_reported_at = Some(self.speech_end);
        }
    }

    fn check_response_time(
        &mut self,
        engine: &Engine,
        rules: &LanguageRules,
        now: f64,
        events: &mut Vec<Event>,
    ) {
        let Some((question, mut fired)) = self.pending.take() else {
            return;
        };
        for &index in &rules.response_time {
            if !self.on(index) {
                continue;
            }
            let Condition::ResponseTime { max_seconds } = engine.rules.rules[index].condition
            else {
                continue;
            };
            if now - question.end > max_seconds && !fired.contains(&index) {
                fired.push(index);
                self.count_hit(index);
                events.push(alert(
                    engine,
                    index,
                    question.start,
                    Speaker::Agent,
                    &question.text,
                ));
            }
        }
        self.pending = Some((question, fired));
    }

    /// Disclosure, order and required rules on this utterance.
    fn stateful_hits(
        &mut self,
        engine: &Engine,
        rules: &LanguageRules,
        scans: &[(usize, RuleScan)],
        speaker: Speaker,
    ) -> Vec<usize> {
        let mut fired = Vec::new();
        // Every required rule counts the turn, matched or not.
        for &index in &rules.required {
            let rule = &engine.rules.rules[index];
            if !rule.speaker.covers(speaker) {
                continue;
            }
            let Condition::Required { within, turns, .. } = rule.condition else {
                continue;
            };
            let matched = scans.iter().any(|(r, s)| *r == index && s.any);
            let Some(state) = self.state(engine, index) else {
                continue;
            };
            state.turns += 1;
            match within {
                Within::FirstTurns => {
                    if state.done {
                        continue;
                    }
                    if matched {
                        state.done = true;
                    } else if state.turns >= turns {
                        state.done = true;
                        fired.push(index);
                    }
                }
                Within::LastTurns => {
                    state.recent.push_back(matched);
                    while state.recent.len() > turns {
                        state.recent.pop_front();
                    }
                }
            }
        }
        for (index, scan) in scans {
            let rule = &engine.rules.rules[*index];
            let stateful = matches!(
                rule.condition,
                Condition::Disclosure { .. } | Condition::Order { .. }
            );
            if !stateful {
                continue;
            }
            let Some(state) = self.state(engine, *index) else {
                continue;
            };
            match &rule.condition {
                Condition::Disclosure {
                    trigger_speaker, ..
                } => {
                    if scan.trigger && trigger_speaker.covers(speaker) {
                        state.armed = true;
                    }
                    // Items count whenever they are said, before the trigger too.
                    if rule.speaker.covers(speaker) {
                        state.said |= scan.require;
                    }
                }
                Condition::Order { .. } if rule.speaker.covers(speaker) => {
                    if scan.first {
                        state.first_seen = true;
                    }
                    if scan.then && !state.first_seen && !state.done {
                        state.done = true;
                        fired.push(*index);
                    }
                }
                _ => {}
            }
        }
        fired
    }

    fn read_emotion(
        &mut self,
        engine: &Engine,
        normalized: &str,
        utt: &Utterance,
    ) -> Option<Reading> {
        let model: &EmotionModel = &engine.emotions[self.emotion?];
        let reading = model.read(normalized, utt.prosody.as_ref());
        self.customer_scores.push(reading.score);
        Some(reading)
    }

    fn streak_hits(
        &mut self,
        engine: &Engine,
        rules: &LanguageRules,
        label: EmotionLabel,
    ) -> Vec<usize> {
        let mut fired = Vec::new();
        for &index in &rules.negative_streak {
            let Condition::NegativeStreak { turns } = engine.rules.rules[index].condition else {
                continue;
            };
            let Some(state) = self.state(engine, index) else {
                continue;
            };
            if label == EmotionLabel::Negative {
                state.streak += 1;
                if state.streak == turns {
                    fired.push(index);
                }
            } else {
                state.streak = 0;
            }
        }
        fired
    }

    fn repeat_hits(
        &self,
        engine: &Engine,
        rules: &LanguageRules,
        question: &Question,
    ) -> Vec<usize> {
        let mut fired = Vec::new();
        for &index in &rules.repeat_question {
            let Condition::RepeatQuestion {
                similarity: min,
                window,
            } = engine.rules.rules[index].condition
            else {
                continue;
            };
            let repeated = self.questions.iter().rev().take(window).any(|earlier| {
                let share_intent = question.intents.iter().any(|i| earlier.intents.contains(i));
                similarity(&question.features, &earlier.features, share_intent) >= min
            });
            if repeated {
                fired.push(index);
            }
        }
        fired
    }

    fn remember_question(&mut self, question: Question) {
        if self.pending.is_none() {
            self.pending = Some((question.asked.clone(), Vec::new()));
        }
        self.questions.push_back(question);
        while self.questions.len() > 32 {
            self.questions.pop_front();
        }
    }

    fn pick_cards(
        &mut self,
        engine: &Engine,
        normalized: &str,
        masked: &str,
        utt: &Utterance,
        context: &CardContext,
        knowledge: &dyn Knowledge,
    ) -> Vec<Event> {
        let limits = &engine.meta.cards;
        let room = limits
            .max_per_call
            .saturating_sub(self.cards_shown as usize)
            .min(limits.max_per_utterance);
        if room == 0 {
            return Vec::new();
        }
        let mut cards: Vec<Card> = engine
            .scripts
            .candidates(normalized, context)
            .into_iter()
            .map(|Candidate { script, .. }| &engine.scripts.scripts[script])
            .filter(|s| !self.shown.contains(&s.id))
            .map(|s| Card {
                t: utt.start,
                kind: CardKind::Script,
                id: s.id.clone(),
                title: s.title.clone(),
                body: s.body.clone(),
                tier: Some(s.tier),
                highlights: Vec::new(),
            })
            .collect();
        // A good knowledge snippet always gets one of the slots: scripts say how to answer,
        // the snippet says what is true.
        let snippet = if context.from_customer && worth_a_search(normalized) {
            knowledge
                .best_passage(context.language, masked, limits.knowledge_min_score)
                .filter(|p| !self.shown.contains(&p.id))
        } else {
            None
        };
        if let Some(p) = snippet {
            cards.truncate(room - 1);
            cards.push(Card {
                t: utt.start,
                kind: CardKind::Knowledge,
                id: p.id,
                title: p.title,
                body: p.text,
                tier: None,
                highlights: p.highlights,
            });
        }
        cards
            .into_iter()
            .take(room)
            .map(|card| {
                self.shown.insert(card.id.clone());
                self.cards_shown += 1;
                Event::Card(card)
            })
            .collect()
    }
}

fn alert_struct(engine: &Engine, rule: usize, t: f64, speaker: Speaker, masked: &str) -> Alert {
    let rule = &engine.rules.rules[rule];
    Alert {
        t,
        rule: rule.id.clone(),
        category: rule.category.clone(),
        severity: rule.severity,
        speaker,
        text: masked.to_string(),
        message: rule.message.clone(),
    }
}

fn alert(engine: &Engine, rule: usize, t: f64, speaker: Speaker, masked: &str) -> Event {
    Event::Alert(alert_struct(engine, rule, t, speaker, masked))
}

/// Short acknowledgements ("好的", "ok thanks") are not worth a knowledge search.
fn worth_a_search(normalized: &str) -> bool {
    if is_mostly_cjk(normalized) {
        normalized.chars().filter(|c| c.is_alphabetic()).count() >= 4
    } else {
        normalized.split_whitespace().count() >= 3
    }
}

/// The speaker an alert about a call-level rule names: the one the rule watches (the agent
/// when it watches both).
fn rule_speaker(rule: &crate::pack::Rule) -> Speaker {
    match rule.speaker {
        crate::pack::Watch::Customer => Speaker::Customer,
        _ => Speaker::Agent,
    }
}
