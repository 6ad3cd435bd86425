//! The web console in a real headless Chromium (Debian's `chromium`, driven by its
//! `chromedriver` over W3C WebDriver), against the real server binary on a loopback port with
//! its own data dir. Calls are seeded through the real WebSocket and the real HTTP API; the
//! publish test watches the real `agent-client` binary receive the new script.
//!
//! When Chromium or chromedriver is missing the tests print a `SKIPPED` line and pass
//! (scripts/setup.sh installs both).

mod webdriver;

use crate::common::api::{agent_call, Api};
use crate::common::*;
use assist_protocol::{ClientMessage, ServerMessage};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use webdriver::Browser;

/// `None` (and a SKIPPED line) when Chromium cannot run here.
fn browser_available(test: &str) -> bool {
    match webdriver::unavailable() {
        Some(why) => {
            println!("SKIPPED {test}: {why}");
            false
        }
        None => true,
    }
}

/// Plays a sample transcript over the WebSocket as a logged-in agent, ends the call and waits
/// until the store lists it as ended. Returns the call id.
async fn play_call(server: &Server, api: &Api, agent: &str, token: &str, call: &str, sample: &str) {
    let path = calls_dir().join(sample);
    let language = expectation(&path).language;
    let mut ws = agent_call(&server.url(), agent, token, call, &language).await;
    let lines = read_transcript(&path);
    let end = lines
        .iter()
        .map(|l| l.end.unwrap_or(l.t))
        .fold(0.0, f64::max);
    for (i, line) in lines.into_iter().enumerate() {
        ws.send(&ClientMessage::Utterance(line.into_utterance(i as u64 + 1)))
            .await;
    }
    let out = ws.end(end).await;
    assert!(
        matches!(out.last(), Some(ServerMessage::Summary(_))),
        "the call ends with a summary: {out:?}"
    );
    let admin = api.admin().await;
    wait_until("the call is stored as ended", || async {
        let body = api.get(&format!("/api/v1/calls/{call}"), &admin).await.body;
        body["meta"]["status"] == "ended"
    })
    .await;
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn log_in(browser: &Browser, server: &Server, username: &str, password: &str) {
    browser.goto(&format!("{}/", server.http())).await;
    browser.fill("[data-testid=login-username]", username).await;
    browser.fill("[data-testid=login-password]", password).await;
    browser.click_on("[data-testid=login-submit]").await;
    browser.wait_for("[data-testid=who]").await;
}

#[tokio::test]
async fn a_trainer_logs_in_opens_a_call_comments_on_a_line_and_overturns_a_hit() {
    if !browser_available("a_trainer_logs_in_opens_a_call_comments_on_a_line_and_overturns_a_hit") {
        return;
    }
    let server = Server::start(&[]);
    let api = Api::new(&server.http());
    let admin = api.admin().await;
    let agent = api.user(&admin, "mike", "agent", Some("west")).await;
    api.user(&admin, "wang.fang", "trainer", None).await;
    let call = "call-console-trainer";
    play_call(
        &server,
        &api,
        "mike",
        &agent,
        call,
        "en_guarantee_and_abuse.jsonl",
    )
    .await;

    // The console is one page with its own scripts only.
    let page = reqwest::get(format!("{}/", server.http()))
        .await
        .expect("GET /");
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(page.text().await.expect("body").contains("/console/app.js"));

    let browser = Browser::start("en-US").await;

    // A wrong password is refused plainly, with the API's code.
    browser.goto(&format!("{}/", server.http())).await;
    browser
        .fill("[data-testid=login-username]", "wang.fang")
        .await;
    browser
        .fill("[data-testid=login-password]", "not-the-password")
        .await;
    browser.click_on("[data-testid=login-submit]").await;
    browser
        .wait_for_text("[data-testid=error]", "bad_credentials")
        .await;

    // Log in: the call list shows the seeded call.
    log_in(&browser, &server, "wang.fang", "wang.fang-password").await;
    let who = browser.wait_for("[data-testid=who]").await;
    assert!(browser.text(&who).await.contains("Trainer"));
    let row = browser
        .wait_for(&format!("[data-testid=call-row][data-call-id='{call}']"))
        .await;
    assert!(browser.text(&row).await.contains("mike"));

    // Open the call: transcript with the hits highlighted in place, emotion chart, cards.
    let link = browser.find_in(&row, "[data-testid=call-link]").await;
    browser.click(&link[0]).await;
    browser
        .wait_for_text("[data-testid=call-title]", call)
        .await;
    browser.wait_for("[data-testid=transcript]").await;
    browser.wait_for("svg[data-testid=emotion-chart]").await;
    let lines = browser.find_all("[data-testid=line]").await;
    assert_eq!(lines.len(), 13, "every transcript line is shown");
    let marked = browser
        .find_all("[data-testid=line].has-hit [data-testid=hit-text]")
        .await;
    assert!(!marked.is_empty(), "hit lines are highlighted");
    let promise = browser
        .wait_for("[data-testid=alert][data-category=misleading_promise]")
        .await;
    let promise_line = browser
        .script(
            "return arguments[0].closest('[data-testid=line]').dataset.seq;",
            vec![element_arg(&promise)],
        )
        .await;
    let promise_line_el = browser
        .wait_for(&format!(
            "[data-testid=line][data-seq='{}']",
            promise_line.as_str().unwrap_or_default()
        ))
        .await;
    let class = browser.attr(&promise_line_el, "class").await;
    assert!(
        class.as_deref().is_some_and(|c| c.contains("sev-fatal")),
        "the line is marked with the worst severity of its hits: {class:?}"
    );
    let highlighted = browser
        .wait_for(&format!(
            "[data-testid=line][data-seq='{}'] [data-testid=hit-text]",
            promise_line.as_str().unwrap_or_default()
        ))
        .await;
    assert!(
        browser
            .text(&highlighted)
            .await
            .contains("guaranteed returns"),
        "the misleading promise is highlighted on its own line"
    );

    // Comment on the first line.
    let first = browser.wait_for("[data-testid=line][data-seq='1']").await;
    let open = browser.find_in(&first, "[data-testid=comment-open]").await;
    browser.click(&open[0]).await;
    let text = browser
        .wait_for("[data-testid=line][data-seq='1'] [data-testid=comment-text]")
        .await;
    browser
        .type_into(&text, "Good greeting, but say the disclosure first")
        .await;
    browser
        .click_on("[data-testid=line][data-seq='1'] [data-testid=comment-save]")
        .await;
    browser
        .wait_for_text(
            "[data-testid=line][data-seq='1'] [data-testid=comment]",
            "say the disclosure first",
        )
        .await;

    // Overturn the abuse hit.
    let abuse = "[data-testid=alert][data-category=abuse]";
    browser
        .click_on(&format!("{abuse} [data-testid=verdict-overturn]"))
        .await;
    browser
        .wait_for_text(&format!("{abuse} [data-testid=verdict]"), "overturned")
        .await;

    // Both are stored: the API says so, and so does the page after a reload.
    let record = api
        .get(&format!("/api/v1/calls/{call}"), &admin)
        .await
        .expect(200);
    let comments = record["comments"].as_array().expect("comments");
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert_eq!(comments[0]["line_seq"], 1);
    assert_eq!(comments[0]["author"], "wang.fang");
    let verdicts: Vec<&Value> = record["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["verdict"].is_object())
        .collect();
    assert_eq!(verdicts.len(), 1, "one verdict: {verdicts:?}");
    assert_eq!(verdicts[0]["alert"]["category"], "abuse");
    assert_eq!(verdicts[0]["verdict"]["kind"], "overturned");
    assert_eq!(verdicts[0]["verdict"]["by"], "wang.fang");
    browser.script("location.reload();", Vec::new()).await;
    browser
        .wait_for_text(&format!("{abuse} [data-testid=verdict]"), "overturned")
        .await;
    browser
        .wait_for_text("[data-testid=comment]", "say the disclosure first")
        .await;

    // Reports: the overturned hit counts against its rule's precision; charts are drawn.
    browser.click_on("[data-testid=nav-reports]").await;
    browser
        .wait_for_text(
            "[data-testid=precision-row][data-rule='abuse.insult.en']",
            "0%",
        )
        .await;
    for chart in [
        "chart-calls",
        "chart-hits",
        "chart-distribution",
        "chart-precision",
    ] {
        let bars = browser
            .find_all(&format!("svg[data-testid={chart}] rect"))
            .await;
        assert!(!bars.is_empty(), "{chart} has bars");
    }
    browser.script("history.back();", Vec::new()).await;

    // The same page in Chinese: every label through the dictionary.
    browser.click_on("[data-testid=lang-toggle]").await;
    browser
        .wait_for_text(&format!("{abuse} [data-testid=verdict]"), "已推翻")
        .await;
    browser
        .wait_for_text("[data-testid=nav-calls]", "通话")
        .await;

    // A token the server no longer knows sends you to the login, and back afterwards.
    api.call(
        reqwest::Method::POST,
        "/api/v1/logout",
        Some(&session_token(&browser).await),
        None,
    )
    .await
    .expect(204);
    browser
        .script("location.hash = '#/reports?group_by=agent';", Vec::new())
        .await;
    browser.wait_for("[data-testid=login-form]").await;
    browser
        .fill("[data-testid=login-username]", "wang.fang")
        .await;
    browser
        .fill("[data-testid=login-password]", "wang.fang-password")
        .await;
    browser.click_on("[data-testid=login-submit]").await;
    browser.wait_for("[data-testid=report-kpis]").await;
    assert!(browser
        .current_url()
        .await
        .contains("#/reports?group_by=agent"));

    browser.quit().await;
}

/// Where the agent-client binary of this build is (target/<profile>/agent-client), built if
/// missing: `cargo build -p agent-client` with the same target dir and profile as this test
/// binary (the first run of the browser tests pays for that build).
fn agent_client_binary() -> PathBuf {
    let bin = Path::new(BIN);
    let dir = bin.parent().expect("the profile dir");
    let path = dir.join("agent-client");
    if !path.exists() {
        let target = dir.parent().expect("the target dir");
        let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cargo
            .args(["build", "-p", "agent-client", "--target-dir"])
            .arg(target)
            .current_dir(repo_root());
        if dir.file_name().is_some_and(|n| n == "release") {
            cargo.arg("--release");
        }
        let status = cargo.status().expect("cargo runs");
        assert!(status.success(), "cargo build -p agent-client failed");
    }
    path
}

/// Lines a child prints, as they come.
fn lines_of(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line matching `pred`, keeping what it read in `seen`.
fn wait_line(
    rx: &mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    within: Duration,
    pred: impl Fn(&str) -> bool,
) -> Option<String> {
    let deadline = Instant::now() + within;
    if let Some(line) = seen.iter().find(|l| pred(l)) {
        return Some(line.clone());
    }
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                let hit = pred(&line);
                seen.push(line.clone());
                if hit {
                    return Some(line);
                }
            }
            Err(_) => return None,
        }
    }
    None
}

