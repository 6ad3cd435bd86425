//! A generated QC test set: conversations with known violations planted in them (one kind per
//! conversation, Chinese and English) and clean ones, written as chat JSONL (interleaved in
//! time order), chat CSV and replay transcripts. Each conversation says exactly which rules
//! must fire, how often.

use assist_protocol::{Channel, Speaker};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

pub const A: Speaker = Speaker::Agent;
pub const C: Speaker = Speaker::Customer;

/// One generated conversation.
#[derive(Debug, Clone)]
pub struct Case {
    pub id: String,
    pub agent: String,
    /// (seconds from the start, speaker, text)
    pub lines: Vec<(f64, Speaker, String)>,
    /// rule id -> hits.
    pub expected: BTreeMap<String, u32>,
}

/// Rules of the default pack that only run on calls (`channels = ["voice"]`): their planted
/// violations are not violations in a chat.
const VOICE_ONLY: &[&str] = &[
    "process.dead_air.zh",
    "process.dead_air.en",
    "response_timeout.slow_answer.zh",
    "response_timeout.slow_answer.en",
];

impl Case {
    /// The hits expected when the case is a conversation on `channel`.
    pub fn expected_on(&self, channel: Channel) -> BTreeMap<String, u32> {
        self.expected
            .iter()
            .filter(|(rule, _)| channel == Channel::Voice || !VOICE_ONLY.contains(&rule.as_str()))
            .map(|(rule, n)| (rule.clone(), *n))
            .collect()
    }
}

fn lines(raw: &[(f64, Speaker, &str)]) -> Vec<(f64, Speaker, String)> {
    raw.iter()
        .map(|(t, s, x)| (*t, *s, x.to_string()))
        .collect()
}

