//! Customer emotion from text and prosody.
//!
//! Text: lexicon words (weights -3..3) found with one leftmost-longest pass, each scaled by a
//! degree word ("非常", "really") and flipped by a negation ("不满意" when only "满意" is
//! listed; "not happy") in the same clause just before it. Praise said about a failure
//! ("你们效率可真高，一个月了还没解决", "Oh great, another week of waiting") is sarcasm and
//! counts as negative. Voice: a customer faster, higher or louder than their own baseline
//! intensifies a negative reading.

use crate::negation::is_negated;
use crate::pack::Lexicon;
use crate::text::{clause_before, PhraseSet};
use assist_protocol::{EmotionLabel, Prosody};

/// Scores below this are negative, above its opposite positive.
pub const LABEL_THRESHOLD: f32 = 0.2;

/// The emotion of one utterance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub score: f32,
    pub label: EmotionLabel,
    pub sarcasm: bool,
}

/// A compiled lexicon for one language.
#[derive(Debug)]
pub struct EmotionModel {
    pub language: String,
    words: PhraseSet,
    weights: Vec<f32>,
    degree: PhraseSet,
    degree_factors: Vec<f32>,
    /// Negation cues of the lexicon, on top of the built-in ones.
    negation: PhraseSet,
    /// Sarcasm: the praise phrases, then the failure phrases, in one automaton (one pass).
    sarcasm: PhraseSet,
    praise_phrases: usize,
}

impl EmotionModel {
    pub fn new(lexicon: &Lexicon) -> Self {
        let words: Vec<&String> = lexicon.words.keys().collect();
        let degree: Vec<&String> = lexicon.degree.keys().collect();
        EmotionModel {
            language: lexicon.language.clone(),
            words: PhraseSet::new(&words, true),
            weights: lexicon.words.values().copied().collect(),
            degree: PhraseSet::new(&degree, true),
            degree_factors: lexicon.degree.values().copied().collect(),
            negation: PhraseSet::new(&lexicon.negation, true),
            sarcasm: PhraseSet::new(
                &[&lexicon.sarcasm.praise[..], &lexicon.sarcasm.failure[..]].concat(),
                false,
            ),
            praise_phrases: lexicon.sarcasm.praise.len(),
        }
    }

    /// Reads one normalized utterance.
    pub fn read(&self, normalized: &str, prosody: Option<&Prosody>) -> Reading {
        let mut raw = 0.0f32;
        let mut positive_words = 0;
        self.words.each(normalized, |m| {
            let mut weight = self.weights[m.phrase];
            let before = clause_before(normalized, m.start, 3, 2);
            if let Some(d) = self.degree.last(before) {
                weight *= self.degree_factors[d.phrase];
            }
            let negated = is_negated(normalized, m.start)
                || self
                    .negation
                    .occurs_in(clause_before(normalized, m.start, 4, 3));
            if negated {
                // "not bad" is mildly good, "不满意" is clearly bad.
                weight = -weight * if weight < 0.0 { 0.5 } else { 0.8 };
            }
            if weight > 0.0 {
                positive_words += 1;
            }
            raw += weight;
            true
        });
        let exclamations = normalized.matches(['!', '！']).count().min(3) as f32;
        let sarcasm = self.is_sarcastic(normalized);
        if sarcasm {
            raw = -(raw.abs() + 2.0);
        } else if positive_words == 0 && raw < 0.0 {
            raw -= 0.3 * exclamations;
        }
        if raw < 0.0 {
            raw *= intensity(prosody);
        }
        let score = (raw / 3.0).tanh();
        Reading {
            score,
            label: label_of(score),
            sarcasm,
        }
    }
}

impl EmotionModel {
    /// Praise and a failure in the same utterance. Every occurrence of every phrase is reported
    /// whatever else the automaton holds, so one pass over both lists finds what a pass over
    /// each would.
    fn is_sarcastic(&self, normalized: &str) -> bool {
        let (mut praise, mut failure) = (false, false);
        self.sarcasm.each(normalized, |m| {
            if m.phrase < self.praise_phrases {
                praise = true;
            } else {
                failure = true;
            }
            !(praise && failure)
        });
        praise && failure
    }
}

/// How much the voice intensifies a reading: 1.0 at the speaker's baseline, at most 2.0.
pub fn intensity(prosody: Option<&Prosody>) -> f32 {
    let Some(p) = prosody else {
        return 1.0;
    };
    let above = |v: Option<f32>| v.map_or(0.0, |v| (v - 1.0).max(0.0));
    (1.0 + 0.8 * above(p.rate) + 0.8 * above(p.pitch) + 1.0 * above(p.energy)).min(2.0)
}

pub fn label_of(score: f32) -> EmotionLabel {
    if score <= -LABEL_THRESHOLD {
        EmotionLabel::Negative
    } else if score >= LABEL_THRESHOLD {
        EmotionLabel::Positive
    } else {
        EmotionLabel::Neutral
    }
}

