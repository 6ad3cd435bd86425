//! Chat logs: JSONL (one object per line) and CSV (a header row, then one row per message),
//! many conversations per file.
//!
//! Columns (CSV header names, or JSONL keys; case-insensitive):
//!
//! | column | required | aliases | meaning |
//! |---|---|---|---|
//! | `conversation_id` | yes | `conversation`, `session_id`, `chat_id` | groups the messages |
//! | `timestamp` | yes | `time`, `ts`, `created_at` | ISO 8601 (`2026-11-20T10:15:03+08:00`) or Unix seconds / ms |
//! | `role` | yes | `speaker`, `sender` | `agent` or `customer` (and synonyms); `system` / `bot` rows are skipped |
//! | `text` | yes | `content`, `message` | the message; rows with empty text (attachments) are skipped |
//! | `agent_id` | no | `agent` | the agent; the first one of the conversation counts (`--agent` otherwise) |
//! | `channel` | no | | `chat` (default) or `voice` |
//! | `language` | no | `lang` | `zh` / `en`; guessed from the text otherwise |
//!
//! **Grouping.** Rows of one conversation may be interleaved with other conversations' rows
//! (an export in time order), within a window: at most `--window` conversations (default
//! 1,024) are open at once; when one more opens, the least recently active one is closed and
//! inspected. A conversation whose rows come back after it was closed is reported at that row
//! (sort or group the file by conversation id, or widen the window). Memory is bounded by the
//! window, not by the file; 8-byte hashes of the last [`REMEMBERED_CLOSED`] closed conversation
//! ids are kept to recognize one that comes back.
//!
//! **CSV.** RFC 4180: fields with commas, quotes or line breaks are quoted, quotes inside are
//! doubled. A row is read line by line; an unterminated quote is reported at its line after
//! 20 lines without a closing quote and reading picks up again at the next line, so a broken
//! quote costs one row, not the rest of the file.

use super::discover::InputFile;
use super::lines::{Line, LineReader};
use super::time::{from_number, parse_timestamp};
use super::transcript::ReadOptions;
use super::{ids, parse_role, Conversation, Problem, ReadItem, Turn};
use assist_protocol::{Channel, Speaker};
use assist_store::UnixMs;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::io::BufReader;

/// Turns buffered over all open conversations before the least recently active one is closed
/// early (bounds memory when conversations are very long).
const MAX_BUFFERED_TURNS: usize = 200_000;
/// Lines one CSV record may span before its opening quote is taken to be unterminated.
const MAX_RECORD_LINES: usize = 20;
/// Closed conversation ids remembered (as 8-byte hashes) to recognize one that comes back: the
/// most recent this many (about 4 MB), so memory stays flat however many a file holds.
pub const REMEMBERED_CLOSED: usize = 262_144;

type Lines = LineReader<BufReader<std::fs::File>>;

/// One usable message.
#[derive(Debug, Clone)]
pub struct ChatRow {
    pub conversation_id: String,
    pub at_ms: UnixMs,
    pub speaker: Speaker,
    pub text: String,
    pub agent_id: Option<String>,
    pub channel: Channel,
    pub language: Option<String>,
}

/// What a raw row turns into.
enum Parsed {
    Row(ChatRow),
    /// A row that is fine but not part of the conversation (system message, attachment).
    Skip,
}

fn channel_of(raw: Option<&str>) -> Channel {
    match raw.map(|c| c.trim().to_ascii_lowercase()) {
        Some(c) if matches!(c.as_str(), "voice" | "phone" | "call" | "audio") => Channel::Voice,
        _ => Channel::Chat,
    }
}

fn language_of(raw: Option<&str>) -> Option<String> {
    let l = raw?.trim().to_ascii_lowercase();
    if l.starts_with("zh") || l.starts_with("cmn") {
        Some("zh".into())
    } else if l.starts_with("en") {
        Some("en".into())
    } else {
        None
    }
}

