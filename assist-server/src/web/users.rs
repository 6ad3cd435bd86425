//! Users and teams (admin), and the user lists trainers and leads pick agents from.

use super::auth::Caller;
use super::error::{ApiError, Body, PathParam};
use super::{audit, blocking, mutate};
use crate::state::{now_ms, AppState};
use assist_store::{audit_action, NewUser, Role, StoreError, Team, User, UserUpdate};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Serialize)]
pub struct UserList {
    users: Vec<User>,
}

/// `GET /api/v1/users`: a lead sees their team, trainers and admins everyone.
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<UserList>, ApiError> {
    caller.require(&[Role::Lead, Role::Trainer, Role::Admin])?;
    let users = blocking(&state, |store| store.list_users()).await?;
    let users = users.into_iter().filter(|u| caller.sees_user(u)).collect();
    Ok(Json(UserList { users }))
}

/// `GET /api/v1/users/{username}`: yourself, your team (lead), anyone (trainer, admin).
pub async fn get_one(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathParam(username): PathParam<String>,
) -> Result<Json<User>, ApiError> {
    let user = blocking(&state, move |store| store.user(&username)).await?;
    match user {
        Some(user) if caller.sees_user(&user) => Ok(Json(user)),
        _ => Err(ApiError::not_found("user")),
    }
}

pub const MIN_PASSWORD: usize = 8;

fn check_password(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < MIN_PASSWORD || password.len() > 1024 {
        return Err(ApiError::invalid(format!(
            "a password is at least {MIN_PASSWORD} characters"
        )));
    }
    Ok(())
}

/// `POST /api/v1/users`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(new): Body<NewUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    caller.require(&[Role::Admin])?;
    check_password(&new.password)?;
    let admin = caller.name().to_string();
    let user = mutate(&state, move |store| {
        let user = store.create_user(&new, now_ms())?;
        let detail = format!(
            "role {}, team {}",
            user.role.as_str(),
            user.team.as_deref().unwrap_or("-")
        );
        audit(
            store,
            &admin,
            audit_action::USER_CREATED,
            &user.username,
            &detail,
        )?;
        Ok(user)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    display_name: Option<String>,
    role: Option<Role>,
    /// `null` removes the user from their team; absent leaves it.
    #[serde(default, with = "double_option")]
    team: Option<Option<String>>,
    disabled: Option<bool>,
    password: Option<String>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Ok(Some(Option::deserialize(d)?))
    }
}

/// `PATCH /api/v1/users/{username}`. A new password or disabling revokes the user's tokens.
pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathParam(username): PathParam<String>,
    Body(patch): Body<UserPatch>,
) -> Result<Json<User>, ApiError> {
    caller.require(&[Role::Admin])?;
    if let Some(password) = &patch.password {
        check_password(password)?;
    }
    let admin = caller.name().to_string();
    let user = mutate(&state, move |store| {
        if store.user(&username)?.is_none() {
            return Err(StoreError::NotFound {
                what: "user",
                id: username,
            });
        }
        let mut changed = Vec::new();
        if let Some(password) = &patch.password {
            store.set_password(&username, password)?;
            store.revoke_user_tokens(&username)?;
            changed.push("password".to_string());
        }
        let update = UserUpdate {
            display_name: patch.display_name,
            role: patch.role,
            team: patch.team,
            disabled: patch.disabled,
        };
        if let Some(role) = update.role {
            changed.push(format!("role {}", role.as_str()));
        }
        if let Some(team) = &update.team {
            changed.push(format!("team {}", team.as_deref().unwrap_or("-")));
        }
        if let Some(disabled) = update.disabled {
            changed.push(format!("disabled {disabled}"));
            if disabled {
                store.revoke_user_tokens(&username)?;
            }
        }
        let user = store.update_user(&username, &update)?;
        audit(
            store,
            &admin,
            audit_action::USER_UPDATED,
            &username,
            &changed.join(", "),
        )?;
        Ok(user)
    })
    .await?;
    Ok(Json(user))
}

/// `DELETE /api/v1/users/{username}`.
pub async fn remove(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathParam(username): PathParam<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(&[Role::Admin])?;
    if username == caller.name() {
        return Err(ApiError::invalid("you cannot delete yourself"));
    }
    let admin = caller.name().to_string();
    let deleted = mutate(&state, move |store| {
        let deleted = store.delete_user(&username)?;
        if deleted {
            audit(store, &admin, audit_action::USER_DELETED, &username, "")?;
        }
        Ok(deleted)
    })
    .await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("user"))
    }
}

#[derive(Serialize)]
pub struct TeamList {
    teams: Vec<Team>,
}

/// `GET /api/v1/teams`.
pub async fn teams(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
) -> Result<Json<TeamList>, ApiError> {
    let teams = blocking(&state, |store| store.teams()).await?;
    Ok(Json(TeamList { teams }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTeam {
    id: String,
    name: String,
}

/// `POST /api/v1/teams`.
pub async fn create_team(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(team): Body<NewTeam>,
) -> Result<(StatusCode, Json<Team>), ApiError> {
    caller.require(&[Role::Admin])?;
    let team = mutate(&state, move |store| {
        store.create_team(&team.id, &team.name, now_ms())
    })
    .await?;
    Ok((StatusCode::CREATED, Json(team)))
}

/// `DELETE /api/v1/teams/{id}`.
pub async fn delete_team(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathParam(id): PathParam<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(&[Role::Admin])?;
    let deleted = mutate(&state, move |store| store.delete_team(&id)).await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("team"))
    }
}
