//! Batch QC jobs on the running server: `POST /api/v1/qc/jobs` inspects recordings, chat logs
//! and transcripts under the server's batch folder (`serve --batch-dir`) with the published
//! pack, into the server's own call store, while agents keep being served.
//!
//! `assist-server qc` cannot open a data dir that a running server holds (sled locks it), so
//! this is how a QA manager inspects the day's recordings without stopping the live service.
//! A job is the `qc` pipeline itself ([`crate::qc::pipeline::run`]: same readers, engine,
//! resume, per-item problems and summary) with **one** worker at nice 10, so the live path
//! keeps a core and wins the other; one job runs at a time. Paths are relative to the batch folder and may not leave it.
//! The last [`KEPT_JOBS`] jobs are remembered in the store (a setting, written when a job
//! starts and when it ends), so the list survives a restart; a job the server stopped under
//! shows as `interrupted`, and the same job started again skips what it stored.

use super::auth::Caller;
use super::error::{ApiError, Body};
use super::{audit, mutate};
use crate::qc::pipeline::{run, AudioConfig, QcConfig};
use crate::qc::report::QcWatch;
use crate::qc::transcript::ReadOptions;
use crate::state::{now_ms, AppState};
use assist_engine::Knowledge;
use assist_store::{CallStore, Role, UnixMs};
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Finished jobs kept for `GET /api/v1/qc/jobs` (the oldest go first).
pub const KEPT_JOBS: usize = 50;

/// A job's default pace, conversations per second: what keeps the live path's acks within
/// their latency target while a job writes (BENCHMARKS.md, section 2).
pub const DEFAULT_MAX_RATE: f64 = 200.0;

/// The audit action of a started job.
pub const AUDIT_QC_JOB: &str = "qc_job";

/// The audit action of a stopped job.
pub const AUDIT_QC_JOB_STOP: &str = "qc_job_stop";

/// The setting that remembers the jobs: a JSON array of [`JobView`]s, newest first.
const JOBS_SETTING: &str = "qc_jobs";

/// The jobs this server ran since it started, and those remembered from before.
#[derive(Default)]
pub struct BatchJobs {
    jobs: Mutex<Vec<Arc<Job>>>,
    /// Jobs of earlier runs of the server, newest first.
    earlier: Vec<JobView>,
}

