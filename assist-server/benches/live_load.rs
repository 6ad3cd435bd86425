//! Load on the live server: many concurrent WebSocket sessions, each a call sending final
//! utterances at a speaking pace, measuring the round trip of every utterance.
//!
//! Target (product issue): ≥ 1,000 concurrent sessions on a 2-core machine with p99 added
//! latency ≤ 10 ms (send → last event of the utterance).
//!
//! The server runs in this process, on its own tokio runtime with one worker per CPU (as
//! `assist-server serve` does), on 127.0.0.1 port 0. The clients (tokio-tungstenite) run in a
//! child process (this bench binary again, with `LOAD_CLIENT_ADDR` set) on one thread, so that
//! this process's RSS (VmRSS) is the server's alone. Both share the same CPUs.
//!
//! ```text
//! cargo bench -p assist-server --bench live_load
//! LOAD_SESSIONS=2000 LOAD_SECONDS=60 cargo bench -p assist-server --bench live_load
//! ```
//!
//! Settings (environment):
//! - `LOAD_SESSIONS` (1000): concurrent sessions (one call each).
//! - `LOAD_SECONDS` (30): how long the sessions talk once all are open.
//! - `LOAD_GAP_MIN_MS` / `LOAD_GAP_MAX_MS` (2000 / 3000): pause between a session's utterances
//!   (uniform jitter in between); the first utterance of each session is spread over one gap.
//! - `LOAD_CONNECT_CONCURRENCY` (64): connections being opened at once.
//! - `LOAD_NODELAY` (0): 1 sets TCP_NODELAY on the server's accepted sockets
//!   (`assist-server serve` does not).
//! - `LOAD_SERVER_THREADS` (number of CPUs): server runtime workers.
//! - `LOAD_BATCH` (0): when > 0, a batch QC job over that many generated chat conversations
//!   (the sample calls, cycled) starts on the server as the talk phase starts
//!   (`POST /api/v1/qc/jobs`, as a QA manager would): the live latency with batch QC running.
//!   `LOAD_BATCH_RATE` sets the job's `max_rate` (the server's default otherwise).
//! - `LOAD_MODE` (`talk`): `push` measures pack publishing instead: once the sessions are open,
//!   `LOAD_PUSH_ROUNDS` (5) times, a team lead's publish (`POST /api/v1/packs/publish` with a
//!   new script) and the time until every session has its `pack_updated`, and until every
//!   session's next utterance has the new script's card. Target: < 1 s to 1,000 agents.
//!
//! ```text
//! LOAD_MODE=push cargo bench -p assist-server --bench live_load
//! ```
//!
//! Needs about 2 × LOAD_SESSIONS file descriptors across the two processes: check `ulimit -n`
//! (raise it with `ulimit -n 4096` when it is lower than LOAD_SESSIONS + 256).

#[path = "support/mod.rs"]
mod support;

use assist_protocol::{ClientMessage, ServerMessage, Utterance};
use assist_server::live::{router, Auth};
use assist_server::state::Settings as ServiceSettings;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use support::{env_usize, histogram, record, row_ms, SampleCall};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const TARGET_SESSIONS: usize = 1000;
const TARGET_P99: Duration = Duration::from_millis(10);
/// How long any single wait may take (connect, hello, an ack).
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

struct Settings {
    sessions: usize,
    seconds: u64,
    gap_min: Duration,
    gap_max: Duration,
    connect_concurrency: usize,
    nodelay: bool,
    server_threads: usize,
    /// `push`: publish pack versions to the open sessions instead of talking.
    push: bool,
    push_rounds: usize,
    /// Conversations of a batch QC job run during the talk phase (0: none).
    batch: usize,
}

