//! What a `qc` run did: the counts, the hits, the problems — printed as a table or as JSON
//! (`--json`), and the progress bar while it runs.

use super::Problem;
use assist_protocol::Summary;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Problems kept in the summary (all are printed as they happen; the count is exact).
pub const MAX_LISTED_PROBLEMS: usize = 1000;

/// The end-of-run summary (`--json` prints exactly this).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct QcSummary {
    /// Conversations inspected (and stored, unless `--no-store`).
    pub inspected: u64,
    /// Conversations already in the store, not inspected again (rerun without `--force`).
    pub skipped: u64,
    /// Files and conversations that could not be inspected at all.
    pub failed: u64,
    /// Rows (lines, messages) that could not be used; their conversations went on without them.
    pub bad_rows: u64,
    /// Input files read.
    pub files: u64,
    /// Turns inspected.
    pub utterances: u64,
    /// Seconds of audio transcribed.
    pub audio_seconds: f64,
    /// Inspected conversations with at least one hit.
    pub conversations_with_hits: u64,
    /// Inspected conversations that did not pass (a fatal hit, or a score under 60).
    pub conversations_failing: u64,
    pub hits_by_category: BTreeMap<String, u64>,
    pub hits_by_rule: BTreeMap<String, u64>,
    /// The pack the conversations were inspected with (`name version`).
    pub pack: String,
    /// Whether results went to the store.
    pub stored: bool,
    pub elapsed_seconds: f64,
    pub conversations_per_second: f64,
    /// Every problem, up to [`MAX_LISTED_PROBLEMS`].
    pub problems: Vec<Problem>,
    /// How many problems there were in all.
    pub problems_total: u64,
    /// The process's peak resident memory (VmHWM), KiB, where the OS tells it (Linux).
    pub peak_rss_kib: Option<u64>,
    /// The run was stopped before the end (a batch job stopped from the console): what it
    /// inspected is stored, and a rerun goes on from there.
    pub stopped: bool,
}

/// VmHWM of /proc/self/status, KiB.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

impl QcSummary {
    /// Counts one inspected conversation by its summary.
    pub fn count_inspected(&mut self, summary: &Summary) {
        self.inspected += 1;
        self.utterances += u64::from(summary.utterances);
        if !summary.hits.is_empty() {
            self.conversations_with_hits += 1;
        }
        if !summary.passed {
            self.conversations_failing += 1;
        }
        for hit in &summary.hits {
            let n = u64::from(hit.count);
            match self.hits_by_category.get_mut(&hit.category) {
                Some(count) => *count += n,
                None => {
                    self.hits_by_category.insert(hit.category.clone(), n);
                }
            }
            match self.hits_by_rule.get_mut(&hit.rule) {
                Some(count) => *count += n,
                None => {
                    self.hits_by_rule.insert(hit.rule.clone(), n);
                }
            }
        }
    }

    pub fn add_problem(&mut self, problem: Problem) {
        self.problems_total += 1;
        if self.problems.len() < MAX_LISTED_PROBLEMS {
            self.problems.push(problem);
        }
    }

    /// Whether anything went wrong (failed items or bad rows).
    pub fn has_problems(&self) -> bool {
        self.failed > 0 || self.bad_rows > 0
    }

    /// The human-readable summary.
    pub fn write_table(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(out, "QC summary ({})", self.pack)?;
        writeln!(
            out,
            "  inspected   {:>9}  ({} utterances{}; {:.1}s, {:.0} conversations/s){}",
            self.inspected,
            self.utterances,
            if self.audio_seconds > 0.0 {
                format!(", {:.1}s of audio", self.audio_seconds)
            } else {
                String::new()
            },
            self.elapsed_seconds,
            self.conversations_per_second,
            if self.stored {
                ""
            } else {
                "  [not stored: --no-store]"
            }
        )?;
        writeln!(
            out,
            "  skipped     {:>9}  (already inspected; --force to redo)",
            self.skipped
        )?;
        writeln!(out, "  failed      {:>9}", self.failed)?;
        writeln!(out, "  bad rows    {:>9}", self.bad_rows)?;
        writeln!(
            out,
            "  with hits   {:>9}  ({} not passing)",
            self.conversations_with_hits, self.conversations_failing
        )?;
        if !self.hits_by_category.is_empty() {
            writeln!(out, "  hits by category:")?;
            let width = self
                .hits_by_category
                .keys()
                .map(|k| k.len())
                .max()
                .unwrap_or(0);
            for (category, count) in &self.hits_by_category {
                writeln!(out, "    {category:<width$}  {count:>9}")?;
            }
        }
        if self.problems_total > 0 {
            writeln!(
                out,
                "  {} problem(s), listed above as they happened{}",
                self.problems_total,
                if self.problems_total as usize > MAX_LISTED_PROBLEMS {
                    format!(" (the first {MAX_LISTED_PROBLEMS} are in --json)")
                } else {
                    String::new()
                }
            )?;
        }
        Ok(())
    }
}

/// A run's progress as someone else watches it (the server's batch QC jobs): input bytes read
/// of all, and the summary so far. Updated a few times a second and at the end.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct QcWatch {
    pub bytes_total: u64,
    pub bytes_read: u64,
    pub summary: QcSummary,
}

/// The progress bar: bytes of input read, with rate and ETA, and the running counts.
pub struct Progress {
    bar: ProgressBar,
    started: Instant,
    last_message: Instant,
    watch: Option<Arc<Mutex<QcWatch>>>,
}

impl Progress {
    /// A bar over `total_bytes`; drawn on stderr when it is a terminal and `visible`.
    pub fn new(total_bytes: u64, visible: bool, watch: Option<Arc<Mutex<QcWatch>>>) -> Progress {
        let target = if visible {
            ProgressDrawTarget::stderr_with_hz(5)
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(total_bytes), target);
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        let now = Instant::now();
        if let Some(watch) = &watch {
            lock(watch).bytes_total = total_bytes;
        }
        Progress {
            bar,
            started: now,
            last_message: now,
            watch,
        }
    }

    pub fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    /// Updates the counts shown beside the bar (at most a few times a second).
    pub fn counts(&mut self, summary: &QcSummary) {
        if self.last_message.elapsed() < Duration::from_millis(200) {
            return;
        }
        self.last_message = Instant::now();
        self.update_watch(summary);
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        self.bar.set_message(format!(
            "{} inspected ({:.0}/s), {} skipped, {} failed",
            summary.inspected,
            summary.inspected as f64 / secs,
            summary.skipped,
            summary.failed
        ));
    }

    /// Prints a line above the bar.
    pub fn println(&self, line: &str) {
        self.bar.suspend(|| eprintln!("{line}"));
    }

    /// Gives the watcher the counts so far.
    pub fn update_watch(&self, summary: &QcSummary) {
        if let Some(watch) = &self.watch {
            let mut watch = lock(watch);
            watch.bytes_read = self.bar.position();
            watch.summary = summary.clone();
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn lock(watch: &Mutex<QcWatch>) -> std::sync::MutexGuard<'_, QcWatch> {
    watch
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
