//! A small JSON client for the HTTP API over real loopback HTTP.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{Agent, ServerMessage, ADMIN_PASSWORD};

pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

/// A response: status, JSON body (or `Value::String` of the text for non-JSON bodies) and
/// headers.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "{:#}", self.body);
        self.body
    }
}

impl Api {
    pub fn new(base: &str) -> Api {
        Api {
            base: base.to_string(),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .expect("http client"),
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body read");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            body,
            headers,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.call(Method::PUT, path, Some(token), Some(body)).await
    }

    pub async fn login(&self, username: &str, password: &str) -> Reply {
        self.call(
            Method::POST,
            "/api/v1/login",
            None,
            Some(&json!({"username": username, "password": password})),
        )
        .await
    }

    /// Logs in and returns the token (panics on failure).
    pub async fn token(&self, username: &str, password: &str) -> String {
        let body = self.login(username, password).await.expect(200);
        body["token"].as_str().expect("a token").to_string()
    }

    pub async fn admin(&self) -> String {
        self.token("admin", ADMIN_PASSWORD).await
    }

    /// Creates a team (if new) and a user in it; returns the user's token.
    pub async fn user(
        &self,
        admin: &str,
        username: &str,
        role: &str,
        team: Option<&str>,
    ) -> String {
        if let Some(team) = team {
            let r = self
                .post("/api/v1/teams", admin, &json!({"id": team, "name": team}))
                .await;
            assert!(r.status == 201 || r.code() == "already_exists", "{:?}", r);
        }
        let password = format!("{username}-password");
        self.post(
            "/api/v1/users",
            admin,
            &json!({"username": username, "password": password, "role": role, "team": team}),
        )
        .await
        .expect(201);
        self.token(username, &password).await
    }

    /// The newest pack version number.
    pub async fn latest_pack(&self, token: &str) -> u64 {
        let body = self.get("/api/v1/packs/current", token).await.expect(200);
        body["latest"].as_u64().expect("latest")
    }

    /// The files of the pack version served to everyone.
    pub async fn pack_files(&self, token: &str) -> Value {
        let body = self.get("/api/v1/packs/current", token).await.expect(200);
        body["version"]["files"].clone()
    }
}

/// A live call over the WebSocket as a logged-in agent: hello with the login token.
pub async fn agent_call(url: &str, agent: &str, token: &str, call: &str, language: &str) -> Agent {
    let mut ws = Agent::connect(url).await;
    let welcome = ws.hello(agent, token, call, language).await;
    assert!(
        matches!(welcome, ServerMessage::Welcome { .. }),
        "{welcome:?}"
    );
    ws
}
