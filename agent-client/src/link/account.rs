//! Signing in over the server's REST API: the agent's username and password buy a token (for
//! the WebSocket hello) and the agent's profile (display name, team) shown in the overlay.
//!
//! The link signs in before connecting when it has credentials and no token, and again when the
//! server refuses the token (it expired mid-shift): the agent never has to restart the client.

use serde::Deserialize;
use std::time::Duration;

/// A username and password (the password from `ASSIST_PASSWORD` or a file, never a flag).
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// Who signed in.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub token: String,
    pub username: String,
    pub display_name: String,
    pub team: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Wrong username or password, or the user is disabled: retrying will not help.
    #[error("sign-in refused for {username}: {message}")]
    Refused { username: String, message: String },
    /// The server is not reachable or answered oddly: retry later.
    #[error("cannot sign in at {url}: {reason}")]
    Unreachable { url: String, reason: String },
}

impl AccountError {
    pub fn is_final(&self) -> bool {
        matches!(self, AccountError::Refused { .. })
    }
}

/// `ws://host:port/ws` -> `http://host:port` (`wss` -> `https`).
pub fn http_base(ws_url: &str) -> String {
    let (scheme, rest) = match ws_url.split_once("://") {
        Some(("wss", rest)) => ("https", rest),
        Some((_, rest)) => ("http", rest),
        None => ("http", ws_url),
    };
    let host = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{host}")
}

/// An error and its causes, `a: b: c`: reqwest's own message ("error sending request for
/// url") leaves out what went wrong (refused, timed out, an untrusted certificate).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let line = e.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        cause = e.source();
    }
    text
}

#[derive(Deserialize)]
struct LoginReply {
    token: String,
    user: UserReply,
}

#[derive(Deserialize)]
struct UserReply {
    username: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    team: Option<String>,
}

#[derive(Deserialize)]
struct ErrorReply {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    message: String,
}

/// `POST /api/v1/login`, then `GET /api/v1/me` with the new token (the profile the overlay shows).
pub async fn sign_in(
    ws_url: &str,
    tls: Option<&std::sync::Arc<rustls::ClientConfig>>,
    credentials: &Credentials,
) -> Result<Account, AccountError> {
    let base = http_base(ws_url);
    let url = format!("{base}/api/v1/login");
    let unreachable = |reason: String| AccountError::Unreachable {
        url: url.clone(),
        reason,
    };
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(10));
    if let Some(tls) = tls {
        builder = builder.use_preconfigured_tls(rustls::ClientConfig::clone(tls));
    }
    let http = builder.build().map_err(|e| unreachable(with_causes(&e)))?;
    let reply = http
        .post(&url)
        .json(&serde_json::json!({
            "username": credentials.username,
            "password": credentials.password,
        }))
        .send()
        .await
        .map_err(|e| unreachable(with_causes(&e)))?;
    let status = reply.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        let message = reply
            .json::<ErrorReply>()
            .await
            .map(|e| format!("{} ({})", e.error.message, e.error.code))
            .unwrap_or_else(|_| status.to_string());
        return Err(AccountError::Refused {
            username: credentials.username.clone(),
            message,
        });
    }
    if !status.is_success() {
        return Err(unreachable(format!("the server answered {status}")));
    }
    let login: LoginReply = reply
        .json()
        .await
        .map_err(|e| unreachable(format!("unreadable answer: {e}")))?;
    // The profile: the login answer carries it; /me confirms the token works.
    let me = http
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(&login.token)
        .send()
        .await
        .map_err(|e| unreachable(with_causes(&e)))?;
    let user = if me.status().is_success() {
        me.json::<UserReply>().await.unwrap_or(login.user)
    } else {
        login.user
    };
    Ok(Account {
        token: login.token,
        display_name: user
            .display_name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| user.username.clone()),
        username: user.username,
        team: user.team,
    })
}
