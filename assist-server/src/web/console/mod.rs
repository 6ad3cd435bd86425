//! The web console's static files, embedded in the binary.
//!
//! This folder belongs to the console: add a file here and a line to [`ASSETS`]. `/` serves
//! `index.html`; every asset is also served at `/console/<path>`.
//!
//! The console is a dependency-free single-page app (docs/console.md): `i18n.js` (every visible
//! string, Chinese and English), `charts.js` (inline-SVG charts), `app.js` (hash router, views,
//! API calls with the bearer token kept in `sessionStorage`) and `style.css`.

use axum::http::header::{self, HeaderName};

/// What a console page may load and do: its own scripts, styles and API only, no inline script,
/// no framing. The console is written for it (no inline handlers, styles or `javascript:` links).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The response headers of an asset.
pub fn headers(asset: &Asset) -> [(HeaderName, &'static str); 6] {
    [
        (header::CONTENT_TYPE, asset.content_type),
        (header::CACHE_CONTROL, "no-cache"),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ]
}

/// One embedded file.
pub struct Asset {
    /// Path under `/console/` (and `index.html` for `/`).
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the console.
pub const ASSETS: &[Asset] = &[
    Asset {
        path: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_str!("index.html"),
    },
    Asset {
        path: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("style.css"),
    },
    Asset {
        path: "i18n.js",
        content_type: JS,
        body: include_str!("i18n.js"),
    },
    Asset {
        path: "charts.js",
        content_type: JS,
        body: include_str!("charts.js"),
    },
    Asset {
        path: "app.js",
        content_type: JS,
        body: include_str!("app.js"),
    },
];
