//! `qc --rescore`: stored conversations through a candidate pack, compared rule by rule with
//! the pack they are judged by today — before the candidate is published. Nothing is written.
//!
//! Both sides are computed the same way, from the stored transcripts (so the comparison shows
//! the effect of the pack edit alone, not differences between live and batch): the *baseline*
//! (the published pack, or `--baseline DIR`) and the *candidate* (`--pack DIR`). Per rule: hits
//! before and after, hits added and removed, conversations with a hit before and after. Trainer
//! verdicts on the stored alerts say which removed hits were known false positives (overturned)
//! and which were true ones (confirmed), and how many known false positives the candidate
//! still raises. A rule new in the candidate has no verdicts yet: its added hits, with examples,
//! are what a lead reviews for false positives.

use super::inspect::{inspect, InspectOptions};
use super::{Conversation, Turn};
use assist_engine::{Engine, Knowledge};
use assist_protocol::{Event, Severity, Speaker};
use assist_store::{CallFilter, CallRecord, CallStore, Page, VerdictKind};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};

/// A pack to compare.
#[derive(Clone)]
pub struct Side {
    pub engine: Arc<Engine>,
    pub knowledge: Arc<dyn Knowledge>,
    pub label: String,
}

pub struct RescoreConfig {
    pub store: Arc<dyn CallStore>,
    pub filter: CallFilter,
    /// The most conversations to read (newest first).
    pub limit: Option<usize>,
    pub baseline: Side,
    pub candidate: Side,
    pub jobs: usize,
}

/// One hit given as an example of what a rule now raises.
#[derive(Debug, Clone, Serialize)]
pub struct Example {
    pub call_id: String,
    pub t: f64,
    pub speaker: Speaker,
    pub text: String,
}

/// How one rule's hits change.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RuleChange {
    pub rule: String,
    pub category: String,
    pub severity: Option<Severity>,
    /// In the baseline / candidate pack (`false`: the rule is new / was removed).
    pub in_baseline: bool,
    pub in_candidate: bool,
    pub hits_before: u64,
    pub hits_after: u64,
    pub added: u64,
    pub removed: u64,
    pub calls_before: u64,
    pub calls_after: u64,
    /// Conversations whose hits of this rule changed.
    pub calls_changed: u64,
    /// Trainer verdicts on the stored alerts of this rule.
    pub confirmed: u64,
    pub overturned: u64,
    /// Overturned (false-positive) alerts the candidate no longer raises.
    pub overturned_removed: u64,
    /// Confirmed alerts the candidate no longer raises.
    pub confirmed_removed: u64,
    /// Overturned alerts the candidate still raises: known false positives.
    pub overturned_kept: u64,
    /// Up to three of the added hits.
    pub examples_added: Vec<Example>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RescoreReport {
    pub conversations: u64,
    pub baseline: String,
    pub candidate: String,
    /// Only rules whose hits change, or that exist in one pack only, unless every rule asked.
    pub rules: Vec<RuleChange>,
    pub avg_score_before: Option<f64>,
    pub avg_score_after: Option<f64>,
    pub passing_before: u64,
    pub passing_after: u64,
    /// Conversations whose score changed.
    pub scores_changed: u64,
    pub unchanged_rules: u64,
}

type HitKey = (String, i64, Speaker);

fn alerts(events: &[Event]) -> Vec<(HitKey, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Alert(a) => Some((
                (a.rule.clone(), (a.t * 10.0).round() as i64, a.speaker),
                a.text.clone(),
            )),
            _ => None,
        })
        .collect()
}

/// One conversation compared.
struct Compared {
    call_id: String,
    before: Vec<(HitKey, String)>,
    after: Vec<(HitKey, String)>,
    score_before: u32,
    score_after: u32,
    passed_before: bool,
    passed_after: bool,
    /// Stored verdicts: (rule, t, speaker) -> kind.
    verdicts: Vec<(HitKey, VerdictKind)>,
}

fn conversation_of(record: &CallRecord) -> Conversation {
    Conversation {
        call_id: record.meta.call_id.clone(),
        path: record.meta.call_id.clone(),
        external_id: record.meta.call_id.clone(),
        agent_id: record.meta.agent_id.clone(),
        channel: record.meta.channel,
        language: Some(record.meta.language.clone()),
        started_at: record.meta.started_at,
        turns: record
            .lines
            .iter()
            .map(|l| Turn {
                speaker: l.speaker,
                text: l.text.clone(),
                start: l.start,
                end: l.end,
                prosody: None,
                line: l.seq,
            })
            .collect(),
    }
}

