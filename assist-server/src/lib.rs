//! The assist server: live agent-assist sessions over WebSocket, transcript replay and pack
//! checks, all driving the pure engine of `assist-engine`.
//!
//! - [`packs`] reads a knowledge pack folder and compiles it (engine + knowledge index).
//! - [`kb`] is the tantivy knowledge index (jieba for Chinese) behind the engine's
//!   `Knowledge` trait.
//! - [`live`] serves `/ws` (agents) and `/healthz` with axum.
//! - [`replay`] plays a transcript file through the same session engine as the live path.
//! - [`config`] resolves settings from flags, environment and a TOML file.
//!
//! The binary (`src/main.rs`) is a thin CLI over these: `serve`, `replay`, `check-pack`.

pub mod config;
pub mod kb;
pub mod live;
pub mod packs;
pub mod replay;
