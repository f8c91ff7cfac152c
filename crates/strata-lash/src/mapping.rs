//! The lossless type mapping between lash-core's persistence types and Strata's: one function
//! per type and direction (`*_to_strata`, `*_to_lash`), used by both bridges and nowhere
//! duplicated.
//!
//! # The rule that makes it lossless both ways
//!
//! lash's types are typed runtime values (messages, tool state, frames…); Strata's are opaque
//! bytes and plain records. Each pair is mapped by a *native* encoding and an *envelope*:
//!
//! - **lash → Strata** writes a lash value in its native form: the payload encoding
//!   ([`encode`], MessagePack with field names, see the crate docs for the measurements that
//!   chose it) for bytes fields, plain fields where both sides have them. A lash value that
//!   is an envelope (below) is unwrapped instead, giving back the Strata value it carries.
//! - **Strata → lash** decodes bytes that are a native encoding into the lash value. With
//!   [`Decode::Exact`] only bytes that *are* the canonical encoding of a lash value (re-encoding
//!   gives the same bytes, and the plain fields agree) count; anything else (a Strata
//!   application's own bytes) is carried in an *envelope*: a lash value of the right type with
//!   the Strata bytes in a reserved slot (a plugin node of type [`ENVELOPE`], a tool-state
//!   entry, a plugin-snapshot artifact, a turn-input blob, a `strata …` string).
//!
//! So a lash value survives a Strata store unchanged (`to_lash(to_strata(v)) == v`) and a
//! Strata value survives a lash store byte for byte (`to_strata(to_lash(v, Exact)) == v`);
//! `tests/mapping.rs` checks both with proptest. The reserved slots are the price: a lash value
//! that is itself shaped like an envelope (a plugin node of type `strata.bytes`, a provider
//! id starting with `strata.bytes:`, …) reads back as the Strata value it describes.
//! [`Decode::Lenient`] (the read path of [`ForLash`](crate::ForLash)) skips the
//! canonical-encoding check, since what the runtime gets is a lash value either way.
//!
//! Values one side cannot represent are refused with [`StoreError::InvalidInput`] and nothing
//! is written: a negative lash token count, a Strata counter above `i64::MAX`.
//!
//! Errors map variant to variant where both sides have the variant; a Strata-only variant
//! (`InvalidInput`, `Unavailable`, `Timeout`, …) crosses to lash as `Backend` whose text ends
//! with a machine-readable tag, and comes back as the same variant ([`error_to_strata`]).

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use lash_core as lash;
use lash_core::runtime::{
    QueuedWorkBatch, QueuedWorkBatchDraft, QueuedWorkClaim, QueuedWorkClaimBoundary,
    QueuedWorkCompletion, QueuedWorkItem, QueuedWorkPayload,
};
use lash_core::session_graph::SharedJsonValue;
use lash_core::store::{PersistedSessionRead, RuntimeCommitResult, SessionCheckpoint};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use strata_core as strata;
use strata_core::{Bytes, Operation, StoreError};

/// The marker of a Strata value carried inside a lash value (plugin type, map key, tool
/// name, string prefix).
pub const ENVELOPE: &str = "strata.bytes";

/// How bytes from a Strata store become lash values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decode {
    /// Bytes that decode become the lash value (reads served to the lash runtime).
    Lenient,
    /// Only the canonical encoding of a lash value becomes that value; other bytes travel in
    /// an envelope (Strata values written into a lash store, so they come back verbatim).
    Exact,
}

// ---------------------------------------------------------------------------------------------
// The payload encoding
// ---------------------------------------------------------------------------------------------

/// Encodes a lash value as Strata bytes: MessagePack with field names (`rmp-serde`), the
/// fastest of the self-describing formats that lash's types round-trip through exactly.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, StoreError> {
    let mut buffer = Vec::with_capacity(256);
    rmp_serde::encode::write_named(&mut buffer, value).map_err(|error| {
        StoreError::InvalidInput(format!("lash value does not encode: {error}"))
    })?;
    Ok(Bytes::from(buffer))
}

/// Decodes bytes written by [`encode`]; `None` when they are not such an encoding.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    rmp_serde::from_slice(bytes).ok()
}

/// [`decode`], and with [`Decode::Exact`] only if re-encoding gives the same bytes.
fn decode_as<T: Serialize + DeserializeOwned>(bytes: &[u8], mode: Decode) -> Option<T> {
    let value = decode::<T>(bytes)?;
    match mode {
        Decode::Lenient => Some(value),
        Decode::Exact => encode(&value).is_ok_and(|again| again == bytes).then_some(value),
    }
}

fn base64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

fn unbase64(text: &str) -> Option<Bytes> {
    BASE64.decode(text).ok().map(Bytes::from)
}

/// A lash value's JSON form (its `serde` encoding), or `Null` if it has none.
fn json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Scalars: tier, read scope, stamp, attachment ids, policies, reports
// ---------------------------------------------------------------------------------------------

/// Strata's tier as lash's (same two tiers, same order).
pub fn tier_to_lash(tier: strata::DurabilityTier) -> lash::DurabilityTier {
    match tier {
        strata::DurabilityTier::Inline => lash::DurabilityTier::Inline,
        strata::DurabilityTier::Durable => lash::DurabilityTier::Durable,
    }
}

/// lash's tier as Strata's.
pub fn tier_to_strata(tier: lash::DurabilityTier) -> strata::DurabilityTier {
    match tier {
        lash::DurabilityTier::Inline => strata::DurabilityTier::Inline,
        lash::DurabilityTier::Durable => strata::DurabilityTier::Durable,
    }
}

/// Strata's read scope as lash's (same shape).
pub fn scope_to_lash(scope: strata::SessionReadScope) -> lash::SessionReadScope {
    match scope {
        strata::SessionReadScope::FullGraph => lash::SessionReadScope::FullGraph,
        strata::SessionReadScope::ActivePath { leaf_node_id } => {
            lash::SessionReadScope::ActivePath { leaf_node_id }
        }
    }
}

/// lash's read scope as Strata's.
pub fn scope_to_strata(scope: lash::SessionReadScope) -> strata::SessionReadScope {
    match scope {
        lash::SessionReadScope::FullGraph => strata::SessionReadScope::FullGraph,
        lash::SessionReadScope::ActivePath { leaf_node_id } => {
            strata::SessionReadScope::ActivePath { leaf_node_id }
        }
    }
}

/// Strata's turn stamp as lash's. The hash crosses unchanged: each side compares it as an
/// opaque string, so a stamped retry is answered from the stored stamp on either side.
pub fn stamp_to_lash(stamp: strata::RuntimeTurnCommitStamp) -> lash::RuntimeTurnCommitStamp {
    lash::RuntimeTurnCommitStamp::new(stamp.session_id, stamp.turn_id, stamp.turn_commit_hash)
}

/// lash's turn stamp as Strata's.
pub fn stamp_to_strata(stamp: lash::RuntimeTurnCommitStamp) -> strata::RuntimeTurnCommitStamp {
    strata::RuntimeTurnCommitStamp {
        session_id: stamp.session_id,
        turn_id: stamp.turn_id,
        turn_commit_hash: stamp.turn_commit_hash,
    }
}

/// Attachment ids: lash's newtype around the same string.
pub fn attachment_ids_to_lash(ids: &[String]) -> Vec<lash::AttachmentId> {
    ids.iter().map(|id| lash::AttachmentId::new(id.clone())).collect()
}

/// lash attachment ids as Strata's strings.
pub fn attachment_ids_to_strata(ids: &[lash::AttachmentId]) -> Vec<String> {
    ids.iter().map(|id| id.as_str().to_owned()).collect()
}

/// A manifest intent as lash's.
pub fn intent_to_lash(intent: strata::AttachmentIntent) -> lash::AttachmentIntent {
    lash::AttachmentIntent {
        attachment_id: lash::AttachmentId::new(intent.attachment_id),
        session_id: intent.session_id,
        canonical_uri: intent.canonical_uri,
        intent_at_epoch_ms: intent.intent_at_epoch_ms,
    }
}

