//! Coaching tasks: a trainer creates one for an agent with a deadline; the agent acknowledges
//! it; the trainer closes it and compares the agent's scores before and after.

use super::auth::Caller;
use super::error::{ApiError, Body, PathParam, Query};
use super::time::{parse, Bound};
use super::{blocking, mutate};
use crate::state::{now_ms, AppState};
use assist_store::{
    BeforeAfter, CallStore, CoachingTask, NewTask, Role, StoreError, TaskFilter, TaskStatus,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Arc;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListQuery {
    agent: Option<String>,
    status: Option<TaskStatus>,
    created_by: Option<String>,
}

#[derive(Serialize)]
pub struct TaskList {
    tasks: Vec<CoachingTask>,
}

/// The task if the caller may see it (`NotFound` otherwise: no hint it exists).
fn visible_task(
    store: &dyn CallStore,
    caller: &CallerScope,
    id: u64,
) -> Result<CoachingTask, StoreError> {
    let not_found = || StoreError::NotFound {
        what: "coaching task",
        id: id.to_string(),
    };
    let task = store.task(id)?.ok_or_else(not_found)?;
    if caller.sees_agent(store, &task.agent)? {
        Ok(task)
    } else {
        Err(not_found())
    }
}

/// What the blocking closures need to know about the caller.
#[derive(Clone)]
struct CallerScope {
    name: String,
    role: Role,
    team: Option<String>,
}

impl CallerScope {
    fn of(caller: &Caller) -> CallerScope {
        CallerScope {
            name: caller.name().to_string(),
            role: caller.role(),
            team: caller.team().map(str::to_string),
        }
    }

    fn sees_agent(&self, store: &dyn CallStore, agent: &str) -> Result<bool, StoreError> {
        Ok(match self.role {
            Role::Agent => agent == self.name,
            Role::Lead => {
                self.team.is_some() && store.user(agent)?.is_some_and(|u| u.team == self.team)
            }
            Role::Trainer | Role::Admin => true,
        })
    }
}

/// `GET /api/v1/tasks`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<TaskList>, ApiError> {
    let scope = CallerScope::of(&caller);
    let tasks = blocking(&state, move |store| {
        let mut filter = TaskFilter {
            agent: query.agent.filter(|a| !a.is_empty()),
            created_by: query.created_by.filter(|c| !c.is_empty()),
            status: query.status,
        };
        match scope.role {
            Role::Agent => {
                if filter.agent.as_deref().is_some_and(|a| a != scope.name) {
                    return Ok(Vec::new());
                }
                filter.agent = Some(scope.name.clone());
                store.list_tasks(&filter)
            }
            Role::Lead => {
                let team: HashSet<String> = store
                    .list_users()?
                    .into_iter()
                    .filter(|u| scope.team.is_some() && u.team == scope.team)
                    .map(|u| u.username)
                    .collect();
                Ok(store
                    .list_tasks(&filter)?
                    .into_iter()
                    .filter(|t| team.contains(&t.agent))
                    .collect())
            }
            Role::Trainer | Role::Admin => store.list_tasks(&filter),
        }
    })
    .await?;
    Ok(Json(TaskList { tasks }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTaskBody {
    agent: String,
    title: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    call_ids: Vec<String>,
    /// `YYYY-MM-DD` (end of that day) or Unix milliseconds.
    due: serde_json::Value,
    #[serde(default)]
    utc_offset_minutes: i32,
}

/// `POST /api/v1/tasks`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<NewTaskBody>,
) -> Result<(StatusCode, Json<CoachingTask>), ApiError> {
    caller.require(&[Role::Trainer, Role::Admin])?;
    let title = body.title.trim().to_string();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(ApiError::invalid("a task title is 1 to 200 characters"));
    }
    let due = match &body.due {
        serde_json::Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| ApiError::invalid("`due` must be a date or Unix milliseconds"))?,
        serde_json::Value::String(s) => parse("due", s, Bound::End, body.utc_offset_minutes)
            .map_err(|e| ApiError::invalid(e.message))?,
        _ => {
            return Err(ApiError::invalid(
                "`due` must be a date or Unix milliseconds",
            ))
        }
    };
    let created_by = caller.name().to_string();
    let task = mutate(&state, move |store| {
        match store.user(&body.agent)? {
            Some(user) if user.role == Role::Agent => {}
            _ => {
                return Err(StoreError::Invalid(format!(
                    "`{}` is not an agent",
                    body.agent
                )))
            }
        }
        store.create_task(&NewTask {
            agent: body.agent,
            created_by,
            title,
            note: body.note,
            call_ids: body.call_ids,
            due,
            created_at: now_ms(),
        })
    })
    .await?;
    Ok((StatusCode::CREATED, Json(task)))
}

/// `GET /api/v1/tasks/{id}`.
pub async fn get_one(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathParam(id): PathParam<u64>,
) -> Result<Json<CoachingTask>, ApiError> {
    let scope = CallerScope::of(&caller);
    let task = blocking(&state, move |store| visible_task(store, &scope, id)).await?;
    Ok(Json(task))
}

/// `POST /api/v1/tasks/{id}/acknowledge`: the task's agent only.
pub async fn acknowledge(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathParam(id): PathParam<u64>,
) -> Result<Json<CoachingTask>, ApiError> {
    caller.require(&[Role::Agent])?;
    let scope = CallerScope::of(&caller);
    let task = mutate(&state, move |store| {
        visible_task(store, &scope, id)?;
        store.set_task_status(id, TaskStatus::Acknowledged, now_ms())
    })
    .await?;
    Ok(Json(task))
}

/// `POST /api/v1/tasks/{id}/done`.
pub async fn done(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathParam(id): PathParam<u64>,
) -> Result<Json<CoachingTask>, ApiError> {
    caller.require(&[Role::Trainer, Role::Admin])?;
    let task = mutate(&state, move |store| {
        store.set_task_status(id, TaskStatus::Done, now_ms())
    })
    .await?;
    Ok(Json(task))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProgressQuery {
    /// Days before and after the task's creation to compare (default 30).
    days: Option<u32>,
}

#[derive(Serialize)]
pub struct Progress {
    task: CoachingTask,
    window_days: u32,
    #[serde(flatten)]
    scores: BeforeAfter,
}

/// `GET /api/v1/tasks/{id}/progress`.
pub async fn progress(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathParam(id): PathParam<u64>,
    Query(query): Query<ProgressQuery>,
) -> Result<Json<Progress>, ApiError> {
    let scope = CallerScope::of(&caller);
    let days = query.days.unwrap_or(30).clamp(1, 3650);
    let progress = blocking(&state, move |store| {
        let task = visible_task(store, &scope, id)?;
        let scores = store.task_comparison(id, i64::from(days) * 86_400_000)?;
        Ok(Progress {
            task,
            window_days: days,
            scores,
        })
    })
    .await?;
    Ok(Json(progress))
}
