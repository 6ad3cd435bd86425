//! Helpers shared by the store tests: opening stores in temp dirs, building engine events, and a
//! deterministic generator of calls whose figures the tests recompute independently.

#![allow(dead_code)]

use assist_protocol::{
    Alert, Card, CardAction, CardKind, Channel, Emotion, EmotionLabel, Event, RuleHits, Severity,
    Speaker, Summary, Tier,
};
use assist_store::{
    CallMeta, CallSource, CallStatus, CallStore, Durability, FinishedCall, PasswordCost, SledStore,
    StoreError, StoreOptions, StoredLine, UnixMs,
};
use std::path::Path;

/// 2024-03-04 00:00:00 UTC, a Monday.
pub const T0: UnixMs = 1_709_510_400_000;
pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 24 * HOUR;

pub fn options() -> StoreOptions {
    StoreOptions {
        password_cost: PasswordCost::Fast,
        ..StoreOptions::default()
    }
}

/// Options for bulk-loading generated calls: no flush per write.
pub fn bulk_options() -> StoreOptions {
    StoreOptions {
        durability: Durability::Periodic,
        ..options()
    }
}

/// Opens the store in `dir`, waiting for a store of it just dropped to let go: sled's flusher
/// thread holds the directory's lock until its next wake-up (up to 500 ms after the drop).
pub fn open(dir: &Path) -> SledStore {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match SledStore::open_with(dir, options()) {
            Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            result => return result.expect("store opens"),
        }
    }
}

/// sled itself on a store's directory (to look under the store or change it as a crash or an
/// older build would), waiting like [`open`] for a dropped store to let go.
pub fn raw_sled(dir: &Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match sled::open(dir) {
            Err(sled::Error::Io(e))
                if e.to_string().contains("lock") && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            result => return result.expect("raw sled"),
        }
    }
}

pub fn temp_store() -> (tempfile::TempDir, SledStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    (dir, store)
}

pub fn meta(call_id: &str, agent: &str, team: Option<&str>, started_at: UnixMs) -> CallMeta {
    CallMeta {
        call_id: call_id.to_string(),
        agent_id: agent.to_string(),
        team: team.map(str::to_string),
        channel: Channel::Voice,
        language: "zh".to_string(),
        source: CallSource::Live,
        started_at,
        ended_at: None,
        status: CallStatus::InProgress,
    }
}

pub fn line(seq: u64, speaker: Speaker, text: &str, start: f64) -> StoredLine {
    StoredLine {
        seq,
        speaker,
        text: text.to_string(),
        start,
        end: Some(start + 2.0),
    }
}

pub fn alert(t: f64, rule: &str, category: &str) -> Event {
    Event::Alert(Alert {
        t,
        rule: rule.to_string(),
        category: category.to_string(),
        severity: Severity::Serious,
        speaker: Speaker::Agent,
        text: format!("utterance at {t}"),
        message: format!("{rule} fired"),
    })
}

pub fn emotion(t: f64, label: EmotionLabel, escalating: bool) -> Event {
    let score = match label {
        EmotionLabel::Negative => -0.6,
        EmotionLabel::Neutral => 0.0,
        EmotionLabel::Positive => 0.6,
    };
    Event::Emotion(Emotion {
        t,
        speaker: Speaker::Customer,
        label,
        score,
        escalating,
    })
}

pub fn card(t: f64, id: &str, kind: CardKind) -> Event {
    Event::Card(Card {
        t,
        kind,
        id: id.to_string(),
        title: format!("title of {id}"),
        body: format!("body of {id}"),
        tier: (kind == CardKind::Script).then_some(Tier::Basic),
        highlights: Vec::new(),
    })
}

