//! The QC engine end to end: a pack written inline, a call played utterance by utterance, and
//! the alerts and summary the agent and the team lead would see.

mod common;

use assist_engine::{Engine, SessionError};
use assist_protocol::{Channel, Severity};
use common::*;
use std::sync::Arc;

// ---------------------------------------------------------------------------------------------
// Packs used by several stories
// ---------------------------------------------------------------------------------------------

/// Financial promises, Chinese and English, negation-aware (the default).
const PROMISE_RULES: &str = r#"
[[rule]]
id = "misleading_promise.guaranteed_return.zh"
category = "misleading_promise"
severity = "fatal"
speaker = "agent"
language = "zh"
message = "不得承诺保本保收益"
kind = "keywords"
any = ["保本", "保证收益", "零风险"]

[[rule]]
id = "misleading_promise.guaranteed_return.en"
category = "misleading_promise"
severity = "fatal"
speaker = "agent"
language = "en"
message = "Never promise guaranteed returns"
kind = "keywords"
any = ["guaranteed", "risk-free"]
"#;

/// The three things an agent owes a customer who wants to return something. The message does
/// not name the items, so the alert's mention of them comes from the missing-item list.
const RETURN_DISCLOSURE: &str = r#"
[[rule]]
id = "required_disclosure.return_terms.zh"
category = "required_disclosure"
severity = "serious"
speaker = "agent"
language = "zh"
message = "客户提出退换货，请完整告知退货三要素"
kind = "disclosure"
trigger = ["退货", "换货"]

[[rule.require]]
item = "退货地址"
any = ["退货地址", "寄回地址"]

[[rule.require]]
item = "运费承担"
any = ["运费"]

[[rule.require]]
item = "验货时效"
any = ["验货"]
"#;

const RETURN_RULE: &str = "required_disclosure.return_terms.zh";

/// A small Chinese emotion lexicon for the streak stories.
const ZH_LEXICON: &str = r#"
language = "zh"
negation = ["不", "没"]
[words]
"生气" = -2.5
"太慢" = -2.0
"气死" = -3.0
"失望" = -2.0
"满意" = 2.0
"谢谢" = 1.5
"#;

fn promise_engine() -> Arc<Engine> {
    engine(PACK_TOML, PROMISE_RULES)
}

// ---------------------------------------------------------------------------------------------
// keywords: any / all / unless
// ---------------------------------------------------------------------------------------------

#[test]
fn an_agent_promising_principal_protection_gets_a_fatal_alert_on_that_utterance() {
    let engine = promise_engine();
    let mut call = Call::start(&engine, "zh");
    let greeting = call.say((0.0, 2.0, AGENT, "您好，请问有什么可以帮您"));
    assert!(
        rule_ids(&greeting).is_empty(),
        "a greeting is not a promise"
    );

    let promise = call.say((5.0, 8.0, AGENT, "放心，这款产品保本"));

    let alerts = alerts_in(&promise);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    assert_eq!(alert.rule, "misleading_promise.guaranteed_return.zh");
    assert_eq!(alert.category, "misleading_promise");
    assert_eq!(alert.severity, Severity::Fatal);
    assert_eq!(alert.speaker, AGENT);
    assert_eq!(alert.t, 5.0);
    assert_eq!(alert.text, "放心，这款产品保本");
    assert_eq!(alert.message, "不得承诺保本保收益");
}

#[test]
fn a_customer_asking_whether_a_product_is_principal_protected_does_not_trip_an_agent_rule() {
    let engine = promise_engine();
    let (events, summary) = run_call(
        &engine,
        "zh",
        &[(0.0, 3.0, CUSTOMER, "这个产品保本吗，零风险吗")],
        5.0,
    );
    assert!(rule_ids(&events).is_empty(), "{:?}", rule_ids(&events));
    assert_eq!(hits(&summary, "misleading_promise.guaranteed_return.zh"), 0);
}

#[test]
fn a_rule_with_all_fires_only_when_the_agent_says_every_phrase() {
    let rules = r#"
[[rule]]
id = "misleading_promise.doubling.zh"
category = "misleading_promise"
severity = "fatal"
speaker = "agent"
message = "不得承诺收益翻倍"
kind = "keywords"
all = ["收益", "翻倍"]
"#;
    let engine = engine(PACK_TOML, rules);
    let mut call = Call::start(&engine, "zh");
    let only_yield = call.say((0.0, 2.0, AGENT, "这个产品的收益很稳定"));
    let only_doubling = call.say((3.0, 5.0, AGENT, "去年的销量翻倍了"));
    let both = call.say((6.0, 8.0, AGENT, "买了以后收益能翻倍"));

    assert!(rule_ids(&only_yield).is_empty());
    assert!(rule_ids(&only_doubling).is_empty());
    assert_eq!(rule_ids(&both), vec!["misleading_promise.doubling.zh"]);
}

#[test]
fn an_unless_phrase_excuses_an_insurance_product_name_that_contains_a_forbidden_word() {
    let rules = r#"
[[rule]]
id = "forbidden_phrase.superlative.zh"
category = "forbidden_phrase"
severity = "serious"
speaker = "agent"
message = "请勿使用绝对化用语"
kind = "keywords"
any = ["万能"]
unless = ["万能险"]
"#;
    let engine = engine(PACK_TOML, rules);
    let mut call = Call::start(&engine, "zh");
    let product_name = call.say((0.0, 3.0, AGENT, "这款万能险的保障期是二十年"));
    let boast = call.say((4.0, 6.0, AGENT, "这个产品是万能的"));

    assert!(
        rule_ids(&product_name).is_empty(),
        "万能险 is a product type"
    );
    assert_eq!(rule_ids(&boast), vec!["forbidden_phrase.superlative.zh"]);
}

#[test]
fn a_vosk_transcript_with_spaces_between_chinese_words_still_matches() {
    let engine = promise_engine();
    let (events, _) = run_call(
        &engine,
        "zh",
        &[(0.0, 3.0, AGENT, "这款 产品 保 本 的")],
        4.0,
    );
    assert_eq!(
        rule_ids(&events),
        vec!["misleading_promise.guaranteed_return.zh"]
    );
}

// ---------------------------------------------------------------------------------------------
// negation
// ---------------------------------------------------------------------------------------------

#[test]
fn each_chinese_guarantee_an_agent_makes_raises_its_own_alert() {
    let engine = promise_engine();
    let (events, summary) = run_call(
        &engine,
        "zh",
        &[
            (0.0, 2.0, AGENT, "这款产品保本"),
            (3.0, 5.0, AGENT, "我们保证收益"),
            (6.0, 8.0, AGENT, "这个产品零风险"),
        ],
        10.0,
    );
    let alerts = alerts_in(&events);
    let times: Vec<f64> = alerts.iter().map(|a| a.t).collect();
    assert_eq!(times, vec![0.0, 3.0, 6.0], "{alerts:?}");
    assert_eq!(hits(&summary, "misleading_promise.guaranteed_return.zh"), 3);
}

#[test]
fn chinese_risk_disclaimers_are_negations_and_raise_nothing() {
    let engine = promise_engine();
    let (events, summary) = run_call(
        &engine,
        "zh",
        &[
            (0.0, 2.0, AGENT, "这款产品不保本"),
            (3.0, 5.0, AGENT, "我们无法保证收益"),
            (6.0, 8.0, AGENT, "这个产品并不是零风险"),
        ],
        10.0,
    );
    assert!(rule_ids(&events).is_empty(), "{:?}", alerts_in(&events));
    assert_eq!(summary.score, 100);
}

