//! Recordings: a WAV file transcribed here with Vosk, one recognizer per speaker, each on a
//! thread of its own, reading the file as fast as the recognizers take it (bounded channels:
//! memory does not grow with the length of the recording).
//!
//! Whose voice is where:
//!
//! - **stereo** (2 or more channels): `--channels agent-customer` (default: left = agent,
//!   right = customer) or `customer-agent`. Further channels are ignored.
//! - **mono**: a sidecar file `NAME.speakers.jsonl` beside `NAME.wav`, one segment per line,
//!   `{"start": 0.0, "end": 4.2, "speaker": "agent"}` (seconds; audio outside every segment
//!   is not transcribed); or, without one, `--mono-speaker agent|customer` (the whole file is
//!   that speaker). A mono file with neither is reported and skipped.
//!
//! Any rate and sample format hound reads (8/16/24/32-bit PCM, 32-bit float); resampled to
//! 16 kHz with the shared resampler of `assist-asr`. A truncated or non-PCM file is refused
//! before any decoding, with the reason.

use super::discover::InputFile;
use super::{Problem, Turn};
use assist_asr::asr::{join_cjk, AsrModel, Recognized, Transcriber};
use assist_asr::audio::resample::Resampler;
use assist_asr::audio::wav::{extract, probe, Pick};
use assist_asr::audio::{Chunk, TARGET_RATE};
use assist_protocol::Speaker;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

/// 100 ms at 16 kHz: what a recognizer is fed at a time.
const CHUNK: usize = (TARGET_RATE / 10) as usize;
/// Silence fed to a speaker's recognizer at the end of each of its segments (mono split), so
/// Vosk ends the utterance there instead of joining it to the speaker's next segment.
const SEGMENT_TAIL: usize = (TARGET_RATE / 2) as usize;

/// How recordings are laid out, and the model.
#[derive(Clone)]
pub struct AudioOptions {
    /// The loaded model, or why there is none (each recording then fails with it).
    pub model: Result<Arc<AsrModel>, String>,
    /// Stereo: (left, right).
    pub stereo: (Speaker, Speaker),
    /// Mono without a sidecar: the speaker of the whole file.
    pub mono: Option<Speaker>,
    /// `zh` / `en`; `None`: Chinese spaces are removed when the text is mostly Chinese.
    pub language: Option<String>,
}

/// One speaker segment of a mono recording.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
    pub speaker: Speaker,
}

/// The sidecar of a recording: `NAME.speakers.jsonl` beside `NAME.wav`.
pub fn sidecar_path(wav: &Path) -> PathBuf {
    wav.with_extension("speakers.jsonl")
}

/// Reads a sidecar file's segments (sorted by start).
pub fn read_sidecar(path: &Path) -> Result<Vec<Segment>, Problem> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Problem::at(shown.clone(), format!("cannot read the speaker file: {e}")))?;
    let mut segments = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let segment: Segment = serde_json::from_str(line).map_err(|e| {
            Problem::at(
                format!("{shown}:{}", i + 1),
                format!("not a speaker segment {{\"start\",\"end\",\"speaker\"}}: {e}"),
            )
        })?;
        if !(segment.start.is_finite() && segment.end.is_finite())
            || segment.start < 0.0
            || segment.end <= segment.start
        {
            return Err(Problem::at(
                format!("{shown}:{}", i + 1),
                "a segment needs 0 <= start < end (seconds)",
            ));
        }
        segments.push(segment);
    }
    if segments.is_empty() {
        return Err(Problem::at(shown, "the speaker file has no segment"));
    }
    segments.sort_by(|a, b| a.start.total_cmp(&b.start));
    Ok(segments)
}

/// A recording transcribed.
#[derive(Debug, Clone)]
pub struct Transcribed {
    pub turns: Vec<Turn>,
    /// Seconds of audio.
    pub duration: f64,
}

enum Feed {
    Chunk(Chunk),
    End,
}

