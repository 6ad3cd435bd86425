//! The live path's store writes: one writer thread, group commit.
//!
//! Connections hand their writes (a call begun, an accepted utterance with its events, card
//! feedback, the end of a call) to one thread through a bounded queue. The thread applies
//! everything waiting, flushes the store **once** for the whole batch, then tells each
//! connection its writes are durable. A connection acknowledges an utterance only after that,
//! so a crash never loses an acknowledged utterance, and 1,000 agents cost one disk flush per
//! batch instead of one per utterance.

use assist_protocol::{CardAction, Event, Summary};
use assist_store::{CallMeta, CallStore, StoredLine, UnixMs};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// How many jobs may wait for the writer before connections wait too (backpressure).
const QUEUE: usize = 4096;
/// Most jobs applied before one flush.
const MAX_BATCH: usize = 512;
/// A batch slower than this is logged.
const SLOW_BATCH: std::time::Duration = std::time::Duration::from_millis(100);

/// One store write of the live path.
#[derive(Debug, Clone)]
pub enum WriteOp {
    Begin(CallMeta),
    /// An accepted final utterance and the events it produced.
    Turn {
        call_id: String,
        line: StoredLine,
        events: Vec<Event>,
    },
    /// Events outside a final utterance (partials, ticks, the alerts of the call's end).
    Events {
        call_id: String,
        events: Vec<Event>,
    },
    Card {
        call_id: String,
        card_id: String,
        action: CardAction,
    },
    End {
        call_id: String,
        summary: Summary,
        ended_at: UnixMs,
    },
}

/// A write that did not happen; `unapplied` are the ops not stored (retry them).
#[derive(Debug, thiserror::Error)]
#[error("the call store refused a write: {message}")]
pub struct WriteError {
    pub message: String,
    pub unapplied: Vec<WriteOp>,
}

struct Job {
    ops: Vec<WriteOp>,
    done: Option<oneshot::Sender<Result<(), WriteError>>>,
}

/// The handle connections write through.
pub struct StoreWriter {
    tx: mpsc::Sender<Job>,
}

impl StoreWriter {
    /// Starts the writer thread; it ends when the last handle is dropped.
    pub fn start(store: Arc<dyn CallStore>) -> StoreWriter {
        let (tx, rx) = mpsc::channel(QUEUE);
        let spawned = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(store, rx));
        if let Err(e) = spawned {
            // Without the thread every write fails with a clear error below.
            tracing::error!(error = %e, "cannot start the store writer thread");
        }
        StoreWriter { tx }
    }

    /// Writes `ops` and returns once they are durable.
    pub async fn write(&self, ops: Vec<WriteOp>) -> Result<(), WriteError> {
        if ops.is_empty() {
            return Ok(());
        }
        let (done, wait) = oneshot::channel();
        let job = Job {
            ops,
            done: Some(done),
        };
        if let Err(mpsc::error::SendError(job)) = self.tx.send(job).await {
            return Err(stopped(job.ops));
        }
        wait.await.unwrap_or_else(|_| {
            Err(WriteError {
                message: "the store writer stopped".into(),
                unapplied: Vec::new(),
            })
        })
    }

    /// Queues `ops` without waiting for them to be durable (they are flushed with the next
    /// batch). Waits only while the queue is full.
    pub async fn queue(&self, ops: Vec<WriteOp>) {
        if ops.is_empty() {
            return;
        }
        if self.tx.send(Job { ops, done: None }).await.is_err() {
            tracing::error!("the store writer stopped: a write was lost");
        }
    }
}

fn stopped(ops: Vec<WriteOp>) -> WriteError {
    WriteError {
        message: "the store writer is not running".into(),
        unapplied: ops,
    }
}

fn run(store: Arc<dyn CallStore>, mut rx: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let mut results: Vec<Result<(), WriteError>> = Vec::with_capacity(batch.len());
        for job in &mut batch {
            results.push(apply(store.as_ref(), std::mem::take(&mut job.ops)));
        }
        let applied = started.elapsed();
        let flushed = store.flush();
        let took = started.elapsed();
        if took > SLOW_BATCH {
            tracing::warn!(
                jobs = batch.len(),
                apply_ms = applied.as_millis() as u64,
                flush_ms = (took - applied).as_millis() as u64,
                "slow call-log batch: acknowledgements waited for the disk"
            );
        }
        if let Err(e) = flushed {
            tracing::error!(error = %e, "flushing the call store failed");
            for result in &mut results {
                if result.is_ok() {
                    *result = Err(WriteError {
                        message: e.to_string(),
                        unapplied: Vec::new(),
                    });
                }
            }
        }
        for (job, result) in batch.drain(..).zip(results) {
            match job.done {
                Some(done) => {
                    let _ = done.send(result);
                }
                None => {
                    if let Err(e) = result {
                        tracing::error!(error = %e.message, lost = e.unapplied.len(), "a queued store write failed");
                    }
                }
            }
        }
    }
}

/// Applies ops in order; stops at the first failure and returns it with the ops not applied.
fn apply(store: &dyn CallStore, ops: Vec<WriteOp>) -> Result<(), WriteError> {
    let mut ops = ops.into_iter();
    while let Some(op) = ops.next() {
        let result = match &op {
            WriteOp::Begin(meta) => store.begin_call(meta).map(drop),
            WriteOp::Turn {
                call_id,
                line,
                events,
            } => store.append_turn(call_id, line, events).map(drop),
            WriteOp::Events { call_id, events } => store.append_events(call_id, events).map(drop),
            WriteOp::Card {
                call_id,
                card_id,
                action,
            } => store.record_card_action(call_id, card_id, *action),
            WriteOp::End {
                call_id,
                summary,
                ended_at,
            } => store.end_call(call_id, summary, *ended_at),
        };
        if let Err(e) = result {
            let mut unapplied = vec![op];
            unapplied.extend(ops);
            return Err(WriteError {
                message: e.to_string(),
                unapplied,
            });
        }
    }
    Ok(())
}
