//! `strata inspect`: what a store directory holds, read-only, from
//! [`strata::file::inspect::StoreView`] (the store's image rebuilt as an open would, without
//! its lock), as tables or JSON.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use strata::file::inspect::{Holder, StoreView, TornTail, is_tombstoned};
use strata::{
    AttachmentManifestEntry, Clock, SessionMeta, SessionNodeRecord, SessionReadScope, SystemClock,
    TokenLedgerEntry,
};

use crate::cli::InspectArgs;
use crate::error::CliError;
use crate::layout::Layout;

/// One session at a glance (a row of the table).
#[derive(Debug, Serialize)]
pub struct SessionSummary {
    /// The session id.
    pub session: String,
    /// Its store directory.
    pub dir: String,
    /// The process holding the store when it was viewed, if any.
    pub held_by: Option<String>,
    /// Head revision; `None` before the first commit.
    pub revision: Option<u64>,
    /// Live nodes.
    pub live_nodes: u64,
    /// Tombstoned nodes not yet vacuumed.
    pub tombstoned_nodes: u64,
    /// Nodes on the head's active path.
    pub active_path: u64,
    /// Queued batches no claim holds.
    pub pending_batches: u64,
    /// Batches held by a live claim.
    pub claimed_batches: u64,
    /// Batches held by a claim past its lease (claimable again).
    pub expired_claims: u64,
    /// Attachment manifest rows stamped committed.
    pub committed_attachments: u64,
    /// Attachment manifest rows not committed (a turn in flight, or orphans for `sweep`).
    pub uncommitted_attachments: u64,
    /// Checkpoint blobs held.
    pub blobs: u64,
    /// Bytes of the store's files.
    pub disk_bytes: u64,
    /// What the next open would cut off the live log segment.
    pub torn_tail: Option<TornTailReport>,
    /// Why the store could not be viewed (damage: see `strata verify`).
    pub error: Option<String>,
}

/// A torn tail, for reports.
#[derive(Debug, Serialize)]
pub struct TornTailReport {
    /// The segment.
    pub file: String,
    /// Where the discarded bytes start.
    pub offset: u64,
    /// How many bytes.
    pub bytes: u64,
}

impl From<&TornTail> for TornTailReport {
    fn from(tail: &TornTail) -> Self {
        Self { file: tail.file.clone(), offset: tail.offset, bytes: tail.len }
    }
}

/// One session in detail (`--session`).
#[derive(Debug, Serialize)]
pub struct SessionDetail {
    /// The summary.
    #[serde(flatten)]
    pub summary: SessionSummary,
    /// The head.
    pub head: Option<HeadReport>,
    /// The session's metadata.
    pub meta: Option<SessionMeta>,
    /// The merged usage ledger.
    pub usage: Vec<TokenLedgerEntry>,
    /// Every queued batch with its state.
    pub batches: Vec<BatchReport>,
    /// Every attachment manifest row.
    pub manifest: Vec<AttachmentManifestEntry>,
    /// The store's files.
    pub files: Vec<FileReport>,
    /// The active path, root first (the last `--path-nodes` of it).
    pub path: Vec<PathNode>,
}

/// The head of a session.
#[derive(Debug, Serialize)]
pub struct HeadReport {
    /// Revision.
    pub revision: u64,
    /// The node the session stands on.
    pub leaf_node_id: Option<String>,
    /// The current frame.
    pub current_frame_id: Option<String>,
    /// Agent frames stored with the head.
    pub agent_frames: usize,
    /// Bytes of the opaque config.
    pub config_bytes: usize,
    /// The checkpoint manifest's ref.
    pub checkpoint_ref: Option<String>,
    /// The blobs the checkpoint names.
    pub checkpoint_blobs: Vec<String>,
}

/// A queued batch.
#[derive(Debug, Serialize)]
pub struct BatchReport {
    /// Batch id.
    pub batch_id: String,
    /// Its session.
    pub session_id: String,
    /// Enqueue sequence number.
    pub enqueue_seq: u64,
    /// Items in it.
    pub items: usize,
    /// `pending`, `claimed` or `expired claim`.
    pub state: &'static str,
    /// Who claimed it.
    pub owner: Option<String>,
    /// When its lease ends (epoch ms).
    pub lease_expires_at_ms: Option<u64>,
}

