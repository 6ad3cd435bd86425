//! Coaching tasks, pack versions and the audit log on sled.

use super::{check_id, decode, encode, read_u64, SledStore};
use crate::admin::*;
use crate::call::UnixMs;
use crate::error::{Result, StoreError};
use similar::TextDiff;
use std::collections::BTreeMap;

impl SledStore {
    // -- Coaching tasks -------------------------------------------------------------------------

    pub(super) fn create_task_impl(&self, new: &NewTask) -> Result<CoachingTask> {
        check_id("agent", &new.agent)?;
        if new.title.trim().is_empty() {
            return Err(StoreError::Invalid(
                "a coaching task needs a title".to_string(),
            ));
        }
        let task = CoachingTask {
            id: self.next_id("task")?,
            agent: new.agent.clone(),
            created_by: new.created_by.clone(),
            title: new.title.clone(),
            note: new.note.clone(),
            call_ids: new.call_ids.clone(),
            due: new.due,
            status: TaskStatus::Open,
            created_at: new.created_at,
            updated_at: new.created_at,
        };
        self.t.tasks.insert(task.id.to_be_bytes(), encode(&task)?)?;
        self.durable()?;
        Ok(task)
    }

    pub(super) fn list_tasks_impl(&self, filter: &TaskFilter) -> Result<Vec<CoachingTask>> {
        let mut tasks = Vec::new();
        for item in self.t.tasks.iter().rev() {
            let task: CoachingTask = decode(&item?.1)?;
            let keep = filter.agent.as_ref().is_none_or(|a| &task.agent == a)
                && filter
                    .created_by
                    .as_ref()
                    .is_none_or(|c| &task.created_by == c)
                && filter.status.is_none_or(|s| task.status == s);
            if keep {
                tasks.push(task);
            }
        }
        Ok(tasks)
    }

    pub(super) fn set_task_status_impl(
        &self,
        id: u64,
        status: TaskStatus,
        at: UnixMs,
    ) -> Result<CoachingTask> {
        let key = id.to_be_bytes();
        loop {
            let raw = self
                .t
                .tasks
                .get(key)?
                .ok_or_else(|| StoreError::not_found("coaching task", id.to_string()))?;
            let mut task: CoachingTask = decode(&raw)?;
            if task.status == status {
                return Ok(task);
            }
            if !task.status.can_become(status) {
                return Err(StoreError::InvalidTransition {
                    from: task.status.as_str(),
                    to: status.as_str(),
                });
            }
            task.status = status;
            task.updated_at = at;
            // Compare-and-swap: a concurrent change makes us re-read and re-check.
            if self
                .t
                .tasks
                .compare_and_swap(key, Some(raw), Some(encode(&task)?))?
                .is_ok()
            {
                self.durable()?;
                return Ok(task);
            }
        }
    }

    // -- Pack versions --------------------------------------------------------------------------

    fn latest_pack_number(&self) -> Result<u64> {
        Ok(self
            .t
            .packs
            .last()?
            .and_then(|(key, _)| read_u64(&key))
            .unwrap_or(0))
    }

    /// Publishes `new` as version `base_version + 1` if `base_version` is still the latest.
    pub(super) fn publish_pack_impl(
        &self,
        new: &NewPackVersion,
        rolled_back_from: Option<u64>,
    ) -> Result<PackVersion> {
        if new.author.trim().is_empty() {
            return Err(StoreError::Invalid(
                "a pack version needs an author".to_string(),
            ));
        }
        if let Some(bad) = new.files.keys().find(|p| !is_relative_path(p)) {
            return Err(StoreError::Invalid(format!(
                "pack file paths must be relative, without `..`: {bad:?}"
            )));
        }
        let current = self.latest_pack_number()?;
        if new.base_version != current {
            return Err(StoreError::VersionConflict {
                expected: new.base_version,
                current,
            });
        }
        let previous = self.pack_version_raw(current)?;
        let empty = BTreeMap::new();
        let version = PackVersion {
            number: current + 1,
            author: new.author.clone(),
            at: new.at,
            scope: new.scope.clone(),
            message: new.message.clone(),
            diff: files_diff(previous.as_ref().map_or(&empty, |p| &p.files), &new.files),
            files: new.files.clone(),
            rolled_back_from,
        };
        // The new number must still be free: whoever wins the race publishes, the other one
        // gets a conflict.
        let won = self
            .t
            .packs
            .compare_and_swap(
                version.number.to_be_bytes(),
                None as Option<&[u8]>,
                Some(encode(&version)?),
            )?
            .is_ok();
        if !won {
            return Err(StoreError::VersionConflict {
                expected: new.base_version,
                current: self.latest_pack_number()?,
            });
        }
        self.durable()?;
        Ok(version)
    }

    fn pack_version_raw(&self, number: u64) -> Result<Option<PackVersion>> {
        if number == 0 {
            return Ok(None);
        }
        self.t
            .packs
            .get(number.to_be_bytes())?
            .map(|raw| decode(&raw))
            .transpose()
    }

    pub(super) fn pack_versions_impl(&self) -> Result<Vec<PackVersionInfo>> {
        self.t
            .packs
            .iter()
            .map(|item| {
                let version: PackVersion = decode(&item?.1)?;
                let (added, removed) = diff_counts(&version.diff);
                Ok(PackVersionInfo {
                    number: version.number,
                    author: version.author,
                    at: version.at,
                    scope: version.scope,
                    message: version.message,
                    rolled_back_from: version.rolled_back_from,
                    added,
                    removed,
                })
            })
            .collect()
    }

