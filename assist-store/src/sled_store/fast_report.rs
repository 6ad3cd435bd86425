//! Reports straight from the row cache.
//!
//! [`crate::build_report`] folds [`CallRow`]s: clear, but per row it walks several B-tree maps
//! and hashes their string keys. Here each row also has its [`Facts`]: the same figures as
//! interned ids in one flat `[u32]`, so adding a row to a group is array arithmetic. The result
//! is the same report (a unit test compares the two on random rows).

use super::cache::{Interners, RowCache, RowKey, NONE, NO_SCORE};
use crate::query::{
    precision, Adoption, CallRow, GroupBy, Report, ReportGroup, ReportQuery, RulePrecision,
};
use crate::report::{day_key, histogram_bucket, MS_PER_DAY};
use std::collections::{BTreeMap, HashMap};

/// A row's report figures as interned ids, in sections each led by its entry count:
/// hits `(category, count)`, scripts `(script, shown, used)`, intents `(intent)`, complaint
/// reasons `(rule)`, rules `(rule, hits, confirmed, overturned)`.
pub(super) struct Facts(Box<[u32]>);

impl Facts {
    pub(super) fn of(row: &CallRow, names: &mut Interners) -> Facts {
        let mut v = Vec::with_capacity(
            5 + 2 * row.hits.len() + 3 * row.scripts.len() + row.intents.len() + 8,
        );
        v.push(len32(row.hits.len()));
        for (category, count) in &row.hits {
            v.extend([names.categories.intern(category), *count]);
        }
        v.push(len32(row.scripts.len()));
        for (script, (shown, used)) in &row.scripts {
            v.extend([names.scripts.intern(script), *shown, *used]);
        }
        v.push(len32(row.intents.len()));
        for intent in &row.intents {
            v.push(names.intents.intern(intent));
        }
        v.push(len32(row.complaint_reasons.len()));
        for reason in &row.complaint_reasons {
            v.push(names.rules.intern(reason));
        }
        let mut rules: BTreeMap<&str, [u32; 3]> = BTreeMap::new();
        for (rule, hits) in &row.rule_hits {
            rules.entry(rule).or_default()[0] += hits;
        }
        for (rule, (confirmed, overturned)) in &row.verdicts {
            let entry = rules.entry(rule).or_default();
            entry[1] += confirmed;
            entry[2] += overturned;
        }
        v.push(len32(rules.len()));
        for (rule, [hits, confirmed, overturned]) in rules {
            v.extend([names.rules.intern(rule), hits, confirmed, overturned]);
        }
        Facts(v.into_boxed_slice())
    }

    fn view(&self) -> FactsView<'_> {
        let mut rest: &[u32] = &self.0;
        let mut section = |width: usize| -> &[u32] {
            let count = rest.first().map_or(0, |&n| n as usize);
            let end = (1 + count * width).min(rest.len());
            let (taken, after) = rest.split_at(end);
            rest = after;
            taken.get(1..).unwrap_or_default()
        };
        FactsView {
            hits: section(2),
            scripts: section(3),
            intents: section(1),
            complaints: section(1),
            rules: section(4),
        }
    }
}

fn len32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

struct FactsView<'a> {
    hits: &'a [u32],
    scripts: &'a [u32],
    intents: &'a [u32],
    complaints: &'a [u32],
    rules: &'a [u32],
}

/// A report group before its key is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum GroupId {
    Symbol(u32),
    NoTeam,
    Day(i64),
    Channel(u8),
    Category(u32),
    NoCategory,
}

impl RowCache {
    /// The report over the rows matching the query's filter; equal to
    /// [`crate::build_report`] over the same rows.
    pub(super) fn report(&self, query: &ReportQuery) -> Report {
        let mut groups: HashMap<GroupId, Accumulator> = HashMap::new();
        let mut totals = Accumulator::default();
        let mut rules: Vec<[u64; 3]> = Vec::new();
        for i in self.matching_indexes(&query.filter) {
            let key = self.key(i);
            let facts = self.facts(i).view();
            for_each_group(query, key, &facts, |id| {
                groups.entry(id).or_default().add(key, &facts)
            });
            totals.add(key, &facts);
            for rule in facts.rules.chunks_exact(4) {
                let slot = slot(&mut rules, rule[0]);
                for (total, value) in slot.iter_mut().zip(&rule[1..]) {
                    *total += u64::from(*value);
                }
            }
        }
        let names = &self.names;
        // Render keys; different ids may render alike (a team called "none"): merge them.
        let mut rendered: BTreeMap<String, Accumulator> = BTreeMap::new();
        for (id, acc) in groups {
            let key = match id {
                GroupId::Symbol(s) => names.symbols.name(s).to_string(),
                GroupId::NoTeam | GroupId::NoCategory => "none".to_string(),
                GroupId::Day(days) => day_key(days),
                GroupId::Channel(0) => "voice".to_string(),
                GroupId::Channel(_) => "chat".to_string(),
                GroupId::Category(c) => names.categories.name(c).to_string(),
            };
            match rendered.get_mut(&key) {
                Some(existing) => existing.merge(&acc),
                None => {
                    rendered.insert(key, acc);
                }
            }
        }
        let mut rule_precision: Vec<RulePrecision> = rules
            .iter()
            .enumerate()
            .filter(|(_, counts)| counts.iter().any(|&c| c > 0))
            .map(|(id, &[hits, confirmed, overturned])| RulePrecision {
                rule: names.rules.name(id32(id)).to_string(),
                hits,
                confirmed,
                overturned,
                precision: precision(confirmed, overturned),
            })
            .collect();
        rule_precision.sort_by(|a, b| a.rule.cmp(&b.rule));
        Report {
            group_by: query.group_by,
            groups: rendered
                .into_iter()
                .map(|(key, acc)| acc.finish(key, query.top, names))
                .collect(),
            totals: totals.finish("total".to_string(), query.top, names),
            rule_precision,
        }
    }
}

