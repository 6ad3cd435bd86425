//! Is a phrase negated? "不保本", "无法保证收益", "not guaranteed", "we can't promise".
//!
//! Looks at the same clause just before the phrase for a negation cue, skipping words that
//! merely contain one ("不好意思", "非常", "no problem"). Vosk output has no punctuation, so the
//! window is short: a few characters of Chinese, a few words of English.

use crate::text::clause_before;

const ZH_CUES: &[char] = &['不', '没', '无', '非', '未', '别', '莫', '勿', '否'];

/// Words that contain a cue character but do not negate what follows.
const ZH_PSEUDO: &[&str] = &[
    "不好意思",
    "不客气",
    "不错",
    "不用担心",
    "不必担心",
    "别担心",
    "不仅",
    "不但",
    "不管",
    "没问题",
    "没关系",
    "没事",
    "无论",
    "非常",
    "并非不",
    "无忧",
    "不少",
    "不久",
    "无理由",
    "无条件",
    "无门槛",
    "不限",
];

/// What may stand between a Chinese negation and the phrase it negates: auxiliaries, adverbs,
/// verbs of wanting and promising, and "to you" ("不能给您保证收益", "没有办法保本",
/// "并不是零风险", "无法承诺年化收益30%", "不想退货"). Anything else between them
/// means the negation belongs to another verb ("快递一直没到我要投诉").
const ZH_BRIDGE: &[&str] = &[
    "给您", "给你", "对您", "向您", "跟您", "承诺", "保证", "确定", "打算", "愿意", "建议", "推荐",
    "想", "可能", "可以", "一定", "办法", "任何", "需要", "能", "会", "是", "敢", "用", "都", "也",
    "就", "再", "太", "很", "算", "要", "得", "有", "法", "够", "了", "并", "说",
];

const EN_CUES: &[&str] = &[
    "not", "no", "never", "cannot", "can't", "cant", "won't", "wont", "don't", "dont", "doesn't",
    "doesnt", "didn't", "didnt", "isn't", "isnt", "aren't", "arent", "wasn't", "wasnt", "without",
    "nothing", "neither", "nor", "hardly", "none",
];

const EN_PSEUDO: &[&str] = &[
    "no problem",
    "not only",
    "no doubt",
    "no worries",
    "don't worry",
    "dont worry",
    "never mind",
    "not just",
];

/// Characters of Chinese and words of English looked back from the phrase.
const ZH_WINDOW: usize = 5;
const EN_WINDOW: usize = 4;

/// Whether the phrase starting at byte `start` of `normalized` is negated.
pub fn is_negated(normalized: &str, start: usize) -> bool {
    let window = clause_before(normalized, start, ZH_WINDOW, EN_WINDOW);
    if window.is_empty() {
        return false;
    }
    // Chinese: a cue character that does not begin (or sit inside) a pseudo-negation.
    for (i, c) in window.char_indices() {
        if !ZH_CUES.contains(&c) {
            continue;
        }
        let from_here = &normalized[start - window.len() + i..];
        let inside_pseudo = ZH_PSEUDO.iter().any(|p| {
            // the cue may be the 1st or 2nd char of the pseudo word ("并非不", "别担心")
            from_here.starts_with(p)
                || window[..i]
                    .char_indices()
                    .next_back()
                    .is_some_and(|(j, _)| normalized[start - window.len() + j..].starts_with(p))
        });
        let gap_start = start - window.len() + i + c.len_utf8();
        if !inside_pseudo && is_bridge(&normalized[gap_start..start]) {
            return true;
        }
    }
    // English: a cue word not part of a pseudo phrase.
    let words: Vec<&str> = window
        .split(|c: char| c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    for (i, word) in words.iter().enumerate() {
        let word = word.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'');
        let is_cue = EN_CUES.contains(&word) || word.ends_with("n't");
        if !is_cue {
            continue;
        }
        let phrase = words[i..].join(" ");
        if !EN_PSEUDO.iter().any(|p| phrase.starts_with(p)) {
            return true;
        }
    }
    false
}

/// Whether `gap` is made only of bridge words (or is empty).
fn is_bridge(mut gap: &str) -> bool {
    while !gap.is_empty() {
        match ZH_BRIDGE.iter().find(|w| gap.starts_with(**w)) {
            Some(word) => gap = &gap[word.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn negated(text: &str, phrase: &str) -> bool {
        let start = text.find(phrase).expect("phrase present");
        is_negated(text, start)
    }

    #[test]
    fn chinese_negations_are_seen() {
        assert!(negated("这款产品不保本", "保本"));
        assert!(negated("我们无法保证收益", "保证收益"));
        assert!(negated("并不是零风险", "零风险"));
        assert!(negated("没有办法保本", "保本"));
        assert!(negated("不能给您保证收益", "保证收益"));
        assert!(negated("不一定保本", "保本"));
    }

    #[test]
    fn a_negation_of_another_verb_does_not_reach_the_phrase() {
        assert!(!negated("快递一直没到我要投诉", "投诉"));
        assert!(!negated("我要七天无理由退货", "退货"));
    }

    #[test]
    fn chinese_affirmations_are_not_negations() {
        assert!(!negated("这款产品保本", "保本"));
        assert!(!negated("不好意思这款保本", "保本"));
        assert!(!negated("非常安全保本", "保本"));
        assert!(!negated("没问题保本的", "保本"));
        assert!(
            !negated("不，这个绝对保本", "保本"),
            "a clause break ends the negation"
        );
    }

    #[test]
    fn english_negations_are_seen() {
        assert!(negated("returns are not guaranteed", "guaranteed"));
        assert!(negated("this is not risk-free", "risk-free"));
        assert!(negated(
            "we can't promise guaranteed returns",
            "guaranteed returns"
        ));
        assert!(negated(
            "there is no guaranteed return",
            "guaranteed return"
        ));
    }

    #[test]
    fn english_affirmations_are_not_negations() {
        assert!(!negated("it is risk-free", "risk-free"));
        assert!(!negated("don't worry it is risk-free", "risk-free"));
        assert!(!negated(
            "no problem it's a guaranteed return",
            "guaranteed return"
        ));
        assert!(!negated("not at all. it is risk-free", "risk-free"));
    }
}