impl Settings {
    fn from_env() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let gap_min = env_usize("LOAD_GAP_MIN_MS", 2000) as u64;
        let gap_max = (env_usize("LOAD_GAP_MAX_MS", 3000) as u64).max(gap_min + 1);
        Settings {
            sessions: env_usize("LOAD_SESSIONS", TARGET_SESSIONS).max(1),
            seconds: env_usize("LOAD_SECONDS", 30).clamp(1, 3600) as u64,
            gap_min: Duration::from_millis(gap_min.max(1)),
            gap_max: Duration::from_millis(gap_max),
            connect_concurrency: env_usize("LOAD_CONNECT_CONCURRENCY", 64).max(1),
            nodelay: env_usize("LOAD_NODELAY", 0) != 0,
            server_threads: env_usize("LOAD_SERVER_THREADS", cpus).max(1),
            push: std::env::var("LOAD_MODE").is_ok_and(|m| m == "push"),
            push_rounds: env_usize("LOAD_PUSH_ROUNDS", 5).max(1),
            batch: env_usize("LOAD_BATCH", 0),
        }
    }
}

fn main() {
    let settings = Settings::from_env();
    match std::env::var("LOAD_CLIENT_ADDR") {
        Ok(addr) => client_main(
            &settings,
            addr.parse().expect("LOAD_CLIENT_ADDR is an address"),
        ),
        Err(_) if support::invoked_by_cargo_bench() => server_main(&settings),
        Err(_) => {}
    }
}

// ---------------------------------------------------------------------------------------------
// The server side (this process).