/// Whether the customer's trend is worsening: the latest reading is negative and below the
/// mean of the `window` readings before it by a clear margin, or the last `window` readings
/// fall steadily into the negative.
pub fn escalating(history: &[f32], window: usize) -> bool {
    let Some((&latest, earlier)) = history.split_last() else {
        return false;
    };
    if label_of(latest) != EmotionLabel::Negative || earlier.is_empty() {
        return false;
    }
    let window = window.max(1);
    let recent = &earlier[earlier.len().saturating_sub(window)..];
    let mean = recent.iter().sum::<f32>() / recent.len() as f32;
    let falling = history.len() > window
        && history[history.len() - window - 1..]
            .windows(2)
            .all(|w| w[1] < w[0]);
    latest < mean - 0.15 || falling
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::Sarcasm;
    use crate::text::normalize;
    use std::collections::BTreeMap;

    fn zh() -> EmotionModel {
        let words: BTreeMap<String, f32> = [
            ("满意", 2.0),
            ("生气", -2.5),
            ("太慢", -2.0),
            ("谢谢", 1.5),
            ("解决", 0.5),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        EmotionModel::new(&Lexicon {
            language: "zh".into(),
            negation: vec![],
            degree: [("非常".to_string(), 1.8)].into_iter().collect(),
            words,
            sarcasm: Sarcasm {
                praise: vec!["可真高".into(), "真快".into()],
                failure: vec!["还没".into(), "一个月了".into()],
            },
        })
    }

    fn en() -> EmotionModel {
        let words: BTreeMap<String, f32> = [("happy", 2.0), ("great", 2.0), ("ridiculous", -2.5)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        EmotionModel::new(&Lexicon {
            language: "en".into(),
            negation: vec![],
            degree: [("really".to_string(), 1.6)].into_iter().collect(),
            words,
            sarcasm: Sarcasm {
                praise: vec!["oh great".into()],
                failure: vec!["another".into(), "waiting".into()],
            },
        })
    }

    fn read(model: &EmotionModel, text: &str) -> Reading {
        model.read(&normalize(text), None)
    }

    #[test]
    fn lexicon_words_set_the_label() {
        assert_eq!(
            read(&zh(), "我非常满意，谢谢").label,
            EmotionLabel::Positive
        );
        assert_eq!(read(&zh(), "我很生气").label, EmotionLabel::Negative);
        assert_eq!(read(&zh(), "我想查一下订单").label, EmotionLabel::Neutral);
        assert_eq!(
            read(&en(), "this is ridiculous").label,
            EmotionLabel::Negative
        );
    }

    #[test]
    fn negation_flips_praise() {
        assert_eq!(read(&zh(), "我不满意").label, EmotionLabel::Negative);
        assert_eq!(read(&en(), "I am not happy").label, EmotionLabel::Negative);
    }

    #[test]
    fn degree_words_intensify() {
        let plain = read(&zh(), "满意").score;
        let strong = read(&zh(), "非常满意").score;
        assert!(strong > plain, "{strong} > {plain}");
    }

    #[test]
    fn praise_about_a_failure_is_sarcasm() {
        let r = read(&zh(), "你们效率可真高，一个月了还没解决");
        assert!(r.sarcasm);
        assert_eq!(r.label, EmotionLabel::Negative);
        let r = read(&en(), "Oh great, another week of waiting");
        assert!(r.sarcasm);
        assert_eq!(r.label, EmotionLabel::Negative);
        assert!(!read(&en(), "great, thanks").sarcasm);
    }

    #[test]
    fn one_pass_over_praise_and_failure_finds_what_two_passes_find() {
        let praise = ["可真高", "真快", "great", "oh great", "还没"];
        let failure = ["还没", "一个月了", "another", "waiting", "great"];
        let model = EmotionModel::new(&Lexicon {
            language: "x".into(),
            negation: vec![],
            degree: BTreeMap::new(),
            words: BTreeMap::new(),
            sarcasm: Sarcasm {
                praise: praise.iter().map(|s| s.to_string()).collect(),
                failure: failure.iter().map(|s| s.to_string()).collect(),
            },
        });
        let (praise, failure) = (
            PhraseSet::new(&praise, false),
            PhraseSet::new(&failure, false),
        );
        for text in [
            "你们效率可真高，一个月了还没解决",
            "还没",
            "真快",
            "great",
            "oh great, another week of waiting",
            "greatly waiting",
            "not great",
            "",
        ] {
            let text = normalize(text);
            assert_eq!(
                model.is_sarcastic(&text),
                praise.occurs_in(&text) && failure.occurs_in(&text),
                "{text}"
            );
        }
    }

    #[test]
    fn a_louder_faster_voice_intensifies_negative_text() {
        let text = normalize("太慢");
        let calm = zh().read(&text, None).score;
        let prosody = Prosody {
            rate: Some(1.4),
            pitch: Some(1.3),
            energy: Some(1.5),
        };
        let loud = zh().read(&text, Some(&prosody)).score;
        assert!(loud < calm, "{loud} < {calm}");
        let neutral = zh().read(&normalize("查订单"), Some(&prosody)).score;
        assert_eq!(neutral, 0.0, "prosody alone does not invent an emotion");
    }

    #[test]
    fn escalation_needs_a_worsening_negative_trend() {
        assert!(!escalating(&[-0.5], 3));
        assert!(escalating(&[0.0, -0.1, -0.6], 3));
        assert!(!escalating(&[-0.6, -0.6, -0.6], 3));
        assert!(!escalating(&[0.5, 0.3, 0.1], 3));
        assert!(escalating(&[-0.2, -0.3, -0.4, -0.45], 3));
    }
}
