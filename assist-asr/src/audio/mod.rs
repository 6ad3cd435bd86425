//! Audio in: the agent's microphone and the call's far end, as 16 kHz mono i16 chunks tagged
//! with their speaker.
//!
//! Two kinds of source sit behind [`AudioSource`]: live devices through cpal (in the agent
//! client) and WAV files ([`wav`]) for replays, demos, tests and batch QC. Both deliver [`AudioEvent`]s on a channel;
//! the audio callback itself never blocks or allocates (it writes into a ring buffer that a
//! worker thread drains, converts and resamples).

pub mod resample;
pub mod wav;

use assist_protocol::Speaker;

/// The sample rate everything downstream (Vosk, prosody) works at.
pub const TARGET_RATE: u32 = 16_000;

/// A piece of one speaker's audio, 16 kHz mono.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub speaker: Speaker,
    pub samples: Vec<i16>,
    /// Seconds from the start of the call to the first sample.
    pub at: f64,
}

/// What a source reports.
#[derive(Debug, Clone, PartialEq)]
pub enum AudioEvent {
    Chunk(Chunk),
    /// A device stopped delivering (unplugged, driver error). The call goes on without it.
    Lost {
        speaker: Speaker,
        reason: String,
    },
    /// A file source reached its end.
    End,
}

/// Why a source could not start.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("cannot open {path}: {reason}")]
    File { path: String, reason: String },
    #[error("unsupported audio: {0}")]
    Unsupported(String),
    #[error("no input device matches `{0}` (see --list-devices)")]
    NoSuchDevice(String),
    #[error("no input device available: {0}")]
    NoDevice(String),
    #[error("audio device error: {0}")]
    Device(String),
}

/// Which channel of a multi-channel input is whose voice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelMap {
    /// Mono (or mixed down): everything is this speaker.
    All(Speaker),
    /// Left = agent, right = customer (or the other way round).
    Stereo { left: Speaker, right: Speaker },
}

impl Default for ChannelMap {
    fn default() -> Self {
        ChannelMap::Stereo {
            left: Speaker::Agent,
            right: Speaker::Customer,
        }
    }
}

/// A running source. Dropping it stops it.
pub trait AudioSource: Send {
    /// A human-readable description for the log and the overlay.
    fn describe(&self) -> String;
}
