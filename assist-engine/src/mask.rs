//! PII masking: bank card, mobile and landline numbers, ID numbers and e-mail addresses.
//!
//! Runs first on every utterance, so nothing the engine emits (and nothing the server stores or
//! logs) carries them. Numbers are recognized however they were written or recognized: digits
//! with or without spaces and dashes, Chinese numerals as Vosk writes spoken digits
//! ("幺三八..."), and English digit words ("one three eight ...").

use regex::{Captures, Regex};
use std::borrow::Cow;
use std::sync::LazyLock;

/// Fewest digits that make a number worth masking (7: a local landline without area code).
const MIN_DIGITS: usize = 7;

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b([a-z0-9])[a-z0-9._%+-]*@([a-z0-9.-]+\.[a-z]{2,})\b").expect("valid regex")
});

/// Digits, optionally grouped by single spaces or dashes; an ID number may end in X.
static DIGITS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:\+?86[ -]?)?\d(?:[ -]?\d)+(?:[xX])?").expect("valid regex"));

static CHINESE_DIGITS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[零〇一二三四五六七八九幺两](?:\s?[零〇一二三四五六七八九幺两])+")
        .expect("valid regex")
});

static ENGLISH_DIGITS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)(?:[\s,-]+(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)\b)+")
        .expect("valid regex")
});

/// The characters [`CHINESE_DIGITS`] is made of.
#[cfg(test)]
fn is_chinese_numeral(c: char) -> bool {
    NUMERALS.contains(&c)
}

/// The Chinese digits a spoken number is made of.
const NUMERALS: [char; 13] = [
    '零', '〇', '一', '二', '三', '四', '五', '六', '七', '八', '九', '幺', '两',
];

/// Masks every PII number and e-mail address in `text`.
pub fn mask_pii(text: &str) -> String {
    mask(text).into_owned()
}

/// [`mask_pii`], borrowing `text` when there is nothing to mask (most utterances).
///
/// A pattern only runs when it could change the text: an `@` for an e-mail address; enough
/// digits, Chinese numerals or digit words in a row for a number of [`MIN_DIGITS`]. Shorter
/// numbers are matched and then left as they are, so skipping them is exact (unit test against
/// the unfiltered version) and skips most of the work on ordinary utterances — Unicode `\b`
/// over Chinese text is the regex crate's slow path. The counts are taken again on the masked
/// text whenever a pattern changed it.
pub fn mask(text: &str) -> Cow<'_, str> {
    let mut text = Cow::Borrowed(text);
    let mut counts = Counts::of(&text);
    if counts.at && replace(&mut text, &EMAIL, |c| format!("{}***@{}", &c[1], &c[2])) {
        counts = Counts::of(&text);
    }
    // A match holds its ASCII digits and at most one `X`.
    if counts.ascii_digits + 1 >= MIN_DIGITS && replace(&mut text, &DIGITS, |c| mask_number(&c[0]))
    {
        counts = Counts::of(&text);
    }
    if counts.numerals >= MIN_DIGITS {
        replace(&mut text, &CHINESE_DIGITS, |c| mask_spoken(&c[0]));
    }
    if counts.has_letter && digit_word_run(&text) >= MIN_DIGITS {
        replace(&mut text, &ENGLISH_DIGITS, |c| mask_spoken_words(&c[0]));
    }
    text
}

/// What the patterns of [`mask`] need, counted in one pass.
#[derive(Debug, Default)]
struct Counts {
    at: bool,
    ascii_digits: usize,
    numerals: usize,
    /// A letter of a digit word: ASCII, or the long s (U+017F), which `(?i)` folds to `s`.
    has_letter: bool,
}

impl Counts {
    /// One pass over the bytes: ASCII is checked byte by byte, and only the lead bytes of the
    /// numerals' UTF-8 (and of `ſ`) look further (no char decoding: this runs on every
    /// utterance, and again on what the store writes).
    fn of(text: &str) -> Counts {
        let mut counts = Counts::default();
        let bytes = text.as_bytes();
        for (i, &byte) in bytes.iter().enumerate() {
            match byte {
                b'0'..=b'9' => counts.ascii_digits += 1,
                b'@' => counts.at = true,
                b'a'..=b'z' | b'A'..=b'Z' => counts.has_letter = true,
                // A lead byte: the text is valid UTF-8, so the char is complete.
                0xC5 => counts.has_letter |= bytes.get(i + 1) == Some(&0xBF),
                0xE3 | 0xE4 | 0xE5 | 0xE9 => {
                    if let Some(&[b0, b1, b2]) = bytes.get(i..i + 3) {
                        let code = u32::from_be_bytes([0, b0, b1, b2]);
                        counts.numerals += usize::from(NUMERALS_UTF8.contains(&code));
                    }
                }
                _ => {}
            }
        }
        counts
    }
}

