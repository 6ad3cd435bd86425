//! Store benchmark: 100,000 stored calls plus one one-hour call, then the console's three hot
//! reads (the call page, the filtered call list, a report) and the live path's per-utterance
//! write. Prints p50/p99 per operation. Then batch QC's write alone: finished 20-turn chats
//! stored line by line and stored whole (`store_finished_calls`, 64 per batch).
//!
//! ```sh
//! cargo bench -p assist-store --bench store
//! ASSIST_BENCH_CALLS=20000 ASSIST_BENCH_DIR=/var/tmp/store-bench cargo bench -p assist-store --bench store
//! ASSIST_BENCH_FINISHED=50000 cargo bench -p assist-store --bench store   # [20000]
//! ```
//!
//! Targets (issue): call page with a one-hour transcript < 100 ms; filtered list over 100,000
//! calls < 200 ms; report over 100,000 calls < 500 ms.

use assist_protocol::{
    Alert, Card, CardAction, CardKind, Channel, Emotion, EmotionLabel, Event, RuleHits, Severity,
    Speaker, Summary, Tier,
};
use assist_store::{
    CallFilter, CallMeta, CallSource, CallStatus, CallStore, Durability, FinishedCall, GroupBy,
    Page, PasswordCost, ReportQuery, SledStore, StoreOptions, StoredLine,
};
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

/// 2024-01-01 00:00 UTC.
const T0: i64 = 1_704_067_200_000;
const DAY: i64 = 86_400_000;
const DAYS: i64 = 90;
const AGENTS: u64 = 1_000;
const TEAMS: u64 = 20;

const RULES: [(&str, &str); 8] = [
    ("no_guarantee", "misleading_promise"),
    ("no_abuse", "abuse"),
    ("angry_customer", "complaint_risk"),
    ("refund_delay", "complaint_risk"),
    ("say_disclosure", "required_disclosure"),
    ("repeat_q", "repeat_question"),
    ("slow_reply", "response_timeout"),
    ("no_greeting", "greeting"),
];
const SCRIPTS: [&str; 6] = [
    "soothe",
    "refund_steps",
    "upsell",
    "apology",
    "escalate",
    "close",
];
const INTENTS: [&str; 6] = [
    "refund",
    "delivery",
    "invoice",
    "cancel",
    "complaint",
    "address",
];

