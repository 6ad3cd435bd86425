//! Prosody of an utterance — how fast, how high and how loud someone speaks — relative to that
//! speaker's own usual, for the server's emotion reading.
//!
//! [`measure`] takes an utterance's audio (16 kHz or any rate, mono i16) and its word timings and
//! gives absolute [`Measures`]:
//!
//! - **rate**: words per second of voiced time (the summed durations of the words), counting each
//!   Han, kana or Hangul character as one unit, so Chinese is measured in characters and Korean
//!   in syllables per second;
//! - **pitch**: the median fundamental frequency (YIN over 30 ms frames with a 10 ms hop,
//!   70–400 Hz) of the voiced frames;
//! - **energy**: the RMS of the voiced frames (full scale = 1.0).
//!
//! A frame is voiced when it lies inside a word and is no more than 20 dB below the utterance's
//! loud frames (and above an absolute noise floor). [`ProsodyTracker`] keeps one speaker's
//! running baseline — an exponential moving average over previous utterances, the first utterance
//! being its own baseline (1.0) — and turns measures into [`Prosody`] ratios (1.0 = usual,
//! `None` when not measurable, e.g. pitch of a whisper).

use super::WordTiming;
use assist_protocol::Prosody;

/// Lowest and highest pitch looked for, in Hz.
pub const PITCH_MIN_HZ: f32 = 70.0;
pub const PITCH_MAX_HZ: f32 = 400.0;
/// Weight of a new utterance in the running baseline.
pub const BASELINE_WEIGHT: f32 = 0.25;
/// Frame RMS below this (about -60 dBFS) is never voiced.
const NOISE_FLOOR: f32 = 0.001;
/// Frames more than this far below the loud frames (as an RMS ratio, -20 dB) are not voiced.
const RELATIVE_FLOOR: f32 = 0.1;
/// YIN's threshold on the cumulative mean normalized difference.
const YIN_THRESHOLD: f32 = 0.15;
/// Above this the best YIN dip is not periodic enough to call a pitch.
const YIN_ACCEPT: f32 = 0.35;
/// Fewer pitched frames than this and there is no pitch to speak of.
const MIN_PITCHED_FRAMES: usize = 3;

/// Absolute measures of one utterance.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Measures {
    /// Words (or Han characters) per voiced second.
    pub rate: Option<f32>,
    /// Median pitch in Hz.
    pub pitch: Option<f32>,
    /// RMS of the voiced frames, full scale 1.0.
    pub energy: Option<f32>,
}

/// How many rate units a word counts for: its Han, kana or Hangul characters (one syllable
/// each), or 1 for other words.
pub fn speech_units(word: &str) -> usize {
    let cjk = word
        .chars()
        .filter(|&c| is_cjk(c) || is_hangul_syllable(c))
        .count();
    if cjk > 0 {
        cjk
    } else {
        usize::from(!word.trim().is_empty())
    }
}

/// A precomposed Hangul syllable.
pub fn is_hangul_syllable(c: char) -> bool {
    ('\u{AC00}'..='\u{D7A3}').contains(&c)
}

/// Han ideographs and Japanese kana: the scripts written without spaces between words.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF   // kana
        | 0x3400..=0x4DBF // CJK extension A
        | 0x4E00..=0x9FFF // CJK unified ideographs
        | 0xF900..=0xFAFF // compatibility ideographs
        | 0x20000..=0x2FA1F)
}