#[test]
fn an_apology_before_a_guarantee_is_not_a_negation() {
    let engine = promise_engine();
    let (events, _) = run_call(&engine, "zh", &[(0.0, 2.0, AGENT, "不好意思保本的")], 3.0);
    assert_eq!(
        rule_ids(&events),
        vec!["misleading_promise.guaranteed_return.zh"],
        "不好意思 is politeness, not a negation of 保本"
    );
}

#[test]
fn each_english_guarantee_an_agent_makes_raises_its_own_alert() {
    let engine = promise_engine();
    let (events, summary) = run_call(
        &engine,
        "en",
        &[
            (0.0, 2.0, AGENT, "Your returns are guaranteed"),
            (3.0, 5.0, AGENT, "This fund is risk-free"),
        ],
        6.0,
    );
    let alerts = alerts_in(&events);
    let times: Vec<f64> = alerts.iter().map(|a| a.t).collect();
    assert_eq!(times, vec![0.0, 3.0], "{alerts:?}");
    assert_eq!(hits(&summary, "misleading_promise.guaranteed_return.en"), 2);
}

#[test]
fn english_risk_disclaimers_are_negations_and_raise_nothing() {
    let engine = promise_engine();
    let (events, summary) = run_call(
        &engine,
        "en",
        &[
            (0.0, 2.0, AGENT, "Returns are not guaranteed"),
            (3.0, 5.0, AGENT, "We can't promise guaranteed returns"),
            (6.0, 8.0, AGENT, "This fund is not risk-free"),
        ],
        10.0,
    );
    assert!(rule_ids(&events).is_empty(), "{:?}", alerts_in(&events));
    assert_eq!(summary.score, 100);
}

#[test]
fn a_chat_agent_typing_the_disclaimer_with_a_typographic_apostrophe_is_not_flagged() {
    // On the chat channel, keyboards write can’t / aren’t with U+2019, not ASCII '.
    let engine = promise_engine();
    let (events, summary) = run_call(
        &engine,
        "en",
        &[
            (
                0.0,
                2.0,
                AGENT,
                "We can\u{2019}t promise guaranteed returns",
            ),
            (3.0, 5.0, AGENT, "Returns aren\u{2019}t guaranteed"),
        ],
        6.0,
    );
    assert!(rule_ids(&events).is_empty(), "{:?}", alerts_in(&events));
    assert_eq!(summary.score, 100);
}

#[test]
fn an_insult_still_fires_when_negated_if_its_rule_turns_negation_off() {
    // The same phrases in two rules: the abuse rule has `negation = false`, the control rule
    // keeps the default and so shows the utterances really are negated.
    let rules = r#"
[[rule]]
id = "abuse.insult"
category = "abuse"
severity = "fatal"
speaker = "agent"
message = "禁止辱骂客户"
kind = "keywords"
negation = false
any = ["傻", "stupid"]

[[rule]]
id = "control.negation_aware"
category = "abuse"
severity = "general"
speaker = "agent"
message = "control"
kind = "keywords"
any = ["傻", "stupid"]
"#;
    let engine = engine(PACK_TOML, rules);

    let (zh, _) = run_call(&engine, "zh", &[(0.0, 2.0, AGENT, "你不是傻吧")], 3.0);
    assert_eq!(rule_ids(&zh), vec!["abuse.insult"]);

    let (en, _) = run_call(
        &engine,
        "en",
        &[(0.0, 2.0, AGENT, "I'm not saying you're stupid")],
        3.0,
    );
    assert_eq!(rule_ids(&en), vec!["abuse.insult"]);

    let (plain, _) = run_call(&engine, "zh", &[(0.0, 2.0, AGENT, "你真傻")], 3.0);
    assert_eq!(
        rule_ids(&plain),
        vec!["abuse.insult", "control.negation_aware"],
        "without a negation both rules fire"
    );
}

const COMPLAINT_RULE: &str = r#"
[[rule]]
id = "complaint_risk.threat.zh"
category = "complaint_risk"
severity = "serious"
speaker = "customer"
language = "zh"
message = "客户有投诉倾向，请先安抚致歉"
kind = "keywords"
any = ["投诉"]
"#;

#[test]
fn a_customer_who_says_they_are_not_complaining_is_not_flagged() {
    let engine = engine(PACK_TOML, COMPLAINT_RULE);
    let (events, _) = run_call(&engine, "zh", &[(0.0, 2.0, CUSTOMER, "我不是要投诉")], 3.0);
    assert!(rule_ids(&events).is_empty(), "{:?}", alerts_in(&events));
}

#[test]
fn a_customer_whose_parcel_never_came_and_who_threatens_to_complain_is_flagged() {
    // Vosk writes no punctuation: 没 negates 到 (the parcel never came), not 投诉.
    let engine = engine(PACK_TOML, COMPLAINT_RULE);
    let (events, _) = run_call(
        &engine,
        "zh",
        &[(0.0, 3.0, CUSTOMER, "快递一直没到我要投诉")],
        4.0,
    );
    assert_eq!(rule_ids(&events), vec!["complaint_risk.threat.zh"]);
}

// ---------------------------------------------------------------------------------------------
// regex
// ---------------------------------------------------------------------------------------------

const YIELD_RULE: &str = r#"
[[rule]]
id = "misleading_promise.high_yield.zh"
category = "misleading_promise"
severity = "fatal"
speaker = "agent"
message = "不得夸大收益"
kind = "regex"
patterns = ['年化收益率?[2-9]\d%']
"#;

#[test]
fn an_agent_quoting_a_thirty_percent_annual_yield_is_caught_by_the_regex_rule() {
    let engine = engine(PACK_TOML, YIELD_RULE);
    let (events, summary) = run_call(
        &engine,
        "zh",
        &[(0.0, 3.0, AGENT, "这款产品年化收益30%")],
        4.0,
    );
    assert_eq!(rule_ids(&events), vec!["misleading_promise.high_yield.zh"]);
    assert_eq!(summary.score, 0);
}

#[test]
fn a_modest_yield_or_a_refusal_to_promise_one_passes_the_regex_rule() {
    let engine = engine(PACK_TOML, YIELD_RULE);
    let (events, summary) = run_call(
        &engine,
        "zh",
        &[
            (0.0, 3.0, AGENT, "这款产品年化收益3%左右"),
            (4.0, 7.0, AGENT, "我们无法承诺年化收益30%"),
        ],
        8.0,
    );
    assert!(rule_ids(&events).is_empty(), "{:?}", alerts_in(&events));
    assert_eq!(summary.score, 100);
}

// ---------------------------------------------------------------------------------------------
// disclosure
// ---------------------------------------------------------------------------------------------

#[test]
fn a_return_request_without_the_return_address_fails_required_disclosure_at_call_end() {
    let engine = engine(PACK_TOML, RETURN_DISCLOSURE);
    let mut call = Call::start(&engine, "zh");
    let during = call.feed(&[
        (0.0, 3.0, CUSTOMER, "这件衣服我想退货"),
        (
            4.0,
            9.0,
            AGENT,
            "好的，运费由我们承担，仓库收到后两天内验货",
        ),
    ]);
    assert!(
        rule_ids(&during).is_empty(),
        "a disclosure is owed by the end of the call, not on the spot"
    );

    let summary = call.end(60.0);

    let alerts = call.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    assert_eq!(alert.rule, RETURN_RULE);
    assert_eq!(alert.t, 60.0);
    assert_eq!(alert.speaker, AGENT);
    assert!(alert.message.contains("退货地址"), "{}", alert.message);
    assert!(!alert.message.contains("运费承担"), "{}", alert.message);
    assert!(!alert.message.contains("验货时效"), "{}", alert.message);
    assert_eq!(hits(&summary, RETURN_RULE), 1);
}

