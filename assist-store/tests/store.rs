//! The call store against a real sled database in temp dirs.

mod common;

use assist_protocol::{CardAction, CardKind, Channel, EmotionLabel, Speaker};
use assist_store::*;
use common::*;
use std::collections::{BTreeMap, HashMap};

// ---------------------------------------------------------------------------------------------
// The call log

#[test]
fn a_call_written_during_the_call_survives_a_crash_before_it_ends() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let store = open(dir.path());
        assert!(store
            .begin_call(&meta("c1", "ann", Some("east"), T0))
            .expect("begin"));
        store
            .append_turn(
                "c1",
                &line(1, Speaker::Agent, "您好，请问有什么可以帮您", 0.5),
                &[],
            )
            .expect("turn 1");
        store
            .append_turn(
                "c1",
                &line(2, Speaker::Customer, "我要投诉，退款太慢了", 3.0),
                &[
                    alert(3.0, "refund_delay", "complaint_risk"),
                    emotion(3.0, EmotionLabel::Negative, true),
                    card(3.0, "soothe", CardKind::Script),
                ],
            )
            .expect("turn 2");
        store
            .record_card_action("c1", "soothe", CardAction::Used)
            .expect("card used");
        // The process dies here: no end_call.
    }
    let store = open(dir.path());
    let call = store
        .get_call("c1")
        .expect("read")
        .expect("the call is there");
    assert_eq!(call.meta.status, CallStatus::InProgress);
    assert_eq!(call.lines.len(), 2);
    assert_eq!(call.alerts.len(), 1);
    assert_eq!(call.emotions.len(), 1);
    assert_eq!(call.cards[0].reaction, CardReaction::Used);
    assert_eq!(store.last_seq("c1").expect("last seq"), 2);

    let row = store.call_row("c1").expect("row").expect("listed");
    assert_eq!(
        row.lines, 2,
        "the row of a call in progress is rebuilt on open"
    );
    assert_eq!(row.hits.get("complaint_risk"), Some(&1));
    assert_eq!(row.worst_emotion, Some(EmotionLabel::Negative));
    assert!(row.escalated);
    assert_eq!(row.scripts.get("soothe"), Some(&(1, 1)));

    // The call goes on after the restart and ends normally.
    assert!(!store
        .begin_call(&meta("c1", "ann", Some("east"), T0))
        .expect("resume"));
    store
        .append_line("c1", &line(3, Speaker::Agent, "马上为您处理", 6.0))
        .expect("turn 3");
    store
        .end_call("c1", &summary(70, &[], &["refund"]), T0 + 60_000)
        .expect("end");
    drop(store);
    let store = open(dir.path());
    let row = store.call_row("c1").expect("row").expect("listed");
    assert_eq!(row.status, CallStatus::Ended);
    assert_eq!(row.lines, 3);
    assert_eq!(row.auto_score, Some(70));
    assert_eq!(row.intents, vec!["refund".to_string()]);
}

/// Set in the child process of [`a_killed_server_loses_nothing_it_acknowledged`].
const CHILD_DIR_VAR: &str = "ASSIST_STORE_TEST_CHILD_DIR";

