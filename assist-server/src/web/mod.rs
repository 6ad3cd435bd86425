//! The coaching service over HTTP: the JSON API under `/api/v1/` (docs/api.md) and the web
//! console at `/`.
//!
//! Every route of the server is one row of [`table`]: method, path, who may call it, a summary
//! and the handler. The router and the OpenAPI document (`/api/v1/openapi.json`) are both built
//! from it, so they cannot disagree. Handlers are thin: check the caller's role and scope
//! ([`auth::Caller`]), call the store on a blocking thread ([`blocking`], [`mutate`]), answer
//! JSON; every failure is an [`error::ApiError`].

pub mod admin;
pub mod auth;
pub mod batch;
pub mod calls;
pub mod console;
pub mod error;
pub mod ingest;
pub mod openapi;
pub mod packs;
pub mod reports;
pub mod tasks;
pub mod throttle;
pub mod time;
pub mod users;

use crate::state::{now_ms, AppState};
use assist_store::{AuditEntry, CallStore, StoreError};
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put, MethodRouter};
use axum::Router;
use error::{ApiError, PathParam};
use std::sync::Arc;

/// Request bodies over this are refused with 413 (a whole pack is ~200 KiB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// One route: what the OpenAPI document says about it, and its handler.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    /// Who may call it, as docs/api.md says it (`public`, `any`, `trainer admin`...).
    pub roles: &'static str,
    pub summary: &'static str,
    handler: MethodRouter<Arc<AppState>>,
}

fn route(
    method: Method,
    path: &'static str,
    roles: &'static str,
    summary: &'static str,
    handler: MethodRouter<Arc<AppState>>,
) -> Route {
    Route {
        method,
        path,
        roles,
        summary,
        handler,
    }
}

