//! Final utterances the server has not acknowledged yet, oldest first.
//!
//! The newest few hundred stay in memory; when a long outage piles up more, the oldest spill to
//! a file (one JSON utterance per line, card/phone/ID numbers masked first, like everything the
//! product stores) so a disconnected client's memory stays flat. Past the total limit the
//! oldest are dropped and the caller is told which.
//!
//! The server takes one connection's frames in order and answers each utterance with an ack or
//! an error, so an answer for seq `s` settles everything up to `s`: [`Outbox::settled_through`].

use assist_protocol::Utterance;
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// How many utterances the outbox keeps, and how many of them in memory.
#[derive(Debug, Clone, Copy)]
pub struct OutboxLimits {
    pub in_memory: usize,
    pub total: usize,
}

impl Default for OutboxLimits {
    /// 500 in memory (~100 KB), 100,000 in all: more than a day of calls.
    fn default() -> Self {
        OutboxLimits {
            in_memory: 500,
            total: 100_000,
        }
    }
}

/// The unacknowledged utterances of one call.
#[derive(Debug)]
pub struct Outbox {
    limits: OutboxLimits,
    spill_path: PathBuf,
    /// Spilled utterances: the first `spill_skip` lines of the file are settled; the seqs of
    /// the rest (8 bytes each) stay in memory. All of them are older than those in memory.
    spill_skip: usize,
    spilled_seqs: VecDeque<u64>,
    memory: VecDeque<Utterance>,
}

/// The outbox's file could not be written or read: the utterances it holds in memory are
/// still kept.
#[derive(Debug, thiserror::Error)]
#[error("offline buffer file {path}: {reason}")]
pub struct SpillError {
    pub path: String,
    pub reason: String,
}

impl Outbox {
    /// An empty outbox spilling to `spill_path` when needed (the file is created on the first
    /// spill and removed once everything in it is settled).
    pub fn new(spill_path: PathBuf, limits: OutboxLimits) -> Self {
        Outbox {
            limits,
            spill_path,
            spill_skip: 0,
            spilled_seqs: VecDeque::new(),
            memory: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.spilled_seqs.len() + self.memory.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many are on disk now.
    pub fn spilled(&self) -> usize {
        self.spilled_seqs.len()
    }

    /// Adds the newest utterance. Returns the seqs dropped to stay within the total limit, and a
    /// spill error if the file could not take the overflow (it then stays in memory).
    pub fn push(&mut self, utterance: Utterance) -> (Vec<u64>, Option<SpillError>) {
        self.memory.push_back(utterance);
        let mut dropped = Vec::new();
        while self.len() > self.limits.total.max(1) {
            match self.drop_oldest() {
                Some(seq) => dropped.push(seq),
                None => break,
            }
        }
        let error = if self.memory.len() > self.limits.in_memory.max(1) {
            self.spill_half().err()
        } else {
            None
        };
        (dropped, error)
    }

    /// The server answered (ack or refusal) seq `seq`, and so everything before it.
    pub fn settled_through(&mut self, seq: u64) {
        while self.spilled_seqs.front().is_some_and(|s| *s <= seq) {
            self.spilled_seqs.pop_front();
            self.spill_skip += 1;
        }
        if self.spilled_seqs.is_empty() {
            self.clear_spill();
        }
        while self.memory.front().is_some_and(|u| u.seq <= seq) {
            self.memory.pop_front();
        }
    }

    /// Everything still waiting, oldest first (reads the file when some are spilled).
    pub fn pending(&self) -> Result<Vec<Utterance>, SpillError> {
        let mut all = if !self.spilled_seqs.is_empty() {
            self.read_spill()?
        } else {
            Vec::new()
        };
        all.extend(self.memory.iter().cloned());
        Ok(all)
    }

    /// Removes the file (the call is over or everything was delivered).
    pub fn clear_spill(&mut self) {
        if self.spill_skip + self.spilled_seqs.len() > 0 {
            let _ = std::fs::remove_file(&self.spill_path);
        }
        self.spill_skip = 0;
        self.spilled_seqs.clear();
    }

    fn drop_oldest(&mut self) -> Option<u64> {
        if let Some(seq) = self.spilled_seqs.pop_front() {
            self.spill_skip += 1;
            if self.spilled_seqs.is_empty() {
                self.clear_spill();
            }
            return Some(seq);
        }
        self.memory.pop_front().map(|u| u.seq)
    }

    /// Moves the older half of memory to the end of the file.
    fn spill_half(&mut self) -> Result<(), SpillError> {
        let moving = self.memory.len() / 2;
        let error = |reason: String| SpillError {
            path: self.spill_path.display().to_string(),
            reason,
        };
        if let Some(dir) = self.spill_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| error(e.to_string()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.spill_path)
            .map_err(|e| error(e.to_string()))?;
        let length_before = file.metadata().map_err(|e| error(e.to_string()))?.len();
        let mut out = BufWriter::new(file);
        let written = (|| -> std::io::Result<()> {
            for u in self.memory.iter().take(moving) {
                let mut stored = u.clone();
                stored.text = assist_engine::mask::mask_pii(&stored.text);
                serde_json::to_writer(&mut out, &stored)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
            out.get_ref().sync_data()
        })();
        if let Err(e) = written {
            // Take back a half-written batch so the file and the seqs in memory agree; the
            // utterances stay in memory.
            let _ = out.get_ref().set_len(length_before);
            return Err(error(e.to_string()));
        }
        for _ in 0..moving {
            if let Some(u) = self.memory.pop_front() {
                self.spilled_seqs.push_back(u.seq);
            }
        }
        Ok(())
    }

    fn read_spill(&self) -> Result<Vec<Utterance>, SpillError> {
        read_lines(&self.spill_path, self.spill_skip, self.spilled_seqs.len()).map_err(|reason| {
            SpillError {
                path: self.spill_path.display().to_string(),
                reason,
            }
        })
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        // Nothing spilled outlives the client: a crash leaves the file, a clean exit does not.
        self.clear_spill();
    }
}

fn read_lines(path: &Path, skip: usize, take: usize) -> Result<Vec<Utterance>, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    BufReader::new(file)
        .lines()
        .skip(skip)
        .take(take)
        .map(|line| {
            let line = line.map_err(|e| e.to_string())?;
            serde_json::from_str(&line).map_err(|e| format!("damaged line: {e}"))
        })
        .collect()
}
