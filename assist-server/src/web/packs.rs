//! Scripts and rules, edited in the browser: validate (exactly `check-pack`), preview on a
//! stored call, publish (version check, swap, push to connected agents), roll back.

use super::auth::Caller;
use super::calls::visible_call;
use super::error::{ApiError, Body, PathParam, Query};
use super::{audit, blocking, mutate};
use crate::packs::{compile_pack, LoadedPack, PackFiles};
use crate::state::{now_ms, AppState, ServedPack};
use assist_protocol::{Alert, Event, Summary, Utterance};
use assist_store::{
    audit_action, NewPackVersion, PackScope, PackVersion, PackVersionInfo, Role, StoreError,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// A version as the API shows it (files only where asked).
#[derive(Serialize)]
pub struct VersionView {
    pub number: u64,
    pub author: String,
    pub at: i64,
    pub scope: PackScope,
    pub message: String,
    pub rolled_back_from: Option<u64>,
    /// What agents see as `pack_version`.
    pub pack_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<PackFiles>,
}

impl VersionView {
    fn of(v: PackVersion, files: bool) -> VersionView {
        let pack_version = pack_meta_version(&v.files).map(|m| format!("{m}+v{}", v.number));
        VersionView {
            number: v.number,
            author: v.author,
            at: v.at,
            scope: v.scope,
            message: v.message,
            rolled_back_from: v.rolled_back_from,
            pack_version,
            diff: files.then_some(v.diff),
            files: files.then_some(v.files),
        }
    }
}

/// The `version` of a pack's `pack.toml`, if readable.
fn pack_meta_version(files: &PackFiles) -> Option<String> {
    let text = files.get("pack.toml")?;
    let value: toml::Value = toml::from_str(text).ok()?;
    value.get("version")?.as_str().map(str::to_string)
}

const EDITORS: &[Role] = &[Role::Lead, Role::Admin];
const READERS: &[Role] = &[Role::Lead, Role::Trainer, Role::Admin];

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CurrentQuery {
    team: Option<String>,
}

/// `GET /api/v1/packs/current?team=`: the version the team's agents get (a lead's own team by
/// default), with its files. `base_version` for an edit is the newest version overall
/// (`latest`), which this also says.
pub async fn current(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(query): Query<CurrentQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(READERS)?;
    let team = query
        .team
        .filter(|t| !t.is_empty())
        .or_else(|| caller.team().map(str::to_string));
    let number = state.packs.load().for_team(team.as_deref()).number;
    let (version, latest) = blocking(&state, move |store| {
        Ok((
            store.pack_version(number)?,
            store.latest_pack()?.map(|v| v.number),
        ))
    })
    .await?;
    let version = version.ok_or_else(|| ApiError::not_found("pack version"))?;
    Ok(Json(serde_json::json!({
        "team": team,
        "latest": latest,
        "version": VersionView::of(version, true),
    })))
}

#[derive(Serialize)]
pub struct VersionList {
    /// Newest first.
    versions: Vec<PackVersionInfo>,
    /// The version each team's agents get now (`""` = agents without a team-only version).
    served: HashMap<String, u64>,
}

/// `GET /api/v1/packs/versions`.
pub async fn versions(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<VersionList>, ApiError> {
    caller.require(READERS)?;
    let mut versions = blocking(&state, |store| store.pack_versions()).await?;
    versions.reverse();
    let packs = state.packs.load();
    let served = packs
        .all()
        .map(|p| {
            let key = match &p.scope {
                PackScope::Team(t) if p.number != packs.global().number => t.clone(),
                _ => String::new(),
            };
            (key, p.number)
        })
        .collect();
    Ok(Json(VersionList { versions, served }))
}

/// `GET /api/v1/packs/versions/{number}`.
pub async fn version(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathParam(number): PathParam<u64>,
) -> Result<Json<VersionView>, ApiError> {
    caller.require(READERS)?;
    let version = blocking(&state, move |store| store.pack_version(number)).await?;
    version
        .map(|v| Json(VersionView::of(v, true)))
        .ok_or_else(|| ApiError::not_found("pack version"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesBody {
    files: PackFiles,
}

/// Compiles a candidate pack on a blocking thread: 422 with check-pack's messages if invalid.
async fn compile(files: PackFiles, label: String) -> Result<LoadedPack, ApiError> {
    Ok(tokio::task::spawn_blocking(move || compile_pack(&files, &label)).await??)
}

/// `POST /api/v1/packs/validate`.
pub async fn validate(
    caller: Caller,
    Body(body): Body<FilesBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(EDITORS)?;
    let pack = compile(body.files, "candidate".into()).await?;
    let e = &pack.engine;
    Ok(Json(serde_json::json!({
        "ok": true,
        "name": e.meta.name,
        "version": e.version(),
        "rules": e.rules.rules.len(),
        "scripts": e.scripts.scripts.len(),
        "intents": e.intents.intents.len(),
        "emotion_lexicons": e.emotions.len(),
        "articles": e.articles.len(),
        "paragraphs": pack.knowledge.paragraphs(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewBody {
    files: PackFiles,
    call_id: String,
}

/// A hit as preview compares them.
#[derive(Serialize, Clone)]
pub struct Hit {
    rule: String,
    category: String,
    severity: assist_protocol::Severity,
    t: f64,
    speaker: assist_protocol::Speaker,
    text: String,
}

impl From<&Alert> for Hit {
    fn from(a: &Alert) -> Hit {
        Hit {
            rule: a.rule.clone(),
            category: a.category.clone(),
            severity: a.severity,
            t: a.t,
            speaker: a.speaker,
            text: a.text.clone(),
        }
    }
}

#[derive(Serialize)]
pub struct Preview {
    /// Hits the candidate raises that the stored call does not have.
    added: Vec<Hit>,
    /// Stored hits the candidate does not raise.
    removed: Vec<Hit>,
    unchanged: usize,
    /// Everything the candidate emits for the call, as replay prints it.
    events: Vec<Event>,
    summary: Option<Summary>,
    stored_summary: Option<Summary>,
}

/// `POST /api/v1/packs/preview`: the stored call's transcript through the candidate pack.
pub async fn preview(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<PreviewBody>,
) -> Result<Json<Preview>, ApiError> {
    caller.require(EDITORS)?;
    let user = caller.user.clone();
    let call_id = body.call_id.clone();
    let record = blocking(&state, move |store| {
        let probe = Caller {
            user,
            token: String::new(),
        };
        visible_call(store, |meta| probe.sees_call(meta), &call_id)
    })
    .await?;
    let pack = compile(body.files, "candidate".into()).await?;
    let preview = tokio::task::spawn_blocking(move || {
        let mut session = pack
            .engine
            .start_call(&record.meta.language)
            .on_channel(record.meta.channel);
        let mut events = Vec::new();
        for line in &record.lines {
            let utt = Utterance {
                seq: line.seq,
                speaker: line.speaker,
                partial: false,
                text: line.text.clone(),
                start: line.start,
                end: line.end,
                prosody: None,
            };
            if let Ok(out) = session.utterance(&utt, pack.knowledge.as_ref()) {
                events.extend(out);
            }
        }
        // End where the stored call ended, so the call-end alerts line up with the stored ones.
        let end = record
            .alerts
            .iter()
            .map(|a| a.alert.t)
            .chain(record.lines.iter().map(|l| l.end.unwrap_or(l.start)))
            .fold(0.0, f64::max);
        events.extend(session.end(Some(end)));
        let summary = match events.last() {
            Some(Event::Summary(s)) => Some(s.clone()),
            _ => None,
        };
        let key = |a: &Alert| (a.rule.clone(), (a.t * 10.0).round() as i64, a.speaker);
        let mut stored: HashMap<_, Vec<&Alert>> = HashMap::new();
        for a in &record.alerts {
            stored.entry(key(&a.alert)).or_default().push(&a.alert);
        }
        let mut added = Vec::new();
        let mut unchanged = 0;
        for event in &events {
            if let Event::Alert(a) = event {
                match stored.get_mut(&key(a)).and_then(Vec::pop) {
                    Some(_) => unchanged += 1,
                    None => added.push(Hit::from(a)),
                }
            }
        }
        let mut removed: Vec<Hit> = stored.values().flatten().map(|a| Hit::from(*a)).collect();
        removed.sort_by(|a, b| a.t.total_cmp(&b.t).then(a.rule.cmp(&b.rule)));
        Preview {
            added,
            removed,
            unchanged,
            events,
            summary,
            stored_summary: record.summary,
        }
    })
    .await?;
    Ok(Json(preview))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    files: PackFiles,
    /// The newest version number when the edit started (0 if none).
    base_version: u64,
    /// Only this team's agents get it; everyone when absent.
    #[serde(default)]
    team: Option<String>,
    #[serde(default)]
    message: String,
}

/// A lead may publish to everyone or to their own team; an admin anywhere.
fn check_scope(caller: &Caller, scope: &PackScope) -> Result<(), ApiError> {
    match (caller.role(), scope) {
        (Role::Lead, PackScope::Team(team)) if caller.team() != Some(team.as_str()) => Err(
            ApiError::forbidden("a lead may publish to everyone or to their own team only"),
        ),
        _ => Ok(()),
    }
}

/// `POST /api/v1/packs/publish`.
pub async fn publish(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<PublishBody>,
) -> Result<(StatusCode, Json<VersionView>), ApiError> {
    caller.require(EDITORS)?;
    let scope = match body.team.filter(|t| !t.is_empty()) {
        Some(team) => PackScope::Team(team),
        None => PackScope::All,
    };
    check_scope(&caller, &scope)?;
    if body.message.chars().count() > 2000 {
        return Err(ApiError::invalid("the message is at most 2000 characters"));
    }
    // Validated first: an invalid pack never reaches the store or the agents.
    let pack = compile(body.files.clone(), "candidate".into()).await?;
    let _one_at_a_time = state.publish_lock.lock().await;
    let author = caller.name().to_string();
    let new = NewPackVersion {
        base_version: body.base_version,
        author: author.clone(),
        at: now_ms(),
        scope: scope.clone(),
        message: body.message,
        files: body.files,
    };
    let version = mutate(&state, move |store| {
        let version = store.publish_pack(&new)?;
        let target = format!("pack@{}", version.number);
        audit(
            store,
            &author,
            audit_action::PUBLISH,
            &target,
            &scope_text(&version.scope),
        )?;
        Ok(version)
    })
    .await?;
    serve(&state, &version, pack);
    Ok((StatusCode::CREATED, Json(VersionView::of(version, false))))
}

fn scope_text(scope: &PackScope) -> String {
    match scope {
        PackScope::All => "scope all".into(),
        PackScope::Team(t) => format!("scope team {t}"),
    }
}

/// Serves a newly stored version and tells the agents it reaches.
fn serve(state: &AppState, version: &PackVersion, pack: LoadedPack) {
    tracing::info!(version = version.number, author = %version.author, scope = %scope_text(&version.scope), "pack published");
    state.publish(ServedPack {
        number: version.number,
        scope: version.scope.clone(),
        loaded: pack,
    });
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// The version whose files (and scope) to publish again.
    version: u64,
    /// The newest version number when the decision was made.
    base_version: u64,
}

/// `POST /api/v1/packs/rollback`: publishes an earlier version's files as a new version.
pub async fn rollback(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<RollbackBody>,
) -> Result<(StatusCode, Json<VersionView>), ApiError> {
    caller.require(EDITORS)?;
    let _one_at_a_time = state.publish_lock.lock().await;
    let number = body.version;
    let (old, latest) = blocking(&state, move |store| {
        Ok((
            store.pack_version(number)?,
            store.latest_pack()?.map_or(0, |v| v.number),
        ))
    })
    .await?;
    let old = old.ok_or_else(|| ApiError::not_found("pack version"))?;
    check_scope(&caller, &old.scope)?;
    if latest != body.base_version {
        return Err(StoreError::VersionConflict {
            expected: body.base_version,
            current: latest,
        }
        .into());
    }
    let pack = compile(old.files, format!("version {number}")).await?;
    let author = caller.name().to_string();
    let version = mutate(&state, move |store| {
        let version = store.rollback_to(number, &author, now_ms())?;
        let target = format!("pack@{}", version.number);
        audit(
            store,
            &author,
            audit_action::ROLLBACK,
            &target,
            &format!("to version {number}"),
        )?;
        Ok(version)
    })
    .await?;
    serve(&state, &version, pack);
    Ok((StatusCode::CREATED, Json(VersionView::of(version, false))))
}
