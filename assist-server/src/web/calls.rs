//! Calls: list and filter, the call page, export, delete; trainers' comments, verdicts and
//! manual scores.

use super::auth::Caller;
use super::error::{ApiError, Body, PathParam, Query};
use super::time::{parse_opt, Bound};
use super::{audit, blocking, mutate};
use crate::state::{now_ms, AppState};
use assist_protocol::{Channel, EmotionLabel};
use assist_store::{
    audit_action, CallFilter, CallRecord, CallRow, CallStatus, CallStore, Comment, ManualScore,
    Page, Role, StoreError, StoredAlert, Verdict, VerdictKind,
};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The list's query parameters (docs/api.md).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListQuery {
    pub agent: Option<String>,
    pub team: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub min_score: Option<u32>,
    pub max_score: Option<u32>,
    pub category: Option<String>,
    pub rule: Option<String>,
    pub channel: Option<Channel>,
    pub language: Option<String>,
    pub emotion: Option<EmotionLabel>,
    pub escalated: Option<bool>,
    pub status: Option<CallStatus>,
    pub utc_offset_minutes: Option<i32>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

impl ListQuery {
    /// The store filter, with the caller's scope applied on top (`None`: nothing in scope).
    pub fn filter(&self, caller: &Caller) -> Result<Option<CallFilter>, ApiError> {
        let offset = self.utc_offset_minutes.unwrap_or(0);
        let mut filter = CallFilter {
            agent: self.agent.clone().filter(|a| !a.is_empty()),
            team: self.team.clone().filter(|t| !t.is_empty()),
            from: parse_opt("from", self.from.as_deref(), Bound::Start, offset)?,
            to: parse_opt("to", self.to.as_deref(), Bound::End, offset)?,
            min_score: self.min_score,
            max_score: self.max_score,
            category: self.category.clone().filter(|c| !c.is_empty()),
            rule: self.rule.clone().filter(|r| !r.is_empty()),
            channel: self.channel,
            emotion: self.emotion,
            escalated: self.escalated,
            language: self.language.clone().filter(|l| !l.is_empty()),
            status: self.status,
            ..CallFilter::default()
        };
        Ok(scope_filter(caller, &mut filter).then_some(filter))
    }
}

/// Narrows a filter to what the caller may see; `false` when that is nothing.
pub fn scope_filter(caller: &Caller, filter: &mut CallFilter) -> bool {
    match caller.role() {
        Role::Agent => {
            if filter.agent.as_deref().is_some_and(|a| a != caller.name()) {
                return false;
            }
            filter.agent = Some(caller.name().to_string());
        }
        Role::Lead => {
            let Some(team) = caller.team() else {
                return false;
            };
            if filter.team.as_deref().is_some_and(|t| t != team) {
                return false;
            }
            filter.team = Some(team.to_string());
        }
        Role::Trainer | Role::Admin => {}
    }
    true
}

#[derive(Serialize)]
pub struct CallList {
    pub total: usize,
    pub calls: Vec<CallRowView>,
}

/// A list row with the score that counts.
#[derive(Serialize)]
pub struct CallRowView {
    #[serde(flatten)]
    pub row: CallRow,
    pub score: Option<u32>,
}

/// `GET /api/v1/calls`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<CallList>, ApiError> {
    let page = Page {
        offset: query.offset.unwrap_or(0),
        limit: query.limit.unwrap_or(50).min(500),
    };
    let Some(filter) = query.filter(&caller)? else {
        return Ok(Json(CallList {
            total: 0,
            calls: Vec::new(),
        }));
    };
    let page = blocking(&state, move |store| store.list_calls(&filter, page)).await?;
    Ok(Json(CallList {
        total: page.total,
        calls: page
            .rows
            .into_iter()
            .map(|row| CallRowView {
                score: row.score(),
                row,
            })
            .collect(),
    }))
}

/// The call page: the stored record and the score that counts.
#[derive(Serialize)]
pub struct CallView {
    #[serde(flatten)]
    pub record: CallRecord,
    pub score: Option<u32>,
}

/// The call if the caller may see it; `NotFound` otherwise (no hint it exists).
pub fn visible_call(
    store: &dyn CallStore,
    caller_sees: impl Fn(&assist_store::CallMeta) -> bool,
    call_id: &str,
) -> Result<CallRecord, StoreError> {
    match store.get_call(call_id)? {
        Some(record) if caller_sees(&record.meta) => Ok(record),
        _ => Err(StoreError::NotFound {
            what: "call",
            id: call_id.to_string(),
        }),
    }
}

/// Checks the caller may see the call, without reading all of it.
async fn check_visible(
    state: &Arc<AppState>,
    caller: &Caller,
    call_id: &str,
) -> Result<(), ApiError> {
    let id = call_id.to_string();
    let meta = blocking(state, move |store| store.call_meta(&id)).await?;
    match meta {
        Some(meta) if caller.sees_call(&meta) => Ok(()),
        _ => Err(ApiError::not_found("call")),
    }
}

/// `GET /api/v1/calls/{id}`.
pub async fn get_one(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathParam(id): PathParam<String>,
) -> Result<Json<CallView>, ApiError> {
    let record = blocking(&state, move |store| store.get_call(&id)).await?;
    match record {
        Some(record) if caller.sees_call(&record.meta) => Ok(Json(CallView {
            score: record.score(),
            record,
        })),
        _ => Err(ApiError::not_found("call")),
    }
}

