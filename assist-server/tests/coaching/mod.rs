//! The coaching service over real HTTP and a real WebSocket: logins, the access-control matrix,
//! the call log (and a kill -9), pack publishing and pushes, retention, export, limits.

mod access;

use crate::common::api::{agent_call, Api};
use crate::common::*;
use assist_protocol::{CardAction, ClientMessage, Event, ServerMessage, Speaker};
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_wrong_passwords_block_that_username_for_a_while_and_no_other() {
    let server = Server::start(&[]);
    let api = Api::new(&server.http());
    // Five wrong passwords are free (typos), the sixth blocks the username...
    for attempt in 1..=6 {
        let wrong = api.login("admin", "not-the-password").await;
        assert_eq!(
            (wrong.status.as_u16(), wrong.code()),
            (401, "bad_credentials"),
            "attempt {attempt}"
        );
    }
    // ...so even the right password waits, told how long, before any password is checked.
    let blocked = api.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(
        (blocked.status.as_u16(), blocked.code()),
        (429, "too_many_attempts"),
        "{:?}",
        blocked.body
    );
    let retry_after: u64 = blocked.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(
        blocked.body["error"]["details"]["retry_after_seconds"],
        retry_after
    );
    // Another username is not affected: an unknown one still gets the usual answer.
    let other = api.login("nobody", "not-the-password").await;
    assert_eq!(
        (other.status.as_u16(), other.code()),
        (401, "bad_credentials")
    );
}

#[tokio::test]
async fn a_login_gives_a_token_and_wrong_passwords_or_expired_tokens_get_a_clear_401() {
    let server = Server::start(&["--token-ttl-secs", "4"]);
    let api = Api::new(&server.http());

    let ok = api.login("admin", ADMIN_PASSWORD).await.expect(200);
    let token = ok["token"].as_str().expect("token").to_string();
    assert_eq!(ok["user"]["role"], "admin");
    assert!(ok["expires_at"].as_i64().is_some());
    assert!(ok["user"].get("password").is_none() && ok["user"].get("password_hash").is_none());
    assert_eq!(
        api.get("/api/v1/me", &token).await.expect(200)["username"],
        "admin"
    );

    // A wrong password and an unknown user get the same answer: nothing leaks.
    let wrong = api.login("admin", "not-the-password").await;
    let unknown = api.login("nobody", "not-the-password").await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.code(), "bad_credentials");
    assert_eq!(wrong.body, unknown.body);

    let none = api
        .call(reqwest::Method::GET, "/api/v1/me", None, None)
        .await;
    assert_eq!((none.status.as_u16(), none.code()), (401, "unauthorized"));
    let forged = api.get("/api/v1/me", "0123456789abcdef").await;
    assert_eq!(
        (forged.status.as_u16(), forged.code()),
        (401, "unauthorized")
    );

    tokio::time::sleep(Duration::from_millis(4500)).await;
    let expired = api.get("/api/v1/me", &token).await;
    assert_eq!(expired.status, 401);
    assert!(
        expired.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("log in again")),
        "{:?}",
        expired.body
    );

    // Logins, good and bad, are audited.
    let admin = api.admin().await;
    let audit = api.get("/api/v1/audit?limit=50", &admin).await.expect(200);
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"login") && actions.contains(&"login_failed"),
        "{actions:?}"
    );
}

/// Says `text` as `speaker` and returns the server's replies.
async fn say(
    agent: &mut Agent,
    seq: u64,
    speaker: Speaker,
    t: f64,
    text: &str,
) -> Vec<ServerMessage> {
    agent.say(utterance(seq, speaker, t, text)).await
}

fn first_card(replies: &[ServerMessage]) -> Option<String> {
    replies.iter().find_map(|m| match m {
        ServerMessage::Card(c) => Some(c.id.clone()),
        _ => None,
    })
}