/// The clean conversations and the planted violations: (kind, language, lines, expected rules).
#[allow(clippy::type_complexity)]
fn templates() -> Vec<(&'static str, Vec<(f64, Speaker, String)>, Vec<&'static str>)> {
    let zh_open = "您好，欢迎致电优选商城，很高兴为您服务，请问有什么可以帮您？";
    let zh_close = "不客气，请问还有其他问题吗？感谢您的来电，祝您生活愉快。";
    let en_open = "Hello, thank you for calling, how can I help you today?";
    let en_close = "You're welcome. Is there anything else I can help with? Have a great day.";
    vec![
        (
            "clean_zh",
            lines(&[
                (0.0, A, zh_open),
                (4.0, C, "我想查一下我的订单什么时候发货。"),
                (
                    8.0,
                    A,
                    "好的，我帮您查询一下，您的订单已经打包，预计明天发货。",
                ),
                (12.0, C, "好的，谢谢。"),
                (15.0, A, zh_close),
            ]),
            vec![],
        ),
        (
            "clean_en",
            lines(&[
                (0.0, A, en_open),
                (4.0, C, "I would like to know when my order will ship."),
                (
                    8.0,
                    A,
                    "Sure, let me check. Your order is packed and will ship tomorrow.",
                ),
                (12.0, C, "Great, thanks."),
                (15.0, A, en_close),
            ]),
            vec![],
        ),
        (
            "abuse_zh",
            lines(&[
                (0.0, A, zh_open),
                (4.0, C, "我想查一下我的订单什么时候发货。"),
                (8.0, A, "你有病吧，订单明天发货。"),
                (12.0, C, "好的。"),
                (15.0, A, zh_close),
            ]),
            vec!["abuse.insult.zh"],
        ),
        (
            "abuse_en",
            lines(&[
                (0.0, A, en_open),
                (4.0, C, "I would like to know when my order will ship."),
                (8.0, A, "Are you deaf? It ships tomorrow."),
                (12.0, C, "Okay."),
                (15.0, A, en_close),
            ]),
            vec!["abuse.insult.en"],
        ),
        (
            "promise_zh",
            lines(&[
                (0.0, A, zh_open),
                (4.0, C, "我想了解一下这款产品。"),
                (8.0, A, "这款产品稳赚不赔，您放心。"),
                (12.0, C, "好的，谢谢。"),
                (15.0, A, zh_close),
            ]),
            vec!["misleading_promise.guaranteed_return.zh"],
        ),
        (
            "promise_en",
            lines(&[
                (0.0, A, en_open),
                (4.0, C, "Tell me about this plan."),
                (8.0, A, "With this plan you can't lose money."),
                (12.0, C, "Great, thanks."),
                (15.0, A, en_close),
            ]),
            vec!["misleading_promise.guaranteed_return.en"],
        ),
        (
            "forbidden_zh",
            lines(&[
                (0.0, A, zh_open),
                (4.0, C, "这件羽绒服多少钱。"),
                (8.0, A, "这件是全网最低价，只要三百九十九元。"),
                (12.0, C, "好的，谢谢。"),
                (15.0, A, zh_close),
            ]),
            vec!["forbidden_phrase.superlative.zh"],
        ),
        (
            "forbidden_en",
            lines(&[
                (0.0, A, en_open),
                (4.0, C, "I saw the jacket on your site."),
                (8.0, A, "Yes, that jacket has the lowest price anywhere."),
                (12.0, C, "Great, thanks."),
                (15.0, A, en_close),
            ]),
            vec!["forbidden_phrase.superlative.en"],
        ),
        (
            "complaint_zh",
            lines(&[
                (0.0, A, zh_open),
                (4.0, C, "订单一直不发货，我要投诉。"),
                (8.0, A, "抱歉让您久等了，我马上帮您催促仓库，今天之内发出。"),
                (12.0, C, "好的，谢谢。"),
                (15.0, A, zh_close),
            ]),
            vec!["complaint_risk.threat.zh"],
        ),
        (
            "complaint_en",
            lines(&[
                (0.0, A, en_open),
                (
                    4.0,
                    C,
                    "My order still has not shipped, I want to file a complaint.",
                ),
                (
                    8.0,
                    A,
                    "I am sorry about the wait, I will ask the warehouse to ship it today.",
                ),
                (12.0, C, "Okay, thanks."),
                (15.0, A, en_close),
            ]),
            vec!["complaint_risk.threat.en"],
        ),
        (
            "disclosure_zh",
            lines(&[
                (0.0, A, zh_open),
                (4.0, C, "这件衣服尺码不合适，我想退货。"),
                (8.0, A, "好的，我这边帮您登记一下。"),
                (12.0, C, "好的，谢谢。"),
                (15.0, A, zh_close),
            ]),
            vec!["required_disclosure.return_terms.zh"],
        ),
        (
            "disclosure_en",
            lines(&[
                (0.0, A, en_open),
                (4.0, C, "The shoes are too small, I want to return them."),
                (8.0, A, "Sure, I have noted that for you."),
                (12.0, C, "Great, thanks."),
                (15.0, A, en_close),
            ]),
            vec!["required_disclosure.return_terms.en"],
        ),
        (
            "repeat_en",
            lines(&[
                (0.0, A, en_open),
                (4.0, C, "When will my order ship?"),
                (8.0, A, "Let me check that for you."),
                (12.0, C, "When will my order ship?"),
                (15.0, A, "It ships tomorrow morning."),
                (19.0, C, "Great, thanks."),
                (22.0, A, en_close),
            ]),
            vec!["repeat_question.same_question.en"],
        ),
        (
            "timeout_zh",
            lines(&[
                (0.0, A, zh_open),
                (4.0, C, "我的订单什么时候发货？"),
                (18.0, A, "您的订单已经打包，预计明天发货。"),
                (22.0, C, "好的，谢谢。"),
                (25.0, A, zh_close),
            ]),
            vec!["response_timeout.slow_answer.zh"],
        ),
        (
            "greeting_en",
            lines(&[
                (0.0, A, "Go ahead."),
                (4.0, C, "I would like to know when my order will ship."),
                (8.0, A, "Your order is packed and will ship tomorrow."),
                (12.0, C, "Great, thanks."),
                (15.0, A, en_close),
            ]),
            vec!["greeting.opening.en"],
        ),
        (
            "closing_zh",
            lines(&[
                (0.0, A, zh_open),
                (4.0, C, "我想查一下我的订单什么时候发货。"),
                (8.0, A, "好的，您的订单已经打包，预计明天发货。"),
                (12.0, C, "好的，知道了。"),
                (15.0, A, "嗯。"),
            ]),
            vec!["closing.ending.zh"],
        ),
        (
            "order_en",
            lines(&[
                (0.0, A, en_open),
                (4.0, C, "I want to check my account."),
                (8.0, A, "Sure, your balance is two hundred dollars."),
                (12.0, C, "Great, thanks."),
                (15.0, A, en_close),
            ]),
            vec!["process.verify_before_disclose.en"],
        ),
        (
            "escalation_zh",
            lines(&[
                (0.0, A, zh_open),
                (4.0, C, "你们太过分了，气死我了。"),
                (8.0, A, "非常抱歉，我马上帮您处理。"),
                (12.0, C, "真是岂有此理，太离谱了。"),
                (15.0, A, "真的很抱歉，我们会尽快解决。"),
                (19.0, C, "欺人太甚，我非常生气。"),
                (22.0, A, zh_close),
            ]),
            vec!["customer_escalation.negative_streak.zh"],
        ),
    ]
}