impl BatchJobs {
    /// The jobs remembered in the store. A job that was running when the server stopped is
    /// `interrupted`. An unreadable record is logged and forgotten: it must not stop the server.
    pub fn remembered(store: &dyn CallStore) -> BatchJobs {
        let earlier = match store.setting(JOBS_SETTING) {
            Ok(Some(text)) => match serde_json::from_str::<Vec<JobView>>(&text) {
                Ok(views) => views,
                Err(e) => {
                    tracing::warn!(error = %e, "the remembered QC jobs are unreadable; starting a new list");
                    Vec::new()
                }
            },
            Ok(None) => Vec::new(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the remembered QC jobs");
                Vec::new()
            }
        };
        let earlier = earlier
            .into_iter()
            .map(|mut view| {
                if matches!(view.state, JobState::Running) {
                    view.state = JobState::Interrupted;
                    view.stopping = false;
                }
                view
            })
            .collect();
        BatchJobs {
            jobs: Mutex::default(),
            earlier,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Arc<Job>>> {
        self.jobs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every job, newest first: this run's, then the remembered ones, [`KEPT_JOBS`] at most.
    fn views(&self) -> Vec<JobView> {
        let current: Vec<JobView> = self.lock().iter().rev().map(|j| j.view()).collect();
        current
            .into_iter()
            .chain(self.earlier.iter().cloned())
            .take(KEPT_JOBS)
            .collect()
    }

    fn view(&self, id: u64) -> Option<JobView> {
        if let Some(job) = self.job(id) {
            return Some(job.view());
        }
        self.earlier.iter().find(|v| v.id == id).cloned()
    }

    fn job(&self, id: u64) -> Option<Arc<Job>> {
        self.lock().iter().find(|j| j.id == id).cloned()
    }

    /// The next job's number: after every job this run and the remembered ones.
    fn next_id(&self, jobs: &[Arc<Job>]) -> u64 {
        let current = jobs.last().map(|j| j.id);
        let earlier = self.earlier.first().map(|v| v.id);
        current.max(earlier).map_or(1, |id| id + 1)
    }

    /// Writes the list to the store; a failure is logged (the jobs themselves are unaffected).
    fn remember(&self, store: &dyn CallStore) {
        let written = serde_json::to_string(&self.views())
            .map_err(|e| e.to_string())
            .and_then(|text| {
                store
                    .set_setting(JOBS_SETTING, &text)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot remember the QC jobs in the store");
        }
    }
}

/// One job: what was asked, and its progress.
struct Job {
    id: u64,
    paths: Vec<String>,
    force: bool,
    max_rate: f64,
    requested_by: String,
    pack: String,
    started_at: UnixMs,
    watch: Arc<Mutex<QcWatch>>,
    /// Set by `POST /api/v1/qc/jobs/{id}/stop`.
    stop: Arc<AtomicBool>,
    end: Mutex<Option<JobEnd>>,
}

struct JobEnd {
    finished_at: UnixMs,
    /// The run's own failure (the store refused writes...); per-item problems are in the
    /// summary.
    error: Option<String>,
}

/// `POST /api/v1/qc/jobs` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewJob {
    /// Files and folders relative to the batch folder (`"."`: all of it).
    pub paths: Vec<String>,
    /// Inspect again what the store already has.
    #[serde(default)]
    pub force: bool,
    /// At most this many conversations per second (default [`DEFAULT_MAX_RATE`]).
    #[serde(default)]
    pub max_rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Done,
    /// Stopped by an admin: what it inspected is stored; the same job again goes on from there.
    Stopped,
    Failed,
    /// The server stopped while it ran: what it inspected is stored; the same job again goes
    /// on from there. Its counts are those of when it started.
    Interrupted,
}

/// A job as the API shows it (and as the store remembers it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobView {
    pub id: u64,
    pub state: JobState,
    /// A stop was asked for and the job is winding down (still `running`).
    pub stopping: bool,
    pub paths: Vec<String>,
    pub force: bool,
    /// Conversations per second at most.
    pub max_rate: f64,
    pub requested_by: String,
    /// The pack the job inspects with (`name version`).
    pub pack: String,
    pub started_at: UnixMs,
    pub finished_at: Option<UnixMs>,
    pub error: Option<String>,
    /// Input bytes read of all (recordings count when transcribed).
    pub bytes_read: u64,
    pub bytes_total: u64,
    /// The counts so far: what `qc --json` prints (inspected, skipped, failed, bad rows, hits
    /// by category and rule, the first problems with their locations...).
    pub summary: crate::qc::report::QcSummary,
}

impl Job {
    fn view(&self) -> JobView {
        let watch = lock(&self.watch).clone();
        let end = self
            .end
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (state, finished_at, error) = match &*end {
            None => (JobState::Running, None, None),
            Some(end) => (
                if end.error.is_some() {
                    JobState::Failed
                } else if watch.summary.stopped {
                    JobState::Stopped
                } else {
                    JobState::Done
                },
                Some(end.finished_at),
                end.error.clone(),
            ),
        };
        JobView {
            id: self.id,
            stopping: finished_at.is_none() && self.stop.load(Ordering::Relaxed),
            state,
            paths: self.paths.clone(),
            force: self.force,
            max_rate: self.max_rate,
            requested_by: self.requested_by.clone(),
            pack: self.pack.clone(),
            started_at: self.started_at,
            finished_at,
            error,
            bytes_read: watch.bytes_read,
            bytes_total: watch.bytes_total,
            summary: watch.summary,
        }
    }

    fn running(&self) -> bool {
        self.end
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_none()
    }
}

fn lock(watch: &Mutex<QcWatch>) -> MutexGuard<'_, QcWatch> {
    watch
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Debug, Serialize)]
pub struct JobList {
    /// Newest first.
    pub jobs: Vec<JobView>,
}

/// `GET /api/v1/qc/jobs`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<JobList>, ApiError> {
    caller.require(&[Role::Admin])?;
    Ok(Json(JobList {
        jobs: state.batch_jobs.views(),
    }))
}

