//! The compiled rule set, prepared per call language ([`LanguageRules`]): the phrases of every
//! rule that applies to the language in one Aho-Corasick automaton, the regexes grouped by
//! language, and the rules of each stateful kind listed, so one utterance costs one pass per
//! automaton whatever the pack's size and never looks at another language's rules.
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

/// Regex groups up to this many patterns run pattern by pattern instead of as a `RegexSet`.
const SMALL_REGEX_GROUP: usize = 8;

type PendingGroup = (Option<String>, Vec<String>, Vec<(usize, Regex)>);

struct RegexGroup {
    language: Option<String>,
    set: RegexSet,
    /// Per pattern of the set: (rule index, the regex itself for match positions).
    regexes: Vec<(usize, Regex)>,
}

/// Who a phrase belongs to.
#[derive(Debug, Clone, Copy)]
struct Owner {
    rule: usize,
    role: Role,
    /// Whether a negated occurrence is ignored (the role honours negation and the rule uses it).
    negation: bool,
}

/// What a call in one language runs, prepared when the pack is compiled: the phrases of the
/// rules that apply to the language in one automaton, its regex groups, and its rules of each
/// stateful kind. An utterance then touches only what can fire on it, and no rule's language
/// is compared on the way.
pub struct LanguageRules {
    /// A language some rule names; `None` stands for every other language (language-free rules
    /// only).
    language: Option<String>,
    phrases: PhraseSet,
    owners: Vec<Owner>,
    /// Indices into [`RuleSet::regex_groups`] of the groups that run.
    regex_groups: Vec<usize>,
    /// Rule indices of each stateful kind, in pack order.
    pub required: Vec<usize>,
    pub response_time: Vec<usize>,
    pub silence: Vec<usize>,
    pub negative_streak: Vec<usize>,
    pub repeat_question: Vec<usize>,
    /// Rules that may fire when the call ends (disclosure, required), in pack order.
    pub at_end: Vec<usize>,
}

pub struct RuleSet {
    pub rules: Vec<Rule>,
    /// Per rule, its slot among the rules that keep per-call state (disclosure, order,
    /// required, negative streak): a call holds state for those only.
    state_slots: Vec<Option<u32>>,
    stateful: usize,
    /// One per language a rule names, then the one for every other language.
    languages: Vec<LanguageRules>,
    /// The rules' regexes grouped by the language their rule applies to (None: every
    /// language), so a call only runs its own language's patterns.
    regex_groups: Vec<RegexGroup>,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.rules.len())
            .field(
                "phrases",
                &self
                    .languages
                    .iter()
                    .map(|l| (l.language.as_deref(), l.phrases.len()))
                    .collect::<Vec<_>>(),
            )
            .field("regex_groups", &self.regex_groups.len())
            .finish()
    }
}

impl std::fmt::Debug for LanguageRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LanguageRules")
            .field("language", &self.language)
            .field("phrases", &self.phrases.len())
            .field("regex_groups", &self.regex_groups)
            .finish()
    }
}

