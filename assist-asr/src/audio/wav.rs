//! A WAV file as a call's audio: replays, demos and tests.
//!
//! Any WAV that hound reads: 8, 16, 24 or 32-bit integer or 32-bit float samples, any rate, one
//! or more channels. The [`ChannelMap`] says whose voice is where:
//!
//! - `All(speaker)`: every channel is mixed down to that speaker.
//! - `Stereo { left, right }`: channel 0 is `left`, channel 1 is `right` (further channels are
//!   ignored). A **mono** file with a stereo map is all `left`'s voice.
//!
//! Each speaker's audio is resampled to 16 kHz and sent as [`AudioEvent::Chunk`]s of 100 ms in
//! time order (`at` = seconds from the start of the file), then [`AudioEvent::End`]. The file is
//! read on its own thread, as fast as possible or paced at wall-clock speed (`realtime`); dropping
//! the [`WavSource`] stops it. A file that is not a WAV or is cut short is refused by
//! [`WavSource::start`] with [`AudioError::File`]; a read error later on (the file changed under
//! us) is reported as [`AudioEvent::Lost`] for each speaker, followed by `End`.

use super::resample::Resampler;
use super::{AudioError, AudioEvent, AudioSource, ChannelMap, Chunk, TARGET_RATE};
use assist_protocol::Speaker;
use std::fs::File;
use std::io::{BufReader, Seek};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Samples per chunk sent downstream: 100 ms at 16 kHz.
pub const CHUNK_SAMPLES: usize = (TARGET_RATE / 10) as usize;

/// What a WAV file holds, read from its header.
#[derive(Debug, Clone, PartialEq)]
pub struct WavInfo {
    pub channels: u16,
    pub sample_rate: u32,
    pub bits_per_sample: u16,
    pub float: bool,
    /// Length in seconds.
    pub duration: f64,
}

/// A running file source.
pub struct WavSource {
    description: String,
    info: WavInfo,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for WavSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavSource")
            .field("description", &self.description)
            .finish()
    }
}

