//! Customer questions: is an utterance a question, and is it the same question again?
//!
//! Vosk output has no punctuation, so a question is recognized by its words as well as by a
//! question mark. Two questions are "the same" by a similarity of their content (characters
//! for Chinese, words for English), lifted when both ask about the same intent.

use crate::text::is_cjk;
use aho_corasick::{AhoCorasick, AhoCorasickKind};
use std::sync::LazyLock;

const ZH_QUESTION_WORDS: &[&str] = &[
    "吗",
    "呢",
    "怎么",
    "什么",
    "为什么",
    "为啥",
    "啥",
    "多久",
    "几天",
    "多少",
    "哪",
    "是不是",
    "能不能",
    "可不可以",
    "有没有",
    "会不会",
    "要不要",
    "行不行",
    "如何",
    "何时",
    "咋",
];

/// [`ZH_QUESTION_WORDS`] in one automaton: whether the text contains any of them, in one pass.
static QUESTION_WORDS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .kind(Some(AhoCorasickKind::DFA))
        .build(ZH_QUESTION_WORDS)
        .expect("a few short words compile")
});

const EN_QUESTION_STARTS: &[&str] = &[
    "what", "when", "where", "why", "how", "who", "which", "can", "could", "is", "are", "do",
    "does", "did", "will", "would", "should", "may", "have", "has",
];

/// Characters that carry no content in a Chinese question.
const ZH_FUNCTION_CHARS: &str = "的了吗呢吧啊呀么我你您们他她它这那是就都也还在有个一请问下嘛哦";

const EN_STOPWORDS: &[&str] = &[
    "a", "an", "the", "i", "you", "my", "your", "me", "we", "it", "is", "are", "was", "be", "to",
    "of", "and", "or", "for", "on", "in", "at", "do", "does", "did", "can", "could", "will",
    "would", "what", "when", "where", "why", "how", "so", "please", "just", "that", "this",
    "there", "again", "still", "yet", "any", "have", "has", "get", "with", "about", "im", "i'm",
];

/// Whether a normalized utterance asks something.
pub fn is_question(normalized: &str) -> bool {
    if normalized.contains('?') || normalized.contains('？') {
        return true;
    }
    // The question words are all Chinese: an ASCII text holds none of them.
    if !normalized.is_ascii() && QUESTION_WORDS.is_match(normalized) {
        return true;
    }
    let first = normalized
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .find(|w| !w.is_empty());
    first.is_some_and(|w| EN_QUESTION_STARTS.contains(&w))
}

/// The content of a question: Chinese characters and character bigrams, English content words
/// (stemmed), each once, sorted so two questions compare in one merge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Features(Vec<Feature>);

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Feature {
    /// A Chinese character, or (with the second) two in a row.
    Cjk(char, Option<char>),
    Word(String),
}

impl Features {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many features the two have in common.
    fn common(&self, other: &Features) -> usize {
        let (mut a, mut b) = (self.0.iter().peekable(), other.0.iter().peekable());
        let mut common = 0;
        while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
            match x.cmp(y) {
                std::cmp::Ordering::Less => {
                    a.next();
                }
                std::cmp::Ordering::Greater => {
                    b.next();
                }
                std::cmp::Ordering::Equal => {
                    common += 1;
                    a.next();
                    b.next();
                }
            }
        }
        common
    }
}

/// The content of a question, as a set of features: Chinese characters and character bigrams,
/// English content words.
pub fn features(normalized: &str) -> Features {
    let mut out = Vec::new();
    let mut previous: Option<char> = None;
    for c in normalized.chars() {
        // Every code point of the CJK Unified Ideographs block is alphabetic (unit test): no
        // table lookup for them.
        let ideograph = ('\u{4E00}'..='\u{9FFF}').contains(&c);
        if (ideograph || (is_cjk(c) && c.is_alphabetic())) && !ZH_FUNCTION_CHARS.contains(c) {
            out.push(Feature::Cjk(c, None));
            if let Some(p) = previous {
                out.push(Feature::Cjk(p, Some(c)));
            }
            previous = Some(c);
        }
    }
    for word in normalized.split(|c: char| !(c.is_ascii_alphanumeric() || c == '\'')) {
        if word.len() > 1 && !EN_STOPWORDS.contains(&word) {
            out.push(Feature::Word(stem(word).to_string()));
        }
    }
    out.sort_unstable();
    out.dedup();
    Features(out)
}

