//! `assist-server`: serve | replay | check-pack.

use anyhow::{Context, Result};
use assist_server::config::{FileConfig, LogFormat, ServeOverrides, ServeSettings};
use assist_server::live::{self, AppState, Auth};
use assist_server::packs::{load_pack, PackLoadError};
use assist_server::replay::{guess_language, replay};
use clap::{Parser, Subcommand};
use std::io::{BufReader, Cursor};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "assist-server",
    version,
    about = "Live agent assist: QC rules, customer emotion and cards"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve agents over WebSocket (ws://HOST:PORT/ws).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "ASSIST_LISTEN")]
        listen: Option<String>,
        /// Knowledge pack folder.
        #[arg(long, env = "ASSIST_PACK")]
        pack: Option<PathBuf>,
        /// TOML config file (flags and environment win over it).
        #[arg(long, env = "ASSIST_CONFIG")]
        config: Option<PathBuf>,
        /// AGENT=TOKEN, repeatable. With none, any token is accepted (development only).
        #[arg(
            long = "agent-token",
            env = "ASSIST_AGENT_TOKENS",
            value_delimiter = ','
        )]
        agent_tokens: Vec<String>,
        /// Log format: text or json.
        #[arg(long, env = "ASSIST_LOG_FORMAT")]
        log_format: Option<String>,
    },
    /// Play a transcript (one {"t","speaker","text"} object per line) through the engine and
    /// print one event per line, the summary last.
    Replay {
        file: PathBuf,
        /// Knowledge pack folder.
        #[arg(long, env = "ASSIST_PACK", default_value = "knowledge")]
        pack: PathBuf,
        /// zh or en; guessed from the text when not given.
        #[arg(long)]
        language: Option<String>,
    },
    /// Validate a knowledge pack; every problem is printed as FILE:LINE: problem.
    CheckPack {
        #[arg(default_value = "knowledge")]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            listen,
            pack,
            config,
            agent_tokens,
            log_format,
        } => serve(
            ServeOverrides {
                listen,
                pack,
                log_format,
                agent_tokens,
            },
            config,
        ),
        Command::Replay {
            file,
            pack,
            language,
        } => replay_file(&file, &pack, language.as_deref()),
        Command::CheckPack { dir } => check_pack(&dir),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ASSIST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn serve(overrides: ServeOverrides, config: Option<PathBuf>) -> Result<ExitCode> {
    let file = match &config {
        Some(path) => FileConfig::read(path)?,
        None => FileConfig::default(),
    };
    let settings = ServeSettings::resolve(overrides, file)?;
    init_logging(settings.log_format);
    let pack = load_pack(&settings.pack)
        .with_context(|| format!("loading the pack in {}", settings.pack.display()))?;
    tracing::info!(
        pack = %pack.engine.meta.name,
        version = %pack.engine.version(),
        rules = pack.engine.rules.rules.len(),
        scripts = pack.engine.scripts.scripts.len(),
        paragraphs = pack.knowledge.paragraphs(),
        "pack loaded"
    );
    let auth = Auth::new(settings.tokens.clone());
    if auth.is_open() {
        tracing::warn!("no agent tokens configured: any token is accepted (development mode)");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let state = AppState::new(pack, auth, settings.idle_call_ttl);
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("listening on {}", settings.listen))?;
        let address = listener.local_addr()?;
        tracing::info!(%address, "serving agents on ws://{address}/ws");
        // A line on stdout that scripts and tests wait for.
        println!("listening on {address}");
        live::spawn_reaper(state.clone());
        axum::serve(listener, live::router(state))
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("serving")?;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

fn replay_file(file: &Path, pack: &Path, language: Option<&str>) -> Result<ExitCode> {
    let transcript = std::fs::read_to_string(file)
        .with_context(|| format!("reading transcript {}", file.display()))?;
    let pack =
        load_pack(pack).with_context(|| format!("loading the pack in {}", pack.display()))?;
    let language = language.unwrap_or_else(|| guess_language(&transcript));
    let report = replay(
        &pack.engine,
        pack.knowledge.as_ref(),
        language,
        BufReader::new(Cursor::new(transcript)),
        std::io::stdout().lock(),
        std::io::stderr().lock(),
    )?;
    if report.rejected > 0 {
        eprintln!(
            "{} of {} lines could not be used (see above); the rest were replayed",
            report.rejected,
            report.rejected + report.utterances
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn check_pack(dir: &Path) -> Result<ExitCode> {
    match load_pack(dir) {
        Ok(pack) => {
            let e = &pack.engine;
            println!(
                "ok: pack `{}` {} — {} rules, {} scripts, {} intents, {} emotion lexicons, {} articles ({} paragraphs)",
                e.meta.name,
                e.version(),
                e.rules.rules.len(),
                e.scripts.scripts.len(),
                e.intents.intents.len(),
                e.emotions.len(),
                e.articles.len(),
                pack.knowledge.paragraphs()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(PackLoadError::Invalid(errors)) => {
            for e in &errors.0 {
                println!("{}/{}", dir.display(), e);
            }
            eprintln!("{} problem(s) in {}", errors.0.len(), dir.display());
            Ok(ExitCode::FAILURE)
        }
        Err(other) => Err(other.into()),
    }
}