#[tokio::test]
async fn a_live_call_is_logged_as_it_happens_and_survives_a_kill_9() {
    let data = tempfile::tempdir().expect("data dir");
    let server = Server::start_on(data.path(), &default_pack(), &[]);
    let api = Api::new(&server.http());
    let admin = api.admin().await;
    let token = api.user(&admin, "li.na", "agent", Some("t1")).await;

    let mut agent = agent_call(&server.url(), "li.na", &token, "c-kill", "zh").await;
    let r = say(&mut agent, 1, Speaker::Agent, 0.0, "您好 很高兴为您服务").await;
    assert_eq!(r.first(), Some(&ServerMessage::Ack { seq: 1 }));
    let r = say(
        &mut agent,
        2,
        Speaker::Customer,
        3.0,
        "我要投诉 快递太慢了 我的手机是13812345678 太气人了",
    )
    .await;
    assert_eq!(r.first(), Some(&ServerMessage::Ack { seq: 2 }));
    let card = first_card(&r).expect("a complaint gets a card");
    agent
        .send(&ClientMessage::CardFeedback {
            card_id: card.clone(),
            action: CardAction::Used,
        })
        .await;
    let r = say(&mut agent, 3, Speaker::Agent, 8.0, "这款产品保本保收益").await;
    assert_eq!(r.first(), Some(&ServerMessage::Ack { seq: 3 }));
    // Let the (unacknowledged) card feedback reach the writer before the kill.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // kill -9 mid-call: every acknowledged utterance must be on disk.
    drop(agent);
    server.kill_9();
    let server = Server::start_on(data.path(), &default_pack(), &[]);
    let api = Api::new(&server.http());
    let admin = api.admin().await;

    let call = api.get("/api/v1/calls/c-kill", &admin).await.expect(200);
    let lines = call["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 3, "{call:#}");
    let text = lines[1]["text"].as_str().expect("text");
    assert!(
        text.contains("138****5678") && !text.contains("13812345678"),
        "{text}"
    );
    assert_eq!(lines[1]["speaker"], "customer");
    assert_eq!(lines[1]["start"], 3.0);
    assert_eq!(call["meta"]["agent_id"], "li.na");
    assert_eq!(call["meta"]["team"], "t1");
    assert_eq!(call["meta"]["status"], "in_progress");
    let categories: Vec<&str> = call["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter_map(|a| a["alert"]["category"].as_str())
        .collect();
    assert!(categories.contains(&"misleading_promise"), "{categories:?}");
    assert!(
        call["emotions"].as_array().is_some_and(|e| !e.is_empty()),
        "the emotion timeline: {call:#}"
    );
    let cards = call["cards"].as_array().expect("cards");
    let used = cards
        .iter()
        .find(|c| c["card_id"] == card.as_str())
        .expect("the card");
    assert_eq!(used["reaction"], "used", "{cards:#?}");
    assert!(!serde_json::to_string(&call)
        .expect("json")
        .contains("13812345678"));

    // The agent reconnects after the restart and resumes where the store left off.
    let mut again = Agent::connect(&server.url()).await;
    match again.hello("li.na", &token, "c-kill", "zh").await {
        ServerMessage::Welcome { last_seq, .. } => assert_eq!(last_seq, 3),
        other => panic!("expected a welcome, got {other:?}"),
    }
    let r = say(&mut again, 4, Speaker::Agent, 12.0, "感谢您的来电 再见").await;
    assert_eq!(r.first(), Some(&ServerMessage::Ack { seq: 4 }));
    let end = events(again.end(15.0).await);
    let Some(Event::Summary(summary)) = end.last() else {
        panic!("no summary")
    };
    assert_eq!(
        summary.utterances, 4,
        "the stored lines count in the summary"
    );

    let call = api.get("/api/v1/calls/c-kill", &admin).await.expect(200);
    assert_eq!(call["meta"]["status"], "ended");
    assert_eq!(call["lines"].as_array().map(Vec::len), Some(4));
    assert_eq!(
        call["summary"]["score"], 0,
        "a fatal promise fails the call"
    );
    let ignored = call["cards"]
        .as_array()
        .expect("cards")
        .iter()
        .filter(|c| c["reaction"] == "ignored")
        .count();
    let reactions: Vec<&str> = call["cards"]
        .as_array()
        .expect("cards")
        .iter()
        .filter_map(|c| c["reaction"].as_str())
        .collect();
    assert!(
        !reactions.contains(&"pending"),
        "after the end a card is used, dismissed or ignored: {reactions:?} ({ignored} ignored)"
    );
}

#[tokio::test]
async fn a_call_nobody_ends_is_closed_by_the_server() {
    let server = Server::start(&["--idle-call-secs", "1"]);
    let api = Api::new(&server.http());
    let admin = api.admin().await;
    let token = api.user(&admin, "a1", "agent", None).await;
    let mut agent = agent_call(&server.url(), "a1", &token, "c-idle", "zh").await;
    say(&mut agent, 1, Speaker::Agent, 0.0, "您好 很高兴为您服务").await;
    drop(agent);
    let mut status = Value::Null;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let call = api.get("/api/v1/calls/c-idle", &admin).await.expect(200);
        status = call["meta"]["status"].clone();
        if status == "ended" {
            assert!(call["summary"].is_object(), "{call:#}");
            return;
        }
    }
    panic!("the idle call was not ended: {status}");
}

/// A pack edit: the default files plus one file.
fn with_file(files: &Value, path: &str, text: &str) -> Value {
    let mut files = files.clone();
    files[path] = Value::String(text.to_string());
    files
}

const NEW_SCRIPT: &str = r#"[[script]]
id = "quantum.zh"
title = "量子通道"
tier = "basic"
language = "zh"
priority = 90
body = "量子退货通道已为您开启，24小时内上门取件。"
[script.trigger]
keywords = ["量子退货"]
"#;

const BROKEN_RULE: &str = "# a lead's typo\n\n[[rule]]\nid = \"x.one\"\ncategory = \"abuse\"\nseverity = \"fatal\"\nspeaker = \"agent\"\nmessage = \"m\"\nkind = \"keyword\"\nany = [\"x\"]\n";

#[tokio::test]
async fn an_invalid_pack_is_refused_with_check_packs_message_and_the_live_pack_stays() {
    let server = Server::start(&[]);
    let api = Api::new(&server.http());
    let admin = api.admin().await;
    let lead = api.user(&admin, "lead1", "lead", Some("t1")).await;
    let files = api.pack_files(&lead).await;
    let before = api
        .call(reqwest::Method::GET, "/healthz", None, None)
        .await
        .expect(200);

    let broken = with_file(&files, "rules/zz_broken.toml", BROKEN_RULE);
    // What `check-pack` prints for the same folder, without the folder prefix.
    let copy = pack_copy();
    std::fs::write(copy.path().join("rules/zz_broken.toml"), BROKEN_RULE).expect("write");
    let out = std::process::Command::new(BIN)
        .arg("check-pack")
        .arg(copy.path())
        .output()
        .expect("check-pack runs");
    let prefix = format!("{}/", copy.path().display());
    let check_pack_lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.strip_prefix(&prefix).unwrap_or(l).to_string())
        .collect();
    for (path, body) in [
        ("/api/v1/packs/validate", json!({"files": broken})),
        (
            "/api/v1/packs/publish",
            json!({"files": broken, "base_version": 1}),
        ),
    ] {
        let r = api.post(path, &lead, &body).await;
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (422, "invalid_pack"),
            "{path}: {:#}",
            r.body
        );
        let texts: Vec<&str> = r.body["error"]["details"]
            .as_array()
            .expect("details")
            .iter()
            .filter_map(|d| d["text"].as_str())
            .collect();
        assert_eq!(
            texts, check_pack_lines,
            "the API says exactly what check-pack says"
        );
        assert!(texts[0].starts_with("rules/zz_broken.toml:3: unknown kind `keyword`"));
    }
    let bad_path = with_file(&files, "../etc/passwd.toml", "x = 1");
    let r = api
        .post(
            "/api/v1/packs/publish",
            &lead,
            &json!({"files": bad_path, "base_version": 1}),
        )
        .await;
    assert_eq!(r.status, 422);

    assert_eq!(api.latest_pack(&lead).await, 1, "nothing was stored");
    let after = api
        .call(reqwest::Method::GET, "/healthz", None, None)
        .await
        .expect(200);
    assert_eq!(before["pack_version"], after["pack_version"]);
}