#[test]
fn a_return_request_answered_with_nothing_names_every_missing_item() {
    let engine = engine(PACK_TOML, RETURN_DISCLOSURE);
    let (events, _) = run_call(
        &engine,
        "zh",
        &[
            (0.0, 3.0, CUSTOMER, "我要换货"),
            (4.0, 6.0, AGENT, "好的，我帮您登记一下"),
        ],
        30.0,
    );
    let alerts = alerts_in(&events);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    for item in ["退货地址", "运费承担", "验货时效"] {
        assert!(alerts[0].message.contains(item), "{}", alerts[0].message);
    }
}

#[test]
fn a_return_request_with_every_item_disclosed_passes() {
    let engine = engine(PACK_TOML, RETURN_DISCLOSURE);
    let (events, summary) = run_call(
        &engine,
        "zh",
        &[
            (0.0, 3.0, CUSTOMER, "这件衣服我想退货"),
            (4.0, 7.0, AGENT, "退货地址我发到您手机上"),
            (8.0, 11.0, AGENT, "运费由我们承担，仓库收到后两天内验货"),
        ],
        30.0,
    );
    assert!(rule_ids(&events).is_empty(), "{:?}", alerts_in(&events));
    assert_eq!(hits(&summary, RETURN_RULE), 0);
}

#[test]
fn disclosure_items_said_before_the_customer_asks_to_return_still_count() {
    let engine = engine(PACK_TOML, RETURN_DISCLOSURE);
    let (events, summary) = run_call(
        &engine,
        "zh",
        &[
            (
                0.0,
                6.0,
                AGENT,
                "我们的寄回地址在页面上，运费我们出，仓库两天内验货",
            ),
            (7.0, 9.0, CUSTOMER, "那我要退货"),
            (10.0, 11.0, AGENT, "好的"),
        ],
        30.0,
    );
    assert!(rule_ids(&events).is_empty(), "{:?}", alerts_in(&events));
    assert_eq!(hits(&summary, RETURN_RULE), 0);
}

#[test]
fn a_call_without_a_return_request_owes_no_return_disclosure() {
    // The customer asks about shipping, and the agent (not the customer) mentions returns:
    // neither arms the rule, which waits for the customer to ask for a return.
    let engine = engine(PACK_TOML, RETURN_DISCLOSURE);
    let (events, summary) = run_call(
        &engine,
        "zh",
        &[
            (0.0, 3.0, CUSTOMER, "我的快递到哪了，这单运费是多少"),
            (4.0, 7.0, AGENT, "已经到您所在的城市了，本店支持退货"),
        ],
        30.0,
    );
    assert!(rule_ids(&events).is_empty(), "{:?}", alerts_in(&events));
    assert_eq!(hits(&summary, RETURN_RULE), 0);
}

#[test]
fn a_customer_asking_for_a_seven_day_no_reason_return_arms_the_disclosure() {
    // 七天无理由退货 is the commonest way to ask for a return: 无 negates 理由, not 退货.
    let engine = engine(PACK_TOML, RETURN_DISCLOSURE);
    let (events, summary) = run_call(
        &engine,
        "zh",
        &[
            (0.0, 3.0, CUSTOMER, "这双鞋我要七天无理由退货"),
            (4.0, 6.0, AGENT, "好的，我帮您登记一下"),
        ],
        30.0,
    );
    assert_eq!(rule_ids(&events), vec![RETURN_RULE]);
    assert_eq!(hits(&summary, RETURN_RULE), 1);
}

#[test]
fn a_customer_who_no_longer_wants_to_return_does_not_arm_the_disclosure() {
    let engine = engine(PACK_TOML, RETURN_DISCLOSURE);
    let (events, summary) = run_call(
        &engine,
        "zh",
        &[
            (0.0, 3.0, CUSTOMER, "我不想退货了，还是留着吧"),
            (4.0, 6.0, AGENT, "好的，有问题随时联系我们"),
        ],
        30.0,
    );
    assert!(rule_ids(&events).is_empty(), "{:?}", alerts_in(&events));
    assert_eq!(hits(&summary, RETURN_RULE), 0);
}

// ---------------------------------------------------------------------------------------------
// order
// ---------------------------------------------------------------------------------------------

const VERIFY_RULE: &str = r#"
[[rule]]
id = "process.verify_before_disclose.zh"
category = "process"
severity = "serious"
speaker = "agent"
message = "请先核实客户身份再透露账户信息"
kind = "order"
first = ["核实您的身份", "身份证后四位"]
then = ["余额是"]
"#;

#[test]
fn reading_out_the_balance_before_verifying_identity_fires_once() {
    let engine = engine(PACK_TOML, VERIFY_RULE);
    let mut call = Call::start(&engine, "zh");
    let leak = call.say((0.0, 3.0, AGENT, "您卡里的余额是三千元"));
    let rest = call.feed(&[
        (4.0, 6.0, AGENT, "对，余额是三千元"),
        (7.0, 9.0, AGENT, "麻烦您报一下身份证后四位"),
        (10.0, 12.0, AGENT, "好的，余额是三千元"),
    ]);
    let summary = call.end(13.0);

    assert_eq!(rule_ids(&leak), vec!["process.verify_before_disclose.zh"]);
    assert!(rule_ids(&rest).is_empty(), "{:?}", alerts_in(&rest));
    assert_eq!(hits(&summary, "process.verify_before_disclose.zh"), 1);
}

#[test]
fn verifying_identity_before_reading_out_the_balance_is_fine() {
    let engine = engine(PACK_TOML, VERIFY_RULE);
    let (events, summary) = run_call(
        &engine,
        "zh",
        &[
            (0.0, 3.0, AGENT, "我先核实您的身份"),
            (4.0, 6.0, CUSTOMER, "好的"),
            (7.0, 9.0, AGENT, "您的余额是三千元"),
        ],
        10.0,
    );
    assert!(rule_ids(&events).is_empty(), "{:?}", alerts_in(&events));
    assert_eq!(hits(&summary, "process.verify_before_disclose.zh"), 0);
}

// ---------------------------------------------------------------------------------------------
// required: greeting (first turns) and closing (last turns)
// ---------------------------------------------------------------------------------------------

const GREETING_AND_CLOSING: &str = r#"
[[rule]]
id = "greeting.opening.zh"
category = "greeting"
severity = "general"
speaker = "agent"
message = "请使用规范问候语"
kind = "required"
within = "first_turns"
turns = 2
any = ["您好", "很高兴为您服务"]

[[rule]]
id = "closing.ending.zh"
category = "closing"
severity = "general"
speaker = "agent"
message = "请使用规范结束语"
kind = "required"
within = "last_turns"
turns = 2
any = ["感谢您的来电", "再见"]
"#;

#[test]
fn an_agent_who_opens_without_a_greeting_fails_it_on_their_second_turn() {
    let engine = engine(PACK_TOML, GREETING_AND_CLOSING);
    let mut call = Call::start(&engine, "zh");
    let first = call.say((0.0, 2.0, AGENT, "喂，说吧什么事"));
    let customer = call.say((3.0, 5.0, CUSTOMER, "我想查一下订单"));
    let second = call.say((6.0, 8.0, AGENT, "订单号报一下"));
    let later = call.say((9.0, 11.0, AGENT, "您好，已经帮您查到了"));
    call.say((12.0, 14.0, AGENT, "感谢您的来电，再见"));
    let summary = call.end(15.0);

    assert!(rule_ids(&first).is_empty(), "one turn is not yet two");
    assert!(rule_ids(&customer).is_empty());
    let alerts = alerts_in(&second);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].rule, "greeting.opening.zh");
    assert_eq!(alerts[0].t, 6.0);
    assert!(
        rule_ids(&later).is_empty(),
        "a late greeting does not undo it"
    );
    assert_eq!(hits(&summary, "greeting.opening.zh"), 1, "decided once");
}