fn server_main(s: &Settings) {
    // The server's warnings (e.g. slow call-log batches) go to stderr.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ASSIST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    println!("{}", support::machine());
    let fds = open_files_limit();
    println!(
        "settings: {} sessions, {}s of talk, one utterance every {}-{}ms per session, server threads {}, TCP_NODELAY on server sockets: {}, open-files soft limit {}",
        s.sessions,
        s.seconds,
        s.gap_min.as_millis(),
        s.gap_max.as_millis(),
        s.server_threads,
        s.nodelay,
        fds.map_or("?".into(), |n| n.to_string()),
    );
    if let Some(limit) = fds {
        let needed = s.sessions as u64 + 256;
        assert!(
            limit >= needed,
            "open-files limit {limit} is too low for {} sessions: run `ulimit -n {}` first",
            s.sessions,
            needed.max(4096)
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(s.server_threads)
        .thread_name("assist-server")
        .enable_all()
        .build()
        .expect("server runtime");
    let data = tempfile::tempdir().expect("a temporary data dir");
    let batch_dir = tempfile::tempdir().expect("a temporary batch dir");
    if s.batch > 0 {
        write_batch_chats(&batch_dir.path().join("chats.jsonl"), s.batch);
    }
    let (state, _) = assist_server::setup::service(
        data.path(),
        &support::default_pack_dir(),
        Auth::default(),
        ServiceSettings {
            batch_dir: Some(batch_dir.path().to_path_buf()),
            ..ServiceSettings::default()
        },
        Some("load-test-admin".into()),
    )
    .expect("the service starts");
    let nodelay = s.nodelay;
    let addr: SocketAddr = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let app = router(Arc::clone(&state));
        tokio::spawn(async move {
            use axum::serve::ListenerExt;
            let result = if nodelay {
                let listener = listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                axum::serve(listener, app).await
            } else {
                axum::serve(listener, app).await
            };
            if let Err(e) = result {
                eprintln!("server stopped: {e}");
            }
        });
        addr
    });
    assert!(
        addr.ip().is_loopback(),
        "the server only listens on loopback"
    );
    // Let the runtime settle, then take the baseline.
    std::thread::sleep(Duration::from_millis(300));
    let rss_before = support::rss_kib();
    println!("server listening on {addr}; server RSS before sessions: {rss_before} KiB");

    let exe = std::env::current_exe().expect("this bench binary");
    let mut child = Command::new(exe)
        .env("LOAD_CLIENT_ADDR", addr.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the load client");
    let child_id = child.id();
    let stdout = child.stdout.take().expect("client stdout");
    let mut stdin = child.stdin.take().expect("client stdin");
    let (tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    // Bounded: opening takes well under a minute per thousand sessions on loopback.
    let open_deadline = Instant::now() + Duration::from_secs(120 + s.sessions as u64 / 10);
    let talk_deadline_after_go = Duration::from_secs(s.seconds + 120);
    let mut summary: Option<String> = None;
    let mut held_at_open = 0usize;
    let mut cpu_at_go = 0.0f64;
    let mut go_at = Instant::now();
    let mut deadline = open_deadline;
    let mut finished = false;
    while !finished {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match lines.recv_timeout(left) {
            Ok(line) => line,
            Err(_) => {
                eprintln!("load client {child_id} timed out or died; stopping it");
                let _ = child.kill();
                break;
            }
        };
        if let Some(rest) = line.strip_prefix("REPORT ") {
            println!("{rest}");
        } else if let Some(n) = line.strip_prefix("READY ") {
            held_at_open = n.trim().parse().unwrap_or(0);
            // Give the server a moment to finish the last welcomes' bookkeeping.
            std::thread::sleep(Duration::from_millis(500));
            let rss_open = support::rss_kib();
            let calls = state.active_calls();
            let per = (rss_open.saturating_sub(rss_before)) as f64 / held_at_open.max(1) as f64;
            println!(
                "sessions open: {held_at_open} (server active calls {calls}); server RSS {rss_open} KiB, +{} KiB = {per:.1} KiB per session",
                rss_open.saturating_sub(rss_before)
            );
            if s.push {
                push_rounds(s, &runtime, &state, addr, held_at_open, &lines);
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            if s.batch > 0 {
                let job = runtime.block_on(admin_request(addr, "POST", "/api/v1/qc/jobs"));
                println!(
                    "batch QC job {} started over {} conversations",
                    job["id"], s.batch
                );
            }
            cpu_at_go = cpu_seconds();
            go_at = Instant::now();
            deadline = go_at + talk_deadline_after_go;
            writeln!(stdin, "GO").expect("tell the client to go");
            stdin.flush().expect("flush");
        } else if let Some(rest) = line.strip_prefix("SUMMARY ") {
            summary = Some(rest.to_string());
        } else if line == "DONE" {
            finished = true;
        } else {
            println!("client: {line}");
        }
    }
    let talk_wall = go_at.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_at_go;
    if s.batch > 0 {
        let job = runtime.block_on(admin_request(addr, "GET", "/api/v1/qc/jobs/1"));
        let inspected = job["summary"]["inspected"].as_f64().unwrap_or(0.0);
        println!(
            "batch QC job during the talk phase: {} ({inspected} conversations inspected, {:.0}/s over the talk phase)",
            job["state"],
            inspected / talk_wall.max(1e-9)
        );
    }
    let rss_after = support::rss_kib();
    let _ = child.wait();

    println!(
        "server after the talk phase: RSS {rss_after} KiB (+{} KiB over the baseline = {:.1} KiB per session, with each call's state); active calls {}",
        rss_after.saturating_sub(rss_before),
        rss_after.saturating_sub(rss_before) as f64 / held_at_open.max(1) as f64,
        state.active_calls()
    );
    println!(
        "server CPU during the talk phase: {cpu:.1}s over {talk_wall:.1}s wall = {:.0}% of one core; load average at the end: {}",
        100.0 * cpu / talk_wall.max(1e-9),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    let Some(summary) = summary else {
        println!("TARGET: no result from the load client -> MISSED");
        return;
    };
    let field = |key: &str| -> f64 {
        summary
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let held = field("held") as usize;
    let p99_last = Duration::from_secs_f64(field("p99_last_ms") / 1e3);
    let p99_ack = Duration::from_secs_f64(field("p99_ack_ms") / 1e3);
    let ok_sessions = held >= TARGET_SESSIONS;
    let ok_latency = p99_last <= TARGET_P99;
    println!(
        "TARGET >= {TARGET_SESSIONS} concurrent sessions held to the end: {held} -> {}",
        if ok_sessions { "MET" } else { "MISSED" }
    );
    println!(
        "TARGET p99 added latency (send -> last event) <= {TARGET_P99:?}: p99 = {:.2}ms (send -> ack p99 = {:.2}ms) -> {}",
        p99_last.as_secs_f64() * 1e3,
        p99_ack.as_secs_f64() * 1e3,
        if ok_latency { "MET" } else { "MISSED" }
    );
}

/// RLIMIT_NOFILE soft limit, from /proc/self/limits.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// User + system CPU seconds of this process (assumes the usual 100 ticks per second).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    let Some((_, after)) = stat.rsplit_once(')') else {
        return f64::NAN;
    };
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the command: state is field 3, utime 14, stime 15 (1-based over the whole line).
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    match (tick(11), tick(12)) {
        (Some(u), Some(s)) => (u + s) / 100.0,
        _ => f64::NAN,
    }
}

// ---------------------------------------------------------------------------------------------
// The client side (the child process).

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the sessions measure, shared by all of them.
struct Measures {
    connect: Histogram<u64>,
    ack: Histogram<u64>,
    last: Histogram<u64>,
    sent: u64,
    acked: u64,
    events: u64,
    errors: u64,
    /// First few error messages, for the report.
    error_samples: Vec<String>,
}

impl Measures {
    fn error(&mut self, message: String) {
        self.errors += 1;
        if self.error_samples.len() < 5 {
            self.error_samples.push(message);
        }
    }
}

/// Prints a line for the parent.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn client_main(s: &Settings, addr: SocketAddr) {
    assert!(
        addr.ip().is_loopback(),
        "the load client only connects to loopback"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let calls = Arc::new(support::sample_calls());
    let measures = Arc::new(Mutex::new(Measures {
        connect: histogram(),
        ack: histogram(),
        last: histogram(),
        sent: 0,
        acked: 0,
        events: 0,
        errors: 0,
        error_samples: Vec::new(),
    }));
    let rss_start = support::rss_kib();

    // Phase 1: open every session (hello -> welcome), a bounded number at a time.
    let opened_at = Instant::now();
    let sockets: Vec<(usize, Ws)> = runtime.block_on(async {
        let gate = Arc::new(Semaphore::new(s.connect_concurrency));
        let mut tasks = Vec::with_capacity(s.sessions);
        for id in 0..s.sessions {
            let gate = Arc::clone(&gate);
            let calls = Arc::clone(&calls);
            let measures = Arc::clone(&measures);
            let push = s.push;
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.ok()?;
                let call = &calls[id % calls.len()];
                // Push mode publishes a Chinese script: every session is a Chinese call.
                let language = if push { "zh" } else { call.language };
                let t0 = Instant::now();
                match tokio::time::timeout(STEP_TIMEOUT, open(addr, id, language)).await {
                    Ok(Ok(ws)) => {
                        record(&mut lock(&measures).connect, t0.elapsed());
                        Some((id, ws))
                    }
                    Ok(Err(e)) => {
                        lock(&measures).error(format!("session {id}: {e}"));
                        None
                    }
                    Err(_) => {
                        lock(&measures).error(format!("session {id}: open timed out"));
                        None
                    }
                }
            }));
        }
        let mut sockets = Vec::with_capacity(s.sessions);
        for task in tasks {
            if let Ok(Some(pair)) = task.await {
                sockets.push(pair);
            }
        }
        sockets
    });
    let open_secs = opened_at.elapsed().as_secs_f64();
    {
        let m = lock(&measures);
        say(&format!(
            "REPORT opened {} of {} sessions in {open_secs:.1}s; {}",
            sockets.len(),
            s.sessions,
            row_ms("connect + hello -> welcome", &m.connect)
        ));
    }
    let rss_open = support::rss_kib();
    say(&format!("READY {}", sockets.len()));
    if s.push {
        runtime.block_on(client_push(sockets));
        return;
    }
    let mut go = String::new();
    std::io::stdin()
        .read_line(&mut go)
        .expect("wait for the parent's go");

    // Phase 2: every session talks for `seconds`.
    let talk_started = Instant::now();
    let cpu_started = cpu_seconds();
    let held: usize = runtime.block_on(async {
        let start = tokio::time::Instant::now();
        let deadline = start + Duration::from_secs(s.seconds);
        let mut tasks = Vec::with_capacity(sockets.len());
        for (id, ws) in sockets {
            let calls = Arc::clone(&calls);
            let measures = Arc::clone(&measures);
            let (gap_min, gap_max) = (s.gap_min, s.gap_max);
            tasks.push(tokio::spawn(async move {
                let call = &calls[id % calls.len()];
                talk(ws, id, call, start, deadline, gap_min, gap_max, &measures).await
            }));
        }
        let mut held = 0;
        for task in tasks {
            if let Ok(true) = task.await {
                held += 1;
            }
        }
        held
    });
    let talk_secs = talk_started.elapsed().as_secs_f64();
    let client_cpu = cpu_seconds() - cpu_started;

    let m = lock(&measures);
    say(&format!(
        "REPORT talk phase: {}s (+{:.1}s for the last replies and the call ends); {} utterances sent = {:.0}/s, {} acked, {} events received, {} errors; sessions held to the end: {held}",
        s.seconds,
        talk_secs - s.seconds as f64,
        m.sent,
        m.sent as f64 / s.seconds as f64,
        m.acked,
        m.events,
        m.errors
    ));
    for e in &m.error_samples {
        say(&format!("REPORT   error: {e}"));
    }
    say(&format!(
        "REPORT {}",
        row_ms("utterance: send -> ack", &m.ack)
    ));
    say(&format!(
        "REPORT {}",
        row_ms("utterance: send -> last event", &m.last)
    ));
    say(&format!(
        "REPORT load client (one thread): RSS {rss_start} KiB at start, {rss_open} KiB with the sessions open; CPU {client_cpu:.1}s over {talk_secs:.1}s = {:.0}% of one core",
        100.0 * client_cpu / talk_secs.max(1e-9)
    ));
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1e6;
    say(&format!(
        "SUMMARY held={held} p50_last_ms={} p99_last_ms={} p99_ack_ms={} max_last_ms={}",
        ms(&m.last, 0.5),
        ms(&m.last, 0.99),
        ms(&m.ack, 0.99),
        m.last.max() as f64 / 1e6
    ));
    say("DONE");
}

