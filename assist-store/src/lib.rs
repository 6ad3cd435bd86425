//! The call store: the coaching call log and everything the web console keeps.
//!
//! What is stored:
//!
//! - **The call log.** Per call: who, where and when ([`CallMeta`]), the masked transcript
//!   ([`StoredLine`]), every alert with the trainer's verdict ([`StoredAlert`]), the customer's
//!   emotion timeline, every card shown with the agent's reaction ([`CardShown`]), the engine's
//!   summary, a trainer's manual score and comments. Written incrementally while the call runs
//!   (every accepted write is durable by default), closed by [`CallStore::end_call`]; or, for
//!   a conversation that is already over (batch QC, posted chats), stored whole with
//!   [`CallStore::store_finished_calls`] ([`FinishedCall`]), in a fraction of the writes.
//! - **Lists and reports** over a compact per-call [`CallRow`] that the store keeps in memory, so
//!   filtering 100,000 calls is a scan over memory ([`CallStore::list_calls`],
//!   [`CallStore::report`], [`report_csv`]).
//! - **The console's records:** users, teams and login tokens ([`User`], argon2 password hashes,
//!   SHA-256 of tokens), coaching tasks ([`CoachingTask`]), published pack versions with
//!   compare-and-swap publishing ([`PackVersion`]), the audit log ([`AuditEntry`]) and a few
//!   settings.
//!
//! Everything goes through the object-safe [`CallStore`] trait (`Arc<dyn CallStore>`); the
//! embedded implementation is [`SledStore`]. A shared database (PostgreSQL) can implement the
//! same trait later. All methods are synchronous: call them from async code through
//! `spawn_blocking` (or directly for the small per-utterance writes).
//!
//! Time never comes from a clock inside the store: every time-stamped operation takes the time
//! ([`UnixMs`]) from its caller, which keeps the store deterministic and testable.

mod admin;
mod call;
mod error;
mod query;
mod report;
mod rows;
mod sled_store;

pub use admin::{
    audit_action, AuditEntry, AuditQuery, CoachingTask, NewPackVersion, NewTask, NewUser,
    PackScope, PackVersion, PackVersionInfo, Role, TaskFilter, TaskStatus, Team, User, UserUpdate,
};
pub use call::{
    CallMeta, CallRecord, CallSource, CallStatus, CardReaction, CardShown, Comment, FinishedCall,
    ManualScore, SourceKind, StoredAlert, StoredLine, UnixMs, Verdict, VerdictKind,
};
pub use error::{Result, StoreError};
pub use query::{
    precision, Adoption, BeforeAfter, CallFilter, CallPage, CallRow, GroupBy, Page, Report,
    ReportGroup, ReportQuery, RulePrecision, ScoreStats,
};
pub use report::{build_report, report_csv};
pub use rows::COMPLAINT_CATEGORIES;
pub use sled_store::{Durability, PasswordCost, SledStore, StoreOptions};

use assist_protocol::{CardAction, Event, Summary};

/// The schema version this build writes, and the newest it reads. Version 2 added packed
/// per-call items for a call stored whole ([`CallStore::store_finished_calls`]), one value per
/// kind; version 3 keeps such a call in one value (its bundle). Older stores are upgraded on
/// open: version 1 data is valid as it is, version 2's packed values move into bundles.
pub const SCHEMA_VERSION: u32 = 3;

/// The store behind the server and the web console.
///
/// Conventions: ids are strings chosen by the caller (call ids, usernames, team ids) and must be
/// non-empty, at most 200 bytes, without NUL characters. Methods that change something take the
/// time from the caller. The store writes no audit entries itself: the caller records publishes,
/// score changes, deletions and logins with [`CallStore::audit`].
pub trait CallStore: Send + Sync {
    // -- The call log, written while the call runs --------------------------------------------

    /// Starts a call. Returns `true` if the call is new, `false` if it already exists (a
    /// resumed call: nothing is changed). `meta.status` and `meta.ended_at` are ignored.
    fn begin_call(&self, meta: &CallMeta) -> Result<bool>;

    /// Stores one final transcript line. Idempotent per `(call, seq)`: a line whose seq is
    /// already stored is ignored and `false` returned. The text is masked again on write.
    /// Fails with [`StoreError::NotFound`] for a call never begun.
    fn append_line(&self, call_id: &str, line: &StoredLine) -> Result<bool>;

    /// Stores the engine's events (alerts, emotions, cards; a summary is stored as the call's
    /// summary without ending it). Idempotent: an event identical to one already stored at the
    /// same time is not stored twice, so replaying a call does not double anything. Returns
    /// how many events were new.
    fn append_events(&self, call_id: &str, events: &[Event]) -> Result<usize>;