/// A lash manifest intent as Strata's.
pub fn intent_to_strata(intent: lash::AttachmentIntent) -> strata::AttachmentIntent {
    strata::AttachmentIntent {
        attachment_id: intent.attachment_id.as_str().to_owned(),
        session_id: intent.session_id,
        canonical_uri: intent.canonical_uri,
        intent_at_epoch_ms: intent.intent_at_epoch_ms,
    }
}

/// A manifest row as lash's.
pub fn manifest_entry_to_lash(
    entry: strata::AttachmentManifestEntry,
) -> lash::AttachmentManifestEntry {
    lash::AttachmentManifestEntry {
        attachment_id: lash::AttachmentId::new(entry.attachment_id),
        session_id: entry.session_id,
        canonical_uri: entry.canonical_uri,
        intent_at_epoch_ms: entry.intent_at_epoch_ms,
        committed_at_epoch_ms: entry.committed_at_epoch_ms,
    }
}

/// A lash manifest row as Strata's.
pub fn manifest_entry_to_strata(
    entry: lash::AttachmentManifestEntry,
) -> strata::AttachmentManifestEntry {
    strata::AttachmentManifestEntry {
        attachment_id: entry.attachment_id.as_str().to_owned(),
        session_id: entry.session_id,
        canonical_uri: entry.canonical_uri,
        intent_at_epoch_ms: entry.intent_at_epoch_ms,
        committed_at_epoch_ms: entry.committed_at_epoch_ms,
    }
}

/// Strata's vacuum report as lash's.
pub fn vacuum_to_lash(report: strata::VacuumReport) -> lash::VacuumReport {
    lash::VacuumReport { removed_node_count: saturating_usize(report.removed_node_count) }
}

/// lash's vacuum report as Strata's.
pub fn vacuum_to_strata(report: lash::VacuumReport) -> strata::VacuumReport {
    strata::VacuumReport { removed_node_count: report.removed_node_count as u64 }
}

/// Strata's GC report as lash's.
pub fn gc_to_lash(report: strata::GcReport) -> lash::GcReport {
    lash::GcReport {
        root_count: saturating_usize(report.root_count),
        retained_blob_count: saturating_usize(report.retained_blob_count),
        deleted_blob_count: saturating_usize(report.deleted_blob_count),
    }
}

/// lash's GC report as Strata's.
pub fn gc_to_strata(report: lash::GcReport) -> strata::GcReport {
    strata::GcReport {
        root_count: report.root_count as u64,
        retained_blob_count: report.retained_blob_count as u64,
        deleted_blob_count: report.deleted_blob_count as u64,
    }
}

fn saturating_usize(count: u64) -> usize {
    usize::try_from(count).unwrap_or(usize::MAX)
}

/// Strata's delivery policy as lash's (same variants).
pub fn delivery_to_lash(policy: strata::DeliveryPolicy) -> lash::DeliveryPolicy {
    match policy {
        strata::DeliveryPolicy::EarliestSafeBoundary => lash::DeliveryPolicy::EarliestSafeBoundary,
        strata::DeliveryPolicy::AfterCurrentTurnCommit => {
            lash::DeliveryPolicy::AfterCurrentTurnCommit
        }
    }
}

/// lash's delivery policy as Strata's.
pub fn delivery_to_strata(policy: lash::DeliveryPolicy) -> strata::DeliveryPolicy {
    match policy {
        lash::DeliveryPolicy::EarliestSafeBoundary => strata::DeliveryPolicy::EarliestSafeBoundary,
        lash::DeliveryPolicy::AfterCurrentTurnCommit => {
            strata::DeliveryPolicy::AfterCurrentTurnCommit
        }
    }
}

/// Strata's slot policy as lash's.
pub fn slot_to_lash(policy: strata::SlotPolicy) -> lash::SlotPolicy {
    match policy {
        strata::SlotPolicy::Exclusive => lash::SlotPolicy::Exclusive,
        strata::SlotPolicy::Join => lash::SlotPolicy::Join,
    }
}

/// lash's slot policy as Strata's.
pub fn slot_to_strata(policy: lash::SlotPolicy) -> strata::SlotPolicy {
    match policy {
        lash::SlotPolicy::Exclusive => strata::SlotPolicy::Exclusive,
        lash::SlotPolicy::Join => strata::SlotPolicy::Join,
    }
}

/// Strata's merge key as lash's.
pub fn merge_key_to_lash(key: strata::MergeKey) -> lash::MergeKey {
    match key {
        strata::MergeKey::Never => lash::MergeKey::Never,
        strata::MergeKey::PayloadDefault => lash::MergeKey::PayloadDefault,
        strata::MergeKey::Group(group) => lash::MergeKey::Group(group),
    }
}

/// lash's merge key as Strata's.
pub fn merge_key_to_strata(key: lash::MergeKey) -> strata::MergeKey {
    match key {
        lash::MergeKey::Never => strata::MergeKey::Never,
        lash::MergeKey::PayloadDefault => strata::MergeKey::PayloadDefault,
        lash::MergeKey::Group(group) => strata::MergeKey::Group(group),
    }
}

/// Strata's claim boundary as lash's.
pub fn boundary_to_lash(boundary: strata::QueuedWorkClaimBoundary) -> QueuedWorkClaimBoundary {
    match boundary {
        strata::QueuedWorkClaimBoundary::ActiveTurnCheckpoint => {
            QueuedWorkClaimBoundary::ActiveTurnCheckpoint
        }
        strata::QueuedWorkClaimBoundary::Idle => QueuedWorkClaimBoundary::Idle,
    }
}

/// lash's claim boundary as Strata's.
pub fn boundary_to_strata(boundary: QueuedWorkClaimBoundary) -> strata::QueuedWorkClaimBoundary {
    match boundary {
        QueuedWorkClaimBoundary::ActiveTurnCheckpoint => {
            strata::QueuedWorkClaimBoundary::ActiveTurnCheckpoint
        }
        QueuedWorkClaimBoundary::Idle => strata::QueuedWorkClaimBoundary::Idle,
    }
}

// ---------------------------------------------------------------------------------------------
// Usage
// ---------------------------------------------------------------------------------------------

/// lash's token counters (`i64`) as Strata's (`u64`); a negative counter is refused.
pub fn usage_to_strata(usage: &lash::TokenUsage) -> Result<strata::TokenUsage, StoreError> {
    let counter = |name: &str, value: i64| {
        u64::try_from(value).map_err(|_| {
            StoreError::InvalidInput(format!("negative {name} ({value}) has no Strata form"))
        })
    };
    Ok(strata::TokenUsage {
        input_tokens: counter("input_tokens", usage.input_tokens)?,
        output_tokens: counter("output_tokens", usage.output_tokens)?,
        cached_input_tokens: counter("cached_input_tokens", usage.cached_input_tokens)?,
        reasoning_tokens: counter("reasoning_tokens", usage.reasoning_tokens)?,
    })
}

/// Strata's token counters as lash's; a counter above `i64::MAX` is refused.
pub fn usage_to_lash(usage: &strata::TokenUsage) -> Result<lash::TokenUsage, StoreError> {
    let counter = |name: &str, value: u64| {
        i64::try_from(value).map_err(|_| {
            StoreError::InvalidInput(format!("{name} ({value}) exceeds lash's i64 counters"))
        })
    };
    Ok(lash::TokenUsage {
        input_tokens: counter("input_tokens", usage.input_tokens)?,
        output_tokens: counter("output_tokens", usage.output_tokens)?,
        cached_input_tokens: counter("cached_input_tokens", usage.cached_input_tokens)?,
        reasoning_tokens: counter("reasoning_tokens", usage.reasoning_tokens)?,
    })
}