/// Transcribes `file`; `progress` is told the bytes of the file read as decoding goes on.
pub fn transcribe(
    file: &InputFile,
    options: &AudioOptions,
    progress: &dyn Fn(u64),
) -> Result<Transcribed, Problem> {
    let shown = file.shown();
    let fail = |message: String| Problem::at(shown.clone(), message);
    let info = probe(&file.path).map_err(|e| {
        let text = e.to_string();
        let hint = if text.contains("unsupported") || text.contains("Unsupported") {
            " (convert it to 16-bit PCM, e.g. `sox in.wav -b 16 out.wav`)"
        } else {
            ""
        };
        fail(format!("{text}{hint}"))
    })?;
    // Which streams to transcribe: (speaker, pick) and, for a mono split, the segments.
    let sidecar = sidecar_path(&file.path);
    let (streams, segments): (Vec<(Speaker, Pick)>, Option<Vec<Segment>>) = if info.channels >= 2 {
        let (left, right) = options.stereo;
        if left == right {
            (vec![(left, Pick::Mix)], None)
        } else {
            (
                vec![(left, Pick::Channel(0)), (right, Pick::Channel(1))],
                None,
            )
        }
    } else if sidecar.exists() {
        let segments = read_sidecar(&sidecar)?;
        let mut speakers: Vec<Speaker> = segments.iter().map(|s| s.speaker).collect();
        speakers.sort_by_key(|s| s.as_str());
        speakers.dedup();
        (
            speakers.into_iter().map(|s| (s, Pick::Mix)).collect(),
            Some(segments),
        )
    } else if let Some(speaker) = options.mono {
        (vec![(speaker, Pick::Mix)], None)
    } else {
        return Err(fail(format!(
            "a mono recording: say whose voice it is with --mono-speaker agent|customer, or give its speaker segments in {}",
            sidecar.display()
        )));
    };
    let model = options.model.clone().map_err(fail)?;
    let hint = options.language.clone().unwrap_or_else(|| "auto".into());
    // One recognizer thread per speaker.
    let mut senders: Vec<(Speaker, SyncSender<Feed>)> = Vec::new();
    let mut workers = Vec::new();
    let mut speakers: Vec<Speaker> = streams.iter().map(|(s, _)| *s).collect();
    speakers.dedup();
    for speaker in speakers {
        let (tx, rx) = sync_channel::<Feed>(64);
        let transcriber = Transcriber::new(&model, speaker, &hint)
            .map_err(|e| fail(format!("cannot start speech recognition: {e}")))?;
        let worker = std::thread::Builder::new()
            .name(format!("qc-asr-{}", speaker.as_str()))
            .spawn(move || recognize(transcriber, rx))
            .map_err(|e| fail(format!("cannot start a recognizer thread: {e}")))?;
        senders.push((speaker, tx));
        workers.push(worker);
    }
    let read = read_audio(
        &file.path,
        &info,
        &streams,
        segments.as_deref(),
        &senders,
        progress,
    );
    for (_, tx) in &senders {
        let _ = tx.send(Feed::End);
    }
    drop(senders);
    let mut finals = Vec::new();
    for worker in workers {
        match worker.join() {
            Ok(out) => finals.extend(out),
            Err(_) => return Err(fail("speech recognition failed on this file".into())),
        }
    }
    read.map_err(fail)?;
    let mut turns: Vec<Turn> = finals
        .into_iter()
        .filter_map(|r| match r {
            Recognized::Final {
                speaker,
                text,
                start,
                end,
                prosody,
                ..
            } => Some(Turn {
                speaker,
                text: if options.language.is_none() && assist_engine::text::is_mostly_cjk(&text) {
                    join_cjk(&text)
                } else {
                    text
                },
                start,
                end: Some(end),
                prosody: Some(prosody),
                line: 0,
            }),
            Recognized::Partial { .. } => None,
        })
        .filter(|t| !t.text.trim().is_empty())
        .collect();
    turns.sort_by(|a, b| a.start.total_cmp(&b.start));
    Ok(Transcribed {
        turns,
        duration: info.duration,
    })
}

fn recognize(mut transcriber: Transcriber, rx: Receiver<Feed>) -> Vec<Recognized> {
    let mut out = Vec::new();
    while let Ok(feed) = rx.recv() {
        match feed {
            Feed::Chunk(chunk) => out.extend(
                transcriber
                    .feed(&chunk)
                    .into_iter()
                    .filter(|r| matches!(r, Recognized::Final { .. })),
            ),
            Feed::End => break,
        }
    }
    out.extend(transcriber.flush());
    out
}

/// One resampled stream being cut into chunks.
struct Stream {
    speaker: Speaker,
    pick: Pick,
    resampler: Resampler,
    pending: Vec<i16>,
    /// 16 kHz samples sent so far.
    sent: u64,
}