/// Measures an utterance. `words` are timed in seconds from `samples[0]`; with no words the
/// whole audio counts as speech (and there is no rate).
pub fn measure(samples: &[i16], sample_rate: u32, words: &[WordTiming]) -> Measures {
    let rate = speech_rate(words);
    if sample_rate == 0 || samples.is_empty() {
        return Measures {
            rate,
            ..Measures::default()
        };
    }
    let sr = sample_rate as f32;
    let frame = (sr * 0.030).round() as usize;
    let hop = (sr * 0.010).round().max(1.0) as usize;
    if samples.len() < frame {
        return Measures {
            rate,
            ..Measures::default()
        };
    }
    let signal: Vec<f32> = samples.iter().map(|&s| f32::from(s) / 32768.0).collect();
    // Frames inside words, with their RMS.
    let mut frames: Vec<(usize, f32)> = Vec::new();
    let mut start = 0;
    while start + frame <= signal.len() {
        let center = (start + frame / 2) as f64 / f64::from(sample_rate);
        let in_word = words.is_empty()
            || words
                .iter()
                .any(|w| center >= w.start - 0.01 && center <= w.end + 0.01);
        if in_word {
            let x = &signal[start..start + frame];
            let rms = (x.iter().map(|v| v * v).sum::<f32>() / frame as f32).sqrt();
            frames.push((start, rms));
        }
        start += hop;
    }
    if frames.is_empty() {
        return Measures {
            rate,
            ..Measures::default()
        };
    }
    let mut levels: Vec<f32> = frames.iter().map(|f| f.1).collect();
    levels.sort_by(f32::total_cmp);
    let loud = levels[((levels.len() - 1) as f32 * 0.95) as usize];
    let floor = (loud * RELATIVE_FLOOR).max(NOISE_FLOOR);
    let voiced: Vec<(usize, f32)> = frames.into_iter().filter(|f| f.1 >= floor).collect();
    if voiced.is_empty() {
        return Measures {
            rate,
            ..Measures::default()
        };
    }
    let energy = (voiced.iter().map(|f| f.1 * f.1).sum::<f32>() / voiced.len() as f32).sqrt();
    let mut pitches: Vec<f32> = voiced
        .iter()
        .filter_map(|&(start, _)| yin(&signal[start..start + frame], sr))
        .collect();
    let pitch = if pitches.len() >= MIN_PITCHED_FRAMES {
        pitches.sort_by(f32::total_cmp);
        Some(pitches[pitches.len() / 2])
    } else {
        None
    };
    Measures {
        rate,
        pitch,
        energy: Some(energy),
    }
}

fn speech_rate(words: &[WordTiming]) -> Option<f32> {
    let units: usize = words.iter().map(|w| speech_units(&w.word)).sum();
    let voiced: f64 = words.iter().map(|w| (w.end - w.start).max(0.0)).sum();
    (units > 0 && voiced >= 0.2).then(|| (units as f64 / voiced) as f32)
}

/// The fundamental frequency of one frame by YIN, or None when it is not periodic in range.
pub fn yin(frame: &[f32], sample_rate: f32) -> Option<f32> {
    let tau_min = (sample_rate / PITCH_MAX_HZ).floor().max(2.0) as usize;
    let tau_max = (sample_rate / PITCH_MIN_HZ).ceil() as usize;
    if frame.len() < tau_max + tau_min {
        return None;
    }
    let window = frame.len() - tau_max;
    let mean = frame.iter().sum::<f32>() / frame.len() as f32;
    let x: Vec<f32> = frame.iter().map(|v| v - mean).collect();
    // Difference function and its cumulative mean normalization.
    let mut cmnd = vec![1.0f32; tau_max + 1];
    let mut running = 0.0f32;
    for tau in 1..=tau_max {
        let mut d = 0.0f32;
        for j in 0..window {
            let diff = x[j] - x[j + tau];
            d += diff * diff;
        }
        running += d;
        cmnd[tau] = if running > 0.0 {
            d * tau as f32 / running
        } else {
            1.0
        };
    }
    let mut best = None;
    let mut tau = tau_min;
    while tau < tau_max {
        if cmnd[tau] < YIN_THRESHOLD {
            while tau + 1 < tau_max && cmnd[tau + 1] < cmnd[tau] {
                tau += 1;
            }
            best = Some(tau);
            break;
        }
        tau += 1;
    }
    let tau = match best {
        Some(t) => t,
        None => {
            let (t, v) = (tau_min..tau_max)
                .map(|t| (t, cmnd[t]))
                .min_by(|a, b| a.1.total_cmp(&b.1))?;
            if v > YIN_ACCEPT {
                return None;
            }
            t
        }
    };
    // Parabolic interpolation around the dip.
    let refined = if tau > 1 && tau < tau_max {
        let (a, b, c) = (cmnd[tau - 1], cmnd[tau], cmnd[tau + 1]);
        let denom = a - 2.0 * b + c;
        if denom.abs() > f32::EPSILON {
            tau as f32 + 0.5 * (a - c) / denom
        } else {
            tau as f32
        }
    } else {
        tau as f32
    };
    let f0 = sample_rate / refined;
    (PITCH_MIN_HZ..=PITCH_MAX_HZ).contains(&f0).then_some(f0)
}

/// One speaker's running prosody baseline.
#[derive(Debug, Clone, Default)]
pub struct ProsodyTracker {
    baseline: Measures,
    utterances: u64,
}

