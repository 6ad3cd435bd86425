//! Reports: figures per agent, team, day, week, channel or category, as JSON or CSV.

use super::auth::Caller;
use super::blocking;
use super::calls::{scope_filter, ListQuery};
use super::error::{ApiError, Query};
use assist_store::{report_csv, GroupBy, ReportQuery, Role};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use std::sync::Arc;

use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportParams {
    group_by: Option<GroupBy>,
    /// `json` (default) or `csv`.
    format: Option<String>,
    /// Intents / complaint reasons listed per group (default 5).
    top: Option<usize>,
    agent: Option<String>,
    team: Option<String>,
    from: Option<String>,
    to: Option<String>,
    min_score: Option<u32>,
    max_score: Option<u32>,
    category: Option<String>,
    rule: Option<String>,
    channel: Option<assist_protocol::Channel>,
    language: Option<String>,
    emotion: Option<assist_protocol::EmotionLabel>,
    utc_offset_minutes: Option<i32>,
}

/// `GET /api/v1/reports`.
pub async fn report(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    Query(params): Query<ReportParams>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Lead, Role::Trainer, Role::Admin])?;
    let csv = match params.format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`format` is `json` or `csv`, not `{other}`"
            )))
        }
        None => headers
            .get(header::ACCEPT)
            .and_then(|a| a.to_str().ok())
            .is_some_and(|a| a.contains("text/csv")),
    };
    let list = ListQuery {
        agent: params.agent,
        team: params.team,
        from: params.from,
        to: params.to,
        min_score: params.min_score,
        max_score: params.max_score,
        category: params.category,
        rule: params.rule,
        channel: params.channel,
        language: params.language,
        emotion: params.emotion,
        utc_offset_minutes: params.utc_offset_minutes,
        ..ListQuery::default()
    };
    let mut query = ReportQuery::new(params.group_by.unwrap_or(GroupBy::Day));
    query.utc_offset_minutes = params.utc_offset_minutes.unwrap_or(0);
    query.top = params.top.unwrap_or(5).min(100);
    match list.filter(&caller)? {
        Some(filter) => query.filter = filter,
        None => {
            // Nothing in scope (a lead without a team): an empty selection.
            query.filter.agent = Some(String::new());
            scope_filter(&caller, &mut query.filter);
        }
    }
    let report = blocking(&state, move |store| store.report(&query)).await?;
    if csv {
        Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"report.csv\"",
                ),
            ],
            report_csv(&report),
        )
            .into_response())
    } else {
        Ok(Json(report).into_response())
    }
}
