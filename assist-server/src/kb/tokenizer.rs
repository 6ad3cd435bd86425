//! One tokenizer for Chinese and English text: jieba's search-mode cut (which also splits runs
//! of Latin letters into words), lowercased, without stop words, English lightly stemmed.

use jieba_rs::Jieba;
use std::sync::LazyLock;
use tantivy::tokenizer::{TextAnalyzer, Token, TokenStream, Tokenizer};

pub const TOKENIZER_NAME: &str = "zh_en";

/// Contact-center words jieba's general dictionary splits apart.
const DOMAIN_WORDS: &[&str] = &[
    "到账",
    "退款",
    "退货",
    "换货",
    "运费险",
    "七天无理由",
    "退货地址",
    "原路退回",
    "验货",
    "价保",
    "优惠券",
    "满减",
    "盗刷",
    "验证码",
    "物流",
    "快递",
    "签收",
    "拒收",
    "发票",
    "理财",
    "保本",
    "风险等级",
    "投诉",
    "售后",
    "工单",
    "催单",
    "补发",
    "漏发",
    "错发",
    "破损",
];

static JIEBA: LazyLock<Jieba> = LazyLock::new(|| {
    let mut jieba = Jieba::new();
    for word in DOMAIN_WORDS {
        jieba.add_word(word, None, None);
    }
    jieba
});

const ZH_STOP: &[&str] = &[
    "的",
    "了",
    "吗",
    "呢",
    "吧",
    "啊",
    "呀",
    "我",
    "你",
    "您",
    "他",
    "她",
    "它",
    "们",
    "我们",
    "你们",
    "是",
    "在",
    "有",
    "和",
    "就",
    "都",
    "也",
    "还",
    "这",
    "那",
    "个",
    "一",
    "请问",
    "一下",
    "什么",
    "怎么",
    "怎么办",
    "可以",
    "能",
    "会",
    "要",
    "想",
    "到",
    "说",
    "对",
    "给",
    "让",
    "把",
    "被",
    "吗",
    "么",
    "嗯",
    "哦",
    "好",
    "好的",
    "谢谢",
    "麻烦",
    "请",
    "下",
    "没",
    "不",
];

const EN_STOP: &[&str] = &[
    "a", "an", "the", "i", "you", "my", "your", "me", "we", "our", "it", "its", "is", "are", "was",
    "were", "be", "been", "to", "of", "and", "or", "for", "on", "in", "at", "by", "do", "does",
    "did", "can", "could", "will", "would", "should", "what", "when", "where", "why", "how", "so",
    "please", "just", "that", "this", "there", "here", "have", "has", "had", "with", "about", "im",
    "i'm", "hi", "hello", "ok", "okay", "yes", "no", "not", "thanks", "thank", "if", "then",
    "than", "as", "from", "up", "out", "get", "got", "want", "need", "know", "they", "them", "he",
    "she", "his", "her", "am", "any", "all", "some", "also", "too", "very",
];

/// The index and query tokens of a text.
pub fn tokens(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    JIEBA
        .cut_for_search(&lower, true)
        .into_iter()
        .filter_map(|t| keep(t.word))
        .collect()
}

fn keep(word: &str) -> Option<String> {
    let word = word.trim();
    if word.is_empty() || !word.chars().any(char::is_alphanumeric) {
        return None;
    }
    if ZH_STOP.contains(&word) || EN_STOP.contains(&word) {
        return None;
    }
    if word.chars().all(|c| c.is_ascii_alphanumeric() || c == '\'') {
        return Some(stem(word).to_string());
    }
    Some(word.to_string())
}

/// Strips the commonest English suffixes so "refunded", "refunds" and "refund" meet.
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

#[derive(Clone, Default)]
pub struct MixedTokenizer;

impl MixedTokenizer {
    pub fn analyzer() -> TextAnalyzer {
        TextAnalyzer::from(MixedTokenizer)
    }
}

pub struct VecTokenStream {
    tokens: Vec<Token>,
    next: usize,
}

impl Tokenizer for MixedTokenizer {
    type TokenStream<'a> = VecTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        let tokens = tokens(text)
            .into_iter()
            .enumerate()
            .map(|(position, text)| Token {
                offset_from: 0,
                offset_to: 0,
                position,
                text,
                position_length: 1,
            })
            .collect();
        VecTokenStream { tokens, next: 0 }
    }
}

impl TokenStream for VecTokenStream {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_is_cut_into_words_without_stop_words() {
        let t = tokens("我的退款什么时候到账");
        assert!(t.contains(&"退款".to_string()), "{t:?}");
        assert!(t.contains(&"到账".to_string()), "{t:?}");
        assert!(!t.contains(&"的".to_string()));
    }

    #[test]
    fn english_is_lowercased_and_stemmed() {
        let t = tokens("When will my Refunds arrive?");
        assert_eq!(t, vec!["refund", "arrive"]);
    }
}
