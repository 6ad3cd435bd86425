//! From recognized speech to protocol messages: seq numbering over both speakers, partials sent
//! with a tentative seq, finals with the next one. Shared by the live devices and `--audio-file`.
//!
//! [`transcribe`] runs one recognizer thread per speaker and merges their results; the
//! [`Sequencer`] then numbers them.

use crate::asr::{Recognized, Transcriber};
use crate::audio::{AudioEvent, Chunk, TARGET_RATE};
use crate::link::Outgoing;
use crate::ui::model::UiEvent;
use assist_protocol::{Speaker, Utterance};
use std::collections::VecDeque;
use std::sync::mpsc;
use std::time::Instant;

/// Numbers a call's utterances.
#[derive(Debug, Default)]
pub struct Sequencer {
    last_final: u64,
}

impl Sequencer {
    /// The message for the server and the line for the overlay, or None for nothing to send.
    pub fn next(&mut self, recognized: Recognized) -> Option<(Outgoing, UiEvent)> {
        match recognized {
            Recognized::Partial {
                speaker,
                text,
                start,
            } => {
                if text.trim().is_empty() {
                    return None;
                }
                let utterance = Utterance {
                    seq: self.last_final + 1,
                    speaker,
                    partial: true,
                    text: text.clone(),
                    start,
                    end: None,
                    prosody: None,
                };
                Some((
                    Outgoing::Utterance(utterance),
                    UiEvent::Transcript {
                        speaker,
                        text,
                        start,
                        partial: true,
                    },
                ))
            }
            Recognized::Final {
                speaker,
                text,
                start,
                end,
                prosody,
                ..
            } => {
                if text.trim().is_empty() {
                    return None;
                }
                self.last_final += 1;
                let utterance = Utterance {
                    seq: self.last_final,
                    speaker,
                    partial: false,
                    text: text.clone(),
                    start,
                    end: Some(end),
                    prosody: Some(prosody),
                };
                Some((
                    Outgoing::Utterance(utterance),
                    UiEvent::Transcript {
                        speaker,
                        text,
                        start,
                        partial: false,
                    },
                ))
            }
        }
    }
}

/// How the finals of the two speakers are put in order before they get their seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalOrder {
    /// As they come out of the recognizers: live audio, where both keep pace with the call and
    /// any wait would be latency the agent feels.
    Arrival,
    /// By the call time they end at: a file decoded faster than real time, where one speaker's
    /// recognizer may run ahead of the other's. A final is held until every other speaker's
    /// recognizer has decoded [`ORDER_MARGIN_SECONDS`] past its end.
    CallTime,
}

/// How far past a final's end the other recognizers must have decoded before it is released in
/// [`FinalOrder::CallTime`]: roughly Vosk's endpoint delay, the time it takes to call a pause
/// the end of an utterance.
pub const ORDER_MARGIN_SECONDS: f64 = 1.0;

/// What the transcription of a call yields, in the order to send it.
#[derive(Debug, Clone, PartialEq)]
pub enum Transcribed {
    Recognized(Recognized),
    /// A device stopped delivering; the call goes on without it.
    Lost {
        speaker: Speaker,
        reason: String,
    },
    /// The source ended and every recognizer is flushed; `call_end` is the end of the audio.
    End {
        call_end: f64,
        stats: Vec<SpeakerStats>,
    },
}

/// How one speaker's recognizer kept up, for the benchmark.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct SpeakerStats {
    pub speaker: Option<Speaker>,
    /// Seconds of audio decoded.
    pub audio_seconds: f64,
    /// Seconds spent decoding it (the recognizer thread is CPU-bound).
    pub decode_seconds: f64,
    /// Per final: from the audio of its last word reaching the client to the final coming out
    /// (Vosk's endpoint detection plus any decoding backlog), in ms.
    pub endpoint_delay_ms: Vec<f64>,
}

