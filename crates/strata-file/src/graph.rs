//! The snapshot's graph section: the session graph stored for random access, so that opening
//! a store reads an index and no node body, and a read materializes only the nodes it returns
//! (see the crate docs for the byte layout).
//!
//! [`GraphSection`] is the `strata_core::state::GraphBase` of the file backend. Opened from a
//! snapshot, it holds the section's table (entries, sorted order, ids) in one buffer, checked
//! once against its CRC, and reads node bodies from the body files on demand with positioned
//! reads, each body checked against its own CRC.

use std::collections::HashMap;
use std::fs::File;
use std::sync::Arc;

use strata_core::state::{GraphBase, StoredGraph, StoredNode};
use strata_core::{SessionNodeRecord, StoreError};

use crate::bodies::{BodyFiles, NewBodies, Rewrite, bodies_name};
pub use crate::format::SECTION_HEADER_LEN;
use crate::format::{self, corrupt, read_section, u16_at, u32_at, u64_at};

/// First eight bytes of a graph section.
pub const SECTION_MAGIC: [u8; 8] = *b"STRATAGR";
/// Size of one entry of the entry table.
pub const ENTRY_LEN: usize = 36;
/// Size of one element of the sorted-order table (an entry number).
pub const ORDER_LEN: usize = 4;
/// Entry flag: the node was tombstoned when the section was written.
const FLAG_TOMBSTONED: u16 = 1;
/// Entry flag: the node has a parent id (at `parent_offset` in the ids region).
const FLAG_PARENT: u16 = 2;
/// A batch read sorts its bodies by place and reads each run of them in one read: bodies of one
/// file with at most this many bytes between neighbours share a run (the bytes between are
/// read and skipped), so a path or graph written turn by turn costs a few reads, not one per
/// node.
const READ_RUN_GAP: u64 = 16 * 1024;
/// No run reads more than this in one go.
const READ_RUN_MAX: u64 = 4 << 20;

/// Where a body is: body file generation, offset in that file, length, CRC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BodyRef {
    pub(crate) file: u32,
    pub(crate) offset: u64,
    pub(crate) len: u32,
    pub(crate) crc: u32,
}

impl BodyRef {
    /// Writes `body` to `new`: its reference there.
    pub(crate) fn write(new: &mut NewBodies, body: &[u8]) -> Result<Self, StoreError> {
        let len = u32::try_from(body.len())
            .map_err(|_| StoreError::InvalidInput("a body over 4 GiB".into()))?;
        let offset = new.push(body)?;
        Ok(Self { file: new.generation(), offset, len, crc: crc32fast::hash(body) })
    }

    /// Reads the body from `files` and checks its CRC; damage is corrupt data at the body's
    /// place (`bodies.<generation>:<offset>`).
    pub(crate) fn read(&self, files: &BodyFiles) -> Result<Vec<u8>, StoreError> {
        let body = files.read(self.file, self.offset, self.len as usize)?;
        self.check(&body)?;
        Ok(body)
    }

    /// Checks `body` (read from this place) against the CRC.
    pub(crate) fn check(&self, body: &[u8]) -> Result<(), StoreError> {
        if crc32fast::hash(body) != self.crc {
            return Err(self.corrupt("body checksum mismatch"));
        }
        Ok(())
    }

    /// Corrupt data at this body's place.
    pub(crate) fn corrupt(&self, detail: &str) -> StoreError {
        corrupt(&bodies_name(self.file), self.offset, detail)
    }
}

/// One entry of the table, decoded.
#[derive(Clone, Copy, Debug)]
struct Entry {
    body: BodyRef,
    id_offset: u32,
    id_len: u16,
    flags: u16,
    parent_offset: u32,
    parent_len: u16,
}

/// A graph section: the graph of one snapshot (see the module docs).
#[derive(Debug)]
pub struct GraphSection {
    /// The snapshot file name, for error locations.
    file_name: String,
    count: usize,
    /// Entries, then sorted order, then ids.
    table: Vec<u8>,
    /// File offset of the table (error locations).
    table_offset: u64,
    /// The body files the entries point into.
    bodies: Arc<BodyFiles>,
    /// The generations of the body files the entries use, ascending.
    files: Vec<u32>,
}

