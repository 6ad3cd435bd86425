//! Live capture from sound devices through cpal: the agent's microphone and the call's far end.
//!
//! Two layouts ([`DeviceSpec`]):
//!
//! - two devices at once: `agent` (a microphone; `None` = the default input device) and
//!   `customer` (a loopback or monitor source that carries the softphone's output; `None` = no
//!   customer audio);
//! - one stereo device split by channel (`stereo`: a name and a [`ChannelMap`]), as many call
//!   recorders and USB headset adapters deliver it.
//!
//! Devices are matched by case-insensitive substring of their name or id (see [`list_devices`]).
//!
//! The cpal data callback never blocks or allocates: it converts the samples to f32 into a
//! stack buffer and pushes whole frames into a lock-free SPSC ring buffer (frames that do not
//! fit are counted and later replaced by silence, so time stays right). A worker thread per
//! device drains the ring, splits or mixes the channels, resamples to 16 kHz and sends 100 ms
//! [`Chunk`]s with `at` = seconds since the source started.
//!
//! A device that fails (cpal error callback) or stalls (no data for 2 s; 5 s for the first data
//! of a fresh stream) is reported once with [`AudioEvent::Lost`] per speaker it carries; the
//! worker then tries to reopen it every 2 s and resumes sending when it is back — the call goes
//! on. The first chunk after a `Lost` means the speaker is back. A stream that a stuck backend
//! will not close is left behind on a thread of its own rather than blocking the worker.

use super::resample::Resampler;
use super::wav::{extract, routes, Pick, CHUNK_SAMPLES};
use super::{AudioError, AudioEvent, AudioSource, ChannelMap, Chunk, TARGET_RATE};
use assist_protocol::Speaker;
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample};
use ringbuf::traits::{Consumer, Observer, Producer, Split};
use ringbuf::{HeapCons, HeapRb};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// No data for this long means the device is gone.
pub const STALL_AFTER: Duration = Duration::from_secs(2);
/// A freshly opened stream may take this long to deliver its first data (a PulseAudio null
/// sink's monitor takes 2 s).
pub const FIRST_DATA_WITHIN: Duration = Duration::from_secs(5);
/// How often a lost device is tried again.
pub const RETRY_EVERY: Duration = Duration::from_secs(2);
/// Seconds of audio the ring buffer holds between the callback and the worker.
const RING_SECONDS: usize = 2;
/// The most silence put in per drain for samples the callback could not store.
const MAX_GAP_FILL_SECONDS: usize = 1;
/// How often the worker drains the ring.
const POLL: Duration = Duration::from_millis(20);

/// An input device, as `--list-devices` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceInfo {
    /// The human-readable name.
    pub name: String,
    /// The host's stable id, e.g. `alsa:pulse` or `alsa:hw:CARD=0,DEV=0`.
    pub id: String,
    /// The audio host, e.g. `ALSA`.
    pub host: String,
    /// Whether it is the host's default input.
    pub is_default: bool,
    /// The default input configuration, when the device could be asked.
    pub channels: Option<u16>,
    pub sample_rate: Option<u32>,
    pub sample_format: Option<String>,
}

impl std::fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}{} [{}]",
            self.name,
            if self.is_default { " (default)" } else { "" },
            self.id
        )?;
        if let (Some(ch), Some(rate)) = (self.channels, self.sample_rate) {
            write!(f, " {ch} ch {rate} Hz")?;
            if let Some(fmt) = &self.sample_format {
                write!(f, " {fmt}")?;
            }
        }
        Ok(())
    }
}

/// Which devices to capture.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceSpec {
    /// The agent's microphone (name substring); `None` = the default input device.
    pub agent: Option<String>,
    /// The customer's side (name substring of a loopback/monitor input); `None` = not captured.
    pub customer: Option<String>,
    /// One multi-channel device carrying both sides; when set, `agent` and `customer` must be
    /// `None`.
    pub stereo: Option<(String, ChannelMap)>,
}

/// Lists the input devices of the default host.
pub fn list_devices() -> Result<Vec<DeviceInfo>, AudioError> {
    let host = cpal::default_host();
    let default_id = host.default_input_device().and_then(|d| d.id().ok());
    let devices = host
        .input_devices()
        .map_err(|e| AudioError::NoDevice(format!("cannot list input devices: {e}")))?;
    let mut out = Vec::new();
    for device in devices {
        let id = device.id().ok();
        let config = device.default_input_config().ok();
        out.push(DeviceInfo {
            name: device_name(&device),
            id: id.as_ref().map(|i| i.to_string()).unwrap_or_default(),
            host: host.id().name().to_string(),
            is_default: id.is_some() && id == default_id,
            channels: config.as_ref().map(|c| c.channels()),
            sample_rate: config.as_ref().map(|c| c.sample_rate()),
            sample_format: config.as_ref().map(|c| c.sample_format().to_string()),
        });
    }
    Ok(out)
}