/// The agent-client process, stopped by pid when dropped.
struct AgentClient(Child);

impl Drop for AgentClient {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const NEW_SCRIPT_PATH: &str = "scripts/console_test.toml";
const NEW_SCRIPT: &str = r#"# A script written in the browser.
[[script]]
id = "console_test.purple.en"
title = "Purple penguin plan"
tier = "basic"
language = "en"
priority = 99
body = "The purple penguin plan is free for the first month, and you can cancel at any time."
[script.trigger]
keywords = ["purple penguin"]
"#;

const NEW_RULE: &str = r#"[[rule]]
id = "forbidden_phrase.penguin.en"
category = "forbidden_phrase"
severity = "general"
speaker = "customer"
language = "en"
message = "A rule written in the console"
kind = "keywords"
any = ["purple penguin"]
"#;

#[tokio::test]
async fn a_script_published_in_the_console_reaches_a_connected_agent_client() {
    if !browser_available("a_script_published_in_the_console_reaches_a_connected_agent_client") {
        return;
    }
    let agent_client = agent_client_binary();
    let server = Server::start(&[]);
    let api = Api::new(&server.http());
    let admin = api.admin().await;
    let agent_token = api.user(&admin, "li.na", "agent", Some("east")).await;
    api.user(&admin, "zhao.lei", "lead", Some("east")).await;
    let before = api.latest_pack(&admin).await;

    // The lead writes a new script in the browser; first with a mistake, which the same
    // checks as check-pack report as file:line.
    let browser = Browser::start("en-US").await;
    log_in(&browser, &server, "zhao.lei", "zhao.lei-password").await;
    browser.click_on("[data-testid=nav-packs]").await;
    browser.wait_for("[data-testid=pack-editor]").await;
    browser
        .fill("[data-testid=pack-new-path]", NEW_SCRIPT_PATH)
        .await;
    browser.click_on("[data-testid=pack-add-file]").await;
    browser
        .wait_for_text("[data-testid=pack-current-file]", NEW_SCRIPT_PATH)
        .await;
    let broken = NEW_SCRIPT.replace("tier = \"basic\"", "tier = \"superb\"");
    browser.fill("[data-testid=pack-editor]", &broken).await;
    browser.click_on("[data-testid=pack-validate]").await;
    let problem = browser
        .wait_for_text("[data-testid=pack-error]", NEW_SCRIPT_PATH)
        .await;
    let problem = browser.text(&problem).await;
    assert!(
        problem.starts_with(&format!("{NEW_SCRIPT_PATH}:")),
        "the problem names the file and line: {problem}"
    );
    browser.fill("[data-testid=pack-editor]", NEW_SCRIPT).await;
    browser.click_on("[data-testid=pack-validate]").await;
    browser.wait_for("[data-testid=pack-valid]").await;
    browser
        .fill("[data-testid=publish-message]", "purple penguin script")
        .await;

    // An agent of the team is on a call: the first line now, the customer's question 30 s
    // later (real time, time enough for the publish below even on a loaded machine).
    let dir = tempfile::tempdir().expect("temp dir");
    let transcript = dir.path().join("call.jsonl");
    std::fs::write(
        &transcript,
        concat!(
            r#"{"t": 0.0, "end": 3.0, "speaker": "agent", "text": "Hello, thank you for calling, this is Li Na. How can I help you?"}"#,
            "\n",
            r#"{"t": 30.0, "end": 34.0, "speaker": "customer", "text": "Hi, can you tell me about the purple penguin plan?"}"#,
            "\n",
        ),
    )
    .expect("transcript written");
    let mut child = Command::new(&agent_client)
        .args([
            "--headless",
            "--realtime",
            "--speed",
            "1",
            "--language",
            "en",
        ])
        .arg("--transcript")
        .arg(&transcript)
        .args(["--server", &server.url(), "--agent-id", "li.na"])
        .args(["--token", &agent_token, "--call-id", "call-console-push"])
        .arg("--spool-dir")
        .arg(dir.path().join("spool"))
        .env("ASSIST_LOG", "info")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("agent-client starts");
    let stdout = lines_of(child.stdout.take().expect("stdout"));
    let stderr = lines_of(child.stderr.take().expect("stderr"));
    let mut client = AgentClient(child);
    wait_until("the agent's first line is stored", || async {
        let body = api
            .get("/api/v1/calls/call-console-push", &admin)
            .await
            .body;
        body["lines"].as_array().is_some_and(|l| !l.is_empty())
    })
    .await;

    // Publish to the team from the browser.
    let team = browser.wait_for("[data-testid=publish-team]").await;
    browser
        .script(
            "arguments[0].value = 'east'; arguments[0].dispatchEvent(new Event('change'));",
            vec![element_arg(&team)],
        )
        .await;
    browser.click_on("[data-testid=pack-publish]").await;
    let published = browser.wait_for("[data-testid=pack-published]").await;
    let call = api
        .get("/api/v1/calls/call-console-push", &admin)
        .await
        .expect(200);
    assert_eq!(
        call["lines"].as_array().map(Vec::len),
        Some(1),
        "the publish must land before the customer's line (30 s of call time): this machine was too slow"
    );
    let version = before + 1;
    assert!(
        browser
            .text(&published)
            .await
            .contains(&format!("v{version}")),
        "the page names the new version"
    );
    // The history shows who published, to whom, and what changed.
    let row = browser
        .wait_for(&format!(
            "[data-testid=pack-version][data-version='{version}']"
        ))
        .await;
    let row_text = browser.text(&row).await;
    assert!(row_text.contains("zhao.lei"), "{row_text}");
    assert!(row_text.contains("east"), "{row_text}");
    assert!(row_text.contains("purple penguin script"), "{row_text}");

    // The connected agent is told at once, and its next utterance gets the new card.
    let mut err_seen = Vec::new();
    let mut out_seen = Vec::new();
    let updated = wait_line(&stderr, &mut err_seen, Duration::from_secs(15), |l| {
        l.contains("pack updated to")
    });
    assert!(
        updated.is_some(),
        "the agent client was not told about the publish; its stderr:\n{}",
        err_seen.join("\n")
    );
    let card = wait_line(&stdout, &mut out_seen, Duration::from_secs(45), |l| {
        serde_json::from_str::<Value>(l)
            .is_ok_and(|e| e["type"] == "card" && e["id"] == "console_test.purple.en")
    });
    let Some(card) = card else {
        panic!(
            "no card for the new script; stdout:\n{}\nstderr:\n{}",
            out_seen.join("\n"),
            err_seen.join("\n")
        );
    };
    let card: Value = serde_json::from_str(&card).expect("JSON");
    assert_eq!(card["title"], "Purple penguin plan");
    // The card only came after the publish (it did not exist before).
    let status = wait_child(&mut client.0, Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "agent-client exits cleanly at call end"
    );

    // Preview a new rule on the stored call before publishing it: the hit it would add.
    browser.script("location.reload();", Vec::new()).await;
    browser.wait_for("[data-testid=pack-editor]").await;
    browser
        .fill("[data-testid=pack-new-path]", "rules/console_test.toml")
        .await;
    browser.click_on("[data-testid=pack-add-file]").await;
    browser
        .wait_for_text("[data-testid=pack-current-file]", "rules/console_test.toml")
        .await;
    browser.fill("[data-testid=pack-editor]", NEW_RULE).await;
    browser
        .fill("[data-testid=preview-call]", "call-console-push")
        .await;
    browser.click_on("[data-testid=pack-preview]").await;
    browser
        .wait_for_text(
            "[data-testid=pack-preview-result]",
            "forbidden_phrase.penguin.en",
        )
        .await;
    assert_eq!(
        api.latest_pack(&admin).await,
        version,
        "a preview publishes nothing"
    );

    // Roll back from the browser: the history gets a new version with the old files.
    browser.script("location.reload();", Vec::new()).await;
    browser
        .click_on(&format!(
            "[data-testid=pack-version][data-version='{before}'] [data-testid=version-rollback]"
        ))
        .await;
    browser.wait_for("[data-testid=pack-rolled-back]").await;
    let current = api.latest_pack(&admin).await;
    assert_eq!(current, version + 1, "a rollback is a new version");
    let files = api
        .get(&format!("/api/v1/packs/versions/{current}"), &admin)
        .await
        .expect(200);
    assert!(
        files["files"].get(NEW_SCRIPT_PATH).is_none(),
        "the rolled-back version does not have the new script"
    );

    browser.quit().await;
}

fn wait_child(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// An element as a script argument.
fn element_arg(el: &webdriver::Element) -> Value {
    el.as_arg()
}

/// The console's bearer token in the page's sessionStorage.
async fn session_token(browser: &Browser) -> String {
    browser
        .script(
            "return sessionStorage.getItem('console.token');",
            Vec::new(),
        )
        .await
        .as_str()
        .expect("logged in")
        .to_string()
}

async fn log_out(browser: &Browser) {
    browser.click_on("[data-testid=logout]").await;
    browser.wait_for("[data-testid=login-form]").await;
}

#[tokio::test]
async fn a_coaching_task_goes_from_open_to_acknowledged_to_done_and_compares_scores() {
    if !browser_available(
        "a_coaching_task_goes_from_open_to_acknowledged_to_done_and_compares_scores",
    ) {
        return;
    }
    let server = Server::start(&[]);
    let api = Api::new(&server.http());
    let admin = api.admin().await;
    let agent = api.user(&admin, "mike", "agent", Some("west")).await;
    api.user(&admin, "wang.fang", "trainer", None).await;
    play_call(
        &server,
        &api,
        "mike",
        &agent,
        "call-before",
        "en_guarantee_and_abuse.jsonl",
    )
    .await;

    // The trainer scores the call by hand and opens a coaching task from it.
    let browser = Browser::start("en-US").await;
    log_in(&browser, &server, "wang.fang", "wang.fang-password").await;
    browser
        .goto(&format!("{}/#/calls/call-before", server.http()))
        .await;
    browser.fill("[data-testid=score-value]", "55").await;
    browser
        .fill(
            "[data-testid=score-reason]",
            "Misleading promise, but the greeting was right",
        )
        .await;
    browser.click_on("[data-testid=score-save]").await;
    browser
        .wait_for_text("[data-testid=manual-score-current]", "55")
        .await;
    browser.click_on("[data-testid=call-new-task]").await;
    browser
        .fill("[data-testid=task-title]", "Never promise returns")
        .await;
    browser
        .fill(
            "[data-testid=task-note]",
            "Use the risk disclosure script on every fund call.",
        )
        .await;
    browser.click_on("[data-testid=task-create]").await;
    browser
        .wait_for_text("[data-testid=task-status]", "open")
        .await;
    let tasks = api.get("/api/v1/tasks", &admin).await.expect(200);
    let task = &tasks["tasks"][0];
    assert_eq!(task["agent"], "mike");
    assert_eq!(task["call_ids"][0], "call-before");
    let task_id = task["id"].as_u64().expect("task id");

    // A call after the task.
    play_call(
        &server,
        &api,
        "mike",
        &agent,
        "call-after",
        "en_clean_delivery.jsonl",
    )
    .await;

    // The agent sees only their own calls and tasks, and acknowledges the task.
    log_out(&browser).await;
    log_in(&browser, &server, "mike", "mike-password").await;
    assert!(browser.find_all("[data-testid=nav-packs]").await.is_empty());
    let rows = browser.find_all("[data-testid=call-row]").await;
    assert_eq!(rows.len(), 2, "the agent's two calls");
    browser.click_on("[data-testid=nav-tasks]").await;
    browser.click_on("[data-testid=task-ack]").await;
    browser
        .wait_for_text("[data-testid=task-status]", "acknowledged")
        .await;

    // The trainer closes it and compares the agent's scores before and after.
    log_out(&browser).await;
    log_in(&browser, &server, "wang.fang", "wang.fang-password").await;
    browser
        .goto(&format!("{}/#/tasks/{task_id}", server.http()))
        .await;
    browser
        .wait_for_text("[data-testid=task-status]", "acknowledged")
        .await;
    browser.click_on("[data-testid=task-done]").await;
    browser
        .wait_for_text("[data-testid=task-status]", "done")
        .await;
    let reached = browser
        .find_all("[data-testid=task-steps] li.reached")
        .await;
    assert_eq!(reached.len(), 3, "open, acknowledged, done");
    browser
        .wait_for_text("[data-testid=avg-before]", "55.0")
        .await;
    let progress = api
        .get(&format!("/api/v1/tasks/{task_id}/progress"), &admin)
        .await
        .expect(200);
    let after = progress["after"]["avg_score"]
        .as_f64()
        .expect("a score after");
    browser
        .wait_for_text("[data-testid=avg-after]", &format!("{after:.1}"))
        .await;
    browser.wait_for("svg[data-testid=task-avg-chart]").await;

    browser.quit().await;
}

#[tokio::test]
async fn an_admin_runs_batch_qc_from_the_console_in_chinese_and_a_rerun_skips_it_all() {
    if !browser_available(
        "an_admin_runs_batch_qc_from_the_console_in_chinese_and_a_rerun_skips_it_all",
    ) {
        return;
    }
    let batch = tempfile::tempdir().expect("temp dir");
    let day = batch.path().join("day1");
    std::fs::create_dir_all(&day).expect("mkdir");
    for entry in std::fs::read_dir(repo_root().join("samples/chats")).expect("sample chats") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, day.join(path.file_name().expect("name"))).expect("copy");
    }
    let server = Server::start(&["--batch-dir", batch.path().to_str().expect("utf-8")]);
    let api = Api::new(&server.http());
    let admin = api.admin().await;

