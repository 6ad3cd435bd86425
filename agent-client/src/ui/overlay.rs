//! The overlay window (eframe/egui). It repaints only when something arrives or the agent
//! interacts, so it costs nothing while the call is quiet.

use super::fonts;
use super::i18n::{self, t, Lang, Text};
use super::model::{OverlayModel, ShownCard};
use assist_protocol::{CardAction, CardKind, EmotionLabel, Severity, Speaker};
use eframe::egui::{self, Color32, RichText, Stroke};
use std::sync::{Arc, Mutex, OnceLock};

pub const WIDTH: f32 = 380.0;
pub const HEIGHT: f32 = 620.0;
pub const BAR_HEIGHT: f32 = 38.0;

const RED: Color32 = Color32::from_rgb(0xd9, 0x30, 0x25);
const AMBER: Color32 = Color32::from_rgb(0xe0, 0x8a, 0x00);
const GREEN: Color32 = Color32::from_rgb(0x2e, 0x9d, 0x4f);
const GREY: Color32 = Color32::from_rgb(0x8a, 0x8f, 0x98);
const BLUE: Color32 = Color32::from_rgb(0x2b, 0x6c, 0xd8);

/// Lets other threads wake the window when the model changes.
#[derive(Clone, Default)]
pub struct Repaint(Arc<OnceLock<egui::Context>>);

impl Repaint {
    pub fn request(&self) {
        if let Some(ctx) = self.0.get() {
            ctx.request_repaint();
        }
    }

    /// Asks the window to close; `run` then returns on the main thread, which saves the
    /// window's position and tears the GL context down in order.
    pub fn close(&self) {
        if let Some(ctx) = self.0.get() {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            ctx.request_repaint();
        }
    }
}

/// Where the agent's clicks go: card feedback to the server.
pub type FeedbackSink = Box<dyn Fn(String, CardAction) + Send>;

pub struct Overlay {
    model: Arc<Mutex<OverlayModel>>,
    lang: Lang,
    feedback: FeedbackSink,
    clipboard: Option<arboard::Clipboard>,
    font_missing: bool,
    copied_at: Option<f64>,
}

/// How the window's pixels are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Renderer {
    /// On the CPU (winit + softbuffer): no OpenGL driver in the process. The default: the window
    /// is small and repaints only on events, and on desktops without a GPU driver (VDI, thin
    /// clients) OpenGL means Mesa's llvmpipe and its LLVM in the process.
    #[default]
    Software,
    /// OpenGL through eframe (glow), for desktops where the GPU driver is the better choice.
    Gl,
}