#[test]
fn a_killed_server_loses_nothing_it_acknowledged() {
    if let Ok(dir) = std::env::var(CHILD_DIR_VAR) {
        // The child: accept a few utterances, then die without unwinding or dropping the store.
        let store = open(std::path::Path::new(&dir));
        store
            .begin_call(&meta("c1", "ann", None, T0))
            .expect("begin");
        for seq in 1..=5u64 {
            store
                .append_turn(
                    "c1",
                    &line(seq, Speaker::Agent, "好的", seq as f64),
                    &[alert(seq as f64, "r", "abuse")],
                )
                .expect("turn");
        }
        std::process::abort();
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let status = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "a_killed_server_loses_nothing_it_acknowledged",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_VAR, dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("child runs");
    assert!(!status.success(), "the child aborts");
    // With Durability::Periodic in the child this fails: the flush per write is what saves it.
    let store = open(dir.path());
    let call = store
        .get_call("c1")
        .expect("read")
        .expect("the call survived");
    assert_eq!(call.lines.len(), 5);
    assert_eq!(call.alerts.len(), 5);
    assert_eq!(store.call_row("c1").expect("row").map(|r| r.lines), Some(5));
}

#[test]
fn appending_the_same_lines_and_events_twice_stores_them_once() {
    let (_dir, store) = temp_store();
    store
        .begin_call(&meta("c1", "ann", None, T0))
        .expect("begin");
    let events = [
        alert(1.0, "no_guarantee", "misleading_promise"),
        emotion(1.0, EmotionLabel::Neutral, false),
        card(1.0, "soothe", CardKind::Script),
    ];
    assert!(store
        .append_turn("c1", &line(1, Speaker::Agent, "保证收益", 1.0), &events)
        .expect("first"));
    // A resumed client resends; a restarted server replays the call through the engine.
    assert!(!store
        .append_turn("c1", &line(1, Speaker::Agent, "保证收益", 1.0), &events)
        .expect("again"));
    assert_eq!(store.append_events("c1", &events).expect("replayed"), 0);
    // A different line with a taken seq is still the same seq: ignored.
    assert!(!store
        .append_line("c1", &line(1, Speaker::Agent, "something else", 1.0))
        .expect("same seq"));

    let call = store.get_call("c1").expect("read").expect("exists");
    assert_eq!(call.lines.len(), 1);
    assert_eq!(call.lines[0].text, "保证收益");
    assert_eq!(call.alerts.len(), 1);
    assert_eq!(call.emotions.len(), 1);
    assert_eq!(call.cards.len(), 1);
    let row = store.call_row("c1").expect("row").expect("listed");
    assert_eq!(row.lines, 1);
    assert_eq!(row.hits.get("misleading_promise"), Some(&1));
    assert_eq!(row.scripts.get("soothe"), Some(&(1, 0)));
}

#[test]
fn writes_to_a_call_never_begun_are_refused() {
    let (_dir, store) = temp_store();
    let err = store
        .append_line("ghost", &line(1, Speaker::Agent, "hi", 0.0))
        .expect_err("no such call");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert_eq!(err.code(), "not_found");
    let err = store
        .begin_call(&meta("bad\0id", "ann", None, T0))
        .expect_err("NUL in id");
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
}

#[test]
fn phone_numbers_that_slipped_through_are_masked_on_store() {
    let (_dir, store) = temp_store();
    store
        .begin_call(&meta("c1", "ann", None, T0))
        .expect("begin");
    store
        .append_turn(
            "c1",
            &line(1, Speaker::Customer, "我的手机是13812345678", 0.0),
            &[alert(0.0, "r", "abuse")],
        )
        .expect("turn");
    let call = store.get_call("c1").expect("read").expect("exists");
    assert!(
        !call.lines[0].text.contains("13812345678"),
        "{}",
        call.lines[0].text
    );
    assert!(
        call.lines[0].text.contains("138****5678"),
        "{}",
        call.lines[0].text
    );
}

#[test]
fn the_call_page_links_alerts_to_lines_and_shows_what_the_agent_did_with_each_card() {
    let (_dir, store) = temp_store();
    store
        .begin_call(&meta("c1", "ann", None, T0))
        .expect("begin");
    store
        .append_line("c1", &line(1, Speaker::Agent, "hello", 0.0))
        .expect("line 1");
    store
        .append_turn(
            "c1",
            &line(2, Speaker::Agent, "we guarantee returns", 5.0),
            &[
                alert(5.0, "no_guarantee", "misleading_promise"),
                card(5.0, "used_card", CardKind::Script),
                card(5.0, "dismissed_card", CardKind::Script),
                card(5.0, "kb-1", CardKind::Knowledge),
            ],
        )
        .expect("line 2");
    store
        .append_events("c1", &[alert(30.0, "dead_air", "response_timeout")])
        .expect("timer alert");
    store
        .record_card_action("c1", "used_card", CardAction::Used)
        .expect("used");
    store
        .record_card_action("c1", "dismissed_card", CardAction::Dismissed)
        .expect("dismissed");

    let reactions = |store: &SledStore| -> HashMap<String, CardReaction> {
        let call = store.get_call("c1").expect("read").expect("exists");
        call.cards
            .iter()
            .map(|c| (c.card_id.clone(), c.reaction))
            .collect()
    };
    assert_eq!(reactions(&store)["kb-1"], CardReaction::Pending);
    store
        .end_call("c1", &summary(80, &[], &[]), T0 + 30_000)
        .expect("end");
    let after = reactions(&store);
    assert_eq!(after["used_card"], CardReaction::Used);
    assert_eq!(after["dismissed_card"], CardReaction::Dismissed);
    assert_eq!(after["kb-1"], CardReaction::Ignored);

    let call = store.get_call("c1").expect("read").expect("exists");
    let by_rule: HashMap<&str, &StoredAlert> = call
        .alerts
        .iter()
        .map(|a| (a.alert.rule.as_str(), a))
        .collect();
    assert_eq!(by_rule["no_guarantee"].line_seq, Some(2));
    assert_eq!(
        by_rule["dead_air"].line_seq,
        Some(2),
        "an alert between lines belongs to the last line before it"
    );
    let row = store.call_row("c1").expect("row").expect("listed");
    assert_eq!(row.scripts.get("used_card"), Some(&(1, 1)));
    assert_eq!(row.scripts.get("dismissed_card"), Some(&(1, 0)));
    assert_eq!(row.knowledge_cards, 1);
}

#[test]
fn a_one_hour_call_reads_back_in_order() {
    let (_dir, store) = temp_store();
    store
        .begin_call(&meta("long", "ann", None, T0))
        .expect("begin");
    for seq in 1..=300u64 {
        store
            .append_line(
                "long",
                &line(seq, Speaker::Agent, "line", seq as f64 * 12.0),
            )
            .expect("line");
    }
    let call = store.get_call("long").expect("read").expect("exists");
    let seqs: Vec<u64> = call.lines.iter().map(|l| l.seq).collect();
    assert_eq!(
        seqs,
        (1..=300).collect::<Vec<_>>(),
        "seq 256 sorts after 255"
    );
}

// ---------------------------------------------------------------------------------------------
// Whole finished calls (the bulk path batch QC uses)

/// Everything a reader can see of `ids` — call pages, exports, rows, resume points, every list
/// filter, every report grouping — is the same in both stores.
fn assert_same_reads(a: &SledStore, b: &SledStore, ids: &[String], when: &str) {
    for id in ids {
        assert_eq!(
            a.get_call(id).expect("read a"),
            b.get_call(id).expect("read b"),
            "{when}: call page of {id}"
        );
        if a.call_meta(id).expect("meta").is_some() {
            assert_eq!(
                a.export_call(id).expect("export a"),
                b.export_call(id).expect("export b"),
                "{when}: export of {id}"
            );
        }
        assert_eq!(
            a.call_row(id).expect("row"),
            b.call_row(id).expect("row"),
            "{when}: row of {id}"
        );
        assert_eq!(
            a.last_seq(id).expect("seq"),
            b.last_seq(id).expect("seq"),
            "{when}: last seq of {id}"
        );
    }
    let mut filters = vec![
        CallFilter::default(),
        CallFilter {
            source: Some(SourceKind::Batch),
            language: Some("en".into()),
            ..CallFilter::default()
        },
        CallFilter {
            channel: Some(Channel::Voice),
            escalated: Some(true),
            ..CallFilter::default()
        },
        CallFilter {
            min_score: Some(60),
            status: Some(CallStatus::Ended),
            ..CallFilter::default()
        },
        CallFilter {
            max_score: Some(59),
            from: Some(T0 + 5 * DAY),
            to: Some(T0 + 20 * DAY),
            ..CallFilter::default()
        },
    ];
    for (agent, team) in AGENTS {
        filters.push(CallFilter {
            agent: Some(agent.into()),
            ..CallFilter::default()
        });
        filters.push(CallFilter {
            team: Some(team.into()),
            ..CallFilter::default()
        });
    }
    for (rule, category) in RULES {
        filters.push(CallFilter {
            rule: Some(rule.into()),
            ..CallFilter::default()
        });
        filters.push(CallFilter {
            category: Some(category.into()),
            ..CallFilter::default()
        });
    }
    for label in [
        EmotionLabel::Negative,
        EmotionLabel::Neutral,
        EmotionLabel::Positive,
    ] {
        filters.push(CallFilter {
            emotion: Some(label),
            ..CallFilter::default()
        });
    }
    let all = Page {
        offset: 0,
        limit: usize::MAX,
    };
    for filter in &filters {
        assert_eq!(
            a.list_calls(filter, all).expect("list a"),
            b.list_calls(filter, all).expect("list b"),
            "{when}: list {filter:?}"
        );
    }
    for group_by in [
        GroupBy::Agent,
        GroupBy::Team,
        GroupBy::Day,
        GroupBy::Week,
        GroupBy::Channel,
        GroupBy::Category,
    ] {
        for filter in [CallFilter::default(), filters[1].clone()] {
            let query = ReportQuery {
                filter,
                utc_offset_minutes: 480,
                ..ReportQuery::new(group_by)
            };
            let (ra, rb) = (
                a.report(&query).expect("report"),
                b.report(&query).expect("report"),
            );
            assert_eq!(ra, rb, "{when}: report {query:?}");
            assert_eq!(report_csv(&ra), report_csv(&rb), "{when}: csv {query:?}");
        }
    }
    for (agent, _) in AGENTS {
        assert_eq!(
            a.agent_scores(agent, None, None).expect("scores"),
            b.agent_scores(agent, None, None).expect("scores"),
            "{when}: scores of {agent}"
        );
    }
}

#[test]
fn a_call_stored_whole_reads_back_exactly_as_one_written_line_by_line() {
    for seed in 1..=3u64 {
        let calls = generate_finished(80, seed);
        let ids: Vec<String> = calls.iter().map(|c| c.meta.call_id.clone()).collect();
        let (dir_a, dir_b) = (
            tempfile::tempdir().expect("dir"),
            tempfile::tempdir().expect("dir"),
        );
        let (mut a, mut b) = (open(dir_a.path()), open(dir_b.path()));
        for call in &calls {
            write_incrementally(&a, call);
        }
        // Batches of every size, one call up to a few dozen.
        let mut rest = calls.as_slice();
        let mut size = 1;
        while !rest.is_empty() {
            let (batch, after) = rest.split_at(size.min(rest.len()));
            let stored = b.store_finished_calls(batch).expect("bulk");
            assert_eq!(stored, vec![true; batch.len()]);
            rest = after;
            size = size * 3 % 41 + 1;
        }
        assert!(calls.iter().any(|c| c
            .events
            .iter()
            .any(|e| matches!(e, assist_protocol::Event::Card(_)))));
        assert_same_reads(&a, &b, &ids, &format!("seed {seed}, as written"));

        // Rows and packed items come back from disk the same.
        drop((a, b));
        a = open(dir_a.path());
        b = open(dir_b.path());
        assert_same_reads(&a, &b, &ids, &format!("seed {seed}, reopened"));

        // What trainers and late events do afterwards lands the same on both forms.
        for (i, call) in calls.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
            let id = &call.meta.call_id;
            for store in [&a, &b] {
                let first = &call.lines[0];
                assert!(
                    !store.append_line(id, first).expect("again"),
                    "seq {} is stored",
                    first.seq
                );
                assert!(store
                    .append_line(id, &line(100, Speaker::Agent, "a late line", 400.0))
                    .expect("late line"));
                // Every event again (a replay), the summary aside (it would replace the
                // call's), and one new alert.
                let mut late = call.events.clone();
                late.retain(|e| !matches!(e, assist_protocol::Event::Summary(_)));
                late.push(alert(401.0, "no_abuse", "abuse"));
                let new = store.append_events(id, &late).expect("late events");
                assert_eq!(new, 1, "only the late alert is new on {id}");
                let record = store.get_call(id).expect("read").expect("stored");
                let alert_id = record.alerts[0].id.clone();
                let kind = if i % 2 == 0 {
                    VerdictKind::Confirmed
                } else {
                    VerdictKind::Overturned
                };
                store
                    .set_verdict(
                        id,
                        &alert_id,
                        Some(Verdict {
                            kind,
                            by: "tina".into(),
                            at: T0,
                            note: None,
                        }),
                    )
                    .expect("verdict");
                store
                    .add_comment(id, first.seq, "tina", "good opening", T0)
                    .expect("a comment on a packed line");
                if let Some(card) = record.cards.first() {
                    store
                        .record_card_action(id, &card.card_id, CardAction::Used)
                        .expect("card action");
                }
                if i % 2 == 1 {
                    store
                        .set_manual_score(
                            id,
                            Some(ManualScore {
                                score: 42,
                                reason: "listened".into(),
                                by: "tina".into(),
                                at: T0,
                            }),
                        )
                        .expect("manual score");
                }
            }
        }
        assert_same_reads(&a, &b, &ids, &format!("seed {seed}, after edits"));
        assert!(matches!(
            b.add_comment(&ids[0], 999, "tina", "no such line", T0),
            Err(StoreError::NotFound { .. })
        ));
        for id in ids.iter().step_by(7) {
            assert!(a.delete_call(id).expect("delete"));
            assert!(b.delete_call(id).expect("delete"));
        }
        let purged = (
            a.purge_ended_before(T0 + 10 * DAY).expect("purge"),
            b.purge_ended_before(T0 + 10 * DAY).expect("purge"),
        );
        assert_eq!(purged.0, purged.1);
        drop((a, b));
        let (a, b) = (open(dir_a.path()), open(dir_b.path()));
        assert_same_reads(&a, &b, &ids, &format!("seed {seed}, after deletes"));
        assert!(b.get_call(&ids[0]).expect("read").is_none());
    }
}