/// Checks and converts the fields of one row.
fn make_row(
    conversation_id: &str,
    timestamp: Result<UnixMs, String>,
    role: &str,
    text: String,
    agent_id: Option<&str>,
    channel: Option<&str>,
    language: Option<&str>,
) -> Result<Parsed, String> {
    let conversation_id = conversation_id.trim();
    if conversation_id.is_empty() {
        return Err("the conversation_id is empty".into());
    }
    let speaker = match parse_role(role) {
        None => return Ok(Parsed::Skip),
        Some(Ok(s)) => s,
        Some(Err(())) => {
            return Err(format!(
                "role `{}` is neither agent nor customer (system and bot rows are skipped)",
                role.trim()
            ))
        }
    };
    let at_ms = timestamp?;
    if text.trim().is_empty() {
        return Ok(Parsed::Skip);
    }
    Ok(Parsed::Row(ChatRow {
        conversation_id: conversation_id.to_string(),
        at_ms,
        speaker,
        text,
        agent_id: agent_id
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string),
        channel: channel_of(channel),
        language: language_of(language),
    }))
}

// -- Grouping --------------------------------------------------------------------------------

struct Open {
    conversation: Conversation,
    /// Absolute time (ms) of each turn, parallel to `conversation.turns`.
    at_ms: Vec<UnixMs>,
    touched: u64,
    over: u64,
}

/// Collects rows into conversations within a bounded window of open ones.
pub struct Grouper {
    path: String,
    source: String,
    options: ReadOptions,
    open: HashMap<String, Open>,
    /// touched counter -> conversation id: the least recently active first.
    recency: BTreeMap<u64, String>,
    closed: HashSet<u64>,
    /// `closed` in the order they were closed (the oldest is forgotten first).
    closed_order: VecDeque<u64>,
    touch: u64,
    buffered: usize,
}

fn id_hash(id: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

impl Grouper {
    pub fn new(file: &InputFile, options: &ReadOptions) -> Grouper {
        Grouper {
            path: file.shown(),
            source: ids::source_key(&file.path),
            options: options.clone(),
            open: HashMap::new(),
            recency: BTreeMap::new(),
            closed: HashSet::new(),
            closed_order: VecDeque::new(),
            touch: 0,
            buffered: 0,
        }
    }

    /// Adds a row read at `line`; false when `emit` asked to stop.
    pub fn row(&mut self, row: ChatRow, line: u64, emit: &mut dyn FnMut(ReadItem) -> bool) -> bool {
        self.touch += 1;
        let touch = self.touch;
        if let Some(open) = self.open.get_mut(&row.conversation_id) {
            self.recency.remove(&open.touched);
            open.touched = touch;
            self.recency.insert(touch, row.conversation_id.clone());
            if open.conversation.turns.len() >= self.options.max_turns {
                open.over += 1;
                return true;
            }
            open.at_ms.push(row.at_ms);
            open.conversation.turns.push(Turn {
                speaker: row.speaker,
                text: row.text,
                start: 0.0,
                end: None,
                prosody: None,
                line,
            });
            self.buffered += 1;
        } else {
            if self.closed.contains(&id_hash(&row.conversation_id)) {
                return emit(ReadItem::BadRow(
                    Problem::at(
                        format!("{}:{line}", self.path),
                        format!(
                            "this row comes after its conversation was closed (more than {} other conversations in between) and was skipped: group the file by conversation id (e.g. sort it) or raise --window",
                            self.options.window
                        ),
                    )
                    .in_conversation(&row.conversation_id),
                ));
            }
            let call_id = ids::text_call_id(&self.source, &row.conversation_id);
            let conversation = Conversation {
                call_id,
                path: self.path.clone(),
                external_id: row.conversation_id.clone(),
                agent_id: row
                    .agent_id
                    .clone()
                    .unwrap_or_else(|| self.options.agent.clone()),
                channel: row.channel,
                language: self.options.language.clone().or(row.language.clone()),
                started_at: row.at_ms,
                turns: vec![Turn {
                    speaker: row.speaker,
                    text: row.text,
                    start: 0.0,
                    end: None,
                    prosody: None,
                    line,
                }],
            };
            self.recency.insert(touch, row.conversation_id.clone());
            self.open.insert(
                row.conversation_id,
                Open {
                    conversation,
                    at_ms: vec![row.at_ms],
                    touched: touch,
                    over: 0,
                },
            );
            self.buffered += 1;
        }
        while self.open.len() > self.options.window.max(1) || self.buffered > MAX_BUFFERED_TURNS {
            let Some((_, oldest)) = self.recency.pop_first() else {
                break;
            };
            if !self.close(&oldest, emit) {
                return false;
            }
        }
        true
    }

    fn close(&mut self, id: &str, emit: &mut dyn FnMut(ReadItem) -> bool) -> bool {
        let Some(open) = self.open.remove(id) else {
            return true;
        };
        let hash = id_hash(id);
        if self.closed.insert(hash) {
            self.closed_order.push_back(hash);
            if self.closed_order.len() > REMEMBERED_CLOSED {
                if let Some(oldest) = self.closed_order.pop_front() {
                    self.closed.remove(&oldest);
                }
            }
        }
        self.buffered -= open.conversation.turns.len();
        let Open {
            mut conversation,
            at_ms,
            over,
            ..
        } = open;
        if over > 0 {
            let problem = Problem::at(
                conversation.location(),
                format!(
                    "{over} row(s) past the {} turns one conversation may have were skipped",
                    self.options.max_turns
                ),
            )
            .in_conversation(id);
            if !emit(ReadItem::BadRow(problem)) {
                return false;
            }
        }
        // Messages in time order (a stable sort keeps same-time rows in file order).
        let start = at_ms.iter().copied().min().unwrap_or(0);
        let mut timed: Vec<(UnixMs, Turn)> = at_ms.into_iter().zip(conversation.turns).collect();
        timed.sort_by_key(|(at, _)| *at);
        conversation.turns = timed
            .into_iter()
            .map(|(at, mut turn)| {
                turn.start = (at - start) as f64 / 1000.0;
                turn
            })
            .collect();
        conversation.started_at = start;
        emit(ReadItem::Conversation(conversation))
    }

    /// Closes every conversation still open (the end of the file).
    pub fn finish(mut self, emit: &mut dyn FnMut(ReadItem) -> bool) {
        while let Some((_, oldest)) = self.recency.pop_first() {
            if !self.close(&oldest, emit) {
                return;
            }
        }
    }
}

// -- JSONL -------------------------------------------------------------------------------------

/// A JSON string or number (ids and timestamps come as either).
#[derive(Debug)]
enum Scalar {
    Text(String),
    Number(serde_json::Number),
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_string()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar::Text(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v.into()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v.into()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Scalar, E> {
                serde_json::Number::from_f64(v)
                    .map(Scalar::Number)
                    .ok_or_else(|| E::custom("not a finite number"))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Text(s) => s.clone(),
            Scalar::Number(n) => n.to_string(),
        }
    }

    fn timestamp(&self) -> Result<UnixMs, String> {
        match self {
            Scalar::Text(s) => parse_timestamp(s),
            Scalar::Number(n) => n
                .as_f64()
                .and_then(from_number)
                .ok_or_else(|| format!("`{n}` is not a usable Unix time")),
        }
    }
}

#[derive(Debug, Deserialize)]
struct JsonRow {
    #[serde(alias = "conversation", alias = "session_id", alias = "chat_id")]
    conversation_id: Scalar,
    #[serde(alias = "time", alias = "ts", alias = "created_at")]
    timestamp: Scalar,
    #[serde(alias = "speaker", alias = "sender")]
    role: String,
    #[serde(alias = "content", alias = "message")]
    text: String,
    #[serde(default, alias = "agent")]
    agent_id: Option<Scalar>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default, alias = "lang")]
    language: Option<String>,
}

