//! Shared by the bench targets: sample calls, env-configurable sizes, histogram reports and
//! the machine description printed with every run.

#![allow(dead_code)]

use assist_protocol::{parse_transcript_line, TranscriptLine};
use hdrhistogram::Histogram;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

pub fn default_pack_dir() -> PathBuf {
    repo_root().join("knowledge")
}

/// A sample call: its name, language and transcript lines.
#[derive(Debug, Clone)]
pub struct SampleCall {
    pub name: String,
    pub language: &'static str,
    pub lines: Vec<TranscriptLine>,
}

/// The sample calls of `assist-server/tests/calls/*.jsonl` (sorted by name, when the folder
/// exists), then the inline product-claim calls of [`inline_calls`].
pub fn sample_calls() -> Vec<SampleCall> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/calls");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    let mut calls = Vec::new();
    for path in paths {
        let raw = std::fs::read_to_string(&path).expect("read a sample call");
        let lines: Vec<TranscriptLine> = raw
            .lines()
            .enumerate()
            .filter_map(|(i, l)| parse_transcript_line(i + 1, l).expect("valid transcript line"))
            .collect();
        if lines.is_empty() {
            continue;
        }
        let name = path
            .file_stem()
            .expect("file name")
            .to_string_lossy()
            .to_string();
        let language = assist_server::replay::guess_language(&raw);
        calls.push(SampleCall {
            name,
            language,
            lines,
        });
    }
    calls.extend(inline_calls());
    calls
}

fn line(t: f64, customer: bool, text: &str) -> TranscriptLine {
    TranscriptLine {
        t,
        end: Some(t + 4.0),
        speaker: if customer {
            assist_protocol::Speaker::Customer
        } else {
            assist_protocol::Speaker::Agent
        },
        text: text.to_string(),
        prosody: None,
    }
}

fn call(name: &str, language: &'static str, turns: &[(bool, &str)]) -> SampleCall {
    SampleCall {
        name: name.to_string(),
        language,
        lines: turns
            .iter()
            .enumerate()
            .map(|(i, (customer, text))| line(1.0 + 6.0 * i as f64, *customer, text))
            .collect(),
    }
}

/// Product-claim calls: agents praising products the way the generated rules watch for, and
/// customers asking the knowledge base (so generated rules fire too).
pub fn inline_calls() -> Vec<SampleCall> {
    vec![
        call(
            "inline_zh_product_claims",
            "zh",
            &[
                (false, "您好，欢迎致电优选商城，我是客服小王，请问有什么可以帮您？"),
                (true, "你好，我想买个空气炸锅，你们这款和别家比怎么样？"),
                (false, "这款空气炸锅全网最低，而且销量第一，您放心买。"),
                (true, "那要是用了不满意可以退吗？运费谁出？"),
                (false, "可以的，七天无理由退货，退货运费由运费险承担，退货地址我稍后短信发给您。"),
                (true, "我还想问一下你们那个安鑫稳盈理财，收益怎么样？"),
                (false, "安鑫稳盈保证翻倍，稳赚不赔的，很多客户都买了。"),
                (true, "真的假的？有没有风险啊，我这钱是养老用的。"),
                (false, "您放心，这个产品零风险，年化能到百分之二十五。"),
                (true, "我的退款什么时候到账？上个月退的扫地机器人到现在还没收到钱。"),
                (false, "非常抱歉，我帮您查一下，退款一般1到3个工作日原路退回。"),
                (true, "你们效率可真高，一个月了还没退，我要打12315投诉你们！"),
                (false, "非常抱歉给您带来不便，我马上帮您加急处理，今天之内给您回复。"),
                (true, "好吧，那我等你们电话。"),
                (false, "感谢您的来电，祝您生活愉快，再见。"),
            ],
        ),
        call(
            "inline_en_product_claims",
            "en",
            &[
                (false, "Thank you for calling ShopEase, this is Sam. How can I help you today?"),
                (true, "Hi, I'm looking at the robot vacuum and the air fryer on your site."),
                (false, "Great choice, our robot vacuum is the cheapest anywhere and it never breaks."),
                (true, "Can I return it if I don't like it? Who pays for the return shipping?"),
                (false, "Yes, you have thirty days to return it, and the return label is free."),
                (true, "Also, is the Growth Plus fund a safe place for my savings?"),
                (false, "Honestly the Growth Plus fund is guaranteed to double, it's totally risk free."),
                (true, "Hmm, my refund for the desk lamp still hasn't arrived after two weeks."),
                (false, "I'm sorry about that, let me check the refund status for you right away."),
                (true, "This is ridiculous, I want to speak to your manager and file a complaint."),
                (false, "I understand, I'll escalate it now and call you back today."),
                (true, "Fine. When will the money be back on my card?"),
                (false, "Refunds go back to the original card within three to five business days."),
                (true, "Okay, thanks."),
                (false, "Is there anything else I can help with? Thank you for calling, have a great day."),
            ],
        ),
    ]
}

/// `cargo bench` runs a bench binary with `--bench`; `cargo test --all-targets` (or
/// `--benches`) runs it without. Returns false, with a note, in the latter case so that the test
/// run does not sit through a benchmark.
pub fn invoked_by_cargo_bench() -> bool {
    let yes = std::env::args().any(|a| a == "--bench");
    if !yes {
        println!("benchmark skipped: run it with `cargo bench -p assist-server --bench <name>`");
    }
    yes
}

/// A positive integer from the environment, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a non-negative integer, got `{v}`")),
        Err(_) => default,
    }
}

/// A histogram of nanoseconds, 1 ns to 60 s, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1);
    h.saturating_record(ns);
}

/// `count  p50  p95  p99  max  mean` in microseconds.
pub fn row_us(label: &str, h: &Histogram<u64>) -> String {
    let us = |ns: u64| ns as f64 / 1_000.0;
    format!(
        "{label:<34} n={:<8} p50={:>9.1}µs p95={:>9.1}µs p99={:>9.1}µs max={:>9.1}µs mean={:>9.1}µs",
        h.len(),
        us(h.value_at_quantile(0.50)),
        us(h.value_at_quantile(0.95)),
        us(h.value_at_quantile(0.99)),
        us(h.max()),
        h.mean() / 1_000.0,
    )
}

/// `count  p50  p95  p99  max  mean` in milliseconds.
pub fn row_ms(label: &str, h: &Histogram<u64>) -> String {
    let ms = |ns: u64| ns as f64 / 1_000_000.0;
    format!(
        "{label:<34} n={:<8} p50={:>8.3}ms p95={:>8.3}ms p99={:>8.3}ms max={:>8.3}ms mean={:>8.3}ms",
        h.len(),
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.95)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max()),
        h.mean() / 1_000_000.0,
    )
}

fn first_line_with(path: &str, key: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find(|l| l.starts_with(key))
        .map(|l| l.split_once(':').map_or(l, |(_, v)| v).trim().to_string())
}

/// nproc, CPU model, memory, kernel and time of the run.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = first_line_with("/proc/cpuinfo", "model name").unwrap_or_else(|| "?".into());
    let mem = first_line_with("/proc/meminfo", "MemTotal").unwrap_or_else(|| "?".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into());
    format!(
        "machine: {cpus} CPUs ({model}), MemTotal {mem}, Linux {kernel}, load average {load}, unix time {secs}, debug_assertions={}",
        cfg!(debug_assertions)
    )
}

/// This process's resident set size in KiB (VmRSS), 0 when unknown.
pub fn rss_kib() -> u64 {
    first_line_with("/proc/self/status", "VmRSS")
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}
