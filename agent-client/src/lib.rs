//! The agent's side of live assist.
//!
//! Audio in ([`audio`]: the agent's microphone and the call's far end through cpal, or a WAV
//! file), local transcription ([`asr`]: Vosk, one recognizer per speaker, prosody), text out over
//! the [`link`] (a WebSocket to the assist server that survives drops without losing or doubling
//! an utterance), and what comes back shown in the overlay ([`ui`]) or printed headless.
//! Audio never leaves the machine: only text is sent.

pub use assist_asr::asr;
pub mod audio;
pub mod link;
pub mod metrics;
pub mod pipeline;
pub mod stop;
pub mod transcript;
pub mod ui;
