//! `assist-server`: serve | replay | qc | check-pack | user add.

use anyhow::{bail, Context, Result};
use assist_server::config::{FileConfig, LogFormat, ServeOverrides, ServeSettings};
use assist_server::live::{self, Auth};
use assist_server::packs::{load_pack, PackLoadError};
use assist_server::replay::{guess_language, replay};
use assist_server::setup::{self, open_store};
use assist_server::state::{now_ms, Settings};
use assist_store::{NewUser, Role};
use clap::{Parser, Subcommand};
use std::io::{BufRead, BufReader, Cursor};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// mimalloc: the engine, the store and serde allocate and free small buffers on every
/// utterance from several threads (BENCHMARKS.md section 5).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        /// Where the call store lives. Without one the store is a temporary folder deleted at
        /// exit (development only).
        #[arg(long, env = "ASSIST_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Ended calls older than this many days are purged (hourly); 0 keeps them forever.
        /// Default 365.
        #[arg(long, env = "ASSIST_RETENTION_DAYS")]
        retention_days: Option<u32>,
        /// How long a login token is valid, in seconds. Default 43200 (12 hours).
        #[arg(long, env = "ASSIST_TOKEN_TTL_SECS")]
        token_ttl_secs: Option<u64>,
        /// Seconds without traffic after which a call is ended by the server. Default 900.
        #[arg(long, env = "ASSIST_IDLE_CALL_SECS")]
        idle_call_secs: Option<u64>,
        /// The folder batch QC jobs read recordings and chat logs from (`POST
        /// /api/v1/qc/jobs`, docs/qc.md); without one the server runs no jobs.
        #[arg(long, env = "ASSIST_BATCH_DIR")]
        batch_dir: Option<PathBuf>,
        /// The Vosk model batch QC jobs transcribe recordings with.
        #[arg(long, env = "ASSIST_BATCH_MODEL")]
        batch_model: Option<PathBuf>,
    },
    /// Manage console users in the store (the server must not be running on the data dir).
    User {
        #[command(subcommand)]
        command: UserCommand,
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
    /// Inspect recordings, chat logs and transcripts with the live rules, into the call store
    /// (docs/qc.md); `--rescore` compares a candidate pack on stored conversations.
    Qc(assist_server::qc::cli::QcArgs),
    /// Validate a knowledge pack; every problem is printed as FILE:LINE: problem.
    CheckPack {
        #[arg(default_value = "knowledge")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; the password comes from ASSIST_USER_PASSWORD or the first line of stdin.
    Add {
        #[arg(long)]
        username: String,
        /// agent, lead, trainer or admin.
        #[arg(long)]
        role: String,
        #[arg(long)]
        team: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
        /// The store's folder (as given to `serve`).
        #[arg(long, env = "ASSIST_DATA_DIR")]
        data_dir: PathBuf,
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
            data_dir,
            retention_days,
            token_ttl_secs,
            idle_call_secs,
            batch_dir,
            batch_model,
        } => serve(
            ServeOverrides {
                listen,
                pack,
                log_format,
                agent_tokens,
                data_dir,
                retention_days,
                token_ttl_seconds: token_ttl_secs,
                idle_call_seconds: idle_call_secs,
                batch_dir,
                batch_model,
            },
            config,
        ),
        Command::User {
            command:
                UserCommand::Add {
                    username,
                    role,
                    team,
                    display_name,
                    data_dir,
                },
        } => add_user(&data_dir, username, &role, team, display_name),
        Command::Replay {
            file,
            pack,
            language,
        } => replay_file(&file, &pack, language.as_deref()),
        Command::CheckPack { dir } => check_pack(&dir),
        Command::Qc(args) => assist_server::qc::cli::qc(args),
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
    // Without a data dir: a temporary store, removed when this guard drops at exit.
    let (data_dir, _temporary) = match &settings.data_dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let temp = tempfile::Builder::new()
                .prefix("assist-data-")
                .tempdir()
                .context("creating a temporary data dir")?;
            tracing::warn!(
                dir = %temp.path().display(),
                "no --data-dir: calls go to a temporary store that is deleted at exit (development only)"
            );
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    let auth = Auth::new(settings.tokens.clone());
    if auth.is_open() {
        tracing::warn!("no static agent tokens configured: an agent hello with any token that is not another user's login token is accepted (development mode)");
    }
    let service = Settings {
        idle_call_ttl: settings.idle_call_ttl,
        token_ttl: settings.token_ttl,
        retention_days: settings.retention_days,
        batch_dir: settings.batch_dir.clone(),
        batch_model: settings.batch_model.clone(),
    };
    let (state, generated) = setup::service(
        &data_dir,
        &settings.pack,
        auth,
        service,
        std::env::var("ASSIST_ADMIN_PASSWORD").ok(),
    )?;
    if let Some(password) = generated {
        eprintln!(
            "\n  First start: created the console user `admin` with password\n\n      {password}\n\n  It is shown only this once. Log in at http://{}/ and change it.\n",
            settings.listen
        );
    }
    {
        let packs = state.packs.load();
        let served = packs.global();
        let engine = &served.loaded.engine;
        tracing::info!(
            pack = %engine.meta.name,
            version = %served.pack_version(),
            rules = engine.rules.rules.len(),
            scripts = engine.scripts.scripts.len(),
            paragraphs = served.loaded.knowledge.paragraphs(),
            data_dir = %data_dir.display(),
            "pack loaded"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("listening on {}", settings.listen))?;
        let address = listener.local_addr()?;
        tracing::info!(%address, "serving agents on ws://{address}/ws, the console on http://{address}/");
        // A line on stdout that scripts and tests wait for.
        println!("listening on {address}");
        live::spawn_reaper(state.clone());
        assist_server::web::admin::spawn_purge(state.clone());
        axum::serve(listener, live::router(Arc::clone(&state)))
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("serving")?;
        state.store.flush().context("flushing the store")?;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

fn add_user(
    data_dir: &Path,
    username: String,
    role: &str,
    team: Option<String>,
    display_name: Option<String>,
) -> Result<ExitCode> {
    let role = match role {
        "agent" => Role::Agent,
        "lead" => Role::Lead,
        "trainer" => Role::Trainer,
        "admin" => Role::Admin,
        other => bail!("role `{other}` is not agent, lead, trainer or admin"),
    };
    let password = match std::env::var("ASSIST_USER_PASSWORD") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from stdin")?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    if password.chars().count() < assist_server::web::users::MIN_PASSWORD {
        bail!(
            "the password must be at least {} characters (ASSIST_USER_PASSWORD or stdin)",
            assist_server::web::users::MIN_PASSWORD
        );
    }
    let store = open_store(data_dir)?;
    let user = store.create_user(
        &NewUser {
            username,
            display_name: display_name.unwrap_or_default(),
            password,
            role,
            team,
        },
        now_ms(),
    )?;
    store.audit(&assist_store::AuditEntry {
        at: now_ms(),
        actor: "system".into(),
        action: assist_store::audit_action::USER_CREATED.into(),
        target: user.username.clone(),
        detail: format!("assist-server user add, role {}", user.role.as_str()),
    })?;
    store.flush()?;
    println!(
        "added {} ({}{})",
        user.username,
        user.role.as_str(),
        user.team.map(|t| format!(", team {t}")).unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
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
