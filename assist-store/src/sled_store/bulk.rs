//! Storing whole finished calls at once ([`crate::CallStore::store_finished_calls`]).
//!
//! The incremental path writes one sled key per line and per event: about 40 for a 20-turn
//! chat, and sled's cost is per key (a log fragment and a tree node update each, several
//! microseconds however small the value). A call stored whole has all its items at hand, so it
//! is written as **two keys**: its bundle ([`super::bundle`]: metadata, summary and every item,
//! packed under the very suffixes the incremental path would have written, with the same
//! masking and event fingerprints, the first of a repeated seq or event kept) and its row.
//!
//! **Several threads store at once.** A sled transaction or batch takes sled's global write
//! lock (and excludes every plain insert meanwhile), so one per batch would let only one
//! thread write at a time; plain inserts run concurrently. So a new call is written with plain
//! inserts, the bundle first and **the row last**. The row is what makes a call exist for the
//! lists, reports and a rerun's resume check (`call_row`); sled's log is recovered as a prefix
//! after a crash, so a recovered row has its bundle, and a call cut short before its row is
//! written again whole by the rerun (the bundle overwritten). A call that replaces a stored one
//! is removed and written in one transaction. Two batches with a call id in common do not
//! overlap: the second waits ([`InFlight`]).
//!
//! The row is computed from the same items with the same steps as `end_call` recomputes it
//! (`rows.rs`), and the new rows go into the row cache in one merge.

use super::bundle::{self, Kind};
use super::calls::{check_line, event_suffix, hex, StoredCard};
use super::{call_prefix, check_id, encode, SledStore, Write};
use crate::call::{CallMeta, CallStatus, FinishedCall, StoredLine};
use crate::error::Result;
use crate::query::CallRow;
use assist_engine::mask::mask;
use assist_protocol::{Alert, Event};
use std::borrow::Cow;
use std::collections::btree_map::{BTreeMap, Entry};
use std::collections::{HashMap, HashSet};
use std::sync::{Condvar, Mutex, MutexGuard};

/// One call encoded and checked, before the store is looked at.
struct Prepared<'a> {
    call_id: &'a str,
    replace: bool,
    row: CallRow,
    /// The bundle, then the row.
    writes: [Write<'a>; 2],
}

/// The call ids being stored right now, so that two batches sharing one never interleave.
#[derive(Default)]
pub(super) struct InFlight {
    ids: Mutex<HashSet<String>>,
    released: Condvar,
}

impl InFlight {
    fn lock(&self) -> MutexGuard<'_, HashSet<String>> {
        self.ids
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until none of `ids` is being stored, then holds them all until the guard drops
    /// (all at once, so two batches never wait for each other).
    fn reserve(&self, ids: &[&str]) -> Reserved<'_> {
        let mut held = self.lock();
        while ids.iter().any(|id| held.contains(*id)) {
            held = self
                .released
                .wait(held)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        let ids: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        held.extend(ids.iter().cloned());
        Reserved {
            in_flight: self,
            ids,
        }
    }
}

/// Call ids reserved by one `store_finished_calls`.
struct Reserved<'a> {
    in_flight: &'a InFlight,
    ids: Vec<String>,
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        let mut held = self.in_flight.lock();
        for id in &self.ids {
            held.remove(id);
        }
        drop(held);
        self.in_flight.released.notify_all();
    }
}

impl SledStore {
    pub(super) fn store_finished_calls_impl(&self, calls: &[FinishedCall]) -> Result<Vec<bool>> {
        // Encoding (masking, JSON, the rows) needs no lock.
        let prepared = calls
            .iter()
            .map(|call| self.prepare(call))
            .collect::<Result<Vec<_>>>()?;
        let ids: Vec<&str> = prepared.iter().map(|call| call.call_id).collect();
        let _reserved = self.in_flight.reserve(&ids);

        // Which calls are written: the first of a repeated id, and one the store has only
        // when it replaces it.
        let mut stored = Vec::with_capacity(calls.len());
        let mut planned: Vec<Option<Prepared<'_>>> = Vec::with_capacity(calls.len());
        let mut in_batch: HashMap<&str, usize> = HashMap::new();
        let mut replaced: Vec<&str> = Vec::new();
        for call in prepared {
            let id = call.call_id;
            let earlier = in_batch.get(id).copied();
            let in_store = earlier.is_none()
                && (self.cache_read().contains(id)
                    || (call.replace && self.read_meta(id)?.is_some()));
            if (earlier.is_some() || in_store) && !call.replace {
                stored.push(false);
                continue;
            }
            if let Some(j) = earlier {
                planned[j] = None;
            } else if in_store {
                replaced.push(id);
            }
            in_batch.insert(id, planned.len());
            planned.push(Some(call));
            stored.push(true);
        }

        // New calls: plain inserts, the row last. Replaced calls: one transaction (removal,
        // then the writes: the later write of a key wins).
        let mut together: Vec<Write<'_>> = Vec::new();
        for id in &replaced {
            together.extend(self.removals(id)?);
        }
        let mut rows = Vec::with_capacity(planned.len());
        for call in planned.into_iter().flatten() {
            let writes = call.writes;
            if replaced.contains(&call.call_id) {
                together.extend(writes);
            } else {
                for (tree, key, value) in writes {
                    match value {
                        Some(value) => tree.insert(key, value)?,
                        None => tree.remove(key)?,
                    };
                }
            }
            rows.push(call.row);
        }
        if !together.is_empty() {
            self.atomic(&together)?;
        }

        let mut cache = self.cache_write();
        for id in replaced {
            cache.remove(id);
        }
        cache.insert_new(rows);
        Ok(stored)
    }

