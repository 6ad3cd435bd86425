//! The embedded implementation of [`CallStore`] on sled.
//!
//! One sled tree per kind of record. Everything about a call is keyed by the call id, a NUL
//! byte, then a big-endian suffix (line seq, event time + fingerprint, comment id), so a prefix
//! scan returns one call's items in order and deleting a call is a prefix removal per tree.
//! Values are JSON. A call stored whole ([`CallStore::store_finished_calls`]) has its items
//! packed, one value per kind under the bare `call id` NUL key (see [`bulk`]); the readers
//! expand them, so both forms read the same.
//!
//! A compact [`CallRow`] per call lives in the `rows` tree and in memory ([`RowCache`]); lists
//! and reports scan memory. Rows of ended calls are written in the same sled transaction as the
//! change they reflect; rows of calls in progress live in memory only and are recomputed from
//! the call's data when the store is opened, so a crash never leaves a stale row.

mod accounts;
mod bulk;
mod bundle;
mod cache;
mod calls;
mod console;
mod fast_report;

use crate::admin::*;
use crate::call::*;
use crate::error::{Result, StoreError};
use crate::query::*;
use crate::{CallStore, SCHEMA_VERSION};
use assist_protocol::{CardAction, Event, Summary};
use cache::RowCache;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{TransactionError, Transactional};
use sled::{Db, Tree};
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// When accepted writes reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every write that accepts something (a line, a turn, the end of a call, any console
    /// change) is flushed before the method returns: a crash loses nothing acknowledged.
    #[default]
    EveryWrite,
    /// sled's background flush only (every 500 ms): a crash may lose the last half second.
    /// For batch imports and benchmarks; call [`CallStore::flush`] when done.
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
    db: Db,
    t: Trees,
    cache: RwLock<RowCache>,
    /// Call ids a `store_finished_calls` is writing right now (see `bulk.rs`).
    in_flight: bulk::InFlight,
    /// A password hash of the store's cost, checked for unknown usernames (see `accounts.rs`).
    decoy_hash: std::sync::OnceLock<String>,
}

/// The trees, one per kind of record.
struct Trees {
    /// `schema_version`, counters.
    meta: Tree,
    /// call id -> [`CallMeta`].
    calls: Tree,
    /// call id -> [`CallRow`].
    rows: Tree,
    /// call id, seq -> [`StoredLine`].
    lines: Tree,
    /// call id, t ms, fingerprint -> `Alert`.
    alerts: Tree,
    /// call id, alert id -> [`VerdictRecord`].
    verdicts: Tree,
    /// call id, t ms, fingerprint -> `Emotion`.
    emotions: Tree,
    /// call id, t ms, fingerprint -> [`calls::StoredCard`].
    cards: Tree,
    /// call id, card id -> `CardAction`.
    card_actions: Tree,
    /// call id -> `Summary`.
    summaries: Tree,
    /// call id -> a call stored whole: metadata, summary and items in one value ([`bundle`]).
    bundles: Tree,
    /// call id -> [`ManualScore`].
    manual_scores: Tree,
    /// call id, comment id -> [`Comment`].
    comments: Tree,
    /// username -> [`accounts::UserRecord`].
    users: Tree,
    /// SHA-256 of the token -> [`accounts::TokenRecord`].
    tokens: Tree,
    /// team id -> [`Team`].
    teams: Tree,
    /// task id -> [`CoachingTask`].
    tasks: Tree,
    /// version number -> [`PackVersion`].
    packs: Tree,
    /// time, counter -> [`AuditEntry`].
    audit: Tree,
    /// key -> value.
    settings: Tree,
}

impl Trees {
    fn open(db: &Db) -> sled::Result<Trees> {
        Ok(Trees {
            meta: db.open_tree("meta")?,
            calls: db.open_tree("calls")?,
            rows: db.open_tree("rows")?,
            lines: db.open_tree("lines")?,
            alerts: db.open_tree("alerts")?,
            verdicts: db.open_tree("verdicts")?,
            emotions: db.open_tree("emotions")?,
            cards: db.open_tree("cards")?,
            card_actions: db.open_tree("card_actions")?,
            summaries: db.open_tree("summaries")?,
            bundles: db.open_tree("bundles")?,
            manual_scores: db.open_tree("manual_scores")?,
            comments: db.open_tree("comments")?,
            users: db.open_tree("users")?,
            tokens: db.open_tree("tokens")?,
            teams: db.open_tree("teams")?,
            tasks: db.open_tree("tasks")?,
            packs: db.open_tree("packs")?,
            audit: db.open_tree("audit")?,
            settings: db.open_tree("settings")?,
        })
    }