fn device_name(device: &cpal::Device) -> String {
    device
        .description()
        .map(|d| d.name().to_string())
        .or_else(|_| device.id().map(|i| i.to_string()))
        .unwrap_or_else(|_| "(unnamed device)".into())
}

/// Everything a device can be matched on, lower-cased.
fn haystack(device: &cpal::Device) -> Vec<String> {
    let mut keys = Vec::new();
    if let Ok(desc) = device.description() {
        keys.push(desc.name().to_lowercase());
        if let Some(driver) = desc.driver() {
            keys.push(driver.to_lowercase());
        }
        keys.extend(desc.extended().map(str::to_lowercase));
    }
    if let Ok(id) = device.id() {
        keys.push(id.to_string().to_lowercase());
        keys.push(id.id().to_lowercase());
    }
    keys
}

/// The input device whose name or id contains `pattern` (an exact name or id wins), or the
/// default input device for `None`.
fn find_device(host: &cpal::Host, pattern: Option<&str>) -> Result<cpal::Device, AudioError> {
    let Some(pattern) = pattern else {
        return host.default_input_device().ok_or_else(|| {
            AudioError::NoDevice(
                "this machine has no default input device; connect a microphone or name one (see --list-devices)"
                    .into(),
            )
        });
    };
    let wanted = pattern.to_lowercase();
    let devices = host
        .input_devices()
        .map_err(|e| AudioError::NoDevice(format!("cannot list input devices: {e}")))?;
    let mut partial = None;
    for device in devices {
        let keys = haystack(&device);
        if keys.contains(&wanted) {
            return Ok(device);
        }
        if partial.is_none() && keys.iter().any(|k| k.contains(&wanted)) {
            partial = Some(device);
        }
    }
    partial.ok_or_else(|| AudioError::NoSuchDevice(pattern.to_string()))
}

/// A running capture of one or two devices. Dropping it stops it.
pub struct DeviceSource {
    description: String,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for DeviceSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceSource")
            .field("description", &self.description)
            .finish()
    }
}

impl DeviceSource {
    /// Opens the devices and starts sending chunks on `tx`. Fails when a device does not exist
    /// or cannot be opened now; once started, a device that goes away is retried.
    pub fn start(spec: DeviceSpec, tx: Sender<AudioEvent>) -> Result<DeviceSource, AudioError> {
        let mut plan: Vec<(Option<String>, ChannelMap)> = Vec::new();
        match spec.stereo {
            Some((name, map)) => {
                if spec.agent.is_some() || spec.customer.is_some() {
                    return Err(AudioError::Unsupported(
                        "give either one stereo device or agent/customer devices, not both".into(),
                    ));
                }
                plan.push((Some(name), map));
            }
            None => {
                plan.push((spec.agent, ChannelMap::All(Speaker::Agent)));
                if let Some(customer) = spec.customer {
                    plan.push((Some(customer), ChannelMap::All(Speaker::Customer)));
                }
            }
        }
        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let mut source = DeviceSource {
            description: String::new(),
            stop: Arc::clone(&stop),
            threads: Vec::new(),
        };
        let mut names = Vec::new();
        for (pattern, map) in plan {
            let (ready_tx, ready_rx) = mpsc::sync_channel(1);
            let capture = Capture {
                pattern,
                map,
                tx: tx.clone(),
                stop: Arc::clone(&stop),
                started,
            };
            let thread = std::thread::Builder::new()
                .name("audio-capture".into())
                .spawn(move || capture.run(ready_tx))
                .map_err(|e| AudioError::Device(format!("cannot start a capture thread: {e}")))?;
            source.threads.push(thread);
            // On failure `source` is dropped here, which stops captures already started.
            match ready_rx.recv() {
                Ok(Ok(name)) => names.push(name),
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(AudioError::Device(
                        "the capture thread ended before the device opened".into(),
                    ))
                }
            }
        }
        source.description = names.join(" + ");
        Ok(source)
    }
}

impl AudioSource for DeviceSource {
    fn describe(&self) -> String {
        self.description.clone()
    }
}