    /// The writes of one call and its row.
    fn prepare<'a>(&'a self, call: &'a FinishedCall) -> Result<Prepared<'a>> {
        let call_id = call.meta.call_id.as_str();
        check_id("call id", call_id)?;
        check_id("agent id", &call.meta.agent_id)?;
        let meta = CallMeta {
            status: CallStatus::Ended,
            ended_at: Some(call.ended_at),
            ..call.meta.clone()
        };
        let mut row = CallRow::new(&meta);

        let mut lines = Pack::default();
        for line in &call.lines {
            check_line(call_id, line)?;
            if let Some(slot) = lines.vacant(line.seq.to_be_bytes().to_vec()) {
                // Masked again; copied only when that changes something.
                let value = match mask(&line.text) {
                    Cow::Borrowed(_) => encode(line)?,
                    Cow::Owned(text) => encode(&StoredLine {
                        text,
                        ..line.clone()
                    })?,
                };
                slot.insert(value);
            }
        }
        let (mut alerts, mut emotions, mut cards) =
            (Pack::default(), Pack::default(), Pack::default());
        for event in &call.events {
            match event {
                Event::Alert(alert) => {
                    let masked = match mask(&alert.text) {
                        Cow::Borrowed(_) => Cow::Borrowed(alert),
                        Cow::Owned(text) => Cow::Owned(Alert {
                            text,
                            ..alert.clone()
                        }),
                    };
                    let value = encode(masked.as_ref())?;
                    if let Some(slot) = alerts.vacant(event_suffix(masked.t, &value).to_vec()) {
                        slot.insert(value);
                        row.add_alert(&masked);
                    }
                }
                Event::Emotion(emotion) => {
                    let value = encode(emotion)?;
                    if let Some(slot) = emotions.vacant(event_suffix(emotion.t, &value).to_vec()) {
                        slot.insert(value);
                        row.add_emotion(emotion);
                    }
                }
                Event::Card(card) => {
                    let suffix = event_suffix(card.t, &encode(card)?);
                    if let Some(slot) = cards.vacant(suffix.to_vec()) {
                        let stored = StoredCard::of(card);
                        slot.insert(encode(&stored)?);
                        row.add_card(stored.card_id(), stored.kind(), None);
                    }
                }
                // The call's summary is `call.summary`, as `end_call` overwrites any before.
                Event::Summary(_) => {}
            }
        }
        row.lines = u32::try_from(lines.0.len()).unwrap_or(u32::MAX);
        row.apply_summary(&call.summary);

        let packed = [
            (Kind::Lines, lines),
            (Kind::Alerts, alerts),
            (Kind::Emotions, emotions),
            (Kind::Cards, cards),
        ]
        .map(|(kind, pack)| (kind, (!pack.0.is_empty()).then(|| pack.encode())));
        let id = call_id.as_bytes().to_vec();
        let whole = bundle::encode(&encode(&meta)?, &encode(&call.summary)?, packed);
        let writes = [
            (&self.t.bundles, id.clone(), Some(whole)),
            (&self.t.rows, id, Some(encode(&row)?)),
        ];
        Ok(Prepared {
            call_id,
            replace: call.replace,
            row,
            writes,
        })
    }

    /// Removals of everything stored about a call (what `delete_call` removes).
    fn removals(&self, call_id: &str) -> Result<Vec<Write<'_>>> {
        let mut writes = Vec::new();
        let prefix = call_prefix(call_id);
        for tree in self.t.per_call_prefixed() {
            for key in tree.scan_prefix(&prefix).keys() {
                writes.push((tree, key?.to_vec(), None));
            }
        }
        let id = call_id.as_bytes().to_vec();
        for tree in [
            &self.t.summaries,
            &self.t.bundles,
            &self.t.manual_scores,
            &self.t.calls,
            &self.t.rows,
        ] {
            writes.push((tree, id.clone(), None));
        }
        Ok(writes)
    }
}

/// The items of one kind, by key suffix, each encoded as the single key would hold it.
#[derive(Default)]
struct Pack(BTreeMap<Vec<u8>, Vec<u8>>);

impl Pack {
    /// The slot for `suffix`, unless an earlier item holds it (the first one stays, as with
    /// the incremental path's compare-and-swap).
    fn vacant(
        &mut self,
        suffix: Vec<u8>,
    ) -> Option<std::collections::btree_map::VacantEntry<'_, Vec<u8>, Vec<u8>>> {
        match self.0.entry(suffix) {
            Entry::Vacant(slot) => Some(slot),
            Entry::Occupied(_) => None,
        }
    }

    /// `[[suffix hex, item], ...]` in suffix order: what serde_json writes for
    /// `Vec<(String, T)>`, built from the items already encoded.
    fn encode(self) -> Vec<u8> {
        let size: usize = self.0.iter().map(|(k, v)| v.len() + 2 * k.len() + 6).sum();
        let mut out = Vec::with_capacity(size + 2);
        out.push(b'[');
        for (i, (suffix, value)) in self.0.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"[\"");
            out.extend_from_slice(hex(&suffix).as_bytes());
            out.extend_from_slice(b"\",");
            out.extend_from_slice(&value);
            out.push(b']');
        }
        out.push(b']');
        out
    }
}
