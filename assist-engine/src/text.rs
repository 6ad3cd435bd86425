//! Text normalization and phrase matching shared by rules, intents, scripts and emotion.
//!
//! Everything is matched on [`normalize`]d text: lowercase, full-width ASCII folded to
//! half-width, and the spaces Vosk puts between Chinese words removed. A [`PhraseSet`] compiles
//! many phrases into one Aho-Corasick automaton and reports every occurrence in one pass, with
//! word-boundary checks for Latin-script phrases.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// Whether `c` is a CJK ideograph (or CJK punctuation / full-width form).
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3000..=0x303F | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0xFF00..=0xFFEF)
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() && !is_cjk(c)
}

/// Lowercases, folds full-width ASCII to half-width, collapses whitespace, and removes
/// whitespace that has a CJK character on either side ("退 款 到 账" -> "退款到账").
pub fn normalize(text: &str) -> String {
    let folded: Vec<char> = text
        .chars()
        .map(|c| match c as u32 {
            0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            0x3000 => ' ',
            // Typographic quotes that chat keyboards type: "can’t" must read as "can't".
            0x2018 | 0x2019 => '\'',
            0x201C | 0x201D => '"',
            _ => c,
        })
        .flat_map(char::to_lowercase)
        .collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < folded.len() {
        let c = folded[i];
        if c.is_whitespace() {
            let mut j = i;
            while j < folded.len() && folded[j].is_whitespace() {
                j += 1;
            }
            let before = out.chars().last();
            let after = folded.get(j).copied();
            let joins_cjk = before.is_some_and(is_cjk) || after.is_some_and(is_cjk);
            if before.is_some() && after.is_some() && !joins_cjk {
                out.push(' ');
            }
            i = j;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Whether the text is mostly Chinese.
pub fn is_mostly_cjk(text: &str) -> bool {
    let (mut cjk, mut latin) = (0usize, 0usize);
    for c in text.chars() {
        if is_cjk(c) {
            cjk += 1;
        } else if c.is_alphabetic() {
            latin += 1;
        }
    }
    cjk * 2 >= latin
}

/// One occurrence of a phrase in a normalized text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhraseMatch {
    /// Index of the phrase, in the order it was added.
    pub phrase: usize,
    pub start: usize,
    pub end: usize,
}

/// Many phrases compiled together; one pass over a text finds all of them.
#[derive(Debug, Clone)]
pub struct PhraseSet {
    automaton: Option<AhoCorasick>,
    /// Per phrase: must the match start / end on a word boundary (Latin-script edges).
    boundaries: Vec<(bool, bool)>,
    longest: bool,
}

impl PhraseSet {
    /// Compiles `phrases` (already normalized or not; they are normalized here). With
    /// `longest`, overlapping matches resolve to the leftmost-longest one (used by the emotion
    /// lexicon so that "不满意" wins over "满意"); otherwise every occurrence is reported.
    pub fn new<S: AsRef<str>>(phrases: &[S], longest: bool) -> Self {
        let normalized: Vec<String> = phrases.iter().map(|p| normalize(p.as_ref())).collect();
        let boundaries = normalized
            .iter()
            .map(|p| {
                (
                    p.chars().next().is_some_and(is_word_char),
                    p.chars().last().is_some_and(is_word_char),
                )
            })
            .collect();
        let automaton = if normalized.is_empty() {
            None
        } else {
            let kind = if longest {
                MatchKind::LeftmostLongest
            } else {
                MatchKind::Standard
            };
            AhoCorasickBuilder::new()
                .match_kind(kind)
                .build(&normalized)
                .ok()
        };
        PhraseSet {
            automaton,
            boundaries,
            longest,
        }
    }

    pub fn len(&self) -> usize {
        self.boundaries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.boundaries.is_empty()
    }

    /// All occurrences in `normalized` text, in order of their end (overlapping allowed unless
    /// the set was built `longest`).
    pub fn find_all(&self, normalized: &str) -> Vec<PhraseMatch> {
        let Some(ac) = &self.automaton else {
            return Vec::new();
        };
        let accept = |m: aho_corasick::Match| {
            let (need_start, need_end) = self.boundaries[m.pattern().as_usize()];
            let ok_start = !need_start
                || normalized[..m.start()]
                    .chars()
                    .next_back()
                    .is_none_or(|c| !is_word_char(c));
            let ok_end = !need_end
                || normalized[m.end()..]
                    .chars()
                    .next()
                    .is_none_or(|c| !is_word_char(c));
            (ok_start && ok_end).then_some(PhraseMatch {
                phrase: m.pattern().as_usize(),
                start: m.start(),
                end: m.end(),
            })
        };
        if self.longest {
            ac.find_iter(normalized).filter_map(accept).collect()
        } else {
            ac.find_overlapping_iter(normalized)
                .filter_map(accept)
                .collect()
        }
    }
}

/// Clause delimiters: a negation or degree word does not reach across them.
pub fn is_clause_break(c: char) -> bool {
    matches!(
        c,
        ',' | '.' | '!' | '?' | ';' | ':' | '，' | '。' | '！' | '？' | '；' | '：' | '、' | '\n'
    )
}

/// The part of `normalized[..at]` that is in the same clause as `at`, limited to the last
/// `max_cjk` CJK characters or `max_words` Latin words, whichever comes first.
pub fn clause_before(normalized: &str, at: usize, max_cjk: usize, max_words: usize) -> &str {
    let head = &normalized[..at];
    let mut start = at;
    let mut cjk = 0;
    let mut words = 0;
    let mut in_word = false;
    for (i, c) in head.char_indices().rev() {
        if is_clause_break(c) {
            break;
        }
        if is_cjk(c) {
            cjk += 1;
            if cjk > max_cjk {
                break;
            }
        } else if c.is_whitespace() {
            if in_word {
                words += 1;
                in_word = false;
                if words >= max_words {
                    break;
                }
            }
        } else {
            in_word = true;
        }
        start = i;
    }
    &head[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vosk_spaces_between_chinese_words_are_removed() {
        assert_eq!(normalize("我 要 退款 谢谢"), "我要退款谢谢");
        assert_eq!(normalize("订单 ABC 123 已发货"), "订单abc 123已发货");
        assert_eq!(normalize("Ｈｅｌｌｏ，  World"), "hello, world");
        assert_eq!(normalize("We can’t"), "we can't");
    }

    #[test]
    fn latin_phrases_match_on_word_boundaries_only() {
        let set = PhraseSet::new(&["refund", "risk-free", "退款"], false);
        let text = normalize("Refund? It's refundable and risk-free. 我要退款");
        let found: Vec<usize> = set.find_all(&text).iter().map(|m| m.phrase).collect();
        assert_eq!(found, vec![0, 1, 2]);
        assert!(set.find_all("nonrefund").is_empty());
    }

    #[test]
    fn longest_match_prefers_the_longer_phrase() {
        let set = PhraseSet::new(&["满意", "不满意"], true);
        let found = set.find_all("我很不满意");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].phrase, 1);
    }

    #[test]
    fn clause_before_stops_at_punctuation_and_window() {
        let text = "不好意思，这款产品保本";
        let at = text.find("保本").expect("present");
        assert_eq!(clause_before(text, at, 6, 4), "这款产品");
        let en = "well there is really no way it is guaranteed";
        let at = en.find("guaranteed").expect("present");
        assert_eq!(clause_before(en, at, 6, 3), "way it is ");
    }
}