/// One node as the section writer takes it.
struct Part<'a> {
    id: &'a [u8],
    parent: Option<&'a [u8]>,
    body: BodyRef,
    tombstoned: bool,
}

/// Encodes `graph` (every stored node, in insertion order) as a graph section, writing the
/// bodies it adds to `new`. Entries of the current base (a section this module made) keep
/// their bodies where they are (their references are copied, nothing is read), unless
/// `rewrite` names their file: then the body is copied into `new`, checked on the way.
/// Overlay nodes are encoded into `new`.
pub fn encode(
    graph: &StoredGraph<'_>,
    new: &mut NewBodies,
    rewrite: &Rewrite,
) -> Result<Vec<u8>, StoreError> {
    let section: Option<&GraphSection> =
        format::own_base(graph.base.map(|base| base.as_any()), "graph")?;
    let mut parts = Vec::with_capacity(graph.nodes.len());
    for stored in &graph.nodes {
        parts.push(match *stored {
            StoredNode::Base { entry, tombstoned } => {
                let section = section.ok_or_else(|| {
                    StoreError::Backend("a stored graph names base entries but no base".into())
                })?;
                let entry = section.entry(entry);
                let body = if rewrite.copies(entry.body.file) {
                    BodyRef::write(new, &entry.body.read(&section.bodies)?)?
                } else {
                    entry.body
                };
                Part {
                    id: section.id(&entry),
                    parent: (entry.flags & FLAG_PARENT != 0)
                        .then(|| section.ids(entry.parent_offset, entry.parent_len)),
                    body,
                    tombstoned,
                }
            }
            StoredNode::Overlay { node, tombstoned } => Part {
                id: node.node_id.as_bytes(),
                parent: node.parent_node_id.as_deref().map(str::as_bytes),
                body: BodyRef::write(new, &format::encode(node)?)?,
                tombstoned,
            },
        });
    }
    write_section(&parts)
}