#[test]
fn an_agent_who_greets_in_the_first_turns_and_closes_properly_passes_both() {
    let engine = engine(PACK_TOML, GREETING_AND_CLOSING);
    let (events, summary) = run_call(
        &engine,
        "zh",
        &[
            (0.0, 2.0, AGENT, "您好，很高兴为您服务"),
            (3.0, 5.0, CUSTOMER, "我想查一下订单"),
            (6.0, 8.0, AGENT, "已经帮您查到了，明天送达"),
            (9.0, 10.0, CUSTOMER, "好的谢谢"),
            (11.0, 13.0, AGENT, "感谢您的来电，再见"),
        ],
        14.0,
    );
    assert!(rule_ids(&events).is_empty(), "{:?}", alerts_in(&events));
    assert_eq!(summary.score, 100);
}

#[test]
fn an_agent_who_greets_only_in_their_second_turn_still_passes() {
    let engine = engine(PACK_TOML, GREETING_AND_CLOSING);
    let (events, _) = run_call(
        &engine,
        "zh",
        &[
            (0.0, 1.0, AGENT, "喂"),
            (2.0, 4.0, AGENT, "您好，很高兴为您服务"),
            (5.0, 7.0, AGENT, "感谢您的来电"),
        ],
        8.0,
    );
    assert!(rule_ids(&events).is_empty(), "{:?}", alerts_in(&events));
}

#[test]
fn an_agent_who_thanked_the_customer_early_but_not_at_the_end_fails_the_closing() {
    let engine = engine(PACK_TOML, GREETING_AND_CLOSING);
    let mut call = Call::start(&engine, "zh");
    let during = call.feed(&[
        (0.0, 3.0, AGENT, "您好，感谢您的来电"),
        (4.0, 6.0, CUSTOMER, "我想改地址"),
        (7.0, 9.0, AGENT, "好的，新地址是哪里"),
        (10.0, 12.0, CUSTOMER, "北京市朝阳区"),
        (13.0, 15.0, AGENT, "已经改好了"),
    ]);
    assert!(
        rule_ids(&during).is_empty(),
        "the closing is decided at call end"
    );
    let summary = call.end(20.0);

    let alerts = call.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].rule, "closing.ending.zh");
    assert_eq!(alerts[0].t, 20.0);
    assert_eq!(alerts[0].speaker, AGENT);
    assert_eq!(hits(&summary, "closing.ending.zh"), 1);
}

#[test]
fn a_call_where_the_agent_never_speaks_fails_both_greeting_and_closing_at_call_end() {
    let engine = engine(PACK_TOML, GREETING_AND_CLOSING);
    let mut call = Call::start(&engine, "zh");
    let during = call.feed(&[
        (0.0, 2.0, CUSTOMER, "喂，有人吗"),
        (5.0, 7.0, CUSTOMER, "喂喂"),
    ]);
    assert!(rule_ids(&during).is_empty());
    let summary = call.end(12.0);

    let mut ids = call.alert_ids();
    ids.sort();
    assert_eq!(ids, vec!["closing.ending.zh", "greeting.opening.zh"]);
    assert!(call
        .alerts()
        .iter()
        .all(|a| a.t == 12.0 && a.speaker == AGENT));
    assert_eq!(
        summary.score, 96,
        "two general hits at the default weight 2"
    );
}

// ---------------------------------------------------------------------------------------------
// response_time
// ---------------------------------------------------------------------------------------------

const RESPONSE_RULE: &str = r#"
[[rule]]
id = "response_timeout.slow_answer.zh"
category = "response_timeout"
severity = "general"
speaker = "agent"
message = "客户的问题已超过10秒未回应"
kind = "response_time"
max_seconds = 10
"#;

const SLOW: &str = "response_timeout.slow_answer.zh";

#[test]
fn a_customer_question_answered_after_twenty_seconds_fires_at_the_questions_start() {
    let engine = engine(PACK_TOML, RESPONSE_RULE);
    let mut call = Call::start(&engine, "zh");
    let question = call.say((10.0, 12.0, CUSTOMER, "我的退款什么时候到账"));
    let answer = call.say((32.0, 35.0, AGENT, "退款三到五个工作日到账"));
    let summary = call.end(40.0);

    assert!(rule_ids(&question).is_empty());
    let alerts = alerts_in(&answer);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].rule, SLOW);
    assert_eq!(alerts[0].t, 10.0, "the alert points at the question");
    assert_eq!(alerts[0].speaker, AGENT, "the agent owed the answer");
    assert_eq!(alerts[0].text, "我的退款什么时候到账");
    assert_eq!(hits(&summary, SLOW), 1);
}

#[test]
fn a_customer_question_answered_within_three_seconds_is_fine() {
    let engine = engine(PACK_TOML, RESPONSE_RULE);
    let mut call = Call::start(&engine, "zh");
    call.feed(&[
        (10.0, 12.0, CUSTOMER, "我的退款什么时候到账"),
        (15.0, 18.0, AGENT, "退款三到五个工作日到账"),
    ]);
    let late_tick = call.tick(60.0);
    let summary = call.end(70.0);

    assert!(rule_ids(&late_tick).is_empty(), "the question was answered");
    assert!(call.alert_ids().is_empty(), "{:?}", call.alerts());
    assert_eq!(hits(&summary, SLOW), 0);
}

#[test]
fn a_live_tick_past_the_deadline_fires_once_and_the_late_answer_does_not_fire_it_again() {
    let engine = engine(PACK_TOML, RESPONSE_RULE);
    let mut call = Call::start(&engine, "zh");
    call.say((10.0, 12.0, CUSTOMER, "我的退款什么时候到账"));

    let early = call.tick(20.0);
    let overdue = call.tick(23.0);
    let still_overdue = call.tick(30.0);
    let answer = call.say((40.0, 43.0, AGENT, "不好意思久等了，退款三到五个工作日到账"));
    let summary = call.end(45.0);

    assert!(rule_ids(&early).is_empty(), "8 s after the question");
    let alerts = alerts_in(&overdue);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].rule, SLOW);
    assert_eq!(alerts[0].t, 10.0);
    assert!(rule_ids(&still_overdue).is_empty(), "{still_overdue:?}");
    assert!(rule_ids(&answer).is_empty(), "{answer:?}");
    assert_eq!(hits(&summary, SLOW), 1);
}

#[test]
fn a_question_still_unanswered_when_the_customer_speaks_again_fires_on_that_utterance() {
    // docs/rules.md: the deadline is "checked when the next utterance or a clock tick
    // arrives" -- the next utterance may well be the customer's own "are you still there?".
    let engine = engine(PACK_TOML, RESPONSE_RULE);
    let mut call = Call::start(&engine, "zh");
    call.say((10.0, 12.0, CUSTOMER, "我的退款什么时候到账"));
    let follow_up = call.say((30.0, 32.0, CUSTOMER, "喂，你还在听吗"));
    let summary = call.end(35.0);

    let alerts = alerts_in(&follow_up);
    assert_eq!(alerts.len(), 1, "{follow_up:?}");
    assert_eq!(alerts[0].rule, SLOW);
    assert_eq!(alerts[0].t, 10.0);
    assert_eq!(hits(&summary, SLOW), 1);
}

// ---------------------------------------------------------------------------------------------
// silence
// ---------------------------------------------------------------------------------------------

const SILENCE_RULE: &str = r#"
[[rule]]
id = "process.dead_air.zh"
category = "process"
severity = "general"
speaker = "any"
message = "通话静音超过15秒"
kind = "silence"
max_seconds = 15
"#;

const DEAD_AIR: &str = "process.dead_air.zh";