fn compare(record: &CallRecord, baseline: &Side, candidate: &Side) -> Compared {
    let options = InspectOptions::default();
    let conversation = conversation_of(record);
    let before = inspect(
        &baseline.engine,
        baseline.knowledge.as_ref(),
        conversation.clone(),
        options,
    );
    let after = inspect(
        &candidate.engine,
        candidate.knowledge.as_ref(),
        conversation,
        options,
    );
    Compared {
        call_id: record.meta.call_id.clone(),
        before: alerts(&before.events),
        after: alerts(&after.events),
        score_before: before.summary.score,
        score_after: after.summary.score,
        passed_before: before.summary.passed,
        passed_after: after.summary.passed,
        verdicts: record
            .alerts
            .iter()
            .filter_map(|a| {
                let v = a.verdict.as_ref()?;
                Some((
                    (
                        a.alert.rule.clone(),
                        (a.alert.t * 10.0).round() as i64,
                        a.alert.speaker,
                    ),
                    v.kind,
                ))
            })
            .collect(),
    }
}

/// Compares the two packs over the stored conversations matching the filter.
pub fn rescore(config: &RescoreConfig) -> anyhow::Result<RescoreReport> {
    let jobs = config.jobs.max(1);
    let (id_tx, id_rx) = sync_channel::<String>(jobs * 4);
    let (out_tx, out_rx) = sync_channel::<anyhow::Result<Compared>>(jobs * 4);
    let id_rx = Arc::new(Mutex::new(id_rx));
    let mut threads = Vec::new();
    for _ in 0..jobs {
        let id_rx = Arc::clone(&id_rx);
        let out_tx = out_tx.clone();
        let store = Arc::clone(&config.store);
        let baseline = config.baseline.clone();
        let candidate = config.candidate.clone();
        threads.push(std::thread::spawn(move || loop {
            let next = match id_rx.lock() {
                Ok(rx) => rx.recv(),
                Err(_) => return,
            };
            let Ok(id) = next else { return };
            let result = match store.get_call(&id) {
                Ok(Some(record)) => Ok(compare(&record, &baseline, &candidate)),
                Ok(None) => continue,
                Err(e) => Err(anyhow::anyhow!("reading call {id}: {e}")),
            };
            if out_tx.send(result).is_err() {
                return;
            }
        }));
    }
    drop(out_tx);
    // Page through the calls on a thread of its own (newest first).
    let feeder = {
        let store = Arc::clone(&config.store);
        let filter = config.filter.clone();
        let limit = config.limit.unwrap_or(usize::MAX);
        std::thread::spawn(move || -> anyhow::Result<()> {
            let mut offset = 0;
            while offset < limit {
                let page = store.list_calls(
                    &filter,
                    Page {
                        offset,
                        limit: 500.min(limit - offset),
                    },
                )?;
                if page.rows.is_empty() {
                    break;
                }
                offset += page.rows.len();
                for row in page.rows {
                    if id_tx.send(row.call_id).is_err() {
                        return Ok(());
                    }
                }
            }
            Ok(())
        })
    };
    let mut report = RescoreReport {
        baseline: config.baseline.label.clone(),
        candidate: config.candidate.label.clone(),
        ..RescoreReport::default()
    };
    let mut rules: BTreeMap<String, RuleChange> = BTreeMap::new();
    for (side, engine) in [
        (true, &config.baseline.engine),
        (false, &config.candidate.engine),
    ] {
        for rule in &engine.rules.rules {
            let change = rules.entry(rule.id.clone()).or_insert_with(|| RuleChange {
                rule: rule.id.clone(),
                category: rule.category.clone(),
                severity: Some(rule.severity),
                ..RuleChange::default()
            });
            if side {
                change.in_baseline = true;
            } else {
                change.in_candidate = true;
                change.category = rule.category.clone();
                change.severity = Some(rule.severity);
            }
        }
    }
    let (mut sum_before, mut sum_after) = (0u64, 0u64);
    let mut first_error = None;
    for result in out_rx {
        let compared = match result {
            Ok(c) => c,
            Err(e) => {
                first_error.get_or_insert(e);
                continue;
            }
        };
        report.conversations += 1;
        sum_before += u64::from(compared.score_before);
        sum_after += u64::from(compared.score_after);
        report.passing_before += u64::from(compared.passed_before);
        report.passing_after += u64::from(compared.passed_after);
        report.scores_changed += u64::from(compared.score_before != compared.score_after);
        fold(&mut rules, &compared);
    }
    for t in threads {
        let _ = t.join();
    }
    match feeder.join() {
        Ok(result) => result?,
        Err(_) => anyhow::bail!("reading the store failed"),
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    if report.conversations > 0 {
        report.avg_score_before = Some(sum_before as f64 / report.conversations as f64);
        report.avg_score_after = Some(sum_after as f64 / report.conversations as f64);
    }
    for (_, change) in rules {
        let changed =
            change.added > 0 || change.removed > 0 || change.in_baseline != change.in_candidate;
        if changed {
            report.rules.push(change);
        } else {
            report.unchanged_rules += 1;
        }
    }
    Ok(report)
}

fn count(hits: &[(HitKey, String)]) -> HashMap<&HitKey, i64> {
    let mut m: HashMap<&HitKey, i64> = HashMap::new();
    for (k, _) in hits {
        *m.entry(k).or_default() += 1;
    }
    m
}

fn fold(rules: &mut BTreeMap<String, RuleChange>, c: &Compared) {
    let before = count(&c.before);
    let after = count(&c.after);
    let mut per_rule: BTreeMap<&str, (u64, u64, u64, u64)> = BTreeMap::new();
    for (k, n) in &before {
        per_rule.entry(k.0.as_str()).or_default().0 += *n as u64;
    }
    for (k, n) in &after {
        per_rule.entry(k.0.as_str()).or_default().1 += *n as u64;
    }
    let mut keys: Vec<&HitKey> = before.keys().chain(after.keys()).copied().collect();
    keys.sort_by(|a, b| (&a.0, a.1, a.2.as_str()).cmp(&(&b.0, b.1, b.2.as_str())));
    keys.dedup();
    for key in keys {
        let b = before.get(key).copied().unwrap_or(0);
        let a = after.get(key).copied().unwrap_or(0);
        let entry = per_rule.entry(key.0.as_str()).or_default();
        if a > b {
            entry.2 += (a - b) as u64;
        } else if b > a {
            entry.3 += (b - a) as u64;
        }
    }
    for (rule, (hb, ha, added, removed)) in per_rule {
        let Some(change) = rules.get_mut(rule) else {
            continue;
        };
        change.hits_before += hb;
        change.hits_after += ha;
        change.added += added;
        change.removed += removed;
        change.calls_before += u64::from(hb > 0);
        change.calls_after += u64::from(ha > 0);
        change.calls_changed += u64::from(added > 0 || removed > 0);
        if added > 0 && change.examples_added.len() < 3 {
            for (key, text) in &c.after {
                if key.0 == rule && !before.contains_key(key) && change.examples_added.len() < 3 {
                    change.examples_added.push(Example {
                        call_id: c.call_id.clone(),
                        t: key.1 as f64 / 10.0,
                        speaker: key.2,
                        text: text.clone(),
                    });
                }
            }
        }
    }
    for (key, kind) in &c.verdicts {
        let Some(change) = rules.get_mut(&key.0) else {
            continue;
        };
        let kept = after.contains_key(key);
        match kind {
            VerdictKind::Confirmed => {
                change.confirmed += 1;
                change.confirmed_removed += u64::from(!kept);
            }
            VerdictKind::Overturned => {
                change.overturned += 1;
                change.overturned_removed += u64::from(!kept);
                change.overturned_kept += u64::from(kept);
            }
        }
    }
}

impl RescoreReport {
    pub fn write_table(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(
            out,
            "Rescore of {} stored conversation(s): {} -> {} (nothing was written)",
            self.conversations, self.baseline, self.candidate
        )?;
        let fmt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        writeln!(
            out,
            "  average score {} -> {}; passing {} -> {}; {} conversation(s) changed score",
            fmt(self.avg_score_before),
            fmt(self.avg_score_after),
            self.passing_before,
            self.passing_after,
            self.scores_changed
        )?;
        if self.rules.is_empty() {
            writeln!(
                out,
                "  no rule's hits change ({} rules compared)",
                self.unchanged_rules
            )?;
            return Ok(());
        }
        let width = self
            .rules
            .iter()
            .map(|r| r.rule.len())
            .max()
            .unwrap_or(4)
            .max(4);
        writeln!(
            out,
            "  {:<width$}  {:>7} {:>7} {:>7} {:>7}  {:>13}  {:>9}  known false positives",
            "rule", "before", "after", "added", "removed", "calls", "verdicts"
        )?;
        for r in &self.rules {
            let status = match (r.in_baseline, r.in_candidate) {
                (false, true) => " (new)",
                (true, false) => " (removed)",
                _ => "",
            };
            writeln!(
                out,
                "  {:<width$}  {:>7} {:>7} {:>+7} {:>7}  {:>13}  {:>9}  {}{}",
                r.rule,
                r.hits_before,
                r.hits_after,
                r.added as i64,
                format!("-{}", r.removed),
                format!("{} -> {}", r.calls_before, r.calls_after),
                format!("{}✓ {}✗", r.confirmed, r.overturned),
                if r.overturned > 0 {
                    format!(
                        "{} fixed, {} still raised",
                        r.overturned_removed, r.overturned_kept
                    )
                } else {
                    "-".into()
                },
                status
            )?;
            for e in &r.examples_added {
                writeln!(
                    out,
                    "      + {} at {:.1}s ({}): {}",
                    e.call_id,
                    e.t,
                    e.speaker.as_str(),
                    e.text
                )?;
            }
        }
        writeln!(out, "  {} other rule(s) unchanged", self.unchanged_rules)?;
        Ok(())
    }
}