    pub(super) fn latest_pack_for_impl(&self, team: Option<&str>) -> Result<Option<PackVersion>> {
        for item in self.t.packs.iter().rev() {
            let version: PackVersion = decode(&item?.1)?;
            if version.scope.applies_to(team) {
                return Ok(Some(version));
            }
        }
        Ok(None)
    }

    pub(super) fn rollback_to_impl(
        &self,
        number: u64,
        author: &str,
        at: UnixMs,
    ) -> Result<PackVersion> {
        let target = self
            .pack_version_raw(number)?
            .ok_or_else(|| StoreError::not_found("pack version", number.to_string()))?;
        // A rollback is an explicit "make it like version n": retry on a concurrent publish.
        loop {
            let request = NewPackVersion {
                base_version: self.latest_pack_number()?,
                author: author.to_string(),
                at,
                scope: target.scope.clone(),
                message: format!("roll back to version {number}"),
                files: target.files.clone(),
            };
            match self.publish_pack_impl(&request, Some(number)) {
                Err(StoreError::VersionConflict { .. }) => continue,
                other => return other,
            }
        }
    }

    // -- Audit log ------------------------------------------------------------------------------

    pub(super) fn audit_impl(&self, entry: &AuditEntry) -> Result<()> {
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&ordered_time(entry.at).to_be_bytes());
        key[8..].copy_from_slice(&self.next_id("audit")?.to_be_bytes());
        self.t.audit.insert(key, encode(entry)?)?;
        self.durable()
    }

    pub(super) fn audit_log_impl(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let low = ordered_time(query.from.unwrap_or(i64::MIN)).to_be_bytes();
        let high = ordered_time(query.to.unwrap_or(i64::MAX)).to_be_bytes();
        let mut entries = Vec::new();
        for item in self.t.audit.range(low.as_slice()..high.as_slice()).rev() {
            if entries.len() >= query.limit {
                break;
            }
            let entry: AuditEntry = decode(&item?.1)?;
            let keep = query.actor.as_ref().is_none_or(|a| &entry.actor == a)
                && query.action.as_ref().is_none_or(|a| &entry.action == a);
            if keep {
                entries.push(entry);
            }
        }
        Ok(entries)
    }
}

/// A time as a u64 that sorts like the i64 (sign bit flipped).
fn ordered_time(at: UnixMs) -> u64 {
    (at as u64) ^ (1 << 63)
}

fn is_relative_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.contains('\0')
        && path.split('/').all(|part| !part.is_empty() && part != "..")
}

/// A unified diff of every file that changed between two file sets, in path order.
fn files_diff(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> String {
    let mut paths: Vec<&String> = old.keys().chain(new.keys()).collect();
    paths.sort();
    paths.dedup();
    let mut out = String::new();
    for path in paths {
        let before = old.get(path).map_or("", String::as_str);
        let after = new.get(path).map_or("", String::as_str);
        if before == after && old.contains_key(path) == new.contains_key(path) {
            continue;
        }
        let a = if old.contains_key(path) {
            format!("a/{path}")
        } else {
            "/dev/null".to_string()
        };
        let b = if new.contains_key(path) {
            format!("b/{path}")
        } else {
            "/dev/null".to_string()
        };
        let diff = TextDiff::from_lines(before, after);
        out.push_str(
            &diff
                .unified_diff()
                .context_radius(3)
                .header(&a, &b)
                .to_string(),
        );
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// Lines added and removed in a unified diff.
fn diff_counts(diff: &str) -> (u32, u32) {
    let mut added = 0;
    let mut removed = 0;
    for line in diff.lines() {
        if line.starts_with("+++") || line.starts_with("---") {
            continue;
        }
        if line.starts_with('+') {
            added += 1;
        } else if line.starts_with('-') {
            removed += 1;
        }
    }
    (added, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_sort_across_zero() {
        assert!(ordered_time(-5) < ordered_time(0));
        assert!(ordered_time(0) < ordered_time(7));
        assert!(ordered_time(i64::MIN) < ordered_time(i64::MAX));
    }

    #[test]
    fn diff_shows_changed_added_and_removed_files() {
        let old = BTreeMap::from([
            ("a.toml".to_string(), "x = 1\ny = 2\n".to_string()),
            ("gone.toml".to_string(), "z = 3\n".to_string()),
        ]);
        let new = BTreeMap::from([
            ("a.toml".to_string(), "x = 1\ny = 5\n".to_string()),
            ("new.toml".to_string(), "w = 4\n".to_string()),
        ]);
        let diff = files_diff(&old, &new);
        assert!(diff.contains("--- a/a.toml\n+++ b/a.toml"), "{diff}");
        assert!(diff.contains("-y = 2\n+y = 5"), "{diff}");
        assert!(diff.contains("--- a/gone.toml\n+++ /dev/null"), "{diff}");
        assert!(diff.contains("--- /dev/null\n+++ b/new.toml"), "{diff}");
        assert_eq!(diff_counts(&diff), (2, 2));
    }

    #[test]
    fn paths_must_stay_inside_the_pack() {
        assert!(is_relative_path("scripts/refund.toml"));
        assert!(!is_relative_path("/etc/passwd"));
        assert!(!is_relative_path("../x"));
        assert!(!is_relative_path("a//b"));
    }
}