#[tokio::test]
async fn two_leads_editing_the_same_version_cannot_overwrite_each_other() {
    let server = Server::start(&[]);
    let api = Api::new(&server.http());
    let admin = api.admin().await;
    let one = api.user(&admin, "lead1", "lead", Some("t1")).await;
    let two = api.user(&admin, "lead2", "lead", Some("t1")).await;
    let base = api.latest_pack(&one).await;
    let files = api.pack_files(&one).await;
    let mine = with_file(&files, "scripts/zz_one.toml", NEW_SCRIPT);
    let theirs = with_file(
        &files,
        "scripts/zz_two.toml",
        &NEW_SCRIPT.replace("quantum.zh", "quantum2.zh"),
    );

    api.post(
        "/api/v1/packs/publish",
        &one,
        &json!({"files": mine, "base_version": base}),
    )
    .await
    .expect(201);
    let r = api
        .post(
            "/api/v1/packs/publish",
            &two,
            &json!({"files": theirs, "base_version": base}),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (409, "version_conflict"),
        "{:#}",
        r.body
    );
    assert_eq!(r.body["error"]["details"]["current"], base + 1);
    let current = api.pack_files(&two).await;
    assert!(
        current.get("scripts/zz_one.toml").is_some()
            && current.get("scripts/zz_two.toml").is_none()
    );
}