    /// One accepted utterance and the events it produced, in one write (and one flush): what
    /// the live path calls before acknowledging the utterance. Returns whether the line was new.
    fn append_turn(&self, call_id: &str, line: &StoredLine, events: &[Event]) -> Result<bool>;

    /// Records what the agent did with a card (the latest action wins). A card with no action by
    /// the end of the call counts as ignored.
    fn record_card_action(&self, call_id: &str, card_id: &str, action: CardAction) -> Result<()>;

    /// Ends the call with the engine's summary and flushes everything to disk (with the default
    /// durability). Ending an ended call again replaces its summary and end time. Append the
    /// events the engine emits at the end before calling this.
    fn end_call(&self, call_id: &str, summary: &Summary, ended_at: UnixMs) -> Result<()>;

    /// Stores whole finished calls (batch QC, posted chats): for each, the same call as
    /// `begin_call`, `append_line` per line, `append_events` and `end_call` would leave —
    /// the same call page, row, list filters and report figures — in far fewer writes. Each
    /// call is stored whole or not at all: after a crash a call is either stored (ended) or
    /// absent, and storing it again writes it whole. Several threads may store at once.
    /// Nothing is flushed (call [`CallStore::flush`]), whatever the durability.
    ///
    /// Returns, per call, whether it was stored: a call whose id is already stored (or earlier
    /// in the same batch) is left as it is and gives `false`, unless it asks to
    /// [`FinishedCall::replace`] it. Invalid ids or line times fail the whole batch before
    /// anything is written.
    fn store_finished_calls(&self, calls: &[FinishedCall]) -> Result<Vec<bool>>;

    /// The call's metadata, if it exists.
    fn call_meta(&self, call_id: &str) -> Result<Option<CallMeta>>;

    /// The highest stored line seq of the call (0 with none): where a resumed call picks up.
    fn last_seq(&self, call_id: &str) -> Result<u64>;

    // -- Reading calls --------------------------------------------------------------------------

    /// Everything about one call, for the call page.
    fn get_call(&self, call_id: &str) -> Result<Option<CallRecord>>;

    /// The call's list row.
    fn call_row(&self, call_id: &str) -> Result<Option<CallRow>>;

    /// Calls matching `filter`, newest first (by `started_at`, then call id), one page of them,
    /// with the total number matching.
    fn list_calls(&self, filter: &CallFilter, page: Page) -> Result<CallPage>;

    // -- Trainer --------------------------------------------------------------------------------

    /// Adds a comment on transcript line `line_seq` (which must exist).
    fn add_comment(
        &self,
        call_id: &str,
        line_seq: u64,
        author: &str,
        text: &str,
        at: UnixMs,
    ) -> Result<Comment>;

    /// Deletes a comment; `false` if it did not exist.
    fn delete_comment(&self, call_id: &str, comment_id: u64) -> Result<bool>;

    /// Confirms or overturns an alert (`None` clears the verdict). Overturned alerts count
    /// against their rule's precision in reports.
    fn set_verdict(&self, call_id: &str, alert_id: &str, verdict: Option<Verdict>) -> Result<()>;

    /// Sets (or with `None` clears) the manual score, which overrides the engine's score in
    /// lists and reports. Scores above 100 are refused.
    fn set_manual_score(&self, call_id: &str, score: Option<ManualScore>) -> Result<()>;

    /// Creates a coaching task (status open).
    fn create_task(&self, task: &NewTask) -> Result<CoachingTask>;

    /// One coaching task.
    fn task(&self, id: u64) -> Result<Option<CoachingTask>>;

    /// Coaching tasks matching the filter, newest first.
    fn list_tasks(&self, filter: &TaskFilter) -> Result<Vec<CoachingTask>>;

    /// Moves a task forward (open -> acknowledged -> done, or open -> done). Anything else fails
    /// with [`StoreError::InvalidTransition`]; setting the current status again is a no-op.
    fn set_task_status(&self, id: u64, status: TaskStatus, at: UnixMs) -> Result<CoachingTask>;

    /// An agent's score figures over calls started in `[from, to)` (open bounds when `None`).
    fn agent_scores(
        &self,
        agent: &str,
        from: Option<UnixMs>,
        to: Option<UnixMs>,
    ) -> Result<ScoreStats>;

    /// The task's agent's scores in a window of `window_ms` before and after the task was
    /// created.
    fn task_comparison(&self, task_id: u64, window_ms: i64) -> Result<BeforeAfter> {
        let task = self
            .task(task_id)?
            .ok_or_else(|| StoreError::not_found("coaching task", task_id.to_string()))?;
        let created = task.created_at;
        Ok(BeforeAfter {
            before: self.agent_scores(
                &task.agent,
                Some(created.saturating_sub(window_ms)),
                Some(created),
            )?,
            after: self.agent_scores(
                &task.agent,
                Some(created),
                Some(created.saturating_add(window_ms)),
            )?,
        })
    }