    let browser = Browser::start("zh-CN").await;
    log_in(&browser, &server, "admin", ADMIN_PASSWORD).await;
    browser.click_on("[data-testid=nav-qc]").await;
    browser.wait_for("[data-testid=view-qc]").await;
    assert!(browser.page_text().await.contains("批量质检"));
    browser
        .wait_for_text("[data-testid=qc-jobs]", "还没有质检任务")
        .await;

    // A path outside the batch folder is refused, named, and nothing starts.
    browser.fill("[data-testid=qc-paths]", "day1\n../etc").await;
    browser.click_on("[data-testid=qc-start]").await;
    browser.wait_for_text("[data-testid=error]", "../etc").await;
    let jobs = api.get("/api/v1/qc/jobs", &admin).await.expect(200);
    assert_eq!(jobs["jobs"].as_array().map(Vec::len), Some(0));

    // The sample chats: the table follows the job to its end.
    browser.fill("[data-testid=qc-paths]", "day1").await;
    browser.click_on("[data-testid=qc-start]").await;
    browser
        .wait_for("[data-testid=qc-job][data-state=done]")
        .await;
    let jobs = api.get("/api/v1/qc/jobs", &admin).await.expect(200);
    let inspected = jobs["jobs"][0]["summary"]["inspected"]
        .as_u64()
        .expect("inspected");
    assert!(inspected > 0, "{jobs:#}");
    let cells = browser.find_all("[data-testid=qc-inspected]").await;
    assert_eq!(browser.text(&cells[0]).await, inspected.to_string());
    let calls = api.get("/api/v1/calls?limit=500", &admin).await.expect(200);
    assert_eq!(calls["total"].as_u64(), Some(inspected), "{calls:#}");

