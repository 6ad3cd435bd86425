//! The overlay's words in Chinese and English. The language follows the system locale
//! (`LANG`/`LC_ALL`) unless `--ui-lang` says otherwise.

use assist_protocol::{EmotionLabel, Severity, Speaker, Tier};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    /// `zh`/`en`, or the system locale for anything else.
    pub fn pick(requested: Option<&str>) -> Lang {
        match requested.map(str::to_ascii_lowercase).as_deref() {
            Some(l) if l.starts_with("zh") => Lang::Zh,
            Some(l) if l.starts_with("en") => Lang::En,
            _ => Lang::from_locale(),
        }
    }

    pub fn from_locale() -> Lang {
        let locale = ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
            .unwrap_or_default();
        if locale.to_ascii_lowercase().starts_with("zh") {
            Lang::Zh
        } else {
            Lang::En
        }
    }
}

/// Every string the overlay shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    Title,
    Emotion,
    Escalating,
    Alerts,
    Acknowledge,
    Use,
    Dismiss,
    Copied,
    More,
    Less,
    Knowledge,
    Script,
    Transcript,
    Collapse,
    Expand,
    Connecting,
    Listening,
    Summary,
    Score,
    Passed,
    Failed,
    NoCjkFont,
}

pub fn t(lang: Lang, text: Text) -> &'static str {
    use Text::*;
    match (lang, text) {
        (Lang::Zh, Title) => "智能助手",
        (Lang::En, Title) => "Assist",
        (Lang::Zh, Emotion) => "客户情绪",
        (Lang::En, Emotion) => "Customer",
        (Lang::Zh, Escalating) => "情绪升级",
        (Lang::En, Escalating) => "escalating",
        (Lang::Zh, Alerts) => "合规提醒",
        (Lang::En, Alerts) => "Compliance",
        (Lang::Zh, Acknowledge) => "知道了",
        (Lang::En, Acknowledge) => "Got it",
        (Lang::Zh, Use) => "使用",
        (Lang::En, Use) => "Use",
        (Lang::Zh, Dismiss) => "忽略",
        (Lang::En, Dismiss) => "Dismiss",
        (Lang::Zh, Copied) => "已复制到剪贴板",
        (Lang::En, Copied) => "Copied to the clipboard",
        (Lang::Zh, More) => "展开",
        (Lang::En, More) => "more",
        (Lang::Zh, Less) => "收起",
        (Lang::En, Less) => "less",
        (Lang::Zh, Knowledge) => "知识库",
        (Lang::En, Knowledge) => "Knowledge",
        (Lang::Zh, Script) => "话术",
        (Lang::En, Script) => "Script",
        (Lang::Zh, Transcript) => "实时转写",
        (Lang::En, Transcript) => "Transcript",
        (Lang::Zh, Collapse) => "收起 (Ctrl+Shift+H)",
        (Lang::En, Collapse) => "Collapse (Ctrl+Shift+H)",
        (Lang::Zh, Expand) => "展开 (Ctrl+Shift+H)",
        (Lang::En, Expand) => "Expand (Ctrl+Shift+H)",
        (Lang::Zh, Connecting) => "正在连接服务器…",
        (Lang::En, Connecting) => "Connecting to the server…",
        (Lang::Zh, Listening) => "通话中",
        (Lang::En, Listening) => "On call",
        (Lang::Zh, Summary) => "通话小结",
        (Lang::En, Summary) => "Call summary",
        (Lang::Zh, Score) => "得分",
        (Lang::En, Score) => "Score",
        (Lang::Zh, Passed) => "合格",
        (Lang::En, Passed) => "passed",
        (Lang::Zh, Failed) => "不合格",
        (Lang::En, Failed) => "failed",
        (Lang::Zh, NoCjkFont) => "未找到中文字体：请安装 fonts-noto-cjk 或设置 ASSIST_CJK_FONT",
        (Lang::En, NoCjkFont) => "No CJK font found: install fonts-noto-cjk or set ASSIST_CJK_FONT",
    }
}

pub fn emotion(lang: Lang, label: EmotionLabel) -> &'static str {
    match (lang, label) {
        (Lang::Zh, EmotionLabel::Negative) => "负面",
        (Lang::Zh, EmotionLabel::Neutral) => "平稳",
        (Lang::Zh, EmotionLabel::Positive) => "正面",
        (Lang::En, EmotionLabel::Negative) => "negative",
        (Lang::En, EmotionLabel::Neutral) => "neutral",
        (Lang::En, EmotionLabel::Positive) => "positive",
    }
}

pub fn severity(lang: Lang, severity: Severity) -> &'static str {
    match (lang, severity) {
        (Lang::Zh, Severity::Fatal) => "致命",
        (Lang::Zh, Severity::Serious) => "严重",
        (Lang::Zh, Severity::General) => "一般",
        (Lang::En, Severity::Fatal) => "FATAL",
        (Lang::En, Severity::Serious) => "serious",
        (Lang::En, Severity::General) => "general",
    }
}

pub fn tier(lang: Lang, tier: Tier) -> &'static str {
    match (lang, tier) {
        (Lang::Zh, Tier::Basic) => "基础",
        (Lang::Zh, Tier::Advanced) => "进阶",
        (Lang::Zh, Tier::Expert) => "专家",
        (Lang::En, Tier::Basic) => "basic",
        (Lang::En, Tier::Advanced) => "advanced",
        (Lang::En, Tier::Expert) => "expert",
    }
}

pub fn speaker(lang: Lang, speaker: Speaker) -> &'static str {
    match (lang, speaker) {
        (Lang::Zh, Speaker::Agent) => "坐席",
        (Lang::Zh, Speaker::Customer) => "客户",
        (Lang::En, Speaker::Agent) => "Agent",
        (Lang::En, Speaker::Customer) => "Customer",
    }
}