#[test]
fn dead_air_longer_than_the_limit_fires_once_for_each_gap() {
    let engine = engine(PACK_TOML, SILENCE_RULE);
    let (events, summary) = run_call(
        &engine,
        "zh",
        &[
            (0.0, 3.0, AGENT, "您好，我帮您查一下"),
            (4.0, 6.0, CUSTOMER, "好的"),
            (25.0, 28.0, AGENT, "让您久等了"),
            (29.0, 31.0, CUSTOMER, "没事"),
            (50.0, 52.0, AGENT, "又让您久等了"),
        ],
        55.0,
    );
    let alerts = alerts_in(&events);
    let times: Vec<f64> = alerts.iter().map(|a| a.t).collect();
    assert_eq!(
        times,
        vec![6.0, 31.0],
        "each gap, from where the speech stopped"
    );
    assert!(alerts.iter().all(|a| a.rule == DEAD_AIR));
    assert_eq!(hits(&summary, DEAD_AIR), 2);
}

#[test]
fn dead_air_noticed_by_a_live_tick_is_not_reported_again_when_speech_resumes() {
    let engine = engine(PACK_TOML, SILENCE_RULE);
    let mut call = Call::start(&engine, "zh");
    call.say((0.0, 3.0, AGENT, "请您稍等"));
    let early = call.tick(10.0);
    let late = call.tick(20.0);
    let later = call.tick(25.0);
    let resumed = call.say((30.0, 32.0, AGENT, "让您久等了"));
    let summary = call.end(33.0);

    assert!(rule_ids(&early).is_empty());
    let alerts = alerts_in(&late);
    assert_eq!(rule_ids(&late), vec![DEAD_AIR]);
    assert_eq!(
        alerts[0].t, 3.0,
        "the dead air began when the agent stopped"
    );
    assert!(rule_ids(&later).is_empty());
    assert!(rule_ids(&resumed).is_empty());
    assert_eq!(hits(&summary, DEAD_AIR), 1);
}

#[test]
fn a_brisk_call_has_no_dead_air() {
    let engine = engine(PACK_TOML, SILENCE_RULE);
    let (events, summary) = run_call(
        &engine,
        "zh",
        &[
            (0.0, 3.0, AGENT, "您好"),
            (10.0, 12.0, CUSTOMER, "我想查订单"),
            (26.0, 28.0, AGENT, "查到了"),
        ],
        30.0,
    );
    assert!(rule_ids(&events).is_empty(), "{:?}", alerts_in(&events));
    assert_eq!(hits(&summary, DEAD_AIR), 0);
}

// ---------------------------------------------------------------------------------------------
// channels
// ---------------------------------------------------------------------------------------------

const CHANNEL_RULES: &str = r#"
[[rule]]
id = "process.dead_air.zh"
category = "process"
severity = "general"
speaker = "any"
channels = ["voice"]
message = "通话静音超过15秒"
kind = "silence"
max_seconds = 15

[[rule]]
id = "response_timeout.slow_answer.zh"
category = "response_timeout"
severity = "general"
speaker = "agent"
channels = ["voice"]
message = "客户的问题已超过10秒未回应"
kind = "response_time"
max_seconds = 10

[[rule]]
id = "response_timeout.slow_reply.chat.zh"
category = "response_timeout"
severity = "general"
speaker = "agent"
channels = ["chat"]
message = "客户的消息已超过60秒未回复"
kind = "response_time"
max_seconds = 60

[[rule]]
id = "forbidden.superlative.zh"
category = "forbidden_phrase"
severity = "serious"
speaker = "agent"
message = "禁用绝对化用语"
kind = "keywords"
any = ["最便宜"]
"#;

/// A customer question answered after 40 s (and 40 s of nobody typing or speaking), then a
/// forbidden phrase.
const SLOW_EXCHANGE: &[Line<'static>] = &[
    (0.0, 3.0, AGENT, "您好，请问有什么可以帮您"),
    (5.0, 7.0, CUSTOMER, "我的退款什么时候到账"),
    (
        47.0,
        50.0,
        AGENT,
        "退款三到五个工作日到账，我们家是全网最便宜的",
    ),
];

#[test]
fn voice_scoped_timers_do_not_fire_on_a_chat_and_do_on_a_call() {
    let engine = engine(PACK_TOML, CHANNEL_RULES);
    let mut voice = Call::start_on(&engine, "zh", Channel::Voice);
    voice.feed(SLOW_EXCHANGE);
    let mut chat = Call::start_on(&engine, "zh", Channel::Chat);
    chat.feed(SLOW_EXCHANGE);

    let mut on_voice = voice.alert_ids();
    on_voice.sort();
    assert_eq!(
        on_voice,
        vec![
            "forbidden.superlative.zh",
            "process.dead_air.zh",
            "response_timeout.slow_answer.zh"
        ]
    );
    // A 40 s reply is fine in a chat (the chat rule allows 60 s); the phrase rule has no
    // channels and fires on both.
    assert_eq!(chat.alert_ids(), vec!["forbidden.superlative.zh"]);
    let summary = chat.end(60.0);
    assert_eq!(hits(&summary, "process.dead_air.zh"), 0);
    assert_eq!(hits(&summary, "response_timeout.slow_answer.zh"), 0);
}

#[test]
fn a_chat_reply_later_than_the_chat_limit_fires_the_chat_rule_only() {
    let engine = engine(PACK_TOML, CHANNEL_RULES);
    let mut chat = Call::start_on(&engine, "zh", Channel::Chat);
    chat.say((5.0, 7.0, CUSTOMER, "我的退款什么时候到账"));
    let overdue = chat.tick(70.0);
    assert_eq!(
        rule_ids(&overdue),
        vec!["response_timeout.slow_reply.chat.zh"]
    );
    // A session told nothing is a voice call (as a `hello` without a channel is).
    let mut voice = Call::start(&engine, "zh");
    voice.say((5.0, 7.0, CUSTOMER, "我的退款什么时候到账"));
    let mut fired = rule_ids(&voice.tick(70.0));
    fired.sort();
    assert_eq!(
        fired,
        vec!["process.dead_air.zh", "response_timeout.slow_answer.zh"]
    );
}

#[test]
fn an_empty_or_unknown_channel_list_is_refused_with_the_rule() {
    for (channels, expected) in [("[]", "`channels` is empty"), ("[\"sms\"]", "sms")] {
        let rules = format!(
            "[[rule]]\nid = \"x.y\"\ncategory = \"process\"\nseverity = \"general\"\nspeaker = \"any\"\nchannels = {channels}\nmessage = \"m\"\nkind = \"silence\"\nmax_seconds = 5\n"
        );
        let files = vec![
            pack_file("pack.toml", PACK_TOML),
            pack_file("rules/test.toml", &rules),
        ];
        let errors = match Engine::from_files(&files) {
            Ok(_) => panic!("channels = {channels} must be refused"),
            Err(errors) => errors.to_string(),
        };
        assert!(errors.contains(expected), "{errors}");
        assert!(errors.contains("rules/test.toml"), "{errors}");
    }
}

// ---------------------------------------------------------------------------------------------
// negative_streak
// ---------------------------------------------------------------------------------------------

const STREAK_RULE: &str = r#"
[[rule]]
id = "customer_escalation.negative_streak.zh"
category = "customer_escalation"
severity = "general"
speaker = "customer"
message = "客户情绪持续负面"
kind = "negative_streak"
turns = 3
"#;

const STREAK: &str = "customer_escalation.negative_streak.zh";

fn streak_engine() -> Arc<Engine> {
    engine_with(
        PACK_TOML,
        &[
            ("rules/streak.toml", STREAK_RULE),
            ("emotion/zh.toml", ZH_LEXICON),
        ],
    )
}

