//! Server settings: a flag wins over the environment, which wins over the TOML config file,
//! which wins over the defaults.

use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:7700";
pub const DEFAULT_PACK: &str = "knowledge";
pub const DEFAULT_RETENTION_DAYS: u32 = 365;
pub const DEFAULT_TOKEN_TTL_SECONDS: u64 = 12 * 3600;

/// The TOML config file (`--config assist.toml`). Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub pack: Option<PathBuf>,
    pub log_format: Option<String>,
    /// Minutes a call with no traffic is kept for a reconnect.
    pub idle_call_minutes: Option<u64>,
    /// Seconds a call with no traffic is kept (wins over `idle_call_minutes`).
    pub idle_call_seconds: Option<u64>,
    /// Agent id -> token. Empty: the server runs open (development only).
    #[serde(default)]
    pub agents: HashMap<String, String>,
    /// Where the call store lives.
    pub data_dir: Option<PathBuf>,
    /// Ended calls older than this are purged; 0 keeps them forever.
    pub retention_days: Option<u32>,
    /// How long a login token is valid, in seconds.
    pub token_ttl_seconds: Option<u64>,
    /// The folder batch QC jobs read from (`POST /api/v1/qc/jobs`); unset: no jobs.
    pub batch_dir: Option<PathBuf>,
    /// The Vosk model batch QC jobs transcribe recordings with.
    pub batch_model: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("listen address `{0}` is not HOST:PORT (e.g. 127.0.0.1:7700)")]
    Listen(String),
    #[error("agent token `{0}` is not AGENT=TOKEN")]
    Token(String),
    #[error("log format `{0}` is not `text` or `json`")]
    LogFormat(String),
}

impl FileConfig {
    pub fn read(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Resolved settings for `serve`.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub listen: SocketAddr,
    pub pack: PathBuf,
    pub log_format: LogFormat,
    pub tokens: HashMap<String, String>,
    pub idle_call_ttl: Duration,
    /// `None`: a temporary store, deleted at exit (development only).
    pub data_dir: Option<PathBuf>,
    pub retention_days: u32,
    pub token_ttl: Duration,
    pub batch_dir: Option<PathBuf>,
    pub batch_model: Option<PathBuf>,
}

/// What the command line (and environment, through clap) gave.
#[derive(Debug, Default, Clone)]
pub struct ServeOverrides {
    pub listen: Option<String>,
    pub pack: Option<PathBuf>,
    pub log_format: Option<String>,
    pub agent_tokens: Vec<String>,
    pub data_dir: Option<PathBuf>,
    pub retention_days: Option<u32>,
    pub token_ttl_seconds: Option<u64>,
    pub idle_call_seconds: Option<u64>,
    pub batch_dir: Option<PathBuf>,
    pub batch_model: Option<PathBuf>,
}

impl ServeSettings {
    pub fn resolve(
        overrides: ServeOverrides,
        file: FileConfig,
    ) -> Result<ServeSettings, ConfigError> {
        let listen_text = overrides
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen = listen_text
            .parse()
            .map_err(|_| ConfigError::Listen(listen_text.clone()))?;
        let log_format = match overrides
            .log_format
            .or(file.log_format)
            .as_deref()
            .unwrap_or("text")
        {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => return Err(ConfigError::LogFormat(other.to_string())),
        };
        let mut tokens = file.agents;
        for pair in overrides.agent_tokens {
            let (agent, token) = pair
                .split_once('=')
                .filter(|(a, t)| !a.is_empty() && !t.is_empty())
                .ok_or_else(|| ConfigError::Token(pair.clone()))?;
            tokens.insert(agent.to_string(), token.to_string());
        }
        Ok(ServeSettings {
            listen,
            pack: overrides
                .pack
                .or(file.pack)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_PACK)),
            log_format,
            tokens,
            idle_call_ttl: Duration::from_secs(
                overrides
                    .idle_call_seconds
                    .or(file.idle_call_seconds)
                    .unwrap_or(60 * file.idle_call_minutes.unwrap_or(15))
                    .max(1),
            ),
            data_dir: overrides.data_dir.or(file.data_dir),
            retention_days: overrides
                .retention_days
                .or(file.retention_days)
                .unwrap_or(DEFAULT_RETENTION_DAYS),
            token_ttl: Duration::from_secs(
                overrides
                    .token_ttl_seconds
                    .or(file.token_ttl_seconds)
                    .unwrap_or(DEFAULT_TOKEN_TTL_SECONDS)
                    .max(1),
            ),
            batch_dir: overrides.batch_dir.or(file.batch_dir),
            batch_model: overrides.batch_model.or(file.batch_model),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_defaults_fill_the_rest() {
        let file = FileConfig {
            listen: Some("127.0.0.1:9000".into()),
            pack: Some("/packs/a".into()),
            ..FileConfig::default()
        };
        let overrides = ServeOverrides {
            listen: Some("127.0.0.1:9100".into()),
            agent_tokens: vec!["a1=secret".into()],
            ..ServeOverrides::default()
        };
        let s = ServeSettings::resolve(overrides, file).expect("valid");
        assert_eq!(s.listen.port(), 9100);
        assert_eq!(s.pack, PathBuf::from("/packs/a"));
        assert_eq!(s.tokens.get("a1").map(String::as_str), Some("secret"));
        assert_eq!(s.log_format, LogFormat::Text);
    }

    #[test]
    fn a_bad_listen_address_and_token_are_named() {
        let bad = ServeOverrides {
            listen: Some("localhost".into()),
            ..ServeOverrides::default()
        };
        let err = ServeSettings::resolve(bad, FileConfig::default()).expect_err("no port");
        assert!(err.to_string().contains("localhost"));
        let bad = ServeOverrides {
            agent_tokens: vec!["nobody".into()],
            ..ServeOverrides::default()
        };
        assert!(ServeSettings::resolve(bad, FileConfig::default()).is_err());
    }
}
