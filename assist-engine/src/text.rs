//! Text normalization and phrase matching shared by rules, intents, scripts and emotion.
//!
//! Everything is matched on [`normalize`]d text: lowercase, full-width ASCII folded to
//! half-width, and the spaces Vosk puts between Chinese words removed. A [`PhraseSet`] compiles
//! many phrases into one Aho-Corasick automaton and reports every occurrence in one pass, with
//! word-boundary checks for Latin-script phrases.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

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
    let mut out = String::with_capacity(text.len());
    normalize_into(text, &mut out);
    out
}

/// [`normalize`] into `out` (cleared first): a call keeps one buffer for all its utterances.
///
/// One pass, no intermediate buffer: a run of whitespace becomes one space when the characters
/// on both sides of it are there and neither is CJK.
pub fn normalize_into(text: &str, out: &mut String) {
    out.clear();
    let mut writer = Normalized {
        out,
        last_cjk: None,
        space: false,
    };
    for c in text.chars() {
        match c as u32 {
            // ASCII and CJK ideographs (no case, no whitespace): the common cases, no tables.
            0..=0x7F => writer.push(c.to_ascii_lowercase()),
            0x4E00..=0x9FFF => writer.push_cjk(c),
            _ => {
                let folded = match c as u32 {
                    0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
                    0x3000 => ' ',
                    // Typographic quotes that chat keyboards type: "can’t" must read as "can't".
                    0x2018 | 0x2019 => '\'',
                    0x201C | 0x201D => '"',
                    _ => c,
                };
                for lower in folded.to_lowercase() {
                    writer.push(lower);
                }
            }
        }
    }
}

/// The state of [`normalize_into`]: whether the last character written is CJK (`None` before
/// the first), and whether whitespace was seen since.
struct Normalized<'a> {
    out: &'a mut String,
    last_cjk: Option<bool>,
    space: bool,
}

impl Normalized<'_> {
    fn push(&mut self, c: char) {
        if c.is_whitespace() {
            self.space = true;
            return;
        }
        let cjk = is_cjk(c);
        if self.space && self.last_cjk == Some(false) && !cjk {
            self.out.push(' ');
        }
        self.space = false;
        self.out.push(c);
        self.last_cjk = Some(cjk);
    }

    fn push_cjk(&mut self, c: char) {
        self.space = false;
        self.out.push(c);
        self.last_cjk = Some(true);
    }
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

/// Phrase sets up to this many bytes in all are compiled to a DFA: the fastest automaton, at a
/// memory cost (a dense transition table per state) that stays around a few MB at this size.
/// Larger sets (a pack of thousands of rule phrases) keep the compact NFA.
const DFA_MAX_PATTERN_BYTES: usize = 16 * 1024;

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
            let bytes: usize = normalized.iter().map(String::len).sum();
            let build = |kind_of_automaton: Option<AhoCorasickKind>| {
                AhoCorasickBuilder::new()
                    .match_kind(kind)
                    .kind(kind_of_automaton)
                    .build(&normalized)
                    .ok()
            };
            if bytes <= DFA_MAX_PATTERN_BYTES {
                build(Some(AhoCorasickKind::DFA)).or_else(|| build(None))
            } else {
                build(None)
            }
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
        let mut found = Vec::new();
        self.each(normalized, |m| {
            found.push(m);
            true
        });
        found
    }

    /// Whether any phrase occurs in `normalized`; stops at the first occurrence.
    pub fn occurs_in(&self, normalized: &str) -> bool {
        let mut found = false;
        self.each(normalized, |_| {
            found = true;
            false
        });
        found
    }

    /// The occurrence [`PhraseSet::find_all`] would list last.
    pub fn last(&self, normalized: &str) -> Option<PhraseMatch> {
        let mut last = None;
        self.each(normalized, |m| {
            last = Some(m);
            true
        });
        last
    }

    /// Calls `f` with each occurrence [`PhraseSet::find_all`] lists, in the same order, with no
    /// allocation; stops when `f` returns false.
    pub fn each(&self, normalized: &str, mut f: impl FnMut(PhraseMatch) -> bool) {
        let Some(ac) = &self.automaton else {
            return;
        };
        let mut visit = |m: aho_corasick::Match| {
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
            !(ok_start && ok_end)
                || f(PhraseMatch {
                    phrase: m.pattern().as_usize(),
                    start: m.start(),
                    end: m.end(),
                })
        };
        if self.longest {
            for m in ac.find_iter(normalized) {
                if !visit(m) {
                    return;
                }
            }
        } else {
            for m in ac.find_overlapping_iter(normalized) {
                if !visit(m) {
                    return;
                }
            }
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

/// [`normalize`] as it was first written (a folded `Vec<char>`, then a whitespace pass), to
/// test that the one-pass version gives the same text.
#[cfg(test)]
fn normalize_reference(text: &str) -> String {
    let folded: Vec<char> = text
        .chars()
        .map(|c| match c as u32 {
            0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            0x3000 => ' ',
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
    fn the_one_pass_normalize_gives_what_the_reference_gives() {
        // Characters where the folding, the lowercasing or the whitespace rules do something:
        // ASCII, full-width forms, the ideographic space, typographic quotes, CJK (ideographs,
        // punctuation, extension A, compatibility), letters that lowercase to two characters
        // (İ) or are not ASCII (Σ, Ä, ẞ), Unicode spaces (NBSP, NEL, en space), digits, emoji.
        let alphabet: Vec<char> = "aZ 9,\t\n\rＡｚ１，　‘’“”退款到账。！？\u{3400}\u{F900}\u{FF61}\
             İΣÄẞé\u{A0}\u{85}\u{2002}\u{300}😀-'"
            .chars()
            .collect();
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut out = String::new();
        for _ in 0..20_000 {
            let len = (next() % 12) as usize;
            let text: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            normalize_into(&text, &mut out);
            assert_eq!(out, normalize_reference(&text), "{text:?}");
            assert_eq!(normalize(&text), out, "{text:?}");
        }
        for text in [
            "",
            "   ",
            " 我 要 退款 谢谢 ",
            "订单 ABC 123 已发货",
            "Ｈｅｌｌｏ，  World",
            "We can’t\t do  it",
            "İstanbul ΣΑΣ",
        ] {
            assert_eq!(normalize(text), normalize_reference(text), "{text:?}");
        }
    }

    #[test]
    fn each_occurs_in_and_last_agree_with_find_all() {
        for longest in [false, true] {
            let set = PhraseSet::new(
                &["refund", "fund", "退款", "款到", "not", "满意", "不满意"],
                longest,
            );
            for text in [
                "refund? it's refundable. 我要退款到账",
                "nonrefund fund",
                "我很不满意，不满意",
                "nothing not",
                "",
            ] {
                let all = set.find_all(text);
                let mut each = Vec::new();
                set.each(text, |m| {
                    each.push(m);
                    true
                });
                assert_eq!(each, all, "{text}");
                assert_eq!(set.occurs_in(text), !all.is_empty(), "{text}");
                assert_eq!(set.last(text), all.last().copied(), "{text}");
            }
        }
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