#[test]
fn a_stored_call_is_skipped_unless_replaced() {
    let calls = generate_finished(3, 9);
    let (_dir, store) = temp_store();
    let first = calls[0].clone();
    let id = first.meta.call_id.clone();
    assert_eq!(
        store
            .store_finished_calls(std::slice::from_ref(&first))
            .expect("store"),
        vec![true]
    );
    let before = store.get_call(&id).expect("read");

    // A rerun hands the same conversation over again: nothing changes.
    let mut other = calls[1].clone();
    other.meta.call_id = id.clone();
    assert_eq!(
        store.store_finished_calls(&[other.clone()]).expect("again"),
        vec![false]
    );
    assert_eq!(store.get_call(&id).expect("read"), before);

    // `--force`: replaced whole, the trainers' work on the old one gone with it, listed at its
    // new start time.
    let alert_id = before
        .as_ref()
        .and_then(|r| r.alerts.first())
        .map(|a| a.id.clone());
    if let Some(alert_id) = alert_id {
        store
            .set_verdict(
                &id,
                &alert_id,
                Some(Verdict {
                    kind: VerdictKind::Overturned,
                    by: "t".into(),
                    at: T0,
                    note: None,
                }),
            )
            .expect("verdict");
    }
    store.add_comment(&id, 1, "t", "note", T0).expect("comment");
    store
        .set_manual_score(
            &id,
            Some(ManualScore {
                score: 10,
                reason: "r".into(),
                by: "t".into(),
                at: T0,
            }),
        )
        .expect("manual");
    other.replace = true;
    other.meta.started_at = T0 - DAY;
    let later = calls[2].clone();
    assert_eq!(
        store
            .store_finished_calls(&[other.clone(), later.clone()])
            .expect("replace"),
        vec![true, true]
    );
    let (_fresh_dir, fresh) = temp_store();
    write_incrementally(&fresh, &other);
    write_incrementally(&fresh, &later);
    let ids = [id.clone(), later.meta.call_id.clone()];
    assert_same_reads(&store, &fresh, &ids, "replaced");
    let listed: Vec<String> = store
        .list_calls(&CallFilter::default(), Page::default())
        .expect("list")
        .rows
        .into_iter()
        .map(|r| r.call_id)
        .collect();
    assert_eq!(listed.len(), 2, "replaced, not duplicated: {listed:?}");
    assert_eq!(
        listed[1], id,
        "the replaced call is listed at its new start time"
    );

    // The same id twice in one batch: the first stays, unless the second replaces it.
    let (_dir, store) = temp_store();
    let mut twin = calls[1].clone();
    twin.meta.call_id = calls[0].meta.call_id.clone();
    assert_eq!(
        store
            .store_finished_calls(&[calls[0].clone(), twin.clone()])
            .expect("twins"),
        vec![true, false]
    );
    assert_eq!(
        store
            .get_call(&id)
            .expect("read")
            .expect("stored")
            .lines
            .len(),
        {
            let mut seqs: Vec<u64> = calls[0].lines.iter().map(|l| l.seq).collect();
            seqs.sort();
            seqs.dedup();
            seqs.len()
        }
    );
    twin.replace = true;
    let mut again = calls[0].clone();
    again.meta.call_id = "other-id".into();
    assert_eq!(
        store
            .store_finished_calls(&[again.clone(), twin.clone()])
            .expect("twins"),
        vec![true, true]
    );
    let (_fresh_dir, fresh) = temp_store();
    write_incrementally(&fresh, &again);
    write_incrementally(&fresh, &twin);
    assert_same_reads(
        &store,
        &fresh,
        &[id.clone(), again.meta.call_id.clone()],
        "replaced in a batch",
    );

    // A call an interrupted run began but never ended is left alone, or redone when asked.
    let (_dir, store) = temp_store();
    store.begin_call(&calls[0].meta).expect("begin");
    store
        .append_line(&id, &line(1, Speaker::Agent, "half", 0.0))
        .expect("line");
    let mut redo = calls[0].clone();
    assert_eq!(
        store.store_finished_calls(&[redo.clone()]).expect("left"),
        vec![false]
    );
    assert_eq!(
        store.call_row(&id).expect("row").expect("listed").status,
        CallStatus::InProgress
    );
    redo.replace = true;
    assert_eq!(
        store.store_finished_calls(&[redo.clone()]).expect("redo"),
        vec![true]
    );
    let (_fresh_dir, fresh) = temp_store();
    write_incrementally(&fresh, &redo);
    assert_same_reads(&store, &fresh, std::slice::from_ref(&id), "redone");
}

