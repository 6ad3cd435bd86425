//! Transcripts in the `replay` format: one `{"t","speaker","text"}` object per line (optional
//! `end`, `prosody`), one conversation per file. Its id is the file name without extension.

use super::discover::InputFile;
use super::lines::{Line, LineReader};
use super::{ids, Conversation, Problem, ReadItem, Turn};
use assist_protocol::{parse_transcript_line, Channel};
use assist_store::UnixMs;
use std::io::BufReader;

/// What every reader needs to know beyond the file.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// The agent of conversations whose source does not name one (transcripts, recordings,
    /// chat rows without `agent_id`).
    pub agent: String,
    /// `zh` / `en` for every conversation; `None`: guessed per conversation.
    pub language: Option<String>,
    /// The channel of transcripts (voice unless told).
    pub transcript_channel: Channel,
    /// Chat logs: how many conversations may be open (interleaved) at once.
    pub window: usize,
    /// The most turns one conversation may have; later rows are reported and skipped.
    pub max_turns: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            agent: "batch".into(),
            language: None,
            transcript_channel: Channel::Voice,
            window: 1024,
            max_turns: 20_000,
        }
    }
}

/// The file's modification time in Unix milliseconds (when a source has no time of its own).
pub fn modified_ms(file: &InputFile) -> UnixMs {
    std::fs::metadata(&file.path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as UnixMs)
}

/// Reads a transcript file; `emit` returns false to stop early.
pub fn read(
    file: &InputFile,
    reader: LineReader<BufReader<std::fs::File>>,
    options: &ReadOptions,
    emit: &mut dyn FnMut(ReadItem) -> bool,
) -> std::io::Result<()> {
    let mut reader = reader;
    let shown = file.shown();
    let stem = file
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| shown.clone());
    let mut turns: Vec<Turn> = Vec::new();
    let mut over = 0u64;
    while let Some((number, line)) = reader.next_line()? {
        let problem = match line {
            Line::Text(text) => match parse_transcript_line(number as usize, text) {
                Ok(None) => None,
                Ok(Some(_)) if turns.len() >= options.max_turns => {
                    over += 1;
                    None
                }
                Ok(Some(parsed)) => {
                    turns.push(Turn {
                        speaker: parsed.speaker,
                        text: parsed.text,
                        start: parsed.t,
                        end: parsed.end,
                        prosody: parsed.prosody,
                        line: number,
                    });
                    None
                }
                Err(e) => Some(e.reason),
            },
            Line::NotUtf8(at) => Some(format!("not valid UTF-8 (at byte {at} of the line)")),
            Line::TooLong(n) => Some(format!("the line is {n} bytes long, over the 1 MiB limit")),
        };
        if let Some(message) = problem {
            if !emit(ReadItem::BadRow(
                Problem::at(format!("{shown}:{number}"), message).in_conversation(&stem),
            )) {
                return Ok(());
            }
        }
        if number.is_multiple_of(4096) && !emit(ReadItem::Progress(reader.take_progress())) {
            return Ok(());
        }
    }
    emit(ReadItem::Progress(reader.take_progress()));
    if over > 0
        && !emit(ReadItem::BadRow(
            Problem::at(
                shown.clone(),
                format!(
                    "{over} line(s) past the {} turns one conversation may have were skipped",
                    options.max_turns
                ),
            )
            .in_conversation(&stem),
        ))
    {
        return Ok(());
    }
    if turns.is_empty() {
        emit(ReadItem::Failed(
            Problem::at(
                shown,
                "the transcript has no usable line: nothing to inspect",
            )
            .in_conversation(&stem),
        ));
        return Ok(());
    }
    let call_id = ids::text_call_id(&ids::source_key(&file.path), &stem);
    emit(ReadItem::Conversation(Conversation {
        call_id,
        path: shown,
        external_id: stem,
        agent_id: options.agent.clone(),
        channel: options.transcript_channel,
        language: options.language.clone(),
        started_at: modified_ms(file),
        turns,
    }));
    Ok(())
}