pub fn summary(score: u32, hits: &[(&str, &str, u32)], intents: &[&str]) -> Summary {
    Summary {
        score,
        passed: score >= 60,
        hits: hits
            .iter()
            .map(|(rule, category, count)| RuleHits {
                rule: rule.to_string(),
                category: category.to_string(),
                severity: Severity::Serious,
                count: *count,
            })
            .collect(),
        utterances: 4,
        duration: 60.0,
        customer_emotion: None,
        cards_shown: 0,
        intents: intents.iter().map(|s| s.to_string()).collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// A deterministic generator of calls

/// A tiny xorshift generator: deterministic, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

pub const AGENTS: [(&str, &str); 6] = [
    ("ann", "east"),
    ("bob", "east"),
    ("cai", "west"),
    ("dan", "west"),
    ("eve", "north"),
    ("fay", "north"),
];

/// (rule, category)
pub const RULES: [(&str, &str); 5] = [
    ("no_guarantee", "misleading_promise"),
    ("no_abuse", "abuse"),
    ("angry_customer", "complaint_risk"),
    ("say_disclosure", "required_disclosure"),
    ("refund_delay", "complaint_risk"),
];

pub const SCRIPTS: [&str; 3] = ["soothe", "refund_steps", "upsell"];
pub const INTENTS: [&str; 4] = ["refund", "delivery", "invoice", "cancel"];

/// Everything about one generated call, in plain values the tests compute expectations from.
#[derive(Debug, Clone)]
pub struct GenCall {
    pub call_id: String,
    pub agent: &'static str,
    pub team: &'static str,
    pub channel: Channel,
    pub started_at: UnixMs,
    /// `None`: still in progress.
    pub ended_at: Option<UnixMs>,
    pub lines: u64,
    pub alerts: Vec<(f64, &'static str, &'static str)>,
    pub emotions: Vec<(f64, EmotionLabel, bool)>,
    /// (t, script id, reaction)
    pub scripts: Vec<(f64, &'static str, Option<CardAction>)>,
    pub knowledge_cards: u32,
    pub score: u32,
    pub intents: Vec<&'static str>,
}

/// `n` calls over `days` days from [`T0`]; about one in twenty is left in progress.
pub fn generate(n: usize, days: i64, seed: u64) -> Vec<GenCall> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let (agent, team) = *rng.pick(&AGENTS);
            let started_at = T0 + rng.below((days * DAY) as u64) as i64;
            let ended = rng.below(20) != 0;
            let lines = 2 + rng.below(6);
            let alerts = (0..rng.below(4))
                .map(|k| {
                    let (rule, category) = *rng.pick(&RULES);
                    (k as f64 * 2.0 + 0.5, rule, category)
                })
                .collect();
            let labels = [
                EmotionLabel::Negative,
                EmotionLabel::Neutral,
                EmotionLabel::Positive,
            ];
            let emotions = (0..rng.below(3))
                .map(|k| (k as f64 * 3.0 + 1.0, *rng.pick(&labels), rng.below(5) == 0))
                .collect();
            let mut scripts = Vec::new();
            for (k, script) in SCRIPTS.iter().enumerate() {
                if rng.below(2) == 0 {
                    let reaction = match rng.below(3) {
                        0 => Some(CardAction::Used),
                        1 => Some(CardAction::Dismissed),
                        _ => None,
                    };
                    scripts.push((k as f64 + 4.0, *script, reaction));
                }
            }
            let intents = INTENTS
                .iter()
                .copied()
                .filter(|_| rng.below(3) == 0)
                .collect();
            GenCall {
                call_id: format!("call-{i:06}"),
                agent,
                team,
                channel: if rng.below(4) == 0 {
                    Channel::Chat
                } else {
                    Channel::Voice
                },
                started_at,
                ended_at: ended.then(|| started_at + 60_000 + rng.below(600_000) as i64),
                lines,
                alerts,
                emotions,
                scripts,
                knowledge_cards: rng.below(3) as u32,
                score: rng.below(101) as u32,
                intents,
            }
        })
        .collect()
}

/// Writes a generated call through the store's API, the way the live path does.
pub fn write_call(store: &dyn CallStore, call: &GenCall) {
    let mut meta = meta(&call.call_id, call.agent, Some(call.team), call.started_at);
    meta.channel = call.channel;
    store.begin_call(&meta).expect("begin");
    for seq in 1..=call.lines {
        let speaker = if seq.is_multiple_of(2) {
            Speaker::Customer
        } else {
            Speaker::Agent
        };
        store
            .append_line(
                &call.call_id,
                &line(seq, speaker, "hello there", seq as f64 * 2.0),
            )
            .expect("line");
    }
    let mut events = Vec::new();
    for (t, rule, category) in &call.alerts {
        events.push(alert(*t, rule, category));
    }
    for (t, label, escalating) in &call.emotions {
        events.push(emotion(*t, *label, *escalating));
    }
    for (t, script, _) in &call.scripts {
        events.push(card(*t, script, CardKind::Script));
    }
    for k in 0..call.knowledge_cards {
        events.push(card(
            10.0 + f64::from(k),
            &format!("kb-{k}"),
            CardKind::Knowledge,
        ));
    }
    store.append_events(&call.call_id, &events).expect("events");
    for (_, script, reaction) in &call.scripts {
        if let Some(action) = reaction {
            store
                .record_card_action(&call.call_id, script, *action)
                .expect("card action");
        }
    }
    if let Some(ended_at) = call.ended_at {
        let intents: Vec<&str> = call.intents.clone();
        store
            .end_call(&call.call_id, &summary(call.score, &[], &intents), ended_at)
            .expect("end");
    }
}