impl RuleSet {
    /// Compiles the rules. Patterns were validated when the pack was parsed.
    pub fn new(rules: Vec<Rule>) -> Result<RuleSet, String> {
        // Per language: (language, patterns, (rule, regex) per pattern).
        let mut groups: Vec<PendingGroup> = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            match &rule.condition {
                Condition::Keywords { all, .. } if all.len() > MAX_LIST_BITS => {
                    return Err(format!(
                        "rule `{}`: `all` has more than {MAX_LIST_BITS} phrases",
                        rule.id
                    ));
                }
                Condition::Disclosure { require, .. } if require.len() > MAX_LIST_BITS => {
                    return Err(format!(
                        "rule `{}`: more than {MAX_LIST_BITS} require items",
                        rule.id
                    ));
                }
                Condition::Regex { patterns, .. } => {
                    for p in patterns {
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
                }
                _ => {}
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
        let mut named: Vec<Option<String>> = Vec::new();
        for rule in &rules {
            if rule.language.is_some() && !named.contains(&rule.language) {
                named.push(rule.language.clone());
            }
        }
        named.push(None);
        let languages = named
            .into_iter()
            .map(|language| LanguageRules::new(&rules, &regex_groups, language))
            .collect();
        let mut stateful = 0;
        let state_slots = rules
            .iter()
            .map(|rule| {
                let keeps_state = matches!(
                    rule.condition,
                    Condition::Disclosure { .. }
                        | Condition::Order { .. }
                        | Condition::Required { .. }
                        | Condition::NegativeStreak { .. }
                );
                keeps_state.then(|| {
                    stateful += 1;
                    stateful as u32 - 1
                })
            })
            .collect();
        Ok(RuleSet {
            rules,
            state_slots,
            stateful,
            languages,
            regex_groups,
        })
    }

    /// How many rules keep per-call state.
    pub fn stateful(&self) -> usize {
        self.stateful
    }

    /// The slot of a rule's per-call state (disclosure, order, required and negative streak
    /// rules); `None` for the kinds that keep none.
    pub fn state_slot(&self, rule: usize) -> Option<usize> {
        self.state_slots[rule].map(|slot| slot as usize)
    }

    /// What a call in `language` runs.
    pub fn for_language(&self, language: &str) -> &LanguageRules {
        let (other, named) = self
            .languages
            .split_last()
            .expect("the rules of other languages are always there");
        named
            .iter()
            .find(|l| l.language.as_deref() == Some(language))
            .unwrap_or(other)
    }

    /// Scans one normalized utterance: per rule index that matched anything, what matched.
    /// Rules for another language are skipped. Sorted by rule index.
    pub fn scan(&self, normalized: &str, language: &str) -> Vec<(usize, RuleScan)> {
        let mut found = Vec::new();
        self.scan_into(self.for_language(language), normalized, &mut found);
        found
    }

    /// [`RuleSet::scan`] with the call's rules looked up already, into a buffer the call reuses
    /// (cleared first).
    pub fn scan_into(
        &self,
        rules: &LanguageRules,
        normalized: &str,
        found: &mut Vec<(usize, RuleScan)>,
    ) {
        found.clear();
        let entry = |found: &mut Vec<(usize, RuleScan)>, rule: usize| -> usize {
            match found.iter().position(|(r, _)| *r == rule) {
                Some(i) => i,
                None => {
                    found.push((rule, RuleScan::default()));
                    found.len() - 1
                }
            }
        };
        rules.phrases.each(normalized, |m| {
            let owner = rules.owners[m.phrase];
            if owner.negation && is_negated(normalized, m.start) {
                return true;
            }
            let i = entry(found, owner.rule);
            let scan = &mut found[i].1;
            match owner.role {
                Role::Any => scan.any = true,
                Role::All(k) => scan.all |= 1 << k,
                Role::Unless => scan.unless = true,
                Role::Trigger => scan.trigger = true,
                Role::Require(k) => scan.require |= 1 << k,
                Role::First => scan.first = true,
                Role::Then => scan.then = true,
            }
            true
        });
        for &group in &rules.regex_groups {
            let group = &self.regex_groups[group];
            // A few patterns run one by one, each with its own literal prefilter; many at
            // once in the set, and only those that matched again for their positions.
            let mut check = |pattern: usize| {
                let (rule_index, re) = &group.regexes[pattern];
                let negation = uses_negation(&self.rules[*rule_index].condition);
                let hit = re
                    .find_iter(normalized)
                    .any(|m| !negation || !is_negated(normalized, m.start()));
                if hit {
                    let i = entry(found, *rule_index);
                    found[i].1.regex = true;
                }
            };
            if group.regexes.len() <= SMALL_REGEX_GROUP {
                (0..group.regexes.len()).for_each(&mut check);
            } else {
                group.set.matches(normalized).into_iter().for_each(check);
            }
        }
        found.sort_by_key(|(r, _)| *r);
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

impl LanguageRules {
    /// The rules of `rules` that apply to `language` (`None`: only the language-free ones).
    fn new(rules: &[Rule], regex_groups: &[RegexGroup], language: Option<String>) -> Self {
        let applies = |rule: &Rule| match &language {
            Some(l) => rule.applies_to(l),
            None => rule.language.is_none(),
        };
        let mut phrases: Vec<String> = Vec::new();
        let mut owners = Vec::new();
        let mut out = LanguageRules {
            language: None,
            phrases: PhraseSet::new::<&str>(&[], false),
            owners: Vec::new(),
            regex_groups: regex_groups
                .iter()
                .enumerate()
                .filter(|(_, g)| g.language.is_none() || g.language == language)
                .map(|(i, _)| i)
                .collect(),
            required: Vec::new(),
            response_time: Vec::new(),
            silence: Vec::new(),
            negative_streak: Vec::new(),
            repeat_question: Vec::new(),
            at_end: Vec::new(),
        };
        for (index, rule) in rules.iter().enumerate() {
            if !applies(rule) {
                continue;
            }
            let negation = uses_negation(&rule.condition);
            let mut add = |list: &[String], role: Role| {
                for p in list {
                    phrases.push(p.clone());
                    owners.push(Owner {
                        rule: index,
                        role,
                        negation: negation && role.honours_negation(),
                    });
                }
            };
            match &rule.condition {
                Condition::Keywords {
                    any, all, unless, ..
                } => {
                    add(any, Role::Any);
                    for (k, p) in all.iter().enumerate() {
                        add(std::slice::from_ref(p), Role::All(k as u8));
                    }
                    add(unless, Role::Unless);
                }
                Condition::Regex { unless, .. } => add(unless, Role::Unless),
                Condition::Disclosure {
                    trigger, require, ..
                } => {
                    add(trigger, Role::Trigger);
                    for (k, item) in require.iter().enumerate() {
                        add(&item.any, Role::Require(k as u8));
                    }
                    out.at_end.push(index);
                }
                Condition::Order { first, then } => {
                    add(first, Role::First);
                    add(then, Role::Then);
                }
                Condition::Required { any, .. } => {
                    add(any, Role::Any);
                    out.required.push(index);
                    out.at_end.push(index);
                }
                Condition::ResponseTime { .. } => out.response_time.push(index),
                Condition::Silence { .. } => out.silence.push(index),
                Condition::NegativeStreak { .. } => out.negative_streak.push(index),
                Condition::RepeatQuestion { .. } => out.repeat_question.push(index),
            }
        }
        out.language = language;
        out.phrases = PhraseSet::new(&phrases, false);
        out.owners = owners;
        out
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
            channels: Vec::new(),
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