#[test]
fn three_upset_customer_turns_in_a_row_fire_the_escalation_once() {
    let engine = streak_engine();
    let mut call = Call::start(&engine, "zh");
    let first_two = call.feed(&[
        (0.0, 2.0, CUSTOMER, "我很生气"),
        (3.0, 5.0, AGENT, "非常抱歉"),
        (6.0, 8.0, CUSTOMER, "你们太慢了"),
        (9.0, 11.0, AGENT, "我马上帮您处理"),
    ]);
    let third = call.say((12.0, 14.0, CUSTOMER, "真是气死我了"));
    let fourth = call.say((15.0, 17.0, CUSTOMER, "我很失望"));
    let summary = call.end(20.0);

    assert!(rule_ids(&first_two).is_empty(), "{first_two:?}");
    let alerts = alerts_in(&third);
    assert_eq!(alerts.len(), 1, "{third:?}");
    assert_eq!(alerts[0].rule, STREAK);
    assert_eq!(alerts[0].t, 12.0);
    assert_eq!(alerts[0].speaker, CUSTOMER);
    assert!(rule_ids(&fourth).is_empty(), "the same streak fires once");
    assert_eq!(hits(&summary, STREAK), 1);
}

#[test]
fn a_calm_customer_turn_between_upset_ones_resets_the_streak() {
    let engine = streak_engine();
    let mut call = Call::start(&engine, "zh");
    let interrupted = call.feed(&[
        (0.0, 2.0, CUSTOMER, "我很生气"),
        (3.0, 5.0, CUSTOMER, "你们太慢了"),
        (6.0, 8.0, CUSTOMER, "我的订单是昨天下的"),
        (9.0, 11.0, CUSTOMER, "真是气死我了"),
        (12.0, 14.0, CUSTOMER, "我很失望"),
    ]);
    assert!(
        rule_ids(&interrupted).is_empty(),
        "two, a calm turn, then two: no three in a row"
    );

    let third_in_a_row = call.say((15.0, 17.0, CUSTOMER, "我很生气"));
    assert_eq!(rule_ids(&third_in_a_row), vec![STREAK]);
}

// ---------------------------------------------------------------------------------------------
// repeat_question
// ---------------------------------------------------------------------------------------------

const REPEAT_RULE: &str = r#"
[[rule]]
id = "repeat_question.same_question"
category = "repeat_question"
severity = "general"
speaker = "customer"
message = "客户重复提问 / the customer asked this again"
kind = "repeat_question"
similarity = 0.6
window = 8
"#;

const REPEAT: &str = "repeat_question.same_question";

#[test]
fn a_chinese_customer_asking_about_the_refund_again_in_other_words_fires() {
    let engine = engine(PACK_TOML, REPEAT_RULE);
    let mut call = Call::start(&engine, "zh");
    let first = call.feed(&[
        (0.0, 3.0, CUSTOMER, "我的退款什么时候到账"),
        (4.0, 6.0, AGENT, "正在处理中"),
    ]);
    let again = call.say((7.0, 10.0, CUSTOMER, "退款到底什么时候能到账"));

    assert!(rule_ids(&first).is_empty());
    let alerts = alerts_in(&again);
    assert_eq!(alerts.len(), 1, "{again:?}");
    assert_eq!(alerts[0].rule, REPEAT);
    assert_eq!(alerts[0].t, 7.0);
}

#[test]
fn a_chinese_customer_asking_two_different_questions_is_not_repeating() {
    let engine = engine(PACK_TOML, REPEAT_RULE);
    let (events, summary) = run_call(
        &engine,
        "zh",
        &[
            (0.0, 3.0, CUSTOMER, "我的退款什么时候到账"),
            (4.0, 6.0, AGENT, "三到五个工作日"),
            (7.0, 10.0, CUSTOMER, "你们的地址在哪里"),
        ],
        12.0,
    );
    assert!(rule_ids(&events).is_empty(), "{:?}", alerts_in(&events));
    assert_eq!(hits(&summary, REPEAT), 0);
}

#[test]
fn an_english_customer_asking_about_the_refund_again_in_other_words_fires() {
    let engine = engine(PACK_TOML, REPEAT_RULE);
    let mut call = Call::start(&engine, "en");
    let first = call.feed(&[
        (0.0, 3.0, CUSTOMER, "When will my refund arrive?"),
        (4.0, 6.0, AGENT, "It is being processed"),
    ]);
    let again = call.say((7.0, 10.0, CUSTOMER, "So when does the refund arrive?"));

    assert!(rule_ids(&first).is_empty());
    assert_eq!(rule_ids(&again), vec![REPEAT]);
}

#[test]
fn an_english_customer_asking_two_different_questions_is_not_repeating() {
    let engine = engine(PACK_TOML, REPEAT_RULE);
    let (events, summary) = run_call(
        &engine,
        "en",
        &[
            (0.0, 3.0, CUSTOMER, "When will my refund arrive?"),
            (4.0, 6.0, AGENT, "Within five business days"),
            (7.0, 10.0, CUSTOMER, "Can I change my delivery address?"),
        ],
        12.0,
    );
    assert!(rule_ids(&events).is_empty(), "{:?}", alerts_in(&events));
    assert_eq!(hits(&summary, REPEAT), 0);
}

// ---------------------------------------------------------------------------------------------
// partial results
// ---------------------------------------------------------------------------------------------

const PROMISE_ZH: &str = "misleading_promise.guaranteed_return.zh";

#[test]
fn an_alert_raised_while_the_agent_is_still_speaking_is_not_raised_again_by_the_final() {
    let engine = promise_engine();
    let mut call = Call::start(&engine, "zh");
    let seq = call.next_seq();
    let unfinished = call.partial(seq, (0.0, 1.0, AGENT, "这款产品保"));
    let live = call.partial(seq, (0.0, 2.0, AGENT, "这款产品保本"));
    let longer = call.partial(seq, (0.0, 3.0, AGENT, "这款产品保本的"));
    let final_result = call.say((0.0, 4.0, AGENT, "这款产品保本的，您放心"));
    let summary = call.end(5.0);

    assert!(rule_ids(&unfinished).is_empty());
    let alerts = alerts_in(&live);
    assert_eq!(alerts.len(), 1, "{live:?}");
    assert_eq!(alerts[0].rule, PROMISE_ZH);
    assert!(rule_ids(&longer).is_empty(), "already raised for this seq");
    assert!(rule_ids(&final_result).is_empty(), "already raised live");
    assert_eq!(hits(&summary, PROMISE_ZH), 1, "counted once");
    assert_eq!(summary.utterances, 1, "partials are not utterances");
    assert_eq!(summary.score, 0);
}

#[test]
fn a_partial_arriving_after_its_final_is_ignored() {
    let engine = promise_engine();
    let mut call = Call::start(&engine, "zh");
    let final_result = call.say((0.0, 2.0, AGENT, "这款产品保本"));
    let stale = call.partial(1, (0.0, 2.0, AGENT, "这款产品保本"));
    let next_partial = call.partial(2, (3.0, 4.0, AGENT, "而且零风险"));
    let next_final = call.say((3.0, 5.0, AGENT, "而且零风险"));
    let summary = call.end(6.0);

    assert_eq!(rule_ids(&final_result), vec![PROMISE_ZH]);
    assert!(stale.is_empty(), "{stale:?}");
    assert_eq!(
        rule_ids(&next_partial),
        vec![PROMISE_ZH],
        "a fresh seq is live"
    );
    assert!(rule_ids(&next_final).is_empty(), "{next_final:?}");
    assert_eq!(hits(&summary, PROMISE_ZH), 2);
    assert_eq!(summary.utterances, 2);
}

// ---------------------------------------------------------------------------------------------
// bad input
// ---------------------------------------------------------------------------------------------

