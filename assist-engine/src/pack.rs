//! The knowledge pack as data: parsed from file contents (the caller reads the files, so this
//! stays free of I/O) and validated, with every problem reported as `file:line: problem`.
//!
//! The format is documented for team leads in docs/rules.md.

use assist_protocol::{Channel, Severity, Speaker, Tier};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// A problem in a pack file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackError {
    pub file: String,
    /// 1-based; 0 when the problem is about the file as a whole.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(f, "{}: {}", self.file, self.message)
        }
    }
}

/// Every problem found in a pack (validation goes on after the first one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PackErrors(pub Vec<PackError>);

impl fmt::Display for PackErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// One file of a pack: its path relative to the pack root (`rules/abuse.toml`) and contents.
#[derive(Debug, Clone)]
pub struct PackFile {
    pub path: String,
    pub contents: String,
}

/// Where a pack item was defined.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    pub file: String,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scoring {
    #[serde(default = "default_general")]
    pub general: u32,
    #[serde(default = "default_serious")]
    pub serious: u32,
    #[serde(default = "default_fatal")]
    pub fatal: u32,
}

fn default_general() -> u32 {
    2
}
fn default_serious() -> u32 {
    10
}
fn default_fatal() -> u32 {
    100
}

impl Default for Scoring {
    fn default() -> Self {
        Scoring {
            general: default_general(),
            serious: default_serious(),
            fatal: default_fatal(),
        }
    }
}

