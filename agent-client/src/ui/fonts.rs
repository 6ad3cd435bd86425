//! egui has no CJK glyphs of its own: load one system CJK font as a fallback.

use eframe::egui;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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
    let bytes = match font_bytes(&path) {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the CJK font");
            return None;
        }
    };
    let mut fonts = egui::FontDefinitions::default();
    fonts.font_data.insert(
        "cjk".to_owned(),
        Arc::new(egui::FontData::from_static(bytes)),
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

/// The font file's bytes for the life of the process, mapped rather than read: a CJK font is
/// 15–20 MB, and egui copies fonts it is given as owned bytes, so reading it cost twice that in
/// private memory. Mapped, only the pages of the glyphs drawn are resident, and they are the
/// page cache's, shared with every other program using the font. Each file is mapped once.
fn font_bytes(path: &Path) -> std::io::Result<&'static [u8]> {
    static MAPPED: Mutex<Vec<(PathBuf, &'static [u8])>> = Mutex::new(Vec::new());
    let mut mapped = MAPPED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, bytes)) = mapped.iter().find(|(p, _)| p == path) {
        return Ok(bytes);
    }
    let file = std::fs::File::open(path)?;
    let bytes: &'static [u8] = match map_read_only(&file) {
        Ok(map) => Box::leak(Box::new(map)),
        Err(e) => {
            tracing::debug!(error = %e, "cannot map the CJK font; reading it");
            Box::leak(std::fs::read(path)?.into_boxed_slice())
        }
    };
    mapped.push((path.to_owned(), bytes));
    Ok(bytes)
}

#[allow(unsafe_code)] // One mmap of a system font file, below.
fn map_read_only(file: &std::fs::File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: the map is read-only and private to this process. The one hazard is another
    // process truncating the file while it is mapped (the next glyph read would fault); font
    // files are installed by the package manager, which replaces them (a new inode) rather than
    // truncating them in place, so the mapped inode stays whole.
    unsafe { memmap2::Mmap::map(file) }
}
