//! The agent client against the real server: the headless transcript mode is the live-path
//! test driver, and the link must survive a network drop and a server that is not up yet.

mod audio;
mod common;

use assist_protocol::Event;
use common::*;
use std::time::Duration;

fn summary(events: &[Event]) -> &assist_protocol::Summary {
    match events.last() {
        Some(Event::Summary(s)) => s,
        other => panic!("the last event is not the summary: {other:?}"),
    }
}

#[test]
fn headless_transcript_mode_prints_exactly_what_replay_prints() {
    let server = Server::start("127.0.0.1:0", &[]);
    for (name, language) in [
        ("zh_angry_complaint.jsonl", "zh"),
        ("en_guarantee_and_abuse.jsonl", "en"),
    ] {
        let call = sample_call(name);
        let call_arg = call.to_string_lossy().to_string();
        let out = run_client(&[
            "--headless",
            "--server",
            &server.url(),
            "--transcript",
            &call_arg,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let live = parse_events(&out.stdout);
        assert!(
            live.iter().any(|e| matches!(e, Event::Alert(_))),
            "{name}: alerts expected"
        );
        assert_eq!(live, replay(&call, language), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_loses_and_doubles_nothing() {
    let server = Server::start("127.0.0.1:0", &[]);
    let proxy = Proxy::start(server.addr).await;
    let call = sample_call("zh_angry_complaint.jsonl");
    let call_arg = call.to_string_lossy().to_string();
    let url = proxy.url();
    // Paced: the ~100 s call takes ~4 s at 25x, so the cut lands mid-call.
    let client = spawn_client(&[
        "--headless",
        "--realtime",
        "--speed",
        "25",
        "--server",
        &url,
        "--transcript",
        &call_arg,
    ]);
    let mut cuts = 0;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        cuts += proxy.cut();
    }
    assert!(cuts > 0, "the test cut no connection");
    let out = tokio::task::spawn_blocking(move || client.wait_with_output())
        .await
        .expect("join")
        .expect("client exits");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("disconnected"),
        "the client noticed the drop: {stderr}"
    );
    let live = parse_events(&out.stdout);
    let replayed = replay(&call, "zh");
    assert_eq!(
        summary(&live),
        summary(&replayed),
        "every utterance counted exactly once"
    );
    // Events in flight at the cut may be missed, but none may be invented or doubled.
    let mut seen = Vec::new();
    for event in &live {
        assert!(
            replayed.contains(event),
            "an event replay does not have: {event:?}"
        );
        assert!(!seen.contains(&event), "a doubled event: {event:?}");
        seen.push(event);
    }
}

#[test]
fn the_client_waits_for_a_server_that_is_not_up_yet() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let url = format!("ws://{listen}/ws");
    let call = sample_call("zh_clean_refund.jsonl");
    let call_arg = call.to_string_lossy().to_string();
    let client = spawn_client(&["--headless", "--server", &url, "--transcript", &call_arg]);
    std::thread::sleep(Duration::from_millis(1500));
    let _server = Server::start(&listen, &[]);
    let out = client.wait_with_output().expect("client exits");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("cannot connect"),
        "the wait was reported: {stderr}"
    );
    assert_eq!(parse_events(&out.stdout), replay(&call, "zh"));
}

#[test]
fn a_refused_token_stops_the_client_with_a_clear_message() {
    let server = Server::start("127.0.0.1:0", &["--agent-token", "agent-1=right"]);
    let call = sample_call("zh_clean_refund.jsonl");
    let call_arg = call.to_string_lossy().to_string();
    let out = run_client(&[
        "--headless",
        "--server",
        &server.url(),
        "--agent-id",
        "agent-1",
        "--token",
        "wrong",
        "--transcript",
        &call_arg,
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Unauthorized") && stderr.contains("log in again"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "no events for a refused call");
}

#[test]
fn an_unknown_renderer_is_a_clear_error_before_anything_starts() {
    let call = sample_call("zh_clean_refund.jsonl");
    let out = run_client(&[
        "--renderer",
        "vulkan",
        "--server",
        "ws://127.0.0.1:9/ws",
        "--transcript",
        call.to_str().expect("utf-8 path"),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown renderer \"vulkan\"") && stderr.contains("software"),
        "{stderr}"
    );
}

#[test]
fn a_missing_transcript_is_a_clear_error() {
    let out = run_client(&["--headless", "--transcript", "/nonexistent/call.jsonl"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/call.jsonl"), "{stderr}");
}

mod overlay_model {
    //! The overlay's state, without a window (the window itself: scripts/screenshot.sh).
    use agent_client::ui::model::{OverlayModel, UiEvent, VISIBLE_ALERTS, VISIBLE_CARDS};
    use agent_client::ui::overlay::highlight_segments;
    use assist_protocol::{Alert, Card, CardAction, CardKind, ServerMessage, Severity, Speaker};

    fn alert(rule: &str, t: f64, severity: Severity) -> UiEvent {
        UiEvent::Server(ServerMessage::Alert(Alert {
            t,
            rule: rule.into(),
            category: "c".into(),
            severity,
            speaker: Speaker::Agent,
            text: "x".into(),
            message: "m".into(),
        }))
    }

    fn card(id: &str) -> UiEvent {
        UiEvent::Server(ServerMessage::Card(Card {
            t: 0.0,
            kind: CardKind::Script,
            id: id.into(),
            title: "t".into(),
            body: format!("body of {id}"),
            tier: None,
            highlights: vec![],
        }))
    }

    #[test]
    fn a_fatal_alert_stays_until_acknowledged_while_others_scroll_away() {
        let mut model = OverlayModel::default();
        model.apply(alert("abuse", 1.0, Severity::Fatal));
        for i in 0..10 {
            model.apply(alert(&format!("r{i}"), 2.0 + i as f64, Severity::General));
        }
        assert_eq!(model.fatal_alerts().count(), 1);
        let others = model
            .alerts
            .iter()
            .filter(|a| a.alert.severity != Severity::Fatal)
            .count();
        assert_eq!(others, VISIBLE_ALERTS);
        let (index, _) = model.fatal_alerts().next().expect("fatal shown");
        model.acknowledge(index);
        assert_eq!(model.fatal_alerts().count(), 0);
    }

    #[test]
    fn an_alert_raised_on_a_partial_and_its_final_shows_once() {
        let mut model = OverlayModel::default();
        model.apply(alert("forbidden", 3.0, Severity::Serious));
        model.apply(alert("forbidden", 3.0, Severity::Serious));
        assert_eq!(model.alerts.len(), 1);
    }

    #[test]
    fn the_same_rule_on_later_utterances_is_one_line_with_a_count() {
        let mut model = OverlayModel::default();
        model.apply(alert("complaint", 3.0, Severity::Serious));
        model.apply(alert("other", 4.0, Severity::General));
        model.apply(alert("complaint", 9.0, Severity::Serious));
        model.apply(alert("complaint", 9.0, Severity::Serious)); // its final: not counted
        let lines: Vec<_> = model
            .alerts
            .iter()
            .map(|a| (a.alert.rule.as_str(), a.alert.t, a.times))
            .collect();
        assert_eq!(
            lines,
            vec![("other", 4.0, 1), ("complaint", 9.0, 2)],
            "one line per rule, the newest occurrence last"
        );
        // A fatal rule again after it was acknowledged is a new alert, not a count.
        model.apply(alert("abuse", 10.0, Severity::Fatal));
        let (index, _) = model.fatal_alerts().next().expect("fatal shown");
        model.acknowledge(index);
        model.apply(alert("abuse", 12.0, Severity::Fatal));
        let fatal: Vec<_> = model.fatal_alerts().map(|(_, a)| a.times).collect();
        assert_eq!(fatal, vec![1]);
    }

    #[test]
    fn cards_are_deduplicated_capped_and_report_what_the_agent_did() {
        let mut model = OverlayModel::default();
        for i in 0..(VISIBLE_CARDS + 2) {
            model.apply(card(&format!("c{i}")));
        }
        model.apply(card("c5"));
        assert_eq!(model.cards.len(), VISIBLE_CARDS);
        assert_eq!(model.cards[0].card.id, "c5", "newest first");
        let used = model
            .card_action("c5", CardAction::Used)
            .expect("card exists");
        assert_eq!(used.body, "body of c5");
        assert!(model.card_action("c4", CardAction::Dismissed).is_some());
        assert!(
            model.cards.iter().all(|c| c.card.id != "c4"),
            "dismissed cards leave"
        );
        assert_eq!(
            model.feedback,
            vec![
                ("c5".to_string(), CardAction::Used),
                ("c4".to_string(), CardAction::Dismissed)
            ]
        );
        assert!(model.card_action("nope", CardAction::Used).is_none());
    }

    #[test]
    fn latency_is_measured_from_the_utterance_sent_to_the_frame_that_draws_its_result() {
        use agent_client::ui::latency::LatencyTracker;
        use std::time::{Duration, Instant};
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut off = LatencyTracker::default();
        off.sent(3.0, "x", false, at(0));
        off.received(
            &assist_protocol::ServerMessage::Card(card_at("a", 3.0)),
            at(10),
        );
        off.frame_drawn(at(20));
        assert!(off.final_to_card_drawn_ms.is_empty(), "off unless enabled");

        let mut on = LatencyTracker::default();
        on.enable();
        on.sent(3.0, "我要退货", false, at(0));
        on.sent(7.0, "这个产品稳赚", true, at(100));
        on.sent(7.0, "这个产品稳赚不赔", true, at(150));
        // A card for an utterance this client never sent is not measured.
        on.received(
            &assist_protocol::ServerMessage::Card(card_at("other", 99.0)),
            at(30),
        );
        on.received(
            &assist_protocol::ServerMessage::Card(card_at("refund", 3.0)),
            at(40),
        );
        // A second card of the same final is not what the agent waited for.
        on.received(
            &assist_protocol::ServerMessage::Card(card_at("refund-2", 3.0)),
            at(45),
        );
        let mut alert = match alert("forbidden", 7.0, Severity::Fatal) {
            UiEvent::Server(assist_protocol::ServerMessage::Alert(a)) => a,
            _ => unreachable!(),
        };
        alert.text = "这个产品稳赚".into();
        on.received(&assist_protocol::ServerMessage::Alert(alert), at(170));
        assert!(on.final_to_card_drawn_ms.is_empty(), "not drawn yet");
        on.frame_drawn(at(180));
        assert_eq!(on.final_to_card_received_ms, [40.0]);
        assert_eq!(on.final_to_card_drawn_ms, [180.0]);
        assert_eq!(
            on.partial_to_alert_drawn_ms,
            [80.0],
            "from the partial that had the phrase"
        );
    }

    fn card_at(id: &str, t: f64) -> assist_protocol::Card {
        match card(id) {
            UiEvent::Server(assist_protocol::ServerMessage::Card(mut c)) => {
                c.t = t;
                c
            }
            _ => unreachable!(),
        }
    }

    #[test]
    fn partials_are_replaced_by_their_final_in_the_transcript_tail() {
        let mut model = OverlayModel::default();
        let line = |text: &str, partial| UiEvent::Transcript {
            speaker: Speaker::Customer,
            text: text.into(),
            start: 3.0,
            partial,
        };
        model.apply(line("我想", true));
        model.apply(line("我想退货", true));
        assert_eq!(model.partial[1].as_deref(), Some("我想退货"));
        model.apply(line("我想退货谢谢", false));
        assert_eq!(model.partial[1], None);
        assert_eq!(
            model.transcript.back().map(|l| l.text.as_str()),
            Some("我想退货谢谢")
        );
    }

    #[test]
    fn knowledge_highlights_mark_the_matched_terms() {
        let segments = highlight_segments(
            "退款会原路退回 Refund in 3 days",
            &["退款".into(), "refund".into()],
        );
        let marked: Vec<&str> = segments
            .iter()
            .filter(|(_, m)| *m)
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(marked, vec!["退款", "Refund"]);
        let joined: String = segments.iter().map(|(s, _)| *s).collect();
        assert_eq!(joined, "退款会原路退回 Refund in 3 days");
    }
}

mod sequencing {
    use agent_client::asr::Recognized;
    use agent_client::link::Outgoing;
    use agent_client::pipeline::Sequencer;
    use assist_protocol::{Prosody, Speaker};

    fn seq_of(out: Option<(Outgoing, agent_client::ui::model::UiEvent)>) -> (u64, bool) {
        match out {
            Some((Outgoing::Utterance(u), _)) => (u.seq, u.partial),
            other => panic!("expected an utterance, got {other:?}"),
        }
    }

    fn partial(speaker: Speaker, text: &str) -> Recognized {
        Recognized::Partial {
            speaker,
            text: text.into(),
            start: 0.0,
        }
    }

    fn final_(speaker: Speaker, text: &str) -> Recognized {
        Recognized::Final {
            speaker,
            text: text.into(),
            start: 0.0,
            end: 1.0,
            words: vec![],
            prosody: Prosody::default(),
        }
    }

    #[test]
    fn finals_of_both_speakers_share_one_increasing_seq_and_partials_are_tentative() {
        let mut s = Sequencer::default();
        assert_eq!(seq_of(s.next(partial(Speaker::Agent, "您好"))), (1, true));
        assert_eq!(seq_of(s.next(partial(Speaker::Customer, "我"))), (1, true));
        assert_eq!(
            seq_of(s.next(final_(Speaker::Customer, "我要退货"))),
            (1, false)
        );
        assert_eq!(seq_of(s.next(final_(Speaker::Agent, "您好"))), (2, false));
        assert_eq!(seq_of(s.next(partial(Speaker::Agent, "好的"))), (3, true));
        assert!(
            s.next(final_(Speaker::Agent, "  ")).is_none(),
            "empty finals are not sent"
        );
        assert_eq!(seq_of(s.next(final_(Speaker::Agent, "好的"))), (3, false));
    }

    fn ended_at(speaker: Speaker, text: &str, end: f64) -> Recognized {
        Recognized::Final {
            speaker,
            text: text.into(),
            start: end - 1.0,
            end,
            words: vec![],
            prosody: Prosody::default(),
        }
    }

    fn texts(items: &[Transcribed]) -> Vec<String> {
        items
            .iter()
            .map(|item| match item {
                Transcribed::Recognized(Recognized::Final { text, .. })
                | Transcribed::Recognized(Recognized::Partial { text, .. }) => text.clone(),
                Transcribed::Lost { reason, .. } => format!("lost: {reason}"),
                Transcribed::End { call_end, .. } => format!("end {call_end}"),
            })
            .collect()
    }

    use agent_client::pipeline::{FinalOrder, Merge, Merger, Transcribed, ORDER_MARGIN_SECONDS};
    const BOTH: [Speaker; 2] = [Speaker::Agent, Speaker::Customer];

    #[test]
    fn a_file_decoded_fast_gets_its_finals_in_call_order_even_when_one_recognizer_runs_ahead() {
        let mut m = Merger::new(FinalOrder::CallTime, &BOTH);
        // The agent's recognizer races ahead to t=20 and finishes a line ending at 12 s.
        assert!(m.take(Merge::Progress(Speaker::Agent, 20.0)).is_empty());
        assert!(
            m.take(Merge::Recognized(ended_at(
                Speaker::Agent,
                "agent@12",
                12.0
            )))
            .is_empty(),
            "held: the customer's recognizer may still have an earlier line"
        );
        // A partial is never held.
        assert_eq!(
            texts(&m.take(Merge::Recognized(Recognized::Partial {
                speaker: Speaker::Customer,
                text: "cust-partial".into(),
                start: 8.0,
            }))),
            ["cust-partial"]
        );
        // The customer's recognizer is at 10 s and finishes a line ending at 9 s.
        assert!(m.take(Merge::Progress(Speaker::Customer, 10.0)).is_empty());
        assert_eq!(
            texts(&m.take(Merge::Recognized(ended_at(
                Speaker::Customer,
                "cust@9",
                9.0
            )))),
            ["cust@9"],
            "the agent's recognizer is past 9 s + margin, so the customer's line goes out"
        );
        // The agent's line waits until the customer's recognizer is past its end + margin.
        assert!(m.take(Merge::Progress(Speaker::Customer, 12.5)).is_empty());
        assert_eq!(
            texts(&m.take(Merge::Progress(
                Speaker::Customer,
                12.0 + ORDER_MARGIN_SECONDS
            ))),
            ["agent@12"]
        );
        // At the end everything held is flushed in order, then the end.
        m.take(Merge::Recognized(ended_at(
            Speaker::Agent,
            "agent@30",
            30.0,
        )));
        m.take(Merge::Recognized(ended_at(
            Speaker::Customer,
            "cust@25",
            25.0,
        )));
        assert!(m.take(Merge::SourceEnded(31.0)).is_empty());
        assert_eq!(
            texts(&m.take(Merge::Done(Speaker::Agent))),
            ["cust@25"],
            "the agent has no more lines, so the customer's earlier one may go"
        );
        assert_eq!(
            texts(&m.take(Merge::Done(Speaker::Customer))),
            ["agent@30", "end 31"]
        );
    }

    #[test]
    fn live_audio_gets_its_finals_the_moment_they_are_recognized() {
        let mut m = Merger::new(FinalOrder::Arrival, &BOTH);
        assert_eq!(
            texts(&m.take(Merge::Recognized(ended_at(
                Speaker::Agent,
                "agent@12",
                12.0
            )))),
            ["agent@12"]
        );
        assert_eq!(
            texts(&m.take(Merge::Lost(Speaker::Customer, "unplugged".into()))),
            ["lost: unplugged"]
        );
        assert!(m.take(Merge::Done(Speaker::Agent)).is_empty());
        assert!(
            m.take(Merge::Done(Speaker::Customer)).is_empty(),
            "no end before the source ended"
        );
        assert_eq!(texts(&m.take(Merge::SourceEnded(13.0))), ["end 13"]);
    }
}

/// The whole path with real parts: espeak-ng speech in a WAV → the real Korean Vosk model on
/// the client → the real WebSocket → the real server and engine → events printed headless.
#[test]
fn speech_in_a_wav_file_reaches_the_server_as_text_and_comes_back_as_events() {
    // A rule on words the Korean model reliably hears in this sentence.
    let pack = pack_with_rule(
        "[[rule]]\nid = \"test.delivery_words\"\ncategory = \"complaint_risk\"\nseverity = \"serious\"\nspeaker = \"customer\"\nmessage = \"heard\"\nkind = \"keywords\"\nnegation = false\nany = [\"너무\", \"배송\", \"환불\", \"안녕\"]\n",
    );
    let server = Server::start_with_pack(pack.path());
    let model = korean_model();
    let dir = tempfile::tempdir().expect("temp dir");
    let wav = korean_speech(dir.path(), "안녕하세요 환불을 원합니다 배송이 너무 늦어요");
    // Both ways of recognizing: a recognizer per speaker, and one shared (--low-memory).
    for low_memory in [false, true] {
        let wav = wav.to_string_lossy();
        let model = model.to_string_lossy();
        let url = server.url();
        let mut args = vec![
            "--headless",
            "--server",
            &url,
            "--audio-file",
            &wav,
            "--channels",
            "customer",
            "--model",
            &model,
            "--language",
            "zh",
        ];
        if low_memory {
            args.push("--low-memory");
        }
        let out = run_client(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let events = parse_events(&out.stdout);
        let s = summary(&events);
        assert!(
            s.utterances >= 1,
            "low memory {low_memory}: the speech became at least one utterance: {s:?}"
        );
        assert!(
            events.iter().any(|e| matches!(e, Event::Emotion(_))),
            "low memory {low_memory}: the customer's utterances were read for emotion: {events:?}"
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Alert(a) if a.rule == "test.delivery_words")),
            "low memory {low_memory}: a rule fired on words recognized from the audio: {events:?}"
        );
    }
}

mod outbox {
    use agent_client::link::{Outbox, OutboxLimits};
    use assist_protocol::{Speaker, Utterance};

    fn utterance(seq: u64) -> Utterance {
        Utterance {
            seq,
            speaker: Speaker::Customer,
            partial: false,
            text: format!("第{seq}句 我的手机号是13812345678"),
            start: seq as f64,
            end: Some(seq as f64 + 0.5),
            prosody: None,
        }
    }

    fn seqs(outbox: &Outbox) -> Vec<u64> {
        outbox
            .pending()
            .expect("pending")
            .iter()
            .map(|u| u.seq)
            .collect()
    }

    #[test]
    fn a_long_outage_spills_to_disk_masked_and_comes_back_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("spool").join("call-1.jsonl");
        let limits = OutboxLimits {
            in_memory: 100,
            total: 10_000,
        };
        let mut outbox = Outbox::new(file.clone(), limits);
        for seq in 1..=1_200 {
            let (dropped, error) = outbox.push(utterance(seq));
            assert!(dropped.is_empty() && error.is_none());
        }
        assert_eq!(outbox.len(), 1_200);
        assert!(
            outbox.spilled() >= 1_100,
            "memory keeps at most 100: {} spilled",
            outbox.spilled()
        );
        let on_disk = std::fs::read_to_string(&file).expect("the spill file exists");
        assert_eq!(on_disk.lines().count(), outbox.spilled());
        assert!(
            !on_disk.contains("13812345678"),
            "phone numbers are masked on disk"
        );
        assert!(on_disk.contains("138****5678"));
        assert_eq!(seqs(&outbox), (1..=1_200).collect::<Vec<_>>());

        // The server acknowledges up to 600 (in the file) and then everything.
        outbox.settled_through(600);
        assert_eq!(seqs(&outbox), (601..=1_200).collect::<Vec<_>>());
        outbox.push(utterance(1_201));
        assert_eq!(seqs(&outbox).last(), Some(&1_201));
        outbox.settled_through(1_201);
        assert!(outbox.is_empty());
        assert!(!file.exists(), "a delivered spill is removed");
    }

    #[test]
    fn past_the_total_limit_the_oldest_are_dropped_and_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let limits = OutboxLimits {
            in_memory: 50,
            total: 1_000,
        };
        let mut outbox = Outbox::new(dir.path().join("c.jsonl"), limits);
        let mut dropped = Vec::new();
        for seq in 1..=1_200 {
            dropped.extend(outbox.push(utterance(seq)).0);
        }
        assert_eq!(dropped, (1..=200).collect::<Vec<_>>());
        assert_eq!(seqs(&outbox), (201..=1_200).collect::<Vec<_>>());
        drop(outbox);
        assert!(
            !dir.path().join("c.jsonl").exists(),
            "nothing outlives the client"
        );
    }

    #[test]
    fn an_unwritable_spool_keeps_everything_in_memory_and_says_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blocker = dir.path().join("not-a-folder");
        std::fs::write(&blocker, "a file where the spool folder should be").expect("write");
        let limits = OutboxLimits {
            in_memory: 10,
            total: 1_000,
        };
        let mut outbox = Outbox::new(blocker.join("c.jsonl"), limits);
        let mut errors = Vec::new();
        for seq in 1..=30 {
            errors.extend(outbox.push(utterance(seq)).1);
        }
        assert!(!errors.is_empty());
        assert!(
            errors[0].to_string().contains("not-a-folder"),
            "{}",
            errors[0]
        );
        assert_eq!(outbox.spilled(), 0);
        assert_eq!(seqs(&outbox), (1..=30).collect::<Vec<_>>());
    }
}

mod sign_in {
    use super::common::*;
    use super::summary;
    use std::process::Stdio;
    use std::time::Duration;

    const PASSWORD: &str = "li-na-password-1";

    #[test]
    fn the_rest_address_follows_the_websocket_address() {
        use agent_client::link::account::http_base;
        assert_eq!(http_base("ws://10.0.0.5:7700/ws"), "http://10.0.0.5:7700");
        assert_eq!(
            http_base("wss://assist.example/ws"),
            "https://assist.example"
        );
    }

    /// The agent signs in with a password; the token lives 2 s, the connection is cut after it
    /// expired, the server refuses the old token on reconnect, and the client signs in again
    /// by itself and finishes the call with nothing lost.
    #[tokio::test(flavor = "multi_thread")]
    async fn an_agent_signs_in_and_signs_in_again_when_the_token_expired() {
        let server = Server::start("127.0.0.1:0", &["--token-ttl-secs", "2"]);
        add_agent(&server, "li.na", PASSWORD, "north").await;
        let proxy = Proxy::start(server.addr).await;
        let call = sample_call("zh_angry_complaint.jsonl");
        let client = std::process::Command::new(CLIENT)
            .args(["--headless", "--realtime", "--speed", "20", "--server"])
            .arg(proxy.url())
            .args(["--username", "li.na", "--transcript"])
            .arg(&call)
            .env("ASSIST_PASSWORD", PASSWORD)
            .env("ASSIST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("client starts");
        tokio::time::sleep(Duration::from_millis(3_000)).await;
        assert!(proxy.cut() > 0, "the test cut no connection");
        let out = tokio::task::spawn_blocking(move || client.wait_with_output())
            .await
            .expect("join")
            .expect("client exits");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(
            stderr.matches("signed in: 李娜 (north)").count(),
            2,
            "signed in at the start and again after the token expired: {stderr}"
        );
        let live = parse_events(&out.stdout);
        let replayed = replay(&call, "zh");
        assert_eq!(
            summary(&live),
            summary(&replayed),
            "nothing lost or doubled"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_wrong_password_stops_the_client_with_a_clear_message() {
        let server = Server::start("127.0.0.1:0", &[]);
        add_agent(&server, "li.na", PASSWORD, "north").await;
        let call = sample_call("zh_angry_complaint.jsonl");
        let out = std::process::Command::new(CLIENT)
            .args(["--headless", "--server"])
            .arg(server.url())
            .args(["--username", "li.na", "--transcript"])
            .arg(&call)
            .env("ASSIST_PASSWORD", "not-the-password")
            .output()
            .expect("client runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "a refused sign-in is an error");
        assert!(
            stderr.contains("sign-in refused for li.na"),
            "says what went wrong: {stderr}"
        );
        assert!(
            !stderr.contains("not-the-password"),
            "never echoes the password"
        );
        assert!(parse_events(&out.stdout).is_empty());
    }

    /// The server behind TLS (`wss://`, `https://` for the sign-in): the client trusts the
    /// proxy's self-signed certificate only when told to (`--ca-cert`), and then the call goes
    /// through whole; without it, the client refuses the server and says why.
    #[tokio::test(flavor = "multi_thread")]
    async fn over_tls_the_client_signs_in_and_calls_only_a_server_it_trusts() {
        let server = Server::start("127.0.0.1:0", &[]);
        add_agent(&server, "li.na", PASSWORD, "north").await;
        let proxy = TlsProxy::start(server.addr).await;
        let call = sample_call("zh_clean_refund.jsonl");
        let client = |trust: bool| {
            let mut command = std::process::Command::new(CLIENT);
            command
                .args(["--headless", "--give-up-after", "3", "--server"])
                .arg(proxy.url())
                .args(["--username", "li.na", "--transcript"])
                .arg(&call)
                .env("ASSIST_PASSWORD", PASSWORD)
                .env("ASSIST_LOG", "warn")
                .env_remove("ASSIST_CA_CERT");
            if trust {
                command.arg("--ca-cert").arg(&proxy.ca_pem);
            }
            command
        };

        let mut trusted = client(true);
        let out = tokio::task::spawn_blocking(move || trusted.output())
            .await
            .expect("join")
            .expect("client runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains("signed in: 李娜 (north)"), "{stderr}");
        assert_eq!(parse_events(&out.stdout), replay(&call, "zh"));

        let mut untrusted = client(false);
        let out = tokio::task::spawn_blocking(move || untrusted.output())
            .await
            .expect("join")
            .expect("client runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "an untrusted server is refused");
        assert!(
            stderr.to_lowercase().contains("certificate"),
            "says it is the certificate: {stderr}"
        );
        assert!(parse_events(&out.stdout).is_empty());
    }

    #[test]
    fn a_username_without_a_password_is_a_clear_error() {
        let out = std::process::Command::new(CLIENT)
            .args(["--headless", "--username", "li.na", "--transcript"])
            .arg(sample_call("zh_angry_complaint.jsonl"))
            .env_remove("ASSIST_PASSWORD")
            .output()
            .expect("client runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains("ASSIST_PASSWORD"), "{stderr}");
    }
}

mod stopping {
    use super::common::*;
    use super::summary;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    /// SIGTERM mid-call (the desktop session ends): the client stops producing, delivers what
    /// it already sent, ends the call and exits cleanly; the server's call log has the lines
    /// up to the stop and the call ended.
    #[tokio::test(flavor = "multi_thread")]
    async fn sigterm_mid_call_ends_the_call_and_loses_nothing_already_sent() {
        let server = Server::start("127.0.0.1:0", &[]);
        let call = repo_root().join("samples/zh_demo_call.jsonl");
        let total = std::fs::read_to_string(&call)
            .expect("sample call")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count();
        let spool = tempfile::tempdir().expect("tempdir");
        let client = std::process::Command::new(CLIENT)
            .args(["--headless", "--realtime", "--speed", "4", "--server"])
            .arg(server.url())
            .args([
                "--agent-id",
                "agent-stop",
                "--call-id",
                "call-stop",
                "--spool-dir",
            ])
            .arg(spool.path())
            .arg("--transcript")
            .arg(&call)
            .env("ASSIST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("client starts");
        tokio::time::sleep(Duration::from_secs(6)).await;
        let status = std::process::Command::new("kill")
            .args(["-TERM", &client.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let stopped = Instant::now();
        let out = tokio::task::spawn_blocking(move || client.wait_with_output())
            .await
            .expect("join")
            .expect("client exits");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "a clean stop: {stderr}");
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "stopped promptly"
        );
        assert!(stderr.contains("stopping: ending the call"), "{stderr}");
        let events = parse_events(&out.stdout);
        summary(&events);

        let http = reqwest::Client::new();
        let base = format!("http://{}", server.addr);
        let login: serde_json::Value = http
            .post(format!("{base}/api/v1/login"))
            .json(&serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("login answer");
        let token = login["token"].as_str().expect("token");
        let page: serde_json::Value = http
            .get(format!("{base}/api/v1/calls?agent=agent-stop"))
            .bearer_auth(token)
            .send()
            .await
            .expect("calls")
            .json()
            .await
            .expect("calls answer");
        let row = &page["calls"][0];
        assert_eq!(row["call_id"], "call-stop", "{page}");
        assert_eq!(row["status"], "ended", "{row}");
        let lines = row["lines"].as_u64().expect("lines") as usize;
        assert!(
            (1..total).contains(&lines),
            "stopped mid-call with the lines sent so far stored: {lines} of {total}"
        );
    }
}

mod window_close {
    use super::common::*;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};
    use x11rb::connection::Connection;
    use x11rb::protocol::xproto::{AtomEnum, ClientMessageEvent, ConnectionExt, EventMask};

    /// An Xvfb display for one test, stopped when dropped.
    struct Display {
        name: String,
        xvfb: Child,
    }

    impl Display {
        fn start() -> Option<Display> {
            // Xvfb picks a display number nobody holds and writes it on its stdout
            // (-displayfd). Two starting at the same moment can both take the same number
            // (the lock file is checked before it is written), so tests start them one at a
            // time.
            static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
            let _one_at_a_time = STARTING.lock().unwrap_or_else(|p| p.into_inner());
            let mut xvfb = Command::new("Xvfb")
                .args(["-displayfd", "1", "-screen", "0", "1024x768x24"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .ok()?;
            let mut number = String::new();
            let stdout = xvfb.stdout.take()?;
            std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut number).ok()?;
            let name = format!(":{}", number.trim());
            let deadline = Instant::now() + Duration::from_secs(10);
            while x11rb::connect(Some(&name)).is_err() {
                if Instant::now() > deadline {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Some(Display { name, xvfb })
        }
    }

    impl Drop for Display {
        fn drop(&mut self) {
            // SIGTERM, so that Xvfb removes its lock file and the display number is free again.
            let _ = Command::new("kill")
                .arg(self.xvfb.id().to_string())
                .status();
            let _ = self.xvfb.wait();
        }
    }

    /// What the window manager does when the user clicks a window's close button: a
    /// WM_DELETE_WINDOW message to every top-level window whose title contains `title`.
    /// Returns how many it found.
    fn close_windows(display: &str, title: &str) -> usize {
        let (conn, screen) = x11rb::connect(Some(display)).expect("X connection");
        let root = conn.setup().roots[screen].root;
        let atom = |name: &[u8]| atom(&conn, name);
        let (protocols, delete) = (atom(b"WM_PROTOCOLS"), atom(b"WM_DELETE_WINDOW"));
        let windows = windows_titled(&conn, root, title);
        for &window in &windows {
            let event = ClientMessageEvent::new(32, window, protocols, [delete, 0, 0, 0, 0]);
            conn.send_event(false, window, EventMask::NO_EVENT, event)
                .expect("send");
        }
        sync(&conn);
        windows.len()
    }

    fn atom(conn: &impl Connection, name: &[u8]) -> u32 {
        conn.intern_atom(false, name)
            .expect("intern")
            .reply()
            .expect("atom")
            .atom
    }

    /// Waits until the X server has handled every request sent on `conn`: a connection dropped
    /// right after a flush can lose its last requests (XCloseDisplay syncs for this reason).
    fn sync(conn: &impl Connection) {
        conn.get_input_focus()
            .expect("round trip")
            .reply()
            .expect("round trip reply");
    }

    /// The top-level windows whose title contains `title`.
    fn windows_titled(conn: &impl Connection, root: u32, title: &str) -> Vec<u32> {
        let atom = |name: &[u8]| atom(conn, name);
        let (net_name, utf8) = (atom(b"_NET_WM_NAME"), atom(b"UTF8_STRING"));
        let children = conn
            .query_tree(root)
            .expect("query tree")
            .reply()
            .expect("tree")
            .children;
        children
            .into_iter()
            .filter(|&window| {
                let mut name = Vec::new();
                for (property, kind) in [
                    (net_name, utf8),
                    (AtomEnum::WM_NAME.into(), AtomEnum::STRING.into()),
                ] {
                    if let Ok(reply) = conn
                        .get_property(false, window, property, kind, 0, 256)
                        .expect("get property")
                        .reply()
                    {
                        name.extend(reply.value);
                    }
                }
                String::from_utf8_lossy(&name).contains(title)
            })
            .collect()
    }

    /// Waits for the overlay's window to be mapped; its id.
    fn overlay_window(display: &str) -> Option<u32> {
        let (conn, screen) = x11rb::connect(Some(display)).expect("X connection");
        let root = conn.setup().roots[screen].root;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(&window) = windows_titled(&conn, root, "Agent Assist").first() {
                return Some(window);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// Where a window is on the screen (its top-left corner, in root coordinates).
    fn window_position(display: &str, window: u32) -> (i16, i16) {
        let (conn, screen) = x11rb::connect(Some(display)).expect("X connection");
        let root = conn.setup().roots[screen].root;
        let at = conn
            .translate_coordinates(window, root, 0, 0)
            .expect("translate")
            .reply()
            .expect("position");
        (at.dst_x, at.dst_y)
    }

    /// What the agent does by dragging the window's bar: the window moves (no window manager on
    /// Xvfb, so a configure request moves it directly).
    fn move_window(display: &str, window: u32, x: i32, y: i32) {
        use x11rb::protocol::xproto::ConfigureWindowAux;
        let (conn, _) = x11rb::connect(Some(display)).expect("X connection");
        conn.configure_window(window, &ConfigureWindowAux::new().x(x).y(y))
            .expect("configure");
        sync(&conn);
    }

    fn overlay_command(display: &Display, home: &std::path::Path, renderer: &str) -> Command {
        let mut command = Command::new(CLIENT);
        command
            .args(["--renderer", renderer])
            .env("DISPLAY", &display.name)
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .env("HOME", home)
            .env_remove("XDG_DATA_HOME")
            .env_remove("WAYLAND_DISPLAY")
            .env("ASSIST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// The agent moves the overlay out of the way, closes it, and opens it again the next day:
    /// it comes back where it was put. Both renderers (the OpenGL one keeps it in eframe's
    /// settings, the software one beside them).
    #[test]
    fn the_window_comes_back_where_the_agent_put_it() {
        let Some(display) = Display::start() else {
            println!("SKIPPED the_window_comes_back: no Xvfb here (scripts/setup.sh installs it)");
            return;
        };
        let server = Server::start("127.0.0.1:0", &[]);
        let call = repo_root().join("samples/zh_demo_call.jsonl");
        for renderer in ["software", "gl"] {
            let home = tempfile::tempdir().expect("tempdir");
            let open = |what: &str| {
                let client = overlay_command(&display, home.path(), renderer)
                    .args(["--server", &server.url(), "--agent-id", "agent-moves"])
                    .arg("--transcript")
                    .arg(&call)
                    .args(["--realtime", "--speed", "50", "--linger", "60"])
                    .spawn()
                    .expect("client starts");
                let window = overlay_window(&display.name)
                    .unwrap_or_else(|| panic!("{renderer}: the overlay is up ({what})"));
                (client, window)
            };
            let close = |client: Child| {
                assert_eq!(close_windows(&display.name, "Agent Assist"), 1);
                let out = wait_for_exit(client, Duration::from_secs(30));
                assert!(
                    out.status.success(),
                    "{renderer}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            };

            let (client, window) = open("first time");
            std::thread::sleep(Duration::from_secs(1));
            let first = window_position(&display.name, window);
            let target = (first.0 as i32 + 310, first.1 as i32 + 120);
            move_window(&display.name, window, target.0, target.1);
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let now = window_position(&display.name, window);
                if now == (target.0 as i16, target.1 as i16) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{renderer}: the window moved from {first:?} to {target:?}: it is at {now:?}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            // The window system tells the client it moved; give it a moment to hear it.
            std::thread::sleep(Duration::from_millis(500));
            close(client);

            let (client, window) = open("again");
            std::thread::sleep(Duration::from_secs(1));
            let again = window_position(&display.name, window);
            close(client);
            assert_eq!(
                (again.0 as i32, again.1 as i32),
                target,
                "{renderer}: reopened where it was left (first opened at {first:?})"
            );
        }
    }

    /// The agent closes the overlay mid-call: like SIGTERM, the client ends the call, delivers
    /// what it already sent and exits cleanly; the server's call log has the call ended with
    /// the lines sent so far. Both renderers.
    #[tokio::test(flavor = "multi_thread")]
    async fn closing_the_window_mid_call_ends_the_call_and_loses_nothing_already_sent() {
        let Some(display) = Display::start() else {
            println!(
                "SKIPPED closing_the_window_mid_call: no Xvfb here (scripts/setup.sh installs it)"
            );
            return;
        };
        for renderer in ["software", "gl"] {
            close_mid_call(&display, renderer).await;
        }
    }

    async fn close_mid_call(display: &Display, renderer: &str) {
        let server = Server::start("127.0.0.1:0", &[]);
        let call = repo_root().join("samples/zh_demo_call.jsonl");
        let total = std::fs::read_to_string(&call)
            .expect("sample call")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count();
        let home = tempfile::tempdir().expect("tempdir");
        let client = overlay_command(display, home.path(), renderer)
            .args(["--realtime", "--speed", "4", "--server"])
            .arg(server.url())
            .args([
                "--agent-id",
                "agent-close",
                "--call-id",
                "call-close",
                "--transcript",
            ])
            .arg(&call)
            .spawn()
            .expect("client starts");
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(
            close_windows(&display.name, "Agent Assist"),
            1,
            "the overlay is up"
        );
        let closed = Instant::now();
        let out =
            tokio::task::spawn_blocking(move || wait_for_exit(client, Duration::from_secs(30)))
                .await
                .expect("join");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{renderer}: a clean stop: {stderr}");
        assert!(
            closed.elapsed() < Duration::from_secs(15),
            "{renderer}: stopped promptly"
        );
        assert!(
            stderr.contains("the window closed mid-call"),
            "{renderer}: {stderr}"
        );

        let http = reqwest::Client::new();
        let base = format!("http://{}", server.addr);
        let login: serde_json::Value = http
            .post(format!("{base}/api/v1/login"))
            .json(&serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("login answer");
        let token = login["token"].as_str().expect("token");
        let page: serde_json::Value = http
            .get(format!("{base}/api/v1/calls?agent=agent-close"))
            .bearer_auth(token)
            .send()
            .await
            .expect("calls")
            .json()
            .await
            .expect("calls answer");
        let row = &page["calls"][0];
        assert_eq!(row["call_id"], "call-close", "{renderer}: {page}");
        assert_eq!(row["status"], "ended", "{renderer}: {row}");
        let lines = row["lines"].as_u64().expect("lines") as usize;
        assert!(
            (1..total).contains(&lines),
            "{renderer}: closed mid-call with the lines sent so far stored: {lines} of {total}"
        );
    }
}
