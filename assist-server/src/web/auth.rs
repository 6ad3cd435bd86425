//! Who is calling: bearer tokens from `POST /api/v1/login`, roles and scope.

use super::error::{ApiError, Body};
use super::{audit, blocking, mutate};
use crate::state::{now_ms, AppState};
use assist_store::{audit_action, CallMeta, Role, User};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The authenticated user of a request.
pub struct Caller {
    pub user: User,
    pub token: String,
}

impl Caller {
    pub fn name(&self) -> &str {
        &self.user.username
    }

    pub fn role(&self) -> Role {
        self.user.role
    }

    pub fn team(&self) -> Option<&str> {
        self.user.team.as_deref()
    }

    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.user.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "a {} may not do this",
                self.user.role.as_str()
            )))
        }
    }

    /// Whether the caller may see a call: agents their own, leads their team's, trainers and
    /// admins all.
    pub fn sees_call(&self, meta: &CallMeta) -> bool {
        match self.user.role {
            Role::Agent => meta.agent_id == self.user.username,
            Role::Lead => self.team().is_some() && meta.team.as_deref() == self.team(),
            Role::Trainer | Role::Admin => true,
        }
    }

    /// Whether the caller may see things about `user` (their tasks, their user record).
    pub fn sees_user(&self, user: &User) -> bool {
        match self.user.role {
            Role::Agent => user.username == self.user.username,
            Role::Lead => self.team().is_some() && user.team.as_deref() == self.team(),
            Role::Trainer | Role::Admin => true,
        }
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthorized("log in first: send `Authorization: Bearer <token>`")
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
            })?
            .to_string();
        let lookup = token.clone();
        let user = blocking(state, move |store| store.user_for_token(&lookup, now_ms())).await?;
        match user {
            Some(user) => Ok(Caller { user, token }),
            None => Err(ApiError::unauthorized(
                "the token is unknown or has expired: log in again",
            )),
        }
    }
}

#[derive(Deserialize)]
pub struct Login {
    username: String,
    password: String,
}

#[derive(Serialize)]
pub struct LoggedIn {
    token: String,
    /// Unix milliseconds.
    expires_at: i64,
    user: User,
}

/// `POST /api/v1/login`. A wrong username and a wrong password get the same answer.
pub async fn login(
    State(state): State<Arc<AppState>>,
    Body(login): Body<Login>,
) -> Result<Json<LoggedIn>, ApiError> {
    if login.username.is_empty() || login.username.len() > 200 || login.password.len() > 1024 {
        return Err(bad_credentials());
    }
    let username = login.username.clone();
    if let Some(wait) = state.login_throttle.wait(&username, Instant::now()) {
        return Err(too_many_attempts(wait));
    }
    let ttl_ms = state.settings.token_ttl.as_millis() as i64;
    let result = mutate(&state, move |store| {
        match store.verify_password(&login.username, &login.password)? {
            Some(user) => {
                // The token's life starts after the (deliberately slow) password check.
                let now = now_ms();
                let token = store.issue_token(&user.username, now, ttl_ms)?;
                audit(
                    store,
                    &user.username,
                    audit_action::LOGIN,
                    &user.username,
                    "",
                )?;
                Ok(Some(LoggedIn {
                    token,
                    expires_at: now + ttl_ms,
                    user,
                }))
            }
            None => {
                let name: String = login.username.chars().take(64).collect();
                audit(store, &name, audit_action::LOGIN_FAILED, &name, "")?;
                Ok(None)
            }
        }
    })
    .await?;
    match result {
        Some(logged_in) => {
            state.login_throttle.succeeded(&username);
            Ok(Json(logged_in))
        }
        None => {
            state.login_throttle.failed(&username, Instant::now());
            Err(bad_credentials())
        }
    }
}

fn too_many_attempts(wait: Duration) -> ApiError {
    let seconds = wait.as_secs().max(1);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
        format!("too many failed sign-ins for this user: try again in {seconds} s"),
    )
    .with_details(serde_json::json!({ "retry_after_seconds": seconds }))
    .with_retry_after(seconds)
}

fn bad_credentials() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "bad_credentials",
        "wrong username or password",
    )
}

/// `POST /api/v1/logout`: revokes the caller's token.
pub async fn logout(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    let token = caller.token.clone();
    let name = caller.name().to_string();
    mutate(&state, move |store| {
        store.revoke_token(&token)?;
        audit(store, &name, audit_action::LOGOUT, &name, "")
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/me`.
pub async fn me(caller: Caller) -> Json<User> {
    Json(caller.user)
}