/// Whether a JSONL line looks like a chat-log row (rather than a transcript line).
pub fn is_chat_line(line: &str) -> bool {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(line) else {
        return false;
    };
    ["conversation_id", "conversation", "session_id", "chat_id"]
        .iter()
        .any(|k| map.contains_key(*k))
}

/// Reads a JSONL chat log.
pub fn read_jsonl(
    file: &InputFile,
    mut reader: Lines,
    options: &ReadOptions,
    emit: &mut dyn FnMut(ReadItem) -> bool,
) -> std::io::Result<()> {
    let shown = file.shown();
    let mut grouper = Grouper::new(file, options);
    while let Some((number, line)) = reader.next_line()? {
        let parsed = match line {
            Line::Text(text) if text.trim().is_empty() => continue,
            Line::Text(text) => match serde_json::from_str::<JsonRow>(text) {
                Ok(row) => make_row(
                    &row.conversation_id.text(),
                    row.timestamp.timestamp(),
                    &row.role,
                    row.text,
                    row.agent_id.as_ref().map(Scalar::text).as_deref(),
                    row.channel.as_deref(),
                    row.language.as_deref(),
                ),
                Err(e) => Err(format!("not a chat row: {e}")),
            },
            Line::NotUtf8(at) => Err(format!("not valid UTF-8 (at byte {at} of the line)")),
            Line::TooLong(n) => Err(format!("the line is {n} bytes long, over the 1 MiB limit")),
        };
        let go_on = match parsed {
            Ok(Parsed::Row(row)) => grouper.row(row, number, emit),
            Ok(Parsed::Skip) => true,
            Err(message) => emit(ReadItem::BadRow(Problem::at(
                format!("{shown}:{number}"),
                message,
            ))),
        };
        if !go_on
            || (number.is_multiple_of(4096) && !emit(ReadItem::Progress(reader.take_progress())))
        {
            return Ok(());
        }
    }
    emit(ReadItem::Progress(reader.take_progress()));
    grouper.finish(emit);
    Ok(())
}