    // Again (the form keeps the last job's paths): nothing new is inspected; the newer job is
    // listed first.
    let paths = browser.wait_for("[data-testid=qc-paths]").await;
    assert_eq!(
        browser
            .script("return arguments[0].value", vec![element_arg(&paths)])
            .await,
        "day1"
    );
    browser.click_on("[data-testid=qc-start]").await;
    wait_until("the table shows both jobs done", || async {
        browser
            .find_all("[data-testid=qc-job][data-state=done]")
            .await
            .len()
            == 2
    })
    .await;
    let rerun = browser.find_all("[data-testid=qc-inspected]").await;
    assert_eq!(browser.text(&rerun[0]).await, "0");
    let jobs = api.get("/api/v1/qc/jobs", &admin).await.expect(200);
    assert_eq!(
        jobs["jobs"][0]["summary"]["skipped"].as_u64(),
        Some(inspected)
    );
    assert_eq!(jobs["jobs"][0]["paths"], serde_json::json!(["day1"]));

    // A slow redo (one conversation a second) is stopped from its row.
    browser.fill("[data-testid=qc-rate]", "1").await;
    browser.click_on("[data-testid=qc-force]").await;
    browser.click_on("[data-testid=qc-start]").await;
    browser.click_on("[data-testid=qc-stop]").await;
    wait_until("the redo is stopped", || async {
        let jobs = api.get("/api/v1/qc/jobs", &admin).await.body;
        jobs["jobs"][0]["state"] == "stopped"
    })
    .await;
    browser
        .wait_for_text("[data-testid=qc-jobs]", "已停止")
        .await;
    let jobs = api.get("/api/v1/qc/jobs", &admin).await.expect(200);
    assert_eq!(jobs["jobs"][0]["force"], true);
    assert!(jobs["jobs"][0]["summary"]["inspected"].as_u64() < Some(inspected));
    browser.quit().await;
}