#[test]
fn a_final_resent_after_a_reconnect_is_refused_as_a_duplicate_and_changes_nothing() {
    let engine = promise_engine();
    let mut call = Call::start(&engine, "zh");
    call.say((0.0, 2.0, AGENT, "这款产品保本"));

    let resent = utterance(1, (0.0, 2.0, AGENT, "这款产品保本"), false);
    assert_eq!(
        call.try_utterance(&resent),
        Err(SessionError::DuplicateSeq { seq: 1, last: 1 })
    );
    assert_eq!(call.session.last_seq(), 1);

    let next = call.say((3.0, 5.0, AGENT, "您还有什么问题吗"));
    assert!(rule_ids(&next).is_empty());
    let summary = call.end(6.0);
    assert_eq!(summary.utterances, 2);
    assert_eq!(hits(&summary, PROMISE_ZH), 1);
    assert_eq!(summary.duration, 6.0);
}

#[test]
fn an_empty_utterance_is_refused_and_its_seq_stays_free() {
    let engine = promise_engine();
    let mut call = Call::start(&engine, "zh");
    call.say((0.0, 2.0, AGENT, "您好"));

    let blank = utterance(2, (3.0, 4.0, CUSTOMER, "   "), false);
    assert_eq!(
        call.try_utterance(&blank),
        Err(SessionError::EmptyText { seq: 2 })
    );
    assert_eq!(call.session.last_seq(), 1);

    let retry = utterance(2, (5.0, 7.0, AGENT, "这款产品保本"), false);
    let events = call.try_utterance(&retry).expect("seq 2 was never taken");
    assert_eq!(rule_ids(&events), vec![PROMISE_ZH]);
    let summary = call.end(8.0);
    assert_eq!(summary.utterances, 2);
    assert_eq!(hits(&summary, PROMISE_ZH), 1);
}

#[test]
fn an_utterance_with_a_nan_time_is_refused_and_changes_nothing() {
    let engine = promise_engine();
    let mut call = Call::start(&engine, "zh");
    call.say((0.0, 2.0, AGENT, "您好"));

    let nan_start = utterance(2, (f64::NAN, 4.0, AGENT, "这款产品保本"), false);
    assert_eq!(
        call.try_utterance(&nan_start),
        Err(SessionError::BadTime { seq: 2 })
    );
    let nan_end = utterance(2, (3.0, f64::NAN, AGENT, "这款产品保本"), false);
    assert_eq!(
        call.try_utterance(&nan_end),
        Err(SessionError::BadTime { seq: 2 })
    );
    let nan_partial = utterance(2, (f64::NAN, 4.0, AGENT, "这款产品保本"), true);
    assert_eq!(
        call.try_utterance(&nan_partial),
        Err(SessionError::BadTime { seq: 2 })
    );
    assert!(call.alert_ids().is_empty(), "nothing raised on bad input");
    assert_eq!(call.session.last_seq(), 1);

    let good = call.say((3.0, 5.0, AGENT, "这款产品零风险"));
    assert_eq!(rule_ids(&good), vec![PROMISE_ZH]);
    let summary = call.end(5.0);
    assert_eq!(summary.utterances, 2);
    assert_eq!(hits(&summary, PROMISE_ZH), 1);
    assert_eq!(summary.duration, 5.0, "the clock ignored the NaN");
}

#[test]
fn an_utterance_after_the_call_ended_is_refused_and_the_summary_stands() {
    let engine = promise_engine();
    let mut call = Call::start(&engine, "zh");
    call.say((0.0, 2.0, AGENT, "您好"));
    let summary = call.end(3.0);
    assert_eq!(summary.score, 100);

    let late = utterance(2, (4.0, 6.0, AGENT, "这款产品保本"), false);
    assert_eq!(call.try_utterance(&late), Err(SessionError::Ended));
    let late_partial = utterance(2, (4.0, 6.0, AGENT, "这款产品保本"), true);
    assert_eq!(call.try_utterance(&late_partial), Err(SessionError::Ended));
    assert!(call.tick(100.0).is_empty(), "no timers after the end");

    let again = call.end(10.0);
    assert_eq!(again, summary, "ending twice gives the same summary");
    assert!(call.alert_ids().is_empty());
}

// ---------------------------------------------------------------------------------------------
// scoring
// ---------------------------------------------------------------------------------------------

const SCORED_PACK: &str = r#"
name = "scored"
version = "1"
languages = ["zh"]

[scoring]
general = 5
serious = 15
fatal = 30
"#;

const SCORED_RULES: &str = r#"
[[rule]]
id = "tone.casual"
category = "tone"
severity = "general"
speaker = "agent"
message = "请使用规范称呼"
kind = "keywords"
any = ["哥们"]

[[rule]]
id = "forbidden_phrase.superlative"
category = "forbidden_phrase"
severity = "serious"
speaker = "agent"
message = "请勿使用绝对化用语"
kind = "keywords"
any = ["全网最低价"]

[[rule]]
id = "misleading_promise.guaranteed_return"
category = "misleading_promise"
severity = "fatal"
speaker = "agent"
message = "不得承诺保本"
kind = "keywords"
any = ["保本"]
"#;

#[test]
fn each_hit_deducts_the_weight_of_its_severity_from_pack_toml() {
    let engine = engine(SCORED_PACK, SCORED_RULES);
    let (_, summary) = run_call(
        &engine,
        "zh",
        &[
            (0.0, 2.0, AGENT, "哥们你好"),
            (3.0, 6.0, AGENT, "哥们，这个是全网最低价"),
        ],
        7.0,
    );
    assert_eq!(hits(&summary, "tone.casual"), 2);
    assert_eq!(hits(&summary, "forbidden_phrase.superlative"), 1);
    assert_eq!(summary.score, 100 - 2 * 5 - 15);
    assert!(summary.passed);
    let ids: Vec<&str> = summary.hits.iter().map(|h| h.rule.as_str()).collect();
    assert_eq!(
        ids,
        vec!["forbidden_phrase.superlative", "tone.casual"],
        "sorted by rule id"
    );
}

#[test]
fn any_fatal_hit_zeroes_the_score_and_fails_the_call() {
    let engine = engine(SCORED_PACK, SCORED_RULES);
    let (_, summary) = run_call(
        &engine,
        "zh",
        &[
            (0.0, 2.0, AGENT, "您好，很高兴为您服务"),
            (3.0, 6.0, AGENT, "这款理财保本"),
        ],
        7.0,
    );
    assert_eq!(hits(&summary, "misleading_promise.guaranteed_return"), 1);
    assert_eq!(
        summary.score, 0,
        "zero, not 100 minus the fatal weight of 30"
    );
    assert!(!summary.passed);
}

#[test]
fn a_clean_call_scores_one_hundred_and_passes() {
    let engine = engine(SCORED_PACK, SCORED_RULES);
    let (events, summary) = run_call(
        &engine,
        "zh",
        &[
            (0.0, 2.0, AGENT, "您好，很高兴为您服务"),
            (3.0, 5.0, CUSTOMER, "我想查一下订单"),
            (6.0, 8.0, AGENT, "已经帮您查到了"),
        ],
        9.0,
    );
    assert!(rule_ids(&events).is_empty());
    assert_eq!(summary.score, 100);
    assert!(summary.passed);
    assert!(summary.hits.is_empty());
    assert_eq!(summary.utterances, 3);
}

// ---------------------------------------------------------------------------------------------
// PII masking
// ---------------------------------------------------------------------------------------------

const READ_BACK_RULES: &str = r#"
[[rule]]
id = "privacy.read_back"
category = "privacy"
severity = "serious"
speaker = "agent"
message = "请勿完整念出客户的手机号或卡号"
kind = "keywords"
any = ["手机号", "卡号"]
"#;

