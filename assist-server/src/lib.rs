//! The assist server: live agent-assist sessions over WebSocket, transcript replay and pack
//! checks, all driving the pure engine of `assist-engine`.
//!
//! - [`packs`] reads a knowledge pack folder and compiles it (engine + knowledge index).
//! - [`kb`] is the tantivy knowledge index (jieba for Chinese) behind the engine's
//!   `Knowledge` trait.
//! - [`live`] serves `/ws` (agents) and `/healthz` with axum, and writes every call to the
//!   store as it happens (one writer thread, one flush per batch, acks after the flush).
//! - [`replay`] plays a transcript file through the same session engine as the live path.
//! - [`qc`] inspects recordings, chat logs and transcripts in bulk (`qc`), and re-scores stored
//!   conversations under a candidate pack (`qc --rescore`).
//! - [`web`] is the coaching service over HTTP: the JSON API under `/api/v1/` (docs/api.md),
//!   its OpenAPI document and the web console, with roles and bearer tokens.
//! - [`state`] is what all of it shares: the packs being served (swapped on publish), the call
//!   store (`assist-store`, behind its trait) and the live call registry.
//! - [`setup`] opens the store, creates the first admin and picks the packs to serve.
//! - [`config`] resolves settings from flags, environment and a TOML file.
//!
//! The binary (`src/main.rs`) is a thin CLI over these: `serve`, `replay`, `check-pack`,
//! `user add`.

pub mod config;
pub mod kb;
pub mod live;
pub mod packs;
pub mod qc;
pub mod replay;
pub mod setup;
pub mod state;
pub mod web;