/// Lays `parts` out as a graph section.
fn write_section(parts: &[Part<'_>]) -> Result<Vec<u8>, StoreError> {
    let count = parts.len();
    let too_large = || StoreError::InvalidInput("graph too large for one snapshot".into());
    u32::try_from(count).map_err(|_| too_large())?;
    let offset = |len: usize| u32::try_from(len).map_err(|_| too_large());
    let length = |len: usize| u16::try_from(len).map_err(|_| too_large());
    // The ids region: every node's id, then the parent ids that name no node of the section
    // (a parent id naming one points at that node's id).
    let mut ids = Vec::new();
    let mut id_offsets: HashMap<&[u8], u32> = HashMap::with_capacity(count);
    for part in parts {
        id_offsets.insert(part.id, offset(ids.len())?);
        ids.extend_from_slice(part.id);
    }
    let mut entries = Vec::with_capacity(count * ENTRY_LEN);
    for part in parts {
        let mut flags = if part.tombstoned { FLAG_TOMBSTONED } else { 0 };
        let (parent_offset, parent_len) = match part.parent {
            None => (0, 0),
            Some(parent) => {
                flags |= FLAG_PARENT;
                let at = match id_offsets.get(parent) {
                    Some(&at) => at,
                    None => {
                        let at = offset(ids.len())?;
                        ids.extend_from_slice(parent);
                        at
                    }
                };
                (at, length(parent.len())?)
            }
        };
        entries.extend_from_slice(&part.body.file.to_le_bytes());
        entries.extend_from_slice(&part.body.offset.to_le_bytes());
        entries.extend_from_slice(&part.body.len.to_le_bytes());
        entries.extend_from_slice(&part.body.crc.to_le_bytes());
        entries.extend_from_slice(&id_offsets[part.id].to_le_bytes());
        entries.extend_from_slice(&length(part.id.len())?.to_le_bytes());
        entries.extend_from_slice(&flags.to_le_bytes());
        entries.extend_from_slice(&parent_offset.to_le_bytes());
        entries.extend_from_slice(&parent_len.to_le_bytes());
        entries.extend_from_slice(&[0, 0]);
    }
    let mut order: Vec<u32> = (0..count as u32).collect();
    order.sort_unstable_by_key(|&entry| parts[entry as usize].id);
    let mut table = entries;
    table.reserve(count * ORDER_LEN + ids.len());
    order.iter().for_each(|entry| table.extend_from_slice(&entry.to_le_bytes()));
    table.extend_from_slice(&ids);

    Ok(format::section_bytes(&SECTION_MAGIC, count as u64, ids.len() as u64, &table))
}

impl GraphSection {
    /// Opens the section at `offset` of the snapshot `file` (named `name`, `file_len` bytes),
    /// its bodies in `bodies`: reads its header and table, checks their CRCs and that every
    /// entry points inside the section or a body file. Returns the section and its length.
    /// Reads no node body.
    pub fn open(
        file: &File,
        name: &str,
        offset: u64,
        file_len: u64,
        bodies: Arc<BodyFiles>,
    ) -> Result<(Self, u64), StoreError> {
        let read = read_section(file, name, offset, file_len, (&SECTION_MAGIC, "graph"), {
            |count, ids_len| count.checked_mul((ENTRY_LEN + ORDER_LEN) as u64)?.checked_add(ids_len)
        })?;
        let (count, table, table_offset) = (read.count, read.table, read.table_offset);
        let mut section =
            Self { file_name: name.to_owned(), count, table, table_offset, bodies, files: vec![] };
        section.files = section.check_table()?;
        Ok((section, read.len))
    }

    /// The body file generations the entries point into, ascending.
    pub fn body_files(&self) -> &[u32] {
        &self.files
    }

    /// The body files this section reads from (shared with the snapshot's stamp section).
    pub fn bodies(&self) -> &BodyFiles {
        &self.bodies
    }

    /// Reads every entry's body, as a read of that node would (CRC, decoding, the id it
    /// names, the parent id's text), and hands each failure to `problem`. Returns how many
    /// bodies were checked. For verifiers: a store's reads check only the bodies they return.
    pub fn check_bodies(&self, problem: &mut dyn FnMut(StoreError)) -> u64 {
        for index in 0..self.count {
            let entry = self.entry(index);
            let body = entry.body;
            let checked = self
                .bodies
                .read(body.file, body.offset, body.len as usize)
                .and_then(|bytes| self.decode(&entry, &bytes, body.offset))
                .and_then(|_| self.parent_id(index).map(drop));
            if let Err(error) = checked {
                problem(error);
            }
        }
        self.count as u64
    }

    /// Checks every entry's ids lie inside the ids region and its body inside a body file,
    /// and the sorted order names entries: later lookups and reads cannot go out of bounds.
    /// Returns the generations of the body files used.
    fn check_table(&self) -> Result<Vec<u32>, StoreError> {
        let mut spans = self.bodies.spans();
        let ids_len = (self.table.len() - self.count * (ENTRY_LEN + ORDER_LEN)) as u64;
        for index in 0..self.count {
            let entry = self.entry(index);
            let id_end = u64::from(entry.id_offset) + u64::from(entry.id_len);
            let parent_end = u64::from(entry.parent_offset) + u64::from(entry.parent_len);
            let body = entry.body;
            if id_end > ids_len
                || parent_end > ids_len
                || !spans.holds(body.file, body.offset, body.len)
            {
                let at = self.table_offset + (index * ENTRY_LEN) as u64;
                return Err(corrupt(&self.file_name, at, "graph entry points outside its files"));
            }
        }
        for rank in 0..self.count {
            if self.order(rank) >= self.count {
                let at = self.table_offset + (self.count * ENTRY_LEN + rank * ORDER_LEN) as u64;
                return Err(corrupt(&self.file_name, at, "graph order names no entry"));
            }
        }
        Ok(spans.used())
    }

    fn entry(&self, index: usize) -> Entry {
        let bytes = &self.table[index * ENTRY_LEN..(index + 1) * ENTRY_LEN];
        Entry {
            body: BodyRef {
                file: u32_at(bytes, 0),
                offset: u64_at(bytes, 4),
                len: u32_at(bytes, 12),
                crc: u32_at(bytes, 16),
            },
            id_offset: u32_at(bytes, 20),
            id_len: u16_at(bytes, 24),
            flags: u16_at(bytes, 26),
            parent_offset: u32_at(bytes, 28),
            parent_len: u16_at(bytes, 32),
        }
    }

    /// The entry number at position `rank` of the id-sorted order.
    fn order(&self, rank: usize) -> usize {
        u32_at(&self.table, self.count * ENTRY_LEN + rank * ORDER_LEN) as usize
    }

    /// `len` bytes at `offset` of the ids region.
    fn ids(&self, offset: u32, len: u16) -> &[u8] {
        let start = self.count * (ENTRY_LEN + ORDER_LEN) + offset as usize;
        &self.table[start..start + len as usize]
    }

    fn id(&self, entry: &Entry) -> &[u8] {
        self.ids(entry.id_offset, entry.id_len)
    }

    /// Checks and decodes the body of `entry`, found in `bytes` (which start at `start` of
    /// its body file).
    fn decode(
        &self,
        entry: &Entry,
        bytes: &[u8],
        start: u64,
    ) -> Result<SessionNodeRecord, StoreError> {
        let from = (entry.body.offset - start) as usize;
        let body = &bytes[from..from + entry.body.len as usize];
        entry.body.check(body)?;
        let name = bodies_name(entry.body.file);
        let node: SessionNodeRecord = format::decode(&name, entry.body.offset, body)?;
        if node.node_id.as_bytes() != self.id(entry) {
            return Err(entry.body.corrupt("node body names another id than its entry"));
        }
        Ok(node)
    }
}

impl GraphBase for GraphSection {
    fn entry_count(&self) -> usize {
        self.count
    }

    fn find(&self, node_id: &str) -> Option<usize> {
        let wanted = node_id.as_bytes();
        let (mut low, mut high) = (0, self.count);
        while low < high {
            let middle = low + (high - low) / 2;
            let entry = self.order(middle);
            match self.id(&self.entry(entry)).cmp(wanted) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => return Some(entry),
            }
        }
        None
    }

    fn tombstoned(&self, entry: usize) -> bool {
        self.entry(entry).flags & FLAG_TOMBSTONED != 0
    }

    fn parent_id(&self, index: usize) -> Result<Option<&str>, StoreError> {
        let entry = self.entry(index);
        if entry.flags & FLAG_PARENT == 0 {
            return Ok(None);
        }
        let bytes = self.ids(entry.parent_offset, entry.parent_len);
        std::str::from_utf8(bytes).map(Some).map_err(|_| {
            let at = self.table_offset + (index * ENTRY_LEN) as u64;
            corrupt(&self.file_name, at, "graph entry's parent id is not UTF-8")
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn nodes_at(&self, entries: &[usize]) -> Result<Vec<SessionNodeRecord>, StoreError> {
        let entries: Vec<Entry> = entries.iter().map(|&index| self.entry(index)).collect();
        let mut by_place: Vec<usize> = (0..entries.len()).collect();
        by_place.sort_unstable_by_key(|&at| (entries[at].body.file, entries[at].body.offset));
        let mut nodes: Vec<Option<SessionNodeRecord>> = vec![None; entries.len()];
        let mut run_start = 0;
        while run_start < by_place.len() {
            let first = entries[by_place[run_start]].body;
            let mut end = first.offset + u64::from(first.len);
            let mut run_end = run_start + 1;
            while let Some(&next) = by_place.get(run_end) {
                let body = entries[next].body;
                let next_end = body.offset + u64::from(body.len);
                if body.file != first.file
                    || body.offset > end + READ_RUN_GAP
                    || next_end - first.offset > READ_RUN_MAX
                {
                    break;
                }
                end = end.max(next_end);
                run_end += 1;
            }
            let bytes =
                self.bodies.read(first.file, first.offset, (end - first.offset) as usize)?;
            for &at in &by_place[run_start..run_end] {
                nodes[at] = Some(self.decode(&entries[at], &bytes, first.offset)?);
            }
            run_start = run_end;
        }
        Ok(nodes.into_iter().flatten().collect())
    }
}
