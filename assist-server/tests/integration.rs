//! The assist server end to end: the real binary, a real WebSocket, the real default pack.

mod browser;
mod coaching;
mod common;
mod golden;
mod qc;

use assist_engine::{Engine, NoKnowledge};
use assist_protocol::{
    ClientMessage, ErrorCode, Event, ServerMessage, Severity, Speaker, MAX_FRAME_BYTES,
};
use assist_server::packs::load_pack;
use assist_server::replay::replay;
use common::*;
use std::io::Cursor;
use std::process::Command;
use std::sync::Arc;

fn error_code(message: Option<ServerMessage>) -> ErrorCode {
    match message {
        Some(ServerMessage::Error { code, .. }) => code,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// Plays a transcript through the live WebSocket path and returns the events.
async fn play_live(url: &str, path: &std::path::Path, language: &str, call: &str) -> Vec<Event> {
    let mut agent = Agent::connect(url).await;
    let welcome = agent.hello("agent-7", "", call, language).await;
    assert!(
        matches!(welcome, ServerMessage::Welcome { last_seq: 0, .. }),
        "{welcome:?}"
    );
    let lines = read_transcript(path);
    let end = lines
        .iter()
        .map(|l| l.end.unwrap_or(l.t))
        .fold(0.0, f64::max);
    for (i, line) in lines.into_iter().enumerate() {
        agent
            .send(&ClientMessage::Utterance(line.into_utterance(i as u64 + 1)))
            .await;
    }
    let mut messages = Vec::new();
    agent.send(&ClientMessage::CallEnd { t: end }).await;
    while let Some(m) = agent.recv().await {
        let done = matches!(m, ServerMessage::Summary(_));
        if let ServerMessage::Error { code, message, .. } = &m {
            panic!("the server refused a sample line: {code:?} {message}");
        }
        messages.push(m);
        if done {
            break;
        }
    }
    events(messages)
}

#[test]
fn sample_calls_raise_exactly_their_expected_categories() {
    let pack = load_pack(&default_pack()).expect("default pack loads");
    let mut failures = Vec::new();
    for (name, path) in sample_calls() {
        let expect = expectation(&path);
        let transcript = std::fs::read_to_string(&path).expect("readable");
        let mut out = Vec::new();
        let mut errors = Vec::new();
        let report = replay(
            &pack.engine,
            pack.knowledge.as_ref(),
            &expect.language,
            Cursor::new(transcript),
            &mut out,
            &mut errors,
        )
        .expect("replay runs");
        assert_eq!(
            report.rejected,
            0,
            "{name}: {}",
            String::from_utf8_lossy(&errors)
        );
        let events: Vec<Event> = String::from_utf8(out)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("event"))
            .collect();
        let fired = alert_categories(&events);
        for category in &expect.must_fire {
            if !fired.contains(category) {
                failures.push(format!(
                    "{name}: `{category}` did not fire (fired: {fired:?})"
                ));
            }
        }
        for category in &expect.must_not_fire {
            if fired.contains(category) {
                failures.push(format!("{name}: `{category}` fired but must not"));
            }
        }
        assert!(
            matches!(events.last(), Some(Event::Summary(_))),
            "{name}: the summary comes last"
        );
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn clean_calls_raise_no_serious_or_fatal_alert_and_score_well() {
    let pack = load_pack(&default_pack()).expect("default pack loads");
    let clean: Vec<_> = sample_calls()
        .into_iter()
        .filter(|(name, _)| name.contains("clean"))
        .collect();
    assert!(clean.len() >= 3, "need clean sample calls in zh and en");
    for (name, path) in clean {
        let language = expectation(&path).language;
        let mut session = pack.engine.start_call(&language);
        let mut events = Vec::new();
        for (i, line) in read_transcript(&path).into_iter().enumerate() {
            events.extend(
                session
                    .utterance(&line.into_utterance(i as u64 + 1), pack.knowledge.as_ref())
                    .expect("accepted"),
            );
        }
        events.extend(session.end(None));
        for event in &events {
            if let Event::Alert(a) = event {
                assert!(
                    a.severity == Severity::General,
                    "{name}: clean call raised {} ({:?}) on {:?}",
                    a.rule,
                    a.severity,
                    a.text
                );
            }
        }
        let Some(Event::Summary(summary)) = events.last() else {
            panic!("{name}: no summary");
        };
        assert!(summary.passed && summary.score >= 90, "{name}: {summary:?}");
        assert!(
            events.iter().any(|e| matches!(e, Event::Card(_))),
            "{name}: a clean call still gets help"
        );
    }
}

#[test]
fn masked_numbers_never_reach_the_output() {
    let pack = load_pack(&default_pack()).expect("default pack loads");
    let transcript = concat!(
        r#"{"t":0,"speaker":"customer","text":"我要投诉 我的手机是13812345678 卡号6222021234567890123"}"#,
        "\n",
        r#"{"t":3,"speaker":"agent","text":"好的 您的邮箱 zhang.san@example.com 对吗"}"#,
        "\n"
    );
    let mut out = Vec::new();
    replay(
        &pack.engine,
        pack.knowledge.as_ref(),
        "zh",
        Cursor::new(transcript),
        &mut out,
        Vec::new(),
    )
    .expect("replay runs");
    let text = String::from_utf8(out).expect("utf-8");
    assert!(text.contains("138****5678"), "{text}");
    for secret in ["13812345678", "6222021234567890123", "zhang.san@"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

#[tokio::test]
async fn the_live_path_and_replay_give_the_same_events() {
    let server = Server::start(&[]);
    for (name, path) in sample_calls() {
        let language = expectation(&path).language;
        let live = play_live(&server.url(), &path, &language, &format!("same-{name}")).await;
        let replayed = replay_cli(&path, &language);
        assert_eq!(live, replayed, "{name}: live and replay differ");
    }
}

#[tokio::test]
async fn malformed_frames_get_a_clear_error_and_the_session_goes_on() {
    let server = Server::start(&[]);
    let mut agent = Agent::connect(&server.url()).await;
    agent.hello("a1", "", "c-bad", "zh").await;

    agent.send_raw("{not json").await;
    assert_eq!(error_code(agent.recv().await), ErrorCode::MalformedMessage);

    agent.send_raw(r#"{"type":"launch_missiles"}"#).await;
    assert_eq!(error_code(agent.recv().await), ErrorCode::MalformedMessage);

    agent
        .send_raw(r#"{"type":"utterance","seq":1,"speaker":"robot","text":"x","start":0}"#)
        .await;
    assert_eq!(error_code(agent.recv().await), ErrorCode::MalformedMessage);

    let big = format!(
        r#"{{"type":"utterance","seq":1,"speaker":"agent","text":"{}","start":0}}"#,
        "啊".repeat(MAX_FRAME_BYTES / 3 + 10)
    );
    agent.send_raw(&big).await;
    assert_eq!(error_code(agent.recv().await), ErrorCode::FrameTooLarge);

    agent
        .ws
        .send(tokio_tungstenite::tungstenite::Message::Binary(
            vec![1u8, 2, 3].into(),
        ))
        .await
        .expect("send binary");
    assert_eq!(
        error_code(agent.recv().await),
        ErrorCode::BinaryNotSupported
    );

    let mut empty = utterance(1, Speaker::Agent, 0.0, " ");
    empty.text = "  ".into();
    let replies = agent.say(empty).await;
    assert!(
        matches!(
            replies.first(),
            Some(ServerMessage::Error {
                code: ErrorCode::InvalidField,
                seq: Some(1),
                ..
            })
        ),
        "{replies:?}"
    );

    // After all that, the call works and lost nothing.
    let replies = agent
        .say(utterance(1, Speaker::Agent, 0.0, "您好 很高兴为您服务"))
        .await;
    assert_eq!(replies.first(), Some(&ServerMessage::Ack { seq: 1 }));
    let replies = agent
        .say(utterance(2, Speaker::Agent, 3.0, "这款产品保本保收益"))
        .await;
    assert!(alert_categories(&events(replies)).contains(&"misleading_promise".to_string()));
    let end = events(agent.end(6.0).await);
    let Some(Event::Summary(summary)) = end.last() else {
        panic!("no summary")
    };
    assert_eq!(summary.utterances, 2);
    assert_eq!(summary.score, 0, "the fatal promise fails the call");
}

use futures_util::SinkExt;

#[tokio::test]
async fn a_session_without_hello_is_told_to_say_hello_first() {
    let server = Server::start(&[]);
    let mut agent = Agent::connect(&server.url()).await;
    agent
        .send(&ClientMessage::Utterance(utterance(
            1,
            Speaker::Agent,
            0.0,
            "您好",
        )))
        .await;
    assert_eq!(error_code(agent.recv().await), ErrorCode::HelloRequired);
    // Still open: a hello now works.
    let welcome = agent.hello("a1", "", "c-late-hello", "zh").await;
    assert!(
        matches!(welcome, ServerMessage::Welcome { .. }),
        "{welcome:?}"
    );
}

#[tokio::test]
async fn an_unknown_protocol_version_is_refused_and_the_connection_closed() {
    let server = Server::start(&[]);
    let mut agent = Agent::connect(&server.url()).await;
    agent
        .send_raw(
            r#"{"type":"hello","v":2,"agent_id":"a1","token":"","call_id":"c","language":"zh"}"#,
        )
        .await;
    match agent.recv().await {
        Some(ServerMessage::Error {
            code: ErrorCode::UnsupportedVersion,
            message,
            ..
        }) => {
            assert!(
                message.contains("v1"),
                "the message says what the server speaks: {message}"
            )
        }
        other => panic!("expected unsupported_version, got {other:?}"),
    }
    assert!(agent.recv().await.is_none(), "the connection is closed");
}

#[tokio::test]
async fn duplicate_and_out_of_order_utterances_are_refused_and_nothing_is_counted_twice() {
    let server = Server::start(&[]);
    let mut agent = Agent::connect(&server.url()).await;
    agent.hello("a1", "", "c-dup", "zh").await;
    let first = agent
        .say(utterance(1, Speaker::Customer, 40.0, "我要投诉你们"))
        .await;
    assert_eq!(first.first(), Some(&ServerMessage::Ack { seq: 1 }));
    let again = agent
        .say(utterance(1, Speaker::Customer, 40.0, "我要投诉你们"))
        .await;
    assert!(
        matches!(
            again.as_slice(),
            [ServerMessage::Error {
                code: ErrorCode::DuplicateSeq,
                seq: Some(1),
                ..
            }]
        ),
        "{again:?}"
    );
    let early = agent.say(utterance(2, Speaker::Agent, 1.0, "您好")).await;
    assert!(
        matches!(
            early.as_slice(),
            [ServerMessage::Error {
                code: ErrorCode::OutOfOrder,
                seq: Some(2),
                ..
            }]
        ),
        "{early:?}"
    );
    let next = agent
        .say(utterance(
            2,
            Speaker::Agent,
            42.0,
            "非常抱歉 我马上为您处理",
        ))
        .await;
    assert_eq!(next.first(), Some(&ServerMessage::Ack { seq: 2 }));
    let end = events(agent.end(45.0).await);
    let Some(Event::Summary(summary)) = end.last() else {
        panic!("no summary")
    };
    assert_eq!(summary.utterances, 2);
    let complaints: u32 = summary
        .hits
        .iter()
        .filter(|h| h.category == "complaint_risk")
        .map(|h| h.count)
        .sum();
    assert_eq!(complaints, 1, "the duplicate was not counted: {summary:?}");
}

#[tokio::test]
async fn a_reconnecting_agent_resumes_the_call_where_it_left_off() {
    let server = Server::start(&[]);
    let mut agent = Agent::connect(&server.url()).await;
    agent.hello("a1", "", "c-resume", "zh").await;
    agent
        .say(utterance(1, Speaker::Agent, 0.0, "您好 很高兴为您服务"))
        .await;
    agent
        .say(utterance(
            2,
            Speaker::Customer,
            3.0,
            "我想退货 衣服尺码不合适",
        ))
        .await;
    drop(agent);

    let mut again = Agent::connect(&server.url()).await;
    match again.hello("a1", "", "c-resume", "zh").await {
        ServerMessage::Welcome { last_seq, .. } => assert_eq!(last_seq, 2),
        other => panic!("expected a welcome, got {other:?}"),
    }
    let replies = again
        .say(utterance(3, Speaker::Agent, 6.0, "好的 感谢您的来电 再见"))
        .await;
    assert_eq!(replies.first(), Some(&ServerMessage::Ack { seq: 3 }));
    let end = events(again.end(9.0).await);
    let Some(Event::Summary(summary)) = end.last() else {
        panic!("no summary")
    };
    assert_eq!(
        summary.utterances, 3,
        "the call kept its first two utterances"
    );
    assert!(
        alert_categories(&end).contains(&"required_disclosure".to_string()),
        "the return request made before the reconnect still arms the disclosure rule"
    );
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_an_agent_cannot_join_another_agents_call() {
    let server = Server::start(&[
        "--agent-token",
        "a1=secret-1",
        "--agent-token",
        "a2=secret-2",
    ]);
    let mut intruder = Agent::connect(&server.url()).await;
    let reply = intruder.hello("a1", "guess", "c-a1", "zh").await;
    assert!(
        matches!(
            reply,
            ServerMessage::Error {
                code: ErrorCode::Unauthorized,
                ..
            }
        ),
        "{reply:?}"
    );

    let mut owner = Agent::connect(&server.url()).await;
    let reply = owner.hello("a1", "secret-1", "c-a1", "zh").await;
    assert!(matches!(reply, ServerMessage::Welcome { .. }), "{reply:?}");
    owner
        .say(utterance(
            1,
            Speaker::Customer,
            0.0,
            "我的手机号是13812345678",
        ))
        .await;

    let mut other = Agent::connect(&server.url()).await;
    let reply = other.hello("a2", "secret-2", "c-a1", "zh").await;
    assert!(
        matches!(
            reply,
            ServerMessage::Error {
                code: ErrorCode::Forbidden,
                ..
            }
        ),
        "{reply:?}"
    );
    assert!(other.recv().await.is_none(), "the connection is closed");
}

#[tokio::test]
async fn partial_results_raise_alerts_while_the_agent_is_still_speaking() {
    let server = Server::start(&[]);
    let mut agent = Agent::connect(&server.url()).await;
    agent.hello("a1", "", "c-partial", "zh").await;
    let mut partial = utterance(1, Speaker::Agent, 0.0, "我们这个价格是全网最低价");
    partial.partial = true;
    let replies = agent.say(partial).await;
    assert!(
        !replies
            .iter()
            .any(|m| matches!(m, ServerMessage::Ack { .. })),
        "partials are not acked"
    );
    assert_eq!(
        alert_categories(&events(replies)),
        vec!["forbidden_phrase".to_string()]
    );
    let replies = agent
        .say(utterance(
            1,
            Speaker::Agent,
            0.0,
            "我们这个价格是全网最低价 您放心",
        ))
        .await;
    assert_eq!(replies.first(), Some(&ServerMessage::Ack { seq: 1 }));
    assert!(
        !alert_categories(&events(replies)).contains(&"forbidden_phrase".to_string()),
        "the final does not repeat the alert"
    );
    let end = events(agent.end(4.0).await);
    let Some(Event::Summary(summary)) = end.last() else {
        panic!("no summary")
    };
    let count: u32 = summary
        .hits
        .iter()
        .filter(|h| h.category == "forbidden_phrase")
        .map(|h| h.count)
        .sum();
    assert_eq!(count, 1);
}

#[test]
fn check_pack_accepts_the_default_pack() {
    let out = Command::new(BIN)
        .arg("check-pack")
        .arg(default_pack())
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("ok:"), "{stdout}");
}

#[test]
fn check_pack_names_the_file_and_line_of_each_problem() {
    let pack = pack_copy();
    let rules = pack.path().join("rules/zz_broken.toml");
    std::fs::write(
        &rules,
        "# a lead's typo\n\n[[rule]]\nid = \"x.one\"\ncategory = \"abuse\"\nseverity = \"fatal\"\nspeaker = \"agent\"\nmessage = \"m\"\nkind = \"keyword\"\nany = [\"x\"]\n\n[[rule]]\nid = \"x.two\"\ncategory = \"abuse\"\nseverity = \"deadly\"\nspeaker = \"agent\"\nmessage = \"m\"\nkind = \"keywords\"\nany = [\"y\"]\n",
    )
    .expect("write");
    let out = Command::new(BIN)
        .arg("check-pack")
        .arg(pack.path())
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("rules/zz_broken.toml:3: unknown kind `keyword`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("rules/zz_broken.toml:") && stdout.contains("deadly"),
        "{stdout}"
    );
}

#[test]
fn the_server_refuses_to_start_with_a_broken_pack_and_says_why() {
    let pack = pack_copy();
    std::fs::write(
        pack.path().join("scripts/zz.toml"),
        "[[script]]\nid = \"s\"\n",
    )
    .expect("write");
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--pack"])
        .arg(pack.path())
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("scripts/zz.toml"), "{stderr}");
}

#[test]
fn a_missing_pack_folder_is_named_once_with_its_cause() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-such-pack");
    let data = dir.path().join("data");
    let runs: [Vec<std::ffi::OsString>; 2] = [
        vec![
            "serve".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            data.clone().into(),
            "--pack".into(),
            missing.clone().into(),
        ],
        vec![
            "qc".into(),
            "--no-store".into(),
            "--pack".into(),
            missing.clone().into(),
            repo_root().join("samples").into(),
        ],
    ];
    for args in runs {
        let out = Command::new(BIN).args(&args).output().expect("runs");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        let error = stderr
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_else(|| panic!("an error line in {stderr}"));
        assert_eq!(error.matches("no-such-pack").count(), 2, "{error}");
        assert_eq!(error.matches("os error 2").count(), 1, "{error}");
        assert_eq!(error.matches("loading the pack").count(), 1, "{error}");
    }
}

#[test]
fn replay_reports_bad_lines_with_their_number_and_goes_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("call.jsonl");
    std::fs::write(
        &path,
        "{\"t\":0,\"speaker\":\"agent\",\"text\":\"您好\"}\n{broken\n{\"t\":2,\"speaker\":\"agent\",\"text\":\"这个保本\"}\n",
    )
    .expect("write");
    let out = Command::new(BIN)
        .args(["replay", "--pack"])
        .arg(default_pack())
        .arg(&path)
        .output()
        .expect("runs");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("misleading_promise"),
        "line 3 was still replayed: {stdout}"
    );
    assert!(stdout
        .lines()
        .last()
        .is_some_and(|l| l.contains("\"summary\"")));
}

#[test]
fn two_compilations_of_the_pack_replay_a_call_identically() {
    // The engine is deterministic: two compilations of the pack replay a call identically.
    let (_, path) = sample_calls().into_iter().next().expect("a call");
    let files = assist_server::packs::read_pack_files(&default_pack()).expect("read");
    let a = Arc::new(Engine::from_files(&files).expect("compiles"));
    let b = Arc::new(Engine::from_files(&files).expect("compiles"));
    let run = |engine: &Arc<Engine>| {
        let mut out = Vec::new();
        let text = std::fs::read_to_string(&path).expect("read");
        replay(
            engine,
            &NoKnowledge,
            "zh",
            Cursor::new(text),
            &mut out,
            Vec::new(),
        )
        .expect("replay");
        out
    };
    assert_eq!(run(&a), run(&b));
}