fn lock(m: &Mutex<Measures>) -> std::sync::MutexGuard<'_, Measures> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Connects and says hello; returns once welcomed.
async fn open(addr: SocketAddr, id: usize, language: &str) -> Result<Ws, String> {
    let url = format!("ws://{addr}/ws");
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let hello = ClientMessage::Hello {
        version: assist_protocol::PROTOCOL_VERSION,
        agent_id: format!("load-agent-{id}"),
        token: String::new(),
        call_id: format!("load-{}-{id}", std::process::id()),
        language: language.to_string(),
        channel: Default::default(),
    };
    send(&mut ws, &hello).await?;
    match next_message(&mut ws).await? {
        ServerMessage::Welcome { .. } => Ok(ws),
        other => Err(format!("expected a welcome, got {other:?}")),
    }
}

async fn send(ws: &mut Ws, message: &ClientMessage) -> Result<(), String> {
    let text = serde_json::to_string(message).map_err(|e| e.to_string())?;
    ws.send(Message::text(text))
        .await
        .map_err(|e| format!("send: {e}"))
}

async fn next_message(ws: &mut Ws) -> Result<ServerMessage, String> {
    loop {
        match ws.next().await {
            None => return Err("connection closed".into()),
            Some(Err(e)) => return Err(format!("receive: {e}")),
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(text.as_str()).map_err(|e| format!("bad reply: {e}"))
            }
            Some(Ok(Message::Close(_))) => return Err("closed by the server".into()),
            Some(Ok(_)) => continue,
        }
    }
}