fn for_each_group(
    query: &ReportQuery,
    key: &RowKey,
    facts: &FactsView<'_>,
    mut f: impl FnMut(GroupId),
) {
    let local_day =
        || (key.started_at + i64::from(query.utc_offset_minutes) * 60_000).div_euclid(MS_PER_DAY);
    match query.group_by {
        GroupBy::Agent => f(GroupId::Symbol(key.agent)),
        GroupBy::Team if key.team == NONE => f(GroupId::NoTeam),
        GroupBy::Team => f(GroupId::Symbol(key.team)),
        GroupBy::Day => f(GroupId::Day(local_day())),
        GroupBy::Week => {
            let days = local_day();
            f(GroupId::Day(days - (days + 3).rem_euclid(7)))
        }
        GroupBy::Channel => f(GroupId::Channel(key.channel)),
        GroupBy::Category if facts.hits.is_empty() => f(GroupId::NoCategory),
        GroupBy::Category => facts
            .hits
            .chunks_exact(2)
            .for_each(|hit| f(GroupId::Category(hit[0]))),
    }
}

/// Running sums of one group, indexed by interned id.
#[derive(Default)]
struct Accumulator {
    calls: u64,
    scored: u64,
    score_sum: u64,
    histogram: [u64; 10],
    handled: u64,
    handle_ms: i64,
    hits: Vec<u64>,
    /// (shown, used) per script.
    scripts: Vec<[u64; 2]>,
    intents: Vec<u64>,
    complaints: Vec<u64>,
}

impl Accumulator {
    fn add(&mut self, key: &RowKey, facts: &FactsView<'_>) {
        self.calls += 1;
        if key.score != NO_SCORE {
            self.scored += 1;
            self.score_sum += u64::from(key.score);
            self.histogram[histogram_bucket(u32::from(key.score))] += 1;
        }
        if key.handle_ms >= 0 {
            self.handled += 1;
            self.handle_ms += key.handle_ms;
        }
        for hit in facts.hits.chunks_exact(2) {
            *slot(&mut self.hits, hit[0]) += u64::from(hit[1]);
        }
        for script in facts.scripts.chunks_exact(3) {
            let entry = slot(&mut self.scripts, script[0]);
            entry[0] += u64::from(script[1]);
            entry[1] += u64::from(script[2]);
        }
        for &intent in facts.intents {
            *slot(&mut self.intents, intent) += 1;
        }
        for &reason in facts.complaints {
            *slot(&mut self.complaints, reason) += 1;
        }
    }

    fn merge(&mut self, other: &Accumulator) {
        self.calls += other.calls;
        self.scored += other.scored;
        self.score_sum += other.score_sum;
        for (mine, theirs) in self.histogram.iter_mut().zip(other.histogram) {
            *mine += theirs;
        }
        self.handled += other.handled;
        self.handle_ms += other.handle_ms;
        merge_counts(&mut self.hits, &other.hits);
        merge_counts(&mut self.intents, &other.intents);
        merge_counts(&mut self.complaints, &other.complaints);
        for (id, [shown, used]) in other.scripts.iter().enumerate() {
            let entry = slot(&mut self.scripts, id32(id));
            entry[0] += shown;
            entry[1] += used;
        }
    }

