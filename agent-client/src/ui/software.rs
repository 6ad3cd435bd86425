//! The overlay drawn on the CPU, without OpenGL: winit for the window and its input (through
//! egui-winit, as eframe does), egui_software_backend's rasteriser for the pixels and softbuffer
//! to put them on screen.
//!
//! Why: on desktops without a GPU driver — VDI sessions and thin clients, common in contact
//! centres — OpenGL is Mesa's llvmpipe, which brings LLVM and its JIT into the process
//! (~80 MB more resident for this small window, BENCHMARKS.md §6). A 380×620 window that repaints
//! only when something arrives costs a few milliseconds of CPU per frame to draw by hand.
//!
//! The window behaves as the OpenGL one does: same viewport (borderless, always on top,
//! movable by its bar), repaints on request from other threads, closes on the window manager's
//! request or [`super::overlay::Repaint::close`], and remembers where the agent put it.

use eframe::egui::{self, ViewportId};
use egui_software_backend::{BufferMutRef, ColorFieldOrder, EguiSoftwareRender};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Instant;
use winit::application::ApplicationHandler;
use winit::event::{StartCause, WindowEvent};
use winit::event_loop::{ActiveEventLoop, ControlFlow, EventLoop};
use winit::window::{Window, WindowId};

/// What the window draws each frame.
pub trait Ui {
    fn update(&mut self, ctx: &egui::Context);
}

