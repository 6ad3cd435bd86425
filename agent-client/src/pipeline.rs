//! From recognized speech to protocol messages: seq numbering over both speakers, partials sent
//! with a tentative seq, finals with the next one. Shared by the live devices and `--audio-file`.

use crate::asr::Recognized;
use crate::link::Outgoing;
use crate::ui::model::UiEvent;
use assist_protocol::Utterance;

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
                        partial: false,
                    },
                ))
            }
        }
    }
}