/// Every route of the server.
pub fn table() -> Vec<Route> {
    use Method as M;
    vec![
        // Live service and console.
        route(
            M::GET,
            "/ws",
            "agent (hello token)",
            "Agent WebSocket (docs/protocol.md)",
            crate::live::ws_route(),
        ),
        route(
            M::GET,
            "/healthz",
            "public",
            "Health and the pack served to everyone",
            crate::live::health_route(),
        ),
        route(
            M::GET,
            "/",
            "public",
            "The web console",
            get(|| async { asset("index.html") }),
        ),
        route(
            M::GET,
            "/console/{*path}",
            "public",
            "The console's static files",
            get(|PathParam(path): PathParam<String>| async move { asset(&path) }),
        ),
        route(
            M::GET,
            "/api/v1/openapi.json",
            "public",
            "This API as OpenAPI 3.1",
            get(openapi::document),
        ),
        // Auth.
        route(
            M::POST,
            "/api/v1/login",
            "public",
            "Log in: a bearer token for the API and the agent WebSocket",
            post(auth::login),
        ),
        route(
            M::POST,
            "/api/v1/logout",
            "any",
            "Revoke the caller's token",
            post(auth::logout),
        ),
        route(M::GET, "/api/v1/me", "any", "The caller", get(auth::me)),
        // Calls.
        route(
            M::GET,
            "/api/v1/calls",
            "agent(own) lead(team) trainer admin",
            "List and filter calls",
            get(calls::list),
        ),
        route(
            M::GET,
            "/api/v1/calls/{id}",
            "agent(own) lead(team) trainer admin",
            "One call: transcript, hits, emotion, cards, comments",
            get(calls::get_one),
        ),
        route(
            M::DELETE,
            "/api/v1/calls/{id}",
            "admin",
            "Delete a call",
            delete(calls::remove),
        ),
        route(
            M::GET,
            "/api/v1/calls/{id}/export",
            "agent(own) lead(team) trainer admin",
            "The whole call as one JSON document",
            get(calls::export),
        ),
        route(
            M::POST,
            "/api/v1/calls/{id}/comments",
            "lead(team) trainer admin",
            "Comment on a transcript line",
            post(calls::comment),
        ),
        route(
            M::DELETE,
            "/api/v1/calls/{id}/comments/{comment_id}",
            "lead(team) trainer admin",
            "Delete a comment",
            delete(calls::delete_comment),
        ),
        route(
            M::PUT,
            "/api/v1/calls/{id}/alerts/{alert_id}/verdict",
            "trainer admin",
            "Confirm or overturn a hit",
            put(calls::verdict),
        ),
        route(
            M::PUT,
            "/api/v1/calls/{id}/score",
            "trainer admin",
            "Set a manual score with a reason",
            put(calls::score),
        ),
        route(
            M::DELETE,
            "/api/v1/calls/{id}/score",
            "trainer admin",
            "Clear the manual score",
            delete(calls::clear_score),
        ),
        route(
            M::POST,
            "/api/v1/conversations",
            "agent(own) admin",
            "Post a finished chat conversation for QC (docs/api.md)",
            post(ingest::post_conversation),
        ),
        // Coaching tasks.
        route(
            M::GET,
            "/api/v1/tasks",
            "agent(own) lead(team) trainer admin",
            "List coaching tasks",
            get(tasks::list),
        ),
        route(
            M::POST,
            "/api/v1/tasks",
            "trainer admin",
            "Create a coaching task",
            post(tasks::create),
        ),
        route(
            M::GET,
            "/api/v1/tasks/{id}",
            "agent(own) lead(team) trainer admin",
            "One coaching task",
            get(tasks::get_one),
        ),
        route(
            M::POST,
            "/api/v1/tasks/{id}/acknowledge",
            "agent(own)",
            "Acknowledge a task",
            post(tasks::acknowledge),
        ),
        route(
            M::POST,
            "/api/v1/tasks/{id}/done",
            "trainer admin",
            "Close a task",
            post(tasks::done),
        ),
        route(
            M::GET,
            "/api/v1/tasks/{id}/progress",
            "agent(own) lead(team) trainer admin",
            "The agent's scores before and after the task",
            get(tasks::progress),
        ),
        // Packs.
        route(
            M::GET,
            "/api/v1/packs/current",
            "lead trainer admin",
            "The pack version a team's agents get, with its files",
            get(packs::current),
        ),
        route(
            M::GET,
            "/api/v1/packs/versions",
            "lead trainer admin",
            "Version history",
            get(packs::versions),
        ),
        route(
            M::GET,
            "/api/v1/packs/versions/{number}",
            "lead trainer admin",
            "One version with its files and diff",
            get(packs::version),
        ),
        route(
            M::POST,
            "/api/v1/packs/validate",
            "lead admin",
            "Check a pack as check-pack does",
            post(packs::validate),
        ),
        route(
            M::POST,
            "/api/v1/packs/preview",
            "lead(team calls) admin",
            "Replay a stored call through a candidate pack",
            post(packs::preview),
        ),
        route(
            M::POST,
            "/api/v1/packs/publish",
            "lead(all or own team) admin",
            "Publish a new version and push it to agents",
            post(packs::publish),
        ),
        route(
            M::POST,
            "/api/v1/packs/rollback",
            "lead(all or own team) admin",
            "Publish an earlier version's files again",
            post(packs::rollback),
        ),
        // Reports.
        route(
            M::GET,
            "/api/v1/reports",
            "lead(team) trainer admin",
            "Figures per agent, team, day, week, channel or category (JSON or CSV)",
            get(reports::report),
        ),
        // Users, teams, audit, retention.
        route(
            M::GET,
            "/api/v1/users",
            "lead(team) trainer admin",
            "List users",
            get(users::list),
        ),
        route(
            M::POST,
            "/api/v1/users",
            "admin",
            "Create a user",
            post(users::create),
        ),
        route(
            M::GET,
            "/api/v1/users/{username}",
            "agent(self) lead(team) trainer admin",
            "One user",
            get(users::get_one),
        ),
        route(
            M::PATCH,
            "/api/v1/users/{username}",
            "admin",
            "Change a user",
            patch(users::update),
        ),
        route(
            M::DELETE,
            "/api/v1/users/{username}",
            "admin",
            "Delete a user",
            delete(users::remove),
        ),
        route(
            M::GET,
            "/api/v1/teams",
            "any",
            "List teams",
            get(users::teams),
        ),
        route(
            M::POST,
            "/api/v1/teams",
            "admin",
            "Create a team",
            post(users::create_team),
        ),
        route(
            M::DELETE,
            "/api/v1/teams/{id}",
            "admin",
            "Delete a team",
            delete(users::delete_team),
        ),
        route(
            M::GET,
            "/api/v1/audit",
            "admin",
            "The audit log",
            get(admin::audit_log),
        ),
        route(
            M::GET,
            "/api/v1/admin/retention",
            "admin",
            "The retention period and the last purge",
            get(admin::retention),
        ),
        route(
            M::POST,
            "/api/v1/admin/purge",
            "admin",
            "Run the retention purge now",
            post(admin::purge),
        ),
        // Batch QC on the running server.
        route(
            M::POST,
            "/api/v1/qc/jobs",
            "admin",
            "Start a batch QC job on files of the batch folder",
            post(batch::start),
        ),
        route(
            M::GET,
            "/api/v1/qc/jobs",
            "admin",
            "Batch QC jobs, newest first",
            get(batch::list),
        ),
        route(
            M::GET,
            "/api/v1/qc/jobs/{id}",
            "admin",
            "One batch QC job and its progress",
            get(batch::get_one),
        ),
        route(
            M::POST,
            "/api/v1/qc/jobs/{id}/stop",
            "admin",
            "Stop a running batch QC job (what it inspected stays stored)",
            post(batch::stop),
        ),
    ]
}

/// The whole server: live service, API and console.
pub fn router(state: Arc<AppState>) -> Router {
    let mut router = Router::new();
    for r in table() {
        router = router.route(r.path, r.handler);
    }
    router
        .fallback(|| async { ApiError::not_found("route") })
        .layer(axum::middleware::from_fn(error::read_body_first))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

fn asset(path: &str) -> Response {
    match console::ASSETS.iter().find(|a| a.path == path) {
        Some(a) => (console::headers(a), a.body).into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// Runs a store read on a blocking thread.
pub async fn blocking<T, F>(state: &Arc<AppState>, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&dyn CallStore) -> Result<T, StoreError> + Send + 'static,
{
    let state = Arc::clone(state);
    let result = tokio::task::spawn_blocking(move || f(state.store.as_ref())).await?;
    Ok(result?)
}

/// Runs store writes on a blocking thread and makes them durable before answering.
pub async fn mutate<T, F>(state: &Arc<AppState>, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&dyn CallStore) -> Result<T, StoreError> + Send + 'static,
{
    blocking(state, move |store| {
        let value = f(store)?;
        store.flush()?;
        Ok(value)
    })
    .await
}

/// Appends an audit entry, now.
pub fn audit(
    store: &dyn CallStore,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<(), StoreError> {
    store.audit(&AuditEntry {
        at: now_ms(),
        actor: actor.to_string(),
        action: action.to_string(),
        target: target.to_string(),
        detail: detail.to_string(),
    })
}
