//! The one error type of the store, with a stable code per variant for the HTTP layer.

use std::path::PathBuf;

/// Everything a store operation can fail with.
///
/// [`StoreError::code`] gives a stable snake_case code a client may branch on; the `Display`
/// text is for people and says what to do where there is something to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The call, user, task, pack version... does not exist.
    #[error("{what} {id:?} not found")]
    NotFound { what: &'static str, id: String },

    /// A user, team... with that id already exists.
    #[error("{what} {id:?} already exists")]
    AlreadyExists { what: &'static str, id: String },

    /// `publish_pack` was given a base version that is no longer the latest: someone else
    /// published in between. Reload version `current`, merge, and publish again.
    #[error("pack version conflict: your edit is based on version {expected}, but version {current} is now the latest; reload, merge and publish again")]
    VersionConflict { expected: u64, current: u64 },

    /// A coaching task status change that is not allowed (open -> acknowledged -> done only).
    #[error("a coaching task cannot go from {from} to {to}")]
    InvalidTransition {
        from: &'static str,
        to: &'static str,
    },

    /// An argument is not acceptable (empty username, score above 100, ended call...).
    #[error("{0}")]
    Invalid(String),

    /// The data directory was written by a newer (or unknown) schema.
    #[error("the store at {} has schema version {found}, this build reads up to {supported}; upgrade assist-server (or point it at another data dir)", path.display())]
    Schema {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    /// The data directory is locked by another process.
    #[error("the store at {} is locked: is another assist-server running on this data dir?", path.display())]
    Locked { path: PathBuf },

    /// The data directory could not be opened or read (permissions, corruption...).
    /// The message includes sled's error (not chained as a source: it would print twice).
    #[error("cannot use the store at {}: {error}", path.display())]
    Open { path: PathBuf, error: sled::Error },

    /// A read or write failed after opening.
    #[error("store I/O error: {0}")]
    Sled(#[from] sled::Error),

    /// A stored record could not be encoded or decoded.
    #[error("store serialization error: {0}")]
    Serialization(String),

    /// Hashing a password failed.
    #[error("password hashing failed: {0}")]
    Password(String),
}

impl StoreError {
    /// A stable code for this error, e.g. for an HTTP API's error body.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::NotFound { .. } => "not_found",
            StoreError::AlreadyExists { .. } => "already_exists",
            StoreError::VersionConflict { .. } => "version_conflict",
            StoreError::InvalidTransition { .. } => "invalid_transition",
            StoreError::Invalid(_) => "invalid",
            StoreError::Schema { .. } => "schema_version",
            StoreError::Locked { .. } => "store_locked",
            StoreError::Open { .. } => "store_open",
            StoreError::Sled(_) => "store_io",
            StoreError::Serialization(_) => "store_serialization",
            StoreError::Password(_) => "password_hash",
        }
    }

    pub(crate) fn not_found(what: &'static str, id: impl Into<String>) -> Self {
        StoreError::NotFound {
            what,
            id: id.into(),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Serialization(e.to_string())
    }
}

/// The store's result type.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