/// A file of a store.
#[derive(Debug, Serialize)]
pub struct FileReport {
    /// Name.
    pub name: String,
    /// Size.
    pub bytes: u64,
    /// What it is.
    pub role: &'static str,
}

/// A node of the active path.
#[derive(Debug, Serialize)]
pub struct PathNode {
    /// Position on the path from the root (0).
    pub depth: usize,
    /// Node id.
    pub node_id: String,
    /// Its timestamp.
    pub timestamp_ms: u64,
    /// Payload size.
    pub payload_bytes: usize,
    /// The payload's start, readable.
    pub preview: String,
    /// Live children that are not on the path (branches: superseded drafts, forks).
    pub branches: Vec<String>,
}

/// What `inspect` without `--session` writes as JSON.
#[derive(Debug, Serialize)]
struct Overview {
    dir: String,
    sessions: Vec<SessionSummary>,
    attachments: Option<AttachmentStoreReport>,
}

/// The attachment store of a data directory, by its files.
#[derive(Debug, Serialize)]
pub struct AttachmentStoreReport {
    /// Its root.
    pub dir: String,
    /// Attachments stored (files under `objects/`).
    pub attachments: u64,
    /// Their bytes, metadata headers included.
    pub bytes: u64,
    /// Attachments in the trash (a sweep in progress, or interrupted).
    pub trashed: u64,
}

/// Runs `strata inspect`.
pub fn run(args: &InspectArgs) -> Result<(), CliError> {
    let runtime = crate::runtime()?;
    let layout = runtime.block_on(Layout::find(&args.dir))?;
    let sessions = runtime.block_on(layout.session_dirs())?;
    drop(runtime);
    let now = SystemClock.now_ms();
    let out = &mut std::io::stdout().lock();
    match &args.session {
        Some(id) => {
            let Some((id, dir)) = sessions.iter().find(|(session, _)| session == id) else {
                return Err(unknown_session(id, &layout, &sessions));
            };
            let view = StoreView::open(dir).map_err(|source| CliError::Store {
                context: format!(
                    "cannot read session {id} in {} (see strata verify)",
                    dir.display()
                ),
                source,
            })?;
            let detail =
                detail(id, dir, &view, now, args.path_nodes).map_err(|source| CliError::Store {
                    context: format!("cannot read session {id} (see strata verify)"),
                    source,
                })?;
            let written =
                if args.json { write_json(out, &detail) } else { write_detail(out, &detail) };
            written.map_err(CliError::io("write to", Path::new("stdout")))
        }
        None => {
            let summaries: Vec<SessionSummary> =
                sessions.iter().map(|(id, dir)| summarize(id, dir, now)).collect();
            let attachments = layout.attachments.as_deref().map(attachment_store);
            let unreadable = summaries.iter().filter(|summary| summary.error.is_some()).count();
            let overview = Overview {
                dir: layout.dir.display().to_string(),
                sessions: summaries,
                attachments,
            };
            let written =
                if args.json { write_json(out, &overview) } else { write_overview(out, &overview) };
            written.map_err(CliError::io("write to", Path::new("stdout")))?;
            match unreadable {
                0 => Ok(()),
                n => Err(CliError::Failures(format!(
                    "{n} session(s) could not be read; strata verify {} names the damage",
                    layout.dir.display()
                ))),
            }
        }
    }
}

fn unknown_session(id: &str, layout: &Layout, sessions: &[(String, PathBuf)]) -> CliError {
    let known: Vec<&str> = sessions.iter().take(8).map(|(session, _)| session.as_str()).collect();
    let more = if sessions.len() > known.len() { ", …" } else { "" };
    CliError::Usage(format!(
        "no session `{id}` in {}; it holds: {}{more}",
        layout.dir.display(),
        known.join(", ")
    ))
}

/// How a holder is named in reports.
pub(crate) fn holder_name(holder: Holder) -> Option<String> {
    match holder {
        Holder::Nobody => None,
        Holder::Process(pid) if pid == std::process::id() => Some("this process".into()),
        Holder::Process(0) => Some("a process in another pid namespace".into()),
        Holder::Process(pid) => Some(format!("process {pid}")),
        Holder::Unknown => None,
    }
}