// -- CSV ---------------------------------------------------------------------------------------

/// Splits one complete CSV record (RFC 4180) into fields.
pub fn split_record(record: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut at_start = true;
    let mut chars = record.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            ',' => {
                fields.push(std::mem::take(&mut field));
                at_start = true;
                continue;
            }
            '"' if at_start => quoted = true,
            '"' => {
                return Err(format!(
                    "a quote inside an unquoted field (field {}): quote the whole field and double the quotes inside",
                    fields.len() + 1
                ))
            }
            _ => field.push(c),
        }
        at_start = false;
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    fields.push(field);
    Ok(fields)
}

/// Where each column is in a CSV row.
struct Columns {
    count: usize,
    conversation_id: usize,
    timestamp: usize,
    role: usize,
    text: usize,
    agent_id: Option<usize>,
    channel: Option<usize>,
    language: Option<usize>,
}

fn columns(header: &[String]) -> Result<Columns, String> {
    let names: Vec<String> = header
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    let find = |wanted: &[&str]| names.iter().position(|n| wanted.contains(&n.as_str()));
    let mut missing = Vec::new();
    let mut need = |name: &'static str, wanted: &[&str]| {
        let found = find(wanted);
        if found.is_none() {
            missing.push(name);
        }
        found.unwrap_or(0)
    };
    let conversation_id = need(
        "conversation_id",
        &["conversation_id", "conversation", "session_id", "chat_id"],
    );
    let timestamp = need("timestamp", &["timestamp", "time", "ts", "created_at"]);
    let role = need("role", &["role", "speaker", "sender"]);
    let text = need("text", &["text", "content", "message"]);
    if !missing.is_empty() {
        return Err(format!(
            "the header lacks the column(s) {} (it has: {}); a chat CSV needs conversation_id, timestamp, role and text (agent_id, channel and language are optional)",
            missing.join(", "),
            names.join(", ")
        ));
    }
    Ok(Columns {
        count: names.len(),
        conversation_id,
        timestamp,
        role,
        text,
        agent_id: find(&["agent_id", "agent"]),
        channel: find(&["channel"]),
        language: find(&["language", "lang"]),
    })
}

/// Reassembles CSV records from lines: a record spans lines while a quoted field is open.
struct Records {
    lines: Lines,
    /// Lines read ahead and given back (after an unterminated quote).
    pending: VecDeque<(u64, Result<String, String>)>,
}

enum Record {
    /// A complete record and the line it starts on.
    Text(u64, String),
    /// A line or record that cannot be used.
    Bad(u64, String),
}

impl Records {
    fn next_line(&mut self) -> std::io::Result<Option<(u64, Result<String, String>)>> {
        if let Some(line) = self.pending.pop_front() {
            return Ok(Some(line));
        }
        let (number, line) = match self.lines.next_line()? {
            None => return Ok(None),
            Some((n, Line::Text(t))) => (n, Ok(t.to_string())),
            Some((n, Line::NotUtf8(at))) => (
                n,
                Err(format!("not valid UTF-8 (at byte {at} of the line)")),
            ),
            Some((n, Line::TooLong(len))) => (
                n,
                Err(format!(
                    "the line is {len} bytes long, over the 1 MiB limit"
                )),
            ),
        };
        Ok(Some((number, line)))
    }