/// `GET /api/v1/qc/jobs/{id}`.
pub async fn get_one(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<JobView>, ApiError> {
    caller.require(&[Role::Admin])?;
    let view = id
        .parse::<u64>()
        .ok()
        .and_then(|id| state.batch_jobs.view(id))
        .ok_or_else(|| ApiError::not_found("qc job"))?;
    Ok(Json(view))
}

/// `POST /api/v1/qc/jobs/{id}/stop`: 202 with the job, which stops reading at once, stores
/// what it read and ends as `stopped`; 409 when it is not running.
pub async fn stop(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    UrlPath(id): UrlPath<String>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    caller.require(&[Role::Admin])?;
    let id = id
        .parse::<u64>()
        .map_err(|_| ApiError::not_found("qc job"))?;
    let Some(job) = state.batch_jobs.job(id) else {
        return match state.batch_jobs.view(id) {
            Some(_) => Err(ApiError::new(
                StatusCode::CONFLICT,
                "job_not_running",
                format!("QC job {id} has already ended"),
            )),
            None => Err(ApiError::not_found("qc job")),
        };
    };
    if !job.running() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "job_not_running",
            format!("QC job {} has already ended", job.id),
        ));
    }
    if !job.stop.swap(true, Ordering::Relaxed) {
        let (actor, target) = (caller.name().to_string(), format!("qc_job@{}", job.id));
        mutate(&state, move |store| {
            audit(store, &actor, AUDIT_QC_JOB_STOP, &target, "")
        })
        .await?;
        tracing::info!(job = job.id, by = caller.name(), "qc job stopping");
    }
    Ok((StatusCode::ACCEPTED, Json(job.view())))
}

/// `POST /api/v1/qc/jobs`: 202 with the job; its progress at `GET /api/v1/qc/jobs/{id}`.
pub async fn start(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<NewJob>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    caller.require(&[Role::Admin])?;
    let Some(root) = state.settings.batch_dir.clone() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "batch_off",
            "this server has no batch folder: start it with --batch-dir DIR (or batch_dir in the config) to run QC jobs",
        ));
    };
    let paths = resolve_paths(&root, &body.paths)?;
    let max_rate = body.max_rate.unwrap_or(DEFAULT_MAX_RATE);
    if !(max_rate.is_finite() && max_rate > 0.0) {
        return Err(ApiError::invalid(
            "max_rate must be a number of conversations per second above 0",
        ));
    }

    let served = Arc::clone(state.packs.load().global());
    let pack = served.pack_version();
    let job = {
        let mut jobs = state.batch_jobs.lock();
        if let Some(running) = jobs.iter().find(|j| j.running()) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "job_running",
                format!(
                    "QC job {} is still running: one job at a time (see GET /api/v1/qc/jobs/{})",
                    running.id, running.id
                ),
            ));
        }
        let id = state.batch_jobs.next_id(&jobs);
        let job = Arc::new(Job {
            id,
            paths: body.paths.clone(),
            force: body.force,
            max_rate,
            requested_by: caller.name().to_string(),
            pack: pack.clone(),
            started_at: now_ms(),
            watch: Arc::new(Mutex::new(QcWatch::default())),
            stop: Arc::new(AtomicBool::new(false)),
            end: Mutex::new(None),
        });
        jobs.push(Arc::clone(&job));
        let finished = jobs.len().saturating_sub(KEPT_JOBS);
        jobs.drain(..finished);
        job
    };

    let remembering = Arc::clone(&state);
    tokio::task::spawn_blocking(move || remembering.batch_jobs.remember(&*remembering.store))
        .await
        .map_err(ApiError::internal)?;

    let detail = format!("{} (force: {})", body.paths.join(", "), body.force);
    let (actor, target) = (caller.name().to_string(), format!("qc_job@{}", job.id));
    mutate(&state, move |store| {
        audit(store, &actor, AUDIT_QC_JOB, &target, &detail)
    })
    .await?;

    let config = QcConfig {
        paths,
        read: ReadOptions::default(),
        audio: AudioConfig {
            model: state.settings.batch_model.clone(),
            ..AudioConfig::default()
        },
        engine: Arc::clone(&served.loaded.engine),
        knowledge: Arc::clone(&served.loaded.knowledge) as Arc<dyn Knowledge>,
        pack_label: pack,
        store: Some(Arc::clone(&state.store)),
        force: body.force,
        // One worker: the live path keeps the other core.
        jobs: 1,
        cards: false,
        progress: false,
        print_problems: false,
        watch: Some(Arc::clone(&job.watch)),
        max_rate: Some(max_rate),
        stop: Some(Arc::clone(&job.stop)),
    };
    let running = Arc::clone(&job);
    let server = Arc::clone(&state);
    let spawned = std::thread::Builder::new()
        .name(format!("qc-job-{}", job.id))
        .spawn(move || {
            lower_priority();
            tracing::info!(job = running.id, paths = ?running.paths, "qc job started");
            let error = match run(config) {
                Ok(summary) => {
                    tracing::info!(
                        job = running.id,
                        inspected = summary.inspected,
                        skipped = summary.skipped,
                        failed = summary.failed,
                        bad_rows = summary.bad_rows,
                        "qc job done"
                    );
                    None
                }
                Err(e) => {
                    tracing::error!(job = running.id, error = %format!("{e:#}"), "qc job failed");
                    Some(format!("{e:#}"))
                }
            };
            *running
                .end
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(JobEnd {
                finished_at: now_ms(),
                error,
            });
            server.batch_jobs.remember(&*server.store);
        });
    if let Err(e) = spawned {
        *job.end.lock().unwrap_or_else(|p| p.into_inner()) = Some(JobEnd {
            finished_at: now_ms(),
            error: Some(format!("cannot start the job's thread: {e}")),
        });
        return Err(ApiError::internal(e));
    }
    Ok((StatusCode::ACCEPTED, Json(job.view())))
}