/// `GET /api/v1/calls/{id}/export`: a download.
pub async fn export(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathParam(id): PathParam<String>,
) -> Result<Response, ApiError> {
    check_visible(&state, &caller, &id).await?;
    let name = caller.name().to_string();
    let call_id = id.clone();
    let document = mutate(&state, move |store| {
        let document = store.export_call(&call_id)?;
        audit(store, &name, audit_action::EXPORT_CALL, &call_id, "")?;
        Ok(document)
    })
    .await?;
    let file: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok((
        [(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"call-{file}.json\""),
        )],
        Json(document),
    )
        .into_response())
}

/// `DELETE /api/v1/calls/{id}`.
pub async fn remove(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathParam(id): PathParam<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(&[Role::Admin])?;
    let name = caller.name().to_string();
    let deleted = mutate(&state, move |store| {
        let deleted = store.delete_call(&id)?;
        if deleted {
            audit(store, &name, audit_action::DELETE_CALL, &id, "")?;
        }
        Ok(deleted)
    })
    .await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("call"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    /// The transcript line (its seq).
    seq: u64,
    text: String,
}

/// `POST /api/v1/calls/{id}/comments`.
pub async fn comment(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathParam(id): PathParam<String>,
    Body(body): Body<NewComment>,
) -> Result<(StatusCode, Json<Comment>), ApiError> {
    caller.require(&[Role::Lead, Role::Trainer, Role::Admin])?;
    let text = body.text.trim().to_string();
    if text.is_empty() || text.chars().count() > 4000 {
        return Err(ApiError::invalid("a comment is 1 to 4000 characters"));
    }
    check_visible(&state, &caller, &id).await?;
    let name = caller.name().to_string();
    let comment = mutate(&state, move |store| {
        store.add_comment(&id, body.seq, &name, &text, now_ms())
    })
    .await?;
    Ok((StatusCode::CREATED, Json(comment)))
}

/// `DELETE /api/v1/calls/{id}/comments/{comment_id}`.
pub async fn delete_comment(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathParam((id, comment_id)): PathParam<(String, u64)>,
) -> Result<StatusCode, ApiError> {
    caller.require(&[Role::Lead, Role::Trainer, Role::Admin])?;
    check_visible(&state, &caller, &id).await?;
    let deleted = mutate(&state, move |store| store.delete_comment(&id, comment_id)).await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("comment"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerdictBody {
    /// `confirmed`, `overturned`, or null to clear.
    verdict: Option<VerdictKind>,
    #[serde(default)]
    note: Option<String>,
}

/// `PUT /api/v1/calls/{id}/alerts/{alert_id}/verdict`.
pub async fn verdict(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathParam((id, alert_id)): PathParam<(String, String)>,
    Body(body): Body<VerdictBody>,
) -> Result<Json<StoredAlert>, ApiError> {
    caller.require(&[Role::Trainer, Role::Admin])?;
    let name = caller.name().to_string();
    let alert = mutate(&state, move |store| {
        let record = visible_call(store, |_| true, &id)?;
        if !record.alerts.iter().any(|a| a.id == alert_id) {
            return Err(StoreError::NotFound {
                what: "alert",
                id: alert_id,
            });
        }
        let verdict = body.verdict.map(|kind| Verdict {
            kind,
            by: name.clone(),
            at: now_ms(),
            note: body.note.clone().filter(|n| !n.trim().is_empty()),
        });
        store.set_verdict(&id, &alert_id, verdict)?;
        let detail = match body.verdict {
            Some(VerdictKind::Confirmed) => "confirmed",
            Some(VerdictKind::Overturned) => "overturned",
            None => "cleared",
        };
        audit(
            store,
            &name,
            audit_action::VERDICT,
            &format!("{id}/{alert_id}"),
            detail,
        )?;
        let record = visible_call(store, |_| true, &id)?;
        record
            .alerts
            .into_iter()
            .find(|a| a.id == alert_id)
            .ok_or(StoreError::NotFound {
                what: "alert",
                id: alert_id,
            })
    })
    .await?;
    Ok(Json(alert))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreBody {
    score: u32,
    reason: String,
}

/// `PUT /api/v1/calls/{id}/score`.
pub async fn score(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathParam(id): PathParam<String>,
    Body(body): Body<ScoreBody>,
) -> Result<Json<ManualScore>, ApiError> {
    caller.require(&[Role::Trainer, Role::Admin])?;
    let reason = body.reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > 2000 {
        return Err(ApiError::invalid("give a reason (1 to 2000 characters)"));
    }
    if body.score > 100 {
        return Err(ApiError::invalid("a score is 0 to 100"));
    }
    let name = caller.name().to_string();
    let manual = mutate(&state, move |store| {
        let record = visible_call(store, |_| true, &id)?;
        let manual = ManualScore {
            score: body.score,
            reason,
            by: name.clone(),
            at: now_ms(),
        };
        store.set_manual_score(&id, Some(manual.clone()))?;
        let before = record
            .score()
            .map_or_else(|| "none".to_string(), |s| s.to_string());
        let detail = format!("{} -> {}: {}", before, manual.score, manual.reason);
        audit(store, &name, audit_action::MANUAL_SCORE, &id, &detail)?;
        Ok(manual)
    })
    .await?;
    Ok(Json(manual))
}

/// `DELETE /api/v1/calls/{id}/score`: back to the engine's score.
pub async fn clear_score(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathParam(id): PathParam<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(&[Role::Trainer, Role::Admin])?;
    let name = caller.name().to_string();
    mutate(&state, move |store| {
        visible_call(store, |_| true, &id)?;
        store.set_manual_score(&id, None)?;
        audit(store, &name, audit_action::MANUAL_SCORE, &id, "cleared")
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