impl SpeakerStats {
    /// Decode time over audio time: below 1 keeps up with the call.
    pub fn real_time_factor(&self) -> f64 {
        if self.audio_seconds > 0.0 {
            self.decode_seconds / self.audio_seconds
        } else {
            0.0
        }
    }
}

/// Runs each speaker's transcriber on a thread of its own (Vosk decodes about 0.6× real time
/// per speaker on a 2-core machine, so one thread for both would fall behind), fed from
/// `audio`, and merges what they recognize into one stream in `order`.
pub fn transcribe(
    audio: mpsc::Receiver<AudioEvent>,
    transcribers: Vec<Transcriber>,
    order: FinalOrder,
) -> std::io::Result<mpsc::Receiver<Transcribed>> {
    let (merge_tx, merge_rx) = mpsc::channel::<Merge>();
    let mut workers = Vec::new();
    for mut transcriber in transcribers {
        let speaker = transcriber.speaker();
        // A few seconds of audio in flight per speaker: enough to absorb a slow decode
        // without holding a whole file in memory.
        let (chunk_tx, chunk_rx) = mpsc::sync_channel::<(Chunk, Instant)>(64);
        let out = merge_tx.clone();
        std::thread::Builder::new()
            .name(format!("asr-{}", speaker.as_str()))
            .spawn(move || {
                let mut stats = SpeakerStats {
                    speaker: Some(speaker),
                    ..SpeakerStats::default()
                };
                // When the audio up to a call time arrived, for the endpoint delay.
                let mut arrivals: VecDeque<(f64, Instant)> = VecDeque::new();
                while let Ok((chunk, arrived)) = chunk_rx.recv() {
                    let seconds = chunk.samples.len() as f64 / f64::from(TARGET_RATE);
                    let decoded_to = chunk.at + seconds;
                    arrivals.push_back((decoded_to, arrived));
                    while arrivals.len() > 600 {
                        arrivals.pop_front();
                    }
                    let started = Instant::now();
                    let results = transcriber.feed(&chunk);
                    let done = Instant::now();
                    stats.audio_seconds += seconds;
                    stats.decode_seconds += done.duration_since(started).as_secs_f64();
                    for r in results {
                        if let Recognized::Final { end, .. } = &r {
                            if let Some((_, at)) = arrivals.iter().find(|(to, _)| *to >= *end) {
                                stats
                                    .endpoint_delay_ms
                                    .push(done.duration_since(*at).as_secs_f64() * 1000.0);
                            }
                        }
                        let _ = out.send(Merge::Recognized(r));
                    }
                    let _ = out.send(Merge::Progress(speaker, decoded_to));
                }
                for r in transcriber.flush() {
                    let _ = out.send(Merge::Recognized(r));
                }
                let _ = out.send(Merge::Stats(stats));
                let _ = out.send(Merge::Done(speaker));
            })?;
        workers.push((speaker, chunk_tx));
    }
    let speakers: Vec<Speaker> = workers.iter().map(|(s, _)| *s).collect();
    let dispatch_out = merge_tx;
    std::thread::Builder::new()
        .name("asr-dispatch".into())
        .spawn(move || {
            let mut call_end = 0.0f64;
            while let Ok(event) = audio.recv() {
                match event {
                    AudioEvent::Chunk(chunk) => {
                        call_end = call_end
                            .max(chunk.at + chunk.samples.len() as f64 / f64::from(TARGET_RATE));
                        if let Some((_, tx)) = workers.iter().find(|(s, _)| *s == chunk.speaker) {
                            if tx.send((chunk, Instant::now())).is_err() {
                                break;
                            }
                        }
                    }
                    AudioEvent::Lost { speaker, reason } => {
                        let _ = dispatch_out.send(Merge::Lost(speaker, reason));
                    }
                    AudioEvent::End => break,
                }
            }
            let _ = dispatch_out.send(Merge::SourceEnded(call_end));
            // Dropping the chunk senders lets each worker flush and finish.
        })?;
    let (out_tx, out_rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("asr-merge".into())
        .spawn(move || {
            let mut merger = Merger::new(order, &speakers);
            while let Ok(message) = merge_rx.recv() {
                for item in merger.take(message) {
                    let finished = matches!(item, Transcribed::End { .. });
                    if out_tx.send(item).is_err() || finished {
                        return;
                    }
                }
            }
        })?;
    Ok(out_rx)
}

/// What the recognizer threads and the dispatcher tell the merger.
#[derive(Debug)]
pub enum Merge {
    Recognized(Recognized),
    /// This speaker's recognizer has decoded the call up to this time.
    Progress(Speaker, f64),
    Done(Speaker),
    Lost(Speaker, String),
    SourceEnded(f64),
    Stats(SpeakerStats),
}

/// Puts the recognizers' results in order (see [`FinalOrder`]). Pure, so it is tested alone.
#[derive(Debug)]
pub struct Merger {
    order: FinalOrder,
    decoded_to: Vec<(Speaker, f64)>,
    done: Vec<Speaker>,
    held: Vec<Recognized>,
    source_end: Option<f64>,
    stats: Vec<SpeakerStats>,
}

impl Merger {
    pub fn new(order: FinalOrder, speakers: &[Speaker]) -> Self {
        Merger {
            order,
            decoded_to: speakers.iter().map(|s| (*s, 0.0)).collect(),
            done: Vec::new(),
            held: Vec::new(),
            source_end: None,
            stats: Vec::new(),
        }
    }

    /// Takes one message and returns what may go out now.
    pub fn take(&mut self, message: Merge) -> Vec<Transcribed> {
        let mut out = Vec::new();
        match message {
            Merge::Recognized(r @ Recognized::Partial { .. }) => {
                out.push(Transcribed::Recognized(r))
            }
            Merge::Recognized(r) => match self.order {
                FinalOrder::Arrival => out.push(Transcribed::Recognized(r)),
                FinalOrder::CallTime => self.held.push(r),
            },
            Merge::Progress(speaker, t) => {
                if let Some((_, to)) = self.decoded_to.iter_mut().find(|(s, _)| *s == speaker) {
                    *to = to.max(t);
                }
            }
            Merge::Done(speaker) => self.done.push(speaker),
            Merge::Lost(speaker, reason) => out.push(Transcribed::Lost { speaker, reason }),
            Merge::SourceEnded(t) => self.source_end = Some(t),
            Merge::Stats(stats) => self.stats.push(stats),
        }
        self.release(&mut out);
        out
    }

    fn all_done(&self) -> bool {
        self.decoded_to.iter().all(|(s, _)| self.done.contains(s))
    }

    fn release(&mut self, out: &mut Vec<Transcribed>) {
        let all_done = self.all_done();
        self.held.sort_by(|a, b| end_of(a).total_cmp(&end_of(b)));
        while let Some(first) = self.held.first() {
            let (speaker, end) = (speaker_of(first), end_of(first));
            let others_caught_up = self.decoded_to.iter().all(|(s, to)| {
                *s == speaker || self.done.contains(s) || *to >= end + ORDER_MARGIN_SECONDS
            });
            if !(all_done || others_caught_up) {
                break;
            }
            out.push(Transcribed::Recognized(self.held.remove(0)));
        }
        if all_done {
            if let Some(call_end) = self.source_end.take() {
                out.push(Transcribed::End {
                    call_end,
                    stats: std::mem::take(&mut self.stats),
                });
            }
        }
    }
}

fn end_of(r: &Recognized) -> f64 {
    match r {
        Recognized::Partial { start, .. } => *start,
        Recognized::Final { end, .. } => *end,
    }
}

fn speaker_of(r: &Recognized) -> Speaker {
    match r {
        Recognized::Partial { speaker, .. } | Recognized::Final { speaker, .. } => *speaker,
    }
}