    /// The tree of a kind of item.
    fn of_kind(&self, kind: bundle::Kind) -> &Tree {
        match kind {
            bundle::Kind::Lines => &self.lines,
            bundle::Kind::Alerts => &self.alerts,
            bundle::Kind::Emotions => &self.emotions,
            bundle::Kind::Cards => &self.cards,
        }
    }

    /// The trees keyed by call id + NUL + suffix.
    fn per_call_prefixed(&self) -> [&Tree; 7] {
        [
            &self.lines,
            &self.alerts,
            &self.verdicts,
            &self.emotions,
            &self.cards,
            &self.card_actions,
            &self.comments,
        ]
    }
}

/// A write of one key in a tree: `None` removes it.
type Write<'a> = (&'a Tree, Vec<u8>, Option<Vec<u8>>);

/// The key of the schema version in the `meta` tree (value: u32 big-endian).
const SCHEMA_KEY: &[u8] = b"schema_version";

impl SledStore {
    /// Opens (creating if missing) the store in `dir` with default options.
    pub fn open(dir: impl AsRef<Path>) -> Result<SledStore> {
        Self::open_with(dir, StoreOptions::default())
    }

    /// Opens (creating if missing) the store in `dir`. Fails with [`StoreError::Locked`] when
    /// another process has it open, [`StoreError::Schema`] when a newer build wrote it,
    /// [`StoreError::Open`] (naming the path) when it cannot be read.
    pub fn open_with(dir: impl AsRef<Path>, options: StoreOptions) -> Result<SledStore> {
        let path = dir.as_ref().to_path_buf();
        let mut config = sled::Config::new().path(&path);
        if let Some(bytes) = options.cache_capacity {
            config = config.cache_capacity(bytes);
        }
        let open_error = |source: sled::Error| match &source {
            sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
                StoreError::Locked { path: path.clone() }
            }
            _ => StoreError::Open {
                path: path.clone(),
                error: source,
            },
        };
        let db = config.open().map_err(open_error)?;
        let t = Trees::open(&db).map_err(open_error)?;
        check_schema(&t, &path)?;
        let store = SledStore {
            path,
            options,
            db,
            t,
            cache: RwLock::new(RowCache::default()),
            in_flight: bulk::InFlight::default(),
            decoy_hash: std::sync::OnceLock::new(),
        };
        store.load_rows()?;
        Ok(store)
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.options
    }

    /// Loads every call's row into memory; rows of calls still in progress are recomputed from
    /// their data (their stored row is only the one written when they began).
    fn load_rows(&self) -> Result<()> {
        let mut rows = Vec::new();
        let mut recomputed = 0usize;
        for item in self.t.rows.iter() {
            let (_, value) = item?;
            let row: CallRow = decode(&value)?;
            if row.status == CallStatus::InProgress {
                match self.read_meta(&row.call_id)? {
                    Some(meta) => {
                        rows.push(self.compute_row(&meta)?);
                        recomputed += 1;
                    }
                    None => {
                        tracing::warn!(call_id = %row.call_id, "row without call metadata skipped")
                    }
                }
            } else {
                rows.push(row);
            }
        }
        let count = rows.len();
        *self.cache_write() = RowCache::from_rows(rows);
        tracing::info!(calls = count, in_progress = recomputed, path = %self.path.display(), "call store opened");
        Ok(())
    }

    fn cache_read(&self) -> RwLockReadGuard<'_, RowCache> {
        self.cache
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn cache_write(&self) -> RwLockWriteGuard<'_, RowCache> {
        self.cache
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Flushes when every write must be durable.
    fn durable(&self) -> Result<()> {
        if self.options.durability == Durability::EveryWrite {
            self.db.flush()?;
        }
        Ok(())
    }

    /// Applies writes to several trees atomically.
    fn atomic(&self, writes: &[Write<'_>]) -> Result<()> {
        let mut trees: Vec<&Tree> = Vec::new();
        let mut ops = Vec::with_capacity(writes.len());
        for (tree, key, value) in writes {
            let index = match trees.iter().position(|t| t.name() == tree.name()) {
                Some(i) => i,
                None => {
                    trees.push(tree);
                    trees.len() - 1
                }
            };
            ops.push((index, key, value));
        }
        let result: std::result::Result<(), TransactionError<()>> =
            trees.as_slice().transaction(|views| {
                for (index, key, value) in &ops {
                    match value {
                        Some(value) => views[*index].insert(key.as_slice(), value.as_slice())?,
                        None => views[*index].remove(key.as_slice())?,
                    };
                }
                Ok(())
            });
        match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Storage(e)) => Err(StoreError::Sled(e)),
            Err(TransactionError::Abort(())) => Err(StoreError::Invalid(
                "a store transaction was aborted".to_string(),
            )),
        }
    }

    /// Increments and returns a named counter in the `meta` tree (starting at 1).
    fn next_id(&self, counter: &str) -> Result<u64> {
        let key = format!("counter/{counter}");
        let value = self.t.meta.update_and_fetch(key.as_bytes(), |old| {
            let current = old.and_then(read_u64).unwrap_or(0);
            Some((current + 1).to_be_bytes().to_vec())
        })?;
        Ok(value.as_deref().and_then(read_u64).unwrap_or(1))
    }
}

