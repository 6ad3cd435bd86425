//! The engine's whole output, pinned: every sample call (`tests/calls`, `samples/`) and the
//! generated QC set, each driven four ways through a `CallSession` of the default pack, must
//! give exactly the events recorded in `tests/golden/engine_events.jsonl` — every alert with its
//! text and time, every emotion score, every card, every summary.
//!
//! The recording is the engine's output before a change; a change that is meant to be a pure
//! speed-up (or a refactoring) must leave it byte for byte the same. A change that is meant to
//! alter the output re-records it on purpose, and the diff of the file shows what moved:
//!
//! ```text
//! GOLDEN_RECORD=1 cargo test -p assist-server --test integration golden
//! ```

use crate::common::*;
use crate::qc::gen;
use assist_engine::{CallSession, Knowledge, NoKnowledge};
use assist_protocol::{Event, Prosody, Speaker, Utterance};
use assist_server::packs::load_pack;
use assist_server::qc::discover::discover;
use assist_server::qc::pipeline::read_file;
use assist_server::qc::transcript::ReadOptions;
use assist_server::qc::{guess_language, ReadItem, Turn};
use std::path::PathBuf;

fn golden_path() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/engine_events.jsonl")
}

/// A conversation to drive: its name, language and turns.
struct Case {
    name: String,
    language: String,
    turns: Vec<Turn>,
}

/// Every conversation of the sample files (read as `qc` reads them) and of the generated set.
fn cases() -> Vec<Case> {
    let root = repo_root();
    let (files, problems) = discover(&[calls_dir(), root.join("samples")]);
    assert!(problems.is_empty(), "{problems:?}");
    let mut out = Vec::new();
    for file in files {
        let shown = file
            .path
            .strip_prefix(&root)
            .unwrap_or(&file.path)
            .display()
            .to_string();
        read_file(&file, &ReadOptions::default(), &mut |item| {
            match item {
                ReadItem::Conversation(c) => out.push(Case {
                    name: format!("{shown}#{}", c.external_id),
                    language: c
                        .language
                        .clone()
                        .unwrap_or_else(|| guess_language(&c.turns).to_string()),
                    turns: c.turns,
                }),
                ReadItem::BadRow(p) | ReadItem::Failed(p) => panic!("{p}"),
                ReadItem::Progress(_) => {}
            }
            true
        })
        .expect("sample file readable");
    }
    for case in gen::cases(1) {
        let turns: Vec<Turn> = case
            .lines
            .iter()
            .map(|(t, speaker, text)| Turn {
                speaker: *speaker,
                text: text.clone(),
                start: *t,
                end: Some(t + 2.0),
                prosody: None,
                line: 0,
            })
            .collect();
        out.push(Case {
            name: format!("generated#{}", case.id),
            language: guess_language(&turns).to_string(),
            turns,
        });
    }
    out
}

fn utterance(seq: u64, turn: &Turn) -> Utterance {
    Utterance {
        seq,
        speaker: turn.speaker,
        partial: false,
        text: turn.text.clone(),
        start: turn.start,
        end: turn.end,
        prosody: turn.prosody,
    }
}

/// Finals in order, then the end of the call: what `replay` and batch QC do.
fn finals(mut session: CallSession, turns: &[Turn], knowledge: &dyn Knowledge) -> Vec<Event> {
    let mut events = Vec::new();
    for (i, turn) in turns.iter().enumerate() {
        events.extend(
            session
                .utterance(&utterance(i as u64 + 1, turn), knowledge)
                .unwrap_or_default(),
        );
    }
    events.extend(session.end(None));
    events
}

/// What a live call adds: a partial (the first half of the words) before each final, clock
/// ticks in the gaps, and the customer's voice getting louder and faster.
fn live(mut session: CallSession, turns: &[Turn], knowledge: &dyn Knowledge) -> Vec<Event> {
    let mut events = Vec::new();
    let mut previous_end = 0.0f64;
    for (i, turn) in turns.iter().enumerate() {
        let seq = i as u64 + 1;
        for t in [
            previous_end + 1.0,
            (previous_end + turn.start) / 2.0,
            turn.start,
        ] {
            events.extend(session.tick(t));
        }
        let chars: Vec<char> = turn.text.chars().collect();
        let head: String = chars[..chars.len() / 2].iter().collect();
        if !head.trim().is_empty() {
            let partial = Utterance {
                partial: true,
                text: head,
                ..utterance(seq, turn)
            };
            events.extend(session.utterance(&partial, knowledge).unwrap_or_default());
        }
        let mut final_ = utterance(seq, turn);
        if turn.speaker == Speaker::Customer {
            let lift = (i % 4) as f32 * 0.15;
            final_.prosody = Some(Prosody {
                rate: Some(0.9 + lift),
                pitch: Some(1.0 + lift),
                energy: (i % 3 != 0).then_some(1.1 + lift),
            });
        }
        events.extend(session.utterance(&final_, knowledge).unwrap_or_default());
        previous_end = turn.end.unwrap_or(turn.start);
    }
    events.extend(session.end(Some(previous_end + 45.0)));
    events
}

/// One line per (case, way of driving it): the events as JSON.
fn record_all() -> Vec<String> {
    let pack = load_pack(&default_pack()).expect("default pack loads");
    let engine = &pack.engine;
    let kb: &dyn Knowledge = pack.knowledge.as_ref();
    let mut lines = Vec::new();
    for case in cases() {
        let other = if case.language == "zh" { "en" } else { "zh" };
        let runs: [(&str, Vec<Event>); 4] = [
            (
                "cards",
                finals(engine.start_call(&case.language), &case.turns, kb),
            ),
            (
                "no_cards",
                finals(
                    engine.start_call(&case.language).without_cards(),
                    &case.turns,
                    &NoKnowledge,
                ),
            ),
            (
                "live",
                live(engine.start_call(&case.language), &case.turns, kb),
            ),
            (
                "other_language",
                live(engine.start_call(other), &case.turns, kb),
            ),
        ];
        for (way, events) in runs {
            let line = serde_json::json!({ "case": case.name, "way": way, "events": events });
            lines.push(line.to_string());
        }
    }
    lines
}

#[test]
fn every_sample_call_gives_exactly_the_recorded_events() {
    let now = record_all();
    assert!(now.len() > 100, "only {} runs", now.len());
    let path = golden_path();
    if std::env::var_os("GOLDEN_RECORD").is_some() {
        let mut text = now.join("\n");
        text.push('\n');
        std::fs::write(&path, text).expect("write the recording");
        eprintln!("recorded {} runs to {}", now.len(), path.display());
        return;
    }
    let recorded = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; record it with GOLDEN_RECORD=1 on the code whose output is the reference",
            path.display()
        )
    });
    let recorded: Vec<&str> = recorded.lines().collect();
    let mut differ = Vec::new();
    for (i, line) in now.iter().enumerate() {
        match recorded.get(i) {
            Some(old) if old == line => {}
            Some(old) => differ.push(format!("run {i}:\n  recorded {old}\n  now      {line}")),
            None => differ.push(format!("run {i} is new: {line}")),
        }
    }
    assert!(
        differ.is_empty() && now.len() == recorded.len(),
        "{} of {} runs differ from the recording ({} recorded):\n{}",
        differ.len(),
        now.len(),
        recorded.len(),
        differ
            .iter()
            .take(3)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    );
}
