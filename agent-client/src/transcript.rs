//! Transcript files for the headless mode, and a human-readable rendering of events.

use anyhow::{Context, Result};
use assist_protocol::{parse_transcript_line, CardKind, EmotionLabel, Event, TranscriptLine};
use std::path::Path;

pub struct Transcript {
    pub lines: Vec<TranscriptLine>,
    /// When the call ends: the last line's end (or start).
    pub end: f64,
}

/// Reads a transcript. Lines that cannot be read are reported on stderr with their number and
/// skipped, as `assist-server replay` does.
pub fn load(path: &Path) -> Result<Transcript> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading transcript {}", path.display()))?;
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        match parse_transcript_line(i + 1, raw) {
            Ok(Some(line)) => lines.push(line),
            Ok(None) => {}
            Err(e) => eprintln!("{}: {e}; skipped", path.display()),
        }
    }
    let end = lines
        .iter()
        .map(|l| l.end.unwrap_or(l.t))
        .fold(0.0, f64::max);
    Ok(Transcript { lines, end })
}

impl Transcript {
    pub fn guess_language(&self) -> &'static str {
        let (mut cjk, mut latin) = (0usize, 0usize);
        for c in self.lines.iter().flat_map(|l| l.text.chars()) {
            if ('\u{4e00}'..='\u{9fff}').contains(&c) {
                cjk += 1;
            } else if c.is_ascii_alphabetic() {
                latin += 1;
            }
        }
        if cjk * 2 >= latin {
            "zh"
        } else {
            "en"
        }
    }
}

/// One line for a person reading the terminal.
pub fn pretty(event: &Event) -> String {
    match event {
        Event::Alert(a) => format!(
            "{:>6.1}s  ALERT   [{}] {} ({}): {}\n          \"{}\"",
            a.t,
            a.severity.as_str(),
            a.category,
            a.speaker.as_str(),
            a.message,
            a.text
        ),
        Event::Emotion(e) => {
            let label = match e.label {
                EmotionLabel::Negative => "negative",
                EmotionLabel::Neutral => "neutral",
                EmotionLabel::Positive => "positive",
            };
            let trend = if e.escalating { "  ESCALATING" } else { "" };
            format!("{:>6.1}s  emotion {label} ({:+.2}){trend}", e.t, e.score)
        }
        Event::Card(c) => {
            let kind = match (c.kind, c.tier) {
                (CardKind::Knowledge, _) => "knowledge".to_string(),
                (CardKind::Script, Some(tier)) => format!("script/{tier:?}").to_lowercase(),
                (CardKind::Script, None) => "script".to_string(),
            };
            format!(
                "{:>6.1}s  CARD    [{kind}] {}\n          {}",
                c.t, c.title, c.body
            )
        }
        Event::Summary(s) => {
            let hits: Vec<String> = s
                .hits
                .iter()
                .map(|h| format!("{} x{} ({})", h.rule, h.count, h.severity.as_str()))
                .collect();
            format!(
                "summary: score {} ({}), {} utterances, {} cards shown\n  hits: {}",
                s.score,
                if s.passed { "passed" } else { "failed" },
                s.utterances,
                s.cards_shown,
                if hits.is_empty() {
                    "none".to_string()
                } else {
                    hits.join(", ")
                }
            )
        }
    }
}