impl std::str::FromStr for Renderer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "software" | "cpu" => Ok(Renderer::Software),
            "gl" | "opengl" => Ok(Renderer::Gl),
            other => Err(format!(
                "unknown renderer {other:?}: use software (CPU) or gl (OpenGL)"
            )),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    #[error(transparent)]
    Gl(#[from] eframe::Error),
    #[error(transparent)]
    Software(#[from] super::software::SoftwareWindowError),
}

const APP_ID: &str = "agent-assist-overlay";

/// Opens the window and runs until it is closed.
pub fn run(
    model: Arc<Mutex<OverlayModel>>,
    lang: Lang,
    repaint: Repaint,
    feedback: FeedbackSink,
    renderer: Renderer,
) -> Result<(), WindowError> {
    let viewport = egui::ViewportBuilder::default()
        .with_title("Agent Assist")
        .with_app_id(APP_ID)
        .with_inner_size([WIDTH, HEIGHT])
        .with_min_inner_size([240.0, BAR_HEIGHT])
        .with_decorations(false)
        .with_always_on_top()
        .with_resizable(true);
    let make_overlay = move |ctx: &egui::Context| {
        let _ = repaint.0.set(ctx.clone());
        let font = fonts::install(ctx);
        if font.is_none() {
            tracing::warn!("no CJK font found; Chinese will not render");
        }
        ctx.set_visuals(egui::Visuals::light());
        Overlay {
            model,
            lang,
            feedback,
            clipboard: arboard::Clipboard::new().ok(),
            font_missing: font.is_none(),
            copied_at: None,
        }
    };
    match renderer {
        Renderer::Software => super::software::run(APP_ID, viewport, make_overlay)?,
        Renderer::Gl => {
            let options = eframe::NativeOptions {
                viewport,
                persist_window: true,
                ..Default::default()
            };
            eframe::run_native(
                APP_ID,
                options,
                Box::new(move |cc| Ok(Box::new(make_overlay(&cc.egui_ctx)))),
            )?
        }
    }
    Ok(())
}

impl eframe::App for Overlay {
    fn update(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.draw(ctx);
    }
}

impl super::software::Ui for Overlay {
    fn update(&mut self, ctx: &egui::Context) {
        self.draw(ctx);
    }
}

impl Overlay {
    /// One frame of the window, whichever renderer draws it.
    fn draw(&mut self, ctx: &egui::Context) {
        let model = Arc::clone(&self.model);
        let mut model = model.lock().unwrap_or_else(|p| p.into_inner());
        let toggle =
            ctx.input(|i| i.modifiers.ctrl && i.modifiers.shift && i.key_pressed(egui::Key::H));
        if toggle {
            let collapsed = !model.collapsed;
            self.set_collapsed(ctx, &mut model, collapsed);
        }
        egui::TopBottomPanel::top("bar")
            .exact_height(BAR_HEIGHT)
            .show(ctx, |ui| self.bar(ctx, ui, &mut model));
        if model.collapsed {
            // Cards and alerts are not on screen: their latency is not measured yet.
            return;
        }
        egui::CentralPanel::default().show(ctx, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                if self.font_missing {
                    ui.colored_label(RED, t(self.lang, Text::NoCjkFont));
                }
                self.fatal_alerts(ui, &mut model);
                self.other_alerts(ui, &model);
                self.emotion(ui, &model);
                self.cards(ctx, ui, &mut model);
                self.transcript(ui, &model);
                self.summary(ui, &model);
            });
        });
        for (id, action) in model.feedback.drain(..) {
            (self.feedback)(id, action);
        }
        model.latency.frame_drawn(std::time::Instant::now());
    }

    fn set_collapsed(&self, ctx: &egui::Context, model: &mut OverlayModel, collapsed: bool) {
        model.collapsed = collapsed;
        let height = if collapsed { BAR_HEIGHT } else { HEIGHT };
        ctx.send_viewport_cmd(egui::ViewportCommand::InnerSize(egui::vec2(WIDTH, height)));
    }

    /// The title bar: drag to move, status dot, emotion chip, collapse button.
    fn bar(&self, ctx: &egui::Context, ui: &mut egui::Ui, model: &mut OverlayModel) {
        ui.horizontal_centered(|ui| {
            let (status_color, status_text) = match &model.status {
                Some((text, true)) => (RED, text.clone()),
                Some((text, false)) => (AMBER, text.clone()),
                None if model.pack_version.is_some() => {
                    (GREEN, t(self.lang, Text::Listening).to_string())
                }
                None => (AMBER, t(self.lang, Text::Connecting).to_string()),
            };
            ui.label(RichText::new("●").color(status_color).size(16.0))
                .on_hover_text(status_text);
            ui.label(RichText::new(t(self.lang, Text::Title)).strong());
            if let Some((label, score, escalating)) = model.emotion {
                let color = emotion_color(label);
                let mut text = format!(
                    "{} {}",
                    t(self.lang, Text::Emotion),
                    i18n::emotion(self.lang, label)
                );
                if escalating {
                    text.push_str(&format!(" ↑ {}", t(self.lang, Text::Escalating)));
                }
                ui.label(RichText::new(text).color(color).strong())
                    .on_hover_text(format!("{score:+.2}"));
            }
            let fatal = model.fatal_alerts().count();
            if fatal > 0 && model.collapsed {
                ui.label(RichText::new(format!("⚠ {fatal}")).color(RED).strong());
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                let (icon, hint) = if model.collapsed {
                    ("▼", Text::Expand)
                } else {
                    ("▲", Text::Collapse)
                };
                if ui.button(icon).on_hover_text(t(self.lang, hint)).clicked() {
                    let collapsed = !model.collapsed;
                    self.set_collapsed(ctx, model, collapsed);
                }
                // The rest of the bar is the handle that moves the borderless window.
                let handle = ui.allocate_response(ui.available_size(), egui::Sense::drag());
                if handle.drag_started() {
                    ctx.send_viewport_cmd(egui::ViewportCommand::StartDrag);
                }
            });
        });
    }

    fn fatal_alerts(&self, ui: &mut egui::Ui, model: &mut OverlayModel) {
        let mut acknowledged = None;
        for (index, shown) in model.fatal_alerts() {
            egui::Frame::new()
                .fill(Color32::from_rgb(0xfd, 0xe8, 0xe6))
                .stroke(Stroke::new(2.0, RED))
                .inner_margin(8.0)
                .corner_radius(6.0)
                .show(ui, |ui| {
                    ui.set_width(ui.available_width());
                    ui.label(
                        RichText::new(format!(
                            "⚠ {} · {}{}",
                            i18n::severity(self.lang, Severity::Fatal),
                            shown.alert.message,
                            times(shown.times)
                        ))
                        .color(RED)
                        .strong()
                        .size(15.0),
                    );
                    ui.label(RichText::new(format!("“{}”", shown.alert.text)).italics());
                    if ui.button(t(self.lang, Text::Acknowledge)).clicked() {
                        acknowledged = Some(index);
                    }
                });
            ui.add_space(4.0);
        }
        if let Some(index) = acknowledged {
            model.acknowledge(index);
        }
    }

    fn other_alerts(&self, ui: &mut egui::Ui, model: &OverlayModel) {
        let others: Vec<_> = model
            .alerts
            .iter()
            .filter(|a| a.alert.severity != Severity::Fatal)
            .collect();
        if others.is_empty() {
            return;
        }
        ui.label(
            RichText::new(t(self.lang, Text::Alerts))
                .color(GREY)
                .small(),
        );
        for shown in others.iter().rev() {
            let color = if shown.alert.severity == Severity::Serious {
                AMBER
            } else {
                GREY
            };
            ui.horizontal_wrapped(|ui| {
                ui.label(
                    RichText::new(format!(
                        "[{}]",
                        i18n::severity(self.lang, shown.alert.severity)
                    ))
                    .color(color)
                    .strong(),
                );
                ui.label(format!("{}{}", shown.alert.message, times(shown.times)));
            });
        }
        ui.separator();
    }

    fn emotion(&self, ui: &mut egui::Ui, model: &OverlayModel) {
        let Some((label, score, escalating)) = model.emotion else {
            return;
        };
        ui.horizontal(|ui| {
            ui.label(
                RichText::new(t(self.lang, Text::Emotion))
                    .color(GREY)
                    .small(),
            );
            ui.label(
                RichText::new(i18n::emotion(self.lang, label))
                    .color(emotion_color(label))
                    .strong(),
            );
            let trend = model.emotion_trend();
            let arrow = if trend < -0.1 {
                "↘"
            } else if trend > 0.1 {
                "↗"
            } else {
                "→"
            };
            ui.label(arrow);
            if escalating {
                ui.label(
                    RichText::new(t(self.lang, Text::Escalating))
                        .color(RED)
                        .strong(),
                );
            }
            ui.label(RichText::new(format!("{score:+.2}")).color(GREY).small());
        });
        // The trend strip: one bar per customer turn.
        let (rect, _) =
            ui.allocate_exact_size(egui::vec2(ui.available_width(), 18.0), egui::Sense::hover());
        let n = model.emotion_history.len().max(1) as f32;
        let w = rect.width() / n;
        for (i, score) in model.emotion_history.iter().enumerate() {
            let x = rect.left() + i as f32 * w;
            let h = (score.abs() * rect.height()).max(2.0);
            let color = emotion_color(crate::ui::model_label(*score));
            let bar = egui::Rect::from_min_max(
                egui::pos2(x + 1.0, rect.bottom() - h),
                egui::pos2(x + w - 1.0, rect.bottom()),
            );
            ui.painter().rect_filled(bar, 1.0, color);
        }
        ui.separator();
    }

    fn cards(&mut self, ctx: &egui::Context, ui: &mut egui::Ui, model: &mut OverlayModel) {
        let mut action: Option<(String, CardAction)> = None;
        let mut toggled: Option<usize> = None;
        for (index, shown) in model.cards.iter().enumerate() {
            let is_script = shown.card.kind == CardKind::Script;
            let accent = if is_script { BLUE } else { GREEN };
            egui::Frame::new()
                .fill(Color32::from_rgb(0xf6, 0xf8, 0xfb))
                .stroke(Stroke::new(1.0, accent))
                .inner_margin(8.0)
                .corner_radius(6.0)
                .show(ui, |ui| {
                    ui.set_width(ui.available_width());
                    ui.horizontal(|ui| {
                        let kind = if is_script {
                            t(self.lang, Text::Script)
                        } else {
                            t(self.lang, Text::Knowledge)
                        };
                        ui.label(RichText::new(kind).color(accent).small().strong());
                        if let Some(tier) = shown.card.tier {
                            ui.label(
                                RichText::new(format!(" {} ", i18n::tier(self.lang, tier)))
                                    .background_color(accent)
                                    .color(Color32::WHITE)
                                    .small(),
                            );
                        }
                        ui.label(RichText::new(&shown.card.title).strong());
                    });
                    self.card_body(ui, shown);
                    ui.horizontal(|ui| {
                        if is_script && ui.button(t(self.lang, Text::Use)).clicked() {
                            action = Some((shown.card.id.clone(), CardAction::Used));
                        }
                        if !is_script {
                            let label = if shown.expanded {
                                Text::Less
                            } else {
                                Text::More
                            };
                            if ui.small_button(t(self.lang, label)).clicked() {
                                toggled = Some(index);
                            }
                        }
                        if ui.small_button(t(self.lang, Text::Dismiss)).clicked() {
                            action = Some((shown.card.id.clone(), CardAction::Dismissed));
                        }
                    });
                });
            ui.add_space(4.0);
        }
        if let Some(index) = toggled {
            if let Some(card) = model.cards.get_mut(index) {
                card.expanded = !card.expanded;
            }
        }
        if let Some((id, action)) = action {
            if let Some(card) = model.card_action(&id, action) {
                if action == CardAction::Used {
                    self.copy(ctx, &card.body);
                }
            }
        }
        if let Some(at) = self.copied_at {
            let now = ctx.input(|i| i.time);
            if now - at < 2.0 {
                ui.label(
                    RichText::new(t(self.lang, Text::Copied))
                        .color(GREEN)
                        .small(),
                );
                ctx.request_repaint_after(std::time::Duration::from_millis(500));
            } else {
                self.copied_at = None;
            }
        }
    }

    /// Script bodies in full; knowledge passages with their matched terms highlighted,
    /// clipped until expanded.
    fn card_body(&self, ui: &mut egui::Ui, shown: &ShownCard) {
        let card = &shown.card;
        if card.kind == CardKind::Script {
            ui.label(&card.body);
            return;
        }
        let body: String = if shown.expanded || card.body.chars().count() <= 90 {
            card.body.clone()
        } else {
            card.body.chars().take(90).chain("…".chars()).collect()
        };
        let mut job = egui::text::LayoutJob::default();
        let plain = egui::TextFormat {
            font_id: egui::FontId::proportional(14.0),
            color: ui.visuals().text_color(),
            ..Default::default()
        };
        let marked = egui::TextFormat {
            background: Color32::from_rgb(0xff, 0xf1, 0x76),
            ..plain.clone()
        };
        for (segment, highlighted) in highlight_segments(&body, &card.highlights) {
            job.append(
                segment,
                0.0,
                if highlighted {
                    marked.clone()
                } else {
                    plain.clone()
                },
            );
        }
        job.wrap.max_width = ui.available_width();
        ui.label(job);
    }

    fn copy(&mut self, ctx: &egui::Context, text: &str) {
        match self
            .clipboard
            .as_mut()
            .map(|c| c.set_text(text.to_string()))
        {
            Some(Ok(())) => {}
            _ => ctx.copy_text(text.to_string()),
        }
        self.copied_at = Some(ctx.input(|i| i.time));
    }

    fn transcript(&self, ui: &mut egui::Ui, model: &OverlayModel) {
        if model.transcript.is_empty() && model.partial.iter().all(Option::is_none) {
            return;
        }
        ui.separator();
        ui.label(
            RichText::new(t(self.lang, Text::Transcript))
                .color(GREY)
                .small(),
        );
        for line in &model.transcript {
            self.line(ui, line.speaker, &line.text, false);
        }
        for (speaker, partial) in [Speaker::Agent, Speaker::Customer]
            .iter()
            .zip(&model.partial)
        {
            if let Some(text) = partial {
                self.line(ui, *speaker, text, true);
            }
        }
    }

    fn line(&self, ui: &mut egui::Ui, speaker: Speaker, text: &str, partial: bool) {
        ui.horizontal_wrapped(|ui| {
            let color = if speaker == Speaker::Agent {
                BLUE
            } else {
                AMBER
            };
            ui.label(
                RichText::new(i18n::speaker(self.lang, speaker))
                    .color(color)
                    .small()
                    .strong(),
            );
            let text = RichText::new(text);
            ui.label(if partial {
                text.italics().color(GREY)
            } else {
                text
            });
        });
    }

    fn summary(&self, ui: &mut egui::Ui, model: &OverlayModel) {
        let Some(summary) = &model.summary else {
            return;
        };
        ui.separator();
        let verdict = if summary.passed {
            Text::Passed
        } else {
            Text::Failed
        };
        let color = if summary.passed { GREEN } else { RED };
        ui.label(
            RichText::new(format!(
                "{} · {} {} ({})",
                t(self.lang, Text::Summary),
                t(self.lang, Text::Score),
                summary.score,
                t(self.lang, verdict)
            ))
            .color(color)
            .strong(),
        );
    }
}

