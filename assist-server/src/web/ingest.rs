//! `POST /api/v1/conversations`: a chat platform posts a finished conversation; it goes through
//! the same session engine as a live call (batch QC's [`crate::qc::inspect`]) and into the
//! call store with source `chat_api`, so it shows in the console and reports. Idempotent per
//! conversation id: posting the same conversation again returns what was stored.

use super::auth::Caller;
use super::error::{ApiError, Body};
use super::mutate;
use crate::qc::inspect::{inspect, InspectOptions};
use crate::qc::time::{from_number, parse_timestamp};
use crate::qc::{parse_role, Conversation, Turn};
use crate::state::AppState;
use assist_protocol::{Channel, Event, Summary};
use assist_store::{CallSource, FinishedCall, Role};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;

/// The most messages one posted conversation may have.
pub const MAX_MESSAGES: usize = 10_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostedMessage {
    /// ISO 8601 text or Unix seconds / milliseconds.
    pub timestamp: Value,
    /// `agent` / `customer` (and synonyms); `system` / `bot` messages are skipped.
    pub role: String,
    pub text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostedConversation {
    pub conversation_id: String,
    /// The agent; an agent posting their own conversation may leave it out.
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub channel: Option<Channel>,
    /// `zh` / `en`; guessed from the text when left out.
    #[serde(default)]
    pub language: Option<String>,
    pub messages: Vec<PostedMessage>,
}

#[derive(Debug, Serialize)]
pub struct Ingested {
    pub call_id: String,
    /// False: the conversation was posted before; this is what was stored then.
    pub created: bool,
    pub summary: Option<Summary>,
    /// The alerts raised (only when created).
    pub alerts: Vec<Value>,
}

/// The store id of a posted conversation.
pub fn call_id_for(conversation_id: &str) -> String {
    crate::qc::ids::text_call_id("chat", conversation_id)
}

fn timestamp(value: &Value) -> Result<i64, String> {
    match value {
        Value::String(s) => parse_timestamp(s),
        Value::Number(n) => n
            .as_f64()
            .and_then(from_number)
            .ok_or_else(|| format!("`{n}` is not a usable Unix time")),
        _ => Err("the timestamp must be ISO 8601 text or Unix seconds".into()),
    }
}

/// `POST /api/v1/conversations`.
pub async fn post_conversation(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<PostedConversation>,
) -> Result<(StatusCode, Json<Ingested>), ApiError> {
    caller.require(&[Role::Admin, Role::Agent])?;
    let agent_id = match (caller.role(), body.agent_id.clone()) {
        (Role::Agent, Some(a)) if a != caller.name() => {
            return Err(ApiError::forbidden(
                "an agent may post only their own conversations",
            ))
        }
        (_, Some(a)) if !a.trim().is_empty() => a.trim().to_string(),
        (Role::Agent, _) => caller.name().to_string(),
        _ => return Err(ApiError::invalid("agent_id is required")),
    };
    let external = body.conversation_id.trim().to_string();
    if external.is_empty() || external.len() > 150 {
        return Err(ApiError::invalid("conversation_id must be 1 to 150 bytes"));
    }
    if body.messages.len() > MAX_MESSAGES {
        return Err(ApiError::invalid(format!(
            "at most {MAX_MESSAGES} messages per conversation"
        )));
    }
    let language = match body.language.as_deref().map(str::to_ascii_lowercase) {
        None => None,
        Some(l) if l == "zh" || l == "en" => Some(l),
        Some(l) => {
            return Err(ApiError::invalid(format!(
                "language `{l}` is not supported: use zh or en"
            )))
        }
    };
    let mut problems = Vec::new();
    let mut timed = Vec::new();
    for (index, m) in body.messages.into_iter().enumerate() {
        let speaker = match parse_role(&m.role) {
            None => continue,
            Some(Ok(s)) => s,
            Some(Err(())) => {
                problems.push(json!({"index": index, "message": format!("role `{}` is neither agent nor customer", m.role)}));
                continue;
            }
        };
        let at = match timestamp(&m.timestamp) {
            Ok(at) => at,
            Err(message) => {
                problems.push(json!({"index": index, "message": message}));
                continue;
            }
        };
        if m.text.trim().is_empty() {
            continue;
        }
        timed.push((at, speaker, m.text, index as u64 + 1));
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid(format!(
            "{} message(s) cannot be used: see details",
            problems.len()
        ))
        .with_details(Value::Array(problems)));
    }
    if timed.is_empty() {
        return Err(ApiError::invalid(
            "the conversation has no agent or customer message with text",
        ));
    }
    timed.sort_by_key(|(at, ..)| *at);
    let started_at = timed[0].0;
    let turns = timed
        .into_iter()
        .map(|(at, speaker, text, line)| Turn {
            speaker,
            text,
            start: (at - started_at) as f64 / 1000.0,
            end: None,
            prosody: None,
            line,
        })
        .collect();
    let call_id = call_id_for(&external);
    let conversation = Conversation {
        call_id: call_id.clone(),
        path: format!("POST /api/v1/conversations {external}"),
        external_id: external,
        agent_id: agent_id.clone(),
        channel: body.channel.unwrap_or(Channel::Chat),
        language,
        started_at,
        turns,
    };
    let state2 = Arc::clone(&state);
    let result = mutate(&state, move |store| {
        if let Some(existing) = store.get_call(&call_id)? {
            return Ok(Ingested {
                call_id,
                created: false,
                summary: existing.summary,
                alerts: Vec::new(),
            });
        }
        let team = store.user(&agent_id)?.and_then(|u| u.team);
        let packs = state2.packs.load();
        let pack = Arc::clone(packs.for_team(team.as_deref()));
        let mut inspected = inspect(
            &pack.loaded.engine,
            pack.loaded.knowledge.as_ref(),
            conversation,
            InspectOptions {
                cards: false,
                lines: true,
            },
        );
        inspected.meta.team = team;
        inspected.meta.source = CallSource::ChatApi;
        let ended_at = inspected.meta.ended_at.unwrap_or(started_at);
        let alerts = inspected
            .events
            .iter()
            .filter(|e| matches!(e, Event::Alert(_)))
            .filter_map(|e| serde_json::to_value(e).ok())
            .collect();
        let call = FinishedCall {
            meta: inspected.meta,
            lines: inspected.lines,
            events: inspected.events,
            summary: inspected.summary,
            ended_at,
            replace: false,
        };
        // Stored whole; `mutate` flushes before the answer.
        store.store_finished_calls(std::slice::from_ref(&call))?;
        Ok(Ingested {
            call_id,
            created: true,
            summary: Some(call.summary),
            alerts,
        })
    })
    .await?;
    let status = if result.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(result)))
}