/// Writes the schema version into a new store, upgrades an older one, refuses a newer one.
fn check_schema(t: &Trees, path: &Path) -> Result<()> {
    let open_error = |error| StoreError::Open {
        path: path.to_path_buf(),
        error,
    };
    let meta = &t.meta;
    match meta.get(SCHEMA_KEY).map_err(open_error)? {
        None => {
            meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())
                .map_err(open_error)?;
            Ok(())
        }
        Some(raw) => {
            let found = <[u8; 4]>::try_from(raw.as_ref())
                .map(u32::from_be_bytes)
                .unwrap_or(u32::MAX);
            if found > SCHEMA_VERSION || found == 0 {
                return Err(StoreError::Schema {
                    path: path.to_path_buf(),
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            if found < SCHEMA_VERSION {
                // 1 -> 2 added packed items (version 1 has none); 2 -> 3 moves them into
                // bundles. The version is raised only once the data is upgraded.
                let moved = bundle::upgrade_packed_values(t)?;
                meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())
                    .map_err(open_error)?;
                meta.flush().map_err(open_error)?;
                tracing::info!(from = found, to = SCHEMA_VERSION, moved, path = %path.display(), "store schema upgraded");
            }
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Keys and values

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(value)?)
}

fn decode<T: DeserializeOwned>(raw: &[u8]) -> Result<T> {
    Ok(serde_json::from_slice(raw)?)
}

fn read_u64(raw: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(raw).ok().map(u64::from_be_bytes)
}

/// Refuses ids that cannot be keys: empty, too long, or holding NUL (the key separator).
fn check_id(what: &str, id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 200 || id.contains('\0') {
        return Err(StoreError::Invalid(format!(
            "{what} must be 1 to 200 bytes without NUL characters, got {id:?}"
        )));
    }
    Ok(())
}

/// `call id` NUL: the prefix of every per-call key.
fn call_prefix(call_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(call_id.len() + 17);
    key.extend_from_slice(call_id.as_bytes());
    key.push(0);
    key
}

fn call_key(call_id: &str, suffix: &[u8]) -> Vec<u8> {
    let mut key = call_prefix(call_id);
    key.extend_from_slice(suffix);
    key
}

/// The part of a per-call key after the prefix.
fn key_suffix<'k>(key: &'k [u8], call_id: &str) -> &'k [u8] {
    key.get(call_id.len() + 1..).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The trait, delegating to the submodules

impl CallStore for SledStore {
    fn begin_call(&self, meta: &CallMeta) -> Result<bool> {
        self.begin_call_impl(meta)
    }
    fn append_line(&self, call_id: &str, line: &StoredLine) -> Result<bool> {
        self.append_turn_impl(call_id, Some(line), &[])
            .map(|(new_line, _)| new_line)
    }
    fn append_events(&self, call_id: &str, events: &[Event]) -> Result<usize> {
        self.append_turn_impl(call_id, None, events)
            .map(|(_, new_events)| new_events)
    }
    fn append_turn(&self, call_id: &str, line: &StoredLine, events: &[Event]) -> Result<bool> {
        self.append_turn_impl(call_id, Some(line), events)
            .map(|(new_line, _)| new_line)
    }
    fn record_card_action(&self, call_id: &str, card_id: &str, action: CardAction) -> Result<()> {
        self.record_card_action_impl(call_id, card_id, action)
    }
    fn end_call(&self, call_id: &str, summary: &Summary, ended_at: UnixMs) -> Result<()> {
        self.end_call_impl(call_id, summary, ended_at)
    }
    fn store_finished_calls(&self, calls: &[FinishedCall]) -> Result<Vec<bool>> {
        self.store_finished_calls_impl(calls)
    }
    fn call_meta(&self, call_id: &str) -> Result<Option<CallMeta>> {
        self.read_meta(call_id)
    }
    fn last_seq(&self, call_id: &str) -> Result<u64> {
        self.last_seq_impl(call_id)
    }
    fn get_call(&self, call_id: &str) -> Result<Option<CallRecord>> {
        self.get_call_impl(call_id)
    }
    fn call_row(&self, call_id: &str) -> Result<Option<CallRow>> {
        Ok(self.cache_read().get(call_id).cloned())
    }
    fn list_calls(&self, filter: &CallFilter, page: Page) -> Result<CallPage> {
        let cache = self.cache_read();
        let mut total = 0usize;
        let mut rows = Vec::with_capacity(page.limit.min(1000));
        for row in cache.matching(filter) {
            if total >= page.offset && rows.len() < page.limit {
                rows.push(row.clone());
            }
            total += 1;
        }
        Ok(CallPage { total, rows })
    }
    fn add_comment(
        &self,
        call_id: &str,
        line_seq: u64,
        author: &str,
        text: &str,
        at: UnixMs,
    ) -> Result<Comment> {
        self.add_comment_impl(call_id, line_seq, author, text, at)
    }
    fn delete_comment(&self, call_id: &str, comment_id: u64) -> Result<bool> {
        self.delete_comment_impl(call_id, comment_id)
    }
    fn set_verdict(&self, call_id: &str, alert_id: &str, verdict: Option<Verdict>) -> Result<()> {
        self.set_verdict_impl(call_id, alert_id, verdict)
    }
    fn set_manual_score(&self, call_id: &str, score: Option<ManualScore>) -> Result<()> {
        self.set_manual_score_impl(call_id, score)
    }
    fn create_task(&self, task: &NewTask) -> Result<CoachingTask> {
        self.create_task_impl(task)
    }
    fn task(&self, id: u64) -> Result<Option<CoachingTask>> {
        self.t
            .tasks
            .get(id.to_be_bytes())?
            .map(|raw| decode(&raw))
            .transpose()
    }
    fn list_tasks(&self, filter: &TaskFilter) -> Result<Vec<CoachingTask>> {
        self.list_tasks_impl(filter)
    }
    fn set_task_status(&self, id: u64, status: TaskStatus, at: UnixMs) -> Result<CoachingTask> {
        self.set_task_status_impl(id, status, at)
    }
    fn agent_scores(
        &self,
        agent: &str,
        from: Option<UnixMs>,
        to: Option<UnixMs>,
    ) -> Result<ScoreStats> {
        let filter = CallFilter {
            agent: Some(agent.to_string()),
            from,
            to,
            ..CallFilter::default()
        };
        let cache = self.cache_read();
        Ok(crate::report::score_stats(cache.matching(&filter)))
    }
    fn report(&self, query: &ReportQuery) -> Result<Report> {
        Ok(self.cache_read().report(query))
    }
    fn publish_pack(&self, version: &NewPackVersion) -> Result<PackVersion> {
        self.publish_pack_impl(version, None)
    }
    fn pack_versions(&self) -> Result<Vec<PackVersionInfo>> {
        self.pack_versions_impl()
    }
    fn pack_version(&self, number: u64) -> Result<Option<PackVersion>> {
        self.t
            .packs
            .get(number.to_be_bytes())?
            .map(|raw| decode(&raw))
            .transpose()
    }
    fn latest_pack(&self) -> Result<Option<PackVersion>> {
        self.t
            .packs
            .last()?
            .map(|(_, raw)| decode(&raw))
            .transpose()
    }
    fn latest_pack_for(&self, team: Option<&str>) -> Result<Option<PackVersion>> {
        self.latest_pack_for_impl(team)
    }
    fn rollback_to(&self, number: u64, author: &str, at: UnixMs) -> Result<PackVersion> {
        self.rollback_to_impl(number, author, at)
    }
    fn create_user(&self, user: &NewUser, at: UnixMs) -> Result<User> {
        self.create_user_impl(user, at)
    }
    fn user(&self, username: &str) -> Result<Option<User>> {
        Ok(self.user_record(username)?.map(|r| r.user))
    }
    fn list_users(&self) -> Result<Vec<User>> {
        self.list_users_impl()
    }
    fn update_user(&self, username: &str, update: &UserUpdate) -> Result<User> {
        self.update_user_impl(username, update)
    }
    fn set_password(&self, username: &str, password: &str) -> Result<()> {
        self.set_password_impl(username, password)
    }
    fn delete_user(&self, username: &str) -> Result<bool> {
        self.delete_user_impl(username)
    }
    fn verify_password(&self, username: &str, password: &str) -> Result<Option<User>> {
        self.verify_password_impl(username, password)
    }
    fn is_empty_of_users(&self) -> Result<bool> {
        Ok(self.t.users.is_empty())
    }
    fn issue_token(&self, username: &str, now: UnixMs, ttl_ms: i64) -> Result<String> {
        self.issue_token_impl(username, now, ttl_ms)
    }
    fn user_for_token(&self, token: &str, now: UnixMs) -> Result<Option<User>> {
        self.user_for_token_impl(token, now)
    }
    fn revoke_token(&self, token: &str) -> Result<bool> {
        self.revoke_token_impl(token)
    }
    fn revoke_user_tokens(&self, username: &str) -> Result<usize> {
        self.revoke_tokens_where(|record| record.username == username)
    }
    fn purge_expired_tokens(&self, now: UnixMs) -> Result<usize> {
        self.revoke_tokens_where(|record| record.expires_at <= now)
    }
    fn create_team(&self, id: &str, name: &str, at: UnixMs) -> Result<Team> {
        self.create_team_impl(id, name, at)
    }
    fn teams(&self) -> Result<Vec<Team>> {
        self.t.teams.iter().map(|item| decode(&item?.1)).collect()
    }
    fn delete_team(&self, id: &str) -> Result<bool> {
        let removed = self.t.teams.remove(id.as_bytes())?.is_some();
        self.durable()?;
        Ok(removed)
    }
    fn audit(&self, entry: &AuditEntry) -> Result<()> {
        self.audit_impl(entry)
    }
    fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        self.audit_log_impl(query)
    }
    fn purge_ended_before(&self, cutoff: UnixMs) -> Result<usize> {
        self.purge_ended_before_impl(cutoff)
    }
    fn delete_call(&self, call_id: &str) -> Result<bool> {
        let deleted = self.delete_call_data(call_id)?;
        self.durable()?;
        Ok(deleted)
    }
    fn export_call(&self, call_id: &str) -> Result<serde_json::Value> {
        self.export_call_impl(call_id)
    }
    fn setting(&self, key: &str) -> Result<Option<String>> {
        self.t
            .settings
            .get(key.as_bytes())?
            .map(|raw| decode(&raw))
            .transpose()
    }
    fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.t.settings.insert(key.as_bytes(), encode(value)?)?;
        self.durable()
    }
    fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }
}
