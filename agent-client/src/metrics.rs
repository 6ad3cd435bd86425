//! What a run cost, for the benchmark (`agent-client --metrics FILE`): latencies from the
//! overlay, the recognizers' real-time factor and endpoint delay, memory and CPU from /proc.

use crate::pipeline::SpeakerStats;
use crate::ui::latency::LatencyTracker;
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

/// CPU time and memory of this process at one moment (Linux /proc; None elsewhere).
#[derive(Debug, Clone, Copy)]
pub struct ProcessSample {
    pub at: Instant,
    /// User + system CPU seconds so far.
    pub cpu_seconds: f64,
    pub rss_mb: f64,
    /// The highest resident memory so far.
    pub peak_rss_mb: f64,
}

impl ProcessSample {
    pub fn now() -> Option<ProcessSample> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name (which may hold spaces) are split from the last ')'.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let kb = |key: &str| -> Option<f64> {
            let line = status.lines().find(|l| l.starts_with(key))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        };
        Some(ProcessSample {
            at: Instant::now(),
            // USER_HZ is 100 on every Linux this runs on.
            cpu_seconds: ticks / 100.0,
            rss_mb: kb("VmRSS:")? / 1024.0,
            peak_rss_mb: kb("VmHWM:")? / 1024.0,
        })
    }

    /// Cores used on average from `earlier` to `self`.
    pub fn cores_since(&self, earlier: &ProcessSample) -> f64 {
        let wall = self.at.duration_since(earlier.at).as_secs_f64();
        if wall > 0.0 {
            (self.cpu_seconds - earlier.cpu_seconds) / wall
        } else {
            0.0
        }
    }
}

/// The figures of one run, written as JSON.
#[derive(Debug, Default, Serialize)]
pub struct RunMetrics {
    /// Before the speech model was loaded.
    pub rss_start_mb: Option<f64>,
    /// Right after the model and the recognizers were ready.
    pub rss_after_model_mb: Option<f64>,
    pub rss_peak_mb: Option<f64>,
    /// Peak resident memory less what loading the model added.
    pub rss_beyond_model_mb: Option<f64>,
    /// From the model being ready to the call's summary.
    pub call_cpu_cores: Option<f64>,
    pub call_seconds: Option<f64>,
    /// After the call, with the window up and nothing happening.
    pub idle_cpu_cores: Option<f64>,
    pub idle_seconds: Option<f64>,
    pub asr: Vec<SpeakerStats>,
    pub final_to_card_drawn_ms: Vec<f64>,
    pub final_to_card_received_ms: Vec<f64>,
    pub partial_to_alert_drawn_ms: Vec<f64>,
    #[serde(skip)]
    pub start: Option<ProcessSample>,
    #[serde(skip)]
    pub model_ready: Option<ProcessSample>,
    #[serde(skip)]
    pub call_over: Option<ProcessSample>,
    /// Where the idle stretch starts: a moment after the call, once its last repaints and the
    /// recognizers' teardown are done.
    #[serde(skip)]
    pub idle_from: Option<ProcessSample>,
}

impl RunMetrics {
    pub fn started() -> Self {
        RunMetrics {
            start: ProcessSample::now(),
            ..RunMetrics::default()
        }
    }

    pub fn model_ready(&mut self) {
        self.model_ready = ProcessSample::now();
    }

    /// The summary arrived.
    pub fn call_over(&mut self) {
        let now = ProcessSample::now();
        if let (Some(now), Some(from)) = (now, self.model_ready.or(self.start)) {
            self.call_cpu_cores = Some(now.cores_since(&from));
            self.call_seconds = Some(now.at.duration_since(from.at).as_secs_f64());
        }
        self.call_over = now;
    }

    /// The call's aftermath is over; the idle stretch starts.
    pub fn idle_from_now(&mut self) {
        self.idle_from = ProcessSample::now();
    }

    /// The idle stretch after the call ended.
    pub fn idle_over(&mut self) {
        if let (Some(now), Some(from)) = (ProcessSample::now(), self.idle_from.or(self.call_over)) {
            self.idle_cpu_cores = Some(now.cores_since(&from));
            self.idle_seconds = Some(now.at.duration_since(from.at).as_secs_f64());
        }
    }

    pub fn take_latency(&mut self, latency: &LatencyTracker) {
        self.final_to_card_drawn_ms = latency.final_to_card_drawn_ms.clone();
        self.final_to_card_received_ms = latency.final_to_card_received_ms.clone();
        self.partial_to_alert_drawn_ms = latency.partial_to_alert_drawn_ms.clone();
    }

    /// Fills in memory and writes the JSON file.
    pub fn write(&mut self, path: &Path) -> std::io::Result<()> {
        let now = ProcessSample::now();
        self.rss_start_mb = self.start.map(|s| s.rss_mb);
        self.rss_after_model_mb = self.model_ready.map(|s| s.rss_mb);
        self.rss_peak_mb = now.map(|s| s.peak_rss_mb);
        self.rss_beyond_model_mb = match (self.rss_peak_mb, self.start, self.model_ready) {
            (Some(peak), Some(start), Some(ready)) => Some(peak - (ready.rss_mb - start.rss_mb)),
            (Some(peak), _, None) => Some(peak),
            _ => None,
        };
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text)
    }
}
