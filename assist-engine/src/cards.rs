//! Intents and script cards.
//!
//! Intents ("refund", "delivery_tracking", ...) are found in customer utterances by keyword.
//! A script is a candidate when any of its triggers holds for the utterance: one of its intents
//! or keywords, a rule category that fired, or the customer's emotion. Candidates are ranked by
//! priority, then by how many triggers held; the session adds the knowledge snippet, removes
//! what the call has already shown and caps the rest.

use crate::pack::{EmotionTrigger, Intent, Script};
use crate::text::PhraseSet;

#[derive(Debug)]
pub struct IntentModel {
    pub intents: Vec<Intent>,
    phrases: PhraseSet,
    owners: Vec<usize>,
}

impl IntentModel {
    pub fn new(intents: Vec<Intent>) -> Self {
        let mut phrases = Vec::new();
        let mut owners = Vec::new();
        for (i, intent) in intents.iter().enumerate() {
            for k in &intent.keywords {
                phrases.push(k.clone());
                owners.push(i);
            }
        }
        IntentModel {
            intents,
            phrases: PhraseSet::new(&phrases, false),
            owners,
        }
    }

    /// Intent indices found in a normalized utterance, in pack order.
    pub fn detect(&self, normalized: &str) -> Vec<usize> {
        let mut found: Vec<usize> = Vec::new();
        self.phrases.each(normalized, |m| {
            let intent = self.owners[m.phrase];
            if let Err(at) = found.binary_search(&intent) {
                found.insert(at, intent);
            }
            true
        });
        found
    }
}

/// What the session knows about the utterance when it picks scripts.
#[derive(Debug, Default)]
pub struct CardContext<'a> {
    pub language: &'a str,
    pub intents: Vec<&'a str>,
    /// Categories of the rules that fired on this utterance.
    pub categories: Vec<&'a str>,
    pub negative: bool,
    pub escalating: bool,
    /// Whether the utterance is the customer's (keywords and intents only trigger on those).
    pub from_customer: bool,
}

#[derive(Debug)]
pub struct ScriptModel {
    pub scripts: Vec<Script>,
    keywords: PhraseSet,
    owners: Vec<usize>,
}

/// A script that may be shown, with its rank.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub script: usize,
    pub rank: f32,
}

impl ScriptModel {
    pub fn new(scripts: Vec<Script>) -> Self {
        let mut phrases = Vec::new();
        let mut owners = Vec::new();
        for (i, script) in scripts.iter().enumerate() {
            for k in &script.trigger.keywords {
                phrases.push(k.clone());
                owners.push(i);
            }
        }
        ScriptModel {
            scripts,
            keywords: PhraseSet::new(&phrases, false),
            owners,
        }
    }

    /// Scripts triggered by this utterance, best first.
    pub fn candidates(&self, normalized: &str, ctx: &CardContext) -> Vec<Candidate> {
        let mut keyword_hits = vec![0u32; self.scripts.len()];
        if ctx.from_customer {
            for m in self.keywords.find_all(normalized) {
                keyword_hits[self.owners[m.phrase]] += 1;
            }
        }
        let mut out: Vec<Candidate> = self
            .scripts
            .iter()
            .enumerate()
            .filter(|(_, s)| s.language.as_deref().is_none_or(|l| l == ctx.language))
            .filter_map(|(i, s)| {
                let t = &s.trigger;
                let mut matched = keyword_hits[i].min(1);
                if ctx.from_customer {
                    matched += t
                        .intents
                        .iter()
                        .filter(|x| ctx.intents.contains(&x.as_str()))
                        .count() as u32;
                }
                matched += t
                    .categories
                    .iter()
                    .filter(|c| ctx.categories.contains(&c.as_str()))
                    .count() as u32;
                matched += match t.emotion {
                    Some(EmotionTrigger::Escalating) if ctx.escalating => 2,
                    Some(EmotionTrigger::Negative) if ctx.negative && ctx.from_customer => 1,
                    _ => 0,
                };
                (matched > 0).then_some(Candidate {
                    script: i,
                    rank: s.priority as f32 + 10.0 * matched as f32,
                })
            })
            .collect();
        out.sort_by(|a, b| b.rank.total_cmp(&a.rank).then(a.script.cmp(&b.script)));
        out
    }
}