/// `copies` conversations of every template (ids `<kind>-<n>`), agents `agent-1..3`.
pub fn cases(copies: usize) -> Vec<Case> {
    let mut out = Vec::new();
    for n in 0..copies {
        for (kind, lines, rules) in templates() {
            let mut expected = BTreeMap::new();
            for rule in rules {
                *expected.entry(rule.to_string()).or_insert(0) += 1;
            }
            out.push(Case {
                id: format!("{kind}-{n}"),
                agent: format!("agent-{}", n % 3 + 1),
                lines: lines.clone(),
                expected,
            });
        }
    }
    out
}

/// ISO 8601 (China time) of `base + t` seconds.
fn stamp(base: i64, t: f64) -> String {
    let ms = base + (t * 1000.0).round() as i64 + 8 * 3_600_000;
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}+08:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

const BASE_MS: i64 = 1_763_600_000_000;

fn role(s: Speaker) -> &'static str {
    match s {
        Speaker::Agent => "agent",
        Speaker::Customer => "customer",
    }
}

/// Chat JSONL with the conversations' rows interleaved in time order (conversation k starts
/// 7 s after conversation k-1).
pub fn write_chat_jsonl(cases: &[Case], path: &Path) {
    let mut rows: Vec<(i64, String)> = Vec::new();
    for (k, case) in cases.iter().enumerate() {
        let base = BASE_MS + k as i64 * 7_000;
        for (t, speaker, text) in &case.lines {
            let row = serde_json::json!({
                "conversation_id": case.id,
                "timestamp": stamp(base, *t),
                "role": role(*speaker),
                "text": text,
                "agent_id": case.agent,
                "channel": "chat",
            });
            rows.push((base + (*t * 1000.0) as i64, row.to_string()));
        }
    }
    rows.sort_by_key(|(at, _)| *at);
    let text: String = rows.into_iter().map(|(_, r)| r + "\n").collect();
    std::fs::write(path, text).expect("write jsonl");
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Chat CSV grouped by conversation, Unix-second timestamps.
pub fn write_chat_csv(cases: &[Case], path: &Path) {
    let mut text = String::from("conversation_id,timestamp,role,text,agent_id,channel\n");
    for (k, case) in cases.iter().enumerate() {
        let base = BASE_MS / 1000 + k as i64 * 100;
        for (t, speaker, line) in &case.lines {
            let _ = writeln!(
                text,
                "{},{},{},{},{},chat",
                csv_field(&case.id),
                base as f64 + t,
                role(*speaker),
                csv_field(line),
                case.agent
            );
        }
    }
    std::fs::write(path, text).expect("write csv");
}

/// One replay transcript per case, `<dir>/<id>.jsonl`.
pub fn write_transcripts(cases: &[Case], dir: &Path) {
    std::fs::create_dir_all(dir).expect("mkdir");
    for case in cases {
        let text: String = case
            .lines
            .iter()
            .map(|(t, s, x)| {
                serde_json::json!({"t": t, "end": t + 2.5, "speaker": role(*s), "text": x})
                    .to_string()
                    + "\n"
            })
            .collect();
        std::fs::write(dir.join(format!("{}.jsonl", case.id)), text).expect("write transcript");
    }
}