    fn next(&mut self) -> std::io::Result<Option<Record>> {
        let Some((first, line)) = self.next_line()? else {
            return Ok(None);
        };
        let text = match line {
            Ok(t) => t,
            Err(message) => return Ok(Some(Record::Bad(first, message))),
        };
        if quotes(&text).is_multiple_of(2) {
            return Ok(Some(Record::Text(first, text)));
        }
        // A quoted field goes on over the next lines.
        let mut taken: Vec<(u64, String)> = vec![(first, text)];
        loop {
            if taken.len() >= MAX_RECORD_LINES {
                break;
            }
            match self.next_line()? {
                None => break,
                Some((n, Err(message))) => {
                    self.pending.push_front((n, Err(message)));
                    break;
                }
                Some((n, Ok(t))) => {
                    taken.push((n, t));
                    let total: usize = taken.iter().map(|(_, t)| quotes(t)).sum();
                    if total.is_multiple_of(2) {
                        let record = taken
                            .into_iter()
                            .map(|(_, t)| t)
                            .collect::<Vec<_>>()
                            .join("\n");
                        return Ok(Some(Record::Text(first, record)));
                    }
                }
            }
        }
        // Never closed: the first line is broken; read the others again on their own.
        for line in taken.drain(1..).rev() {
            self.pending.push_front((line.0, Ok(line.1)));
        }
        Ok(Some(Record::Bad(
            first,
            "a quoted field opened on this line is never closed (broken quoting); the row was skipped"
                .into(),
        )))
    }
}

fn quotes(text: &str) -> usize {
    text.bytes().filter(|b| *b == b'"').count()
}

/// Reads a CSV chat log.
pub fn read_csv(
    file: &InputFile,
    lines: Lines,
    options: &ReadOptions,
    emit: &mut dyn FnMut(ReadItem) -> bool,
) -> std::io::Result<()> {
    let shown = file.shown();
    let mut records = Records {
        lines,
        pending: VecDeque::new(),
    };
    let columns = loop {
        match records.next()? {
            None => {
                emit(ReadItem::Failed(Problem::at(
                    shown,
                    "the file is empty: a chat CSV starts with a header row",
                )));
                return Ok(());
            }
            Some(Record::Text(_, t)) if t.trim().is_empty() => continue,
            Some(Record::Text(n, t)) => {
                match split_record(&t).and_then(|header| columns(&header)) {
                    Ok(c) => break c,
                    Err(message) => {
                        emit(ReadItem::Failed(Problem::at(
                            format!("{shown}:{n}"),
                            message,
                        )));
                        return Ok(());
                    }
                }
            }
            Some(Record::Bad(n, message)) => {
                emit(ReadItem::Failed(Problem::at(
                    format!("{shown}:{n}"),
                    format!("cannot read the header: {message}"),
                )));
                return Ok(());
            }
        }
    };
    let mut grouper = Grouper::new(file, options);
    let mut count = 0u64;
    while let Some(record) = records.next()? {
        let (number, parsed) = match record {
            Record::Bad(n, message) => (n, Err(message)),
            Record::Text(_, t) if t.trim().is_empty() => continue,
            Record::Text(n, t) => (n, parse_csv_row(&t, &columns)),
        };
        let go_on = match parsed {
            Ok(Parsed::Row(row)) => grouper.row(row, number, emit),
            Ok(Parsed::Skip) => true,
            Err(message) => emit(ReadItem::BadRow(Problem::at(
                format!("{shown}:{number}"),
                message,
            ))),
        };
        count += 1;
        if !go_on
            || (count.is_multiple_of(4096)
                && !emit(ReadItem::Progress(records.lines.take_progress())))
        {
            return Ok(());
        }
    }
    emit(ReadItem::Progress(records.lines.take_progress()));
    grouper.finish(emit);
    Ok(())
}

fn parse_csv_row(record: &str, c: &Columns) -> Result<Parsed, String> {
    let fields = split_record(record)?;
    if fields.len() != c.count {
        return Err(format!(
            "the row has {} field(s) but the header has {} (an unquoted comma in the text, or a missing field?)",
            fields.len(),
            c.count
        ));
    }
    let get = |i: Option<usize>| i.map(|i| fields[i].as_str());
    make_row(
        &fields[c.conversation_id],
        parse_timestamp(&fields[c.timestamp]),
        &fields[c.role],
        fields[c.text].clone(),
        get(c.agent_id),
        get(c.channel),
        get(c.language),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_with_quotes_commas_and_line_breaks() {
        assert_eq!(
            split_record(
                r#"a,"b, c","say ""hi""",,"x
y""#
            ),
            Ok(vec![
                "a".to_string(),
                "b, c".into(),
                "say \"hi\"".into(),
                "".into(),
                "x\ny".into()
            ])
        );
        assert!(split_record(r#"a,b"c"#).is_err());
        assert!(split_record(r#"a,"b"#).is_err());
    }
}