impl Drop for DeviceSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// One device and the speakers it carries.
struct Capture {
    pattern: Option<String>,
    map: ChannelMap,
    tx: Sender<AudioEvent>,
    stop: Arc<AtomicBool>,
    started: Instant,
}

/// An open stream and what the worker needs to drain it.
struct Live {
    /// Kept alive while capturing; closed by [`release`] when the `Live` is dropped.
    stream: Option<cpal::Stream>,
    name: String,
    cons: HeapCons<f32>,
    errors: Receiver<String>,
    /// Samples the callback could not store (the worker fell behind).
    dropped: Arc<AtomicUsize>,
    channels: usize,
    /// Frames per second of the device.
    rate: u32,
    outputs: Vec<Output>,
    /// Call time of the first sample of this stream, set when data first arrives.
    anchor: Option<f64>,
    last_data: Instant,
    /// Data has arrived since the stream opened.
    flowing: bool,
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(stream) = self.stream.take() {
            release(stream, &self.name);
        }
    }
}

/// How long closing a stream may take before the worker leaves it behind.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Closes a stream without letting a stuck backend hang the caller. Closing joins the
/// backend's audio thread, and some backends never let go of a dead device: with ALSA's pulse
/// plugin, a PulseAudio server that dies mid-stream deadlocks libpulse's mainloop against the
/// audio thread. The stream is dropped on a thread of its own; after [`CLOSE_TIMEOUT`] the
/// worker moves on (leaving that one thread behind) so the call goes on.
fn release(stream: cpal::Stream, name: &str) {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("audio-close".into())
        .spawn(move || {
            drop(stream);
            let _ = done_tx.send(());
        });
    match spawned {
        Ok(_) => {
            if done_rx.recv_timeout(CLOSE_TIMEOUT).is_err() {
                tracing::warn!(device = %name, "the audio backend did not close the stream; left behind");
            }
        }
        Err(e) => tracing::warn!(device = %name, "cannot close the stream on its own thread: {e}"),
    }
}

struct Output {
    speaker: Speaker,
    pick: Pick,
    resampler: Resampler,
    pending: Vec<i16>,
    sent: u64,
}

/// Whether a stream error means the device is gone (rather than a glitch).
fn is_fatal(kind: cpal::ErrorKind) -> bool {
    !matches!(
        kind,
        cpal::ErrorKind::Xrun | cpal::ErrorKind::RealtimeDenied | cpal::ErrorKind::DeviceChanged
    )
}

impl Capture {
    fn label(&self) -> String {
        self.pattern
            .clone()
            .unwrap_or_else(|| "default input".into())
    }