fn file_error(path: &Path, reason: impl Into<String>) -> AudioError {
    AudioError::File {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Reads and checks the header: a WAV with a format we can read, and all the audio its header
/// promises actually in the file.
pub fn probe(path: &Path) -> Result<WavInfo, AudioError> {
    let file = File::open(path).map_err(|e| file_error(path, e.to_string()))?;
    let file_len = file
        .metadata()
        .map_err(|e| file_error(path, e.to_string()))?
        .len();
    let reader = hound::WavReader::new(BufReader::new(file)).map_err(|e| match e {
        hound::Error::FormatError(_) | hound::Error::IoError(_) => file_error(
            path,
            format!(
                "not a readable WAV file ({}); give a .wav recording",
                hound_reason(&e)
            ),
        ),
        other => file_error(
            path,
            format!(
                "damaged or unsupported WAV header ({})",
                hound_reason(&other)
            ),
        ),
    })?;
    let spec = reader.spec();
    let samples = u64::from(reader.len());
    let data_start = reader
        .into_inner()
        .stream_position()
        .map_err(|e| file_error(path, e.to_string()))?;
    if spec.channels == 0 || spec.sample_rate == 0 {
        return Err(file_error(
            path,
            format!(
                "damaged WAV header: {} channels at {} Hz",
                spec.channels, spec.sample_rate
            ),
        ));
    }
    let float = spec.sample_format == hound::SampleFormat::Float;
    if float && spec.bits_per_sample != 32 {
        return Err(AudioError::Unsupported(format!(
            "{}: {}-bit float samples (convert it to 16-bit or 32-bit float, e.g. `sox in.wav -b 16 out.wav`)",
            path.display(),
            spec.bits_per_sample
        )));
    }
    if !float && !(1..=32).contains(&spec.bits_per_sample) {
        return Err(AudioError::Unsupported(format!(
            "{}: {}-bit samples",
            path.display(),
            spec.bits_per_sample
        )));
    }
    // At least this many bytes per sample (24-bit may sit in 32-bit containers).
    let bytes = u64::from(spec.bits_per_sample.div_ceil(8));
    let data_len = samples * bytes;
    if data_start + data_len > file_len {
        let have = file_len.saturating_sub(data_start);
        return Err(file_error(
            path,
            format!(
                "the file is truncated: its header promises {data_len} bytes of audio but only {have} are there (an interrupted copy or recording?)"
            ),
        ));
    }
    let frames = samples / u64::from(spec.channels);
    Ok(WavInfo {
        channels: spec.channels,
        sample_rate: spec.sample_rate,
        bits_per_sample: spec.bits_per_sample,
        float,
        duration: frames as f64 / f64::from(spec.sample_rate),
    })
}

/// The file ended before what hound was reading (std's EOF, or hound's own short-read error).
fn is_short_read(e: &hound::Error) -> bool {
    matches!(e, hound::Error::IoError(io)
        if io.kind() == std::io::ErrorKind::UnexpectedEof || io.to_string().contains("enough bytes"))
}

fn hound_reason(e: &hound::Error) -> String {
    if is_short_read(e) {
        "it ends before its header does".into()
    } else {
        e.to_string()
    }
}

impl WavSource {
    /// Opens `path`, checks it, and starts sending its audio on `tx` from a thread of its own.
    pub fn start(
        path: &Path,
        map: ChannelMap,
        realtime: bool,
        tx: Sender<AudioEvent>,
    ) -> Result<WavSource, AudioError> {
        let info = probe(path)?;
        let reader =
            hound::WavReader::open(path).map_err(|e| file_error(path, hound_reason(&e)))?;
        let routes = routes(&map, info.channels);
        let mut outputs = Vec::with_capacity(routes.len());
        for (speaker, pick) in routes {
            outputs.push(Output {
                speaker,
                pick,
                resampler: Resampler::new(info.sample_rate)?,
                pending: Vec::new(),
                sent: 0,
            });
        }
        let description = format!(
            "file {} ({} ch, {} Hz, {:.1} s{})",
            path.display(),
            info.channels,
            info.sample_rate,
            info.duration,
            if realtime { ", real time" } else { "" }
        );
        let stop = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            path: path.to_path_buf(),
            info: info.clone(),
            outputs,
            realtime,
            tx,
            stop: Arc::clone(&stop),
        };
        let thread = std::thread::Builder::new()
            .name("wav-source".into())
            .spawn(move || worker.run(reader))
            .map_err(|e| AudioError::Device(format!("cannot start the file reader thread: {e}")))?;
        Ok(WavSource {
            description,
            info,
            stop,
            thread: Some(thread),
        })
    }

    /// The file's format and length.
    pub fn info(&self) -> &WavInfo {
        &self.info
    }

    /// True once everything was sent (or the receiver went away).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl AudioSource for WavSource {
    fn describe(&self) -> String {
        self.description.clone()
    }
}

impl Drop for WavSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Which input channel(s) a speaker's signal comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// The mean of all channels.
    Mix,
    Channel(usize),
}

/// The speakers a map gives for `channels` input channels, in output order.
pub fn routes(map: &ChannelMap, channels: u16) -> Vec<(Speaker, Pick)> {
    match map {
        ChannelMap::All(s) => vec![(*s, Pick::Mix)],
        ChannelMap::Stereo { left, right } if left == right => vec![(*left, Pick::Mix)],
        ChannelMap::Stereo { left, .. } if channels < 2 => vec![(*left, Pick::Channel(0))],
        ChannelMap::Stereo { left, right } => {
            vec![(*left, Pick::Channel(0)), (*right, Pick::Channel(1))]
        }
    }
}

/// Appends one speaker's mono signal from interleaved `frames`.
pub fn extract(frames: &[f32], channels: usize, pick: Pick, out: &mut Vec<f32>) {
    out.clear();
    match pick {
        Pick::Channel(c) => out.extend(frames.chunks_exact(channels).map(|f| f[c])),
        Pick::Mix if channels == 1 => out.extend_from_slice(frames),
        Pick::Mix => {
            let scale = 1.0 / channels as f32;
            out.extend(
                frames
                    .chunks_exact(channels)
                    .map(|f| f.iter().sum::<f32>() * scale),
            )
        }
    }
}

struct Output {
    speaker: Speaker,
    pick: Pick,
    resampler: Resampler,
    pending: Vec<i16>,
    /// Samples sent so far (16 kHz).
    sent: u64,
}

struct Worker {
    path: PathBuf,
    info: WavInfo,
    outputs: Vec<Output>,
    realtime: bool,
    tx: Sender<AudioEvent>,
    stop: Arc<AtomicBool>,
}

