//! What the overlay shows, as plain data: updated from the server's events and the local
//! transcription, read by the window each frame. No egui here, so it is tested directly.

use super::latency::LatencyTracker;
use assist_protocol::{
    Alert, Card, CardAction, CardKind, EmotionLabel, ErrorCode, ServerMessage, Severity, Speaker,
    Summary,
};
use std::collections::VecDeque;
use std::time::Instant;

/// Lines of transcript kept for the tail.
pub const TRANSCRIPT_LINES: usize = 6;
/// Cards kept on screen (newest first); older ones drop off.
pub const VISIBLE_CARDS: usize = 4;
/// Non-fatal alerts kept on screen.
pub const VISIBLE_ALERTS: usize = 3;
/// Customer emotion readings kept for the trend strip.
pub const EMOTION_HISTORY: usize = 12;

/// Something that happened, for the overlay.
#[derive(Debug, Clone)]
pub enum UiEvent {
    /// A message from the server.
    Server(ServerMessage),
    /// Local transcription: a partial (still speaking) or a final line.
    Transcript {
        speaker: Speaker,
        text: String,
        /// Call seconds the utterance starts at.
        start: f64,
        partial: bool,
    },
    /// Connection state, device trouble, model problems: shown in the status line.
    Status { text: String, problem: bool },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShownAlert {
    /// The newest occurrence.
    pub alert: Alert,
    /// How many utterances raised this rule while it was on screen (shown as "×N").
    pub times: u32,
    /// Fatal alerts stay until the agent acknowledges them.
    pub acknowledged: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShownCard {
    pub card: Card,
    pub expanded: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TranscriptLine {
    pub speaker: Speaker,
    pub text: String,
}

/// The overlay's state.
#[derive(Debug, Default)]
pub struct OverlayModel {
    pub alerts: Vec<ShownAlert>,
    pub cards: VecDeque<ShownCard>,
    pub emotion: Option<(EmotionLabel, f32, bool)>,
    pub emotion_history: VecDeque<f32>,
    pub transcript: VecDeque<TranscriptLine>,
    /// The current partial per speaker (agent, customer).
    pub partial: [Option<String>; 2],
    pub status: Option<(String, bool)>,
    pub summary: Option<Summary>,
    pub pack_version: Option<String>,
    pub collapsed: bool,
    /// Card feedback the window produced, for the link to send.
    pub feedback: Vec<(String, CardAction)>,
    /// Utterance-to-screen latencies, when measured (`--metrics`).
    pub latency: LatencyTracker,
}

fn slot(speaker: Speaker) -> usize {
    match speaker {
        Speaker::Agent => 0,
        Speaker::Customer => 1,
    }
}

impl OverlayModel {
    pub fn apply(&mut self, event: UiEvent) {
        match event {
            UiEvent::Server(message) => {
                if self.latency.is_enabled() {
                    self.latency.received(&message, Instant::now());
                }
                self.server(message)
            }
            UiEvent::Transcript {
                speaker,
                text,
                start,
                partial,
            } => {
                if self.latency.is_enabled() {
                    self.latency.sent(start, &text, partial, Instant::now());
                }
                if partial {
                    self.partial[slot(speaker)] = Some(text);
                } else {
                    self.partial[slot(speaker)] = None;
                    self.transcript.push_back(TranscriptLine { speaker, text });
                    while self.transcript.len() > TRANSCRIPT_LINES {
                        self.transcript.pop_front();
                    }
                }
            }
            UiEvent::Status { text, problem } => self.status = Some((text, problem)),
        }
    }

    fn server(&mut self, message: ServerMessage) {
        match message {
            ServerMessage::Alert(alert) => {
                // The same rule on the same utterance (a partial, then its final) shows once.
                let duplicate = self
                    .alerts
                    .iter()
                    .any(|a| a.alert.rule == alert.rule && a.alert.t == alert.t);
                if duplicate {
                    return;
                }
                // The same rule again on a later utterance: one line with a count, moved to
                // the newest place, instead of a second identical line.
                let mut times = 1;
                if let Some(i) = self.alerts.iter().position(|a| a.alert.rule == alert.rule) {
                    times += self.alerts.remove(i).times;
                }
                self.alerts.push(ShownAlert {
                    alert,
                    times,
                    acknowledged: false,
                });
                self.trim_alerts();
            }
            ServerMessage::Emotion(e) => {
                self.emotion = Some((e.label, e.score, e.escalating));
                self.emotion_history.push_back(e.score);
                while self.emotion_history.len() > EMOTION_HISTORY {
                    self.emotion_history.pop_front();
                }
            }
            ServerMessage::Card(card) => {
                if self.cards.iter().any(|c| c.card.id == card.id) {
                    return;
                }
                self.cards.push_front(ShownCard {
                    card,
                    expanded: false,
                });
                while self.cards.len() > VISIBLE_CARDS {
                    self.cards.pop_back();
                }
            }
            ServerMessage::Summary(summary) => self.summary = Some(summary),
            ServerMessage::Welcome { pack_version, .. } => {
                self.pack_version = Some(pack_version);
                self.status = None;
            }
            ServerMessage::PackUpdated { pack_version } => self.pack_version = Some(pack_version),
            ServerMessage::Error { code, message, .. } => {
                // A resend the server already had is not a problem for the agent.
                if code != ErrorCode::DuplicateSeq {
                    self.status = Some((message, true));
                }
            }
            ServerMessage::Ack { .. } => {}
        }
    }

    /// Keeps every unacknowledged fatal alert and the newest few others.
    fn trim_alerts(&mut self) {
        let mut others = self
            .alerts
            .iter()
            .filter(|a| a.alert.severity != Severity::Fatal)
            .count();
        self.alerts.retain(|a| {
            if a.alert.severity == Severity::Fatal && !a.acknowledged {
                return true;
            }
            if others > VISIBLE_ALERTS {
                others -= 1;
                return false;
            }
            true
        });
    }

    /// The agent acknowledged alert `index`: it leaves the screen.
    pub fn acknowledge(&mut self, index: usize) {
        if let Some(a) = self.alerts.get_mut(index) {
            a.acknowledged = true;
        }
        self.alerts.retain(|a| !a.acknowledged);
    }

    /// Unacknowledged fatal alerts: the overlay shows them prominently.
    pub fn fatal_alerts(&self) -> impl Iterator<Item = (usize, &ShownAlert)> {
        self.alerts
            .iter()
            .enumerate()
            .filter(|(_, a)| a.alert.severity == Severity::Fatal && !a.acknowledged)
    }

    /// The agent used a script card (its text is copied) or dismissed a card.
    pub fn card_action(&mut self, id: &str, action: CardAction) -> Option<Card> {
        let index = self.cards.iter().position(|c| c.card.id == id)?;
        self.feedback.push((id.to_string(), action));
        match action {
            CardAction::Used => self.cards.get(index).map(|c| c.card.clone()),
            CardAction::Dismissed => self.cards.remove(index).map(|c| c.card),
        }
    }

    /// The customer's trend: the last reading minus the mean of the earlier ones.
    pub fn emotion_trend(&self) -> f32 {
        let n = self.emotion_history.len();
        if n < 2 {
            return 0.0;
        }
        let last = self.emotion_history[n - 1];
        let earlier: f32 = self.emotion_history.iter().take(n - 1).sum::<f32>() / (n - 1) as f32;
        last - earlier
    }

    pub fn knowledge_cards(&self) -> impl Iterator<Item = &ShownCard> {
        self.cards
            .iter()
            .filter(|c| c.card.kind == CardKind::Knowledge)
    }
}
