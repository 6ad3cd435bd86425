//! Reports over call rows, and their CSV rendering. Pure functions over [`CallRow`]s, so any
//! store implementation can use them.

use crate::query::{
    precision, Adoption, CallRow, GroupBy, Report, ReportGroup, ReportQuery, RulePrecision,
    ScoreStats,
};
use assist_protocol::Channel;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

pub(crate) const MS_PER_DAY: i64 = 86_400_000;

/// Computes a report over rows already filtered by the query's filter (the query's own filter
/// is not applied again). The reference implementation: [`crate::SledStore`] computes the same
/// report from its interned row cache; another store can use this over rows it loaded.
pub fn build_report<'a>(query: &ReportQuery, rows: impl Iterator<Item = &'a CallRow>) -> Report {
    let mut groups: HashMap<GroupKey<'a>, Accumulator<'a>> = HashMap::new();
    let mut totals = Accumulator::default();
    let mut rules: BTreeMap<&'a str, (u64, u64, u64)> = BTreeMap::new();
    for row in rows {
        for_each_group_key(query, row, |key| groups.entry(key).or_default().add(row));
        totals.add(row);
        for (rule, count) in &row.rule_hits {
            rules.entry(rule.as_str()).or_default().0 += u64::from(*count);
        }
        for (rule, (confirmed, overturned)) in &row.verdicts {
            let entry = rules.entry(rule.as_str()).or_default();
            entry.1 += u64::from(*confirmed);
            entry.2 += u64::from(*overturned);
        }
    }
    Report {
        group_by: query.group_by,
        groups: {
            let mut groups: Vec<ReportGroup> = groups
                .into_iter()
                .map(|(key, acc)| acc.finish(key.render(), query.top))
                .collect();
            groups.sort_by(|a, b| a.key.cmp(&b.key));
            groups
        },
        totals: totals.finish("total".to_string(), query.top),
        rule_precision: rules
            .into_iter()
            .map(|(rule, (hits, confirmed, overturned))| RulePrecision {
                rule: rule.to_string(),
                hits,
                confirmed,
                overturned,
                precision: precision(confirmed, overturned),
            })
            .collect(),
    }
}

/// Score figures over rows (an agent's calls in a time range).
pub(crate) fn score_stats<'a>(rows: impl Iterator<Item = &'a CallRow>) -> ScoreStats {
    let mut stats = ScoreStats::default();
    let mut sum = 0u64;
    for row in rows {
        stats.calls += 1;
        if let Some(score) = row.score() {
            stats.scored_calls += 1;
            sum += u64::from(score);
        }
        for (category, count) in &row.hits {
            *stats.hits_by_category.entry(category.clone()).or_default() += u64::from(*count);
        }
    }
    stats.avg_score = (stats.scored_calls > 0).then(|| sum as f64 / stats.scored_calls as f64);
    stats
}

/// A report group's key, borrowed from the row (rendered once per group, not once per row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum GroupKey<'a> {
    Text(&'a str),
    /// Days since 1970-01-01 in local time.
    Day(i64),
}

impl GroupKey<'_> {
    fn render(self) -> String {
        match self {
            GroupKey::Text(text) => text.to_string(),
            GroupKey::Day(days) => day_key(days),
        }
    }
}

/// Calls `f` with each group a row belongs to (one, or one per category hit).
fn for_each_group_key<'a>(query: &ReportQuery, row: &'a CallRow, mut f: impl FnMut(GroupKey<'a>)) {
    let local_day =
        || (row.started_at + i64::from(query.utc_offset_minutes) * 60_000).div_euclid(MS_PER_DAY);
    match query.group_by {
        GroupBy::Agent => f(GroupKey::Text(&row.agent_id)),
        GroupBy::Team => f(GroupKey::Text(row.team.as_deref().unwrap_or("none"))),
        GroupBy::Day => f(GroupKey::Day(local_day())),
        GroupBy::Week => {
            let days = local_day();
            // 1970-01-01 was a Thursday: Monday-based weekday = (days + 3) mod 7.
            f(GroupKey::Day(days - (days + 3).rem_euclid(7)))
        }
        GroupBy::Channel => f(GroupKey::Text(match row.channel {
            Channel::Voice => "voice",
            Channel::Chat => "chat",
        })),
        GroupBy::Category if row.hits.is_empty() => f(GroupKey::Text("none")),
        GroupBy::Category => row.hits.keys().for_each(|c| f(GroupKey::Text(c))),
    }
}