#[tokio::test]
async fn a_published_script_reaches_connected_agents_at_once_and_rollback_takes_it_back() {
    let server = Server::start(&[]);
    let api = Api::new(&server.http());
    let admin = api.admin().await;
    let lead = api.user(&admin, "lead1", "lead", Some("t1")).await;
    let a1 = api.user(&admin, "a1", "agent", Some("t1")).await;
    let a2 = api.user(&admin, "a2", "agent", Some("t2")).await;

    let mut one = agent_call(&server.url(), "a1", &a1, "c-push-1", "zh").await;
    let mut two = agent_call(&server.url(), "a2", &a2, "c-push-2", "zh").await;
    // (A line that would have shown the new card counts as having shown it once the call
    // moves to the new pack: the session is rebuilt as if it had run on it from the start.)
    let r = say(&mut one, 1, Speaker::Customer, 0.0, "你好 我想问个事").await;
    assert_eq!(r.first(), Some(&ServerMessage::Ack { seq: 1 }));

    // Publish to team t1 only: a1 is told, a2 is not.
    let files = api.pack_files(&lead).await;
    let edited = with_file(&files, "scripts/zz_quantum.toml", NEW_SCRIPT);
    let v2 = api
        .post(
            "/api/v1/packs/publish",
            &lead,
            &json!({"files": edited, "base_version": 1, "team": "t1", "message": "量子通道"}),
        )
        .await
        .expect(201);
    assert_eq!(v2["number"], 2);
    match one.recv().await {
        Some(ServerMessage::PackUpdated { pack_version }) => {
            assert!(pack_version.ends_with("+v2"), "{pack_version}")
        }
        other => panic!("expected pack_updated, got {other:?}"),
    }
    assert!(
        two.drain().await.is_empty(),
        "another team's agent is not told"
    );

    // The call in progress uses the new script from its next utterance, without reconnecting.
    let r = say(&mut one, 2, Speaker::Customer, 4.0, "量子退货怎么弄").await;
    assert_eq!(r.first(), Some(&ServerMessage::Ack { seq: 2 }));
    let cards: Vec<String> = r
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Card(c) => Some(c.id.clone()),
            _ => None,
        })
        .collect();
    assert!(cards.contains(&"quantum.zh".to_string()), "{cards:?}");
    let r = say(&mut two, 1, Speaker::Customer, 0.0, "量子退货怎么弄").await;
    assert_ne!(
        first_card(&r).as_deref(),
        Some("quantum.zh"),
        "team t2 still has version 1"
    );

    // A lead may not publish to another team.
    let r = api
        .post(
            "/api/v1/packs/publish",
            &lead,
            &json!({"files": files, "base_version": 2, "team": "t2"}),
        )
        .await;
    assert_eq!(r.status, 403);

    // Roll back to version 1 (everyone): both agents are told; the script is gone.
    let v3 = api
        .post(
            "/api/v1/packs/rollback",
            &lead,
            &json!({"version": 1, "base_version": 2}),
        )
        .await
        .expect(201);
    assert_eq!(
        (v3["number"].as_u64(), v3["rolled_back_from"].as_u64()),
        (Some(3), Some(1))
    );
    for agent in [&mut one, &mut two] {
        match agent.recv().await {
            Some(ServerMessage::PackUpdated { pack_version }) => {
                assert!(pack_version.ends_with("+v3"), "{pack_version}")
            }
            other => panic!("expected pack_updated, got {other:?}"),
        }
    }
    let r = say(&mut one, 3, Speaker::Customer, 8.0, "还是量子退货的事").await;
    assert_ne!(first_card(&r).as_deref(), Some("quantum.zh"));

    // History and audit.
    let versions = api.get("/api/v1/packs/versions", &lead).await.expect(200);
    assert_eq!(versions["versions"].as_array().map(Vec::len), Some(3));
    let v2 = api.get("/api/v1/packs/versions/2", &lead).await.expect(200);
    assert!(
        v2["diff"]
            .as_str()
            .is_some_and(|d| d.contains("量子退货通道")),
        "{v2:#}"
    );
    let audit = api.get("/api/v1/audit", &admin).await.expect(200);
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"publish") && actions.contains(&"rollback"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn preview_replays_a_stored_call_through_the_candidate_pack() {
    let server = Server::start(&[]);
    let api = Api::new(&server.http());
    let admin = api.admin().await;
    let lead = api.user(&admin, "lead1", "lead", Some("t1")).await;
    let a1 = api.user(&admin, "a1", "agent", Some("t1")).await;
    let mut agent = agent_call(&server.url(), "a1", &a1, "c-preview", "zh").await;
    say(&mut agent, 1, Speaker::Agent, 0.0, "这款产品保本保收益").await;
    agent.end(3.0).await;

    let files = api.pack_files(&lead).await;
    // Without the misleading-promise rules file, the stored hit goes away.
    let mut fewer = files.clone();
    fewer
        .as_object_mut()
        .expect("files")
        .remove("rules/misleading_promise.toml");
    let preview = api
        .post(
            "/api/v1/packs/preview",
            &lead,
            &json!({"files": fewer, "call_id": "c-preview"}),
        )
        .await
        .expect(200);
    let removed: Vec<&str> = preview["removed"]
        .as_array()
        .expect("removed")
        .iter()
        .filter_map(|h| h["category"].as_str())
        .collect();
    assert!(removed.contains(&"misleading_promise"), "{preview:#}");
    assert!(preview["summary"]["score"].as_u64() > preview["stored_summary"]["score"].as_u64());
    let same = api
        .post(
            "/api/v1/packs/preview",
            &lead,
            &json!({"files": files, "call_id": "c-preview"}),
        )
        .await
        .expect(200);
    assert_eq!(same["added"], json!([]));
    assert_eq!(same["removed"], json!([]));
}

#[tokio::test]
async fn retention_purges_old_ended_calls_and_export_gives_the_whole_call() {
    let server = Server::start(&[]);
    let api = Api::new(&server.http());
    let admin = api.admin().await;
    let a1 = api.user(&admin, "a1", "agent", None).await;
    let mut done = agent_call(&server.url(), "a1", &a1, "c-old", "zh").await;
    say(
        &mut done,
        1,
        Speaker::Customer,
        0.0,
        "我的卡号是6222021234567890123",
    )
    .await;
    done.end(2.0).await;
    let mut open = agent_call(&server.url(), "a1", &a1, "c-open", "zh").await;
    say(&mut open, 1, Speaker::Agent, 0.0, "您好").await;

    let export = api.get("/api/v1/calls/c-old/export", &a1).await;
    assert_eq!(export.status, 200);
    let disposition = export.headers["content-disposition"]
        .to_str()
        .expect("ascii");
    assert!(disposition.contains("call-c-old.json"), "{disposition}");
    assert_eq!(export.body["meta"]["call_id"], "c-old");
    assert_eq!(export.body["lines"].as_array().map(Vec::len), Some(1));
    assert!(
        export.body["schema_version"].is_number(),
        "{:#}",
        export.body
    );
    assert!(!export.body.to_string().contains("6222021234567890123"));

    let retention = api.get("/api/v1/admin/retention", &admin).await.expect(200);
    assert_eq!(retention["retention_days"], 365);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let purged = api
        .post(
            "/api/v1/admin/purge",
            &admin,
            &json!({"older_than_days": 0}),
        )
        .await
        .expect(200);
    assert_eq!(purged["purged"], 1, "only the ended call");
    assert_eq!(api.get("/api/v1/calls/c-old", &admin).await.status, 404);
    api.get("/api/v1/calls/c-open", &admin).await.expect(200);
    // The default period keeps a call that ended just now.
    let purged = api
        .call(
            reqwest::Method::POST,
            "/api/v1/admin/purge",
            Some(&admin),
            None,
        )
        .await
        .expect(200);
    assert_eq!(purged["purged"], 0);
}

#[tokio::test]
async fn oversized_and_malformed_bodies_are_refused_clearly() {
    let server = Server::start(&[]);
    let api = Api::new(&server.http());
    let admin = api.admin().await;
    let (status, body) = post_raw(&server, "/api/v1/packs/validate", &admin, 2 * 1024 * 1024).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("payload_too_large"), "{body}");
    let r = api
        .post("/api/v1/packs/validate", &admin, &json!({"file": {}}))
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "bad_request"));
    let r = api.get("/api/v1/calls?min_score=lots", &admin).await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "bad_request"));
    let r = api.get("/api/v1/calls?from=yesterday", &admin).await;
    assert_eq!(r.status, 400);
    let r = api.get("/api/v1/tasks/not-a-number", &admin).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_of_the_router() {
    let server = Server::start(&[]);
    let api = Api::new(&server.http());
    let doc = api
        .call(reqwest::Method::GET, "/api/v1/openapi.json", None, None)
        .await
        .expect(200);
    assert_eq!(doc["openapi"], "3.1.0");
    let table = assist_server::web::table();
    assert!(table.len() > 40);
    for route in table {
        let method = route.method.as_str().to_ascii_lowercase();
        assert!(
            doc["paths"][route.path][&method].is_object(),
            "{} {} is missing from openapi.json",
            route.method,
            route.path
        );
    }
}

