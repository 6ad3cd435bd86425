//! `GET /api/v1/openapi.json`: the API as OpenAPI 3.1, built from the route table (so every
//! route is in it) plus the request bodies and common shapes written out below. docs/api.md
//! is the long form.

use super::table;
use axum::http::Method;
use axum::Json;
use serde_json::{json, Map, Value};

/// The document.
pub async fn document() -> Json<Value> {
    Json(build())
}

pub fn build() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for route in table() {
        let entry = paths
            .entry(route.path.to_string())
            .or_insert_with(|| json!({}));
        let mut op = json!({
            "summary": route.summary,
            "x-roles": route.roles,
            "responses": responses(&route.method, route.roles),
        });
        let params: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| {
                json!({"name": name.trim_start_matches('*'), "in": "path", "required": true,
                       "schema": {"type": if name.ends_with("id") && name != "id" || name == "number" { "integer" } else { "string" }}})
            })
            .collect();
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if route.roles == "public" {
            op["security"] = json!([]);
        }
        if let Some(body) = request_body(&route.method, route.path) {
            op["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": body}}});
        }
        entry[route.method.as_str().to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "assist-server coaching API",
            "version": "1",
            "description": "Call log, coaching, pack publishing and reports. Errors are {\"error\":{\"code\",\"message\",\"details\"?}}. Times are Unix milliseconds. See docs/api.md."
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas(),
        }
    })
}

fn responses(method: &Method, roles: &str) -> Value {
    let ok = match *method {
        Method::DELETE => "204",
        _ => "200",
    };
    let mut r = json!({ ok: {"description": "success"} });
    if roles != "public" {
        r["401"] = json!({"description": "missing, unknown or expired token", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
        r["403"] = json!({"description": "the role may not use this", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    }
    if *method == Method::POST || *method == Method::PUT || *method == Method::PATCH {
        r["400"] = json!({"description": "malformed body"});
        r["413"] = json!({"description": "body over 1 MiB"});
        r["422"] = json!({"description": "a field (or the pack) is not acceptable"});
    }
    r
}

fn request_body(method: &Method, path: &str) -> Option<Value> {
    let schema = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    Some(match (method.as_str(), path) {
        ("POST", "/api/v1/login") => schema("Login"),
        ("POST", "/api/v1/calls/{id}/comments") => schema("NewComment"),
        ("PUT", "/api/v1/calls/{id}/alerts/{alert_id}/verdict") => schema("Verdict"),
        ("PUT", "/api/v1/calls/{id}/score") => schema("ManualScore"),
        ("POST", "/api/v1/tasks") => schema("NewTask"),
        ("POST", "/api/v1/packs/validate") => schema("PackFiles"),
        ("POST", "/api/v1/packs/preview") => schema("Preview"),
        ("POST", "/api/v1/packs/publish") => schema("Publish"),
        ("POST", "/api/v1/packs/rollback") => schema("Rollback"),
        ("POST", "/api/v1/users") => schema("NewUser"),
        ("PATCH", "/api/v1/users/{username}") => schema("UserPatch"),
        ("POST", "/api/v1/teams") => schema("NewTeam"),
        ("POST", "/api/v1/admin/purge") => schema("Purge"),
        _ => return None,
    })
}

fn schemas() -> Value {
    let files = json!({"type": "object", "additionalProperties": {"type": "string"},
                       "description": "relative path (rules/abuse.toml) -> file text"});
    json!({
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object",
            "required": ["code", "message"], "properties": {
                "code": {"type": "string", "enum": ["bad_request", "unauthorized", "bad_credentials", "forbidden", "not_found",
                    "version_conflict", "already_exists", "invalid_transition", "payload_too_large", "invalid_pack",
                    "invalid", "internal", "unavailable", "too_many_attempts"]},
                "message": {"type": "string"},
                "details": {}}}}},
        "Login": {"type": "object", "required": ["username", "password"],
            "properties": {"username": {"type": "string"}, "password": {"type": "string"}}},
        "NewComment": {"type": "object", "required": ["seq", "text"],
            "properties": {"seq": {"type": "integer"}, "text": {"type": "string"}}},
        "Verdict": {"type": "object", "required": ["verdict"], "properties": {
            "verdict": {"enum": ["confirmed", "overturned", null]}, "note": {"type": ["string", "null"]}}},
        "ManualScore": {"type": "object", "required": ["score", "reason"], "properties": {
            "score": {"type": "integer", "minimum": 0, "maximum": 100}, "reason": {"type": "string"}}},
        "NewTask": {"type": "object", "required": ["agent", "title", "due"], "properties": {
            "agent": {"type": "string"}, "title": {"type": "string"}, "note": {"type": "string"},
            "call_ids": {"type": "array", "items": {"type": "string"}},
            "due": {"description": "YYYY-MM-DD (end of day) or Unix ms"},
            "utc_offset_minutes": {"type": "integer"}}},
        "PackFiles": {"type": "object", "required": ["files"], "properties": {"files": files}},
        "Preview": {"type": "object", "required": ["files", "call_id"], "properties": {
            "files": files, "call_id": {"type": "string"}}},
        "Publish": {"type": "object", "required": ["files", "base_version"], "properties": {
            "files": files, "base_version": {"type": "integer"},
            "team": {"type": ["string", "null"]}, "message": {"type": "string"}}},
        "Rollback": {"type": "object", "required": ["version", "base_version"], "properties": {
            "version": {"type": "integer"}, "base_version": {"type": "integer"}}},
        "NewUser": {"type": "object", "required": ["username", "password", "role"], "properties": {
            "username": {"type": "string"}, "password": {"type": "string", "minLength": 8},
            "role": {"enum": ["agent", "lead", "trainer", "admin"]},
            "team": {"type": ["string", "null"]}, "display_name": {"type": "string"}}},
        "UserPatch": {"type": "object", "properties": {
            "display_name": {"type": "string"}, "role": {"enum": ["agent", "lead", "trainer", "admin"]},
            "team": {"type": ["string", "null"]}, "disabled": {"type": "boolean"},
            "password": {"type": "string", "minLength": 8}}},
        "NewTeam": {"type": "object", "required": ["id", "name"], "properties": {
            "id": {"type": "string"}, "name": {"type": "string"}}},
        "Purge": {"type": "object", "properties": {"older_than_days": {"type": "integer"}}},
    })
}
