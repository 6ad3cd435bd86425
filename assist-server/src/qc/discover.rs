//! Which files a `qc` run reads: the paths given, folders walked recursively, each file's format
//! from its name (and, for `.jsonl`, its first line).

use super::Problem;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `.wav`: a recording.
    Wav,
    /// `.jsonl` / `.ndjson`: a chat log or a transcript (decided by its first line).
    Jsonl,
    /// `.csv`: a chat log.
    Csv,
}

/// One input file.
#[derive(Debug, Clone, PartialEq)]
pub struct InputFile {
    /// As given (or as found under a folder that was given).
    pub path: PathBuf,
    pub format: Format,
    pub bytes: u64,
}

impl InputFile {
    pub fn shown(&self) -> String {
        self.path.display().to_string()
    }
}

/// The format a file name says, if any.
pub fn format_of(path: &Path) -> Option<Format> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "wav" | "wave" => Some(Format::Wav),
        "jsonl" | "ndjson" => Some(Format::Jsonl),
        "csv" => Some(Format::Csv),
        _ => None,
    }
}

/// Files to read, in a stable order (sorted within each folder), each once. A path that does
/// not exist, or a file given by name in an unknown format, is a problem; files of other
/// formats inside folders are passed over silently (sidecar files, notes). Sidecar speaker
/// files (`*.speakers.jsonl`) are never inputs themselves.
pub fn discover(paths: &[PathBuf]) -> (Vec<InputFile>, Vec<Problem>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    for path in paths {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => {
                problems.push(Problem::at(
                    path.display().to_string(),
                    format!("cannot read: {e}"),
                ));
                continue;
            }
        };
        if meta.is_dir() {
            walk(path, &mut files, &mut problems, &mut seen);
        } else {
            match format_of(path) {
                Some(format) if !is_sidecar(path) => {
                    push(path.clone(), format, meta.len(), &mut files, &mut seen)
                }
                _ => problems.push(Problem::at(
                    path.display().to_string(),
                    "not a format qc reads: give .wav recordings, .jsonl chat logs or transcripts, or .csv chat logs",
                )),
            }
        }
    }
    (files, problems)
}

/// `NAME.speakers.jsonl`: the speaker segments of a mono recording, not a conversation.
pub fn is_sidecar(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.to_ascii_lowercase().ends_with(".speakers.jsonl"))
}

fn push(
    path: PathBuf,
    format: Format,
    bytes: u64,
    files: &mut Vec<InputFile>,
    seen: &mut HashSet<PathBuf>,
) {
    let key = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
    if seen.insert(key) {
        files.push(InputFile {
            path,
            format,
            bytes,
        });
    }
}

fn walk(
    dir: &Path,
    files: &mut Vec<InputFile>,
    problems: &mut Vec<Problem>,
    seen: &mut HashSet<PathBuf>,
) {
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            problems.push(Problem::at(
                dir.display().to_string(),
                format!("cannot read the folder: {e}"),
            ));
            return;
        }
    };
    entries.sort();
    for path in entries {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            walk(&path, files, problems, seen);
        } else if let Some(format) = format_of(&path) {
            if !is_sidecar(&path) {
                push(path, format, meta.len(), files, seen);
            }
        }
    }
}
