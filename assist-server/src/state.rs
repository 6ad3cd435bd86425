//! What the whole server shares: the packs being served, the store and its writer, the live
//! call registry and the settings.
//!
//! Packs: every published pack version has a scope (everyone, or one team). What an agent gets
//! is the newest version whose scope covers the agent's team; [`PackSet`] holds exactly those
//! (one for everyone, plus one per team that has a newer team-only version), compiled and ready.
//! Publishing swaps the set atomically ([`ArcSwap`]) and announces the new version on
//! [`AppState::pack_updates`]; calls in progress switch at their next utterance.

use crate::live::writer::StoreWriter;
use crate::live::{Auth, Call};
use crate::packs::LoadedPack;
use arc_swap::ArcSwap;
use assist_store::{CallStore, PackScope, UnixMs};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

/// One published pack version, compiled.
pub struct ServedPack {
    /// The version number in the store (1, 2, 3...).
    pub number: u64,
    pub scope: PackScope,
    pub loaded: LoadedPack,
}

impl ServedPack {
    /// What agents see as `pack_version` (welcome, pack_updated): the pack's own version and
    /// the published version number, e.g. `2026.11.1+v3`.
    pub fn pack_version(&self) -> String {
        format!("{}+v{}", self.loaded.engine.version(), self.number)
    }
}

/// The pack versions being served: one for everyone, and one per team whose newest version is a
/// team-only one newer than the everyone version.
#[derive(Clone)]
pub struct PackSet {
    global: Arc<ServedPack>,
    teams: HashMap<String, Arc<ServedPack>>,
}

impl PackSet {
    /// A set serving one pack to everyone.
    pub fn new(global: ServedPack) -> PackSet {
        PackSet {
            global: Arc::new(global),
            teams: HashMap::new(),
        }
    }

    /// The pack an agent of `team` gets.
    pub fn for_team(&self, team: Option<&str>) -> &Arc<ServedPack> {
        team.and_then(|t| self.teams.get(t))
            .filter(|p| p.number > self.global.number)
            .unwrap_or(&self.global)
    }

    /// The version served to everyone (agents without a team-only version).
    pub fn global(&self) -> &Arc<ServedPack> {
        &self.global
    }

    /// Every version being served.
    pub fn all(&self) -> impl Iterator<Item = &Arc<ServedPack>> {
        std::iter::once(&self.global).chain(self.teams.values())
    }

    /// The set after publishing `pack` (the newest version).
    pub fn with(&self, pack: Arc<ServedPack>) -> PackSet {
        match &pack.scope {
            PackScope::All => PackSet {
                global: pack,
                teams: HashMap::new(),
            },
            PackScope::Team(team) => {
                let mut next = self.clone();
                next.teams.insert(team.clone(), pack);
                next
            }
        }
    }
}

/// A published version, announced to connected agents.
#[derive(Debug, Clone)]
pub struct PackUpdate {
    pub number: u64,
    pub scope: PackScope,
    /// What the agents are told (`ServedPack::pack_version`).
    pub pack_version: String,
}

/// Service settings (resolved from flags, environment and the config file).
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a call with no traffic is kept before the reaper ends it.
    pub idle_call_ttl: Duration,
    /// How long a login token is valid.
    pub token_ttl: Duration,
    /// Ended calls older than this are purged (0 = keep forever).
    pub retention_days: u32,
    /// The folder batch QC jobs read from; `None`: no jobs.
    pub batch_dir: Option<std::path::PathBuf>,
    /// The Vosk model batch QC jobs transcribe recordings with.
    pub batch_model: Option<std::path::PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            idle_call_ttl: Duration::from_secs(15 * 60),
            token_ttl: Duration::from_secs(12 * 3600),
            retention_days: 365,
            batch_dir: None,
            batch_model: None,
        }
    }
}

/// What every connection and request shares.
pub struct AppState {
    pub packs: ArcSwap<PackSet>,
    /// Static agent tokens from the config (development and load tests).
    pub auth: Auth,
    pub store: Arc<dyn CallStore>,
    /// The live path's writes, batched with one flush per batch.
    pub writer: StoreWriter,
    pub(crate) calls: Mutex<HashMap<String, Arc<Mutex<Call>>>>,
    /// Pack versions published while running.
    pub pack_updates: broadcast::Sender<PackUpdate>,
    pub settings: Settings,
    /// Publishes (and rollbacks) one at a time: check, store, swap, announce.
    pub publish_lock: tokio::sync::Mutex<()>,
    /// When the retention purge last ran.
    pub last_purge: Mutex<Option<UnixMs>>,
    /// Failed sign-ins per username.
    pub login_throttle: crate::web::throttle::LoginThrottle,
    /// Batch QC jobs: this run's and those remembered in the store.
    pub batch_jobs: crate::web::batch::BatchJobs,
}

impl AppState {
    pub fn new(
        packs: PackSet,
        auth: Auth,
        store: Arc<dyn CallStore>,
        settings: Settings,
    ) -> Arc<Self> {
        let (pack_updates, _) = broadcast::channel(64);
        let batch_jobs = crate::web::batch::BatchJobs::remembered(&*store);
        Arc::new(AppState {
            packs: ArcSwap::from_pointee(packs),
            auth,
            writer: StoreWriter::start(Arc::clone(&store)),
            store,
            calls: Mutex::new(HashMap::new()),
            pack_updates,
            settings,
            publish_lock: tokio::sync::Mutex::new(()),
            last_purge: Mutex::new(None),
            login_throttle: Default::default(),
            batch_jobs,
        })
    }

    /// Serves `pack` (the newest published version) from now on and tells connected agents.
    pub fn publish(&self, pack: ServedPack) {
        let pack = Arc::new(pack);
        let update = PackUpdate {
            number: pack.number,
            scope: pack.scope.clone(),
            pack_version: pack.pack_version(),
        };
        let next = self.packs.load().with(pack);
        self.packs.store(Arc::new(next));
        // No receiver (no agent connected) is not an error.
        let _ = self.pack_updates.send(update);
    }
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> UnixMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as UnixMs)
}
