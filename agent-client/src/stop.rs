//! Stopping mid-call: the agent closes the overlay, the desktop session logs off (SIGTERM) or
//! someone presses Ctrl-C. The producer (transcript or audio) stops, and the call ends through
//! the link like any other call — what is queued is delivered first, then the call end, then
//! the summary — so nothing already recognized is lost.

use crate::link::Outgoing;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::mpsc;

static STOPPING: AtomicBool = AtomicBool::new(false);
/// The latest call time handed to the link, as `f64` bits.
static CALL_TIME: AtomicU64 = AtomicU64::new(0);

/// Whether a stop was asked for; producers check it before each send.
pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

/// Records that the call has reached `t` seconds (the end of an utterance, a clock tick).
pub fn reached(t: f64) {
    let mut current = CALL_TIME.load(Ordering::SeqCst);
    while t > f64::from_bits(current) {
        match CALL_TIME.compare_exchange(current, t.to_bits(), Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => break,
            Err(seen) => current = seen,
        }
    }
}

/// The call end a stop sends: the latest call time reached.
pub fn call_time() -> f64 {
    f64::from_bits(CALL_TIME.load(Ordering::SeqCst))
}

/// Marks the stop and returns the call end to send, or `None` when a stop was already asked.
pub fn begin() -> Option<Outgoing> {
    if STOPPING.swap(true, Ordering::SeqCst) {
        return None;
    }
    Some(Outgoing::End(call_time()))
}

/// Stops from outside the async runtime (the window closed): ends the call through `out`.
pub fn from_window(out: &mpsc::Sender<Outgoing>) {
    if let Some(end) = begin() {
        tracing::info!("the window closed mid-call: ending the call, sending what is left");
        let _ = out.blocking_send(end);
    }
}