/// The summary of the session `id` in `dir`; a store that cannot be viewed gives a summary
/// with its error.
fn summarize(id: &str, dir: &Path, now: u64) -> SessionSummary {
    let empty = |error: String| SessionSummary {
        session: id.to_owned(),
        dir: dir.display().to_string(),
        held_by: None,
        revision: None,
        live_nodes: 0,
        tombstoned_nodes: 0,
        active_path: 0,
        pending_batches: 0,
        claimed_batches: 0,
        expired_claims: 0,
        committed_attachments: 0,
        uncommitted_attachments: 0,
        blobs: 0,
        disk_bytes: 0,
        torn_tail: None,
        error: Some(error),
    };
    match StoreView::open(dir).and_then(|view| summary(id, dir, &view, now)) {
        Ok(summary) => summary,
        Err(error) => empty(error.to_string()),
    }
}

fn summary(
    id: &str,
    dir: &Path,
    view: &StoreView,
    now: u64,
) -> Result<SessionSummary, strata::StoreError> {
    let state = view.state();
    let graph = state.stored_graph();
    let tombstoned = graph.nodes.iter().filter(|node| is_tombstoned(node)).count() as u64;
    let live = graph.nodes.len() as u64 - tombstoned;
    let active_path =
        match state.load_session(&SessionReadScope::ActivePath { leaf_node_id: None })? {
            Some(read) => read.graph.nodes.len() as u64,
            None => 0,
        };
    let (mut pending, mut claimed, mut expired) = (0, 0, 0);
    for batch in state.queue().stored_batches() {
        match &batch.hold {
            None => pending += 1,
            Some(hold) if hold.is_live(now) => claimed += 1,
            Some(_) => expired += 1,
        }
    }
    let committed =
        state.manifest().entries().filter(|row| row.committed_at_epoch_ms.is_some()).count() as u64;
    let rows = state.manifest().entries().count() as u64;
    Ok(SessionSummary {
        session: id.to_owned(),
        dir: dir.display().to_string(),
        held_by: holder_name(view.holder()),
        revision: state.head().map(|head| head.revision),
        live_nodes: live,
        tombstoned_nodes: tombstoned,
        active_path,
        pending_batches: pending,
        claimed_batches: claimed,
        expired_claims: expired,
        committed_attachments: committed,
        uncommitted_attachments: rows - committed,
        blobs: state.blobs().count() as u64,
        disk_bytes: view.files().iter().map(|file| file.len).sum(),
        torn_tail: view.torn_tail().map(TornTailReport::from),
        error: None,
    })
}

fn detail(
    id: &str,
    dir: &Path,
    view: &StoreView,
    now: u64,
    path_nodes: usize,
) -> Result<SessionDetail, strata::StoreError> {
    let state = view.state();
    let head = state.head().map(|head| HeadReport {
        revision: head.revision,
        leaf_node_id: head.leaf_node_id.clone(),
        current_frame_id: head.current_frame_id.clone(),
        agent_frames: head.agent_frames.len(),
        config_bytes: head.config.len(),
        checkpoint_ref: head.checkpoint_ref.clone(),
        checkpoint_blobs: head
            .checkpoint
            .iter()
            .flat_map(|checkpoint| {
                [
                    &checkpoint.tool_state_ref,
                    &checkpoint.plugin_snapshot_ref,
                    &checkpoint.execution_state_ref,
                ]
            })
            .flatten()
            .cloned()
            .collect(),
    });
    let read = state.load_session(&SessionReadScope::FullGraph)?;
    let usage = read.as_ref().map(|read| read.token_ledger.clone()).unwrap_or_default();
    let batches = state
        .queue()
        .stored_batches()
        .map(|stored| {
            let state = match &stored.hold {
                None => "pending",
                Some(hold) if hold.is_live(now) => "claimed",
                Some(_) => "expired claim",
            };
            BatchReport {
                batch_id: stored.batch.batch_id.clone(),
                session_id: stored.batch.session_id.clone(),
                enqueue_seq: stored.batch.enqueue_seq,
                items: stored.batch.items.len(),
                state,
                owner: stored.hold.as_ref().map(|hold| hold.owner_id.clone()),
                lease_expires_at_ms: stored.hold.as_ref().map(|hold| hold.expires_at_ms),
            }
        })
        .collect();
    let files = view
        .files()
        .iter()
        .map(|file| FileReport {
            name: file.name.clone(),
            bytes: file.len,
            role: file.role.describe(),
        })
        .collect();
    let path = match state.load_session(&SessionReadScope::ActivePath { leaf_node_id: None })? {
        Some(path) => {
            let all = read.map(|read| read.graph.nodes).unwrap_or_default();
            path_nodes_of(path.graph.nodes, &all, path_nodes)
        }
        None => Vec::new(),
    };
    Ok(SessionDetail {
        summary: summary(id, dir, view, now)?,
        head,
        meta: state.load_session_meta(),
        usage,
        batches,
        manifest: state.manifest().entries().cloned().collect(),
        files,
        path,
    })
}