#[test]
fn threads_storing_at_once_store_each_call_exactly_once() {
    let calls = generate_finished(120, 21);
    let ids: Vec<String> = calls.iter().map(|c| c.meta.call_id.clone()).collect();
    let (dir, store) = temp_store();
    // Four threads hand over the same calls, in different orders and batch sizes, as
    // `qc`'s workers would with a conversation id that appears twice.
    let stored: Vec<Vec<(String, bool)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4usize)
            .map(|t| {
                let (store, calls) = (&store, &calls);
                scope.spawn(move || {
                    let mut order: Vec<&FinishedCall> = calls.iter().collect();
                    order.rotate_left(t * 29);
                    if t % 2 == 1 {
                        order.reverse();
                    }
                    let mut out = Vec::new();
                    for batch in order.chunks(3 + t * 5) {
                        let batch: Vec<FinishedCall> = batch.iter().map(|c| (*c).clone()).collect();
                        let flags = store.store_finished_calls(&batch).expect("store");
                        out.extend(batch.iter().map(|c| c.meta.call_id.clone()).zip(flags));
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    for id in &ids {
        let times = stored
            .iter()
            .flatten()
            .filter(|(i, flag)| i == id && *flag)
            .count();
        assert_eq!(times, 1, "{id} stored {times} times");
    }
    let (_fresh_dir, fresh) = temp_store();
    for call in &calls {
        write_incrementally(&fresh, call);
    }
    assert_same_reads(&store, &fresh, &ids, "stored by four threads");
    drop(store);
    let store = open(dir.path());
    assert_same_reads(&store, &fresh, &ids, "stored by four threads, reopened");
}

#[test]
fn a_call_cut_short_before_its_row_is_written_again_whole() {
    let calls = generate_finished(6, 33);
    let (dir, store) = temp_store();
    assert_eq!(
        store.store_finished_calls(&calls).expect("store"),
        vec![true; calls.len()]
    );
    let cut = calls
        .iter()
        .find(|c| {
            c.events
                .iter()
                .any(|e| matches!(e, assist_protocol::Event::Alert(_)))
        })
        .expect("a call with alerts")
        .clone();
    let id = cut.meta.call_id.clone();
    drop(store);

    // What a crash leaves when it strikes after the bundle and before the row: the bundle
    // alone (written in this order, and sled recovers a prefix of its log).
    {
        let db = raw_sled(dir.path());
        let bundles = db.open_tree("bundles").expect("tree");
        assert!(bundles.get(id.as_bytes()).expect("read").is_some());
        db.open_tree("rows")
            .expect("tree")
            .remove(id.as_bytes())
            .expect("remove");
        db.flush().expect("flush");
    }
    let store = open(dir.path());
    assert!(store.call_row(&id).expect("row").is_none(), "not listed");

    // The rerun (a changed pack: no alerts this time, one line fewer) writes it whole, and
    // nothing of the cut write is left over.
    let mut redo = cut.clone();
    redo.events
        .retain(|e| !matches!(e, assist_protocol::Event::Alert(_)));
    redo.summary.hits.clear();
    redo.lines.pop();
    assert_eq!(
        store.store_finished_calls(&[redo.clone()]).expect("redo"),
        vec![true]
    );
    let (_fresh_dir, fresh) = temp_store();
    for call in &calls {
        write_incrementally(&fresh, if call.meta.call_id == id { &redo } else { call });
    }
    let ids: Vec<String> = calls.iter().map(|c| c.meta.call_id.clone()).collect();
    assert_same_reads(&store, &fresh, &ids, "written again");
    assert!(store
        .get_call(&id)
        .expect("read")
        .expect("stored")
        .alerts
        .is_empty());
}

#[test]
fn a_bad_call_fails_its_whole_batch_before_anything_is_written() {
    let calls = generate_finished(3, 4);
    let (_dir, store) = temp_store();
    let mut bad = calls[1].clone();
    bad.lines[0].start = f64::NAN;
    let err = store
        .store_finished_calls(&[calls[0].clone(), bad, calls[2].clone()])
        .expect_err("refused");
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    let mut nul = calls[2].clone();
    nul.meta.call_id = "bad\0id".into();
    assert!(store
        .store_finished_calls(&[calls[0].clone(), nul])
        .is_err());
    let page = store
        .list_calls(&CallFilter::default(), Page::default())
        .expect("list");
    assert_eq!(page.total, 0);
    assert!(store
        .get_call(&calls[0].meta.call_id)
        .expect("read")
        .is_none());
    assert_eq!(
        store.store_finished_calls(&[]).expect("nothing"),
        Vec::<bool>::new()
    );
}

// ---------------------------------------------------------------------------------------------
// Lists

fn loaded(n: usize, days: i64) -> (tempfile::TempDir, SledStore, Vec<GenCall>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SledStore::open_with(dir.path(), bulk_options()).expect("open");
    let calls = generate(n, days, 7);
    for call in &calls {
        write_call(&store, call);
    }
    (dir, store, calls)
}

fn count(calls: &[GenCall], keep: impl Fn(&GenCall) -> bool) -> usize {
    calls.iter().filter(|c| keep(c)).count()
}

fn total(store: &SledStore, filter: CallFilter) -> usize {
    store
        .list_calls(
            &filter,
            Page {
                offset: 0,
                limit: 0,
            },
        )
        .expect("list")
        .total
}

#[test]
fn every_list_filter_selects_exactly_the_matching_calls() {
    let (_dir, store, calls) = loaded(300, 10);
    assert_eq!(total(&store, CallFilter::default()), 300);

    let f = CallFilter {
        agent: Some("bob".into()),
        ..Default::default()
    };
    assert_eq!(total(&store, f), count(&calls, |c| c.agent == "bob"));

    let f = CallFilter {
        team: Some("west".into()),
        ..Default::default()
    };
    assert_eq!(total(&store, f), count(&calls, |c| c.team == "west"));

    let (from, to) = (T0 + 2 * DAY, T0 + 5 * DAY);
    let f = CallFilter {
        from: Some(from),
        to: Some(to),
        ..Default::default()
    };
    assert_eq!(
        total(&store, f),
        count(&calls, |c| c.started_at >= from && c.started_at < to)
    );

    let f = CallFilter {
        min_score: Some(40),
        max_score: Some(69),
        ..Default::default()
    };
    let expected = count(&calls, |c| {
        c.ended_at.is_some() && (40..=69).contains(&c.score)
    });
    assert!(expected > 0);
    assert_eq!(total(&store, f), expected);

    let f = CallFilter {
        category: Some("complaint_risk".into()),
        ..Default::default()
    };
    assert_eq!(
        total(&store, f),
        count(&calls, |c| c.alerts.iter().any(|a| a.2 == "complaint_risk"))
    );

    let f = CallFilter {
        channel: Some(Channel::Chat),
        ..Default::default()
    };
    assert_eq!(
        total(&store, f),
        count(&calls, |c| c.channel == Channel::Chat)
    );

    let f = CallFilter {
        emotion: Some(EmotionLabel::Negative),
        ..Default::default()
    };
    assert_eq!(
        total(&store, f),
        count(&calls, |c| c
            .emotions
            .iter()
            .any(|e| e.1 == EmotionLabel::Negative))
    );

    let f = CallFilter {
        escalated: Some(true),
        ..Default::default()
    };
    assert_eq!(
        total(&store, f),
        count(&calls, |c| c.emotions.iter().any(|e| e.2))
    );

    let f = CallFilter {
        status: Some(CallStatus::InProgress),
        ..Default::default()
    };
    assert_eq!(total(&store, f), count(&calls, |c| c.ended_at.is_none()));

    let f = CallFilter {
        team: Some("east".into()),
        channel: Some(Channel::Voice),
        category: Some("abuse".into()),
        ..Default::default()
    };
    assert_eq!(
        total(&store, f),
        count(&calls, |c| c.team == "east"
            && c.channel == Channel::Voice
            && c.alerts.iter().any(|a| a.2 == "abuse"))
    );
}

#[test]
fn filters_that_match_nothing_return_nothing() {
    let (_dir, store, _calls) = loaded(120, 5);
    let nothing = [
        CallFilter {
            agent: Some("nobody".into()),
            ..Default::default()
        },
        CallFilter {
            team: Some("south".into()),
            ..Default::default()
        },
        CallFilter {
            to: Some(T0),
            ..Default::default()
        },
        CallFilter {
            from: Some(T0 + 6 * DAY),
            ..Default::default()
        },
        CallFilter {
            min_score: Some(101),
            ..Default::default()
        },
        CallFilter {
            category: Some("no_such_category".into()),
            ..Default::default()
        },
        CallFilter {
            source: Some(SourceKind::Batch),
            ..Default::default()
        },
        CallFilter {
            agent: Some("ann".into()),
            team: Some("west".into()),
            ..Default::default()
        },
    ];
    for filter in nothing {
        let page = store.list_calls(&filter, Page::default()).expect("list");
        assert_eq!(page.total, 0, "{filter:?}");
        assert!(page.rows.is_empty(), "{filter:?}");
    }
}

#[test]
fn pages_walk_the_calls_newest_first_without_gaps_or_repeats() {
    let (_dir, store, calls) = loaded(100, 5);
    let filter = CallFilter {
        team: Some("east".into()),
        ..Default::default()
    };
    let mut expected: Vec<&GenCall> = calls.iter().filter(|c| c.team == "east").collect();
    expected.sort_by(|a, b| {
        b.started_at
            .cmp(&a.started_at)
            .then(b.call_id.cmp(&a.call_id))
    });
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = store
            .list_calls(&filter, Page { offset, limit: 7 })
            .expect("page");
        assert_eq!(page.total, expected.len());
        if page.rows.is_empty() {
            break;
        }
        assert!(page.rows.len() <= 7);
        seen.extend(page.rows.into_iter().map(|r| r.call_id));
        offset += 7;
    }
    let expected_ids: Vec<String> = expected.iter().map(|c| c.call_id.clone()).collect();
    assert_eq!(seen, expected_ids);
}

// ---------------------------------------------------------------------------------------------
// Reports

/// What a report group should say, computed from the generated calls alone.
#[derive(Default, Debug)]
struct Expected {
    calls: u64,
    scores: Vec<u32>,
    hits: BTreeMap<String, u64>,
    handle_ms: Vec<i64>,
    adoption: BTreeMap<String, (u64, u64)>,
    intents: HashMap<String, u64>,
    complaints: HashMap<String, u64>,
}

impl Expected {
    fn add(&mut self, c: &GenCall) {
        self.calls += 1;
        if let Some(end) = c.ended_at {
            self.scores.push(c.score);
            self.handle_ms.push(end - c.started_at);
            for intent in &c.intents {
                *self.intents.entry(intent.to_string()).or_default() += 1;
            }
        }
        for (_, _, category) in &c.alerts {
            *self.hits.entry(category.to_string()).or_default() += 1;
        }
        for (_, script, reaction) in &c.scripts {
            let e = self.adoption.entry(script.to_string()).or_default();
            e.0 += 1;
            if *reaction == Some(CardAction::Used) {
                e.1 += 1;
            }
        }
        let mut reasons: Vec<&str> = c
            .alerts
            .iter()
            .filter(|a| a.2 == "complaint_risk")
            .map(|a| a.1)
            .collect();
        reasons.sort();
        reasons.dedup();
        for r in reasons {
            *self.complaints.entry(r.to_string()).or_default() += 1;
        }
    }

    fn check(&self, group: &ReportGroup) {
        let key = &group.key;
        assert_eq!(group.calls, self.calls, "calls of {key}");
        assert_eq!(
            group.scored_calls,
            self.scores.len() as u64,
            "scored of {key}"
        );
        let avg = (!self.scores.is_empty()).then(|| {
            self.scores.iter().map(|&s| f64::from(s)).sum::<f64>() / self.scores.len() as f64
        });
        assert_close(group.avg_score, avg, key);
        let mut histogram = [0u64; 10];
        for &s in &self.scores {
            histogram[if s == 100 { 9 } else { (s / 10) as usize }] += 1;
        }
        assert_eq!(group.score_histogram, histogram, "histogram of {key}");
        assert_eq!(group.hits_by_category, self.hits, "hits of {key}");
        let handle = (!self.handle_ms.is_empty()).then(|| {
            self.handle_ms.iter().sum::<i64>() as f64 / 1000.0 / self.handle_ms.len() as f64
        });
        assert_close(group.avg_handle_time_secs, handle, key);
        let adoption: BTreeMap<String, (u64, u64)> = group
            .card_adoption
            .iter()
            .map(|(k, a)| (k.clone(), (a.shown, a.used)))
            .collect();
        assert_eq!(adoption, self.adoption, "adoption of {key}");
        let top = |counts: &HashMap<String, u64>| {
            let mut all: Vec<(String, u64)> = counts.clone().into_iter().collect();
            all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            all.truncate(5);
            all
        };
        assert_eq!(group.top_intents, top(&self.intents), "intents of {key}");
        assert_eq!(
            group.top_complaints,
            top(&self.complaints),
            "complaints of {key}"
        );
    }
}

fn assert_close(actual: Option<f64>, expected: Option<f64>, what: &str) {
    match (actual, expected) {
        (Some(a), Some(e)) => assert!((a - e).abs() < 1e-9, "{what}: {a} != {e}"),
        (a, e) => assert_eq!(a, e, "{what}"),
    }
}

fn check_report(
    store: &SledStore,
    calls: &[GenCall],
    query: ReportQuery,
    key: impl Fn(&GenCall) -> Vec<String>,
) {
    let report = store.report(&query).expect("report");
    let mut expected: BTreeMap<String, Expected> = BTreeMap::new();
    let mut totals = Expected::default();
    for c in calls.iter().filter(|c| {
        query
            .filter
            .team
            .as_ref()
            .is_none_or(|t| c.team == t.as_str())
    }) {
        for k in key(c) {
            expected.entry(k).or_default().add(c);
        }
        totals.add(c);
    }
    let keys: Vec<&String> = report.groups.iter().map(|g| &g.key).collect();
    assert_eq!(
        keys,
        expected.keys().collect::<Vec<_>>(),
        "{:?}",
        query.group_by
    );
    for group in &report.groups {
        expected[&group.key].check(group);
    }
    totals.check(&report.totals);
}

#[test]
fn reports_by_team_day_week_channel_and_category_match_the_calls() {
    let (_dir, store, calls) = loaded(400, 10);
    check_report(&store, &calls, ReportQuery::new(GroupBy::Team), |c| {
        vec![c.team.to_string()]
    });
    check_report(&store, &calls, ReportQuery::new(GroupBy::Agent), |c| {
        vec![c.agent.to_string()]
    });
    // Days in China time: T0 is a midnight UTC, so local days start 8 hours earlier.
    let mut by_day = ReportQuery::new(GroupBy::Day);
    by_day.utc_offset_minutes = 480;
    check_report(&store, &calls, by_day, |c| {
        let day = (c.started_at - T0 + 8 * HOUR) / DAY;
        vec![format!("2024-03-{:02}", 4 + day)]
    });
    check_report(&store, &calls, ReportQuery::new(GroupBy::Week), |c| {
        let week = (c.started_at - T0) / (7 * DAY);
        vec![format!("2024-03-{:02}", 4 + 7 * week)]
    });
    check_report(&store, &calls, ReportQuery::new(GroupBy::Channel), |c| {
        vec![match c.channel {
            Channel::Voice => "voice".to_string(),
            Channel::Chat => "chat".to_string(),
        }]
    });
    check_report(&store, &calls, ReportQuery::new(GroupBy::Category), |c| {
        let mut categories: Vec<String> = c.alerts.iter().map(|a| a.2.to_string()).collect();
        categories.sort();
        categories.dedup();
        if categories.is_empty() {
            categories.push("none".to_string());
        }
        categories
    });
    let mut west = ReportQuery::new(GroupBy::Agent);
    west.filter.team = Some("west".into());
    check_report(&store, &calls, west, |c| vec![c.agent.to_string()]);
}

#[test]
fn report_csv_has_a_header_a_row_per_group_and_totals() {
    let (_dir, store, calls) = loaded(60, 3);
    let report = store
        .report(&ReportQuery::new(GroupBy::Team))
        .expect("report");
    let csv = report_csv(&report);
    let mut lines = csv.lines();
    let header = lines.next().expect("header");
    assert!(
        header.starts_with("group,calls,scored_calls,avg_score,score_0_9,"),
        "{header}"
    );
    assert!(
        header.ends_with(",hits,top_intents,top_complaints"),
        "{header}"
    );
    let columns = header.split(',').count();
    let rows: Vec<&str> = lines.by_ref().take_while(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), report.groups.len() + 1);
    let last = rows.last().expect("totals row");
    assert!(
        last.starts_with(&format!("total,{},", calls.len())),
        "{last}"
    );
    for row in &rows {
        // Fields holding `;`-joined lists have no commas, so a plain split counts columns.
        assert_eq!(row.split(',').count(), columns, "{row}");
    }
    assert_eq!(
        lines.next(),
        Some("rule,hits,confirmed,overturned,precision")
    );
}

#[test]
fn trainer_verdicts_make_rule_precision() {
    let (dir, store) = temp_store();
    let mut alert_ids: Vec<(String, String)> = Vec::new();
    for i in 0..4 {
        let id = format!("c{i}");
        store
            .begin_call(&meta(&id, "ann", None, T0 + i))
            .expect("begin");
        store
            .append_events(
                &id,
                &[
                    alert(1.0, "no_guarantee", "misleading_promise"),
                    alert(2.0, "no_abuse", "abuse"),
                ],
            )
            .expect("alerts");
        store
            .end_call(&id, &summary(50, &[], &[]), T0 + 60_000)
            .expect("end");
        for a in store.get_call(&id).expect("read").expect("exists").alerts {
            if a.alert.rule == "no_guarantee" {
                alert_ids.push((id.clone(), a.id));
            }
        }
    }
    let verdict = |kind| {
        Some(Verdict {
            kind,
            by: "tina".into(),
            at: T0 + DAY,
            note: None,
        })
    };
    // 3 confirmed, 1 overturned... then one confirmed is changed to overturned: 2 vs 2.
    for (i, (call, alert)) in alert_ids.iter().enumerate() {
        let kind = if i == 0 {
            VerdictKind::Overturned
        } else {
            VerdictKind::Confirmed
        };
        store
            .set_verdict(call, alert, verdict(kind))
            .expect("verdict");
    }
    let (call, alert) = &alert_ids[1];
    store
        .set_verdict(call, alert, verdict(VerdictKind::Overturned))
        .expect("changed verdict");

    let precision_of = |store: &SledStore| {
        store
            .report(&ReportQuery::new(GroupBy::Agent))
            .expect("report")
            .rule_precision
            .into_iter()
            .map(|r| (r.rule.clone(), r))
            .collect::<HashMap<_, _>>()
    };
    let rules = precision_of(&store);
    let ng = &rules["no_guarantee"];
    assert_eq!((ng.hits, ng.confirmed, ng.overturned), (4, 2, 2));
    assert_eq!(ng.precision, Some(0.5));
    assert_eq!(
        rules["no_abuse"].precision, None,
        "no verdicts, no precision"
    );

    let call_page = store.get_call(call).expect("read").expect("exists");
    let judged = call_page
        .alerts
        .iter()
        .find(|a| &a.id == alert)
        .expect("alert");
    assert_eq!(
        judged.verdict.as_ref().map(|v| v.kind),
        Some(VerdictKind::Overturned)
    );
    assert_eq!(judged.verdict.as_ref().map(|v| v.by.as_str()), Some("tina"));

    // Clearing a verdict, then a restart: the figures come from disk.
    store.set_verdict(call, alert, None).expect("cleared");
    drop(store);
    let store = open(dir.path());
    let ng = &precision_of(&store)["no_guarantee"];
    assert_eq!((ng.confirmed, ng.overturned), (2, 1));

    let err = store
        .set_verdict("c0", "00ff", verdict(VerdictKind::Confirmed))
        .expect_err("no such alert");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
}

#[test]
fn a_manual_score_overrides_the_engine_score_in_lists_and_reports() {
    let (dir, store) = temp_store();
    store
        .begin_call(&meta("c1", "ann", None, T0))
        .expect("begin");
    store
        .end_call("c1", &summary(30, &[], &[]), T0 + 1000)
        .expect("end");
    let manual = ManualScore {
        score: 85,
        reason: "the promise was a quote of the policy".into(),
        by: "tina".into(),
        at: T0 + DAY,
    };
    store
        .set_manual_score("c1", Some(manual.clone()))
        .expect("manual score");
    let high = CallFilter {
        min_score: Some(80),
        ..Default::default()
    };
    assert_eq!(total(&store, high.clone()), 1);
    drop(store);
    let store = open(dir.path());
    assert_eq!(total(&store, high.clone()), 1, "survives a restart");
    let call = store.get_call("c1").expect("read").expect("exists");
    assert_eq!(call.manual_score, Some(manual));
    assert_eq!(call.score(), Some(85));
    let report = store
        .report(&ReportQuery::new(GroupBy::Agent))
        .expect("report");
    assert_eq!(report.totals.avg_score, Some(85.0));

    store.set_manual_score("c1", None).expect("cleared");
    assert_eq!(total(&store, high), 0);

    let too_high = ManualScore {
        score: 101,
        reason: "x".into(),
        by: "tina".into(),
        at: T0,
    };
    assert!(matches!(
        store.set_manual_score("c1", Some(too_high)),
        Err(StoreError::Invalid(_))
    ));
    let no_reason = ManualScore {
        score: 50,
        reason: " ".into(),
        by: "tina".into(),
        at: T0,
    };
    assert!(matches!(
        store.set_manual_score("c1", Some(no_reason)),
        Err(StoreError::Invalid(_))
    ));
}

#[test]
fn trainers_comment_on_lines_that_exist() {
    let (_dir, store) = temp_store();
    store
        .begin_call(&meta("c1", "ann", None, T0))
        .expect("begin");
    store
        .append_line("c1", &line(1, Speaker::Agent, "hello", 0.0))
        .expect("line");
    let first = store
        .add_comment("c1", 1, "tina", "greet by name", T0 + 5)
        .expect("comment");
    let second = store
        .add_comment("c1", 1, "tina", "and smile", T0 + 6)
        .expect("comment");
    assert!(second.id > first.id);
    let err = store
        .add_comment("c1", 9, "tina", "no such line", T0)
        .expect_err("missing line");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert!(store.delete_comment("c1", first.id).expect("delete"));
    assert!(!store.delete_comment("c1", first.id).expect("again"));
    let call = store.get_call("c1").expect("read").expect("exists");
    assert_eq!(call.comments, vec![second]);
}

// ---------------------------------------------------------------------------------------------
// Users and tokens

fn new_user(username: &str, role: Role) -> NewUser {
    NewUser {
        username: username.into(),
        display_name: String::new(),
        password: "correct horse".into(),
        role,
        team: Some("east".into()),
    }
}

#[test]
fn an_unknown_username_takes_as_long_to_refuse_as_a_wrong_password() {
    // The real password cost (not the tests' fast one): the difference is what leaks.
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SledStore::open_with(
        dir.path(),
        StoreOptions {
            password_cost: PasswordCost::Default,
            ..StoreOptions::default()
        },
    )
    .expect("store opens");
    store
        .create_user(&new_user("ann", Role::Agent), T0)
        .expect("create");
    let median = |username: &str| {
        let mut times: Vec<f64> = (0..5)
            .map(|_| {
                let t = std::time::Instant::now();
                assert_eq!(
                    store
                        .verify_password(username, "wrong horse")
                        .expect("verify"),
                    None
                );
                t.elapsed().as_secs_f64()
            })
            .collect();
        times.sort_by(f64::total_cmp);
        times[2]
    };
    // Warm both paths once (the decoy hash is made on first use).
    median("nobody");
    let (wrong, unknown) = (median("ann"), median("nobody"));
    println!("wrong password {wrong:.4} s, unknown username {unknown:.4} s");
    // Without the decoy check an unknown username is refused ~1000x faster; with it both take
    // one password check (the bounds leave room for a busy machine).
    assert!(
        unknown > wrong * 0.2 && unknown < wrong * 5.0,
        "wrong password {wrong:.4} s, unknown username {unknown:.4} s"
    );
}

#[test]
fn passwords_are_checked_and_never_stored_in_clear() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    assert!(store.is_empty_of_users().expect("empty"));
    let user = store
        .create_user(&new_user("ann", Role::Agent), T0)
        .expect("create");
    assert_eq!(user.display_name, "ann");
    assert!(!store.is_empty_of_users().expect("not empty"));
    assert_eq!(
        store
            .verify_password("ann", "correct horse")
            .expect("verify"),
        Some(user.clone())
    );
    assert_eq!(
        store.verify_password("ann", "wrong horse").expect("verify"),
        None
    );
    assert_eq!(
        store
            .verify_password("nobody", "correct horse")
            .expect("verify"),
        None
    );
    assert!(matches!(
        store.create_user(&new_user("ann", Role::Admin), T0),
        Err(StoreError::AlreadyExists { .. })
    ));
    let mut short = new_user("bob", Role::Agent);
    short.password = "short".into();
    assert!(matches!(
        store.create_user(&short, T0),
        Err(StoreError::Invalid(_))
    ));

    store
        .set_password("ann", "battery staple")
        .expect("new password");
    assert_eq!(
        store.verify_password("ann", "correct horse").expect("old"),
        None
    );
    assert!(store
        .verify_password("ann", "battery staple")
        .expect("new")
        .is_some());

    store
        .update_user(
            "ann",
            &UserUpdate {
                disabled: Some(true),
                ..Default::default()
            },
        )
        .expect("disable");
    assert_eq!(
        store
            .verify_password("ann", "battery staple")
            .expect("verify"),
        None,
        "a disabled user cannot log in"
    );
    drop(store);
    let raw = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .any(|bytes| bytes.windows(14).any(|w| w == b"battery staple"));
    assert!(!raw, "the password is not in the data files");
}

#[test]
fn tokens_expire_and_can_be_revoked() {
    let (_dir, store) = temp_store();
    store
        .create_user(&new_user("ann", Role::Trainer), T0)
        .expect("create");
    let token = store.issue_token("ann", T0, HOUR).expect("token");
    assert_eq!(token.len(), 64);
    let other = store.issue_token("ann", T0, HOUR).expect("token");
    assert_ne!(token, other);

    let who = store.user_for_token(&token, T0 + HOUR - 1).expect("lookup");
    assert_eq!(who.map(|u| u.role), Some(Role::Trainer));
    assert_eq!(
        store.user_for_token(&token, T0 + HOUR).expect("expired"),
        None
    );
    assert_eq!(
        store.user_for_token("not a token", T0).expect("unknown"),
        None
    );

    assert!(store.revoke_token(&other).expect("revoke"));
    assert_eq!(store.user_for_token(&other, T0).expect("revoked"), None);

    let a = store.issue_token("ann", T0, HOUR).expect("token");
    let b = store.issue_token("ann", T0, 2 * HOUR).expect("token");
    assert_eq!(store.purge_expired_tokens(T0 + HOUR).expect("purge"), 1);
    assert_eq!(
        store.user_for_token(&b, T0).expect("b").map(|u| u.username),
        Some("ann".into())
    );
    assert_eq!(store.user_for_token(&a, T0).expect("a"), None);
    assert!(store.delete_user("ann").expect("delete"));
    assert_eq!(
        store.user_for_token(&b, T0).expect("gone with the user"),
        None
    );
    assert!(matches!(
        store.issue_token("ann", T0, HOUR),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn teams_and_users_are_listed_in_order() {
    let (_dir, store) = temp_store();
    store.create_team("west", "West", T0).expect("team");
    store.create_team("east", "", T0).expect("team");
    assert!(matches!(
        store.create_team("east", "again", T0),
        Err(StoreError::AlreadyExists { .. })
    ));
    let teams: Vec<(String, String)> = store
        .teams()
        .expect("teams")
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect();
    assert_eq!(
        teams,
        vec![
            ("east".into(), "east".into()),
            ("west".into(), "West".into())
        ]
    );
    store
        .create_user(&new_user("zed", Role::Lead), T0)
        .expect("user");
    store
        .create_user(&new_user("amy", Role::Admin), T0)
        .expect("user");
    let names: Vec<String> = store
        .list_users()
        .expect("users")
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, vec!["amy".to_string(), "zed".to_string()]);
    assert!(store.delete_team("west").expect("delete"));
    assert_eq!(store.teams().expect("teams").len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Pack versions

fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect()
}

fn publish(base: u64, author: &str, scope: PackScope, pack: &[(&str, &str)]) -> NewPackVersion {
    NewPackVersion {
        base_version: base,
        author: author.into(),
        at: T0 + base as i64,
        scope,
        message: format!("edit by {author}"),
        files: files(pack),
    }
}

#[test]
fn two_leads_editing_the_same_version_cannot_overwrite_each_other() {
    let (_dir, store) = temp_store();
    let v1 = store
        .publish_pack(&publish(
            0,
            "lee",
            PackScope::All,
            &[("rules/a.toml", "x = 1\n")],
        ))
        .expect("first version");
    assert_eq!(v1.number, 1);
    assert!(v1.diff.contains("+x = 1"), "{}", v1.diff);

    // Both leads opened version 1.
    let v2 = store
        .publish_pack(&publish(
            1,
            "lee",
            PackScope::All,
            &[("rules/a.toml", "x = 2\n")],
        ))
        .expect("lee publishes");
    let err = store
        .publish_pack(&publish(
            1,
            "max",
            PackScope::All,
            &[("rules/a.toml", "x = 3\n")],
        ))
        .expect_err("max is behind");
    match err {
        StoreError::VersionConflict { expected, current } => {
            assert_eq!((expected, current), (1, 2))
        }
        other => panic!("expected a conflict, got {other}"),
    }
    assert_eq!(err_code_of_conflict(), "version_conflict");
    assert_eq!(store.latest_pack().expect("latest"), Some(v2.clone()));
    assert!(v2.diff.contains("-x = 1\n+x = 2"), "{}", v2.diff);
    assert!(matches!(
        store.publish_pack(&publish(7, "max", PackScope::All, &[])),
        Err(StoreError::VersionConflict { .. })
    ));
}

fn err_code_of_conflict() -> &'static str {
    StoreError::VersionConflict {
        expected: 1,
        current: 2,
    }
    .code()
}

#[test]
fn a_rollback_publishes_an_earlier_version_again() {
    let (_dir, store) = temp_store();
    store
        .publish_pack(&publish(0, "lee", PackScope::All, &[("a.toml", "v = 1\n")]))
        .expect("v1");
    store
        .publish_pack(&publish(
            1,
            "lee",
            PackScope::All,
            &[("a.toml", "v = 2\n"), ("b.toml", "new\n")],
        ))
        .expect("v2");
    let v3 = store.rollback_to(1, "max", T0 + DAY).expect("rollback");
    assert_eq!(v3.number, 3);
    assert_eq!(v3.files, files(&[("a.toml", "v = 1\n")]));
    assert_eq!(v3.rolled_back_from, Some(1));
    assert_eq!(v3.author, "max");
    assert!(v3.diff.contains("-v = 2\n+v = 1"), "{}", v3.diff);
    assert!(
        v3.diff.contains("+++ /dev/null"),
        "b.toml removed: {}",
        v3.diff
    );

    let history = store.pack_versions().expect("history");
    let numbers: Vec<u64> = history.iter().map(|v| v.number).collect();
    assert_eq!(numbers, vec![1, 2, 3]);
    assert_eq!((history[1].added, history[1].removed), (2, 1));
    assert_eq!(
        store.pack_version(2).expect("v2").map(|v| v.author),
        Some("lee".into())
    );
    assert!(matches!(
        store.rollback_to(9, "max", T0),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn a_team_version_reaches_only_that_team() {
    let (_dir, store) = temp_store();
    store
        .publish_pack(&publish(0, "lee", PackScope::All, &[("a.toml", "all\n")]))
        .expect("v1");
    store
        .publish_pack(&publish(
            1,
            "lee",
            PackScope::Team("east".into()),
            &[("a.toml", "east\n")],
        ))
        .expect("v2");
    let number = |team| {
        store
            .latest_pack_for(team)
            .expect("latest")
            .map(|v| v.number)
    };
    assert_eq!(number(Some("east")), Some(2));
    assert_eq!(number(Some("west")), Some(1));
    assert_eq!(number(None), Some(1));
    let err = store
        .publish_pack(&publish(2, "lee", PackScope::All, &[("../escape", "x")]))
        .expect_err("bad path");
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Coaching tasks

#[test]
fn a_coaching_task_goes_open_acknowledged_done_and_never_back() {
    let (_dir, store) = temp_store();
    let task = store
        .create_task(&NewTask {
            agent: "ann".into(),
            created_by: "tina".into(),
            title: "Stop promising returns".into(),
            note: "see the calls".into(),
            call_ids: vec!["c1".into()],
            due: T0 + 7 * DAY,
            created_at: T0,
        })
        .expect("create");
    assert_eq!(task.status, TaskStatus::Open);
    let err = store
        .set_task_status(task.id, TaskStatus::Open, T0)
        .map(|t| t.status);
    assert_eq!(err.expect("same status is a no-op"), TaskStatus::Open);
    let acknowledged = store
        .set_task_status(task.id, TaskStatus::Acknowledged, T0 + HOUR)
        .expect("acknowledge");
    assert_eq!(acknowledged.updated_at, T0 + HOUR);
    let err = store
        .set_task_status(task.id, TaskStatus::Open, T0 + 2 * HOUR)
        .expect_err("no going back");
    assert!(
        matches!(
            err,
            StoreError::InvalidTransition {
                from: "acknowledged",
                to: "open"
            }
        ),
        "{err}"
    );
    assert_eq!(err.code(), "invalid_transition");
    store
        .set_task_status(task.id, TaskStatus::Done, T0 + DAY)
        .expect("done");
    assert!(matches!(
        store.set_task_status(task.id, TaskStatus::Acknowledged, T0 + DAY),
        Err(StoreError::InvalidTransition { .. })
    ));
    assert!(matches!(
        store.set_task_status(999, TaskStatus::Done, T0),
        Err(StoreError::NotFound { .. })
    ));
    let open = store
        .list_tasks(&TaskFilter {
            status: Some(TaskStatus::Open),
            ..Default::default()
        })
        .expect("list");
    assert!(open.is_empty());
    let anns = store
        .list_tasks(&TaskFilter {
            agent: Some("ann".into()),
            ..Default::default()
        })
        .expect("list");
    assert_eq!(anns.len(), 1);
    assert_eq!(anns[0].status, TaskStatus::Done);
}

#[test]
fn an_agents_scores_are_compared_before_and_after_coaching() {
    let (_dir, store) = temp_store();
    let task_created = T0 + 10 * DAY;
    let scored = [
        (-3 * DAY, 40),
        (-2 * DAY, 50),
        (-40 * DAY, 0), // outside the 30-day window
        (DAY, 80),
        (2 * DAY, 90),
        (3 * DAY, 100),
    ];
    for (i, (offset, score)) in scored.iter().enumerate() {
        let id = format!("c{i}");
        store
            .begin_call(&meta(&id, "ann", None, task_created + offset))
            .expect("begin");
        store
            .end_call(
                &id,
                &summary(*score, &[], &[]),
                task_created + offset + 1000,
            )
            .expect("end");
    }
    store
        .begin_call(&meta("other", "bob", None, task_created + DAY))
        .expect("someone else");
    store
        .end_call("other", &summary(0, &[], &[]), task_created + DAY + 1000)
        .expect("end");
    let task = store
        .create_task(&NewTask {
            agent: "ann".into(),
            created_by: "tina".into(),
            title: "t".into(),
            note: String::new(),
            call_ids: vec![],
            due: task_created + DAY,
            created_at: task_created,
        })
        .expect("task");
    let compared = store.task_comparison(task.id, 30 * DAY).expect("compare");
    assert_eq!(compared.before.calls, 2);
    assert_eq!(compared.before.avg_score, Some(45.0));
    assert_eq!(compared.after.calls, 3);
    assert_eq!(compared.after.avg_score, Some(90.0));
}

// ---------------------------------------------------------------------------------------------
// Audit, retention, export

#[test]
fn the_audit_log_reads_newest_first_within_a_range() {
    let (_dir, store) = temp_store();
    let entries = [
        (T0, "ann", audit_action::LOGIN),
        (T0 + 10, "lee", audit_action::PUBLISH),
        (T0 + 20, "tina", audit_action::MANUAL_SCORE),
        (T0 + 30, "ann", audit_action::LOGIN),
    ];
    for (at, actor, action) in entries {
        store
            .audit(&AuditEntry {
                at,
                actor: actor.into(),
                action: action.into(),
                target: "x".into(),
                detail: String::new(),
            })
            .expect("audit");
    }
    let all = store.audit_log(&AuditQuery::default()).expect("log");
    let times: Vec<i64> = all.iter().map(|e| e.at - T0).collect();
    assert_eq!(times, vec![30, 20, 10, 0]);
    let logins = store
        .audit_log(&AuditQuery {
            action: Some(audit_action::LOGIN.into()),
            ..Default::default()
        })
        .expect("logins");
    assert_eq!(logins.len(), 2);
    let window = store
        .audit_log(&AuditQuery {
            from: Some(T0 + 10),
            to: Some(T0 + 30),
            ..Default::default()
        })
        .expect("window");
    assert_eq!(
        window.iter().map(|e| e.at - T0).collect::<Vec<_>>(),
        vec![20, 10]
    );
    let limited = store
        .audit_log(&AuditQuery {
            limit: 1,
            ..Default::default()
        })
        .expect("limited");
    assert_eq!(limited.len(), 1);
}

#[test]
fn purging_removes_old_ended_calls_with_everything_about_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    for (id, ended) in [
        ("old", Some(T0)),
        ("new", Some(T0 + 30 * DAY)),
        ("live", None),
    ] {
        store
            .begin_call(&meta(id, "ann", None, T0 - DAY))
            .expect("begin");
        store
            .append_turn(
                id,
                &line(1, Speaker::Agent, "hello", 0.0),
                &[alert(0.0, "r", "abuse"), card(0.0, "s", CardKind::Script)],
            )
            .expect("turn");
        store
            .add_comment(id, 1, "tina", "note", T0)
            .expect("comment");
        if let Some(at) = ended {
            store.end_call(id, &summary(50, &[], &[]), at).expect("end");
        }
    }
    assert_eq!(store.purge_ended_before(T0 + DAY).expect("purge"), 1);
    assert!(store.get_call("old").expect("read").is_none());
    assert!(store.call_row("old").expect("row").is_none());
    assert!(store.get_call("new").expect("read").is_some());
    assert!(
        store.get_call("live").expect("read").is_some(),
        "calls in progress stay"
    );
    assert_eq!(total(&store, CallFilter::default()), 2);
    assert_eq!(store.last_seq("old").expect("no lines left"), 0);

    assert!(store.delete_call("new").expect("delete"));
    assert!(!store.delete_call("new").expect("again"));
    drop(store);
    let store = open(dir.path());
    assert_eq!(total(&store, CallFilter::default()), 1);
    // A call id reused after deletion starts clean.
    store
        .begin_call(&meta("old", "bob", None, T0))
        .expect("begin again");
    let call = store.get_call("old").expect("read").expect("exists");
    assert!(call.lines.is_empty() && call.alerts.is_empty() && call.comments.is_empty());
}

#[test]
fn a_call_exports_as_json_with_its_schema_version() {
    let (_dir, store) = temp_store();
    store
        .begin_call(&meta("c1", "ann", Some("east"), T0))
        .expect("begin");
    store
        .append_turn(
            "c1",
            &line(1, Speaker::Customer, "太慢了", 0.0),
            &[emotion(0.0, EmotionLabel::Negative, false)],
        )
        .expect("turn");
    store
        .end_call("c1", &summary(60, &[], &["refund"]), T0 + 1000)
        .expect("end");
    let json = store.export_call("c1").expect("export");
    assert_eq!(json["schema_version"], SCHEMA_VERSION);
    assert_eq!(json["meta"]["agent_id"], "ann");
    assert_eq!(json["meta"]["status"], "ended");
    assert_eq!(json["lines"][0]["text"], "太慢了");
    assert_eq!(json["emotions"][0]["label"], "negative");
    assert_eq!(json["summary"]["score"], 60);
    let back: CallRecord = serde_json::from_value(json).expect("the export reads back");
    assert_eq!(back.meta.call_id, "c1");
    assert!(matches!(
        store.export_call("nope"),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn settings_are_kept() {
    let (dir, store) = temp_store();
    assert_eq!(store.setting("retention_days").expect("get"), None);
    store.set_setting("retention_days", "180").expect("set");
    drop(store);
    let store = open(dir.path());
    assert_eq!(
        store.setting("retention_days").expect("get"),
        Some("180".into())
    );
}

// ---------------------------------------------------------------------------------------------
// Opening

#[test]
fn a_store_written_by_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    drop(open(dir.path()));
    {
        let db = raw_sled(dir.path());
        db.open_tree("meta")
            .expect("meta")
            .insert(sled_schema_key(), &99u32.to_be_bytes())
            .expect("write");
        db.flush().expect("flush");
    }
    let err = SledStore::open_with(dir.path(), options())
        .err()
        .expect("refused");
    assert!(
        matches!(
            err,
            StoreError::Schema {
                found: 99,
                supported: SCHEMA_VERSION,
                ..
            }
        ),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("99"), "{message}");
}

#[test]
fn a_version_1_store_is_upgraded_on_open_and_keeps_its_calls() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let store = open(dir.path());
        write_call(&store, &generate(1, 1, 5)[0]);
    }
    let read_version = |dir: &std::path::Path| -> u32 {
        let db = raw_sled(dir);
        let raw = db
            .open_tree("meta")
            .expect("meta")
            .get(sled_schema_key())
            .expect("read");
        u32::from_be_bytes(raw.expect("set").as_ref().try_into().expect("4 bytes"))
    };
    {
        let db = raw_sled(dir.path());
        db.open_tree("meta")
            .expect("meta")
            .insert(sled_schema_key(), &1u32.to_be_bytes())
            .expect("write");
        db.flush().expect("flush");
    }
    assert_eq!(read_version(dir.path()), 1);
    let store = SledStore::open_with(dir.path(), options()).expect("a version 1 store opens");
    assert_eq!(
        store
            .list_calls(&CallFilter::default(), Page::default())
            .expect("list")
            .total,
        1
    );
    drop(store);
    assert_eq!(read_version(dir.path()), SCHEMA_VERSION);
    assert_eq!(SCHEMA_VERSION, 3);
}

/// Rewrites a store's items the way schema version 2 stored a call stored whole: one value per
/// kind under the bare `call id` NUL key, `[[suffix hex, item], ...]` in suffix order.
fn pack_as_version_2(dir: &std::path::Path, ids: &[String]) {
    let db = raw_sled(dir);
    for kind in ["lines", "alerts", "emotions", "cards"] {
        let tree = db.open_tree(kind).expect("tree");
        for id in ids {
            let mut prefix = id.as_bytes().to_vec();
            prefix.push(0);
            let mut packed = Vec::new();
            for item in tree.scan_prefix(&prefix) {
                let (key, value) = item.expect("read");
                let suffix: String = key[prefix.len()..]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                let item: serde_json::Value = serde_json::from_slice(&value).expect("JSON");
                packed.push((suffix, item));
                tree.remove(key).expect("remove");
            }
            if !packed.is_empty() {
                tree.insert(&prefix, serde_json::to_vec(&packed).expect("encode"))
                    .expect("insert");
            }
        }
    }
    db.open_tree("meta")
        .expect("meta")
        .insert(sled_schema_key(), &2u32.to_be_bytes())
        .expect("write");
    db.flush().expect("flush");
}

#[test]
fn a_version_2_store_moves_its_packed_items_into_bundles_and_reads_the_same() {
    let calls = generate_finished(40, 21);
    let ids: Vec<String> = calls.iter().map(|c| c.meta.call_id.clone()).collect();
    let (_fresh_dir, fresh) = temp_store();
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let store = open(dir.path());
        for call in &calls {
            write_incrementally(&store, call);
            write_incrementally(&fresh, call);
        }
    }
    // All but the last call packed as version 2 did; the last keeps its single keys.
    pack_as_version_2(dir.path(), &ids[..ids.len() - 1]);
    {
        let db = raw_sled(dir.path());
        let lines = db.open_tree("lines").expect("tree");
        let mut bare = ids[0].as_bytes().to_vec();
        bare.push(0);
        assert!(lines.get(&bare).expect("read").is_some(), "packed as v2");
    }

    let store = open(dir.path());
    assert_same_reads(&store, &fresh, &ids, "upgraded from version 2");
    // A line appended after the upgrade lands next to the packed ones.
    let seq = store.last_seq(&ids[0]).expect("seq") + 1;
    let extra = line(seq, Speaker::Agent, "one more line", 9_999.0);
    assert!(store.append_line(&ids[0], &extra).expect("append"));
    assert!(fresh.append_line(&ids[0], &extra).expect("append"));
    assert!(!store.append_line(&ids[0], &extra).expect("again"));
    assert_same_reads(&store, &fresh, &ids, "after an append");
    drop(store);

    let db = raw_sled(dir.path());
    for kind in ["lines", "alerts", "emotions", "cards"] {
        let tree = db.open_tree(kind).expect("tree");
        let bare = tree
            .iter()
            .keys()
            .filter(|k| k.as_ref().expect("key").last() == Some(&0))
            .count();
        assert_eq!(bare, 0, "no packed value left in {kind}");
    }
    assert_eq!(
        db.open_tree("bundles").expect("tree").len(),
        ids.len() - 1,
        "one bundle per packed call"
    );
    let version = db
        .open_tree("meta")
        .expect("meta")
        .get(sled_schema_key())
        .expect("read")
        .expect("set");
    assert_eq!(version.as_ref(), &SCHEMA_VERSION.to_be_bytes());
}

fn sled_schema_key() -> &'static [u8] {
    b"schema_version"
}

#[test]
fn a_missing_data_dir_is_created_and_a_locked_one_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let nested = dir.path().join("data").join("store");
    let store = open(&nested);
    assert!(nested.is_dir());
    assert_eq!(store.path(), nested.as_path());
    let err = SledStore::open_with(&nested, options())
        .err()
        .expect("the dir is locked");
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("another assist-server"), "{message}");
    assert!(message.contains(&nested.display().to_string()), "{message}");
}

#[test]
fn the_store_works_behind_an_arc_dyn_trait() {
    let (_dir, store) = temp_store();
    let shared: std::sync::Arc<dyn CallStore> = std::sync::Arc::new(store);
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let store = shared.clone();
            std::thread::spawn(move || {
                let id = format!("t{i}");
                store
                    .begin_call(&meta(&id, "ann", None, T0 + i))
                    .expect("begin");
                for seq in 1..=20 {
                    store
                        .append_line(&id, &line(seq, Speaker::Agent, "x", seq as f64))
                        .expect("line");
                }
                store
                    .end_call(&id, &summary(70, &[], &[]), T0 + 1000)
                    .expect("end");
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("thread");
    }
    let page = shared
        .list_calls(&CallFilter::default(), Page::default())
        .expect("list");
    assert_eq!(page.total, 4);
    assert!(page.rows.iter().all(|r| r.lines == 20));
}
