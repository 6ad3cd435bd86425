//! `agent-client`: the agent's side of live assist.
//!
//! This build has the headless mode: `--headless --transcript call.jsonl` plays a transcript
//! through the live WebSocket path (the test driver for the server) and prints every event as
//! a JSON line, exactly as `assist-server replay` prints them. Audio capture, local Vosk
//! transcription and the overlay window come with the overlay work (see the README).

mod link;
mod transcript;

use anyhow::{bail, Context, Result};
use assist_protocol::{Channel, ServerMessage};
use clap::Parser;
use link::{Incoming, LinkConfig, Outgoing};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Parser, Debug)]
#[command(
    name = "agent-client",
    version,
    about = "Live agent assist for the agent's desktop"
)]
struct Args {
    /// The assist server's WebSocket address.
    #[arg(long, env = "ASSIST_SERVER", default_value = "ws://127.0.0.1:7700/ws")]
    server: String,
    #[arg(long, env = "ASSIST_AGENT_ID", default_value = "agent-demo")]
    agent_id: String,
    #[arg(long, env = "ASSIST_TOKEN", default_value = "")]
    token: String,
    /// Call id; a new one is made when not given.
    #[arg(long)]
    call_id: Option<String>,
    /// zh or en; guessed from the transcript when not given.
    #[arg(long)]
    language: Option<String>,
    /// Chat instead of voice.
    #[arg(long)]
    chat: bool,
    /// No window: print events as JSON lines on stdout.
    #[arg(long)]
    headless: bool,
    /// Send this transcript (one {"t","speaker","text"} per line) instead of live audio.
    #[arg(long)]
    transcript: Option<PathBuf>,
    /// Pace the transcript by its timestamps (divided by --speed) instead of as fast as possible.
    #[arg(long)]
    realtime: bool,
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Human-readable output instead of JSON lines.
    #[arg(long)]
    pretty: bool,
    /// Give up after this many seconds without a connection to the server.
    #[arg(long, default_value_t = 60)]
    give_up_after: u64,
}

fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ASSIST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(args) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    let Some(path) = args.transcript.clone() else {
        bail!("this build plays transcripts only: pass --headless --transcript FILE.jsonl (audio capture and the overlay window are not built yet)");
    };
    if !args.headless {
        eprintln!("note: the overlay window is not built yet; running headless");
    }
    let transcript = transcript::load(&path)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(play(args, transcript))
}

async fn play(args: Args, transcript: transcript::Transcript) -> Result<()> {
    let language = args
        .language
        .clone()
        .unwrap_or_else(|| transcript.guess_language().to_string());
    let call_id = args.call_id.clone().unwrap_or_else(new_call_id);
    let config = LinkConfig {
        url: args.server.clone(),
        agent_id: args.agent_id.clone(),
        token: args.token.clone(),
        call_id,
        language,
        channel: if args.chat {
            Channel::Chat
        } else {
            Channel::Voice
        },
        outbox_limit: 10_000,
        give_up_after: Some(Duration::from_secs(args.give_up_after)),
    };
    let (out_tx, out_rx) = mpsc::channel(256);
    let (in_tx, mut in_rx) = mpsc::channel(256);
    let link = tokio::spawn(link::run(config, out_rx, in_tx));

    let realtime = args.realtime;
    let speed = if args.speed > 0.0 { args.speed } else { 1.0 };
    let producer = tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        let mut last_t = 0.0f64;
        for (seq, line) in transcript.lines.into_iter().enumerate() {
            if realtime {
                // Tick the call clock every second of silence so timers fire live.
                let mut clock = last_t.ceil();
                while clock < line.t {
                    tokio::time::sleep_until(start + Duration::from_secs_f64(clock / speed)).await;
                    if clock > last_t && out_tx.send(Outgoing::Tick(clock)).await.is_err() {
                        return;
                    }
                    clock += 1.0;
                }
                tokio::time::sleep_until(start + Duration::from_secs_f64(line.t / speed)).await;
                last_t = line.end.unwrap_or(line.t);
            }
            if out_tx
                .send(Outgoing::Utterance(line.into_utterance(seq as u64 + 1)))
                .await
                .is_err()
            {
                return;
            }
        }
        let _ = out_tx.send(Outgoing::End(transcript.end)).await;
    });

    let mut stdout = std::io::stdout().lock();
    let mut failed = None;
    while let Some(incoming) = in_rx.recv().await {
        match incoming {
            Incoming::Message(message) => {
                if let ServerMessage::PackUpdated { pack_version } = &message {
                    eprintln!("pack updated to {pack_version}");
                    continue;
                }
                if let Some(event) = message.into_event() {
                    if args.pretty {
                        writeln!(stdout, "{}", transcript::pretty(&event))?;
                    } else {
                        serde_json::to_writer(&mut stdout, &event)?;
                        writeln!(stdout)?;
                    }
                    stdout.flush()?;
                }
            }
            Incoming::Connected {
                last_seq,
                pack_version,
            } => {
                tracing::info!(last_seq, %pack_version, "connected");
            }
            Incoming::Disconnected { reason, retry_in } => {
                eprintln!("disconnected: {reason}; retrying in {retry_in:?} (nothing is lost)");
            }
            Incoming::ServerError { code, message } => {
                eprintln!("server: {code:?}: {message}");
            }
            Incoming::Finished => break,
            Incoming::Failed(reason) => {
                failed = Some(reason);
                break;
            }
        }
    }
    producer.abort();
    let _ = link.await;
    match failed {
        Some(reason) => bail!(reason),
        None => Ok(()),
    }
}

fn new_call_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("call-{}-{}", now.as_secs(), now.subsec_nanos() % 100_000)
}