impl Scoring {
    pub fn weight(&self, severity: Severity) -> u32 {
        match severity {
            Severity::General => self.general,
            Severity::Serious => self.serious,
            Severity::Fatal => self.fatal,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardLimits {
    #[serde(default = "default_per_utterance")]
    pub max_per_utterance: usize,
    #[serde(default = "default_per_call")]
    pub max_per_call: usize,
    #[serde(default = "default_min_score")]
    pub knowledge_min_score: f32,
}

fn default_per_utterance() -> usize {
    2
}
fn default_per_call() -> usize {
    30
}
fn default_min_score() -> f32 {
    1.0
}

impl Default for CardLimits {
    fn default() -> Self {
        CardLimits {
            max_per_utterance: default_per_utterance(),
            max_per_call: default_per_call(),
            knowledge_min_score: default_min_score(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmotionSettings {
    #[serde(default = "default_window")]
    pub escalation_window: usize,
}

fn default_window() -> usize {
    3
}

impl Default for EmotionSettings {
    fn default() -> Self {
        EmotionSettings {
            escalation_window: default_window(),
        }
    }
}

/// `pack.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackMeta {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub languages: Vec<String>,
    #[serde(default)]
    pub scoring: Scoring,
    #[serde(default)]
    pub cards: CardLimits,
    #[serde(default)]
    pub emotion: EmotionSettings,
}

/// The speaker a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Watch {
    Agent,
    Customer,
    Any,
}

impl Watch {
    pub fn covers(self, speaker: Speaker) -> bool {
        match self {
            Watch::Any => true,
            Watch::Agent => speaker == Speaker::Agent,
            Watch::Customer => speaker == Speaker::Customer,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Within {
    FirstTurns,
    LastTurns,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequireItem {
    pub item: String,
    pub any: Vec<String>,
}

/// What makes a rule fire. See docs/rules.md for each kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Keywords {
        any: Vec<String>,
        all: Vec<String>,
        unless: Vec<String>,
        negation: bool,
    },
    Regex {
        patterns: Vec<String>,
        unless: Vec<String>,
        negation: bool,
    },
    Disclosure {
        trigger: Vec<String>,
        trigger_speaker: Watch,
        require: Vec<RequireItem>,
    },
    Order {
        first: Vec<String>,
        then: Vec<String>,
    },
    Required {
        any: Vec<String>,
        within: Within,
        turns: usize,
    },
    ResponseTime {
        max_seconds: f64,
    },
    Silence {
        max_seconds: f64,
    },
    NegativeStreak {
        turns: usize,
    },
    RepeatQuestion {
        similarity: f32,
        window: usize,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    pub category: String,
    pub severity: Severity,
    pub speaker: Watch,
    /// `None` applies to every language.
    pub language: Option<String>,
    /// The channels the rule applies to; empty: every channel. Timing rules (silence,
    /// response time) mean something else in a chat, where a customer types for a while.
    pub channels: Vec<Channel>,
    pub message: String,
    pub description: Option<String>,
    pub condition: Condition,
    pub origin: Origin,
}

impl Rule {
    pub fn applies_to(&self, language: &str) -> bool {
        self.language.as_deref().is_none_or(|l| l == language)
    }
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptTrigger {
    #[serde(default)]
    pub intents: Vec<String>,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub emotion: Option<EmotionTrigger>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmotionTrigger {
    Negative,
    Escalating,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub id: String,
    pub title: String,
    pub tier: Tier,
    pub language: Option<String>,
    pub priority: u32,
    pub body: String,
    pub trigger: ScriptTrigger,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    pub id: String,
    #[serde(default)]
    pub name_zh: Option<String>,
    #[serde(default)]
    pub name_en: Option<String>,
    pub keywords: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sarcasm {
    #[serde(default)]
    pub praise: Vec<String>,
    #[serde(default)]
    pub failure: Vec<String>,
}

/// An emotion lexicon for one language.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lexicon {
    pub language: String,
    #[serde(default)]
    pub negation: Vec<String>,
    #[serde(default)]
    pub degree: BTreeMap<String, f32>,
    #[serde(default)]
    pub words: BTreeMap<String, f32>,
    #[serde(default)]
    pub sarcasm: Sarcasm,
}

/// A knowledge article split into paragraphs (each indexed on its own).
#[derive(Debug, Clone, PartialEq)]
pub struct Article {
    pub id: String,
    pub title: String,
    pub tags: Vec<String>,
    pub language: String,
    pub paragraphs: Vec<String>,
    pub origin: Origin,
}

/// A whole, validated pack.
#[derive(Debug, Clone, PartialEq)]
pub struct Pack {
    pub meta: PackMeta,
    pub rules: Vec<Rule>,
    pub scripts: Vec<Script>,
    pub intents: Vec<Intent>,
    pub lexicons: Vec<Lexicon>,
    pub articles: Vec<Article>,
}

/// The categories every pack may use without declaring them; part of the output contract.
pub const STANDARD_CATEGORIES: &[&str] = &[
    "abuse",
    "misleading_promise",
    "forbidden_phrase",
    "complaint_risk",
    "required_disclosure",
    "repeat_question",
    "response_timeout",
    "customer_escalation",
    "greeting",
    "closing",
];

impl Pack {
    /// Parses and validates a pack from its files. Files are recognized by path:
    /// `pack.toml`, `intents.toml`, `emotion/*.toml`, `rules/*.toml`, `scripts/*.toml`,
    /// `articles/**/*.md`; anything else is ignored (README files, for instance).
    pub fn parse(files: &[PackFile]) -> Result<Pack, PackErrors> {
        let mut errors = Vec::new();
        let mut meta = None;
        let mut rules = Vec::new();
        let mut scripts = Vec::new();
        let mut intents = Vec::new();
        let mut lexicons = Vec::new();
        let mut articles = Vec::new();

        let mut sorted: Vec<&PackFile> = files.iter().collect();
        sorted.sort_by(|a, b| a.path.cmp(&b.path));
        for file in sorted {
            let path = file.path.replace('\\', "/");
            let result = if path == "pack.toml" {
                parse_toml::<PackMeta>(file).map(|m| meta = Some(m))
            } else if path == "intents.toml" {
                parse_toml::<IntentsFile>(file).map(|f| intents.extend(f.intent))
            } else if path.starts_with("emotion/") && path.ends_with(".toml") {
                parse_toml::<Lexicon>(file).map(|l| lexicons.push(l))
            } else if path.starts_with("rules/") && path.ends_with(".toml") {
                parse_rules(file).map(|r| rules.extend(r))
            } else if path.starts_with("scripts/") && path.ends_with(".toml") {
                parse_scripts(file).map(|s| scripts.extend(s))
            } else if path.starts_with("articles/") && path.ends_with(".md") {
                parse_article(file).map(|a| articles.push(a))
            } else {
                Ok(())
            };
            if let Err(mut e) = result {
                errors.append(&mut e);
            }
        }

        let Some(meta) = meta else {
            errors.push(PackError {
                file: "pack.toml".into(),
                line: 0,
                message: "missing: every pack needs a pack.toml with name and version".into(),
            });
            return Err(PackErrors(errors));
        };
        let pack = Pack {
            meta,
            rules,
            scripts,
            intents,
            lexicons,
            articles,
        };
        pack.check_references(&mut errors);
        if errors.is_empty() {
            Ok(pack)
        } else {
            Err(PackErrors(errors))
        }
    }

    /// Cross-file checks: unique ids, known intents and categories.
    fn check_references(&self, errors: &mut Vec<PackError>) {
        let mut seen = HashSet::new();
        for rule in &self.rules {
            if !seen.insert(rule.id.as_str()) {
                errors.push(at(&rule.origin, format!("duplicate rule id `{}`", rule.id)));
            }
        }
        let mut seen = HashSet::new();
        for script in &self.scripts {
            if !seen.insert(script.id.as_str()) {
                errors.push(at(
                    &script.origin,
                    format!("duplicate script id `{}`", script.id),
                ));
            }
        }
        let mut seen = HashSet::new();
        for article in &self.articles {
            if !seen.insert(article.id.as_str()) {
                errors.push(at(
                    &article.origin,
                    format!("duplicate article id `{}`", article.id),
                ));
            }
        }
        let intents: HashSet<&str> = self.intents.iter().map(|i| i.id.as_str()).collect();
        let categories: HashSet<&str> = self
            .rules
            .iter()
            .map(|r| r.category.as_str())
            .chain(STANDARD_CATEGORIES.iter().copied())
            .collect();
        for script in &self.scripts {
            for intent in &script.trigger.intents {
                if !intents.contains(intent.as_str()) {
                    errors.push(at(
                        &script.origin,
                        format!(
                            "script `{}` triggers on unknown intent `{intent}` (define it in intents.toml)",
                            script.id
                        ),
                    ));
                }
            }
            for category in &script.trigger.categories {
                if !categories.contains(category.as_str()) {
                    errors.push(at(
                        &script.origin,
                        format!(
                            "script `{}` triggers on category `{category}` that no rule uses",
                            script.id
                        ),
                    ));
                }
            }
        }
    }
}

fn at(origin: &Origin, message: String) -> PackError {
    PackError {
        file: origin.file.clone(),
        line: origin.line,
        message,
    }
}

fn line_of(contents: &str, offset: usize) -> usize {
    contents[..offset.min(contents.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

fn parse_toml<T: serde::de::DeserializeOwned>(file: &PackFile) -> Result<T, Vec<PackError>> {
    toml::from_str(&file.contents).map_err(|e| {
        let line = e
            .span()
            .map(|span| line_of(&file.contents, span.start))
            .unwrap_or(0);
        vec![PackError {
            file: file.path.clone(),
            line,
            message: e.message().trim().to_string(),
        }]
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntentsFile {
    #[serde(default)]
    intent: Vec<Intent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    /// Each rule is deserialized on its own, so one bad rule does not hide the others.
    #[serde(default)]
    rule: Vec<toml::Spanned<toml::Value>>,
}

/// A rule as written: every kind's fields optional, checked against its kind in [`RawRule::validate`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    category: String,
    severity: Severity,
    speaker: Watch,
    #[serde(default)]
    language: Option<String>,
    channels: Option<Vec<Channel>>,
    message: String,
    #[serde(default)]
    description: Option<String>,
    kind: String,
    any: Option<Vec<String>>,
    all: Option<Vec<String>>,
    unless: Option<Vec<String>>,
    negation: Option<bool>,
    patterns: Option<Vec<String>>,
    trigger: Option<Vec<String>>,
    trigger_speaker: Option<Watch>,
    require: Option<Vec<RequireItem>>,
    first: Option<Vec<String>>,
    then: Option<Vec<String>>,
    within: Option<Within>,
    turns: Option<usize>,
    max_seconds: Option<f64>,
    similarity: Option<f32>,
    window: Option<usize>,
}

const RULE_KINDS: &str = "keywords, regex, disclosure, order, required, response_time, silence, negative_streak, repeat_question";

impl RawRule {
    fn validate(self, origin: Origin) -> Result<Rule, String> {
        let allowed: &[&str] = match self.kind.as_str() {
            "keywords" => &["any", "all", "unless", "negation"],
            "regex" => &["patterns", "unless", "negation"],
            "disclosure" => &["trigger", "trigger_speaker", "require"],
            "order" => &["first", "then"],
            "required" => &["any", "within", "turns"],
            "response_time" | "silence" => &["max_seconds"],
            "negative_streak" => &["turns"],
            "repeat_question" => &["similarity", "window"],
            other => {
                return Err(format!(
                    "unknown kind `{other}`; expected one of: {RULE_KINDS}"
                ))
            }
        };
        let present = [
            ("any", self.any.is_some()),
            ("all", self.all.is_some()),
            ("unless", self.unless.is_some()),
            ("negation", self.negation.is_some()),
            ("patterns", self.patterns.is_some()),
            ("trigger", self.trigger.is_some()),
            ("trigger_speaker", self.trigger_speaker.is_some()),
            ("require", self.require.is_some()),
            ("first", self.first.is_some()),
            ("then", self.then.is_some()),
            ("within", self.within.is_some()),
            ("turns", self.turns.is_some()),
            ("max_seconds", self.max_seconds.is_some()),
            ("similarity", self.similarity.is_some()),
            ("window", self.window.is_some()),
        ];
        for (field, is_set) in present {
            if is_set && !allowed.contains(&field) {
                return Err(format!(
                    "field `{field}` does not apply to kind `{}` (it takes: {})",
                    self.kind,
                    allowed.join(", ")
                ));
            }
        }
        if self.id.trim().is_empty() {
            return Err("rule id must not be empty".into());
        }
        if self.message.trim().is_empty() {
            return Err(format!("rule `{}` needs a message for the agent", self.id));
        }
        let phrases = |name: &str, list: Option<Vec<String>>| -> Result<Vec<String>, String> {
            let list = list.unwrap_or_default();
            if list.iter().any(|p| p.trim().is_empty()) {
                return Err(format!("`{name}` contains an empty phrase"));
            }
            Ok(list)
        };
        let needs = |name: &str, list: &[String]| -> Result<(), String> {
            if list.is_empty() {
                Err(format!(
                    "kind `{}` needs a non-empty `{name}` list",
                    self.kind
                ))
            } else {
                Ok(())
            }
        };
        let positive = |name: &str, value: Option<f64>| -> Result<f64, String> {
            match value {
                Some(v) if v > 0.0 && v.is_finite() => Ok(v),
                Some(v) => Err(format!(
                    "`{name}` must be a positive number of seconds, got {v}"
                )),
                None => Err(format!("kind `{}` needs `{name}`", self.kind)),
            }
        };
        let condition = match self.kind.as_str() {
            "keywords" => {
                let any = phrases("any", self.any)?;
                let all = phrases("all", self.all)?;
                if any.is_empty() && all.is_empty() {
                    return Err("kind `keywords` needs `any` or `all`".into());
                }
                Condition::Keywords {
                    any,
                    all,
                    unless: phrases("unless", self.unless)?,
                    negation: self.negation.unwrap_or(true),
                }
            }
            "regex" => {
                let patterns = phrases("patterns", self.patterns)?;
                needs("patterns", &patterns)?;
                for p in &patterns {
                    regex::Regex::new(p).map_err(|e| format!("invalid regex `{p}`: {e}"))?;
                }
                Condition::Regex {
                    patterns,
                    unless: phrases("unless", self.unless)?,
                    negation: self.negation.unwrap_or(true),
                }
            }
            "disclosure" => {
                let trigger = phrases("trigger", self.trigger)?;
                needs("trigger", &trigger)?;
                let require = self.require.unwrap_or_default();
                if require.is_empty() {
                    return Err("kind `disclosure` needs a non-empty `require` list".into());
                }
                for item in &require {
                    if item.any.is_empty() || item.any.iter().any(|p| p.trim().is_empty()) {
                        return Err(format!(
                            "require item `{}` needs non-empty phrases",
                            item.item
                        ));
                    }
                }
                Condition::Disclosure {
                    trigger,
                    trigger_speaker: self.trigger_speaker.unwrap_or(Watch::Customer),
                    require,
                }
            }
            "order" => {
                let first = phrases("first", self.first)?;
                let then = phrases("then", self.then)?;
                needs("first", &first)?;
                needs("then", &then)?;
                Condition::Order { first, then }
            }
            "required" => {
                let any = phrases("any", self.any)?;
                needs("any", &any)?;
                Condition::Required {
                    any,
                    within: self.within.ok_or(
                        "kind `required` needs `within` = \"first_turns\" or \"last_turns\"",
                    )?,
                    turns: self.turns.unwrap_or(2).max(1),
                }
            }
            "response_time" => Condition::ResponseTime {
                max_seconds: positive("max_seconds", self.max_seconds)?,
            },
            "silence" => Condition::Silence {
                max_seconds: positive("max_seconds", self.max_seconds)?,
            },
            "negative_streak" => Condition::NegativeStreak {
                turns: self
                    .turns
                    .ok_or("kind `negative_streak` needs `turns`")?
                    .max(1),
            },
            "repeat_question" => {
                let similarity = self.similarity.unwrap_or(0.6);
                if !(0.0..=1.0).contains(&similarity) {
                    return Err(format!(
                        "`similarity` must be within 0..1, got {similarity}"
                    ));
                }
                Condition::RepeatQuestion {
                    similarity,
                    window: self.window.unwrap_or(8).max(1),
                }
            }
            _ => unreachable!("kind checked above"),
        };
        let channels = match self.channels {
            Some(list) if list.is_empty() => {
                return Err(
                    "`channels` is empty; leave it out for a rule of every channel".to_string(),
                )
            }
            Some(list) => list,
            None => Vec::new(),
        };
        Ok(Rule {
            id: self.id,
            category: self.category,
            severity: self.severity,
            speaker: self.speaker,
            language: self.language.filter(|l| l != "any"),
            channels,
            message: self.message,
            description: self.description,
            condition,
            origin,
        })
    }
}

fn parse_rules(file: &PackFile) -> Result<Vec<Rule>, Vec<PackError>> {
    let parsed: RulesFile = parse_toml(file)?;
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    for spanned in parsed.rule {
        let origin = Origin {
            file: file.path.clone(),
            line: line_of(&file.contents, spanned.span().start),
        };
        let raw: RawRule = match spanned.into_inner().try_into() {
            Ok(raw) => raw,
            Err(e) => {
                errors.push(at(&origin, e.message().trim().to_string()));
                continue;
            }
        };
        match raw.validate(origin.clone()) {
            Ok(rule) => rules.push(rule),
            Err(message) => errors.push(at(&origin, message)),
        }
    }
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(errors)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptsFile {
    #[serde(default)]
    script: Vec<toml::Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScript {
    id: String,
    title: String,
    tier: Tier,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    priority: Option<u32>,
    body: String,
    #[serde(default)]
    trigger: ScriptTrigger,
}

fn parse_scripts(file: &PackFile) -> Result<Vec<Script>, Vec<PackError>> {
    let parsed: ScriptsFile = parse_toml(file)?;
    let mut scripts = Vec::new();
    let mut errors = Vec::new();
    for spanned in parsed.script {
        let origin = Origin {
            file: file.path.clone(),
            line: line_of(&file.contents, spanned.span().start),
        };
        let raw: RawScript = match spanned.into_inner().try_into() {
            Ok(raw) => raw,
            Err(e) => {
                errors.push(at(&origin, e.message().trim().to_string()));
                continue;
            }
        };
        let trigger = &raw.trigger;
        if raw.body.trim().is_empty() {
            errors.push(at(
                &origin,
                format!("script `{}` has an empty body", raw.id),
            ));
            continue;
        }
        if trigger.intents.is_empty()
            && trigger.keywords.is_empty()
            && trigger.categories.is_empty()
            && trigger.emotion.is_none()
        {
            errors.push(at(
                &origin,
                format!(
                    "script `{}` has no trigger (intents, keywords, categories or emotion)",
                    raw.id
                ),
            ));
            continue;
        }
        let priority = raw.priority.unwrap_or(50);
        if priority > 100 {
            errors.push(at(
                &origin,
                format!("priority must be 0..100, got {priority}"),
            ));
            continue;
        }
        scripts.push(Script {
            id: raw.id,
            title: raw.title,
            tier: raw.tier,
            language: raw.language.filter(|l| l != "any"),
            priority,
            body: raw.body.trim().to_string(),
            trigger: raw.trigger,
            origin,
        });
    }
    if errors.is_empty() {
        Ok(scripts)
    } else {
        Err(errors)
    }
}

/// Parses a markdown article with a `---` front matter of `key: value` lines.
fn parse_article(file: &PackFile) -> Result<Article, Vec<PackError>> {
    let fail = |line: usize, message: String| {
        vec![PackError {
            file: file.path.clone(),
            line,
            message,
        }]
    };
    let mut lines = file.contents.lines().enumerate();
    match lines.next() {
        Some((_, first)) if first.trim() == "---" => {}
        _ => {
            return Err(fail(
                1,
                "an article must start with a `---` front matter".into(),
            ))
        }
    }
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    let mut body_start = None;
    for (i, line) in lines.by_ref() {
        if line.trim() == "---" {
            body_start = Some(i + 1);
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(fail(i + 1, format!("expected `key: value`, got `{line}`")));
        };
        fields.insert(key.trim().to_string(), value.trim().to_string());
    }
    if body_start.is_none() {
        return Err(fail(0, "the front matter is not closed by `---`".into()));
    }
    let take = |key: &str| -> Result<String, Vec<PackError>> {
        fields
            .get(key)
            .map(|v| v.trim_matches('"').to_string())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| fail(1, format!("front matter needs `{key}`")))
    };
    let tags = fields
        .get("tags")
        .map(|v| {
            v.trim_start_matches('[')
                .trim_end_matches(']')
                .split(',')
                .map(|t| t.trim().trim_matches('"').to_string())
                .filter(|t| !t.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let body: Vec<&str> = lines.map(|(_, l)| l).collect();
    let paragraphs: Vec<String> = body
        .split(|l| l.trim().is_empty())
        .map(|p| p.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty() && !p.starts_with('#'))
        .collect();
    if paragraphs.is_empty() {
        return Err(fail(0, "the article has no text".into()));
    }
    Ok(Article {
        id: take("id")?,
        title: take("title")?,
        tags,
        language: take("language")?,
        paragraphs,
        origin: Origin {
            file: file.path.clone(),
            line: 1,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, contents: &str) -> PackFile {
        PackFile {
            path: path.into(),
            contents: contents.into(),
        }
    }

    const META: &str = "name = \"t\"\nversion = \"1\"\n";

    #[test]
    fn a_rule_with_a_field_of_another_kind_names_file_and_line() {
        let rules = "\n[[rule]]\nid = \"a\"\ncategory = \"abuse\"\nseverity = \"fatal\"\nspeaker = \"agent\"\nmessage = \"m\"\nkind = \"keywords\"\nany = [\"x\"]\n\n[[rule]]\nid = \"b\"\ncategory = \"abuse\"\nseverity = \"fatal\"\nspeaker = \"agent\"\nmessage = \"m\"\nkind = \"silence\"\nany = [\"x\"]\n";
        let err = Pack::parse(&[file("pack.toml", META), file("rules/a.toml", rules)])
            .expect_err("silence takes no `any`");
        assert_eq!(err.0.len(), 1);
        assert_eq!(err.0[0].file, "rules/a.toml");
        assert_eq!(err.0[0].line, 11);
        assert!(err.0[0].message.contains("`any`"), "{}", err.0[0].message);
    }

    #[test]
    fn a_toml_syntax_error_names_its_line() {
        let err = Pack::parse(&[file("pack.toml", "name = \"t\"\nversion = \n")])
            .expect_err("broken toml");
        assert_eq!(err.0[0].line, 2, "{}", err);
    }

    #[test]
    fn an_invalid_regex_is_refused() {
        let rules = "[[rule]]\nid = \"a\"\ncategory = \"x\"\nseverity = \"general\"\nspeaker = \"any\"\nmessage = \"m\"\nkind = \"regex\"\npatterns = [\"(unclosed\"]\n";
        let err = Pack::parse(&[file("pack.toml", META), file("rules/r.toml", rules)])
            .expect_err("bad regex");
        assert!(err.to_string().contains("invalid regex"), "{err}");
    }

    #[test]
    fn an_unknown_intent_in_a_script_is_refused() {
        let scripts = "[[script]]\nid = \"s\"\ntitle = \"t\"\ntier = \"basic\"\nbody = \"b\"\n[script.trigger]\nintents = [\"nope\"]\n";
        let err = Pack::parse(&[file("pack.toml", META), file("scripts/s.toml", scripts)])
            .expect_err("unknown intent");
        assert!(err.to_string().contains("unknown intent `nope`"), "{err}");
    }

    #[test]
    fn articles_split_into_paragraphs() {
        let md = "---\nid: a1\ntitle: 退货\ntags: [退货, 换货]\nlanguage: zh\n---\n# 退货\n\n第一段。\n第一段续。\n\n第二段。\n";
        let pack =
            Pack::parse(&[file("pack.toml", META), file("articles/zh/a.md", md)]).expect("valid");
        let article = &pack.articles[0];
        assert_eq!(article.tags, vec!["退货", "换货"]);
        assert_eq!(article.paragraphs, vec!["第一段。 第一段续。", "第二段。"]);
    }

    #[test]
    fn a_pack_without_pack_toml_is_refused() {
        let err = Pack::parse(&[]).expect_err("no meta");
        assert!(err.to_string().contains("pack.toml"));
    }
}
