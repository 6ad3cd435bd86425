//! The web console's static files, embedded in the binary.
//!
//! This folder belongs to the console: add a file here and a line to [`ASSETS`]. `/` serves
//! `index.html`; every asset is also served at `/console/<path>`.

/// One embedded file.
pub struct Asset {
    /// Path under `/console/` (and `index.html` for `/`).
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
}

/// Every file of the console.
pub const ASSETS: &[Asset] = &[Asset {
    path: "index.html",
    content_type: "text/html; charset=utf-8",
    body: include_str!("index.html"),
}];