/// A lash usage row as Strata's.
pub fn ledger_entry_to_strata(
    entry: lash::TokenLedgerEntry,
) -> Result<strata::TokenLedgerEntry, StoreError> {
    Ok(strata::TokenLedgerEntry {
        usage: usage_to_strata(&entry.usage)?,
        source: entry.source,
        model: entry.model,
    })
}

/// A Strata usage row as lash's.
pub fn ledger_entry_to_lash(
    entry: strata::TokenLedgerEntry,
) -> Result<lash::TokenLedgerEntry, StoreError> {
    Ok(lash::TokenLedgerEntry {
        usage: usage_to_lash(&entry.usage)?,
        source: entry.source,
        model: entry.model,
    })
}

fn ledger_to_strata(
    entries: Vec<lash::TokenLedgerEntry>,
) -> Result<Vec<strata::TokenLedgerEntry>, StoreError> {
    entries.into_iter().map(ledger_entry_to_strata).collect()
}

fn ledger_to_lash(
    entries: Vec<strata::TokenLedgerEntry>,
) -> Result<Vec<lash::TokenLedgerEntry>, StoreError> {
    entries.into_iter().map(ledger_entry_to_lash).collect()
}

// ---------------------------------------------------------------------------------------------
// Graph nodes
// ---------------------------------------------------------------------------------------------

/// A node's body in the payload encoding: lash's node minus the fields Strata stores itself
/// (id, parent, frame). Externally tagged, unlike lash's flattened, internally tagged
/// `SessionNodePayload`, so decoding never buffers the whole node first (the measured cost).
#[derive(Serialize)]
struct NodeWireRef<'a> {
    timestamp: &'a str,
    caused_by: &'a Option<lash::CausalRef>,
    body: NodeBodyRef<'a>,
}

#[derive(Serialize)]
enum NodeBodyRef<'a> {
    Event(&'a lash::SessionEventRecord),
    Plugin { plugin_type: &'a str, body: &'a SharedJsonValue },
}

#[derive(Serialize, Deserialize)]
struct NodeWire {
    timestamp: String,
    caused_by: Option<lash::CausalRef>,
    body: NodeBody,
}

#[derive(Serialize, Deserialize)]
enum NodeBody {
    Event(lash::SessionEventRecord),
    Plugin { plugin_type: String, body: SharedJsonValue },
}

/// A Strata node carried by a lash plugin node of type [`ENVELOPE`].
#[derive(Serialize, Deserialize)]
struct NodeEnvelope {
    payload: String,
    timestamp_ms: u64,
    cause: Option<String>,
}

/// The Strata `timestamp_ms` of a lash node: its RFC 3339 timestamp in epoch milliseconds (0
/// when it is not RFC 3339 or before 1970). Informational on Strata's side (opaque to
/// Strata); the exact lash string travels in the payload.
fn timestamp_ms(timestamp: &str) -> u64 {
    chrono::DateTime::parse_from_rfc3339(timestamp)
        .ok()
        .and_then(|time| u64::try_from(time.timestamp_millis()).ok())
        .unwrap_or(0)
}

/// A lash node as a Strata node: id, parent and frame in Strata's fields, the rest (timestamp,
/// cause, event or plugin body) encoded in the payload.
pub fn node_to_strata(
    node: lash::SessionNodeRecord,
) -> Result<strata::SessionNodeRecord, StoreError> {
    if let Some(envelope) = node_envelope(&node) {
        return Ok(strata::SessionNodeRecord {
            node_id: node.node_id,
            parent_node_id: node.parent_node_id,
            payload: unbase64(&envelope.payload).unwrap_or_default(),
            timestamp_ms: envelope.timestamp_ms,
            frame_id: node.agent_frame_id,
            cause: envelope.cause,
        });
    }
    let body = match &node.payload {
        lash::SessionNodePayload::Event { event } => NodeBodyRef::Event(event),
        lash::SessionNodePayload::Plugin { plugin_type, body } => {
            NodeBodyRef::Plugin { plugin_type, body }
        }
    };
    let payload =
        encode(&NodeWireRef { timestamp: &node.timestamp, caused_by: &node.caused_by, body })?;
    Ok(strata::SessionNodeRecord {
        timestamp_ms: timestamp_ms(&node.timestamp),
        node_id: node.node_id,
        parent_node_id: node.parent_node_id,
        payload,
        frame_id: node.agent_frame_id,
        cause: None,
    })
}

fn node_envelope(node: &lash::SessionNodeRecord) -> Option<NodeEnvelope> {
    let lash::SessionNodePayload::Plugin { plugin_type, body } = &node.payload else {
        return None;
    };
    if plugin_type != ENVELOPE || !node.timestamp.is_empty() || node.caused_by.is_some() {
        return None;
    }
    let envelope = NodeEnvelope::deserialize(body.as_ref()).ok()?;
    unbase64(&envelope.payload).map(|_| envelope)
}

/// A Strata node as a lash node: the payload decoded, or the whole node in an envelope.
pub fn node_to_lash(node: strata::SessionNodeRecord, mode: Decode) -> lash::SessionNodeRecord {
    let native = decode_as::<NodeWire>(&node.payload, mode).filter(|wire| {
        mode == Decode::Lenient
            || (node.cause.is_none() && node.timestamp_ms == timestamp_ms(&wire.timestamp))
    });
    match native {
        Some(wire) => lash::SessionNodeRecord {
            node_id: node.node_id,
            parent_node_id: node.parent_node_id,
            caused_by: wire.caused_by,
            agent_frame_id: node.frame_id,
            timestamp: wire.timestamp,
            payload: match wire.body {
                NodeBody::Event(event) => lash::SessionNodePayload::Event { event },
                NodeBody::Plugin { plugin_type, body } => {
                    lash::SessionNodePayload::Plugin { plugin_type, body }
                }
            },
        },
        None => {
            let envelope = NodeEnvelope {
                payload: base64(&node.payload),
                timestamp_ms: node.timestamp_ms,
                cause: node.cause,
            };
            lash::SessionNodeRecord {
                node_id: node.node_id,
                parent_node_id: node.parent_node_id,
                caused_by: None,
                agent_frame_id: node.frame_id,
                timestamp: String::new(),
                payload: lash::SessionNodePayload::Plugin {
                    plugin_type: ENVELOPE.to_owned(),
                    body: SharedJsonValue::new(json(&envelope)),
                },
            }
        }
    }
}

/// A lash graph (nodes and leaf) as Strata's.
pub fn graph_to_strata(graph: &lash::SessionGraph) -> Result<strata::SessionGraph, StoreError> {
    Ok(strata::SessionGraph {
        nodes: graph.nodes.iter().cloned().map(node_to_strata).collect::<Result<_, _>>()?,
        leaf_node_id: graph.leaf_node_id.clone(),
    })
}

/// Reads of at least this many nodes are decoded off the executor (see
/// [`wait`](crate::wait)): above it, decoding takes a millisecond or more.
pub const LARGE_READ_NODES: usize = 1024;

/// A Strata graph as lash's.
pub fn graph_to_lash(graph: strata::SessionGraph, mode: Decode) -> lash::SessionGraph {
    let nodes = graph.nodes.into_iter().map(|node| node_to_lash(node, mode)).collect();
    lash::SessionGraph::from_nodes(nodes, graph.leaf_node_id)
}

/// A lash graph delta as Strata's.
pub fn delta_to_strata(
    delta: lash::store::GraphCommitDelta,
) -> Result<strata::GraphCommitDelta, StoreError> {
    use lash::store::GraphCommitDelta as Lash;
    Ok(match delta {
        Lash::Unchanged { leaf_node_id } => strata::GraphCommitDelta::Unchanged { leaf_node_id },
        Lash::Append { nodes, leaf_node_id } => strata::GraphCommitDelta::Append {
            nodes: nodes.into_iter().map(node_to_strata).collect::<Result<_, _>>()?,
            leaf_node_id,
        },
        Lash::ReplaceFull(graph) => strata::GraphCommitDelta::ReplaceFull(graph_to_strata(&graph)?),
    })
}

