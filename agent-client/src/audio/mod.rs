//! Audio in: the agent's microphone and the call's far end through cpal ([`device`]), or a WAV
//! file ([`wav`]), as 16 kHz mono chunks tagged with their speaker. The file source, the
//! resampler and the types live in `assist-asr` (batch QC on the server reads recordings with
//! the same code); live devices are the client's own.

pub mod device;

pub use assist_asr::audio::{
    resample, wav, AudioError, AudioEvent, AudioSource, ChannelMap, Chunk, TARGET_RATE,
};