fn emotion_color(label: EmotionLabel) -> Color32 {
    match label {
        EmotionLabel::Negative => RED,
        EmotionLabel::Neutral => GREY,
        EmotionLabel::Positive => GREEN,
    }
}

/// Splits `text` into (segment, highlighted) runs where any of `terms` occurs.
pub fn highlight_segments<'a>(text: &'a str, terms: &[String]) -> Vec<(&'a str, bool)> {
    let lower = text.to_lowercase();
    // Lowercasing can change byte lengths outside ASCII; only highlight when it did not.
    let comparable = lower.len() == text.len();
    let mut marks = vec![false; text.len()];
    if comparable {
        for term in terms.iter().filter(|t| !t.is_empty()) {
            let term = term.to_lowercase();
            let mut from = 0;
            while let Some(found) = lower[from..].find(&term) {
                let start = from + found;
                let end = start + term.len();
                marks[start..end].iter_mut().for_each(|m| *m = true);
                from = end;
            }
        }
    }
    let mut out = Vec::new();
    let mut start = 0;
    for (i, _) in text
        .char_indices()
        .skip(1)
        .chain(std::iter::once((text.len(), ' ')))
    {
        let boundary = i == text.len() || marks[i] != marks[start];
        if boundary {
            out.push((&text[start..i], marks[start]));
            start = i;
        }
    }
    out.retain(|(s, _)| !s.is_empty());
    out
}

/// " ×N" after an alert raised by N utterances; nothing for one.
fn times(n: u32) -> String {
    if n > 1 {
        format!(" ×{n}")
    } else {
        String::new()
    }
}