fn main() {
    // `cargo test --all-targets` runs bench binaries without `--bench`: skip, as the
    // workspace's other benchmarks do.
    if !std::env::args().any(|a| a == "--bench") {
        println!("benchmark skipped (run it with `cargo bench -p assist-store --bench store`)");
        return;
    }
    let calls: usize = std::env::var("ASSIST_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let holder = tempfile::Builder::new()
        .prefix("assist-store-bench")
        .tempdir_in(std::env::var("ASSIST_BENCH_DIR").unwrap_or_else(|_| "/tmp".into()))
        .expect("bench dir");
    let dir = holder.path().join("store");
    let bulk = StoreOptions {
        durability: Durability::Periodic,
        password_cost: PasswordCost::Fast,
        cache_capacity: None,
    };

    println!(
        "assist-store bench: {calls} calls + one one-hour call, data in {}",
        dir.display()
    );
    println!("load average before: {}", load_average());
    let store = SledStore::open_with(&dir, bulk.clone()).expect("open");
    let started = Instant::now();
    let mut rng = Rng(0x5EED);
    let mut writes = histogram();
    for i in 0..calls {
        let t = Instant::now();
        write_generated_call(&store, &mut rng, i);
        writes.saturating_record(micros(t.elapsed()));
    }
    write_long_call(&store);
    store.flush().expect("flush");
    let load = started.elapsed();
    println!(
        "load: {:.1} s ({:.0} calls/s); one generated call (~7 lines, ~8 events, end): p50 {} us, p99 {} us",
        load.as_secs_f64(),
        calls as f64 / load.as_secs_f64(),
        writes.value_at_quantile(0.5),
        writes.value_at_quantile(0.99)
    );
    drop(store);
    println!(
        "data dir size: {:.1} MiB",
        dir_size(&dir) as f64 / 1_048_576.0
    );

    let t = Instant::now();
    let store = SledStore::open_with(&dir, bulk).expect("reopen");
    println!(
        "reopen (rows loaded into memory): {:.0} ms; process resident memory after reopen: {}",
        t.elapsed().as_secs_f64() * 1000.0,
        resident_memory()
    );

    println!();
    println!(
        "{:<58} {:>6} {:>10} {:>10} {:>8}",
        "operation", "runs", "p50 ms", "p99 ms", "result"
    );
    let record = store
        .get_call("long-call")
        .expect("read")
        .expect("the long call exists");
    let summary = format!("{} lines", record.lines.len());
    bench(
        "get_call, one-hour call (1,500 lines, ~1,040 events)",
        100,
        &summary,
        || {
            store
                .get_call("long-call")
                .expect("read")
                .map(|r| r.lines.len())
        },
    );

    let week = CallFilter {
        from: Some(T0 + 30 * DAY),
        to: Some(T0 + 37 * DAY),
        ..Default::default()
    };
    let filters: Vec<(&str, CallFilter, Page)> = vec![
        (
            "list_calls, no filter, first page",
            CallFilter::default(),
            Page::default(),
        ),
        (
            "list_calls, team + one week",
            CallFilter {
                team: Some("team-07".into()),
                ..week.clone()
            },
            Page::default(),
        ),
        (
            "list_calls, category + score 0..59",
            CallFilter {
                category: Some("misleading_promise".into()),
                max_score: Some(59),
                ..Default::default()
            },
            Page::default(),
        ),
        (
            "list_calls, agent",
            CallFilter {
                agent: Some("agent-0421".into()),
                ..Default::default()
            },
            Page::default(),
        ),
        (
            "list_calls, chat + negative emotion, page 50",
            CallFilter {
                channel: Some(Channel::Chat),
                emotion: Some(EmotionLabel::Negative),
                ..Default::default()
            },
            Page {
                offset: 2_500,
                limit: 50,
            },
        ),
        (
            "list_calls, filter matching nothing",
            CallFilter {
                agent: Some("nobody".into()),
                ..Default::default()
            },
            Page::default(),
        ),
    ];
    for (name, filter, page) in &filters {
        let total = store.list_calls(filter, *page).expect("list").total;
        bench(name, 100, &format!("{total} hits"), || {
            store.list_calls(filter, *page).expect("list").rows.len()
        });
    }

    for (name, group_by) in [
        ("report by team, all calls", GroupBy::Team),
        ("report by day, all calls", GroupBy::Day),
        ("report by category, all calls", GroupBy::Category),
        ("report by agent, all calls", GroupBy::Agent),
    ] {
        let query = ReportQuery::new(group_by);
        let groups = store.report(&query).expect("report").groups.len();
        bench(name, 30, &format!("{groups} groups"), || {
            store.report(&query).expect("report").totals.calls
        });
    }
    let mut week_by_team = ReportQuery::new(GroupBy::Team);
    week_by_team.filter = week;
    bench("report by team, one week", 30, "", || {
        store.report(&week_by_team).expect("report").totals.calls
    });
    drop(store);
    println!("load average after the reads: {}", load_average());

    // The live path: one utterance + its events, flushed before the ack.
    let live_dir = holder.path().join("live");
    let live = SledStore::open_with(
        &live_dir,
        StoreOptions {
            password_cost: PasswordCost::Fast,
            ..StoreOptions::default()
        },
    )
    .expect("open live");
    live.begin_call(&meta("live", 0, T0)).expect("begin");
    let mut seq = 0;
    bench(
        "append_turn, durable (flush per utterance)",
        500,
        "",
        || {
            seq += 1;
            let t = seq as f64 * 2.0;
            live.append_turn(
                "live",
                &line(seq, t, "您好请问有什么可以帮您的吗"),
                &[emotion(t, EmotionLabel::Neutral), alert(t, 0)],
            )
            .expect("turn")
        },
    );
    drop(live);

    let finished: usize = std::env::var("ASSIST_BENCH_FINISHED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    finished_calls(holder.path(), finished, &bulk_options());
}

fn bulk_options() -> StoreOptions {
    StoreOptions {
        durability: Durability::Periodic,
        password_cost: PasswordCost::Fast,
        cache_capacity: None,
    }
}

/// Batch QC's store work alone: `n` finished 20-turn chats (an emotion reading on every
/// customer line, an alert on one line in six), written into fresh stores line by line
/// (begin, 20 `append_line`, `append_events`, `end_call`) and whole (`store_finished_calls`,
/// 64 per batch), as `qc` opens the store (periodic flush) and flushed at the end.
fn finished_calls(dir: &std::path::Path, n: usize, options: &StoreOptions) {
    let mut rng = Rng(0xF1_2157);
    let calls: Vec<FinishedCall> = (0..n)
        .map(|i| {
            let started_at = T0 + i as i64 * 60_000;
            let mut meta = meta(&format!("qc:bench:{i:07}"), rng.below(AGENTS), started_at);
            meta.channel = Channel::Chat;
            let mut events = Vec::new();
            let lines = (1..=20u64)
                .map(|seq| {
                    let t = seq as f64 * 4.0;
                    if seq.is_multiple_of(2) {
                        events.push(emotion(t, EmotionLabel::Neutral));
                    }
                    if rng.below(6) == 0 {
                        events.push(alert(t, rng.below(RULES.len() as u64) as usize));
                    }
                    line(seq, t, "您好，请问订单号是多少？我帮您查一下物流")
                })
                .collect();
            FinishedCall {
                meta,
                lines,
                events,
                summary: summary(rng.below(101) as u32, vec!["delivery".into()]),
                ended_at: started_at + 80_000,
                replace: false,
            }
        })
        .collect();
    println!();
    println!(
        "batch QC's writes: {n} finished 20-turn chats (~{} events each), load {}",
        calls.iter().map(|c| c.events.len()).sum::<usize>() / n.max(1),
        load_average()
    );
    let line_by_line =
        SledStore::open_with(dir.join("finished-incremental"), options.clone()).expect("open");
    let t = Instant::now();
    for call in &calls {
        let id = &call.meta.call_id;
        line_by_line.begin_call(&call.meta).expect("begin");
        for l in &call.lines {
            line_by_line.append_line(id, l).expect("line");
        }
        line_by_line
            .append_events(id, &call.events)
            .expect("events");
        line_by_line
            .end_call(id, &call.summary, call.ended_at)
            .expect("end");
    }
    line_by_line.flush().expect("flush");
    let incremental = t.elapsed().as_secs_f64();
    drop(line_by_line);
    let whole = SledStore::open_with(dir.join("finished-whole"), options.clone()).expect("open");
    let t = Instant::now();
    for batch in calls.chunks(64) {
        whole.store_finished_calls(batch).expect("store");
    }
    whole.flush().expect("flush");
    let bulk = t.elapsed().as_secs_f64();
    drop(whole);
    for (name, secs, sub) in [
        (
            "line by line (begin, append_line x 20, append_events, end_call)",
            incremental,
            "finished-incremental",
        ),
        (
            "whole (store_finished_calls, 64 per batch)",
            bulk,
            "finished-whole",
        ),
    ] {
        println!(
            "  {name:<66}: {:>7.0} calls/s ({:>6.1} us per call), {:.1} MiB on disk",
            n as f64 / secs,
            secs * 1e6 / n as f64,
            dir_size(&dir.join(sub)) as f64 / 1_048_576.0
        );
    }
    println!("  whole / line by line: {:.1}x", incremental / bulk);
}

/// VmRSS of this process (the row cache plus sled's page cache).
fn resident_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l.trim_start_matches("VmRSS:").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Runs `op` `runs` times (after a few warm-up runs) and prints p50/p99.
fn bench<T>(name: &str, runs: usize, result: &str, mut op: impl FnMut() -> T) {
    for _ in 0..3.min(runs) {
        std::hint::black_box(op());
    }
    let mut h = histogram();
    for _ in 0..runs {
        let t = Instant::now();
        std::hint::black_box(op());
        h.saturating_record(micros(t.elapsed()));
    }
    println!(
        "{name:<58} {runs:>6} {:>10.2} {:>10.2} {result:>8}",
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0
    );
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// xorshift64: deterministic data without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x % n
    }
}

fn meta(call_id: &str, agent: u64, started_at: i64) -> CallMeta {
    CallMeta {
        call_id: call_id.to_string(),
        agent_id: format!("agent-{agent:04}"),
        team: Some(format!("team-{:02}", agent % TEAMS)),
        channel: if agent.is_multiple_of(4) {
            Channel::Chat
        } else {
            Channel::Voice
        },
        language: "zh".into(),
        source: CallSource::Live,
        started_at,
        ended_at: None,
        status: CallStatus::InProgress,
    }
}

fn line(seq: u64, t: f64, text: &str) -> StoredLine {
    StoredLine {
        seq,
        speaker: if seq.is_multiple_of(2) {
            Speaker::Customer
        } else {
            Speaker::Agent
        },
        text: text.to_string(),
        start: t,
        end: Some(t + 1.5),
    }
}

fn alert(t: f64, rule: usize) -> Event {
    let (rule, category) = RULES[rule % RULES.len()];
    Event::Alert(Alert {
        t,
        rule: rule.into(),
        category: category.into(),
        severity: Severity::Serious,
        speaker: Speaker::Agent,
        text: "我们保证您一定能拿到退款".into(),
        message: "misleading promise".into(),
    })
}

fn emotion(t: f64, label: EmotionLabel) -> Event {
    Event::Emotion(Emotion {
        t,
        speaker: Speaker::Customer,
        label,
        score: match label {
            EmotionLabel::Negative => -0.5,
            EmotionLabel::Neutral => 0.0,
            EmotionLabel::Positive => 0.5,
        },
        escalating: false,
    })
}

fn script(t: f64, id: &str) -> Event {
    Event::Card(Card {
        t,
        kind: CardKind::Script,
        id: id.into(),
        title: "安抚话术".into(),
        body: "非常理解您的心情，我马上为您核实退款进度。".into(),
        tier: Some(Tier::Basic),
        highlights: Vec::new(),
    })
}

fn summary(score: u32, intents: Vec<String>) -> Summary {
    Summary {
        score,
        passed: score >= 60,
        hits: vec![RuleHits {
            rule: "no_guarantee".into(),
            category: "misleading_promise".into(),
            severity: Severity::Serious,
            count: 1,
        }],
        utterances: 7,
        duration: 300.0,
        customer_emotion: Some(-0.1),
        cards_shown: 1,
        intents,
    }
}

/// One short call through the same API the live path uses.
fn write_generated_call(store: &SledStore, rng: &mut Rng, i: usize) {
    let call_id = format!("call-{i:07}");
    let agent = rng.below(AGENTS);
    let started_at = T0 + rng.below((DAYS * DAY) as u64) as i64;
    store
        .begin_call(&meta(&call_id, agent, started_at))
        .expect("begin");
    let labels = [
        EmotionLabel::Negative,
        EmotionLabel::Neutral,
        EmotionLabel::Positive,
    ];
    let shown = SCRIPTS[rng.below(SCRIPTS.len() as u64) as usize];
    for seq in 1..=7u64 {
        let t = seq as f64 * 20.0;
        let mut events = Vec::new();
        if seq.is_multiple_of(2) {
            events.push(emotion(t, labels[rng.below(3) as usize]));
        }
        if rng.below(6) == 0 {
            events.push(alert(t, rng.below(RULES.len() as u64) as usize));
        }
        if seq == 4 {
            events.push(script(t, shown));
        }
        store
            .append_turn(
                &call_id,
                &line(seq, t, "请问订单号是多少我帮您查一下"),
                &events,
            )
            .expect("turn");
    }
    if rng.below(3) == 0 {
        store
            .record_card_action(&call_id, shown, CardAction::Used)
            .expect("card used");
    }
    let intents = (0..rng.below(3))
        .map(|_| INTENTS[rng.below(INTENTS.len() as u64) as usize].to_string())
        .collect();
    let score = rng.below(101) as u32;
    store
        .end_call(&call_id, &summary(score, intents), started_at + 300_000)
        .expect("end");
}

/// One hour, 1,500 lines (2.4 s apart), an emotion reading on every customer line, an alert
/// every 15 lines and a card every 8.
fn write_long_call(store: &SledStore) {
    let started_at = T0 + 45 * DAY;
    store
        .begin_call(&meta("long-call", 1, started_at))
        .expect("begin");
    for seq in 1..=1_500u64 {
        let t = seq as f64 * 2.4;
        let mut events = Vec::new();
        if seq.is_multiple_of(2) {
            events.push(emotion(t, EmotionLabel::Neutral));
        }
        if seq.is_multiple_of(15) {
            events.push(alert(t, seq as usize));
        }
        if seq.is_multiple_of(8) {
            events.push(script(t, &format!("script-{seq}")));
        }
        store
            .append_turn(
                "long-call",
                &line(
                    seq,
                    t,
                    "这是一个比较长的句子用来模拟一小时通话里的一句话内容",
                ),
                &events,
            )
            .expect("turn");
    }
    store
        .end_call(
            "long-call",
            &summary(72, vec!["refund".into()]),
            started_at + 3_600_000,
        )
        .expect("end");
}
