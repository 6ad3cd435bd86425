//! The access-control matrix: every route of the router against every role, from one table.

use crate::common::api::{agent_call, Api};
use crate::common::*;
use assist_protocol::Speaker;
use reqwest::Method;
use serde_json::{json, Value};

/// Who calls: no token, agent a1 (team t1), lead l1 (team t1), a trainer, the admin.
const ROLES: [&str; 5] = ["anonymous", "agent", "lead", "trainer", "admin"];

/// One row: the route it exercises (as in `web::table()`), the concrete path and body
/// (placeholders below), and the expected status for each of [`ROLES`].
struct Row {
    method: Method,
    route: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    expect: [u16; 5],
}

fn row(
    method: Method,
    route: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    expect: [u16; 5],
) -> Row {
    Row {
        method,
        route,
        path,
        body,
        expect,
    }
}

/// Placeholders: `{alert}` an alert of c-a1; `{task1}` a1's task, `{task2}` a2's;
/// `{comment}` a comment made on c-a1 just before the request; `{latest}` the newest pack
/// version; `{files}` the pack's files; `{role}` the calling role's name.
fn table() -> Vec<Row> {
    use Method as M;
    const PUBLIC: [u16; 5] = [200, 200, 200, 200, 200];
    const ANY: [u16; 5] = [401, 200, 200, 200, 200];
    const STAFF: [u16; 5] = [401, 403, 200, 200, 200];
    const ADMIN: [u16; 5] = [401, 403, 403, 403, 200];
    const EDITORS: [u16; 5] = [401, 403, 200, 403, 200];
    const EDITORS_201: [u16; 5] = [401, 403, 201, 403, 201];
    const REVIEWERS: [u16; 5] = [401, 403, 403, 200, 200];
    const OTHER_TEAM: [u16; 5] = [401, 404, 404, 200, 200];
    vec![
        row(M::GET, "/", "/", None, PUBLIC),
        row(
            M::GET,
            "/console/{*path}",
            "/console/index.html",
            None,
            PUBLIC,
        ),
        row(M::GET, "/healthz", "/healthz", None, PUBLIC),
        row(
            M::GET,
            "/api/v1/openapi.json",
            "/api/v1/openapi.json",
            None,
            PUBLIC,
        ),
        // Not an upgrade request: the WebSocket route refuses it the same for everyone.
        row(M::GET, "/ws", "/ws", None, [400; 5]),
        row(
            M::POST,
            "/api/v1/login",
            "/api/v1/login",
            Some(r#"{"username":"nobody","password":"wrong-password"}"#),
            [401; 5],
        ),
        row(M::GET, "/api/v1/me", "/api/v1/me", None, ANY),
        // Calls.
        row(M::GET, "/api/v1/calls", "/api/v1/calls", None, ANY),
        row(
            M::GET,
            "/api/v1/calls/{id}",
            "/api/v1/calls/c-a1",
            None,
            ANY,
        ),
        row(
            M::GET,
            "/api/v1/calls/{id}",
            "/api/v1/calls/c-a2",
            None,
            OTHER_TEAM,
        ),
        row(
            M::GET,
            "/api/v1/calls/{id}",
            "/api/v1/calls/c-none",
            None,
            [401, 404, 404, 404, 404],
        ),
        row(
            M::GET,
            "/api/v1/calls/{id}/export",
            "/api/v1/calls/c-a1/export",
            None,
            ANY,
        ),
        row(
            M::GET,
            "/api/v1/calls/{id}/export",
            "/api/v1/calls/c-a2/export",
            None,
            OTHER_TEAM,
        ),
        row(
            M::POST,
            "/api/v1/calls/{id}/comments",
            "/api/v1/calls/c-a1/comments",
            Some(r#"{"seq":1,"text":"good opening"}"#),
            [401, 403, 201, 201, 201],
        ),
        row(
            M::POST,
            "/api/v1/calls/{id}/comments",
            "/api/v1/calls/c-a2/comments",
            Some(r#"{"seq":1,"text":"x"}"#),
            [401, 403, 404, 201, 201],
        ),
        row(
            M::DELETE,
            "/api/v1/calls/{id}/comments/{comment_id}",
            "/api/v1/calls/c-a1/comments/{comment}",
            None,
            [401, 403, 204, 204, 204],
        ),
        row(
            M::PUT,
            "/api/v1/calls/{id}/alerts/{alert_id}/verdict",
            "/api/v1/calls/c-a1/alerts/{alert}/verdict",
            Some(r#"{"verdict":"confirmed"}"#),
            REVIEWERS,
        ),
        row(
            M::PUT,
            "/api/v1/calls/{id}/score",
            "/api/v1/calls/c-a1/score",
            Some(r#"{"score":70,"reason":"tone"}"#),
            REVIEWERS,
        ),
        row(
            M::DELETE,
            "/api/v1/calls/{id}/score",
            "/api/v1/calls/c-a1/score",
            None,
            [401, 403, 403, 204, 204],
        ),
        row(
            M::DELETE,
            "/api/v1/calls/{id}",
            "/api/v1/calls/c-del",
            None,
            [401, 403, 403, 403, 204],
        ),
        // Coaching tasks.
        row(
            M::POST,
            "/api/v1/conversations",
            "/api/v1/conversations",
            Some(
                r#"{"conversation_id":"ingest-{role}","agent_id":"a1","messages":[{"timestamp":0,"role":"customer","text":"hello"}]}"#,
            ),
            [401, 201, 403, 403, 201],
        ),
        row(M::GET, "/api/v1/tasks", "/api/v1/tasks", None, ANY),
        // This server has no batch folder: the admin gets 409 `batch_off`.
        row(
            M::POST,
            "/api/v1/qc/jobs",
            "/api/v1/qc/jobs",
            Some(r#"{"paths":["."]}"#),
            [401, 403, 403, 403, 409],
        ),
        row(M::GET, "/api/v1/qc/jobs", "/api/v1/qc/jobs", None, ADMIN),
        row(
            M::GET,
            "/api/v1/qc/jobs/{id}",
            "/api/v1/qc/jobs/1",
            None,
            [401, 403, 403, 403, 404],
        ),
        row(
            M::POST,
            "/api/v1/qc/jobs/{id}/stop",
            "/api/v1/qc/jobs/1/stop",
            Some("{}"),
            [401, 403, 403, 403, 404],
        ),
        row(
            M::POST,
            "/api/v1/tasks",
            "/api/v1/tasks",
            Some(r#"{"agent":"a1","title":"empathy","due":"2030-01-01"}"#),
            [401, 403, 403, 201, 201],
        ),
        row(
            M::GET,
            "/api/v1/tasks/{id}",
            "/api/v1/tasks/{task1}",
            None,
            ANY,
        ),
        row(
            M::GET,
            "/api/v1/tasks/{id}",
            "/api/v1/tasks/{task2}",
            None,
            OTHER_TEAM,
        ),
        row(
            M::GET,
            "/api/v1/tasks/{id}/progress",
            "/api/v1/tasks/{task1}/progress",
            None,
            ANY,
        ),
        row(
            M::GET,
            "/api/v1/tasks/{id}/progress",
            "/api/v1/tasks/{task2}/progress",
            None,
            OTHER_TEAM,
        ),
        row(
            M::POST,
            "/api/v1/tasks/{id}/acknowledge",
            "/api/v1/tasks/{task2}/acknowledge",
            None,
            [401, 404, 403, 403, 403],
        ),
        row(
            M::POST,
            "/api/v1/tasks/{id}/acknowledge",
            "/api/v1/tasks/{task1}/acknowledge",
            None,
            [401, 200, 403, 403, 403],
        ),
        row(
            M::POST,
            "/api/v1/tasks/{id}/done",
            "/api/v1/tasks/{task1}/done",
            None,
            REVIEWERS,
        ),
        // Packs.
        row(
            M::GET,
            "/api/v1/packs/current",
            "/api/v1/packs/current",
            None,
            STAFF,
        ),
        row(
            M::GET,
            "/api/v1/packs/versions",
            "/api/v1/packs/versions",
            None,
            STAFF,
        ),
        row(
            M::GET,
            "/api/v1/packs/versions/{number}",
            "/api/v1/packs/versions/1",
            None,
            STAFF,
        ),
        row(
            M::POST,
            "/api/v1/packs/validate",
            "/api/v1/packs/validate",
            Some(r#"{"files":{files}}"#),
            EDITORS,
        ),
        row(
            M::POST,
            "/api/v1/packs/preview",
            "/api/v1/packs/preview",
            Some(r#"{"files":{files},"call_id":"c-a1"}"#),
            EDITORS,
        ),
        row(
            M::POST,
            "/api/v1/packs/preview",
            "/api/v1/packs/preview",
            Some(r#"{"files":{files},"call_id":"c-a2"}"#),
            [401, 403, 404, 403, 200],
        ),
        row(
            M::POST,
            "/api/v1/packs/publish",
            "/api/v1/packs/publish",
            Some(r#"{"files":{files},"base_version":{latest}}"#),
            EDITORS_201,
        ),
        row(
            M::POST,
            "/api/v1/packs/publish",
            "/api/v1/packs/publish",
            Some(r#"{"files":{files},"base_version":{latest},"team":"t2"}"#),
            [401, 403, 403, 403, 201],
        ),
        row(
            M::POST,
            "/api/v1/packs/rollback",
            "/api/v1/packs/rollback",
            Some(r#"{"version":1,"base_version":{latest}}"#),
            EDITORS_201,
        ),
        // Reports.
        row(
            M::GET,
            "/api/v1/reports",
            "/api/v1/reports?group_by=team",
            None,
            STAFF,
        ),
        // Users, teams, audit, retention.
        row(M::GET, "/api/v1/users", "/api/v1/users", None, STAFF),
        row(
            M::POST,
            "/api/v1/users",
            "/api/v1/users",
            Some(r#"{"username":"new-{role}","password":"new-password","role":"agent"}"#),
            [401, 403, 403, 403, 201],
        ),
        row(
            M::GET,
            "/api/v1/users/{username}",
            "/api/v1/users/a1",
            None,
            ANY,
        ),
        row(
            M::GET,
            "/api/v1/users/{username}",
            "/api/v1/users/a2",
            None,
            OTHER_TEAM,
        ),
        row(
            M::PATCH,
            "/api/v1/users/{username}",
            "/api/v1/users/a2",
            Some(r#"{"display_name":"A Two"}"#),
            ADMIN,
        ),
        row(
            M::DELETE,
            "/api/v1/users/{username}",
            "/api/v1/users/new-admin",
            None,
            [401, 403, 403, 403, 204],
        ),
        row(M::GET, "/api/v1/teams", "/api/v1/teams", None, ANY),
        row(
            M::POST,
            "/api/v1/teams",
            "/api/v1/teams",
            Some(r#"{"id":"team-{role}","name":"x"}"#),
            [401, 403, 403, 403, 201],
        ),
        row(
            M::DELETE,
            "/api/v1/teams/{id}",
            "/api/v1/teams/team-admin",
            None,
            [401, 403, 403, 403, 204],
        ),
        row(M::GET, "/api/v1/audit", "/api/v1/audit", None, ADMIN),
        row(
            M::GET,
            "/api/v1/admin/retention",
            "/api/v1/admin/retention",
            None,
            ADMIN,
        ),
        row(
            M::POST,
            "/api/v1/admin/purge",
            "/api/v1/admin/purge",
            Some(r#"{"older_than_days":3650}"#),
            ADMIN,
        ),
        // Last: it revokes each caller's token.
        row(
            M::POST,
            "/api/v1/logout",
            "/api/v1/logout",
            None,
            [401, 204, 204, 204, 204],
        ),
    ]
}

#[tokio::test]
async fn every_route_answers_every_role_as_the_access_table_says() {
    let table = table();
    // Every route of the router is in the table.
    for route in assist_server::web::table() {
        assert!(
            table
                .iter()
                .any(|r| r.method == route.method && r.route == route.path),
            "{} {} has no row in the access table",
            route.method,
            route.path
        );
    }

    let server = Server::start(&[]);
    let api = Api::new(&server.http());
    let admin = api.admin().await;
    let a1 = api.user(&admin, "a1", "agent", Some("t1")).await;
    let a2 = api.user(&admin, "a2", "agent", Some("t2")).await;
    let lead = api.user(&admin, "l1", "lead", Some("t1")).await;
    let trainer = api.user(&admin, "tr", "trainer", None).await;

    // Calls: a1's (with a hit), a2's, and one to delete.
    for (agent, token, call) in [
        ("a1", &a1, "c-a1"),
        ("a2", &a2, "c-a2"),
        ("a1", &a1, "c-del"),
    ] {
        let mut ws = agent_call(&server.url(), agent, token, call, "zh").await;
        ws.say(utterance(1, Speaker::Agent, 0.0, "这款产品保本保收益"))
            .await;
        ws.end(3.0).await;
    }
    let call = api.get("/api/v1/calls/c-a1", &admin).await.expect(200);
    let alert = call["alerts"][0]["id"]
        .as_str()
        .expect("an alert")
        .to_string();
    let mut tasks = Vec::new();
    for agent in ["a1", "a2"] {
        let task = api
            .post(
                "/api/v1/tasks",
                &admin,
                &json!({"agent": agent, "title": "t", "due": "2030-01-01"}),
            )
            .await
            .expect(201);
        tasks.push(task["id"].as_u64().expect("id").to_string());
    }
    let files = api.pack_files(&admin).await.to_string();

    let tokens = [
        None,
        Some(a1),
        Some(lead),
        Some(trainer),
        Some(admin.clone()),
    ];
    let mut failures = Vec::new();
    for row in &table {
        for (i, token) in tokens.iter().enumerate() {
            let mut path = row.path.replace("{alert}", &alert);
            path = path
                .replace("{task1}", &tasks[0])
                .replace("{task2}", &tasks[1]);
            if path.contains("{comment}") {
                let c = api
                    .post(
                        "/api/v1/calls/c-a1/comments",
                        &admin,
                        &json!({"seq": 1, "text": "x"}),
                    )
                    .await
                    .expect(201);
                path = path.replace("{comment}", &c["id"].to_string());
            }
            let body = match row.body {
                Some(body) => {
                    let mut body = body.replace("{files}", &files).replace("{role}", ROLES[i]);
                    if body.contains("{latest}") {
                        let latest = api.latest_pack(&admin).await;
                        body = body.replace("{latest}", &latest.to_string());
                    }
                    Some(serde_json::from_str::<Value>(&body).expect("row body is JSON"))
                }
                None => None,
            };
            let reply = api
                .call(row.method.clone(), &path, token.as_deref(), body.as_ref())
                .await;
            if reply.status.as_u16() != row.expect[i] {
                failures.push(format!(
                    "{} {} as {}: expected {}, got {} {}",
                    row.method,
                    path,
                    ROLES[i],
                    row.expect[i],
                    reply.status.as_u16(),
                    reply.body.to_string().chars().take(160).collect::<String>()
                ));
            }
            if reply.status.as_u16() >= 400 && path.starts_with("/api/") {
                assert!(
                    reply.body["error"]["code"].is_string(),
                    "{} {path}: errors are JSON with a code: {:?}",
                    row.method,
                    reply.body
                );
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test]
async fn an_agent_never_sees_another_agents_calls_or_tasks() {
    let server = Server::start(&[]);
    let api = Api::new(&server.http());
    let admin = api.admin().await;
    let a1 = api.user(&admin, "a1", "agent", Some("t1")).await;
    let a2 = api.user(&admin, "a2", "agent", Some("t1")).await;
    for (agent, token, call) in [("a1", &a1, "c-1"), ("a2", &a2, "c-2")] {
        let mut ws = agent_call(&server.url(), agent, token, call, "zh").await;
        ws.say(utterance(1, Speaker::Agent, 0.0, "您好")).await;
        ws.end(2.0).await;
    }
    let task = api
        .post(
            "/api/v1/tasks",
            &admin,
            &json!({"agent": "a2", "title": "t", "due": "2030-01-01"}),
        )
        .await
        .expect(201);
    let task = task["id"].as_u64().expect("id");

    let mine = api.get("/api/v1/calls", &a1).await.expect(200);
    assert_eq!(mine["total"], 1);
    assert_eq!(mine["calls"][0]["call_id"], "c-1");
    // Asking for a2's calls by filter gives nothing; by id, a 404 exactly like a missing call.
    assert_eq!(
        api.get("/api/v1/calls?agent=a2", &a1).await.expect(200)["total"],
        0
    );
    let theirs = api.get("/api/v1/calls/c-2", &a1).await;
    let missing = api.get("/api/v1/calls/c-missing", &a1).await;
    assert_eq!(theirs.status, 404);
    assert_eq!(theirs.body["error"]["code"], missing.body["error"]["code"]);
    assert_eq!(api.get("/api/v1/calls/c-2/export", &a1).await.status, 404);
    assert_eq!(
        api.get(&format!("/api/v1/tasks/{task}"), &a1).await.status,
        404
    );
    let r = api
        .post(
            &format!("/api/v1/tasks/{task}/acknowledge"),
            &a1,
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        api.get("/api/v1/tasks", &a1).await.expect(200)["tasks"],
        json!([])
    );
    // Reports are not for agents at all.
    assert_eq!(api.get("/api/v1/reports", &a1).await.status, 403);
    // Nor may an agent join another agent's call over the WebSocket with their own token.
    let mut ws = Agent::connect(&server.url()).await;
    let reply = ws.hello("a2", &a1, "c-x", "zh").await;
    assert!(
        matches!(
            reply,
            assist_protocol::ServerMessage::Error {
                code: assist_protocol::ErrorCode::Unauthorized,
                ..
            }
        ),
        "a token of a1 does not open a call as a2: {reply:?}"
    );
    // A user of the store needs a login token even on a server without static tokens: a
    // made-up (or expired) one is refused, while an agent id that is no user still connects.
    let mut ws = Agent::connect(&server.url()).await;
    let reply = ws.hello("a2", "made-up-token", "c-y", "zh").await;
    assert!(
        matches!(
            reply,
            assist_protocol::ServerMessage::Error {
                code: assist_protocol::ErrorCode::Unauthorized,
                ..
            }
        ),
        "a made-up token does not open a call as the user a2: {reply:?}"
    );
    let mut ws = Agent::connect(&server.url()).await;
    let reply = ws.hello("walk-in", "made-up-token", "c-z", "zh").await;
    assert!(
        !matches!(reply, assist_protocol::ServerMessage::Error { .. }),
        "development mode still lets an agent id that is no user connect: {reply:?}"
    );
}

/// A refused request with a large body still gets its answer: the server reads the body before
/// it refuses (otherwise the client sees a broken pipe while still sending, as CI once did).
#[tokio::test]
async fn a_refused_request_with_a_large_body_gets_its_401_not_a_broken_connection() {
    let server = Server::start(&[]);
    let api = Api::new(&server.http());
    let admin = api.admin().await;
    let a1 = api.user(&admin, "a1", "agent", Some("t1")).await;
    let big = json!({"files": {"rules/big.toml": "#".repeat(900 * 1024)}});
    for round in 0..10 {
        let r = api
            .call(Method::POST, "/api/v1/packs/validate", None, Some(&big))
            .await;
        assert_eq!(r.status, 401, "round {round}: {:?}", r.body);
        let r = api.post("/api/v1/packs/validate", &a1, &big).await;
        assert_eq!(r.status, 403, "round {round}: {:?}", r.body);
    }
    // Over the limit: a clear 413.
    let huge = json!({"files": {"rules/big.toml": "#".repeat(1100 * 1024)}});
    let r = api.post("/api/v1/packs/validate", &admin, &huge).await;
    assert_eq!(r.status, 413, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "payload_too_large");
}
