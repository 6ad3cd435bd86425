//! Console records: users and teams, coaching tasks, pack versions, the audit log.

use crate::call::UnixMs;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

// ---------------------------------------------------------------------------------------------
// Users and teams

/// What a user may do in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Takes calls; sees their own calls and tasks.
    Agent,
    /// Team lead: edits and publishes scripts and rules.
    Lead,
    /// Reviews calls: comments, verdicts, manual scores, coaching tasks.
    Trainer,
    /// Manages users, teams, retention.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Lead => "lead",
            Role::Trainer => "trainer",
            Role::Admin => "admin",
        }
    }
}

/// A console (and agent WebSocket) user. The password hash never leaves the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The login name and the id everything else refers to (the agent id of an agent's calls).
    pub username: String,
    pub display_name: String,
    pub role: Role,
    #[serde(default)]
    pub team: Option<String>,
    #[serde(default)]
    pub disabled: bool,
    pub created_at: UnixMs,
}

/// A user to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    pub username: String,
    /// Defaults to the username when empty.
    #[serde(default)]
    pub display_name: String,
    pub password: String,
    pub role: Role,
    #[serde(default)]
    pub team: Option<String>,
}

/// Changes to a user; `None` fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserUpdate {
    pub display_name: Option<String>,
    pub role: Option<Role>,
    /// `Some(None)` removes the user from their team.
    pub team: Option<Option<String>>,
    pub disabled: Option<bool>,
}

/// A team of agents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    /// Short id used everywhere (`CallMeta::team`, `User::team`, pack scope).
    pub id: String,
    pub name: String,
    pub created_at: UnixMs,
}

// ---------------------------------------------------------------------------------------------
// Coaching tasks

/// Where a coaching task stands. It only moves forward: open -> acknowledged -> done
/// (open -> done is allowed too: a trainer may close a task the agent never acknowledged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Open,
    Acknowledged,
    Done,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Open => "open",
            TaskStatus::Acknowledged => "acknowledged",
            TaskStatus::Done => "done",
        }
    }

    /// Whether a task may go from `self` to `to`.
    pub fn can_become(self, to: TaskStatus) -> bool {
        matches!(
            (self, to),
            (TaskStatus::Open, TaskStatus::Acknowledged)
                | (TaskStatus::Open, TaskStatus::Done)
                | (TaskStatus::Acknowledged, TaskStatus::Done)
        )
    }
}

/// A coaching task for an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoachingTask {
    pub id: u64,
    pub agent: String,
    pub created_by: String,
    pub title: String,
    #[serde(default)]
    pub note: String,
    /// Calls the task is about.
    #[serde(default)]
    pub call_ids: Vec<String>,
    pub due: UnixMs,
    pub status: TaskStatus,
    pub created_at: UnixMs,
    pub updated_at: UnixMs,
}

/// A coaching task to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTask {
    pub agent: String,
    pub created_by: String,
    pub title: String,
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub call_ids: Vec<String>,
    pub due: UnixMs,
    pub created_at: UnixMs,
}

/// Which tasks to list; set fields are AND-ed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskFilter {
    pub agent: Option<String>,
    pub created_by: Option<String>,
    pub status: Option<TaskStatus>,
}

// ---------------------------------------------------------------------------------------------
// Pack versions

/// Who a pack version applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "team", rename_all = "snake_case")]
pub enum PackScope {
    /// Every agent.
    All,
    /// The agents of one team.
    Team(String),
}

impl PackScope {
    /// Whether an agent of `team` gets this version.
    pub fn applies_to(&self, team: Option<&str>) -> bool {
        match self {
            PackScope::All => true,
            PackScope::Team(t) => team == Some(t.as_str()),
        }
    }
}

/// One published version of the scripts and rules pack. Versions form one linear history
/// numbered 1, 2, 3...; each carries the full file set, so any version can be served or rolled
/// back to on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackVersion {
    pub number: u64,
    pub author: String,
    pub at: UnixMs,
    pub scope: PackScope,
    pub message: String,
    /// Relative path (e.g. `scripts/refund.toml`) -> file text.
    pub files: BTreeMap<String, String>,
    /// Unified line diff against the previous version (every file; empty for no change).
    pub diff: String,
    /// Set when this version was made by rolling back to an earlier one.
    #[serde(default)]
    pub rolled_back_from: Option<u64>,
}

/// A pack version without its files and diff, for history lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackVersionInfo {
    pub number: u64,
    pub author: String,
    pub at: UnixMs,
    pub scope: PackScope,
    pub message: String,
    #[serde(default)]
    pub rolled_back_from: Option<u64>,
    /// Lines added and removed against the previous version.
    pub added: u32,
    pub removed: u32,
}

/// A publish request. `base_version` is the version the edit started from (0 when there is
/// none yet); it must still be the latest, or the publish fails with
/// [`crate::StoreError::VersionConflict`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPackVersion {
    pub base_version: u64,
    pub author: String,
    pub at: UnixMs,
    pub scope: PackScope,
    pub message: String,
    pub files: BTreeMap<String, String>,
}

// ---------------------------------------------------------------------------------------------
// Audit log

/// Action names the console uses in the audit log (free text is allowed too).
pub mod audit_action {
    pub const LOGIN: &str = "login";
    pub const LOGIN_FAILED: &str = "login_failed";
    pub const LOGOUT: &str = "logout";
    pub const PUBLISH: &str = "publish";
    pub const ROLLBACK: &str = "rollback";
    pub const MANUAL_SCORE: &str = "manual_score";
    pub const VERDICT: &str = "verdict";
    pub const DELETE_CALL: &str = "delete_call";
    pub const PURGE: &str = "purge";
    pub const EXPORT_CALL: &str = "export_call";
    pub const USER_CREATED: &str = "user_created";
    pub const USER_UPDATED: &str = "user_updated";
    pub const USER_DELETED: &str = "user_deleted";
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: UnixMs,
    /// Username, or `system`.
    pub actor: String,
    /// See [`audit_action`].
    pub action: String,
    /// What it was done to: a call id, `pack@12`, a username...
    pub target: String,
    #[serde(default)]
    pub detail: String,
}

/// Which audit entries to read; newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditQuery {
    pub from: Option<UnixMs>,
    /// Exclusive.
    pub to: Option<UnixMs>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub limit: usize,
}

impl Default for AuditQuery {
    fn default() -> Self {
        AuditQuery {
            from: None,
            to: None,
            actor: None,
            action: None,
            limit: 100,
        }
    }
}