/// `YYYY-MM-DD` of a day number since 1970-01-01 (proleptic Gregorian).
pub(crate) fn day_key(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The date of a day number (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Running sums of one group. Keys borrow from the rows: no allocation per row.
#[derive(Default)]
struct Accumulator<'a> {
    calls: u64,
    scored: u64,
    score_sum: u64,
    histogram: [u64; 10],
    hits: HashMap<&'a str, u64>,
    handled: u64,
    handle_ms: i64,
    adoption: HashMap<&'a str, Adoption>,
    intents: HashMap<&'a str, u64>,
    complaints: HashMap<&'a str, u64>,
}

impl<'a> Accumulator<'a> {
    fn add(&mut self, row: &'a CallRow) {
        self.calls += 1;
        if let Some(score) = row.score() {
            self.scored += 1;
            self.score_sum += u64::from(score);
            self.histogram[histogram_bucket(score)] += 1;
        }
        for (category, count) in &row.hits {
            *self.hits.entry(category.as_str()).or_default() += u64::from(*count);
        }
        if let Some(ms) = row.handle_time_ms() {
            self.handled += 1;
            self.handle_ms += ms;
        }
        for (script, (shown, used)) in &row.scripts {
            let entry = self.adoption.entry(script.as_str()).or_default();
            entry.shown += u64::from(*shown);
            entry.used += u64::from(*used);
        }
        for intent in &row.intents {
            *self.intents.entry(intent.as_str()).or_default() += 1;
        }
        for reason in &row.complaint_reasons {
            *self.complaints.entry(reason.as_str()).or_default() += 1;
        }
    }

    fn finish(self, key: String, top: usize) -> ReportGroup {
        ReportGroup {
            key,
            calls: self.calls,
            scored_calls: self.scored,
            avg_score: (self.scored > 0).then(|| self.score_sum as f64 / self.scored as f64),
            score_histogram: self.histogram,
            hits_by_category: owned(self.hits),
            avg_handle_time_secs: (self.handled > 0)
                .then(|| self.handle_ms as f64 / 1000.0 / self.handled as f64),
            card_adoption: owned(self.adoption),
            top_intents: top_n(self.intents, top),
            top_complaints: top_n(self.complaints, top),
        }
    }
}

fn owned<V>(map: HashMap<&str, V>) -> BTreeMap<String, V> {
    map.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The histogram bucket of a score: 0-9 -> 0, ..., 90-100 -> 9.
pub(crate) fn histogram_bucket(score: u32) -> usize {
    (score as usize / 10).min(9)
}

/// The `n` most frequent, most frequent first, ties by name.
fn top_n(counts: HashMap<&str, u64>, n: usize) -> Vec<(String, u64)> {
    let mut all: Vec<(&str, u64)> = counts.into_iter().collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    all.truncate(n);
    all.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Renders a report as CSV: a header row, one row per group, then a `total` row.
///
/// Columns: group, calls, scored_calls, avg_score, the ten histogram buckets, avg_handle_secs,
/// cards_shown, cards_used, card_adoption, hits (`category:count` joined by `;`), top_intents
/// and top_complaints (`name:count` joined by `;`). A second table after a blank line lists rule
/// precision: rule, hits, confirmed, overturned, precision.
pub fn report_csv(report: &Report) -> String {
    let mut out = String::new();
    out.push_str("group,calls,scored_calls,avg_score");
    for bucket in 0..10 {
        let (low, high) = (bucket * 10, if bucket == 9 { 100 } else { bucket * 10 + 9 });
        let _ = write!(out, ",score_{low}_{high}");
    }
    out.push_str(
        ",avg_handle_secs,cards_shown,cards_used,card_adoption,hits,top_intents,top_complaints\n",
    );
    for group in report.groups.iter().chain(std::iter::once(&report.totals)) {
        csv_group(&mut out, group);
    }
    out.push_str("\nrule,hits,confirmed,overturned,precision\n");
    for rule in &report.rule_precision {
        let _ = writeln!(
            out,
            "{},{},{},{},{}",
            csv_field(&rule.rule),
            rule.hits,
            rule.confirmed,
            rule.overturned,
            optional(rule.precision, 3)
        );
    }
    out
}

fn csv_group(out: &mut String, group: &ReportGroup) {
    let _ = write!(
        out,
        "{},{},{},{}",
        csv_field(&group.key),
        group.calls,
        group.scored_calls,
        optional(group.avg_score, 1)
    );
    for count in group.score_histogram {
        let _ = write!(out, ",{count}");
    }
    let shown: u64 = group.card_adoption.values().map(|a| a.shown).sum();
    let used: u64 = group.card_adoption.values().map(|a| a.used).sum();
    let adoption = Adoption { shown, used }.rate();
    let hits = join_counts(group.hits_by_category.iter().map(|(k, v)| (k.as_str(), *v)));
    let intents = join_counts(group.top_intents.iter().map(|(k, v)| (k.as_str(), *v)));
    let complaints = join_counts(group.top_complaints.iter().map(|(k, v)| (k.as_str(), *v)));
    let _ = writeln!(
        out,
        ",{},{shown},{used},{},{},{},{}",
        optional(group.avg_handle_time_secs, 1),
        optional(adoption, 3),
        csv_field(&hits),
        csv_field(&intents),
        csv_field(&complaints)
    );
}

fn join_counts<'a>(items: impl Iterator<Item = (&'a str, u64)>) -> String {
    items
        .map(|(k, v)| format!("{k}:{v}"))
        .collect::<Vec<_>>()
        .join(";")
}

fn optional(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(String::new, |v| format!("{v:.decimals$}"))
}

/// Quotes a field when it holds a comma, quote or line break (RFC 4180).
fn csv_field(raw: &str) -> String {
    if raw.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", raw.replace('"', "\"\""))
    } else {
        raw.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_keys_follow_the_calendar() {
        assert_eq!(day_key(0), "1970-01-01");
        assert_eq!(day_key(19_782), "2024-02-29");
        assert_eq!(day_key(-1), "1969-12-31");
    }

    #[test]
    fn histogram_puts_100_in_the_top_bucket() {
        assert_eq!(histogram_bucket(0), 0);
        assert_eq!(histogram_bucket(59), 5);
        assert_eq!(histogram_bucket(100), 9);
    }

    #[test]
    fn csv_fields_with_commas_are_quoted() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
