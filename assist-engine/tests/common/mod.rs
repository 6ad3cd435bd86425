//! Shared helpers for the engine's integration tests: build a pack from inline TOML, drive a
//! call from a list of `(start, end, speaker, text)` lines, and read back what it raised.

use assist_engine::{CallSession, Engine, Event, NoKnowledge, PackFile, SessionError, Summary};
use assist_protocol::{Alert, Channel, Speaker, Utterance};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const AGENT: Speaker = Speaker::Agent;
pub const CUSTOMER: Speaker = Speaker::Customer;

/// One line of a call: start (s), end (s), who spoke, what they said.
pub type Line<'a> = (f64, f64, Speaker, &'a str);

/// A minimal `pack.toml` (default scoring and card limits).
pub const PACK_TOML: &str = r#"
name = "test"
version = "1"
languages = ["zh", "en"]
"#;

pub fn pack_file(path: &str, contents: &str) -> PackFile {
    PackFile {
        path: path.to_string(),
        contents: contents.to_string(),
    }
}

/// Compiles a pack of `pack.toml` plus the given `(path, contents)` files.
pub fn engine_with(pack_toml: &str, files: &[(&str, &str)]) -> Arc<Engine> {
    let mut all = vec![pack_file("pack.toml", pack_toml)];
    all.extend(
        files
            .iter()
            .map(|(path, contents)| pack_file(path, contents)),
    );
    match Engine::from_files(&all) {
        Ok(engine) => Arc::new(engine),
        Err(errors) => panic!("the test pack must compile:\n{errors}"),
    }
}

/// Compiles a pack of `pack.toml` plus one rules file.
pub fn engine(pack_toml: &str, rules: &str) -> Arc<Engine> {
    engine_with(pack_toml, &[("rules/test.toml", rules)])
}

pub fn utterance(seq: u64, line: Line<'_>, partial: bool) -> Utterance {
    let (start, end, speaker, text) = line;
    Utterance {
        seq,
        speaker,
        partial,
        text: text.to_string(),
        start,
        end: Some(end),
        prosody: None,
    }
}

/// A call in progress: numbers the finals 1, 2, 3... and keeps every event it produced.
pub struct Call {
    pub session: CallSession,
    next_seq: u64,
    pub events: Vec<Event>,
}

impl Call {
    pub fn start(engine: &Arc<Engine>, language: &str) -> Call {
        Call {
            session: engine.start_call(language),
            next_seq: 1,
            events: Vec::new(),
        }
    }

    /// [`Call::start`] on a channel (rules scoped to the other channel do not run).
    pub fn start_on(engine: &Arc<Engine>, language: &str, channel: Channel) -> Call {
        Call {
            session: engine.start_call(language).on_channel(channel),
            next_seq: 1,
            events: Vec::new(),
        }
    }

    /// The seq the next [`Call::say`] will use.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// A final utterance with the next seq; it must be accepted. Returns its events.
    /// (The seq advances in [`Call::try_utterance`].)
    pub fn say(&mut self, line: Line<'_>) -> Vec<Event> {
        let utt = utterance(self.next_seq, line, false);
        let events = self
            .try_utterance(&utt)
            .unwrap_or_else(|e| panic!("utterance {line:?} must be accepted: {e}"));
        events
    }

    /// Several final utterances in order; returns all their events.
    pub fn feed(&mut self, lines: &[Line<'_>]) -> Vec<Event> {
        lines.iter().flat_map(|line| self.say(*line)).collect()
    }

    /// A partial result for `seq`; it must be accepted. Returns its events.
    pub fn partial(&mut self, seq: u64, line: Line<'_>) -> Vec<Event> {
        let utt = utterance(seq, line, true);
        self.try_utterance(&utt)
            .unwrap_or_else(|e| panic!("partial {line:?} must be accepted: {e}"))
    }

    /// Any utterance, as the server would pass it on; events of an accepted one are kept.
    pub fn try_utterance(&mut self, utt: &Utterance) -> Result<Vec<Event>, SessionError> {
        let events = self.session.utterance(utt, &NoKnowledge)?;
        if !utt.partial && utt.seq >= self.next_seq {
            self.next_seq = utt.seq + 1;
        }
        self.events.extend(events.iter().cloned());
        Ok(events)
    }

    pub fn tick(&mut self, t: f64) -> Vec<Event> {
        let events = self.session.tick(t);
        self.events.extend(events.iter().cloned());
        events
    }

    /// Ends the call at `t` and returns the summary it emitted.
    pub fn end(&mut self, t: f64) -> Summary {
        let events = self.session.end(Some(t));
        self.events.extend(events.iter().cloned());
        summary_in(&events)
    }

    /// Every alert raised so far.
    pub fn alerts(&self) -> Vec<Alert> {
        alerts_in(&self.events)
    }

    /// The rule ids of every alert raised so far, in order.
    pub fn alert_ids(&self) -> Vec<String> {
        rule_ids(&self.events)
    }
}

/// Plays a whole call: the lines, then the end at `end_t`. Returns (every event, summary).
pub fn run_call(
    engine: &Arc<Engine>,
    language: &str,
    lines: &[Line<'_>],
    end_t: f64,
) -> (Vec<Event>, Summary) {
    let mut call = Call::start(engine, language);
    call.feed(lines);
    let summary = call.end(end_t);
    (call.events, summary)
}

pub fn alerts_in(events: &[Event]) -> Vec<Alert> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Alert(a) => Some(a.clone()),
            _ => None,
        })
        .collect()
}

pub fn rule_ids(events: &[Event]) -> Vec<String> {
    alerts_in(events).into_iter().map(|a| a.rule).collect()
}

/// The (last) summary among `events`; panics when there is none.
pub fn summary_in(events: &[Event]) -> Summary {
    events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::Summary(s) => Some(s.clone()),
            _ => None,
        })
        .expect("ending a call emits a summary")
}

/// How many times `rule` was counted in the summary (0 when absent).
pub fn hits(summary: &Summary, rule: &str) -> u32 {
    summary
        .hits
        .iter()
        .find(|h| h.rule == rule)
        .map_or(0, |h| h.count)
}

/// The default knowledge pack shipped with the product.
pub fn default_pack_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../knowledge")
}

/// Every file under `root`, with its path relative to `root` and `/` separators, as the server
/// loads a pack folder.
pub fn load_pack_dir(root: &Path) -> Vec<PackFile> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("a readable directory entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let relative = path
                .strip_prefix(root)
                .expect("a walked file lies under the pack root")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let contents = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            files.push(PackFile {
                path: relative,
                contents,
            });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}
