//! The embedded implementation of [`CallStore`] on sled.

use crate::admin::*;
use crate::call::*;
use crate::error::{Result, StoreError};
use crate::query::*;
use crate::CallStore;
use assist_protocol::{CardAction, Event, Summary};
use std::path::{Path, PathBuf};

/// When accepted writes reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every write that accepts something (a line, a turn, the end of a call, any console
    /// change) is flushed before the method returns: a crash loses nothing acknowledged.
    #[default]
    EveryWrite,
    /// sled's background flush (every 500 ms) plus a flush at the end of each call: for batch
    /// imports and benchmarks.
    Periodic,
}

/// How expensive password hashing is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PasswordCost {
    /// argon2id with the crate's default parameters (19 MiB, 2 passes).
    #[default]
    Default,
    /// Minimal argon2 parameters: for tests only.
    Fast,
}

/// Options of [`SledStore::open_with`].
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    pub durability: Durability,
    pub password_cost: PasswordCost,
    /// sled's page cache in bytes (`None`: sled's default, 1 GiB upper bound).
    pub cache_capacity: Option<u64>,
}

/// The sled call store. Open one per data directory (sled locks it).
pub struct SledStore {
    path: PathBuf,
    options: StoreOptions,
}

impl SledStore {
    /// Opens (creating if missing) the store in `dir` with default options.
    pub fn open(dir: impl AsRef<Path>) -> Result<SledStore> {
        Self::open_with(dir, StoreOptions::default())
    }

    /// Opens (creating if missing) the store in `dir`. Fails with [`StoreError::Locked`] when
    /// another process has it open, [`StoreError::Schema`] when a newer build wrote it.
    pub fn open_with(dir: impl AsRef<Path>, options: StoreOptions) -> Result<SledStore> {
        let _ = (dir.as_ref(), &options);
        todo!()
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.options
    }
}

#[allow(unused_variables)]
impl CallStore for SledStore {
    fn begin_call(&self, meta: &CallMeta) -> Result<bool> {
        todo!()
    }
    fn append_line(&self, call_id: &str, line: &StoredLine) -> Result<bool> {
        todo!()
    }
    fn append_events(&self, call_id: &str, events: &[Event]) -> Result<usize> {
        todo!()
    }
    fn append_turn(&self, call_id: &str, line: &StoredLine, events: &[Event]) -> Result<bool> {
        todo!()
    }
    fn record_card_action(&self, call_id: &str, card_id: &str, action: CardAction) -> Result<()> {
        todo!()
    }
    fn end_call(&self, call_id: &str, summary: &Summary, ended_at: UnixMs) -> Result<()> {
        todo!()
    }
    fn call_meta(&self, call_id: &str) -> Result<Option<CallMeta>> {
        todo!()
    }
    fn last_seq(&self, call_id: &str) -> Result<u64> {
        todo!()
    }
    fn get_call(&self, call_id: &str) -> Result<Option<CallRecord>> {
        todo!()
    }
    fn call_row(&self, call_id: &str) -> Result<Option<CallRow>> {
        todo!()
    }
    fn list_calls(&self, filter: &CallFilter, page: Page) -> Result<CallPage> {
        todo!()
    }
    fn add_comment(
        &self,
        call_id: &str,
        line_seq: u64,
        author: &str,
        text: &str,
        at: UnixMs,
    ) -> Result<Comment> {
        todo!()
    }
    fn delete_comment(&self, call_id: &str, comment_id: u64) -> Result<bool> {
        todo!()
    }
    fn set_verdict(&self, call_id: &str, alert_id: &str, verdict: Option<Verdict>) -> Result<()> {
        todo!()
    }
    fn set_manual_score(&self, call_id: &str, score: Option<ManualScore>) -> Result<()> {
        todo!()
    }
    fn create_task(&self, task: &NewTask) -> Result<CoachingTask> {
        todo!()
    }
    fn task(&self, id: u64) -> Result<Option<CoachingTask>> {
        todo!()
    }
    fn list_tasks(&self, filter: &TaskFilter) -> Result<Vec<CoachingTask>> {
        todo!()
    }
    fn set_task_status(&self, id: u64, status: TaskStatus, at: UnixMs) -> Result<CoachingTask> {
        todo!()
    }
    fn agent_scores(
        &self,
        agent: &str,
        from: Option<UnixMs>,
        to: Option<UnixMs>,
    ) -> Result<ScoreStats> {
        todo!()
    }
    fn report(&self, query: &ReportQuery) -> Result<Report> {
        todo!()
    }
    fn publish_pack(&self, version: &NewPackVersion) -> Result<PackVersion> {
        todo!()
    }
    fn pack_versions(&self) -> Result<Vec<PackVersionInfo>> {
        todo!()
    }
    fn pack_version(&self, number: u64) -> Result<Option<PackVersion>> {
        todo!()
    }
    fn latest_pack(&self) -> Result<Option<PackVersion>> {
        todo!()
    }
    fn latest_pack_for(&self, team: Option<&str>) -> Result<Option<PackVersion>> {
        todo!()
    }
    fn rollback_to(&self, number: u64, author: &str, at: UnixMs) -> Result<PackVersion> {
        todo!()
    }
    fn create_user(&self, user: &NewUser, at: UnixMs) -> Result<User> {
        todo!()
    }
    fn user(&self, username: &str) -> Result<Option<User>> {
        todo!()
    }
    fn list_users(&self) -> Result<Vec<User>> {
        todo!()
    }
    fn update_user(&self, username: &str, update: &UserUpdate) -> Result<User> {
        todo!()
    }
    fn set_password(&self, username: &str, password: &str) -> Result<()> {
        todo!()
    }
    fn delete_user(&self, username: &str) -> Result<bool> {
        todo!()
    }
    fn verify_password(&self, username: &str, password: &str) -> Result<Option<User>> {
        todo!()
    }
    fn is_empty_of_users(&self) -> Result<bool> {
        todo!()
    }
    fn issue_token(&self, username: &str, now: UnixMs, ttl_ms: i64) -> Result<String> {
        todo!()
    }
    fn user_for_token(&self, token: &str, now: UnixMs) -> Result<Option<User>> {
        todo!()
    }
    fn revoke_token(&self, token: &str) -> Result<bool> {
        todo!()
    }
    fn revoke_user_tokens(&self, username: &str) -> Result<usize> {
        todo!()
    }
    fn purge_expired_tokens(&self, now: UnixMs) -> Result<usize> {
        todo!()
    }
    fn create_team(&self, id: &str, name: &str, at: UnixMs) -> Result<Team> {
        todo!()
    }
    fn teams(&self) -> Result<Vec<Team>> {
        todo!()
    }
    fn delete_team(&self, id: &str) -> Result<bool> {
        todo!()
    }
    fn audit(&self, entry: &AuditEntry) -> Result<()> {
        todo!()
    }
    fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        todo!()
    }
    fn purge_ended_before(&self, cutoff: UnixMs) -> Result<usize> {
        todo!()
    }
    fn delete_call(&self, call_id: &str) -> Result<bool> {
        todo!()
    }
    fn export_call(&self, call_id: &str) -> Result<serde_json::Value> {
        todo!()
    }
    fn setting(&self, key: &str) -> Result<Option<String>> {
        todo!()
    }
    fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        todo!()
    }
    fn flush(&self) -> Result<()> {
        todo!()
    }
}

#[allow(dead_code)]
fn _unused(_: StoreError) {}
