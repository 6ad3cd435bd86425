//! Streaming conversion of one mono signal to [`TARGET_RATE`] (16 kHz) i16, shared by the file
//! and the device paths.
//!
//! [`Resampler`] wraps rubato's synchronous FFT resampler: feed it f32 samples in pieces of any
//! size with [`Resampler::process`], and call [`Resampler::finish`] at the end of the stream.
//! The resampler's own delay is removed, so output sample `n` is the input at time
//! `n / 16000` s, and the total output length is exactly `round(input_len * 16000 / from_rate)`
//! (durations are kept). At 16 kHz input it is a plain conversion without filtering.

use super::{AudioError, TARGET_RATE};
use rubato::{FftFixedIn, Resampler as _};

/// Converts an f32 sample (full scale ±1.0) to i16, clipping.
pub fn f32_to_i16(x: f32) -> i16 {
    if x.is_nan() {
        return 0;
    }
    (x.clamp(-1.0, 1.0) * 32767.0).round() as i16
}

/// A mono streaming resampler from `from_rate` to 16 kHz.
pub struct Resampler {
    from_rate: u32,
    inner: Option<Inner>,
    /// Input samples seen so far.
    consumed: u64,
    /// Output samples returned so far.
    produced: u64,
    finished: bool,
}

struct Inner {
    fft: FftFixedIn<f32>,
    /// Input not yet given to rubato (less than one of its chunks).
    pending: Vec<f32>,
    /// Leading output samples still to drop (rubato's delay).
    skip: usize,
    out: Vec<Vec<f32>>,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler")
            .field("from_rate", &self.from_rate)
            .field("consumed", &self.consumed)
            .field("produced", &self.produced)
            .finish()
    }
}

impl Resampler {
    /// A resampler for a mono signal at `from_rate` Hz.
    pub fn new(from_rate: u32) -> Result<Resampler, AudioError> {
        if from_rate == 0 {
            return Err(AudioError::Unsupported(
                "a sample rate of 0 Hz (damaged header?)".into(),
            ));
        }
        let inner = if from_rate == TARGET_RATE {
            None
        } else {
            // About 20 ms per FFT chunk: low latency for live devices, cheap for files.
            let chunk = (from_rate as usize / 50).max(64);
            let fft = FftFixedIn::<f32>::new(from_rate as usize, TARGET_RATE as usize, chunk, 1, 1)
                .map_err(|e| {
                    AudioError::Unsupported(format!(
                        "cannot resample {from_rate} Hz to {TARGET_RATE} Hz: {e}"
                    ))
                })?;
            let skip = fft.output_delay();
            let out = fft.output_buffer_allocate(true);
            Some(Inner {
                pending: Vec::with_capacity(fft.input_frames_max()),
                fft,
                skip,
                out,
            })
        };
        Ok(Resampler {
            from_rate,
            inner,
            consumed: 0,
            produced: 0,
            finished: false,
        })
    }

    /// The input rate.
    pub fn from_rate(&self) -> u32 {
        self.from_rate
    }

    /// Resamples the next piece of the signal; returns what is ready (possibly nothing yet).
    pub fn process(&mut self, input: &[f32]) -> Vec<i16> {
        let mut out =
            Vec::with_capacity(input.len() * TARGET_RATE as usize / self.from_rate as usize + 16);
        self.process_into(input, &mut out);
        out
    }

    /// Like [`process`](Self::process), appending to `out`.
    pub fn process_into(&mut self, input: &[f32], out: &mut Vec<i16>) {
        self.consumed += input.len() as u64;
        let before = out.len();
        match &mut self.inner {
            None => out.extend(input.iter().map(|&x| f32_to_i16(x))),
            Some(inner) => {
                let mut rest = input;
                while !rest.is_empty() {
                    let need = inner.fft.input_frames_next() - inner.pending.len();
                    let take = need.min(rest.len());
                    inner.pending.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                    if inner.pending.len() == inner.fft.input_frames_next() {
                        inner.run(out);
                        inner.pending.clear();
                    }
                }
            }
        }
        self.produced += (out.len() - before) as u64;
    }

    /// The end of the stream: returns the rest, so that the whole output is exactly as long as
    /// the input in time. Further calls return nothing.
    pub fn finish(&mut self) -> Vec<i16> {
        let mut out = Vec::new();
        if self.finished {
            return out;
        }
        self.finished = true;
        let expected =
            (self.consumed as f64 * TARGET_RATE as f64 / self.from_rate as f64).round() as u64;
        if let Some(inner) = &mut self.inner {
            // Push the tail through with silence until everything real has come out.
            let mut guard = 0;
            while self.produced + (out.len() as u64) < expected && guard < 64 {
                let need = inner.fft.input_frames_next();
                inner.pending.resize(need, 0.0);
                inner.run(&mut out);
                inner.pending.clear();
                guard += 1;
            }
        }
        let keep = expected.saturating_sub(self.produced) as usize;
        out.truncate(keep);
        self.produced += out.len() as u64;
        out
    }

    /// Samples returned so far (at 16 kHz).
    pub fn produced(&self) -> u64 {
        self.produced
    }
}

impl Inner {
    fn run(&mut self, out: &mut Vec<i16>) {
        let input = [&self.pending[..]];
        match self.fft.process_into_buffer(&input, &mut self.out, None) {
            Ok((_, written)) => {
                let samples = &self.out[0][..written];
                let skip = self.skip.min(samples.len());
                self.skip -= skip;
                out.extend(samples[skip..].iter().map(|&x| f32_to_i16(x)));
            }
            Err(e) => {
                // Cannot happen with buffers sized by rubato itself; keep time by emitting silence.
                tracing::warn!("resampling failed: {e}");
                let n = self.fft.output_frames_next();
                out.extend(std::iter::repeat_n(0, n));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_duration_at_common_rates() {
        for rate in [8_000u32, 11_025, 16_000, 22_050, 44_100, 48_000] {
            let mut r = Resampler::new(rate).expect("resampler");
            let mut out = Vec::new();
            // Odd piece sizes, 1 s in total.
            let signal: Vec<f32> = (0..rate)
                .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin() * 0.5)
                .collect();
            for piece in signal.chunks(777) {
                out.extend(r.process(piece));
            }
            out.extend(r.finish());
            assert_eq!(out.len(), 16_000, "rate {rate}");
        }
    }

    #[test]
    fn no_delay_on_a_click() {
        let mut r = Resampler::new(48_000).expect("resampler");
        let mut signal = vec![0f32; 48_000];
        signal[24_000] = 1.0;
        let mut out = r.process(&signal);
        out.extend(r.finish());
        let peak = out
            .iter()
            .enumerate()
            .max_by_key(|(_, s)| s.unsigned_abs())
            .map(|(i, _)| i)
            .expect("samples");
        assert!((peak as i64 - 8_000).abs() <= 2, "peak at {peak}");
    }
}