impl ProsodyTracker {
    pub fn new() -> ProsodyTracker {
        ProsodyTracker::default()
    }

    /// Measures an utterance (see [`measure`]), relates it to the baseline and adds it to it.
    pub fn observe(&mut self, samples: &[i16], sample_rate: u32, words: &[WordTiming]) -> Prosody {
        let m = measure(samples, sample_rate, words);
        self.relate(m)
    }

    /// Relates measures to the baseline of the utterances before, then updates the baseline.
    pub fn relate(&mut self, m: Measures) -> Prosody {
        self.utterances += 1;
        Prosody {
            rate: step(&mut self.baseline.rate, m.rate),
            pitch: step(&mut self.baseline.pitch, m.pitch),
            energy: step(&mut self.baseline.energy, m.energy),
        }
    }

    /// The current baseline (absolute values).
    pub fn baseline(&self) -> Measures {
        self.baseline
    }

    /// Utterances seen.
    pub fn utterances(&self) -> u64 {
        self.utterances
    }
}

fn step(baseline: &mut Option<f32>, value: Option<f32>) -> Option<f32> {
    let value = value.filter(|v| v.is_finite() && *v > 0.0)?;
    match baseline {
        None => {
            *baseline = Some(value);
            Some(1.0)
        }
        Some(base) => {
            let ratio = value / *base;
            *base = (1.0 - BASELINE_WEIGHT) * *base + BASELINE_WEIGHT * value;
            Some(ratio)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voice(f0: f32, amp: f32, secs: f32) -> Vec<i16> {
        let sr = 16_000.0;
        (0..(secs * sr) as usize)
            .map(|i| {
                let t = i as f32 / sr;
                let v: f32 = (1..=5)
                    .map(|h| (std::f32::consts::TAU * f0 * h as f32 * t).sin() / h as f32)
                    .sum();
                (v * amp * 32767.0 * 0.5) as i16
            })
            .collect()
    }

    fn words(n: usize, secs: f64) -> Vec<WordTiming> {
        (0..n)
            .map(|i| WordTiming {
                word: format!("w{i}"),
                start: secs * i as f64 / n as f64,
                end: secs * (i + 1) as f64 / n as f64 - 0.02,
                conf: 1.0,
            })
            .collect()
    }

    #[test]
    fn yin_finds_harmonic_pitch() {
        for f0 in [90.0, 120.0, 180.0, 250.0, 350.0] {
            let v = voice(f0, 0.5, 0.03);
            let x: Vec<f32> = v.iter().map(|&s| f32::from(s) / 32768.0).collect();
            let got = yin(&x, 16_000.0).expect("pitched");
            assert!((got - f0).abs() / f0 < 0.02, "{f0} -> {got}");
        }
    }

    #[test]
    fn louder_higher_faster_relative_to_baseline() {
        let mut t = ProsodyTracker::new();
        let first = t.observe(&voice(150.0, 0.2, 2.0), 16_000, &words(5, 2.0));
        assert_eq!(first.pitch, Some(1.0));
        assert_eq!(first.energy, Some(1.0));
        assert_eq!(first.rate, Some(1.0));
        let second = t.observe(&voice(200.0, 0.6, 2.0), 16_000, &words(8, 2.0));
        let pitch = second.pitch.expect("pitch");
        let energy = second.energy.expect("energy");
        let rate = second.rate.expect("rate");
        assert!((pitch - 200.0 / 150.0).abs() < 0.05, "pitch {pitch}");
        assert!((energy - 3.0).abs() < 0.2, "energy {energy}");
        assert!((rate - 1.6).abs() < 0.1, "rate {rate}");
    }

    #[test]
    fn silence_and_noise_have_no_pitch() {
        let m = measure(&vec![0i16; 16_000], 16_000, &[]);
        assert_eq!(m.pitch, None);
        assert_eq!(m.energy, None);
        let mut seed = 1u32;
        let noise: Vec<i16> = (0..16_000)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((seed >> 16) as i16) / 4
            })
            .collect();
        assert_eq!(measure(&noise, 16_000, &[]).pitch, None);
    }

    #[test]
    fn chinese_counts_characters() {
        assert_eq!(speech_units("你好"), 2);
        assert_eq!(speech_units("refund"), 1);
        assert_eq!(speech_units("환불을"), 3);
    }
}