/// Reads the file in 100 ms blocks, resamples each stream and feeds the recognizers.
fn read_audio(
    path: &Path,
    info: &assist_asr::audio::wav::WavInfo,
    streams: &[(Speaker, Pick)],
    segments: Option<&[Segment]>,
    senders: &[(Speaker, SyncSender<Feed>)],
    progress: &dyn Fn(u64),
) -> Result<(), String> {
    let reader = hound::WavReader::open(path).map_err(|e| format!("cannot read the WAV: {e}"))?;
    let channels = usize::from(info.channels);
    let mut outs: Vec<Stream> = Vec::new();
    for (speaker, pick) in streams {
        outs.push(Stream {
            speaker: *speaker,
            pick: *pick,
            resampler: Resampler::new(info.sample_rate).map_err(|e| e.to_string())?,
            pending: Vec::new(),
            sent: 0,
        });
    }
    // A mono split resamples once and cuts by segment.
    if segments.is_some() {
        outs.truncate(1);
    }
    let mut router = Router {
        senders,
        segments,
        next_segment: 0,
        current: None,
    };
    let want = (info.sample_rate as usize / 10).max(1) * channels;
    let bytes_per_sample = u64::from(info.bits_per_sample.div_ceil(8));
    let mut block: Vec<f32> = Vec::with_capacity(want);
    let mut mono: Vec<f32> = Vec::with_capacity(want);
    let mut samples: Box<dyn Iterator<Item = Result<f32, hound::Error>>> = if info.float {
        Box::new(reader.into_samples::<f32>())
    } else {
        let bits = info.bits_per_sample.clamp(1, 32) - 1;
        let scale = 1.0 / (1u64 << bits) as f32;
        Box::new(
            reader
                .into_samples::<i32>()
                .map(move |r| r.map(|v| v as f32 * scale)),
        )
    };
    loop {
        block.clear();
        let mut failure = None;
        while block.len() < want {
            match samples.next() {
                Some(Ok(v)) => block.push(v),
                Some(Err(e)) => {
                    failure = Some(e.to_string());
                    break;
                }
                None => break,
            }
        }
        let whole = block.len() - block.len() % channels;
        progress(whole as u64 * bytes_per_sample);
        let last = block.len() < want || failure.is_some();
        for out in &mut outs {
            extract(&block[..whole], channels, out.pick, &mut mono);
            out.resampler.process_into(&mono, &mut out.pending);
            if last {
                let tail = out.resampler.finish();
                out.pending.extend(tail);
            }
            while out.pending.len() >= CHUNK || (last && !out.pending.is_empty()) {
                let n = out.pending.len().min(CHUNK);
                let samples: Vec<i16> = out.pending.drain(..n).collect();
                let at = out.sent as f64 / f64::from(TARGET_RATE);
                out.sent += n as u64;
                if !router.send(out.speaker, samples, at) {
                    return Err("speech recognition stopped early".into());
                }
            }
        }
        if let Some(reason) = failure {
            return Err(format!(
                "reading the audio failed after {:.1}s: {reason}",
                outs.first().map_or(0, |o| o.sent) as f64 / f64::from(TARGET_RATE)
            ));
        }
        if last {
            router.close_segment();
            return Ok(());
        }
    }
}

/// Sends chunks to the recognizers: all of a chunk to its stream's speaker, or (mono split)
/// each piece to the speaker of the segment it falls in.
struct Router<'a> {
    senders: &'a [(Speaker, SyncSender<Feed>)],
    segments: Option<&'a [Segment]>,
    next_segment: usize,
    /// The segment being fed (index), for the silence at its end.
    current: Option<usize>,
}

impl Router<'_> {
    fn to(&self, speaker: Speaker, samples: Vec<i16>, at: f64) -> bool {
        match self.senders.iter().find(|(s, _)| *s == speaker) {
            Some((_, tx)) => tx
                .send(Feed::Chunk(Chunk {
                    speaker,
                    samples,
                    at,
                }))
                .is_ok(),
            None => true,
        }
    }

    fn send(&mut self, speaker: Speaker, samples: Vec<i16>, at: f64) -> bool {
        let Some(segments) = self.segments else {
            return self.to(speaker, samples, at);
        };
        let rate = f64::from(TARGET_RATE);
        let mut i = 0;
        while i < samples.len() {
            let t = at + i as f64 / rate;
            // Move past segments that ended.
            while self.next_segment < segments.len() && segments[self.next_segment].end <= t {
                self.next_segment += 1;
            }
            let Some(seg) = segments.get(self.next_segment).copied() else {
                break;
            };
            if t < seg.start {
                // A gap: skip to the segment's start (or the end of this chunk).
                if !self.close_segment() {
                    return false;
                }
                let skip = ((seg.start - at) * rate).ceil().max(0.0) as usize;
                i = skip.max(i + 1).min(samples.len());
                continue;
            }
            if self.current != Some(self.next_segment) && !self.close_segment() {
                return false;
            }
            self.current = Some(self.next_segment);
            let stop =
                (((seg.end - at) * rate).ceil().max(0.0) as usize).clamp(i + 1, samples.len());
            if !self.to(seg.speaker, samples[i..stop].to_vec(), t) {
                return false;
            }
            i = stop;
        }
        true
    }

    /// Silence at the end of the segment being fed, so its utterance ends there.
    fn close_segment(&mut self) -> bool {
        let (Some(index), Some(segments)) = (self.current.take(), self.segments) else {
            return true;
        };
        let seg = segments[index];
        self.to(seg.speaker, vec![0; SEGMENT_TAIL], seg.end)
    }
}