// ---------------------------------------------------------------------------------------------
// Whole finished calls (the bulk path) and the incremental sequence they must equal

/// `n` finished conversations as batch QC hands them over, with what makes the bulk path easy
/// to get wrong: a seq given twice (the first line counts), the same event twice, an event of
/// the summary among the events, phone numbers to mask, script and knowledge cards, calls with
/// no events at all, several calls of one agent, start times out of order.
pub fn generate_finished(n: usize, seed: u64) -> Vec<FinishedCall> {
    let mut rng = Rng::new(seed);
    let labels = [
        EmotionLabel::Negative,
        EmotionLabel::Neutral,
        EmotionLabel::Positive,
    ];
    (0..n)
        .map(|i| {
            let (agent, team) = *rng.pick(&AGENTS);
            let started_at = T0 + rng.below((30 * DAY) as u64) as i64;
            let mut meta = meta(
                &format!("qc:{seed:x}:conv-{i:05}"),
                agent,
                Some(team),
                started_at,
            );
            meta.channel = if rng.below(3) == 0 {
                Channel::Voice
            } else {
                Channel::Chat
            };
            meta.language = (if rng.below(4) == 0 { "en" } else { "zh" }).to_string();
            meta.source = CallSource::Batch {
                path: format!("chats/{seed}.jsonl"),
            };
            let turns = 1 + rng.below(24);
            let mut lines = Vec::new();
            let mut events = Vec::new();
            for seq in 1..=turns {
                let speaker = if seq % 2 == 1 {
                    Speaker::Agent
                } else {
                    Speaker::Customer
                };
                let t = seq as f64 * 4.0;
                let text = match rng.below(4) {
                    0 => format!("我的电话是1380013{:04}，请回电", rng.below(10_000)),
                    1 => "您好，请问有什么可以帮您".to_string(),
                    2 => format!("line {seq} of conversation {i}"),
                    _ => "退款太慢了，我要投诉".to_string(),
                };
                lines.push(line(seq, speaker, &text, t));
                if speaker == Speaker::Customer {
                    let label = *rng.pick(&labels);
                    events.push(emotion(t, label, rng.below(6) == 0));
                }
                if rng.below(5) == 0 {
                    let (rule, category) = *rng.pick(&RULES);
                    let mut event = alert(t, rule, category);
                    if let Event::Alert(a) = &mut event {
                        a.text = format!("call me on 1390000{:04}", rng.below(10_000));
                    }
                    events.push(event);
                }
                if rng.below(8) == 0 {
                    events.push(card(t, rng.pick::<&str>(&SCRIPTS), CardKind::Script));
                }
                if rng.below(10) == 0 {
                    events.push(card(
                        t,
                        &format!("kb-{}", rng.below(3)),
                        CardKind::Knowledge,
                    ));
                }
            }
            if rng.below(4) == 0 && !lines.is_empty() {
                // A line sent twice with another text: the first one stays.
                let mut again = lines[0].clone();
                again.text = "a later copy of line 1".to_string();
                lines.push(again);
            }
            if rng.below(4) == 0 && !events.is_empty() {
                let again = events[rng.below(events.len() as u64) as usize].clone();
                events.push(again);
            }
            if rng.below(10) == 0 {
                events.clear();
            }
            let intents: Vec<&str> = INTENTS
                .iter()
                .copied()
                .filter(|_| rng.below(3) == 0)
                .collect();
            let end = summary(rng.below(101) as u32, &[], &intents);
            if rng.below(5) == 0 {
                // A summary among the events (the live path's append_events takes one).
                events.push(Event::Summary(summary(7, &[], &["stale"])));
            }
            FinishedCall {
                meta,
                lines,
                events,
                summary: end,
                ended_at: started_at + 1_000 + rng.below(900_000) as i64,
                replace: false,
            }
        })
        .collect()
}

/// Writes a finished call the way a live call is written: begin, a line at a time, the
/// events, the end.
pub fn write_incrementally(store: &dyn CallStore, call: &FinishedCall) {
    let id = &call.meta.call_id;
    store.begin_call(&call.meta).expect("begin");
    for line in &call.lines {
        store.append_line(id, line).expect("line");
    }
    store.append_events(id, &call.events).expect("events");
    store
        .end_call(id, &call.summary, call.ended_at)
        .expect("end");
}
