//! The audit log and retention (admin only), and the hourly purge task.

use super::auth::Caller;
use super::error::{ApiError, OptionalBody, Query};
use super::time::{parse_opt, Bound};
use super::{audit, blocking, mutate};
use crate::state::{now_ms, AppState};
use assist_store::{audit_action, AuditEntry, AuditQuery, CallStore, Role, StoreError};
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditParams {
    actor: Option<String>,
    action: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
}

#[derive(Serialize)]
pub struct AuditList {
    entries: Vec<AuditEntry>,
}

/// `GET /api/v1/audit`.
pub async fn audit_log(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(params): Query<AuditParams>,
) -> Result<Json<AuditList>, ApiError> {
    caller.require(&[Role::Admin])?;
    let query = AuditQuery {
        from: parse_opt("from", params.from.as_deref(), Bound::Start, 0)?,
        to: parse_opt("to", params.to.as_deref(), Bound::End, 0)?,
        actor: params.actor.filter(|a| !a.is_empty()),
        action: params.action.filter(|a| !a.is_empty()),
        limit: params.limit.unwrap_or(100).clamp(1, 1000),
    };
    let entries = blocking(&state, move |store| store.audit_log(&query)).await?;
    Ok(Json(AuditList { entries }))
}

#[derive(Serialize)]
pub struct Retention {
    retention_days: u32,
    last_purge: Option<i64>,
}

/// `GET /api/v1/admin/retention`.
pub async fn retention(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Retention>, ApiError> {
    caller.require(&[Role::Admin])?;
    let last_purge = *state
        .last_purge
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    Ok(Json(Retention {
        retention_days: state.settings.retention_days,
        last_purge,
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PurgeBody {
    /// Purge calls ended more than this many days ago, instead of the configured period.
    older_than_days: Option<u32>,
}

#[derive(Serialize)]
pub struct Purged {
    purged: usize,
    cutoff: i64,
}

/// `POST /api/v1/admin/purge`.
pub async fn purge(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    OptionalBody(body): OptionalBody<PurgeBody>,
) -> Result<Json<Purged>, ApiError> {
    caller.require(&[Role::Admin])?;
    let days = body
        .older_than_days
        .unwrap_or(state.settings.retention_days);
    if days == 0 && state.settings.retention_days == 0 {
        return Err(ApiError::invalid(
            "retention is off (keep forever): give older_than_days",
        ));
    }
    let name = caller.name().to_string();
    let cutoff = cutoff(days);
    let purged = mutate(&state, move |store| run_purge(store, &name, cutoff)).await?;
    *state
        .last_purge
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(now_ms());
    Ok(Json(Purged { purged, cutoff }))
}

fn cutoff(days: u32) -> i64 {
    now_ms() - i64::from(days) * 86_400_000
}

/// Purges calls ended before `cutoff` and expired tokens. An admin's purge is always audited;
/// the hourly one only when it deleted something.
fn run_purge(store: &dyn CallStore, actor: &str, cutoff: i64) -> Result<usize, StoreError> {
    let purged = store.purge_ended_before(cutoff)?;
    store.purge_expired_tokens(now_ms())?;
    if purged > 0 || actor != "system" {
        audit(
            store,
            actor,
            audit_action::PURGE,
            "calls",
            &format!("{purged} call(s) ended before {cutoff}"),
        )?;
    }
    Ok(purged)
}

/// Runs the retention purge every hour (first run a minute after start) until the process
/// ends. With retention 0 only expired tokens are cleared.
pub fn spawn_purge(state: Arc<AppState>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval_at(
            tokio::time::Instant::now() + Duration::from_secs(60),
            Duration::from_secs(3600),
        );
        loop {
            every.tick().await;
            let days = state.settings.retention_days;
            let result = blocking(&state, move |store| {
                if days == 0 {
                    store.purge_expired_tokens(now_ms())?;
                    return Ok(0);
                }
                let purged = run_purge(store, "system", cutoff(days))?;
                store.flush()?;
                Ok(purged)
            })
            .await;
            // An error was logged where it happened.
            if let Ok(purged) = result {
                *state
                    .last_purge
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(now_ms());
                if purged > 0 {
                    tracing::info!(purged, days, "retention purge");
                }
            }
        }
    });
}