/// The UTF-8 bytes of each of [`NUMERALS`], as big-endian numbers.
const NUMERALS_UTF8: [u32; 13] = {
    let mut codes = [0u32; 13];
    let mut i = 0;
    while i < NUMERALS.len() {
        let mut buf = [0u8; 4];
        let utf8 = NUMERALS[i].encode_utf8(&mut buf).as_bytes();
        assert!(utf8.len() == 3);
        codes[i] = ((utf8[0] as u32) << 16) | ((utf8[1] as u32) << 8) | utf8[2] as u32;
        i += 1;
    }
    codes
};

/// The most digit words ("one", "two", …, "oh") in a row in `text`, an upper bound of the
/// words of any [`ENGLISH_DIGITS`] match.
///
/// Words are the runs of ASCII letters, digits, `_` and `ſ`: every one of those is a word
/// character to the regex, so a matched digit word (word boundaries on both sides) is one of
/// these words. Words are counted in a row whatever stands between them, which can only
/// count more than the regex chains.
fn digit_word_run(text: &str) -> usize {
    const WORDS: [&[u8]; 11] = [
        b"zero", b"oh", b"one", b"two", b"three", b"four", b"five", b"six", b"seven", b"eight",
        b"nine",
    ];
    let (mut longest, mut run) = (0, 0);
    let mut word = [0u8; 5];
    let mut len = 0usize;
    for c in text.chars().chain(std::iter::once(' ')) {
        let folded = match c {
            'ſ' => Some(b's'),
            c if c.is_ascii_alphanumeric() || c == '_' => Some(c.to_ascii_lowercase() as u8),
            _ => None,
        };
        match folded {
            Some(b) => {
                if len < word.len() {
                    word[len] = b;
                }
                len += 1;
            }
            None if len > 0 => {
                let is_digit_word = len <= word.len() && WORDS.contains(&&word[..len]);
                run = if is_digit_word { run + 1 } else { 0 };
                longest = longest.max(run);
                len = 0;
            }
            None => {}
        }
    }
    longest
}

/// Replaces the matches of `re` in `text`, which stays borrowed when nothing matched. Whether
/// anything matched.
fn replace(text: &mut Cow<'_, str>, re: &Regex, with: impl FnMut(&Captures) -> String) -> bool {
    let replaced = match re.replace_all(text, with) {
        Cow::Owned(replaced) => Some(replaced),
        Cow::Borrowed(_) => None,
    };
    match replaced {
        Some(replaced) => {
            *text = Cow::Owned(replaced);
            true
        }
        None => false,
    }
}

/// [`mask_pii`] without the pre-checks, to test that they change nothing.
#[cfg(test)]
fn mask_pii_unfiltered(text: &str) -> String {
    let text = EMAIL.replace_all(text, |c: &Captures| format!("{}***@{}", &c[1], &c[2]));
    let text = DIGITS.replace_all(&text, |c: &Captures| mask_number(&c[0]));
    let text = CHINESE_DIGITS.replace_all(&text, |c: &Captures| mask_spoken(&c[0]));
    let text = ENGLISH_DIGITS.replace_all(&text, |c: &Captures| mask_spoken_words(&c[0]));
    text.into_owned()
}

/// Masks one written number, keeping its separators' shape readable:
/// mobile `138****5678`, everything else all but the last four.
fn mask_number(raw: &str) -> String {
    let digits = raw.chars().filter(|c| c.is_ascii_alphanumeric()).count();
    if digits < MIN_DIGITS {
        return raw.to_string();
    }
    let (prefix, body) = split_country_code(raw);
    let body_digits: Vec<char> = body.chars().filter(char::is_ascii_alphanumeric).collect();
    let is_mobile = body_digits.len() == 11 && body_digits[0] == '1';
    let keep_head = if is_mobile { 3 } else { area_code_len(body) };
    let keep_tail = 4.min(body_digits.len().saturating_sub(keep_head + 1));
    let mut seen = 0;
    let masked: String = body
        .chars()
        .map(|c| {
            if !c.is_ascii_alphanumeric() {
                return c;
            }
            seen += 1;
            if seen <= keep_head || seen > body_digits.len() - keep_tail {
                c
            } else {
                '*'
            }
        })
        .collect();
    format!("{prefix}{masked}")
}

fn split_country_code(raw: &str) -> (&str, &str) {
    for prefix in ["+86 ", "+86-", "+86", "86 ", "86-"] {
        if let Some(rest) = raw.strip_prefix(prefix) {
            return (&raw[..prefix.len()], rest);
        }
    }
    ("", raw)
}

/// A Chinese landline written with its area code and a dash ("010-12345678") keeps the code.
fn area_code_len(body: &str) -> usize {
    match body.split_once('-') {
        Some((code, _)) if code.starts_with('0') && (3..=4).contains(&code.len()) => code.len(),
        _ => 0,
    }
}