#[tokio::test]
async fn trainers_review_calls_and_coach_agents_and_reports_count_it() {
    let server = Server::start(&[]);
    let api = Api::new(&server.http());
    let admin = api.admin().await;
    let trainer = api.user(&admin, "tr", "trainer", None).await;
    let a1 = api.user(&admin, "a1", "agent", Some("t1")).await;
    let mut agent = agent_call(&server.url(), "a1", &a1, "c-review", "zh").await;
    say(&mut agent, 1, Speaker::Agent, 0.0, "您好 很高兴为您服务").await;
    say(&mut agent, 2, Speaker::Agent, 3.0, "这款产品保本保收益").await;
    agent.end(6.0).await;

    let list = api
        .get(
            "/api/v1/calls?agent=a1&category=misleading_promise&max_score=10",
            &trainer,
        )
        .await
        .expect(200);
    assert_eq!(list["total"], 1, "{list:#}");
    assert_eq!(list["calls"][0]["call_id"], "c-review");
    let none = api
        .get("/api/v1/calls?min_score=90", &trainer)
        .await
        .expect(200);
    assert_eq!(none["total"], 0);

    let call = api
        .get("/api/v1/calls/c-review", &trainer)
        .await
        .expect(200);
    let alert = call["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .find(|a| a["alert"]["category"] == "misleading_promise")
        .expect("the hit")
        .clone();
    assert_eq!(alert["line_seq"], 2);
    let id = alert["id"].as_str().expect("id");
    let judged = api
        .put(
            &format!("/api/v1/calls/c-review/alerts/{id}/verdict"),
            &trainer,
            &json!({"verdict": "overturned", "note": "read from the disclaimer"}),
        )
        .await
        .expect(200);
    assert_eq!(judged["verdict"]["kind"], "overturned");
    api.post(
        "/api/v1/calls/c-review/comments",
        &trainer,
        &json!({"seq": 2, "text": "这里应该说明风险"}),
    )
    .await
    .expect(201);
    let r = api
        .put(
            "/api/v1/calls/c-review/score",
            &trainer,
            &json!({"score": 85, "reason": ""}),
        )
        .await;
    assert_eq!(r.status, 422, "a manual score needs a reason");
    api.put(
        "/api/v1/calls/c-review/score",
        &trainer,
        &json!({"score": 85, "reason": "误报：客户读的是免责声明"}),
    )
    .await
    .expect(200);
    let call = api
        .get("/api/v1/calls/c-review", &trainer)
        .await
        .expect(200);
    assert_eq!(call["score"], 85);
    assert_eq!(call["comments"][0]["line_seq"], 2);

    // Reports see the manual score and the verdict; CSV too.
    let report = api
        .get("/api/v1/reports?group_by=agent", &trainer)
        .await
        .expect(200);
    assert_eq!(report["groups"][0]["key"], "a1");
    assert_eq!(report["groups"][0]["avg_score"], 85.0);
    let precision = report["rule_precision"]
        .as_array()
        .expect("precision")
        .iter()
        .find(|p| p["overturned"] == 1)
        .expect("the overturned rule");
    assert_eq!(precision["precision"], 0.0);
    let csv = api
        .get("/api/v1/reports?group_by=agent&format=csv", &trainer)
        .await;
    assert_eq!(csv.status, 200);
    assert!(csv.headers["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/csv"));
    assert!(
        csv.body
            .as_str()
            .is_some_and(|t| t.lines().count() >= 2 && t.contains("a1")),
        "{:?}",
        csv.body
    );

    // A coaching task: open -> acknowledged (by the agent) -> done, with before/after scores.
    let task = api
        .post(
            "/api/v1/tasks",
            &trainer,
            &json!({"agent": "a1", "title": "风险提示话术", "due": "2030-01-31", "call_ids": ["c-review"]}),
        )
        .await
        .expect(201);
    let id = task["id"].as_u64().expect("id");
    assert_eq!(task["status"], "open");
    let mine = api.get("/api/v1/tasks", &a1).await.expect(200);
    assert_eq!(mine["tasks"].as_array().map(Vec::len), Some(1));
    let acked = api
        .post(&format!("/api/v1/tasks/{id}/acknowledge"), &a1, &json!({}))
        .await
        .expect(200);
    assert_eq!(acked["status"], "acknowledged");
    let done = api
        .post(&format!("/api/v1/tasks/{id}/done"), &trainer, &json!({}))
        .await
        .expect(200);
    assert_eq!(done["status"], "done");
    let again = api
        .post(&format!("/api/v1/tasks/{id}/acknowledge"), &a1, &json!({}))
        .await;
    assert_eq!(
        (again.status.as_u16(), again.code()),
        (409, "invalid_transition")
    );
    let progress = api
        .get(&format!("/api/v1/tasks/{id}/progress"), &trainer)
        .await
        .expect(200);
    assert_eq!(progress["before"]["calls"], 1, "{progress:#}");
    assert_eq!(progress["after"]["calls"], 0);

    let audit = api.get("/api/v1/audit", &admin).await.expect(200);
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"verdict") && actions.contains(&"manual_score"),
        "{actions:?}"
    );
}

