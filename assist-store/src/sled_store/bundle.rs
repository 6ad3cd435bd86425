//! A call stored whole, in one value: the `bundles` tree (schema version 3).
//!
//! sled's cost is per key written (a log fragment and a tree node update each, several
//! microseconds however small the value), so a call stored whole by
//! [`crate::CallStore::store_finished_calls`] is written as two keys: its **bundle** (this
//! module) and, last, its row. A bundle is one JSON object:
//!
//! ```text
//! {"meta": CallMeta, "summary": Summary,
//!  "lines": [[suffix hex, StoredLine], ...], "alerts": [...], "emotions": [...], "cards": [...]}
//! ```
//!
//! Each kind of item is **packed**: the very items, under the very key suffixes, that the
//! incremental path writes one key each (same masking, same event fingerprints), in suffix
//! order. Every field may be missing (a kind the call has none of; a call upgraded from
//! version 2 keeps its metadata and summary in their own trees).
//!
//! Readers ([`super::calls`]) take the metadata and the summary from their own trees first (an
//! `end_call` or a summary event after the call was stored whole writes there and wins), and
//! read a call's items from its single keys and its bundle alike.
//!
//! **Upgrade from version 2**, which packed the items one value per kind under the bare
//! `call id` NUL key of each kind's tree: on open, every such value moves into its call's
//! bundle, in transactions of a few hundred, before the schema version is raised; an upgrade
//! cut short is finished by the next open.

use super::calls::unhex;
use super::{decode, Result, Trees};
use crate::error::StoreError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use std::ops::Bound::{Excluded, Unbounded};

/// The kinds of items a bundle packs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Lines,
    Alerts,
    Emotions,
    Cards,
}

impl Kind {
    pub(super) const ALL: [Kind; 4] = [Kind::Lines, Kind::Alerts, Kind::Emotions, Kind::Cards];

    /// The field of the bundle (and the name of the kind's own tree).
    fn field(self) -> &'static str {
        match self {
            Kind::Lines => "lines",
            Kind::Alerts => "alerts",
            Kind::Emotions => "emotions",
            Kind::Cards => "cards",
        }
    }
}

/// A bundle as read: each field still JSON, decoded when asked for.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Bundle {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    meta: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    summary: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lines: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alerts: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    emotions: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cards: Option<Box<RawValue>>,
}

impl Bundle {
    /// The bundle stored for a call (empty when it has none).
    pub(super) fn read(trees: &Trees, call_id: &str) -> Result<Bundle> {
        match trees.bundles.get(call_id.as_bytes())? {
            Some(raw) => decode(&raw),
            None => Ok(Bundle::default()),
        }
    }

    pub(super) fn meta<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        self.meta.as_deref().map(decode_raw).transpose()
    }

    pub(super) fn summary<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        self.summary.as_deref().map(decode_raw).transpose()
    }

    /// The packed items of one kind, as (key suffix, item) pairs in suffix order.
    pub(super) fn items<T: DeserializeOwned>(
        &self,
        kind: Kind,
        call_id: &str,
    ) -> Result<Vec<(Vec<u8>, T)>> {
        match self.packed(kind) {
            Some(raw) => decode_packed(raw.get().as_bytes(), call_id),
            None => Ok(Vec::new()),
        }
    }

    fn packed(&self, kind: Kind) -> Option<&RawValue> {
        match kind {
            Kind::Lines => self.lines.as_deref(),
            Kind::Alerts => self.alerts.as_deref(),
            Kind::Emotions => self.emotions.as_deref(),
            Kind::Cards => self.cards.as_deref(),
        }
    }

    fn set_packed(&mut self, kind: Kind, raw: Box<RawValue>) {
        let slot = match kind {
            Kind::Lines => &mut self.lines,
            Kind::Alerts => &mut self.alerts,
            Kind::Emotions => &mut self.emotions,
            Kind::Cards => &mut self.cards,
        };
        *slot = Some(raw);
    }
}

fn decode_raw<T: DeserializeOwned>(raw: &RawValue) -> Result<T> {
    decode(raw.get().as_bytes())
}

/// A packed kind: `[[suffix hex, item], ...]`, as (suffix, item) pairs.
pub(super) fn decode_packed<T: DeserializeOwned>(
    raw: &[u8],
    call_id: &str,
) -> Result<Vec<(Vec<u8>, T)>> {
    decode::<Vec<(String, T)>>(raw)?
        .into_iter()
        .map(|(suffix, item)| {
            unhex(&suffix).map(|s| (s, item)).ok_or_else(|| {
                StoreError::Serialization(format!(
                    "a packed item of call {call_id} has a bad key {suffix:?}"
                ))
            })
        })
        .collect()
}