fn mask_spoken(raw: &str) -> String {
    let count = raw.chars().filter(|c| !c.is_whitespace()).count();
    if count < MIN_DIGITS {
        return raw.to_string();
    }
    let mut seen = 0;
    raw.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| {
            seen += 1;
            if seen > count - 4 {
                c
            } else {
                '*'
            }
        })
        .collect()
}

fn mask_spoken_words(raw: &str) -> String {
    let words: Vec<&str> = raw
        .split(|c: char| c.is_whitespace() || c == ',' || c == '-')
        .filter(|w| !w.is_empty())
        .collect();
    if words.len() < MIN_DIGITS {
        return raw.to_string();
    }
    let keep = words.len() - 4;
    words
        .iter()
        .enumerate()
        .map(|(i, w)| if i < keep { "*" } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobile_numbers_keep_head_and_tail() {
        assert_eq!(mask_pii("我的手机是13812345678"), "我的手机是138****5678");
        assert_eq!(mask_pii("call 138-1234-5678 now"), "call 138-****-5678 now");
        assert_eq!(mask_pii("+86 13812345678"), "+86 138****5678");
    }

    #[test]
    fn bank_cards_and_ids_keep_only_the_last_four() {
        assert_eq!(
            mask_pii("卡号6222 0212 3456 7890 123"),
            "卡号**** **** **** ***0 123"
        );
        assert_eq!(
            mask_pii("身份证11010119900307123X"),
            "身份证**************123X"
        );
    }

    #[test]
    fn landline_keeps_area_code() {
        assert_eq!(mask_pii("座机010-62345678"), "座机010-****5678");
    }

    #[test]
    fn short_numbers_and_amounts_stay() {
        let text = "退款299元，3到5个工作日，订单2件";
        assert_eq!(mask_pii(text), text);
    }

    #[test]
    fn spoken_digits_are_masked() {
        assert_eq!(
            mask_pii("号码是幺三八一二三四五六七八"),
            "号码是*******五六七八"
        );
        assert_eq!(
            mask_pii("it is one three eight one two three four five six seven eight ok"),
            "it is * * * * * * * five six seven eight ok"
        );
    }

    #[test]
    fn the_pre_checks_change_nothing() {
        let texts = [
            "我的手机是13812345678，邮箱zhang.san@example.com",
            "号码是幺三八一二三四五六七八",
            "it is one three eight one two three four five six seven eight ok",
            "ſix ſeven eight nine one two three four",
            "退款299元，3到5个工作日",
            "全角１３８１２３４５６７８",
            "您好，欢迎致电优选商城，很高兴为您服务",
            "mail Z@EXAMPLE.COM or call +86 138-1234-5678",
            "",
            // Just under and at the length that is masked, in every notation.
            "123456 and 12345 6x",
            "1234567",
            "12345 6X",
            "+86 12345",
            "１２３４５６７８",
            "一二三四五六",
            "一二三四五六七",
            "one two three four five six",
            "one two three four five six seven",
            "One, Two-THREE four five six oh",
            "x.one two three four five six seven.y",
            "phone one two three four five six seven eight",
            "one two three 4 five six seven eight nine",
            "sevens seven seven seven seven seven seven seven",
            "ſix ſix ſix ſix ſix ſix ſix",
            "a1@b.cn 1234567 幺三八一二三四五六七八 one two three four five six seven",
        ];
        for text in texts {
            assert_eq!(mask_pii(text), mask_pii_unfiltered(text), "{text}");
            // Idempotent: batch QC masks once and hands the engine the masked text.
            let once = mask_pii(text);
            assert_eq!(mask_pii(&once), once, "{text}");
        }
    }

    #[test]
    fn counts_by_bytes_are_the_counts_by_chars() {
        let texts = [
            "",
            "我的卡号是六二二二零二一二三四五六七八九〇",
            "call me at 138 0013 8000 or mail li.na@example.com",
            "ſeven ſix 两幺九 〇 零 一二三",
            "價格是 ９９ 元，電話一三八",
            "emoji 🙂 and 𠀀 and 丁七丅 亅九乚",
        ];
        for text in texts {
            let bytes = Counts::of(text);
            let chars: Vec<char> = text.chars().collect();
            assert_eq!(bytes.at, chars.contains(&'@'), "{text}");
            assert_eq!(
                bytes.ascii_digits,
                chars.iter().filter(|c| c.is_ascii_digit()).count(),
                "{text}"
            );
            assert_eq!(
                bytes.numerals,
                chars.iter().filter(|c| is_chinese_numeral(**c)).count(),
                "{text}"
            );
            assert_eq!(
                bytes.has_letter,
                chars
                    .iter()
                    .any(|c| c.is_ascii_alphabetic() || *c == '\u{17F}'),
                "{text}"
            );
        }
    }

    #[test]
    fn emails_keep_first_letter_and_domain() {
        assert_eq!(
            mask_pii("mail zhang.san@example.com"),
            "mail z***@example.com"
        );
    }
}
