//! The compiled rule set: every phrase of every rule in one Aho-Corasick automaton, every regex
//! in one `RegexSet`, so one utterance costs one pass per automaton whatever the pack's size.
//!
//! [`RuleSet::scan`] says, per rule, which of its phrase lists matched an utterance. The
//! stateful kinds (disclosure, order, required, timing, streaks, repeats) are decided by the
//! call session from these scans; the stateless kinds (keywords, regex) by [`RuleScan::fires`].

use crate::negation::is_negated;
use crate::pack::{Condition, Rule};
use crate::text::PhraseSet;
use assist_protocol::Speaker;
use regex::{Regex, RegexSet};

/// Which list of a rule a phrase belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Any,
    All(u8),
    Unless,
    Trigger,
    Require(u8),
    First,
    Then,
}

impl Role {
    /// Whether a negated occurrence of the phrase should be ignored (given `negation = true`).
    fn honours_negation(self) -> bool {
        matches!(self, Role::Any | Role::All(_) | Role::Trigger)
    }
}

/// What matched for one rule in one utterance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleScan {
    pub any: bool,
    /// Bit k: phrase k of `all` matched.
    pub all: u64,
    pub unless: bool,
    pub trigger: bool,
    /// Bit k: require item k matched.
    pub require: u64,
    pub first: bool,
    pub then: bool,
    pub regex: bool,
}

/// Longest `all` list / number of `require` items a rule may have (they are bitsets).
pub const MAX_LIST_BITS: usize = 64;

type PendingGroup = (Option<String>, Vec<String>, Vec<(usize, Regex)>);

struct RegexGroup {
    language: Option<String>,
    set: RegexSet,
    /// Per pattern of the set: (rule index, the regex itself for match positions).
    regexes: Vec<(usize, Regex)>,
}

pub struct RuleSet {
    pub rules: Vec<Rule>,
    phrases: PhraseSet,
    /// Per phrase: (rule index, role).
    owners: Vec<(usize, Role)>,
    /// The rules' regexes grouped by the language their rule applies to (None: every
    /// language), so a call only runs its own language's patterns.
    regex_groups: Vec<RegexGroup>,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.rules.len())
            .field("phrases", &self.phrases.len())
            .field("regex_groups", &self.regex_groups.len())
            .finish()
    }
}