    fn finish(self, key: String, top: usize, names: &Interners) -> ReportGroup {
        let named = |counts: &[u64], interner: &super::cache::Interner| {
            counts
                .iter()
                .enumerate()
                .filter(|(_, &n)| n > 0)
                .map(|(id, &n)| (interner.name(id32(id)).to_string(), n))
                .collect::<Vec<_>>()
        };
        let top_n = |mut all: Vec<(String, u64)>| {
            all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            all.truncate(top);
            all
        };
        ReportGroup {
            key,
            calls: self.calls,
            scored_calls: self.scored,
            avg_score: (self.scored > 0).then(|| self.score_sum as f64 / self.scored as f64),
            score_histogram: self.histogram,
            hits_by_category: named(&self.hits, &names.categories).into_iter().collect(),
            avg_handle_time_secs: (self.handled > 0)
                .then(|| self.handle_ms as f64 / 1000.0 / self.handled as f64),
            card_adoption: self
                .scripts
                .iter()
                .enumerate()
                .filter(|(_, [shown, used])| *shown > 0 || *used > 0)
                .map(|(id, &[shown, used])| {
                    (
                        names.scripts.name(id32(id)).to_string(),
                        Adoption { shown, used },
                    )
                })
                .collect(),
            top_intents: top_n(named(&self.intents, &names.intents)),
            top_complaints: top_n(named(&self.complaints, &names.rules)),
        }
    }
}

/// The slot of `id`, growing the vector as needed.
fn slot<T: Default + Clone>(v: &mut Vec<T>, id: u32) -> &mut T {
    let i = id as usize;
    if v.len() <= i {
        v.resize(i + 1, T::default());
    }
    &mut v[i]
}

fn merge_counts(mine: &mut Vec<u64>, theirs: &[u64]) {
    for (id, n) in theirs.iter().enumerate() {
        *slot(mine, id32(id)) += n;
    }
}

fn id32(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{CallMeta, CallSource, CallStatus};
    use crate::query::CallFilter;
    use assist_protocol::{Channel, EmotionLabel};

    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    fn random_row(rng: &mut Rng, i: usize) -> CallRow {
        let teams = [None, Some("east"), Some("west"), Some("none")];
        let started_at = 1_700_000_000_000 + rng.below(20 * 86_400_000) as i64;
        let mut row = CallRow::new(&CallMeta {
            call_id: format!("c{i}"),
            agent_id: format!("agent{}", rng.below(7)),
            team: teams[rng.below(4) as usize].map(str::to_string),
            channel: if rng.below(3) == 0 {
                Channel::Chat
            } else {
                Channel::Voice
            },
            language: "zh".into(),
            source: CallSource::Live,
            started_at,
            ended_at: None,
            status: CallStatus::InProgress,
        });
        if rng.below(5) != 0 {
            row.status = CallStatus::Ended;
            row.ended_at = Some(started_at + rng.below(900_000) as i64);
            row.auto_score = Some(rng.below(101) as u32);
        }
        if rng.below(6) == 0 {
            row.manual_score = Some(rng.below(101) as u32);
        }
        let categories = ["abuse", "greeting", "complaint_risk", "none"];
        for _ in 0..rng.below(4) {
            let category = categories[rng.below(4) as usize];
            *row.hits.entry(category.into()).or_default() += 1;
            let rule = format!("rule{}", rng.below(5));
            *row.rule_hits.entry(rule.clone()).or_default() += 1;
            if rng.below(2) == 0 {
                let v = row.verdicts.entry(rule).or_default();
                if rng.below(2) == 0 {
                    v.0 += 1
                } else {
                    v.1 += 1
                }
            }
        }
        for script in ["soothe", "upsell", "close"] {
            if rng.below(2) == 0 {
                row.scripts.insert(script.into(), (1, rng.below(2) as u32));
            }
        }
        for intent in ["refund", "cancel", "invoice"] {
            if rng.below(3) == 0 {
                row.intents.push(intent.into());
            }
        }
        if rng.below(3) == 0 {
            row.complaint_reasons.push(format!("rule{}", rng.below(5)));
        }
        if rng.below(2) == 0 {
            row.emotions_seen.push(EmotionLabel::Negative);
        }
        row
    }

    #[test]
    fn the_fast_report_equals_the_reference_report() {
        let mut rng = Rng(0x1234_5678);
        let rows: Vec<CallRow> = (0..600).map(|i| random_row(&mut rng, i)).collect();
        let mut cache = RowCache::from_rows(rows[..300].to_vec());
        for row in &rows[300..] {
            cache.put(row.clone());
        }
        let filters = [
            CallFilter::default(),
            CallFilter {
                team: Some("east".into()),
                ..Default::default()
            },
            CallFilter {
                category: Some("abuse".into()),
                min_score: Some(30),
                ..Default::default()
            },
            CallFilter {
                emotion: Some(EmotionLabel::Negative),
                channel: Some(Channel::Chat),
                ..Default::default()
            },
        ];
        for group_by in [
            GroupBy::Agent,
            GroupBy::Team,
            GroupBy::Day,
            GroupBy::Week,
            GroupBy::Channel,
            GroupBy::Category,
        ] {
            for filter in &filters {
                let query = ReportQuery {
                    filter: filter.clone(),
                    group_by,
                    utc_offset_minutes: 480,
                    top: 2,
                };
                let reference = crate::build_report(&query, cache.matching(&query.filter));
                assert_eq!(cache.report(&query), reference, "{group_by:?} {filter:?}");
            }
        }
    }
}