/// The last `limit` nodes of `path` (all with 0), each with its branches: the live nodes of
/// `all` whose parent it is and that are not on the path.
fn path_nodes_of(
    path: Vec<SessionNodeRecord>,
    all: &[SessionNodeRecord],
    limit: usize,
) -> Vec<PathNode> {
    let on_path: std::collections::HashSet<&str> =
        path.iter().map(|node| node.node_id.as_str()).collect();
    let mut children: HashMap<&str, Vec<String>> = HashMap::new();
    for node in all {
        if let Some(parent) = &node.parent_node_id
            && !on_path.contains(node.node_id.as_str())
        {
            children.entry(parent.as_str()).or_default().push(node.node_id.clone());
        }
    }
    let skip = if limit == 0 { 0 } else { path.len().saturating_sub(limit) };
    path.iter()
        .enumerate()
        .skip(skip)
        .map(|(depth, node)| PathNode {
            depth,
            node_id: node.node_id.clone(),
            timestamp_ms: node.timestamp_ms,
            payload_bytes: node.payload.len(),
            preview: preview(&node.payload, 60),
            branches: children.remove(node.node_id.as_str()).unwrap_or_default(),
        })
        .collect()
}

/// The payload's start, readable: a JSON message as `role: content`, other text as is,
/// binary as its size.
pub fn preview(payload: &[u8], chars: usize) -> String {
    let shorten = |text: &str| {
        let clean: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        match clean.char_indices().nth(chars) {
            Some((cut, _)) => format!("{}…", &clean[..cut]),
            None => clean,
        }
    };
    if let Ok(serde_json::Value::Object(message)) = serde_json::from_slice(payload)
        && let (Some(role), Some(content)) = (
            message.get("role").and_then(|role| role.as_str()),
            message.get("content").and_then(|content| content.as_str()),
        )
    {
        return shorten(&format!("{role}: {content}"));
    }
    match std::str::from_utf8(payload) {
        Ok(text) => shorten(text),
        Err(_) => format!("<{} bytes, not text>", payload.len()),
    }
}

/// The attachment store's files: objects, their bytes, the trash.
fn attachment_store(dir: &Path) -> AttachmentStoreReport {
    let files =
        |sub: &str| -> Vec<u64> { walk(&dir.join(sub)).into_iter().map(|(_, len)| len).collect() };
    let objects = files("objects");
    AttachmentStoreReport {
        dir: dir.display().to_string(),
        attachments: objects.len() as u64,
        bytes: objects.iter().sum(),
        trashed: files("trash").len() as u64,
    }
}

/// Every file under `dir` (recursively) with its size; nothing when it cannot be listed.
fn walk(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            found.extend(walk(&entry.path()));
        } else {
            found.push((entry.path(), meta.len()));
        }
    }
    found
}

pub(crate) fn write_json(out: &mut impl Write, value: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)
}

/// An epoch time in milliseconds as RFC 3339 (UTC).
fn timestamp(epoch_ms: u64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(epoch_ms);
    humantime::format_rfc3339_millis(at).to_string()
}