impl RuleSet {
    /// Compiles the rules. Patterns were validated when the pack was parsed.
    pub fn new(rules: Vec<Rule>) -> Result<RuleSet, String> {
        let mut phrases: Vec<String> = Vec::new();
        let mut owners = Vec::new();
        // Per language: (language, patterns, (rule, regex) per pattern).
        let mut groups: Vec<PendingGroup> = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            let mut add = |list: &[String], role: Role| {
                for p in list {
                    phrases.push(p.clone());
                    owners.push((index, role));
                }
            };
            match &rule.condition {
                Condition::Keywords {
                    any, all, unless, ..
                } => {
                    if all.len() > MAX_LIST_BITS {
                        return Err(format!(
                            "rule `{}`: `all` has more than {MAX_LIST_BITS} phrases",
                            rule.id
                        ));
                    }
                    add(any, Role::Any);
                    for (k, p) in all.iter().enumerate() {
                        add(std::slice::from_ref(p), Role::All(k as u8));
                    }
                    add(unless, Role::Unless);
                }
                Condition::Regex {
                    patterns: list,
                    unless,
                    ..
                } => {
                    for p in list {
                        let re = Regex::new(p)
                            .map_err(|e| format!("rule `{}`: invalid regex: {e}", rule.id))?;
                        let group = match groups.iter().position(|g| g.0 == rule.language) {
                            Some(i) => i,
                            None => {
                                groups.push((rule.language.clone(), Vec::new(), Vec::new()));
                                groups.len() - 1
                            }
                        };
                        groups[group].1.push(p.clone());
                        groups[group].2.push((index, re));
                    }
                    add(unless, Role::Unless);
                }
                Condition::Disclosure {
                    trigger, require, ..
                } => {
                    if require.len() > MAX_LIST_BITS {
                        return Err(format!(
                            "rule `{}`: more than {MAX_LIST_BITS} require items",
                            rule.id
                        ));
                    }
                    add(trigger, Role::Trigger);
                    for (k, item) in require.iter().enumerate() {
                        add(&item.any, Role::Require(k as u8));
                    }
                }
                Condition::Order { first, then } => {
                    add(first, Role::First);
                    add(then, Role::Then);
                }
                Condition::Required { any, .. } => add(any, Role::Any),
                Condition::ResponseTime { .. }
                | Condition::Silence { .. }
                | Condition::NegativeStreak { .. }
                | Condition::RepeatQuestion { .. } => {}
            }
        }
        let regex_groups = groups
            .into_iter()
            .map(|(language, patterns, regexes)| {
                Ok(RegexGroup {
                    language,
                    set: RegexSet::new(&patterns).map_err(|e| e.to_string())?,
                    regexes,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(RuleSet {
            rules,
            phrases: PhraseSet::new(&phrases, false),
            owners,
            regex_groups,
        })
    }

    /// Scans one normalized utterance: per rule index that matched anything, what matched.
    /// Rules for another language are skipped. Sorted by rule index.
    pub fn scan(&self, normalized: &str, language: &str) -> Vec<(usize, RuleScan)> {
        let mut found: Vec<(usize, RuleScan)> = Vec::new();
        let entry = |found: &mut Vec<(usize, RuleScan)>, rule: usize| -> usize {
            match found.iter().position(|(r, _)| *r == rule) {
                Some(i) => i,
                None => {
                    found.push((rule, RuleScan::default()));
                    found.len() - 1
                }
            }
        };
        for m in self.phrases.find_all(normalized) {
            let (rule_index, role) = self.owners[m.phrase];
            let rule = &self.rules[rule_index];
            if !rule.applies_to(language) {
                continue;
            }
            if role.honours_negation()
                && uses_negation(&rule.condition)
                && is_negated(normalized, m.start)
            {
                continue;
            }
            let i = entry(&mut found, rule_index);
            let scan = &mut found[i].1;
            match role {
                Role::Any => scan.any = true,
                Role::All(k) => scan.all |= 1 << k,
                Role::Unless => scan.unless = true,
                Role::Trigger => scan.trigger = true,
                Role::Require(k) => scan.require |= 1 << k,
                Role::First => scan.first = true,
                Role::Then => scan.then = true,
            }
        }
        let groups = self
            .regex_groups
            .iter()
            .filter(|g| g.language.as_deref().is_none_or(|l| l == language));
        for group in groups {
            for pattern in group.set.matches(normalized).iter() {
                let (rule_index, re) = &group.regexes[pattern];
                let negation = uses_negation(&self.rules[*rule_index].condition);
                let hit = re
                    .find_iter(normalized)
                    .any(|m| !negation || !is_negated(normalized, m.start()));
                if hit {
                    let i = entry(&mut found, *rule_index);
                    found[i].1.regex = true;
                }
            }
        }
        found.sort_by_key(|(r, _)| *r);
        found
    }

    /// The stateless rules (keywords, regex) watching `speaker` that fire on this scan.
    pub fn instant_hits<'a>(
        &'a self,
        scans: &'a [(usize, RuleScan)],
        speaker: Speaker,
    ) -> impl Iterator<Item = usize> + 'a {
        scans.iter().filter_map(move |(index, scan)| {
            let rule = &self.rules[*index];
            (rule.speaker.covers(speaker) && scan.fires(&rule.condition)).then_some(*index)
        })
    }
}

fn uses_negation(condition: &Condition) -> bool {
    match condition {
        Condition::Keywords { negation, .. } | Condition::Regex { negation, .. } => *negation,
        Condition::Disclosure { .. } => true,
        _ => false,
    }
}

impl RuleScan {
    /// Whether a stateless rule fires on this scan; always false for stateful kinds.
    pub fn fires(&self, condition: &Condition) -> bool {
        match condition {
            Condition::Keywords { any, all, .. } => {
                let any_ok = any.is_empty() || self.any;
                let all_mask = if all.len() == MAX_LIST_BITS {
                    u64::MAX
                } else {
                    (1u64 << all.len()) - 1
                };
                let all_ok = self.all & all_mask == all_mask;
                any_ok && all_ok && !self.unless
            }
            Condition::Regex { .. } => self.regex && !self.unless,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::{Origin, Watch};
    use crate::text::normalize;
    use assist_protocol::Severity;

    fn rule(id: &str, language: Option<&str>, condition: Condition) -> Rule {
        Rule {
            id: id.into(),
            category: "test".into(),
            severity: Severity::Serious,
            speaker: Watch::Agent,
            language: language.map(str::to_string),
            message: "m".into(),
            description: None,
            condition,
            origin: Origin::default(),
        }
    }

    fn keywords(any: &[&str], all: &[&str], unless: &[&str], negation: bool) -> Condition {
        let list = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        Condition::Keywords {
            any: list(any),
            all: list(all),
            unless: list(unless),
            negation,
        }
    }

    fn fired(set: &RuleSet, text: &str, language: &str) -> Vec<String> {
        let scans = set.scan(&normalize(text), language);
        set.instant_hits(&scans, Speaker::Agent)
            .map(|i| set.rules[i].id.clone())
            .collect()
    }

    #[test]
    fn keywords_any_all_and_unless() {
        let set = RuleSet::new(vec![
            rule(
                "any",
                None,
                keywords(&["保本", "guaranteed"], &[], &[], true),
            ),
            rule("all", None, keywords(&[], &["收益", "翻倍"], &[], true)),
            rule("unless", None, keywords(&["最低价"], &[], &["不是"], false)),
        ])
        .expect("compiles");
        assert_eq!(fired(&set, "这个产品保本", "zh"), vec!["any"]);
        assert_eq!(fired(&set, "收益能翻倍", "zh"), vec!["all"]);
        assert!(fired(&set, "收益稳定", "zh").is_empty());
        assert_eq!(fired(&set, "全网最低价", "zh"), vec!["unless"]);
        assert!(fired(&set, "这不是最低价", "zh").is_empty());
    }

    #[test]
    fn negated_phrases_do_not_fire_unless_negation_is_off() {
        let set = RuleSet::new(vec![
            rule(
                "promise",
                None,
                keywords(&["保本", "guaranteed"], &[], &[], true),
            ),
            rule("abuse", None, keywords(&["傻"], &[], &[], false)),
        ])
        .expect("compiles");
        assert!(fired(&set, "这款产品不保本", "zh").is_empty());
        assert!(fired(&set, "returns are not guaranteed", "en").is_empty());
        assert_eq!(fired(&set, "你不傻吧", "zh"), vec!["abuse"]);
    }

    #[test]
    fn regex_rules_honour_negation() {
        let set = RuleSet::new(vec![rule(
            "yield",
            None,
            Condition::Regex {
                patterns: vec![r"年化收益\d{2}%".into()],
                unless: vec![],
                negation: true,
            },
        )])
        .expect("compiles");
        assert_eq!(fired(&set, "年化收益30%", "zh"), vec!["yield"]);
        assert!(fired(&set, "不可能年化收益30%", "zh").is_empty());
        assert!(fired(&set, "年化收益3%", "zh").is_empty());
    }

    #[test]
    fn rules_of_another_language_are_skipped() {
        let set = RuleSet::new(vec![rule(
            "en-only",
            Some("en"),
            keywords(&["risk-free"], &[], &[], true),
        )])
        .expect("compiles");
        assert_eq!(fired(&set, "it is risk-free", "en"), vec!["en-only"]);
        assert!(fired(&set, "it is risk-free", "zh").is_empty());
    }
}