    // -- Reports --------------------------------------------------------------------------------

    /// Figures over the calls matching the query's filter, grouped as asked. Render as CSV with
    /// [`report_csv`].
    fn report(&self, query: &ReportQuery) -> Result<Report>;

    // -- Pack versions (team lead) --------------------------------------------------------------

    /// Publishes a new version. Fails with [`StoreError::VersionConflict`] when
    /// `version.base_version` is not the latest version number (0 = no version yet): two leads
    /// editing the same version cannot silently overwrite each other.
    fn publish_pack(&self, version: &NewPackVersion) -> Result<PackVersion>;

    /// The history, oldest first, without files.
    fn pack_versions(&self) -> Result<Vec<PackVersionInfo>>;

    /// One version with its files and diff.
    fn pack_version(&self, number: u64) -> Result<Option<PackVersion>>;

    /// The newest version, whatever its scope.
    fn latest_pack(&self) -> Result<Option<PackVersion>>;

    /// The newest version that applies to an agent of `team` (scope all, or that team).
    fn latest_pack_for(&self, team: Option<&str>) -> Result<Option<PackVersion>>;

    /// Publishes version `number`'s files (and scope) again as a new version.
    fn rollback_to(&self, number: u64, author: &str, at: UnixMs) -> Result<PackVersion>;

    // -- Users, teams, tokens -------------------------------------------------------------------

    /// Creates a user with an argon2-hashed password. Fails with
    /// [`StoreError::AlreadyExists`] for a taken username.
    fn create_user(&self, user: &NewUser, at: UnixMs) -> Result<User>;

    fn user(&self, username: &str) -> Result<Option<User>>;

    /// All users, sorted by username.
    fn list_users(&self) -> Result<Vec<User>>;

    fn update_user(&self, username: &str, update: &UserUpdate) -> Result<User>;

    /// Replaces a user's password (their tokens stay valid; revoke them if needed).
    fn set_password(&self, username: &str, password: &str) -> Result<()>;

    /// Deletes a user and their tokens; `false` if there was no such user.
    fn delete_user(&self, username: &str) -> Result<bool>;

    /// The user if the password is right and the user is not disabled; `None` otherwise
    /// (unknown user, wrong password or disabled alike).
    fn verify_password(&self, username: &str, password: &str) -> Result<Option<User>>;

    /// Whether there are no users yet (first run: bootstrap an admin).
    fn is_empty_of_users(&self) -> Result<bool>;

    /// Issues a random bearer token (64 hex characters) for the user, valid for `ttl_ms` from
    /// `now`. Only its SHA-256 is stored.
    fn issue_token(&self, username: &str, now: UnixMs, ttl_ms: i64) -> Result<String>;

    /// The user a token belongs to, if the token exists, has not expired at `now` and the user
    /// is not disabled.
    fn user_for_token(&self, token: &str, now: UnixMs) -> Result<Option<User>>;

    /// Revokes one token; `false` if it did not exist.
    fn revoke_token(&self, token: &str) -> Result<bool>;

    /// Revokes every token of a user; returns how many.
    fn revoke_user_tokens(&self, username: &str) -> Result<usize>;

    /// Removes tokens expired at `now`; returns how many.
    fn purge_expired_tokens(&self, now: UnixMs) -> Result<usize>;

    fn create_team(&self, id: &str, name: &str, at: UnixMs) -> Result<Team>;

    /// All teams, sorted by id.
    fn teams(&self) -> Result<Vec<Team>>;

    /// Deletes a team (users and calls keep their team id); `false` if there was none.
    fn delete_team(&self, id: &str) -> Result<bool>;

    // -- Audit log ------------------------------------------------------------------------------

    /// Appends an entry.
    fn audit(&self, entry: &AuditEntry) -> Result<()>;

    /// Entries matching the query, newest first, at most `query.limit`.
    fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>>;

    // -- Retention ------------------------------------------------------------------------------

    /// Deletes every ended call that ended before `cutoff`, with everything about it. Returns
    /// how many calls were deleted. Calls in progress are never purged.
    fn purge_ended_before(&self, cutoff: UnixMs) -> Result<usize>;

    /// Deletes one call with everything about it; `false` if there was no such call.
    fn delete_call(&self, call_id: &str) -> Result<bool>;

    /// One call as a JSON document: the [`CallRecord`] plus a `schema_version` field. Fails
    /// with [`StoreError::NotFound`].
    fn export_call(&self, call_id: &str) -> Result<serde_json::Value>;

    // -- Settings and maintenance ---------------------------------------------------------------

    /// A console setting (e.g. the retention period), if set.
    fn setting(&self, key: &str) -> Result<Option<String>>;

    fn set_setting(&self, key: &str, value: &str) -> Result<()>;

    /// Makes every accepted write durable.
    fn flush(&self) -> Result<()>;
}
