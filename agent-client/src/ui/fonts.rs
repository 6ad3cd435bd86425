//! egui has no CJK glyphs of its own: load one system CJK font as a fallback.

use eframe::egui;
use std::path::PathBuf;
use std::sync::Arc;

/// Where Debian/Ubuntu, Fedora and common installs put a CJK font.
const CANDIDATES: &[&str] = &[
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/System/Library/Fonts/PingFang.ttc",
    "C:\\Windows\\Fonts\\msyh.ttc",
];

/// The CJK font to use: `ASSIST_CJK_FONT`, or the first candidate that exists.
pub fn find_cjk_font() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("ASSIST_CJK_FONT") {
        let path = PathBuf::from(path);
        if path.exists() {
            return Some(path);
        }
        tracing::warn!(path = %path.display(), "ASSIST_CJK_FONT does not exist");
    }
    CANDIDATES.iter().map(PathBuf::from).find(|p| p.exists())
}

/// Installs the CJK font as a fallback for both families. Returns the font used, or None (and
/// the overlay shows a message) when there is none.
pub fn install(ctx: &egui::Context) -> Option<PathBuf> {
    let path = find_cjk_font()?;
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the CJK font");
            return None;
        }
    };
    let mut fonts = egui::FontDefinitions::default();
    fonts.font_data.insert(
        "cjk".to_owned(),
        Arc::new(egui::FontData::from_owned(bytes)),
    );
    for family in [egui::FontFamily::Proportional, egui::FontFamily::Monospace] {
        fonts
            .families
            .entry(family)
            .or_default()
            .push("cjk".to_owned());
    }
    ctx.set_fonts(fonts);
    Some(path)
}