/// Lowers the calling thread's CPU priority to nice 10, so that the live path's threads win
/// when both want a core; the threads it starts afterwards (the pipeline's reader and worker)
/// inherit it (on Linux, nice is per thread). Elsewhere a no-op.
#[allow(unsafe_code)] // One FFI call into libc, below.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        extern "C" {
            fn setpriority(which: i32, who: u32, prio: i32) -> i32;
        }
        const PRIO_PROCESS: i32 = 0;
        // SAFETY: setpriority takes plain integers and no pointers; `who` 0 is the calling
        // thread (Linux). Raising one's own nice value needs no privilege.
        let result = unsafe { setpriority(PRIO_PROCESS, 0, 10) };
        if result != 0 {
            tracing::warn!(error = %std::io::Error::last_os_error(), "qc job: cannot lower its CPU priority");
        }
    }
}

/// The job's paths inside the batch folder: relative, no `..`, existing, and (symlinks
/// followed) still inside it. Every bad path is named in the error's details.
fn resolve_paths(root: &Path, paths: &[String]) -> Result<Vec<PathBuf>, ApiError> {
    if paths.is_empty() {
        return Err(ApiError::invalid(
            "paths is empty: name files or folders of the batch folder (\".\" for all of it)",
        ));
    }
    let root = root.canonicalize().map_err(|e| {
        ApiError::new(
            StatusCode::CONFLICT,
            "batch_off",
            format!("the batch folder {} cannot be read: {e}", root.display()),
        )
    })?;
    let mut resolved = Vec::new();
    let mut problems = Vec::new();
    for (index, path) in paths.iter().enumerate() {
        match resolve_one(&root, path) {
            Ok(p) => resolved.push(p),
            Err(message) => {
                problems.push(serde_json::json!({"index": index, "path": path, "message": message}))
            }
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid(format!(
            "{} path(s) cannot be used: see details",
            problems.len()
        ))
        .with_details(serde_json::Value::Array(problems)));
    }
    Ok(resolved)
}

fn resolve_one(root: &Path, path: &str) -> Result<PathBuf, String> {
    let relative = Path::new(path);
    if path.trim().is_empty() {
        return Err("an empty path".into());
    }
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err("paths are relative to the batch folder, without `..`".into());
    }
    let full = root
        .join(relative)
        .canonicalize()
        .map_err(|e| format!("not found in the batch folder ({e})"))?;
    if !full.starts_with(root) {
        return Err("leads out of the batch folder (a link)".into());
    }
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_batch_folder() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("batch");
        std::fs::create_dir_all(root.join("day1")).expect("mkdir");
        std::fs::write(root.join("day1/chats.jsonl"), "").expect("write");
        std::fs::write(dir.path().join("secret.csv"), "").expect("write");
        let root = root.canonicalize().expect("canonical");

        assert_eq!(
            resolve_one(&root, "day1/chats.jsonl").expect("inside"),
            root.join("day1/chats.jsonl")
        );
        assert_eq!(resolve_one(&root, ".").expect("all"), root);
        for bad in [
            "../secret.csv",
            "/etc/passwd",
            "day1/../../secret.csv",
            "",
            "nope",
        ] {
            assert!(resolve_one(&root, bad).is_err(), "{bad:?} refused");
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("secret.csv"), root.join("link.csv"))
                .expect("symlink");
            let err = resolve_one(&root, "link.csv").expect_err("a link out");
            assert!(err.contains("out of the batch folder"), "{err}");
        }
    }
}