#[derive(Debug, thiserror::Error)]
pub enum SoftwareWindowError {
    #[error("cannot start the window system's event loop: {0}")]
    EventLoop(#[from] winit::error::EventLoopError),
    #[error("cannot create the window: {0}")]
    Window(#[from] winit::error::OsError),
    #[error("cannot draw into the window ({during}): {error}")]
    Surface {
        during: &'static str,
        error: softbuffer::SoftBufferError,
    },
}

/// The largest texture egui may make. The font atlas is this wide; 2048 holds thousands of
/// CJK glyphs at the overlay's sizes and keeps the atlas a few MB.
const MAX_TEXTURE_SIDE: usize = 2048;

/// Opens the window and runs until it is closed. `make_ui` is called once, with the context,
/// before the first frame.
pub fn run<U: Ui>(
    app_id: &str,
    viewport: egui::ViewportBuilder,
    make_ui: impl FnOnce(&egui::Context) -> U,
) -> Result<(), SoftwareWindowError> {
    let event_loop = EventLoop::<Wake>::with_user_event().build()?;
    let ctx = egui::Context::default();
    let proxy = event_loop.create_proxy();
    ctx.set_request_repaint_callback(move |info| {
        let _ = proxy.send_event(Wake {
            at: Instant::now() + info.delay,
        });
    });
    let positions = WindowPosition::file(app_id);
    let viewport = match positions.as_ref().and_then(WindowPosition::load) {
        Some(position) => viewport.with_position(position),
        None => viewport,
    };
    let ui = make_ui(&ctx);
    let mut app = App {
        ctx,
        viewport,
        ui,
        positions,
        window: None,
        error: None,
    };
    event_loop.run_app(&mut app)?;
    match app.error {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// A repaint asked for (by egui, or another thread through the context) at this moment.
#[derive(Debug, Clone, Copy)]
struct Wake {
    at: Instant,
}

struct App<U> {
    ctx: egui::Context,
    viewport: egui::ViewportBuilder,
    ui: U,
    positions: Option<WindowPosition>,
    window: Option<OpenWindow>,
    /// Why the loop stopped, when it did not stop because the window was closed.
    error: Option<SoftwareWindowError>,
}

/// The window and everything drawn into it.
struct OpenWindow {
    window: Rc<Window>,
    surface: softbuffer::Surface<Rc<Window>, Rc<Window>>,
    input: egui_winit::State,
    info: egui::ViewportInfo,
    renderer: EguiSoftwareRender,
    /// The next repaint egui asked for, if later than now.
    repaint_at: Option<Instant>,
}

impl<U: Ui> App<U> {
    fn open(&mut self, event_loop: &ActiveEventLoop) -> Result<(), SoftwareWindowError> {
        let window = Rc::new(egui_winit::create_window(
            &self.ctx,
            event_loop,
            &self.viewport,
        )?);
        let context = softbuffer::Context::new(Rc::clone(&window)).map_err(surface("context"))?;
        let surface =
            softbuffer::Surface::new(&context, Rc::clone(&window)).map_err(surface("surface"))?;
        let input = egui_winit::State::new(
            self.ctx.clone(),
            ViewportId::ROOT,
            &*window,
            Some(window.scale_factor() as f32),
            window.theme(),
            Some(MAX_TEXTURE_SIDE),
        );
        let mut info = egui::ViewportInfo::default();
        egui_winit::update_viewport_info(&mut info, &self.ctx, &window, true);
        window.request_redraw();
        self.window = Some(OpenWindow {
            window,
            surface,
            input,
            info,
            // softbuffer's pixels are 0x00RRGGBB words: B, G, R, 0 in memory.
            renderer: EguiSoftwareRender::new(ColorFieldOrder::Bgra),
            repaint_at: None,
        });
        Ok(())
    }

    /// Runs one egui frame and puts it on screen. Returns whether the window asked to close.
    fn paint(&mut self) -> Result<bool, SoftwareWindowError> {
        let Some(open) = self.window.as_mut() else {
            return Ok(false);
        };
        open.repaint_at = None;
        egui_winit::update_viewport_info(&mut open.info, &self.ctx, &open.window, false);
        let mut raw_input = open.input.take_egui_input(&open.window);
        raw_input.viewports = std::iter::once((ViewportId::ROOT, open.info.clone())).collect();
        open.info.events.clear();
        let ui = &mut self.ui;
        let output = self.ctx.run(raw_input, |ctx| ui.update(ctx));
        open.input
            .handle_platform_output(&open.window, output.platform_output);

        let mut close = false;
        if let Some(viewport) = output.viewport_output.get(&ViewportId::ROOT) {
            let mut actions = Vec::new();
            egui_winit::process_viewport_commands(
                &self.ctx,
                &mut open.info,
                viewport.commands.iter().cloned(),
                &open.window,
                &mut actions,
            );
            close = open
                .info
                .events
                .iter()
                .any(|e| matches!(e, egui::ViewportEvent::Close));
            if viewport.repaint_delay.is_zero() {
                open.window.request_redraw();
            } else if let Some(at) = Instant::now().checked_add(viewport.repaint_delay) {
                open.repaint_at = Some(at);
            }
        }

        let primitives = self.ctx.tessellate(output.shapes, output.pixels_per_point);
        let size = open.window.inner_size();
        let (Some(width), Some(height)) =
            (NonZeroU32::new(size.width), NonZeroU32::new(size.height))
        else {
            return Ok(close); // Minimised: nothing to draw into.
        };
        open.surface
            .resize(width, height)
            .map_err(surface("resizing"))?;
        let mut buffer = open.surface.buffer_mut().map_err(surface("mapping"))?;
        buffer.fill(0);
        let mut pixels = BufferMutRef::new(
            bytemuck::cast_slice_mut(&mut buffer),
            width.get() as usize,
            height.get() as usize,
        );
        open.renderer.render(
            &mut pixels,
            &primitives,
            &output.textures_delta,
            output.pixels_per_point,
        );
        buffer.present().map_err(surface("presenting"))?;
        Ok(close)
    }

    fn close(&mut self, event_loop: &ActiveEventLoop) {
        if let (Some(open), Some(positions)) = (&self.window, &self.positions) {
            if let Ok(position) = open.window.outer_position() {
                let position = position.to_logical::<f32>(open.window.scale_factor());
                positions.save(position.x, position.y);
            }
        }
        self.window = None;
        event_loop.exit();
    }

    fn fail(&mut self, event_loop: &ActiveEventLoop, error: SoftwareWindowError) {
        self.error = Some(error);
        self.window = None;
        event_loop.exit();
    }
}

impl<U: Ui> ApplicationHandler<Wake> for App<U> {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.window.is_none() {
            if let Err(error) = self.open(event_loop) {
                self.fail(event_loop, error);
            }
        }
    }

    fn new_events(&mut self, _event_loop: &ActiveEventLoop, cause: StartCause) {
        if let (StartCause::ResumeTimeReached { .. }, Some(open)) = (cause, &self.window) {
            if open.repaint_at.is_some_and(|at| at <= Instant::now()) {
                open.window.request_redraw();
            }
        }
    }

    fn user_event(&mut self, _event_loop: &ActiveEventLoop, wake: Wake) {
        let Some(open) = self.window.as_mut() else {
            return;
        };
        if wake.at <= Instant::now() {
            open.window.request_redraw();
        } else if open.repaint_at.is_none_or(|at| wake.at < at) {
            open.repaint_at = Some(wake.at);
        }
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, id: WindowId, event: WindowEvent) {
        let Some(open) = self.window.as_mut() else {
            return;
        };
        if open.window.id() != id {
            return;
        }
        match event {
            WindowEvent::CloseRequested => self.close(event_loop),
            WindowEvent::RedrawRequested => match self.paint() {
                Ok(true) => self.close(event_loop),
                Ok(false) => {}
                Err(error) => self.fail(event_loop, error),
            },
            event => {
                if open.input.on_window_event(&open.window, &event).repaint {
                    open.window.request_redraw();
                }
            }
        }
    }

    fn about_to_wait(&mut self, event_loop: &ActiveEventLoop) {
        let flow = match self.window.as_ref().and_then(|open| open.repaint_at) {
            Some(at) => ControlFlow::WaitUntil(at),
            None => ControlFlow::Wait,
        };
        event_loop.set_control_flow(flow);
    }
}

fn surface(
    during: &'static str,
) -> impl FnOnce(softbuffer::SoftBufferError) -> SoftwareWindowError {
    move |error| SoftwareWindowError::Surface { during, error }
}

/// Where the agent left the window, kept beside eframe's own settings for the app.
struct WindowPosition {
    path: PathBuf,
}

impl WindowPosition {
    fn file(app_id: &str) -> Option<WindowPosition> {
        let dir = eframe::storage_dir(app_id)?;
        Some(WindowPosition {
            path: dir.join("window-position.json"),
        })
    }

    fn load(&self) -> Option<egui::Pos2> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        let [x, y]: [f32; 2] = serde_json::from_str(&text).ok()?;
        Some(egui::pos2(x, y))
    }

    /// In points (logical pixels), as the viewport takes it.
    fn save(&self, x: f32, y: f32) {
        let write = || -> std::io::Result<()> {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&self.path, serde_json::to_string(&[x, y])?)
        };
        if let Err(e) = write() {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remember the window's position");
        }
    }
}
