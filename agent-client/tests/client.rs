//! The agent client against the real server: the headless transcript mode is the live-path
//! test driver, and the link must survive a network drop and a server that is not up yet.

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
fn a_missing_transcript_is_a_clear_error() {
    let out = run_client(&["--headless", "--transcript", "/nonexistent/call.jsonl"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/call.jsonl"), "{stderr}");
}