/// A Strata graph delta as lash's.
pub fn delta_to_lash(
    delta: strata::GraphCommitDelta,
    mode: Decode,
) -> lash::store::GraphCommitDelta {
    use lash::store::GraphCommitDelta as Lash;
    match delta {
        strata::GraphCommitDelta::Unchanged { leaf_node_id } => Lash::Unchanged { leaf_node_id },
        strata::GraphCommitDelta::Append { nodes, leaf_node_id } => Lash::Append {
            nodes: nodes.into_iter().map(|node| node_to_lash(node, mode)).collect(),
            leaf_node_id,
        },
        strata::GraphCommitDelta::ReplaceFull(graph) => {
            Lash::ReplaceFull(graph_to_lash(graph, mode))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Config and agent frames
// ---------------------------------------------------------------------------------------------

/// lash's session config as Strata's opaque config bytes.
pub fn config_to_strata(config: &lash::PersistedSessionConfig) -> Result<Bytes, StoreError> {
    if let Some(bytes) = config
        .provider_id
        .strip_prefix(ENVELOPE)
        .and_then(|rest| rest.strip_prefix(':'))
        .filter(|_| config.model == lash::ModelSpec::default())
        .and_then(unbase64)
    {
        return Ok(bytes);
    }
    encode(config)
}

/// Strata's config bytes as lash's session config (an envelope: the bytes in the provider id
/// after `strata.bytes:`, base64).
pub fn config_to_lash(config: &Bytes, mode: Decode) -> lash::PersistedSessionConfig {
    decode_as(config, mode).unwrap_or_else(|| lash::PersistedSessionConfig {
        provider_id: format!("{ENVELOPE}:{}", base64(config)),
        model: lash::ModelSpec::default(),
    })
}

/// The key of a Strata frame carried in a lash frame's protocol turn options.
const FRAME_ENVELOPE: &str = "strata.frame";

#[derive(Serialize, Deserialize)]
struct FrameEnvelope {
    payload: String,
    blob_refs: Vec<String>,
}

/// A lash agent frame as Strata's: the frame id, its execution-state ref as the frame's blob
/// ref (so Strata's GC keeps it), and the whole record encoded in the payload.
pub fn frame_to_strata(frame: lash::AgentFrameRecord) -> Result<strata::AgentFrame, StoreError> {
    if let Some(envelope) = single_key(&frame.protocol_turn_options.payload, FRAME_ENVELOPE)
        .and_then(|value| FrameEnvelope::deserialize(value).ok())
        && let Some(payload) = unbase64(&envelope.payload)
    {
        return Ok(strata::AgentFrame {
            frame_id: frame.frame_id,
            payload,
            blob_refs: envelope.blob_refs,
        });
    }
    Ok(strata::AgentFrame {
        payload: encode(&frame)?,
        blob_refs: frame.execution_state_ref.iter().map(|blob| blob.0.clone()).collect(),
        frame_id: frame.frame_id,
    })
}

/// A Strata agent frame as lash's (an envelope: a default frame with the Strata frame in its
/// protocol turn options under `strata.frame`).
pub fn frame_to_lash(frame: strata::AgentFrame, mode: Decode) -> lash::AgentFrameRecord {
    let native = decode_as::<lash::AgentFrameRecord>(&frame.payload, mode).filter(|record| {
        mode == Decode::Lenient
            || (record.frame_id == frame.frame_id
                && frame.blob_refs.iter().eq(record.execution_state_ref.iter().map(|r| &r.0)))
    });
    native.unwrap_or_else(|| {
        let envelope =
            FrameEnvelope { payload: base64(&frame.payload), blob_refs: frame.blob_refs };
        lash::AgentFrameRecord {
            frame_id: frame.frame_id,
            session_id: String::new(),
            previous_frame_id: None,
            status: Default::default(),
            reason: Default::default(),
            caused_by: None,
            created_at: String::new(),
            assignment: lash::AgentFrameAssignment {
                policy: lash::SessionPolicy::default(),
                plugin_options: Default::default(),
                plugin_source: Default::default(),
                tool_access: Default::default(),
                subagent: None,
                usage_source: None,
            },
            protocol_turn_options: lash::ProtocolTurnOptions {
                payload: serde_json::json!({ FRAME_ENVELOPE: json(&envelope) }),
            },
            execution_state_ref: None,
            execution_state_snapshot: None,
        }
    })
}

/// The value of `key` when `value` is an object with exactly that one key.
fn single_key<'a>(value: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    let object = value.as_object()?;
    if object.len() == 1 { object.get(key) } else { None }
}

// ---------------------------------------------------------------------------------------------
// Checkpoints
// ---------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct TurnStateWireRef<'a> {
    turn_state: &'a lash::PersistedTurnState,
    plugin_snapshot_revision: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct TurnStateWire {
    turn_state: lash::PersistedTurnState,
    plugin_snapshot_revision: Option<u64>,
}

/// lash's turn state and plugin-snapshot revision (optional there) as Strata's turn-state
/// bytes and revision (a plain `u64`; the exact `Option` travels in the bytes).
pub fn turn_state_to_strata(
    turn_state: &lash::PersistedTurnState,
    plugin_snapshot_revision: Option<u64>,
) -> Result<(Bytes, u64), StoreError> {
    if let Some(bytes) = turn_state_envelope(turn_state)
        && let Some(revision) = plugin_snapshot_revision
    {
        return Ok((bytes, revision));
    }
    let bytes = encode(&TurnStateWireRef { turn_state, plugin_snapshot_revision })?;
    Ok((bytes, plugin_snapshot_revision.unwrap_or(0)))
}

fn turn_state_envelope(turn_state: &lash::PersistedTurnState) -> Option<Bytes> {
    let usage = &turn_state.token_usage;
    let blank = turn_state.turn_index == 0
        && turn_state.last_prompt_usage.is_none()
        && [usage.input_tokens, usage.output_tokens, usage.cached_input_tokens]
            .into_iter()
            .chain([usage.reasoning_tokens])
            .all(|count| count == 0);
    if !blank {
        return None;
    }
    single_key(&turn_state.protocol_turn_options.payload, ENVELOPE)?.as_str().and_then(unbase64)
}

/// Strata's turn-state bytes and revision as lash's (an envelope: a blank turn state carrying
/// the bytes under `strata.bytes` in its protocol turn options, and `Some(revision)`).
pub fn turn_state_to_lash(
    turn_state: &Bytes,
    plugin_snapshot_revision: u64,
    mode: Decode,
) -> (lash::PersistedTurnState, Option<u64>) {
    match decode_as::<TurnStateWire>(turn_state, mode).filter(|wire| {
        mode == Decode::Lenient
            || wire.plugin_snapshot_revision.unwrap_or(0) == plugin_snapshot_revision
    }) {
        Some(wire) => (wire.turn_state, wire.plugin_snapshot_revision),
        None => (
            lash::PersistedTurnState {
                protocol_turn_options: lash::ProtocolTurnOptions {
                    payload: serde_json::json!({ ENVELOPE: base64(turn_state) }),
                },
                ..Default::default()
            },
            Some(plugin_snapshot_revision),
        ),
    }
}

/// lash's tool state as Strata's checkpoint bytes.
pub fn tool_state_to_strata(tool_state: &lash::ToolState) -> Result<Bytes, StoreError> {
    if tool_state.generation() == 0
        && tool_state.len() == 1
        && let Some(entry) = tool_state.get(ENVELOPE)
        && entry.manifest().name == ENVELOPE
        && let Some(bytes) = unbase64(&entry.manifest().description)
    {
        return Ok(bytes);
    }
    encode(tool_state)
}

/// Strata's tool-state bytes as lash's tool state (an envelope: one tool named
/// `strata.bytes` whose description holds the bytes, base64). lash's `ToolState` can only be
/// built through its serde form; should that ever refuse the envelope (a lash release that
/// changed the form), the bytes are refused rather than lost.
pub fn tool_state_to_lash(tool_state: &Bytes, mode: Decode) -> Result<lash::ToolState, StoreError> {
    if let Some(native) = decode_as(tool_state, mode) {
        return Ok(native);
    }
    let envelope = serde_json::json!({
        "generation": 0,
        "tools": { ENVELOPE: { "manifest": {
            "id": ENVELOPE, "name": ENVELOPE, "description": base64(tool_state),
        } } },
    });
    lash::ToolState::deserialize(envelope).map_err(|error| {
        StoreError::InvalidInput(format!("tool-state bytes have no lash form: {error}"))
    })
}

/// lash's plugin snapshot as Strata's checkpoint bytes.
pub fn plugin_snapshot_to_strata(
    snapshot: &lash::PluginSessionSnapshot,
) -> Result<Bytes, StoreError> {
    if snapshot.plugins.len() == 1
        && let Some(entry) = snapshot.plugins.get(ENVELOPE)
        && entry.meta.plugin_id == ENVELOPE
        && let [artifact] = entry.artifacts.as_slice()
    {
        return Ok(Bytes::from(artifact.data.clone()));
    }
    encode(snapshot)
}

/// Strata's plugin-snapshot bytes as lash's snapshot (an envelope: one plugin
/// `strata.bytes` whose single artifact holds the bytes).
pub fn plugin_snapshot_to_lash(snapshot: &Bytes, mode: Decode) -> lash::PluginSessionSnapshot {
    decode_as(snapshot, mode).unwrap_or_else(|| {
        let entry = lash::PluginSnapshotEntry {
            meta: lash::PluginSnapshotMeta {
                plugin_id: ENVELOPE.to_owned(),
                plugin_version: String::new(),
                revision: 0,
                state: None,
            },
            artifacts: vec![lash::PluginSnapshotArtifact {
                name: "payload".to_owned(),
                data: snapshot.to_vec(),
            }],
        };
        lash::PluginSessionSnapshot { plugins: [(ENVELOPE.to_owned(), entry)].into() }
    })
}

fn blob_ref_to_lash(blob_ref: Option<String>) -> Option<lash::BlobRef> {
    blob_ref.map(lash::BlobRef)
}

fn blob_ref_to_strata(blob_ref: Option<lash::BlobRef>) -> Option<String> {
    blob_ref.map(|blob| blob.0)
}

/// lash's hydrated checkpoint (as a commit carries it) as Strata's. The execution state is
/// raw bytes on both sides; the tool state and plugin snapshot are encoded.
pub fn checkpoint_to_strata(
    checkpoint: lash::HydratedSessionCheckpoint,
) -> Result<strata::RuntimeCheckpoint, StoreError> {
    let (turn_state, plugin_snapshot_revision) =
        turn_state_to_strata(&checkpoint.turn_state, checkpoint.plugin_snapshot_revision)?;
    Ok(strata::RuntimeCheckpoint {
        turn_state,
        tool_state: strata::CheckpointBlob {
            blob_ref: blob_ref_to_strata(checkpoint.tool_state_ref),
            payload: checkpoint.tool_state.as_ref().map(tool_state_to_strata).transpose()?,
        },
        plugin_snapshot: strata::CheckpointBlob {
            blob_ref: blob_ref_to_strata(checkpoint.plugin_snapshot_ref),
            payload: checkpoint
                .plugin_snapshot
                .as_ref()
                .map(plugin_snapshot_to_strata)
                .transpose()?,
        },
        plugin_snapshot_revision,
        execution_state: strata::CheckpointBlob {
            blob_ref: blob_ref_to_strata(checkpoint.execution_state_ref),
            payload: checkpoint.execution_state.map(Bytes::from),
        },
    })
}

/// Strata's checkpoint (hydrated by a read, or carried by a commit) as lash's.
pub fn checkpoint_to_lash(
    checkpoint: strata::RuntimeCheckpoint,
    mode: Decode,
) -> Result<lash::HydratedSessionCheckpoint, StoreError> {
    let (turn_state, plugin_snapshot_revision) =
        turn_state_to_lash(&checkpoint.turn_state, checkpoint.plugin_snapshot_revision, mode);
    Ok(lash::HydratedSessionCheckpoint {
        turn_state,
        tool_state_ref: blob_ref_to_lash(checkpoint.tool_state.blob_ref),
        tool_state: checkpoint
            .tool_state
            .payload
            .map(|bytes| tool_state_to_lash(&bytes, mode))
            .transpose()?,
        plugin_snapshot_ref: blob_ref_to_lash(checkpoint.plugin_snapshot.blob_ref),
        plugin_snapshot: checkpoint
            .plugin_snapshot
            .payload
            .map(|bytes| plugin_snapshot_to_lash(&bytes, mode)),
        plugin_snapshot_revision,
        execution_state_ref: blob_ref_to_lash(checkpoint.execution_state.blob_ref),
        execution_state: checkpoint.execution_state.payload.map(|bytes| bytes.to_vec()),
    })
}

/// lash's stored checkpoint manifest (refs only) as Strata's.
pub fn manifest_to_strata(
    manifest: SessionCheckpoint,
) -> Result<strata::SessionCheckpoint, StoreError> {
    let (turn_state, plugin_snapshot_revision) =
        turn_state_to_strata(&manifest.turn_state, manifest.plugin_snapshot_revision)?;
    Ok(strata::SessionCheckpoint {
        turn_state,
        tool_state_ref: blob_ref_to_strata(manifest.tool_state_ref),
        plugin_snapshot_ref: blob_ref_to_strata(manifest.plugin_snapshot_ref),
        plugin_snapshot_revision,
        execution_state_ref: blob_ref_to_strata(manifest.execution_state_ref),
    })
}

/// Strata's stored checkpoint manifest as lash's.
pub fn manifest_to_lash(manifest: strata::SessionCheckpoint, mode: Decode) -> SessionCheckpoint {
    let (turn_state, plugin_snapshot_revision) =
        turn_state_to_lash(&manifest.turn_state, manifest.plugin_snapshot_revision, mode);
    SessionCheckpoint {
        turn_state,
        tool_state_ref: blob_ref_to_lash(manifest.tool_state_ref),
        plugin_snapshot_ref: blob_ref_to_lash(manifest.plugin_snapshot_ref),
        plugin_snapshot_revision,
        execution_state_ref: blob_ref_to_lash(manifest.execution_state_ref),
    }
}

// ---------------------------------------------------------------------------------------------
// Commits and reads
// ---------------------------------------------------------------------------------------------

/// lash's frame id convention: the empty string is "no current frame".
fn frame_id_to_strata(frame_id: String) -> Option<String> {
    Some(frame_id).filter(|id| !id.is_empty())
}

/// A lash commit as Strata's. lash always carries a checkpoint, so the Strata commit always
/// writes one.
pub fn commit_to_strata(commit: lash::RuntimeCommit) -> Result<strata::RuntimeCommit, StoreError> {
    Ok(strata::RuntimeCommit {
        config: config_to_strata(&commit.config)?,
        agent_frames: commit
            .agent_frames
            .into_iter()
            .map(frame_to_strata)
            .collect::<Result<_, _>>()?,
        current_frame_id: frame_id_to_strata(commit.current_agent_frame_id),
        graph: delta_to_strata(commit.graph)?,
        checkpoint: Some(checkpoint_to_strata(commit.checkpoint)?),
        usage_deltas: ledger_to_strata(commit.usage_deltas)?,
        turn_commit: commit.turn_commit.map(stamp_to_strata),
        completed_queue_claims: commit
            .completed_queue_claims
            .into_iter()
            .map(completion_to_strata)
            .collect(),
        committed_attachment_ids: attachment_ids_to_strata(&commit.committed_attachment_ids),
        session_id: commit.session_id,
        expected_head_revision: commit.expected_head_revision,
    })
}

/// A Strata commit as lash's. lash has no "keep the current checkpoint" commit: a Strata
/// commit without a checkpoint writes lash's default (empty) checkpoint.
pub fn commit_to_lash(
    commit: strata::RuntimeCommit,
    mode: Decode,
) -> Result<lash::RuntimeCommit, StoreError> {
    Ok(lash::RuntimeCommit {
        config: config_to_lash(&commit.config, mode),
        agent_frames: commit.agent_frames.into_iter().map(|f| frame_to_lash(f, mode)).collect(),
        current_agent_frame_id: commit.current_frame_id.unwrap_or_default(),
        graph: delta_to_lash(commit.graph, mode),
        checkpoint: commit
            .checkpoint
            .map(|checkpoint| checkpoint_to_lash(checkpoint, mode))
            .transpose()?
            .unwrap_or_default(),
        usage_deltas: ledger_to_lash(commit.usage_deltas)?,
        turn_commit: commit.turn_commit.map(stamp_to_lash),
        completed_queue_claims: commit
            .completed_queue_claims
            .into_iter()
            .map(completion_to_lash)
            .collect(),
        committed_attachment_ids: attachment_ids_to_lash(&commit.committed_attachment_ids),
        session_id: commit.session_id,
        expected_head_revision: commit.expected_head_revision,
    })
}

/// lash's commit result as Strata's (lash always reports a checkpoint).
pub fn commit_result_to_strata(
    result: RuntimeCommitResult,
) -> Result<strata::RuntimeCommitResult, StoreError> {
    Ok(strata::RuntimeCommitResult {
        head_revision: result.head_revision,
        checkpoint_ref: Some(result.checkpoint_ref.0),
        manifest: Some(manifest_to_strata(result.manifest)?),
    })
}

/// Strata's commit result as lash's. A head without checkpoint (never the case after a lash
/// commit, which always writes one) reports lash's defaults: an empty ref and manifest.
pub fn commit_result_to_lash(
    result: strata::RuntimeCommitResult,
    mode: Decode,
) -> RuntimeCommitResult {
    RuntimeCommitResult {
        head_revision: result.head_revision,
        checkpoint_ref: lash::BlobRef(result.checkpoint_ref.unwrap_or_default()),
        manifest: result
            .manifest
            .map(|manifest| manifest_to_lash(manifest, mode))
            .unwrap_or_default(),
    }
}

/// A Strata session read as lash's.
pub fn session_read_to_lash(
    read: strata::PersistedSessionRead,
    mode: Decode,
) -> Result<PersistedSessionRead, StoreError> {
    Ok(PersistedSessionRead {
        config: config_to_lash(&read.config, mode),
        agent_frames: read.agent_frames.into_iter().map(|f| frame_to_lash(f, mode)).collect(),
        current_agent_frame_id: read.current_frame_id.unwrap_or_default(),
        graph: graph_to_lash(read.graph, mode),
        checkpoint_ref: blob_ref_to_lash(read.checkpoint_ref),
        checkpoint: read
            .checkpoint
            .map(|checkpoint| checkpoint_to_lash(checkpoint, mode))
            .transpose()?,
        token_ledger: ledger_to_lash(read.token_ledger)?,
        session_id: read.session_id,
        head_revision: read.head_revision,
    })
}

/// A lash session read as Strata's.
pub fn session_read_to_strata(
    read: PersistedSessionRead,
) -> Result<strata::PersistedSessionRead, StoreError> {
    Ok(strata::PersistedSessionRead {
        config: config_to_strata(&read.config)?,
        agent_frames: read
            .agent_frames
            .into_iter()
            .map(frame_to_strata)
            .collect::<Result<_, _>>()?,
        current_frame_id: frame_id_to_strata(read.current_agent_frame_id),
        graph: graph_to_strata(&read.graph)?,
        checkpoint_ref: blob_ref_to_strata(read.checkpoint_ref),
        checkpoint: read.checkpoint.map(checkpoint_to_strata).transpose()?,
        token_ledger: ledger_to_strata(read.token_ledger)?,
        session_id: read.session_id,
        head_revision: read.head_revision,
    })
}

// ---------------------------------------------------------------------------------------------
// Session metadata
// ---------------------------------------------------------------------------------------------

/// The prefix of the Strata relation kind that carries lash's relation and `created_at`.
const LASH_META: &str = "lash ";
/// The prefix of the lash `created_at` that carries a whole Strata metadata record.
const STRATA_META: &str = "strata ";

/// What of a lash metadata record has no Strata field: the relation (typed, with a cause) and
/// the exact `created_at` string.
#[derive(Serialize, Deserialize)]
struct LashMetaExtras {
    relation: lash::SessionRelation,
    created_at: String,
}

/// lash's session metadata as Strata's: name, model and cwd in their fields, `created_at` as
/// epoch milliseconds when it is RFC 3339 (else 0), and the relation as a Strata relation
/// whose session is the parent (empty for a root) and whose kind is `lash ` + JSON of lash's
/// relation and exact `created_at`.
pub fn meta_to_strata(meta: lash::SessionMeta) -> Result<strata::SessionMeta, StoreError> {
    if let Some(record) = meta.created_at.strip_prefix(STRATA_META)
        && let Ok(strata_meta) = serde_json::from_str::<strata::SessionMeta>(record)
        && strata_meta.session_id == meta.session_id
    {
        return Ok(strata_meta);
    }
    let parent = meta.relation.parent_session_id().unwrap_or_default().to_owned();
    let extras = LashMetaExtras { relation: meta.relation, created_at: meta.created_at };
    let kind = serde_json::to_string(&extras)
        .map_err(|error| StoreError::InvalidInput(format!("lash relation: {error}")))?;
    Ok(strata::SessionMeta {
        created_at_epoch_ms: timestamp_ms(&extras.created_at),
        session_id: meta.session_id,
        session_name: Some(meta.session_name),
        model: Some(meta.model),
        cwd: meta.cwd,
        relation: Some(strata::SessionRelation {
            kind: format!("{LASH_META}{kind}"),
            session_id: parent,
        }),
    })
}

/// Strata's session metadata as lash's (an envelope: the whole Strata record, JSON, in
/// `created_at` after `strata `).
pub fn meta_to_lash(meta: strata::SessionMeta, mode: Decode) -> lash::SessionMeta {
    if let Some(native) = lash_meta(&meta, mode) {
        return native;
    }
    lash::SessionMeta {
        session_id: meta.session_id.clone(),
        session_name: String::new(),
        created_at: format!("{STRATA_META}{}", json(&meta)),
        model: String::new(),
        cwd: None,
        relation: lash::SessionRelation::Root,
    }
}

fn lash_meta(meta: &strata::SessionMeta, mode: Decode) -> Option<lash::SessionMeta> {
    let relation = meta.relation.as_ref()?;
    let extras: LashMetaExtras =
        serde_json::from_str(relation.kind.strip_prefix(LASH_META)?).ok()?;
    let native = lash::SessionMeta {
        session_id: meta.session_id.clone(),
        session_name: meta.session_name.clone()?,
        created_at: extras.created_at,
        model: meta.model.clone()?,
        cwd: meta.cwd.clone(),
        relation: extras.relation,
    };
    let exact =
        mode == Decode::Lenient || meta_to_strata(native.clone()).is_ok_and(|again| &again == meta);
    exact.then_some(native)
}

// ---------------------------------------------------------------------------------------------
// Queued work
// ---------------------------------------------------------------------------------------------

/// lash's queued-work payload as Strata's item bytes.
pub fn queue_payload_to_strata(payload: &QueuedWorkPayload) -> Result<Bytes, StoreError> {
    if let QueuedWorkPayload::TurnInput { input } = payload
        && input.items.is_empty()
        && input.protocol_turn_options.is_none()
        && input.trace_turn_id.is_none()
        && input.image_blobs.len() == 1
        && let Some(bytes) = input.image_blobs.get(ENVELOPE)
    {
        return Ok(Bytes::from(bytes.clone()));
    }
    encode(payload)
}

/// Strata's item bytes as lash's payload (an envelope: a turn input with no items and one
/// image blob `strata.bytes` holding the bytes).
pub fn queue_payload_to_lash(payload: &Bytes, mode: Decode) -> QueuedWorkPayload {
    decode_as(payload, mode).unwrap_or_else(|| {
        let mut input = lash::TurnInput::empty();
        input.image_blobs.insert(ENVELOPE.to_owned(), payload.to_vec());
        QueuedWorkPayload::turn_input(input)
    })
}

/// A lash completion as Strata's (same fields).
pub fn completion_to_strata(completion: QueuedWorkCompletion) -> strata::QueuedWorkCompletion {
    strata::QueuedWorkCompletion {
        session_id: completion.session_id,
        claim_id: completion.claim_id,
        lease_token: completion.lease_token,
        batch_ids: completion.batch_ids,
    }
}

/// A Strata completion as lash's.
pub fn completion_to_lash(completion: strata::QueuedWorkCompletion) -> QueuedWorkCompletion {
    QueuedWorkCompletion {
        session_id: completion.session_id,
        claim_id: completion.claim_id,
        lease_token: completion.lease_token,
        batch_ids: completion.batch_ids,
    }
}

/// A lash batch draft as Strata's.
pub fn draft_to_strata(
    draft: QueuedWorkBatchDraft,
) -> Result<strata::QueuedWorkBatchDraft, StoreError> {
    Ok(strata::QueuedWorkBatchDraft {
        payloads: draft.payloads.iter().map(queue_payload_to_strata).collect::<Result<_, _>>()?,
        session_id: draft.session_id,
        source_key: draft.source_key,
        delivery_policy: delivery_to_strata(draft.delivery_policy),
        slot_policy: slot_to_strata(draft.slot_policy),
        merge_key: merge_key_to_strata(draft.merge_key),
        available_at_ms: draft.available_at_ms,
    })
}

/// A Strata batch draft as lash's.
pub fn draft_to_lash(draft: strata::QueuedWorkBatchDraft, mode: Decode) -> QueuedWorkBatchDraft {
    QueuedWorkBatchDraft {
        payloads: draft.payloads.iter().map(|p| queue_payload_to_lash(p, mode)).collect(),
        session_id: draft.session_id,
        source_key: draft.source_key,
        delivery_policy: delivery_to_lash(draft.delivery_policy),
        slot_policy: slot_to_lash(draft.slot_policy),
        merge_key: merge_key_to_lash(draft.merge_key),
        available_at_ms: draft.available_at_ms,
    }
}

/// A lash stored batch as Strata's.
pub fn batch_to_strata(batch: QueuedWorkBatch) -> Result<strata::QueuedWorkBatch, StoreError> {
    Ok(strata::QueuedWorkBatch {
        items: batch
            .items
            .into_iter()
            .map(|item| {
                Ok(strata::QueuedWorkItem {
                    payload: queue_payload_to_strata(&item.payload)?,
                    item_id: item.item_id,
                })
            })
            .collect::<Result<_, StoreError>>()?,
        batch_id: batch.batch_id,
        session_id: batch.session_id,
        enqueue_seq: batch.enqueue_seq,
        source_key: batch.source_key,
        delivery_policy: delivery_to_strata(batch.delivery_policy),
        slot_policy: slot_to_strata(batch.slot_policy),
        merge_key: merge_key_to_strata(batch.merge_key),
        available_at_ms: batch.available_at_ms,
        enqueued_at_ms: batch.enqueued_at_ms,
    })
}

/// A Strata stored batch as lash's.
pub fn batch_to_lash(batch: strata::QueuedWorkBatch, mode: Decode) -> QueuedWorkBatch {
    QueuedWorkBatch {
        items: batch
            .items
            .into_iter()
            .map(|item| QueuedWorkItem {
                payload: queue_payload_to_lash(&item.payload, mode),
                item_id: item.item_id,
            })
            .collect(),
        batch_id: batch.batch_id,
        session_id: batch.session_id,
        enqueue_seq: batch.enqueue_seq,
        source_key: batch.source_key,
        delivery_policy: delivery_to_lash(batch.delivery_policy),
        slot_policy: slot_to_lash(batch.slot_policy),
        merge_key: merge_key_to_lash(batch.merge_key),
        available_at_ms: batch.available_at_ms,
        enqueued_at_ms: batch.enqueued_at_ms,
    }
}

/// A lash claim as Strata's.
pub fn claim_to_strata(claim: QueuedWorkClaim) -> Result<strata::QueuedWorkClaim, StoreError> {
    Ok(strata::QueuedWorkClaim {
        batches: claim.batches.into_iter().map(batch_to_strata).collect::<Result<_, _>>()?,
        session_id: claim.session_id,
        claim_id: claim.claim_id,
        owner_id: claim.owner_id,
        lease_token: claim.lease_token,
        fencing_token: claim.fencing_token,
        claimed_at_epoch_ms: claim.claimed_at_epoch_ms,
        expires_at_epoch_ms: claim.expires_at_epoch_ms,
    })
}

/// A Strata claim as lash's.
pub fn claim_to_lash(claim: strata::QueuedWorkClaim, mode: Decode) -> QueuedWorkClaim {
    QueuedWorkClaim {
        batches: claim.batches.into_iter().map(|batch| batch_to_lash(batch, mode)).collect(),
        session_id: claim.session_id,
        claim_id: claim.claim_id,
        owner_id: claim.owner_id,
        lease_token: claim.lease_token,
        fencing_token: claim.fencing_token,
        claimed_at_epoch_ms: claim.claimed_at_epoch_ms,
        expires_at_epoch_ms: claim.expires_at_epoch_ms,
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// The tag that ends a lash `Backend` text carrying a Strata-only error variant.
const ERROR_TAG: &str = " [strata-error ";

/// Strata's error variants, field for field, for the tag carried through lash's
/// `Backend(String)` (`&'static str` operation names as strings, durations in nanoseconds).
#[derive(Serialize, Deserialize)]
enum ErrorWire {
    SessionBindingMismatch { bound_session_id: String, attempted_session_id: String },
    UnsupportedReadScope(strata::SessionReadScope),
    HeadRevisionConflict { expected: Option<u64>, actual: u64 },
    RuntimeTurnCommitConflict { session_id: String, turn_id: String },
    QueuedWorkClaimExpired { session_id: String, claim_id: String },
    UnsupportedRecordSchemaVersion { record_kind: String, actual: u32, expected: u32 },
    InvalidInput(String),
    CorruptData { location: String, detail: String },
    Unavailable(String),
    NotApplied(String),
    Timeout { operation: String, elapsed_ns: u64 },
    Overloaded(String),
    CircuitOpen { operation: String, retry_after_ns: u64 },
    RetriesExhausted { operation: String, attempts: u32, last_error: Box<ErrorWire> },
    Locked { path: String },
    Unsupported(String),
    Backend(String),
}

/// A Strata error as lash's: the seven variants both have map field for field; any other is
/// lash's `Backend` with Strata's message and a tag naming the exact variant.
pub fn error_to_lash(error: StoreError) -> lash::StoreError {
    match error {
        StoreError::SessionBindingMismatch { bound_session_id, attempted_session_id } => {
            lash::StoreError::SessionBindingMismatch { bound_session_id, attempted_session_id }
        }
        StoreError::UnsupportedReadScope(scope) => {
            lash::StoreError::UnsupportedReadScope(scope_to_lash(scope))
        }
        StoreError::HeadRevisionConflict { expected, actual } => {
            lash::StoreError::HeadRevisionConflict { expected, actual }
        }
        StoreError::RuntimeTurnCommitConflict { session_id, turn_id } => {
            lash::StoreError::RuntimeTurnCommitConflict { session_id, turn_id }
        }
        StoreError::QueuedWorkClaimExpired { session_id, claim_id } => {
            lash::StoreError::QueuedWorkClaimExpired { session_id, claim_id }
        }
        StoreError::UnsupportedRecordSchemaVersion { record_kind, actual, expected } => {
            lash::StoreError::UnsupportedRecordSchemaVersion {
                record_kind: intern(&record_kind),
                actual,
                expected,
            }
        }
        StoreError::Backend(message) if tagged_error(&message).is_none() => {
            lash::StoreError::Backend(message)
        }
        other => {
            let text = other.to_string();
            let tag = serde_json::to_string(&error_wire(other)).unwrap_or_default();
            lash::StoreError::Backend(format!("{text}{ERROR_TAG}{tag}]"))
        }
    }
}

fn error_wire(error: StoreError) -> ErrorWire {
    let nanos = |duration: Duration| u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
    match error {
        StoreError::SessionBindingMismatch { bound_session_id, attempted_session_id } => {
            ErrorWire::SessionBindingMismatch { bound_session_id, attempted_session_id }
        }
        StoreError::UnsupportedReadScope(scope) => ErrorWire::UnsupportedReadScope(scope),
        StoreError::HeadRevisionConflict { expected, actual } => {
            ErrorWire::HeadRevisionConflict { expected, actual }
        }
        StoreError::RuntimeTurnCommitConflict { session_id, turn_id } => {
            ErrorWire::RuntimeTurnCommitConflict { session_id, turn_id }
        }
        StoreError::QueuedWorkClaimExpired { session_id, claim_id } => {
            ErrorWire::QueuedWorkClaimExpired { session_id, claim_id }
        }
        StoreError::UnsupportedRecordSchemaVersion { record_kind, actual, expected } => {
            ErrorWire::UnsupportedRecordSchemaVersion { record_kind, actual, expected }
        }
        StoreError::InvalidInput(message) => ErrorWire::InvalidInput(message),
        StoreError::CorruptData { location, detail } => ErrorWire::CorruptData { location, detail },
        StoreError::Unavailable(message) => ErrorWire::Unavailable(message),
        StoreError::NotApplied(message) => ErrorWire::NotApplied(message),
        StoreError::Timeout { operation, elapsed } => {
            ErrorWire::Timeout { operation: operation.to_owned(), elapsed_ns: nanos(elapsed) }
        }
        StoreError::Overloaded(message) => ErrorWire::Overloaded(message),
        StoreError::CircuitOpen { operation, retry_after } => ErrorWire::CircuitOpen {
            operation: operation.to_owned(),
            retry_after_ns: nanos(retry_after),
        },
        StoreError::RetriesExhausted { operation, attempts, last_error } => {
            ErrorWire::RetriesExhausted {
                operation: operation.to_owned(),
                attempts,
                last_error: Box::new(error_wire(*last_error)),
            }
        }
        StoreError::Locked { path } => ErrorWire::Locked { path },
        StoreError::Unsupported(operation) => ErrorWire::Unsupported(operation.to_owned()),
        StoreError::Backend(message) => ErrorWire::Backend(message),
        // `StoreError` is non-exhaustive: a variant added later crosses as its message.
        other => ErrorWire::Backend(other.to_string()),
    }
}

/// A lash error as Strata's: the shared variants field for field; `Backend` with a Strata tag
/// becomes the tagged variant, any other `Backend` stays `Backend` (Strata's permanent,
/// never-retried class: lash does not say whether a failure was transient).
pub fn error_to_strata(error: lash::StoreError) -> StoreError {
    match error {
        lash::StoreError::SessionBindingMismatch { bound_session_id, attempted_session_id } => {
            StoreError::SessionBindingMismatch { bound_session_id, attempted_session_id }
        }
        lash::StoreError::UnsupportedReadScope(scope) => {
            StoreError::UnsupportedReadScope(scope_to_strata(scope))
        }
        lash::StoreError::HeadRevisionConflict { expected, actual } => {
            StoreError::HeadRevisionConflict { expected, actual }
        }
        lash::StoreError::RuntimeTurnCommitConflict { session_id, turn_id } => {
            StoreError::RuntimeTurnCommitConflict { session_id, turn_id }
        }
        lash::StoreError::QueuedWorkClaimExpired { session_id, claim_id } => {
            StoreError::QueuedWorkClaimExpired { session_id, claim_id }
        }
        lash::StoreError::UnsupportedRecordSchemaVersion { record_kind, actual, expected } => {
            StoreError::UnsupportedRecordSchemaVersion {
                record_kind: record_kind.to_owned(),
                actual,
                expected,
            }
        }
        lash::StoreError::Backend(message) => {
            tagged_error(&message).and_then(strata_error).unwrap_or(StoreError::Backend(message))
        }
    }
}

fn tagged_error(message: &str) -> Option<ErrorWire> {
    let start = message.rfind(ERROR_TAG)?;
    let tag = message[start + ERROR_TAG.len()..].strip_suffix(']')?;
    serde_json::from_str(tag).ok()
}

fn strata_error(wire: ErrorWire) -> Option<StoreError> {
    Some(match wire {
        ErrorWire::SessionBindingMismatch { bound_session_id, attempted_session_id } => {
            StoreError::SessionBindingMismatch { bound_session_id, attempted_session_id }
        }
        ErrorWire::UnsupportedReadScope(scope) => StoreError::UnsupportedReadScope(scope),
        ErrorWire::HeadRevisionConflict { expected, actual } => {
            StoreError::HeadRevisionConflict { expected, actual }
        }
        ErrorWire::RuntimeTurnCommitConflict { session_id, turn_id } => {
            StoreError::RuntimeTurnCommitConflict { session_id, turn_id }
        }
        ErrorWire::QueuedWorkClaimExpired { session_id, claim_id } => {
            StoreError::QueuedWorkClaimExpired { session_id, claim_id }
        }
        ErrorWire::UnsupportedRecordSchemaVersion { record_kind, actual, expected } => {
            StoreError::UnsupportedRecordSchemaVersion { record_kind, actual, expected }
        }
        ErrorWire::InvalidInput(message) => StoreError::InvalidInput(message),
        ErrorWire::CorruptData { location, detail } => StoreError::CorruptData { location, detail },
        ErrorWire::Unavailable(message) => StoreError::Unavailable(message),
        ErrorWire::NotApplied(message) => StoreError::NotApplied(message),
        ErrorWire::Timeout { operation, elapsed_ns } => StoreError::Timeout {
            operation: operation_name(&operation)?,
            elapsed: Duration::from_nanos(elapsed_ns),
        },
        ErrorWire::Overloaded(message) => StoreError::Overloaded(message),
        ErrorWire::CircuitOpen { operation, retry_after_ns } => StoreError::CircuitOpen {
            operation: operation_name(&operation)?,
            retry_after: Duration::from_nanos(retry_after_ns),
        },
        ErrorWire::RetriesExhausted { operation, attempts, last_error } => {
            StoreError::RetriesExhausted {
                operation: operation_name(&operation)?,
                attempts,
                last_error: Box::new(strata_error(*last_error)?),
            }
        }
        ErrorWire::Locked { path } => StoreError::Locked { path },
        ErrorWire::Unsupported(operation) => StoreError::Unsupported(operation_name(&operation)?),
        ErrorWire::Backend(message) => StoreError::Backend(message),
    })
}

/// The `'static` name of a trait operation (the only names Strata's `&'static str` error
/// fields hold), or of one of the factory operations.
fn operation_name(name: &str) -> Option<&'static str> {
    const FACTORY: [&str; 4] =
        ["create_store", "open_existing_store", "delete_session", "list_sessions"];
    Operation::ALL
        .iter()
        .map(|operation| operation.name())
        .chain(FACTORY)
        .find(|known| *known == name)
}

/// lash's `UnsupportedRecordSchemaVersion` names its record kind with a `&'static str`;
/// Strata's with a `String`. Kinds are a small fixed set of names in the stores' code, so
/// each distinct name is leaked once, up to a bound; past it the kind reads `record`.
fn intern(name: &str) -> &'static str {
    const LIMIT: usize = 64;
    static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut names = NAMES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(known) = names.get(name) {
        return known;
    }
    if names.len() >= LIMIT {
        return "record";
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}
