//! How long the agent waits: from an utterance leaving this client to what it caused being
//! drawn in the overlay. Measured only when asked (`--metrics`), for the benchmark.
//!
//! Two figures: a final utterance to its first card drawn, and a partial result to the alert it
//! raised drawn (a forbidden phrase must show while the agent is still talking). Events are
//! matched to what caused them by the utterance's start time (cards and alerts carry it as `t`)
//! and, for alerts on partials, by the partial's text. "Drawn" is the end of the first frame
//! built after the event reached the model; the GPU swap after it is not included (a few ms
//! with software GL).

use assist_protocol::ServerMessage;
use std::collections::VecDeque;
use std::time::Instant;

/// Utterances remembered for matching (older ones can no longer be matched).
const REMEMBERED: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Measure {
    FinalToCard,
    PartialToAlert,
}

/// Collected latencies in milliseconds.
#[derive(Debug, Default)]
pub struct LatencyTracker {
    enabled: bool,
    finals: VecDeque<(f64, Instant)>,
    partials: VecDeque<(f64, String, Instant)>,
    /// Received, not drawn yet: what, when its cause was sent, when it arrived.
    waiting: Vec<(Measure, Instant, Instant)>,
    pub final_to_card_drawn_ms: Vec<f64>,
    pub final_to_card_received_ms: Vec<f64>,
    pub partial_to_alert_drawn_ms: Vec<f64>,
}

fn same_time(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

fn ms(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

impl LatencyTracker {
    pub fn enable(&mut self) {
        self.enabled = true;
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// An utterance was handed to the link.
    pub fn sent(&mut self, start: f64, text: &str, partial: bool, now: Instant) {
        if !self.enabled {
            return;
        }
        if partial {
            self.partials.push_back((start, text.to_string(), now));
            if self.partials.len() > REMEMBERED {
                self.partials.pop_front();
            }
        } else {
            self.finals.push_back((start, now));
            if self.finals.len() > REMEMBERED {
                self.finals.pop_front();
            }
        }
    }

    /// A server message reached the model (before it is drawn).
    pub fn received(&mut self, message: &ServerMessage, now: Instant) {
        if !self.enabled {
            return;
        }
        match message {
            ServerMessage::Card(card) => {
                // The first card of a final only: later cards of the same utterance are not
                // what the agent waits for.
                if let Some(i) = self.finals.iter().position(|(t, _)| same_time(*t, card.t)) {
                    if let Some((_, sent)) = self.finals.remove(i) {
                        self.final_to_card_received_ms.push(ms(sent, now));
                        self.waiting.push((Measure::FinalToCard, sent, now));
                    }
                }
            }
            ServerMessage::Alert(alert) => {
                let cause = self
                    .partials
                    .iter()
                    .position(|(t, text, _)| same_time(*t, alert.t) && *text == alert.text);
                if let Some(i) = cause {
                    let sent = self.partials[i].2;
                    // Later partials of the same utterance would raise nothing new.
                    self.partials.retain(|(t, _, _)| !same_time(*t, alert.t));
                    self.waiting.push((Measure::PartialToAlert, sent, now));
                }
            }
            _ => {}
        }
    }

    /// A frame showing everything received so far was built.
    pub fn frame_drawn(&mut self, now: Instant) {
        for (measure, sent, _) in self.waiting.drain(..) {
            match measure {
                Measure::FinalToCard => self.final_to_card_drawn_ms.push(ms(sent, now)),
                Measure::PartialToAlert => self.partial_to_alert_drawn_ms.push(ms(sent, now)),
            }
        }
    }
}
