//! Starting the service: the store, the first-run admin, the packs to serve.

use crate::packs::{compile_pack, read_pack_map, PackLoadError};
use crate::state::{now_ms, PackSet, ServedPack};
use assist_store::{
    audit_action, AuditEntry, CallStore, Durability, NewPackVersion, NewUser, PackScope, Role,
    SledStore, StoreError, StoreOptions,
};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    // These messages include the pack error (not chained as a source: it would print twice).
    #[error("loading the pack in {dir}: {error}")]
    Pack { dir: String, error: PackLoadError },
    #[error("published pack version {number} no longer compiles with this build: {error}")]
    StoredPack { number: u64, error: PackLoadError },
    #[error("cannot generate a password: {0}")]
    Random(String),
}

/// Opens the call store in `dir`. The live path flushes once per batch of writes and the API
/// after every change, so sled's own flushing is left periodic.
pub fn open_store(dir: &Path) -> Result<Arc<dyn CallStore>, StoreError> {
    let store = SledStore::open_with(
        dir,
        StoreOptions {
            durability: Durability::Periodic,
            ..StoreOptions::default()
        },
    )?;
    Ok(Arc::new(store))
}

/// The first run: with no user in the store, creates `admin` with `password` (from
/// `ASSIST_ADMIN_PASSWORD`), or a generated one, which is returned so it can be shown once.
pub fn bootstrap_admin(
    store: &dyn CallStore,
    password: Option<String>,
) -> Result<Option<String>, SetupError> {
    if !store.is_empty_of_users()? {
        return Ok(None);
    }
    let (password, generated) = match password.filter(|p| !p.is_empty()) {
        Some(p) => (p, false),
        None => (generate_password()?, true),
    };
    store.create_user(
        &NewUser {
            username: "admin".into(),
            display_name: "Administrator".into(),
            password: password.clone(),
            role: Role::Admin,
            team: None,
        },
        now_ms(),
    )?;
    store.audit(&AuditEntry {
        at: now_ms(),
        actor: "system".into(),
        action: audit_action::USER_CREATED.into(),
        target: "admin".into(),
        detail: "first-run bootstrap".into(),
    })?;
    store.flush()?;
    Ok(generated.then_some(password))
}

/// A random password: 20 characters from an unambiguous alphabet.
pub fn generate_password() -> Result<String, SetupError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).map_err(|e| SetupError::Random(e.to_string()))?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect())
}

/// The packs to serve: the published versions in the store, or (first run) the pack folder,
/// recorded as version 1 by `system`.
pub fn initial_packs(store: &dyn CallStore, pack_dir: &Path) -> Result<PackSet, SetupError> {
    let versions = store.pack_versions()?;
    let global = versions
        .iter()
        .filter(|v| v.scope == PackScope::All)
        .map(|v| v.number)
        .max();
    let Some(global) = global else {
        let files = read_pack_map(pack_dir).map_err(|error| SetupError::Pack {
            dir: pack_dir.display().to_string(),
            error,
        })?;
        let loaded = compile_pack(&files, &pack_dir.display().to_string()).map_err(|error| {
            SetupError::Pack {
                dir: pack_dir.display().to_string(),
                error,
            }
        })?;
        let latest = store.latest_pack()?.map_or(0, |v| v.number);
        let version = store.publish_pack(&NewPackVersion {
            base_version: latest,
            author: "system".into(),
            at: now_ms(),
            scope: PackScope::All,
            message: format!("pack folder {} at first start", pack_dir.display()),
            files,
        })?;
        store.flush()?;
        tracing::info!(version = version.number, dir = %pack_dir.display(), "recorded the pack folder as the first published version");
        return Ok(PackSet::new(ServedPack {
            number: version.number,
            scope: PackScope::All,
            loaded,
        }));
    };
    let mut newest_per_team: HashMap<String, u64> = HashMap::new();
    for v in &versions {
        if let PackScope::Team(team) = &v.scope {
            if v.number > global {
                let n = newest_per_team.entry(team.clone()).or_insert(0);
                *n = (*n).max(v.number);
            }
        }
    }
    let mut set = PackSet::new(served(store, global)?);
    let mut teams: Vec<u64> = newest_per_team.into_values().collect();
    teams.sort_unstable();
    for number in teams {
        set = set.with(Arc::new(served(store, number)?));
    }
    if pack_dir.exists() {
        tracing::info!(
            version = set.global().number,
            "serving the published pack versions from the store; the pack folder is used only on a first start"
        );
    }
    Ok(set)
}

fn served(store: &dyn CallStore, number: u64) -> Result<ServedPack, SetupError> {
    let version = store.pack_version(number)?.ok_or(StoreError::NotFound {
        what: "pack version",
        id: number.to_string(),
    })?;
    let loaded = compile_pack(&version.files, &format!("version {number}"))
        .map_err(|error| SetupError::StoredPack { number, error })?;
    Ok(ServedPack {
        number,
        scope: version.scope,
        loaded,
    })
}

/// Everything `serve` sets up before listening, on the store in `data_dir`: the store, the
/// first admin (`admin_password`, or generated), the packs, the calls in progress at the last
/// stop. For `serve`, benchmarks and tests.
pub fn service(
    data_dir: &Path,
    pack_dir: &Path,
    auth: crate::live::Auth,
    settings: crate::state::Settings,
    admin_password: Option<String>,
) -> Result<(Arc<crate::state::AppState>, Option<String>), SetupError> {
    let store = open_store(data_dir)?;
    let generated = bootstrap_admin(store.as_ref(), admin_password)?;
    let packs = initial_packs(store.as_ref(), pack_dir)?;
    let state = crate::state::AppState::new(packs, auth, store, settings);
    let resumed = state.resume_open_calls()?;
    if resumed > 0 {
        tracing::info!(
            resumed,
            "calls in progress at the last stop are back in the registry"
        );
    }
    Ok((state, generated))
}
