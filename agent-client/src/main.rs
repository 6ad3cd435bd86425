//! `agent-client`: the agent's overlay.
//!
//! Sources (one of): live devices (default: the default input is the agent's microphone;
//! `--customer-device` names the far end), `--audio-file call.wav` (a recording, channels mapped
//! to speakers), or `--transcript call.jsonl` (text, the live-path test driver). Output: the
//! always-on-top overlay window, or `--headless` JSON lines (exactly what `assist-server replay`
//! prints). Without a display the client falls back to headless and says so.

use agent_client::asr::{AsrModel, Transcriber};
use agent_client::audio::device::{list_devices, DeviceSource, DeviceSpec};
use agent_client::audio::wav::WavSource;
use agent_client::audio::{AudioEvent, AudioSource, ChannelMap};
use agent_client::link::{self, Incoming, LinkConfig, OutboxLimits, Outgoing};
use agent_client::metrics::RunMetrics;
use agent_client::pipeline::{transcribe, FinalOrder, Sequencer, Transcribed};
use agent_client::stop;
use agent_client::transcript;
use agent_client::ui::display_available;
use agent_client::ui::i18n::Lang;
use agent_client::ui::model::{OverlayModel, UiEvent};
use agent_client::ui::overlay::{self, Renderer, Repaint};
use anyhow::{bail, Context, Result};
use assist_protocol::{Channel, ServerMessage, Speaker};
use clap::Parser;
use serde::Deserialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Parser, Debug, Default)]
#[command(
    name = "agent-client",
    version,
    about = "Live agent assist on the agent's desktop"
)]
struct Args {
    /// TOML settings file (same names as the flags, with underscores); flags win over it.
    #[arg(long, env = "ASSIST_CLIENT_CONFIG")]
    config: Option<PathBuf>,
    /// The assist server's WebSocket address [default: ws://127.0.0.1:7700/ws]; `wss://` for
    /// TLS (the system's trusted certificates, plus --ca-cert).
    #[arg(long, env = "ASSIST_SERVER")]
    server: Option<String>,
    /// A PEM file of certificates to trust for a `wss://` server besides the system's (a company
    /// CA, or the server's self-signed certificate).
    #[arg(long, env = "ASSIST_CA_CERT")]
    ca_cert: Option<PathBuf>,
    #[arg(long, env = "ASSIST_AGENT_ID")]
    agent_id: Option<String>,
    #[arg(long, env = "ASSIST_TOKEN")]
    token: Option<String>,
    /// Sign in with this username over the server's REST API (password from ASSIST_PASSWORD or
    /// --password-file); the username is the agent id.
    #[arg(long, env = "ASSIST_USERNAME", conflicts_with = "token")]
    username: Option<String>,
    /// A file whose first line is the password (instead of ASSIST_PASSWORD).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Call id; a new one is made when not given.
    #[arg(long)]
    call_id: Option<String>,
    /// Call language, zh or en [default: zh; guessed from a transcript].
    #[arg(long)]
    language: Option<String>,
    /// Chat instead of voice.
    #[arg(long)]
    chat: bool,
    /// No window: print events as JSON lines on stdout.
    #[arg(long)]
    headless: bool,
    /// Human-readable headless output instead of JSON lines.
    #[arg(long)]
    pretty: bool,
    /// Overlay language: zh or en [default: the system locale].
    #[arg(long)]
    ui_lang: Option<String>,
    /// Send this transcript (one {"t","speaker","text"} per line) instead of audio.
    #[arg(long, conflicts_with = "audio_file")]
    transcript: Option<PathBuf>,
    /// Transcribe this WAV file instead of live devices.
    #[arg(long)]
    audio_file: Option<PathBuf>,
    /// How the file's or stereo device's channels map to speakers: agent-customer (left =
    /// agent), customer-agent, agent (all agent), customer (all customer).
    #[arg(long)]
    channels: Option<String>,
    /// The agent's microphone (name substring) [default: the default input device].
    #[arg(long)]
    agent_device: Option<String>,
    /// The call's far end: a loopback/monitor device or line-in (name substring).
    #[arg(long)]
    customer_device: Option<String>,
    /// One stereo device carrying both sides (see --channels).
    #[arg(long)]
    stereo_device: Option<String>,
    /// Print the input devices cpal sees and exit.
    #[arg(long)]
    list_devices: bool,
    /// Vosk model folder [default: models/vosk-model-small-cn-0.22 for zh, -en-us-0.15 for en].
    #[arg(long, env = "ASSIST_MODEL")]
    model: Option<PathBuf>,
    /// Less memory for speech recognition: one Vosk recognizer shared by the two speakers,
    /// started when someone speaks and freed after each utterance (speech overlapping another
    /// speaker's waits for it), at ~2x the decoding CPU. For thin clients and VDI.
    #[arg(long, env = "ASSIST_LOW_MEMORY")]
    low_memory: bool,
    /// Pace a transcript or audio file in real time (divided by --speed).
    #[arg(long)]
    realtime: bool,
    #[arg(long)]
    speed: Option<f64>,
    /// Give up after this many seconds without a connection to the server.
    #[arg(long)]
    give_up_after: Option<u64>,
    /// How the overlay is drawn: software (on the CPU, no OpenGL; the default) or gl (OpenGL
    /// through the desktop's driver).
    #[arg(long, env = "ASSIST_RENDERER")]
    renderer: Option<String>,
    /// Keep the window open this many seconds after the call ends, then exit (demos, screenshots).
    #[arg(long)]
    linger: Option<u64>,
    /// Where utterances wait on disk during a long outage [default: the user's cache folder,
    /// e.g. ~/.cache/agent-assist/outbox].
    #[arg(long, env = "ASSIST_SPOOL_DIR")]
    spool_dir: Option<PathBuf>,
    /// Write what the run cost (latencies, Vosk real-time factor, memory, CPU) as JSON to this
    /// file at exit: the benchmark's probe (scripts/bench-client.sh).
    #[arg(long)]
    metrics: Option<PathBuf>,
}