/// The utterance in flight: when it was sent, when it was acked, when its last event came.
struct InFlight {
    seq: u64,
    sent: Instant,
    acked: Option<Instant>,
    last: Instant,
}

/// Small deterministic per-session jitter.
struct Jitter(u64);

impl Jitter {
    fn between(&mut self, min: Duration, max: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let span = (max - min).as_micros().max(1) as u64;
        min + Duration::from_micros(self.0 % span)
    }
}

/// One session's talk: an utterance every gap until the deadline, then the call's end.
/// Returns whether the session stayed up to the end.
#[allow(clippy::too_many_arguments)]
async fn talk(
    mut ws: Ws,
    id: usize,
    call: &SampleCall,
    start: tokio::time::Instant,
    deadline: tokio::time::Instant,
    gap_min: Duration,
    gap_max: Duration,
    measures: &Mutex<Measures>,
) -> bool {
    let mut jitter = Jitter(0x2545_F491_4F6C_DD1D ^ ((id as u64 + 1) * 0x9E37_79B9));
    let mut next = start + jitter.between(Duration::ZERO, gap_max);
    let mut seq = 0u64;
    let mut in_flight: Option<InFlight> = None;
    let finish = |f: InFlight, m: &Mutex<Measures>| {
        let mut m = lock(m);
        match f.acked {
            Some(acked) => {
                m.acked += 1;
                record(&mut m.ack, acked - f.sent);
                record(&mut m.last, f.last - f.sent);
            }
            None => m.error(format!("session {id}: utterance {} never acked", f.seq)),
        }
    };
    loop {
        // Read replies until it is time to speak again; after the last utterance, give its
        // replies a grace period.
        let wake = if next < deadline {
            next
        } else {
            deadline + Duration::from_secs(2)
        };
        loop {
            match tokio::time::timeout_at(wake, ws.next()).await {
                Err(_) => break,
                Ok(None) => {
                    lock(measures).error(format!("session {id}: connection closed"));
                    return false;
                }
                Ok(Some(Err(e))) => {
                    lock(measures).error(format!("session {id}: receive: {e}"));
                    return false;
                }
                Ok(Some(Ok(Message::Text(text)))) => {
                    let now = Instant::now();
                    match serde_json::from_str::<ServerMessage>(text.as_str()) {
                        Ok(ServerMessage::Ack { seq: acked }) => {
                            if let Some(f) = in_flight.as_mut().filter(|f| f.seq == acked) {
                                f.acked = Some(now);
                                f.last = now;
                            }
                        }
                        Ok(ServerMessage::Error { message, .. }) => {
                            lock(measures).error(format!("session {id}: server error: {message}"));
                        }
                        Ok(_) => {
                            lock(measures).events += 1;
                            if let Some(f) = in_flight.as_mut() {
                                f.last = now;
                            }
                        }
                        Err(e) => lock(measures).error(format!("session {id}: bad reply: {e}")),
                    }
                }
                Ok(Some(Ok(_))) => {}
            }
        }
        if let Some(f) = in_flight.take() {
            finish(f, measures);
        }
        if next >= deadline {
            break;
        }
        // Speak: the next line of the call, its start on the call clock.
        let line = &call.lines[seq as usize % call.lines.len()];
        seq += 1;
        let at = (next - start).as_secs_f64() + 1.0;
        let utt = Utterance {
            seq,
            speaker: line.speaker,
            partial: false,
            text: line.text.clone(),
            start: at,
            end: Some(at + 1.5),
            prosody: line.prosody,
        };
        let sent = Instant::now();
        if let Err(e) = send(&mut ws, &ClientMessage::Utterance(utt)).await {
            lock(measures).error(format!("session {id}: {e}"));
            return false;
        }
        lock(measures).sent += 1;
        in_flight = Some(InFlight {
            seq,
            sent,
            acked: None,
            last: sent,
        });
        next += jitter.between(gap_min, gap_max);
    }
    // The call ends: the summary comes back, then the connection closes.
    let end_at = (deadline - start).as_secs_f64() + 2.0;
    if send(&mut ws, &ClientMessage::CallEnd { t: end_at })
        .await
        .is_err()
    {
        return false;
    }
    let got_summary = tokio::time::timeout(STEP_TIMEOUT, async {
        loop {
            match next_message(&mut ws).await {
                Ok(ServerMessage::Summary(_)) => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    })
    .await
    .unwrap_or(false);
    let _ = ws.close(None).await;
    got_summary
}

// ---------------------------------------------------------------------------------------------
// Push mode: publish a pack version to every open session.

const TARGET_PUSH: Duration = Duration::from_secs(1);

/// Microseconds since the Unix epoch: the two processes share the machine's clock.
fn epoch_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A chat JSONL of `n` conversations for the batch QC job: the sample calls' lines, cycled.
fn write_batch_chats(path: &std::path::Path, n: usize) {
    let calls = support::sample_calls();
    let file = std::fs::File::create(path).expect("create the batch file");
    let mut out = std::io::BufWriter::new(file);
    for k in 0..n {
        let call = &calls[k % calls.len()];
        for line in &call.lines {
            let row = serde_json::json!({
                "conversation_id": format!("b{k}"),
                "timestamp": 1_763_600_000.0 + k as f64 * 100.0 + line.t,
                "role": if line.speaker == assist_protocol::Speaker::Agent { "agent" } else { "customer" },
                "text": line.text,
                "agent_id": format!("batch-{}", k % 50),
            });
            serde_json::to_writer(&mut out, &row).expect("write");
            out.write_all(b"\n").expect("write");
        }
    }
    out.flush().expect("flush");
}

/// An admin's request to the server under test (POST: a QC job over the whole batch folder).
async fn admin_request(addr: SocketAddr, method: &str, path: &str) -> serde_json::Value {
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    let login: serde_json::Value = http
        .post(format!("{base}/api/v1/login"))
        .json(&serde_json::json!({"username": "admin", "password": "load-test-admin"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login reply");
    let token = login["token"].as_str().expect("a token");
    let request = if method == "POST" {
        let rate = std::env::var("LOAD_BATCH_RATE")
            .ok()
            .and_then(|r| r.parse::<f64>().ok());
        let mut body = serde_json::json!({"paths": ["."]});
        if let Some(rate) = rate {
            body["max_rate"] = rate.into();
        }
        http.post(format!("{base}{path}")).json(&body)
    } else {
        http.get(format!("{base}{path}"))
    };
    request
        .bearer_auth(token)
        .send()
        .await
        .expect("the request")
        .json()
        .await
        .expect("a JSON reply")
}

/// The script a push round publishes: a new card with its own trigger word.
fn push_script(version: u64) -> String {
    format!(
        "[[script]]\nid = \"bench.push.v{version}\"\ntitle = \"推送 {version}\"\ntier = \"basic\"\nlanguage = \"zh\"\npriority = 95\nbody = \"第{version}版话术\"\n[script.trigger]\nkeywords = [\"量子{version}号通道\"]\n"
    )
}

/// The server side: one publish per round over HTTP, as a team lead's browser would, and the
/// times the client reports back.
fn push_rounds(
    s: &Settings,
    runtime: &tokio::runtime::Runtime,
    state: &Arc<assist_server::state::AppState>,
    addr: SocketAddr,
    sessions: usize,
    lines: &mpsc::Receiver<String>,
) {
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    let token: String = runtime.block_on(async {
        let reply: serde_json::Value = http
            .post(format!("{base}/api/v1/login"))
            .json(&serde_json::json!({"username": "admin", "password": "load-test-admin"}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("login reply");
        reply["token"].as_str().expect("a token").to_string()
    });
    let files = state
        .store
        .latest_pack()
        .expect("store")
        .expect("version 1")
        .files;
    let mut notice_ms = histogram();
    let mut worst_notice = Duration::ZERO;
    let mut worst_card = Duration::ZERO;
    for round in 0..s.push_rounds {
        let base_version = state
            .store
            .latest_pack()
            .expect("store")
            .map_or(0, |v| v.number);
        let version = base_version + 1;
        let mut edited = files.clone();
        edited.insert("scripts/zz_bench_push.toml".into(), push_script(version));
        let sent = epoch_us();
        let status = runtime.block_on(async {
            http.post(format!("{base}/api/v1/packs/publish"))
                .bearer_auth(&token)
                .json(&serde_json::json!({"files": edited, "base_version": base_version}))
                .send()
                .await
                .map(|r| r.status())
        });
        let answered = epoch_us();
        assert!(
            status.as_ref().is_ok_and(|s| s.as_u16() == 201),
            "publish failed: {status:?}"
        );
        let (mut notice_last, mut card_last) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(60);
        while notice_last.is_none() || card_last.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = lines.recv_timeout(left) else {
                println!("round {round}: timed out waiting for the client");
                return;
            };
            let mut parts = line.split_whitespace();
            let (kind, v, n, first, last) = (
                parts.next().unwrap_or(""),
                parts
                    .next()
                    .and_then(|x| x.parse::<u64>().ok())
                    .unwrap_or(0),
                parts
                    .next()
                    .and_then(|x| x.parse::<usize>().ok())
                    .unwrap_or(0),
                parts
                    .next()
                    .and_then(|x| x.parse::<u64>().ok())
                    .unwrap_or(0),
                parts
                    .next()
                    .and_then(|x| x.parse::<u64>().ok())
                    .unwrap_or(0),
            );
            if v != version {
                continue;
            }
            match kind {
                "NOTICE" => notice_last = Some((n, first, last)),
                "CARD" => card_last = Some((n, first, last)),
                _ => {}
            }
        }
        let (notices, first_notice, last_notice) = notice_last.unwrap_or_default();
        let (cards, _, last_card) = card_last.unwrap_or_default();
        let ms = |a: u64, b: u64| b.saturating_sub(a) as f64 / 1e3;
        println!(
            "round {}: version {version}: publish answered in {:.1} ms; pack_updated to {notices}/{sessions} sessions: first {:.1} ms, last {:.1} ms after the request ({:.1} ms after the answer); new card on the next utterance of {cards}/{sessions}: last {:.1} ms after the request",
            round + 1,
            ms(sent, answered),
            ms(sent, first_notice),
            ms(sent, last_notice),
            ms(answered, last_notice),
            ms(sent, last_card),
        );
        record(
            &mut notice_ms,
            Duration::from_micros(last_notice.saturating_sub(sent)),
        );
        worst_notice = worst_notice.max(Duration::from_micros(last_notice.saturating_sub(sent)));
        worst_card = worst_card.max(Duration::from_micros(last_card.saturating_sub(sent)));
        // Let the round's utterances settle before the next publish.
        std::thread::sleep(Duration::from_millis(500));
    }
    println!(
        "{}",
        row_ms("publish request -> last session notified", &notice_ms)
    );
    println!(
        "TARGET a published script reaches {sessions} connected agents in < {TARGET_PUSH:?}: worst of {} rounds {:.1} ms (new card on the next utterance everywhere: {:.1} ms) -> {}",
        s.push_rounds,
        worst_notice.as_secs_f64() * 1e3,
        worst_card.as_secs_f64() * 1e3,
        if worst_notice < TARGET_PUSH && sessions >= TARGET_SESSIONS { "MET" } else { "MISSED" }
    );
}

/// The client side of push mode: every session waits for `pack_updated`, then says the new
/// script's trigger word and waits for its card; per version, the first and last times are
/// reported once every session has them.
async fn client_push(sockets: Vec<(usize, Ws)>) {
    let total = sockets.len();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(bool, u64, u64)>();
    for (_, mut ws) in sockets {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut seq = 0u64;
            loop {
                let message = match next_message(&mut ws).await {
                    Ok(m) => m,
                    Err(_) => return,
                };
                match message {
                    ServerMessage::PackUpdated { pack_version } => {
                        let now = epoch_us();
                        let Some(version) = pack_version
                            .rsplit_once("+v")
                            .and_then(|(_, v)| v.parse::<u64>().ok())
                        else {
                            continue;
                        };
                        let _ = tx.send((false, version, now));
                        seq += 1;
                        let utt = Utterance {
                            seq,
                            speaker: assist_protocol::Speaker::Customer,
                            partial: false,
                            text: format!("请问量子{version}号通道怎么走"),
                            start: seq as f64 * 5.0,
                            end: Some(seq as f64 * 5.0 + 2.0),
                            prosody: None,
                        };
                        if send(&mut ws, &ClientMessage::Utterance(utt)).await.is_err() {
                            return;
                        }
                    }
                    ServerMessage::Card(card) => {
                        if let Some(v) = card.id.strip_prefix("bench.push.v") {
                            if let Ok(version) = v.parse::<u64>() {
                                let _ = tx.send((true, version, epoch_us()));
                            }
                        }
                    }
                    _ => {}
                }
            }
        });
    }
    drop(tx);
    // version -> (notices: count, first, last), (cards: count, first, last)
    let mut seen: std::collections::HashMap<(bool, u64), (usize, u64, u64)> =
        std::collections::HashMap::new();
    while let Some((card, version, at)) = rx.recv().await {
        let entry = seen.entry((card, version)).or_insert((0, u64::MAX, 0));
        entry.0 += 1;
        entry.1 = entry.1.min(at);
        entry.2 = entry.2.max(at);
        if entry.0 == total {
            let kind = if card { "CARD" } else { "NOTICE" };
            say(&format!(
                "{kind} {version} {} {} {}",
                entry.0, entry.1, entry.2
            ));
        }
    }
}