impl Worker {
    fn run(mut self, reader: hound::WavReader<BufReader<File>>) {
        let started = Instant::now();
        let channels = usize::from(self.info.channels);
        // 100 ms of input per read.
        let want = (self.info.sample_rate as usize / 10).max(1) * channels;
        let mut block: Vec<f32> = Vec::with_capacity(want);
        let mut mono: Vec<f32> = Vec::with_capacity(want);
        let mut samples = if self.info.float {
            Samples::Float(reader.into_samples::<f32>())
        } else {
            let bits = self.info.bits_per_sample.clamp(1, 32) - 1;
            Samples::Int(reader.into_samples::<i32>(), 1.0 / (1u64 << bits) as f32)
        };
        let mut failure: Option<String> = None;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            block.clear();
            while block.len() < want {
                match samples.next() {
                    Some(Ok(v)) => block.push(v),
                    Some(Err(e)) => {
                        failure = Some(read_reason(&e));
                        break;
                    }
                    None => break,
                }
            }
            let full = block.len() == want && failure.is_none();
            let whole = block.len() - block.len() % channels;
            if !self.push(&block[..whole], channels, &mut mono, started) {
                return;
            }
            if !full {
                break;
            }
        }
        if let Some(reason) = failure {
            tracing::warn!(path = %self.path.display(), "reading the WAV failed: {reason}");
            for out in &self.outputs {
                let lost = AudioEvent::Lost {
                    speaker: out.speaker,
                    reason: format!("reading {}: {reason}", self.path.display()),
                };
                if self.tx.send(lost).is_err() {
                    return;
                }
            }
        }
        for out in &mut self.outputs {
            let tail = out.resampler.finish();
            out.pending.extend(tail);
        }
        if !self.emit(true, started) {
            return;
        }
        let _ = self.tx.send(AudioEvent::End);
    }

    /// Resamples one block of interleaved frames and sends the chunks that are complete.
    /// False when the receiver is gone or the source was stopped.
    fn push(
        &mut self,
        frames: &[f32],
        channels: usize,
        mono: &mut Vec<f32>,
        started: Instant,
    ) -> bool {
        if frames.is_empty() {
            return true;
        }
        for out in &mut self.outputs {
            extract(frames, channels, out.pick, mono);
            out.resampler.process_into(mono, &mut out.pending);
        }
        self.emit(false, started)
    }

    /// Sends chunks in time order: chunk k of every speaker before chunk k+1 of any.
    fn emit(&mut self, all: bool, started: Instant) -> bool {
        loop {
            let ready = self
                .outputs
                .iter()
                .all(|o| o.pending.len() >= CHUNK_SAMPLES);
            let any = self.outputs.iter().any(|o| !o.pending.is_empty());
            if !(ready || (all && any)) {
                return true;
            }
            if self.realtime {
                // A chunk is sent when its last sample would have been heard.
                let longest = self
                    .outputs
                    .iter()
                    .map(|o| o.sent + o.pending.len().min(CHUNK_SAMPLES) as u64)
                    .max()
                    .unwrap_or(0);
                let due =
                    started + Duration::from_secs_f64(longest as f64 / f64::from(TARGET_RATE));
                while Instant::now() < due {
                    if self.stop.load(Ordering::Relaxed) {
                        return false;
                    }
                    let left = due.saturating_duration_since(Instant::now());
                    std::thread::sleep(left.min(Duration::from_millis(20)));
                }
            }
            for out in &mut self.outputs {
                let n = out.pending.len().min(CHUNK_SAMPLES);
                if n == 0 {
                    continue;
                }
                let samples: Vec<i16> = out.pending.drain(..n).collect();
                let chunk = Chunk {
                    speaker: out.speaker,
                    samples,
                    at: out.sent as f64 / f64::from(TARGET_RATE),
                };
                out.sent += n as u64;
                if self.tx.send(AudioEvent::Chunk(chunk)).is_err() {
                    return false;
                }
            }
            if self.stop.load(Ordering::Relaxed) {
                return false;
            }
        }
    }
}

/// The file's samples as f32 at full scale ±1.0.
enum Samples {
    Int(hound::WavIntoSamples<BufReader<File>, i32>, f32),
    Float(hound::WavIntoSamples<BufReader<File>, f32>),
}

impl Samples {
    fn next(&mut self) -> Option<Result<f32, hound::Error>> {
        match self {
            Samples::Int(it, scale) => it.next().map(|r| r.map(|v| v as f32 * *scale)),
            Samples::Float(it) => it.next(),
        }
    }
}

fn read_reason(e: &hound::Error) -> String {
    if is_short_read(e) {
        "the file ended before the length its header gives (cut or rewritten while read?)".into()
    } else {
        e.to_string()
    }
}