/// Writes a bundle from values already encoded: the metadata, the summary, and the packed
/// kinds (`None`: the call has none of that kind).
pub(super) fn encode(meta: &[u8], summary: &[u8], packed: [(Kind, Option<Vec<u8>>); 4]) -> Vec<u8> {
    let size = meta.len()
        + summary.len()
        + packed
            .iter()
            .map(|(_, value)| value.as_ref().map_or(0, |v| v.len() + 16))
            .sum::<usize>();
    let mut out = Vec::with_capacity(size + 32);
    out.extend_from_slice(b"{\"meta\":");
    out.extend_from_slice(meta);
    out.extend_from_slice(b",\"summary\":");
    out.extend_from_slice(summary);
    for (kind, value) in packed {
        if let Some(value) = value {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(kind.field().as_bytes());
            out.extend_from_slice(b"\":");
            out.extend_from_slice(&value);
        }
    }
    out.push(b'}');
    out
}

/// How many version 2 packed values one transaction of the upgrade moves.
const UPGRADE_CHUNK: usize = 256;

/// Moves every version 2 packed value (`call id` NUL in a kind's tree) into its call's
/// bundle; returns how many it moved. Safe to run again after a crash: a moved value is gone
/// from its tree in the same transaction that put it in the bundle.
pub(super) fn upgrade_packed_values(trees: &Trees) -> Result<usize> {
    let mut moved = 0;
    for kind in Kind::ALL {
        let tree = trees.of_kind(kind);
        let mut after: Option<sled::IVec> = None;
        loop {
            // Packed keys: the call id, then the only NUL, last.
            let mut chunk: Vec<(sled::IVec, sled::IVec)> = Vec::with_capacity(UPGRADE_CHUNK);
            let rest = match &after {
                Some(key) => tree.range::<&[u8], _>((Excluded(key.as_ref()), Unbounded)),
                None => tree.iter(),
            };
            for item in rest {
                let (key, value) = item?;
                if key.last() == Some(&0) && key.iter().filter(|&&b| b == 0).count() == 1 {
                    chunk.push((key, value));
                    if chunk.len() == UPGRADE_CHUNK {
                        break;
                    }
                }
            }
            if chunk.is_empty() {
                break;
            }
            moved += chunk.len();
            after = chunk.last().map(|(key, _)| key.clone());
            move_into_bundles(trees, kind, &chunk)?;
            tracing::info!(
                kind = kind.field(),
                moved,
                "store upgrade: packed items moved into bundles"
            );
        }
    }
    Ok(moved)
}

fn move_into_bundles(trees: &Trees, kind: Kind, chunk: &[(sled::IVec, sled::IVec)]) -> Result<()> {
    let tree = trees.of_kind(kind);
    let result: std::result::Result<(), TransactionError<StoreError>> = (&trees.bundles, tree)
        .transaction(|(bundles, items)| {
            for (key, value) in chunk {
                let id = &key[..key.len() - 1];
                let call_id = String::from_utf8_lossy(id);
                let abort = ConflictableTransactionError::Abort;
                // Checked before it moves: a broken value stops the upgrade, naming the call.
                decode_packed::<serde::de::IgnoredAny>(value, &call_id).map_err(abort)?;
                let mut bundle: Bundle = match bundles.get(id)? {
                    Some(raw) => decode(&raw).map_err(abort)?,
                    None => Bundle::default(),
                };
                let packed = RawValue::from_string(String::from_utf8_lossy(value).into_owned())
                    .map_err(|e| abort(e.into()))?;
                bundle.set_packed(kind, packed);
                let encoded = serde_json::to_vec(&bundle).map_err(|e| abort(e.into()))?;
                bundles.insert(id, encoded)?;
                items.remove(key)?;
            }
            Ok(())
        });
    match result {
        Ok(()) => Ok(()),
        Err(TransactionError::Abort(e)) => Err(e),
        Err(TransactionError::Storage(e)) => Err(StoreError::Sled(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoded_bundle_reads_back_field_by_field() {
        let lines = br#"[["0000000000000001",{"seq":1}]]"#.to_vec();
        let raw = encode(
            br#"{"call_id":"c1"}"#,
            br#"{"score":90}"#,
            [
                (Kind::Lines, Some(lines)),
                (Kind::Alerts, None),
                (Kind::Emotions, Some(b"[]".to_vec())),
                (Kind::Cards, None),
            ],
        );
        let bundle: Bundle = decode(&raw).expect("valid JSON");
        let meta: serde_json::Value = bundle.meta().expect("meta").expect("present");
        assert_eq!(meta["call_id"], "c1");
        let summary: serde_json::Value = bundle.summary().expect("summary").expect("present");
        assert_eq!(summary["score"], 90);
        let items: Vec<(Vec<u8>, serde_json::Value)> =
            bundle.items(Kind::Lines, "c1").expect("lines");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].0, 1u64.to_be_bytes().to_vec());
        assert_eq!(items[0].1["seq"], 1);
        assert!(bundle
            .items::<serde_json::Value>(Kind::Alerts, "c1")
            .expect("alerts")
            .is_empty());
        assert!(bundle
            .items::<serde_json::Value>(Kind::Emotions, "c1")
            .expect("emotions")
            .is_empty());
    }

    #[test]
    fn a_packed_item_with_a_bad_key_names_its_call() {
        let err =
            decode_packed::<serde_json::Value>(br#"[["zz",{}]]"#, "c9").expect_err("a bad key");
        assert!(err.to_string().contains("c9"), "{err}");
    }
}