/// `1.2 MiB`, `740 B`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn write_overview(out: &mut impl Write, overview: &Overview) -> std::io::Result<()> {
    writeln!(out, "{}: {} sessions", overview.dir, overview.sessions.len())?;
    let header = [
        "session",
        "revision",
        "live",
        "tombstoned",
        "path",
        "pending",
        "claimed",
        "expired",
        "attachments",
        "uncommitted",
        "disk",
    ];
    let rows = overview
        .sessions
        .iter()
        .map(|s| {
            if let Some(error) = &s.error {
                return vec![s.session.clone(), format!("unreadable: {error}")];
            }
            vec![
                s.session.clone(),
                s.revision.map_or("-".into(), |revision| revision.to_string()),
                s.live_nodes.to_string(),
                s.tombstoned_nodes.to_string(),
                s.active_path.to_string(),
                s.pending_batches.to_string(),
                s.claimed_batches.to_string(),
                s.expired_claims.to_string(),
                s.committed_attachments.to_string(),
                s.uncommitted_attachments.to_string(),
                format_bytes(s.disk_bytes),
            ]
        })
        .collect();
    crate::bench::report::write_rows(out, &header, rows)?;
    for s in &overview.sessions {
        if let Some(holder) = &s.held_by {
            writeln!(
                out,
                "note: {} is open in {holder}: this is its files at one instant",
                s.session
            )?;
        }
        if let Some(tail) = &s.torn_tail {
            writeln!(
                out,
                "note: {}: {}:{}: torn tail of {} (an append never acknowledged): the next open discards it",
                s.session,
                tail.file,
                tail.offset,
                format_bytes(tail.bytes)
            )?;
        }
    }
    let disk: u64 = overview.sessions.iter().map(|s| s.disk_bytes).sum();
    writeln!(out, "sessions on disk: {}", format_bytes(disk))?;
    if let Some(store) = &overview.attachments {
        writeln!(
            out,
            "attachment store {}: {} attachments, {}; {} in the trash",
            store.dir,
            store.attachments,
            format_bytes(store.bytes),
            store.trashed
        )?;
    }
    Ok(())
}

fn write_detail(out: &mut impl Write, d: &SessionDetail) -> std::io::Result<()> {
    let s = &d.summary;
    writeln!(out, "session {} ({})", s.session, s.dir)?;
    if let Some(holder) = &s.held_by {
        writeln!(out, "open in {holder}: this is its files at one instant")?;
    }
    match &d.head {
        None => writeln!(out, "head: none (no commit yet)")?,
        Some(head) => {
            writeln!(
                out,
                "head: revision {}, leaf {}, frame {}, {} agent frames, {} of config",
                head.revision,
                head.leaf_node_id.as_deref().unwrap_or("-"),
                head.current_frame_id.as_deref().unwrap_or("-"),
                head.agent_frames,
                format_bytes(head.config_bytes as u64)
            )?;
            writeln!(
                out,
                "checkpoint: {} (blobs: {})",
                head.checkpoint_ref.as_deref().unwrap_or("none"),
                if head.checkpoint_blobs.is_empty() {
                    "none".into()
                } else {
                    head.checkpoint_blobs.join(", ")
                }
            )?;
        }
    }
    writeln!(
        out,
        "graph: {} live nodes, {} tombstoned; active path {} nodes; {} blobs",
        s.live_nodes, s.tombstoned_nodes, s.active_path, s.blobs
    )?;
    if let Some(meta) = &d.meta {
        writeln!(
            out,
            "metadata: name {}, model {}, cwd {}, created {}",
            meta.session_name.as_deref().unwrap_or("-"),
            meta.model.as_deref().unwrap_or("-"),
            meta.cwd.as_deref().unwrap_or("-"),
            timestamp(meta.created_at_epoch_ms)
        )?;
    }
    for entry in &d.usage {
        let u = &entry.usage;
        writeln!(
            out,
            "usage {}/{}: {} input, {} output, {} cached input, {} reasoning tokens",
            entry.source,
            entry.model,
            u.input_tokens,
            u.output_tokens,
            u.cached_input_tokens,
            u.reasoning_tokens
        )?;
    }
    writeln!(
        out,
        "queue: {} pending, {} claimed, {} expired claims",
        s.pending_batches, s.claimed_batches, s.expired_claims
    )?;
    for batch in &d.batches {
        let owner = match (&batch.owner, batch.lease_expires_at_ms) {
            (Some(owner), Some(until)) => format!(" by {owner}, lease until {}", timestamp(until)),
            _ => String::new(),
        };
        writeln!(
            out,
            "  #{} {} ({} items): {}{owner}",
            batch.enqueue_seq, batch.batch_id, batch.items, batch.state
        )?;
    }
    writeln!(
        out,
        "attachments: {} committed, {} uncommitted",
        s.committed_attachments, s.uncommitted_attachments
    )?;
    for row in d.manifest.iter().filter(|row| row.committed_at_epoch_ms.is_none()) {
        let since = timestamp(row.intent_at_epoch_ms);
        writeln!(out, "  uncommitted since {since}: {}", row.attachment_id)?;
    }
    writeln!(out, "files ({}):", format_bytes(s.disk_bytes))?;
    let width = d.files.iter().map(|file| file.name.chars().count()).max().unwrap_or(0);
    for file in &d.files {
        writeln!(out, "  {:<width$}  {:>9}  {}", file.name, format_bytes(file.bytes), file.role)?;
    }
    if let Some(tail) = &s.torn_tail {
        writeln!(
            out,
            "torn tail: {}:{}, {} (an append never acknowledged): the next open discards it",
            tail.file,
            tail.offset,
            format_bytes(tail.bytes)
        )?;
    }
    write_path(out, d)
}

