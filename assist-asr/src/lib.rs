//! Speech to text where the audio is: the agent's machine (live) and the server (batch QC of
//! recordings). Audio never has to travel to be transcribed.
//!
//! - [`audio`]: the 16 kHz mono chunk stream both sides use, WAV files of any rate, format and
//!   channel count (with a channel-to-speaker map), and the rubato resampler.
//! - [`asr`]: Vosk recognizers, one per speaker, with partials, finals with word timings, the
//!   spaces Vosk puts between Chinese words removed, and prosody per utterance relative to the
//!   speaker's own baseline.
//!
//! Linking: libvosk comes from the `vosk` wheel on PyPI (scripts/fetch-libvosk.sh, run by the
//! build script when missing). Crates whose binaries link this one add a build script that
//! `include!`s `vosk_link.rs` for the rpath.

pub mod asr;
pub mod audio;