#[test]
fn an_alert_on_an_utterance_with_a_mobile_number_shows_it_masked() {
    let engine = engine(PACK_TOML, READ_BACK_RULES);
    let (events, _) = run_call(
        &engine,
        "zh",
        &[(0.0, 3.0, AGENT, "您的手机号是13812345678对吗")],
        4.0,
    );
    let alerts = alerts_in(&events);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].text, "您的手机号是138****5678对吗");
}

#[test]
fn a_bank_card_number_in_an_alert_keeps_only_its_last_four_digits() {
    let engine = engine(PACK_TOML, READ_BACK_RULES);
    let (events, _) = run_call(
        &engine,
        "zh",
        &[
            (0.0, 3.0, AGENT, "您的卡号是4111111111111234"),
            (4.0, 7.0, AGENT, "另一张卡号是6222021234567890123"),
        ],
        8.0,
    );
    let texts: Vec<String> = alerts_in(&events).into_iter().map(|a| a.text).collect();
    assert_eq!(
        texts,
        vec![
            format!("您的卡号是{}1234", "*".repeat(12)),
            format!("另一张卡号是{}0123", "*".repeat(15)),
        ]
    );
}

#[test]
fn an_alert_raised_on_a_partial_is_masked_too() {
    let engine = engine(PACK_TOML, READ_BACK_RULES);
    let mut call = Call::start(&engine, "zh");
    let live = call.partial(1, (0.0, 2.0, AGENT, "您的手机号是13812345678"));
    let alerts = alerts_in(&live);
    assert_eq!(alerts.len(), 1, "{live:?}");
    assert_eq!(alerts[0].text, "您的手机号是138****5678");
}

// ---------------------------------------------------------------------------------------------
// language
// ---------------------------------------------------------------------------------------------

const ENGLISH_RULES: &str = r#"
[[rule]]
id = "misleading_promise.risk_free.en"
category = "misleading_promise"
severity = "fatal"
speaker = "agent"
language = "en"
message = "Never call an investment risk-free"
kind = "keywords"
any = ["risk-free"]

[[rule]]
id = "greeting.opening.en"
category = "greeting"
severity = "general"
speaker = "agent"
language = "en"
message = "Open with a greeting"
kind = "required"
within = "first_turns"
any = ["hello"]

[[rule]]
id = "required_disclosure.return_terms.en"
category = "required_disclosure"
severity = "serious"
speaker = "agent"
language = "en"
message = "State the return terms"
kind = "disclosure"
trigger = ["return it"]

[[rule.require]]
item = "return address"
any = ["return address"]
"#;

/// A code-switching call: English phrases inside Chinese speech.
const CODE_SWITCHING: &[Line<'static>] = &[
    (0.0, 3.0, AGENT, "这个产品是risk-free的"),
    (4.0, 6.0, CUSTOMER, "那我想 return it"),
];

#[test]
fn english_rules_stay_silent_on_a_chinese_call() {
    let engine = engine(PACK_TOML, ENGLISH_RULES);
    let (events, summary) = run_call(&engine, "zh", CODE_SWITCHING, 10.0);
    assert!(rule_ids(&events).is_empty(), "{:?}", alerts_in(&events));
    assert!(summary.hits.is_empty());
    assert_eq!(summary.score, 100);
}

#[test]
fn the_same_english_rules_fire_on_an_english_call() {
    let engine = engine(PACK_TOML, ENGLISH_RULES);
    let (events, _) = run_call(&engine, "en", CODE_SWITCHING, 10.0);
    let mut ids = rule_ids(&events);
    ids.sort();
    assert_eq!(
        ids,
        vec![
            "greeting.opening.en",
            "misleading_promise.risk_free.en",
            "required_disclosure.return_terms.en",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// the default pack
// ---------------------------------------------------------------------------------------------

fn default_engine() -> Arc<Engine> {
    let files = load_pack_dir(&default_pack_root());
    match Engine::from_files(&files) {
        Ok(engine) => Arc::new(engine),
        Err(errors) => panic!("the default pack must compile:\n{errors}"),
    }
}

fn serious_or_worse(events: &[assist_engine::Event]) -> Vec<String> {
    alerts_in(events)
        .into_iter()
        .filter(|a| a.severity >= Severity::Serious)
        .map(|a| format!("{} ({:?}): {}", a.rule, a.severity, a.text))
        .collect()
}

#[test]
fn the_default_pack_compiles_from_the_knowledge_folder() {
    let files = load_pack_dir(&default_pack_root());
    assert!(files.iter().any(|f| f.path == "pack.toml"));
    assert!(
        files.iter().any(|f| f.path == "emotion/zh.toml"),
        "nested paths are relative with `/`: {:?}",
        files.iter().map(|f| &f.path).collect::<Vec<_>>()
    );

    let engine = default_engine();
    assert_eq!(engine.meta.name, "default");
    for language in ["zh", "en"] {
        assert!(
            engine.rules.rules.iter().any(|r| r.applies_to(language)),
            "rules for {language}"
        );
        assert!(
            engine.emotions.iter().any(|m| m.language == language),
            "an emotion lexicon for {language}"
        );
    }
    assert!(!engine.scripts.scripts.is_empty());
    assert!(!engine.intents.intents.is_empty());
    assert!(!engine.articles.is_empty());
}

#[test]
fn the_default_pack_catches_a_guaranteed_return_in_either_language() {
    let engine = default_engine();
    let (zh, _) = run_call(
        &engine,
        "zh",
        &[(0.0, 3.0, AGENT, "这款理财产品保本保息")],
        4.0,
    );
    assert!(
        alerts_in(&zh).iter().any(|a| a.severity == Severity::Fatal),
        "{:?}",
        alerts_in(&zh)
    );
    let (en, _) = run_call(
        &engine,
        "en",
        &[(0.0, 3.0, AGENT, "This fund has guaranteed returns")],
        4.0,
    );
    assert!(
        alerts_in(&en).iter().any(|a| a.severity == Severity::Fatal),
        "{:?}",
        alerts_in(&en)
    );
}

#[test]
fn a_short_clean_chinese_call_raises_nothing_serious_with_the_default_pack() {
    let engine = default_engine();
    let (events, summary) = run_call(
        &engine,
        "zh",
        &[
            (0.0, 3.0, AGENT, "您好，很高兴为您服务，请问有什么可以帮您"),
            (4.0, 7.0, CUSTOMER, "我想查一下我的快递到哪了"),
            (
                8.0,
                13.0,
                AGENT,
                "好的，请稍等，您的包裹已经到达本地配送站，预计今天下午送达",
            ),
            (14.0, 15.0, CUSTOMER, "好的，谢谢"),
            (
                16.0,
                20.0,
                AGENT,
                "不客气，请问还有其他问题吗，感谢您的来电，祝您生活愉快",
            ),
        ],
        21.0,
    );
    assert!(
        serious_or_worse(&events).is_empty(),
        "{:?}",
        serious_or_worse(&events)
    );
    assert!(summary.passed, "{summary:?}");
}

#[test]
fn a_short_clean_english_call_raises_nothing_serious_with_the_default_pack() {
    let engine = default_engine();
    let (events, summary) = run_call(
        &engine,
        "en",
        &[
            (0.0, 3.0, AGENT, "Thank you for calling, how can I help you today?"),
            (4.0, 7.0, CUSTOMER, "Where is my package? It was supposed to arrive yesterday."),
            (8.0, 13.0, AGENT, "Let me check that for you. Your package is at the local depot and will be delivered this afternoon."),
            (14.0, 15.0, CUSTOMER, "Great, thanks."),
            (16.0, 20.0, AGENT, "Is there anything else I can help with? Thank you for calling, have a great day."),
        ],
        21.0,
    );
    assert!(
        serious_or_worse(&events).is_empty(),
        "{:?}",
        serious_or_worse(&events)
    );
    assert!(summary.passed, "{summary:?}");
}