/// The active path as a tree: one line per node, root first, its branches under it.
fn write_path(out: &mut impl Write, d: &SessionDetail) -> std::io::Result<()> {
    let total = d.summary.active_path as usize;
    let shown = d.path.len();
    if total == 0 {
        return writeln!(out, "active path: empty");
    }
    let which = if shown < total {
        format!(" (the last {shown}; --path-nodes 0 shows all)")
    } else {
        String::new()
    };
    writeln!(out, "active path: {total} nodes, root first{which}")?;
    if shown < total {
        writeln!(out, "  ⋮ {} earlier nodes", total - shown)?;
    }
    let width = d.path.iter().map(|node| node.node_id.chars().count()).max().unwrap_or(0);
    for node in &d.path {
        writeln!(
            out,
            "  ● {:<width$}  {:>8}  {}",
            node.node_id,
            format_bytes(node.payload_bytes as u64),
            node.preview
        )?;
        for (index, branch) in node.branches.iter().enumerate() {
            let corner = if index + 1 == node.branches.len() { "└─" } else { "├─" };
            writeln!(out, "  │ {corner} {branch} (off the path)")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_show_a_message_as_role_and_content() {
        let message = br#"{"type":"message","role":"user","content":"Fix the parser, please"}"#;
        assert_eq!(preview(message, 60), "user: Fix the parser, please");
        assert_eq!(preview(message, 10), "user: Fix …");
        assert_eq!(preview(b"plain\ntext", 60), "plain text");
        assert_eq!(preview(&[0xff, 0xfe, 0x00], 60), "<3 bytes, not text>");
    }

    #[test]
    fn sizes_are_human() {
        assert_eq!(format_bytes(740), "740 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(5 << 20), "5.0 MiB");
    }

    fn node(id: &str, parent: Option<&str>) -> SessionNodeRecord {
        SessionNodeRecord {
            node_id: id.into(),
            parent_node_id: parent.map(Into::into),
            payload: strata::Bytes::from_static(b"x"),
            timestamp_ms: 0,
            frame_id: None,
            cause: None,
        }
    }

    #[test]
    fn the_path_lists_its_branches_and_keeps_its_end() {
        let path = vec![node("a", None), node("b", Some("a")), node("c", Some("b"))];
        let all = vec![
            node("a", None),
            node("b", Some("a")),
            node("draft", Some("a")),
            node("c", Some("b")),
            node("fork", Some("b")),
        ];
        let shown = path_nodes_of(path.clone(), &all, 0);
        let branches: Vec<(&str, Vec<String>)> =
            shown.iter().map(|node| (node.node_id.as_str(), node.branches.clone())).collect();
        assert_eq!(
            branches,
            [("a", vec!["draft".to_owned()]), ("b", vec!["fork".to_owned()]), ("c", vec![])]
        );
        let end = path_nodes_of(path, &all, 2);
        assert_eq!((end[0].depth, end[0].node_id.as_str()), (1, "b"));
    }
}