/// The settings file: every field optional, flags win.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    server: Option<String>,
    ca_cert: Option<PathBuf>,
    agent_id: Option<String>,
    token: Option<String>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    language: Option<String>,
    ui_lang: Option<String>,
    model: Option<PathBuf>,
    channels: Option<String>,
    agent_device: Option<String>,
    customer_device: Option<String>,
    stereo_device: Option<String>,
    give_up_after: Option<u64>,
    spool_dir: Option<PathBuf>,
    renderer: Option<String>,
}

impl Args {
    fn merge(mut self, file: FileSettings) -> Args {
        self.server = self.server.or(file.server);
        self.ca_cert = self.ca_cert.or(file.ca_cert);
        self.agent_id = self.agent_id.or(file.agent_id);
        self.token = self.token.or(file.token);
        self.username = self.username.or(file.username);
        self.password_file = self.password_file.or(file.password_file);
        self.language = self.language.or(file.language);
        self.ui_lang = self.ui_lang.or(file.ui_lang);
        self.model = self.model.or(file.model);
        self.channels = self.channels.or(file.channels);
        self.agent_device = self.agent_device.or(file.agent_device);
        self.customer_device = self.customer_device.or(file.customer_device);
        self.stereo_device = self.stereo_device.or(file.stereo_device);
        self.give_up_after = self.give_up_after.or(file.give_up_after);
        self.spool_dir = self.spool_dir.or(file.spool_dir);
        self.renderer = self.renderer.or(file.renderer);
        self
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ASSIST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    if args.low_memory {
        // Before any thread starts: the speakers' recognizers then reuse each other's memory.
        agent_client::asr::use_one_malloc_arena();
    }
    let mut args = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading settings {}", path.display()))?;
            let file: FileSettings = toml::from_str(&text)
                .with_context(|| format!("settings file {}", path.display()))?;
            args.merge(file)
        }
        None => args,
    };
    if args.list_devices {
        return print_devices();
    }
    if !args.headless && !display_available() {
        eprintln!("note: no display (DISPLAY/WAYLAND_DISPLAY unset): running headless");
        args.headless = true;
    }
    let transcript = match &args.transcript {
        Some(path) => Some(transcript::load(path)?),
        None => None,
    };
    let language = args
        .language
        .clone()
        .or_else(|| transcript.as_ref().map(|t| t.guess_language().to_string()))
        .unwrap_or_else(|| "zh".to_string());

    let model = Arc::new(Mutex::new(OverlayModel::default()));
    if args.metrics.is_some() {
        let _ = METRICS.set(Mutex::new(RunMetrics::started()));
        model
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .latency
            .enable();
    }
    let renderer: Renderer = args
        .renderer
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?
        .unwrap_or_default();
    let repaint = Repaint::default();
    let sink = UiSink {
        model: (!args.headless).then(|| Arc::clone(&model)),
        repaint: repaint.clone(),
    };
    let (out_tx, out_rx) = mpsc::channel::<Outgoing>(1024);
    let url = args
        .server
        .clone()
        .unwrap_or_else(|| "ws://127.0.0.1:7700/ws".to_string());
    let tls = if link::tls::needs_tls(&url) {
        Some(link::tls::client_config(args.ca_cert.as_deref())?)
    } else {
        if args.ca_cert.is_some() {
            eprintln!("note: --ca-cert is for wss:// servers; {url} is not encrypted");
        }
        None
    };
    let config = LinkConfig {
        url,
        tls,
        agent_id: args
            .username
            .clone()
            .or_else(|| args.agent_id.clone())
            .unwrap_or_else(|| "agent-demo".to_string()),
        token: args.token.clone().unwrap_or_default(),
        credentials: credentials(&args)?,
        call_id: args.call_id.clone().unwrap_or_else(new_call_id),
        language: language.clone(),
        channel: if args.chat {
            Channel::Chat
        } else {
            Channel::Voice
        },
        outbox: OutboxLimits::default(),
        spool_dir: args.spool_dir.clone().unwrap_or_else(default_spool_dir),
        give_up_after: Some(Duration::from_secs(args.give_up_after.unwrap_or(60))),
    };

    // The producer: text or audio → utterances.
    let producer = match transcript {
        Some(transcript) => Producer::Transcript(transcript),
        None => match start_audio(&args, &language, &sink) {
            Ok(audio) => {
                with_metrics(|m| m.model_ready());
                Producer::Audio(audio)
            }
            // Headless, nobody would see it: stop with the reason.
            Err(e) if args.headless => return Err(e),
            // The overlay stays up with the reason, connected, so the agent still sees pushes.
            Err(e) => {
                let reason = format!("{e:#}");
                tracing::error!(%reason, "no audio");
                sink.status(reason, true);
                Producer::Idle
            }
        },
    };

    let headless = args.headless;
    let pretty = args.pretty;
    let linger = args.linger;
    let core_sink = sink.clone();
    let realtime = args.realtime;
    let speed = args.speed.filter(|s| *s > 0.0).unwrap_or(1.0);
    let core = std::thread::Builder::new()
        .name("link".into())
        .spawn(move || -> Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(async move {
                let (in_tx, in_rx) = mpsc::channel(1024);
                let link = tokio::spawn(link::run(config, out_rx, in_tx));
                let feeder = match producer {
                    Producer::Transcript(t) => tokio::spawn(feed_transcript(
                        t,
                        out_tx,
                        core_sink.clone(),
                        realtime,
                        speed,
                    )),
                    Producer::Audio(audio) => {
                        let sink = core_sink.clone();
                        tokio::task::spawn_blocking(move || audio.run(out_tx, sink));
                        tokio::spawn(async {})
                    }
                    Producer::Idle => {
                        let _ = FEEDBACK.set(out_tx.clone());
                        // Keep the sender alive so the link stays connected.
                        tokio::spawn(async move {
                            let _keep = out_tx;
                            std::future::pending::<()>().await;
                        })
                    }
                };
                let signals = tokio::spawn(stop_on_signals());
                let result = consume(in_rx, headless, pretty, &core_sink).await;
                signals.abort();
                feeder.abort();
                let _ = link.await;
                result
            })
        })
        .context("starting the link thread")?;

    let metrics_path = args.metrics.clone();
    if headless {
        let result = core
            .join()
            .map_err(|_| anyhow::anyhow!("the link thread panicked"))?;
        write_metrics(metrics_path.as_deref(), &model);
        return result;
    }
    // The window owns the main thread until the agent closes it (or --linger runs out).
    if let Some(seconds) = linger {
        let model = Arc::clone(&model);
        let repaint = repaint.clone();
        std::thread::spawn(move || {
            // Wait for the summary, linger, then close the window. Never `exit` from here:
            // the main thread may be inside a GL call, and tearing the process down under it
            // crashes in the GL driver.
            loop {
                std::thread::sleep(Duration::from_millis(200));
                let done = model.lock().map(|m| m.summary.is_some()).unwrap_or(true);
                if done {
                    break;
                }
            }
            // Idle CPU is measured after a settling second (the last repaints, the
            // recognizers' teardown), for the rest of the linger time.
            let settle = Duration::from_secs(1).min(Duration::from_secs(seconds) / 2);
            std::thread::sleep(settle);
            with_metrics(|m| m.idle_from_now());
            std::thread::sleep(Duration::from_secs(seconds).saturating_sub(settle));
            with_metrics(|m| m.idle_over());
            repaint.close();
            // Last resort should the window not close (a wedged display server).
            std::thread::sleep(Duration::from_secs(30));
            tracing::warn!("the overlay window did not close; exiting");
            std::process::exit(0);
        });
    }
    let feedback_tx = sink_feedback();
    overlay::run(
        Arc::clone(&model),
        Lang::pick(args.ui_lang.as_deref()),
        repaint,
        feedback_tx,
        renderer,
    )
    .map_err(|e| anyhow::anyhow!("cannot open the overlay window: {e}"))?;
    // Closed mid-call: end the call and deliver what is left before the process goes.
    if !core.is_finished() {
        if let Some(out) = FEEDBACK.get() {
            stop::from_window(out);
        }
        let deadline = std::time::Instant::now() + STOP_GRACE;
        while !core.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if !core.is_finished() {
            tracing::warn!(
                "the server did not confirm the call's end within {STOP_GRACE:?}; utterances \
                 not yet delivered are lost"
            );
        }
    }
    write_metrics(metrics_path.as_deref(), &model);
    Ok(())
}