/// Strips the commonest English suffixes so "refunded" and "refund" meet.
fn stem(word: &str) -> &str {
    for suffix in ["ing", "ed", "es", "s"] {
        if let Some(stripped) = word.strip_suffix(suffix) {
            if stripped.len() >= 3 {
                return stripped;
            }
        }
    }
    word
}

/// Similarity of two questions in 0..=1: overlap of their content features (relative to the
/// smaller one), raised when they share an intent.
pub fn similarity(a: &Features, b: &Features, share_intent: bool) -> f32 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let shared = a.common(b);
    let common = shared as f32;
    let overlap = common / a.len().min(b.len()) as f32;
    let jaccard = common / (a.len() + b.len() - shared) as f32;
    let base = 0.6 * overlap + 0.4 * jaccard;
    if share_intent {
        (base + 0.3).min(1.0)
    } else {
        base
    }
}

/// [`features`] and [`similarity`] as first written, over sets of strings, to test that the
/// sorted features give the same similarity.
#[cfg(test)]
fn similarity_reference(a: &str, b: &str, share_intent: bool) -> f32 {
    use std::collections::HashSet;
    let features = |normalized: &str| {
        let mut out = HashSet::new();
        let cjk: Vec<char> = normalized
            .chars()
            .filter(|c| is_cjk(*c) && c.is_alphabetic() && !ZH_FUNCTION_CHARS.contains(*c))
            .collect();
        for c in &cjk {
            out.insert(c.to_string());
        }
        for pair in cjk.windows(2) {
            out.insert(pair.iter().collect::<String>());
        }
        for word in normalized.split(|c: char| !(c.is_ascii_alphanumeric() || c == '\'')) {
            if word.len() > 1 && !EN_STOPWORDS.contains(&word) {
                out.insert(stem(word).to_string());
            }
        }
        out
    };
    let (a, b) = (features(a), features(b));
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let common = a.intersection(&b).count() as f32;
    let overlap = common / a.len().min(b.len()) as f32;
    let jaccard = common / a.union(&b).count() as f32;
    let base = 0.6 * overlap + 0.4 * jaccard;
    if share_intent {
        (base + 0.3).min(1.0)
    } else {
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::normalize;

    fn sim(a: &str, b: &str, intent: bool) -> f32 {
        similarity(&features(&normalize(a)), &features(&normalize(b)), intent)
    }

    #[test]
    fn questions_are_recognized_without_punctuation() {
        assert!(is_question("我的退款什么时候到账"));
        assert!(is_question("能退吗"));
        assert!(is_question("when will my refund arrive"));
        assert!(!is_question("好的谢谢"));
        assert!(!is_question("thanks for your help"));
    }

    #[test]
    fn the_same_question_reworded_is_similar() {
        assert!(sim("我的退款什么时候到账", "退款到底什么时候能到账", false) > 0.6);
        assert!(
            sim(
                "when will my refund arrive",
                "so when does the refund arrive",
                false
            ) > 0.6
        );
    }

    #[test]
    fn every_cjk_unified_ideograph_is_alphabetic() {
        assert!(('\u{4E00}'..='\u{9FFF}').all(char::is_alphabetic));
    }

    #[test]
    fn the_question_word_automaton_finds_what_contains_finds() {
        for text in [
            "能退吗",
            "是不是",
            "我想退款",
            "哪里",
            "咋办",
            "好的谢谢",
            "为啥",
            "",
        ] {
            assert_eq!(
                QUESTION_WORDS.is_match(text),
                ZH_QUESTION_WORDS.iter().any(|w| text.contains(w)),
                "{text}"
            );
        }
    }

    #[test]
    fn sorted_features_give_the_reference_similarity() {
        let questions = [
            "我的退款什么时候到账",
            "退款到底什么时候能到账",
            "你们的地址在哪里",
            "退款退款到账了吗？退款",
            "when will my refund arrive",
            "so when does the refund arrive",
            "can I change my delivery address",
            "refunded refunds refund's 退款 refund",
            "好的",
            "",
        ];
        for a in questions {
            for b in questions {
                for intent in [false, true] {
                    let (na, nb) = (normalize(a), normalize(b));
                    assert_eq!(
                        similarity(&features(&na), &features(&nb), intent).to_bits(),
                        similarity_reference(&na, &nb, intent).to_bits(),
                        "{a} / {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn different_questions_are_not() {
        assert!(sim("我的退款什么时候到账", "你们的地址在哪里", false) < 0.3);
        assert!(
            sim(
                "when will my refund arrive",
                "can I change my delivery address",
                false
            ) < 0.3
        );
    }
}
