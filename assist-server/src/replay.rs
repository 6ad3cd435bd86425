//! `assist-server replay FILE.jsonl`: a transcript through the same session engine as a live
//! call, one event per output line, the summary last.

use assist_engine::{Engine, Knowledge};
use assist_protocol::{parse_transcript_line, Event};
use std::io::{BufRead, Write};
use std::sync::Arc;

/// What a replay went through.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    pub utterances: usize,
    /// Lines that could not be used, each reported on the error writer with its number.
    pub rejected: usize,
}

/// Plays `input` (one transcript line per line) as a `language` call. Events go to `out` as
/// JSON lines; unusable lines are reported to `errors` and skipped.
pub fn replay(
    engine: &Arc<Engine>,
    knowledge: &dyn Knowledge,
    language: &str,
    input: impl BufRead,
    mut out: impl Write,
    mut errors: impl Write,
) -> std::io::Result<ReplayReport> {
    let mut session = engine.start_call(language);
    let mut report = ReplayReport::default();
    let mut seq = 0;
    for (index, line) in input.lines().enumerate() {
        let number = index + 1;
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                report.rejected += 1;
                writeln!(errors, "line {number}: cannot read: {e}")?;
                continue;
            }
        };
        let parsed = match parse_transcript_line(number, &line) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => continue,
            Err(e) => {
                report.rejected += 1;
                writeln!(errors, "{e}")?;
                continue;
            }
        };
        seq += 1;
        match session.utterance(&parsed.into_utterance(seq), knowledge) {
            Ok(events) => {
                report.utterances += 1;
                write_events(&mut out, &events)?;
            }
            Err(e) => {
                report.rejected += 1;
                writeln!(errors, "line {number}: {e}")?;
            }
        }
    }
    write_events(&mut out, &session.end(None))?;
    out.flush()?;
    Ok(report)
}

fn write_events(out: &mut impl Write, events: &[Event]) -> std::io::Result<()> {
    for event in events {
        serde_json::to_writer(&mut *out, event)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Guesses a transcript's language from the text of its lines: `zh` when mostly Chinese.
pub fn guess_language(transcript: &str) -> &'static str {
    let text: String = transcript
        .lines()
        .enumerate()
        .filter_map(|(i, line)| parse_transcript_line(i + 1, line).ok().flatten())
        .map(|line| line.text)
        .collect();
    if assist_engine::text::is_mostly_cjk(&text) {
        "zh"
    } else {
        "en"
    }
}