/// How long a stop mid-call waits for the server to take the rest of the call.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// SIGTERM (the desktop session ends) or Ctrl-C mid-call: stop producing and end the call
/// through the link, so what is queued is still delivered. A second signal quits at once.
async fn stop_on_signals() {
    wait_for_signal().await;
    if let Some(end) = stop::begin() {
        eprintln!("stopping: ending the call and sending what is left (again to quit now)");
        if let Some(out) = FEEDBACK.get() {
            let _ = out.send(end).await;
        }
    }
    let grace = tokio::time::sleep(STOP_GRACE);
    tokio::select! {
        _ = wait_for_signal() => eprintln!("stopped at once: utterances not yet delivered are lost"),
        _ = grace => tracing::warn!("the server did not confirm the call's end in time; quitting"),
    }
    std::process::exit(130);
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Card feedback goes to the server over the link; the link's sender lives in the link thread,
/// so the overlay hands feedback over through a global channel.
fn sink_feedback() -> overlay::FeedbackSink {
    Box::new(|id, action| {
        if let Some(tx) = FEEDBACK.get() {
            let _ = tx.try_send(Outgoing::CardFeedback(id, action));
        }
    })
}

static FEEDBACK: std::sync::OnceLock<mpsc::Sender<Outgoing>> = std::sync::OnceLock::new();

/// The run's figures when `--metrics` asked for them.
static METRICS: std::sync::OnceLock<Mutex<RunMetrics>> = std::sync::OnceLock::new();

fn with_metrics(f: impl FnOnce(&mut RunMetrics)) {
    if let Some(metrics) = METRICS.get() {
        f(&mut metrics.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// Writes the metrics file (the last write wins).
fn write_metrics(path: Option<&Path>, model: &Mutex<OverlayModel>) {
    let Some(path) = path else { return };
    let latency_model = model.lock().unwrap_or_else(|p| p.into_inner());
    with_metrics(|m| {
        m.take_latency(&latency_model.latency);
        if let Err(e) = m.write(path) {
            eprintln!("cannot write metrics to {}: {e}", path.display());
        }
    });
}

enum Producer {
    Transcript(transcript::Transcript),
    Audio(AudioPipeline),
    /// No audio (the model or device could not start): the overlay still shows pushes.
    Idle,
}

/// Where local events go: the overlay model (repainting it), or stderr when headless.
#[derive(Clone)]
struct UiSink {
    model: Option<Arc<Mutex<OverlayModel>>>,
    repaint: Repaint,
}

impl UiSink {
    fn send(&self, event: UiEvent) {
        match &self.model {
            Some(model) => {
                model.lock().unwrap_or_else(|p| p.into_inner()).apply(event);
                self.repaint.request();
            }
            None => match event {
                UiEvent::Status { text, .. } => eprintln!("{text}"),
                UiEvent::Transcript {
                    speaker,
                    text,
                    partial: false,
                    ..
                } => tracing::info!(speaker = speaker.as_str(), %text, "final"),
                _ => {}
            },
        }
    }

    fn status(&self, text: impl Into<String>, problem: bool) {
        self.send(UiEvent::Status {
            text: text.into(),
            problem,
        });
    }
}

async fn feed_transcript(
    transcript: transcript::Transcript,
    out: mpsc::Sender<Outgoing>,
    sink: UiSink,
    realtime: bool,
    speed: f64,
) {
    let _ = FEEDBACK.set(out.clone());
    let start = tokio::time::Instant::now();
    let mut last_t = 0.0f64;
    for (seq, line) in transcript.lines.into_iter().enumerate() {
        if realtime {
            // Tick the call clock every second of silence so timers fire live.
            let mut clock = last_t.ceil();
            while clock < line.t {
                tokio::time::sleep_until(start + Duration::from_secs_f64(clock / speed)).await;
                if stop::stopping() {
                    return;
                }
                if clock > last_t && out.send(Outgoing::Tick(clock)).await.is_err() {
                    return;
                }
                stop::reached(clock);
                clock += 1.0;
            }
            tokio::time::sleep_until(start + Duration::from_secs_f64(line.t / speed)).await;
            last_t = line.end.unwrap_or(line.t);
        }
        sink.send(UiEvent::Transcript {
            speaker: line.speaker,
            text: line.text.clone(),
            start: line.t,
            partial: false,
        });
        if stop::stopping() {
            return;
        }
        let reached = line.end.unwrap_or(line.t);
        if out
            .send(Outgoing::Utterance(line.into_utterance(seq as u64 + 1)))
            .await
            .is_err()
        {
            return;
        }
        stop::reached(reached);
    }
    if !stop::stopping() {
        let _ = out.send(Outgoing::End(transcript.end)).await;
    }
}

/// Audio in, Vosk per speaker, utterances out.
struct AudioPipeline {
    events: std_mpsc::Receiver<AudioEvent>,
    /// Keeps the source running while the pipeline lives.
    source: Box<dyn AudioSource>,
    transcribers: Vec<Transcriber>,
    order: FinalOrder,
}

fn channel_map(spec: Option<&str>) -> Result<ChannelMap> {
    Ok(match spec.unwrap_or("agent-customer") {
        "agent-customer" => ChannelMap::Stereo {
            left: Speaker::Agent,
            right: Speaker::Customer,
        },
        "customer-agent" => ChannelMap::Stereo {
            left: Speaker::Customer,
            right: Speaker::Agent,
        },
        "agent" => ChannelMap::All(Speaker::Agent),
        "customer" => ChannelMap::All(Speaker::Customer),
        other => bail!(
            "--channels `{other}` is not one of agent-customer, customer-agent, agent, customer"
        ),
    })
}

fn default_model(language: &str) -> PathBuf {
    let name = if language == "en" {
        "vosk-model-small-en-us-0.15"
    } else {
        "vosk-model-small-cn-0.22"
    };
    Path::new("models").join(name)
}

fn start_audio(args: &Args, language: &str, sink: &UiSink) -> Result<AudioPipeline> {
    let model_path = args
        .model
        .clone()
        .unwrap_or_else(|| default_model(language));
    let model = AsrModel::load(&model_path)?;
    let mut transcribers = [Speaker::Agent, Speaker::Customer]
        .into_iter()
        .map(|speaker| Transcriber::new(&model, speaker, language))
        .collect::<Result<Vec<_>, _>>()?;
    if args.low_memory {
        // One recognizer between the two speakers, started by speech and freed after each
        // final (see Transcriber::share_recognizer).
        let slot = Arc::new(agent_client::asr::RecognizerSlot::default());
        for transcriber in &mut transcribers {
            transcriber.share_recognizer(Arc::clone(&slot));
        }
    }
    let (tx, events) = std_mpsc::channel();
    let map = channel_map(args.channels.as_deref())?;
    let source: Box<dyn AudioSource> = match &args.audio_file {
        Some(path) => Box::new(WavSource::start(path, map, args.realtime, tx)?),
        None => {
            let spec = DeviceSpec {
                agent: args.agent_device.clone(),
                customer: args.customer_device.clone(),
                stereo: args.stereo_device.clone().map(|name| (name, map)),
            };
            Box::new(DeviceSource::start(spec, tx)?)
        }
    };
    sink.status(format!("audio: {}", source.describe()), false);
    // A file decoded faster than real time has both recognizers racing: put finals back in
    // call order. Live audio keeps pace, so finals go out the moment they are recognized.
    let order = if args.audio_file.is_some() && !args.realtime {
        FinalOrder::CallTime
    } else {
        FinalOrder::Arrival
    };
    Ok(AudioPipeline {
        events,
        source,
        transcribers,
        order,
    })
}

impl AudioPipeline {
    /// Runs until the source ends (a file) or the link goes away; blocking.
    fn run(self, out: mpsc::Sender<Outgoing>, sink: UiSink) {
        let _ = FEEDBACK.set(out.clone());
        let _source = self.source;
        let results = match transcribe(self.events, self.transcribers, self.order) {
            Ok(results) => results,
            Err(e) => {
                sink.status(format!("cannot start the speech recognizers: {e}"), true);
                return;
            }
        };
        let mut sequencer = Sequencer::default();
        while let Ok(item) = results.recv() {
            match item {
                Transcribed::Recognized(recognized) => {
                    if stop::stopping() {
                        return;
                    }
                    if let Some((message, ui)) = sequencer.next(recognized) {
                        sink.send(ui);
                        let reached = match &message {
                            Outgoing::Utterance(u) => u.end.unwrap_or(u.start),
                            _ => 0.0,
                        };
                        if out.blocking_send(message).is_err() {
                            return;
                        }
                        stop::reached(reached);
                    }
                }
                Transcribed::Lost { speaker, reason } => sink.status(
                    format!("{} audio lost: {reason} (retrying)", speaker.as_str()),
                    true,
                ),
                Transcribed::End { call_end, stats } => {
                    with_metrics(|m| m.asr = stats);
                    if !stop::stopping() {
                        let _ = out.blocking_send(Outgoing::End(call_end));
                    }
                    return;
                }
            }
        }
    }
}

/// Takes what the link reports until the call is over.
async fn consume(
    mut incoming: mpsc::Receiver<Incoming>,
    headless: bool,
    pretty: bool,
    sink: &UiSink,
) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    while let Some(item) = incoming.recv().await {
        match item {
            Incoming::Message(message) => {
                if headless {
                    if let ServerMessage::PackUpdated { pack_version } = &message {
                        eprintln!("pack updated to {pack_version}");
                    }
                    if let Some(event) = message.into_event() {
                        if pretty {
                            writeln!(stdout, "{}", transcript::pretty(&event))?;
                        } else {
                            serde_json::to_writer(&mut stdout, &event)?;
                            writeln!(stdout)?;
                        }
                        stdout.flush()?;
                    }
                } else {
                    sink.send(UiEvent::Server(message));
                }
            }
            Incoming::SignedIn(account) => {
                let team = account.team.as_deref().unwrap_or("-");
                let text = format!("signed in: {} ({team})", account.display_name);
                tracing::info!(username = %account.username, %team, "signed in");
                if headless {
                    eprintln!("{text}");
                } else {
                    sink.status(text, false);
                }
            }
            Incoming::Connected {
                last_seq,
                pack_version,
            } => {
                tracing::info!(last_seq, %pack_version, "connected");
                if !headless {
                    sink.send(UiEvent::Server(ServerMessage::Welcome {
                        version: assist_protocol::PROTOCOL_VERSION,
                        call_id: String::new(),
                        last_seq,
                        pack_version,
                    }));
                }
            }
            Incoming::Disconnected { reason, retry_in } => sink.status(
                format!("disconnected: {reason}; retrying in {retry_in:?} (nothing is lost)"),
                true,
            ),
            Incoming::ServerError { code, message } => {
                sink.status(format!("server: {code:?}: {message}"), true)
            }
            Incoming::Finished => {
                with_metrics(|m| m.call_over());
                return Ok(());
            }
            Incoming::Failed(reason) => {
                sink.status(reason.clone(), true);
                bail!(reason);
            }
        }
    }
    Ok(())
}

/// The sign-in credentials when `--username` is given; the password never comes from a flag.
fn credentials(args: &Args) -> Result<Option<link::Credentials>> {
    let Some(username) = args.username.clone() else {
        return Ok(None);
    };
    let password = match &args.password_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the password file {}", path.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
        None => std::env::var("ASSIST_PASSWORD").map_err(|_| {
            anyhow::anyhow!("--username {username} needs a password: set ASSIST_PASSWORD or pass --password-file")
        })?,
    };
    Ok(Some(link::Credentials { username, password }))
}

fn print_devices() -> Result<()> {
    let devices = list_devices()?;
    if devices.is_empty() {
        println!("no input devices");
    }
    for d in devices {
        println!("{d}");
    }
    Ok(())
}

/// `$XDG_CACHE_HOME/agent-assist/outbox`, `~/.cache/agent-assist/outbox`, or the temp folder.
fn default_spool_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("agent-assist")
        .join("outbox")
}

fn new_call_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("call-{}-{}", now.as_secs(), now.subsec_nanos() % 100_000)
}