/// POSTs a JSON body of `size` bytes over a raw socket, writing it while reading the answer:
/// a server that refuses a large body early may close before the client has sent it all.
async fn post_raw(server: &Server, path: &str, token: &str, size: usize) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let (mut read, mut write) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n",
        server.addr
    );
    let writer = tokio::spawn(async move {
        let mut body = vec![b' '; size];
        body[0] = b'{';
        body[size - 1] = b'}';
        let _ = write.write_all(head.as_bytes()).await;
        let _ = write.write_all(&body).await;
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), read.read_to_end(&mut answer)).await;
    writer.abort();
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn users_added_from_the_command_line_can_log_in_and_the_first_admin_is_made_once() {
    let data = tempfile::tempdir().expect("data dir");
    let add = |username: &str, role: &str, password: &str| {
        std::process::Command::new(BIN)
            .args([
                "user",
                "add",
                "--username",
                username,
                "--role",
                role,
                "--team",
                "east",
            ])
            .arg("--data-dir")
            .arg(data.path())
            .env("ASSIST_USER_PASSWORD", password)
            .output()
            .expect("user add runs")
    };
    // The first start makes `admin` (there is no user yet).
    let server = Server::start_on(data.path(), &default_pack(), &[]);
    let api = Api::new(&server.http());
    api.admin().await;
    drop(server);

    let out = add("li.na", "agent", "agent-password-1");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = add("li.na", "agent", "agent-password-1");
    assert!(!out.status.success(), "a taken name is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    let out = add("short", "agent", "short");
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 8"));
    let out = add("boss", "chief", "boss-password-1");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not agent, lead, trainer or admin"));

    let server = Server::start_on(data.path(), &default_pack(), &[]);
    let api = Api::new(&server.http());
    let me = api.login("li.na", "agent-password-1").await.expect(200);
    assert_eq!(
        (me["user"]["role"].as_str(), me["user"]["team"].as_str()),
        (Some("agent"), Some("east"))
    );
    // The running server holds the store: the CLI says so instead of corrupting it.
    let out = add("late", "agent", "late-password-1");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("locked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Still one admin, with the password of the first start.
    let admin = api.admin().await;
    let users = api.get("/api/v1/users", &admin).await.expect(200);
    let admins = users["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter(|u| u["role"] == "admin")
        .count();
    assert_eq!(admins, 1);
}