    fn run(self, ready: mpsc::SyncSender<Result<String, AudioError>>) {
        let mut live = match self.open() {
            Ok(live) => {
                let _ = ready.send(Ok(format!("{} ({})", live.name, speakers(&live.outputs))));
                Some(live)
            }
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        drop(ready);
        let mut scratch: Vec<f32> = Vec::new();
        let mut mono: Vec<f32> = Vec::new();
        let mut next_try = Instant::now();
        // Lost was reported and no audio came since: a failed reopen does not report it again.
        let mut reported_lost = false;
        while !self.stop.load(Ordering::Relaxed) {
            match live.as_mut() {
                Some(l) => {
                    let problem = self.drain(l, &mut scratch, &mut mono);
                    match self.flush_chunks(l) {
                        None => return,
                        Some(0) => {}
                        Some(_) => reported_lost = false,
                    }
                    if let Some(reason) = problem {
                        tracing::warn!(device = %l.name, "audio device lost: {reason}");
                        let lost: Vec<Speaker> = if reported_lost {
                            Vec::new()
                        } else {
                            l.outputs.iter().map(|o| o.speaker).collect()
                        };
                        reported_lost = true;
                        for speaker in lost {
                            let event = AudioEvent::Lost {
                                speaker,
                                reason: format!("{}: {reason}", l.name),
                            };
                            if self.tx.send(event).is_err() {
                                return;
                            }
                        }
                        live = None;
                        next_try = Instant::now() + RETRY_EVERY;
                    }
                }
                None => {
                    if Instant::now() >= next_try {
                        match self.open() {
                            Ok(l) => {
                                tracing::info!(device = %l.name, "audio device back");
                                live = Some(l);
                            }
                            Err(e) => {
                                tracing::debug!(device = %self.label(), "reopening failed: {e}");
                                next_try = Instant::now() + RETRY_EVERY;
                            }
                        }
                    }
                }
            }
            std::thread::sleep(POLL);
        }
    }

    /// Drains the ring into the outputs. Returns why the device is lost, if it is.
    fn drain(&self, l: &mut Live, scratch: &mut Vec<f32>, mono: &mut Vec<f32>) -> Option<String> {
        if let Ok(reason) = l.errors.try_recv() {
            return Some(reason);
        }
        let available = l.cons.occupied_len();
        let dropped = l.dropped.swap(0, Ordering::Relaxed);
        if available == 0 && dropped == 0 {
            let limit = if l.flowing {
                STALL_AFTER
            } else {
                FIRST_DATA_WITHIN
            };
            if l.last_data.elapsed() >= limit {
                return Some(format!(
                    "no audio for {} s (unplugged or stopped?)",
                    limit.as_secs()
                ));
            }
            return None;
        }
        l.last_data = Instant::now();
        l.flowing = true;
        let frames_now = (available + dropped) / l.channels;
        if l.anchor.is_none() {
            let rate = f64::from(l.rate);
            let elapsed = self.started.elapsed().as_secs_f64();
            l.anchor = Some((elapsed - frames_now as f64 / rate).max(0.0));
        }
        if dropped > 0 {
            // Keep time: what the callback could not store becomes silence (at most
            // MAX_GAP_FILL_SECONDS per drain, so a device that runs wild cannot bury the worker).
            let cap = MAX_GAP_FILL_SECONDS * l.rate as usize * l.channels;
            if dropped > cap {
                tracing::warn!(device = %l.name, dropped, "the capture worker fell far behind; audio dropped");
            }
            let fill = dropped.min(cap);
            scratch.clear();
            scratch.resize(fill - fill % l.channels, 0.0);
            for out in &mut l.outputs {
                extract(scratch, l.channels, out.pick, mono);
                out.resampler.process_into(mono, &mut out.pending);
            }
        }
        scratch.clear();
        scratch.resize(available - available % l.channels, 0.0);
        let n = l.cons.pop_slice(scratch);
        scratch.truncate(n - n % l.channels);
        for out in &mut l.outputs {
            extract(scratch, l.channels, out.pick, mono);
            out.resampler.process_into(mono, &mut out.pending);
        }
        None
    }

    /// Sends the complete chunks; how many, or None when the receiver is gone.
    fn flush_chunks(&self, l: &mut Live) -> Option<usize> {
        let anchor = l.anchor.unwrap_or(0.0);
        let mut sent = 0;
        for out in &mut l.outputs {
            while out.pending.len() >= CHUNK_SAMPLES {
                let samples: Vec<i16> = out.pending.drain(..CHUNK_SAMPLES).collect();
                let chunk = Chunk {
                    speaker: out.speaker,
                    samples,
                    at: anchor + out.sent as f64 / f64::from(TARGET_RATE),
                };
                out.sent += CHUNK_SAMPLES as u64;
                self.tx.send(AudioEvent::Chunk(chunk)).ok()?;
                sent += 1;
            }
        }
        Some(sent)
    }

    fn open(&self) -> Result<Live, AudioError> {
        let host = cpal::default_host();
        let device = find_device(&host, self.pattern.as_deref())?;
        let name = device_name(&device);
        let config = pick_config(&device, &name)?;
        let channels = usize::from(config.channels());
        let rate = config.sample_rate();
        if channels == 0 {
            return Err(AudioError::Unsupported(format!(
                "{name} reports 0 channels"
            )));
        }
        let rb = HeapRb::<f32>::new((rate as usize * channels * RING_SECONDS).max(4096));
        let (prod, cons) = rb.split();
        let (err_tx, errors) = mpsc::channel();
        let dropped = Arc::new(AtomicUsize::new(0));
        let stream_config = config.config();
        let stream = match config.sample_format() {
            SampleFormat::F32 => build::<f32>(&device, stream_config, prod, &dropped, err_tx),
            SampleFormat::I16 => build::<i16>(&device, stream_config, prod, &dropped, err_tx),
            SampleFormat::U16 => build::<u16>(&device, stream_config, prod, &dropped, err_tx),
            SampleFormat::I32 => build::<i32>(&device, stream_config, prod, &dropped, err_tx),
            SampleFormat::U32 => build::<u32>(&device, stream_config, prod, &dropped, err_tx),
            SampleFormat::I8 => build::<i8>(&device, stream_config, prod, &dropped, err_tx),
            SampleFormat::U8 => build::<u8>(&device, stream_config, prod, &dropped, err_tx),
            SampleFormat::F64 => build::<f64>(&device, stream_config, prod, &dropped, err_tx),
            other => {
                return Err(AudioError::Unsupported(format!(
                    "{name} delivers {other} samples; pick another device or set it to 16-bit or float in the system's sound settings"
                )))
            }
        }
        .map_err(|e| open_error(&name, &e))?;
        stream.play().map_err(|e| open_error(&name, &e))?;
        let mut outputs = Vec::new();
        for (speaker, pick) in routes(&self.map, config.channels()) {
            outputs.push(Output {
                speaker,
                pick,
                resampler: Resampler::new(rate)?,
                pending: Vec::new(),
                sent: 0,
            });
        }
        tracing::info!(device = %name, channels, rate, format = %config.sample_format(), "capturing");
        Ok(Live {
            stream: Some(stream),
            name,
            cons,
            errors,
            dropped,
            channels,
            rate,
            outputs,
            anchor: None,
            last_data: Instant::now(),
            flowing: false,
        })
    }
}

fn speakers(outputs: &[Output]) -> String {
    outputs
        .iter()
        .map(|o| o.speaker.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn open_error(name: &str, e: &cpal::Error) -> AudioError {
    match e.kind() {
        cpal::ErrorKind::DeviceNotAvailable | cpal::ErrorKind::HostUnavailable => {
            AudioError::NoDevice(format!(
                "{name} is not available ({e}); is it plugged in and the sound server running?"
            ))
        }
        cpal::ErrorKind::DeviceBusy => {
            AudioError::Device(format!("{name} is busy ({e}); close the program using it"))
        }
        cpal::ErrorKind::PermissionDenied => AudioError::Device(format!(
            "no permission to record from {name} ({e}); allow microphone access for this program"
        )),
        _ => AudioError::Device(format!("cannot open {name}: {e}")),
    }
}

fn format_supported(format: SampleFormat) -> bool {
    matches!(
        format,
        SampleFormat::F32
            | SampleFormat::I16
            | SampleFormat::U16
            | SampleFormat::I32
            | SampleFormat::U32
            | SampleFormat::I8
            | SampleFormat::U8
            | SampleFormat::F64
    )
}

/// The device's default input configuration, or, when its sample format is one we cannot
/// read, the first configuration with one we can.
fn pick_config(
    device: &cpal::Device,
    name: &str,
) -> Result<cpal::SupportedStreamConfig, AudioError> {
    let default = device
        .default_input_config()
        .map_err(|e| open_error(name, &e))?;
    if format_supported(default.sample_format()) {
        return Ok(default);
    }
    let ranges = device
        .supported_input_configs()
        .map_err(|e| open_error(name, &e))?;
    for range in ranges {
        if format_supported(range.sample_format()) {
            let rate = default.sample_rate();
            return Ok(range
                .try_with_sample_rate(rate)
                .unwrap_or_else(|| range.with_max_sample_rate()));
        }
    }
    Err(AudioError::Unsupported(format!(
        "{name} delivers {} samples only; pick another device or set it to 16-bit or float in the system's sound settings",
        default.sample_format()
    )))
}

/// Builds an input stream whose callback converts to f32 and pushes whole frames into the ring,
/// without blocking or allocating.
fn build<T>(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    mut prod: ringbuf::HeapProd<f32>,
    dropped: &Arc<AtomicUsize>,
    errors: Sender<String>,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    const BUF: usize = 1024;
    let channels = usize::from(config.channels.max(1));
    // Whole frames per piece, so a short ring never splits a frame.
    let piece = (BUF / channels).max(1) * channels;
    let dropped = Arc::clone(dropped);
    let data = move |data: &[T], _: &cpal::InputCallbackInfo| {
        let mut buf = [0f32; BUF];
        for part in data.chunks(piece.min(BUF)) {
            let n = part.len();
            for (o, s) in buf.iter_mut().zip(part) {
                *o = f32::from_sample_(*s);
            }
            let room = prod.vacant_len();
            let fit = n.min(room - room % channels);
            let pushed = prod.push_slice(&buf[..fit]);
            if pushed < n {
                dropped.fetch_add(n - pushed, Ordering::Relaxed);
            }
        }
    };
    let mut reported = false;
    let error = move |e: cpal::Error| {
        if is_fatal(e.kind()) && !reported {
            reported = true;
            let _ = errors.send(e.to_string());
        }
    };
    device.build_input_stream::<T, _, _>(config, data, error, Some(Duration::from_secs(5)))
}
