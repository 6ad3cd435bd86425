//! The overlay: a small always-on-top, borderless, movable window over the agent's softphone
//! and CRM. [`model`] is what it shows (plain data, tested without a window); [`overlay`] draws
//! it with egui; [`i18n`] speaks Chinese and English; [`fonts`] finds a CJK font.

pub mod fonts;
pub mod i18n;
pub mod latency;
pub mod model;
pub mod overlay;
pub mod software;

/// Whether a window can be opened here (an X11 or Wayland display is set).
pub fn display_available() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|s| !s.is_empty()))
}

/// The label a score gets (the server's thresholds), for the trend strip's colours.
pub fn model_label(score: f32) -> assist_protocol::EmotionLabel {
    use assist_protocol::EmotionLabel;
    if score <= -0.2 {
        EmotionLabel::Negative
    } else if score >= 0.2 {
        EmotionLabel::Positive
    } else {
        EmotionLabel::Neutral
    }
}
