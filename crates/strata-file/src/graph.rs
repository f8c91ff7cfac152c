//! The snapshot's graph section: the session graph stored for random access, so that opening
//! a store reads an index and no node body, and a read materializes only the nodes it returns
//! (see the crate docs for the byte layout).
//!
//! [`GraphSection`] is the `strata_core::state::GraphBase` of the file backend. Opened from a
//! snapshot, it holds the section's table (entries, sorted order, ids) in one buffer, checked
//! once against its CRC, and reads node bodies from the file on demand with positioned reads,
//! each body checked against its own CRC.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;

use strata_core::state::{GraphBase, StoredGraph, StoredNode};
use strata_core::{Bytes, SessionNodeRecord, StoreError};

use crate::format::{self, corrupt, read_at};

/// First eight bytes of a graph section.
pub const SECTION_MAGIC: [u8; 8] = *b"STRATAGR";
/// Size of the section header: magic, entry count, ids length, bodies length, table CRC,
/// header CRC.
pub const SECTION_HEADER_LEN: usize = 40;
/// Size of one entry of the entry table.
pub const ENTRY_LEN: usize = 32;
/// Size of one element of the sorted-order table (an entry number).
pub const ORDER_LEN: usize = 4;
/// Entry flag: the node was tombstoned when the section was written.
const FLAG_TOMBSTONED: u16 = 1;
/// Entry flag: the node has a parent id (at `parent_offset` in the ids region).
const FLAG_PARENT: u16 = 2;
/// A batch read covers the span from its first to its last body in one read when the span
/// is at most this many times the bytes wanted (plus [`READ_SPAN_SLACK`]); else one read per
/// body.
const READ_SPAN_FACTOR: u64 = 4;
/// See [`READ_SPAN_FACTOR`].
const READ_SPAN_SLACK: u64 = 64 * 1024;

/// One entry of the table, decoded.
#[derive(Clone, Copy, Debug)]
struct Entry {
    body_offset: u64,
    body_len: u32,
    body_crc: u32,
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
    table: Bytes,
    /// File offset of the table (error locations).
    table_offset: u64,
    /// File offset of the bodies region.
    bodies_offset: u64,
    /// Length of the bodies region.
    bodies_len: u64,
    /// The snapshot file, for reads of bodies.
    file: File,
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// One node as the section writer takes it.
struct Part<'a> {
    id: &'a [u8],
    parent: Option<&'a [u8]>,
    body: Cow<'a, [u8]>,
    body_crc: u32,
    tombstoned: bool,
}

/// Encodes `graph` (every stored node, in insertion order) as a graph section. Entries of the
/// current base (a section this module made) are copied as they are, body and checksum
/// included, without being decoded; overlay nodes are encoded.
pub fn encode(graph: &StoredGraph<'_>) -> Result<Vec<u8>, StoreError> {
    let foreign = || StoreError::Backend("the graph base was not made by strata-file".into());
    let section = match graph.base {
        Some(base) => Some(base.as_any().downcast_ref::<GraphSection>().ok_or_else(foreign)?),
        None => None,
    };
    let base_bodies = match section {
        Some(section) => section.read_bodies(0, section.bodies_len)?,
        None => Bytes::new(),
    };
    let mut parts = Vec::with_capacity(graph.nodes.len());
    for stored in &graph.nodes {
        parts.push(match *stored {
            StoredNode::Base { entry, tombstoned } => {
                let section = section.ok_or_else(foreign)?;
                let entry = section.entry(entry);
                let start = entry.body_offset as usize;
                Part {
                    id: section.id(&entry),
                    parent: (entry.flags & FLAG_PARENT != 0)
                        .then(|| section.ids(entry.parent_offset, entry.parent_len)),
                    body: Cow::Borrowed(&base_bodies[start..start + entry.body_len as usize]),
                    body_crc: entry.body_crc,
                    tombstoned,
                }
            }
            StoredNode::Overlay { node, tombstoned } => {
                let body = format::encode(node)?;
                Part {
                    id: node.node_id.as_bytes(),
                    parent: node.parent_node_id.as_deref().map(str::as_bytes),
                    body_crc: crc32fast::hash(&body),
                    body: Cow::Owned(body),
                    tombstoned,
                }
            }
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
    let mut bodies = Vec::new();
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
        entries.extend_from_slice(&(bodies.len() as u64).to_le_bytes());
        entries.extend_from_slice(&offset(part.body.len())?.to_le_bytes());
        entries.extend_from_slice(&part.body_crc.to_le_bytes());
        entries.extend_from_slice(&id_offsets[part.id].to_le_bytes());
        entries.extend_from_slice(&length(part.id.len())?.to_le_bytes());
        entries.extend_from_slice(&flags.to_le_bytes());
        entries.extend_from_slice(&parent_offset.to_le_bytes());
        entries.extend_from_slice(&parent_len.to_le_bytes());
        entries.extend_from_slice(&[0, 0]);
        bodies.extend_from_slice(&part.body);
    }
    let mut order: Vec<u32> = (0..count as u32).collect();
    order.sort_unstable_by_key(|&entry| parts[entry as usize].id);
    let mut table = entries;
    table.reserve(count * ORDER_LEN + ids.len());
    order.iter().for_each(|entry| table.extend_from_slice(&entry.to_le_bytes()));
    table.extend_from_slice(&ids);

    let mut out = Vec::with_capacity(SECTION_HEADER_LEN + table.len() + bodies.len());
    out.extend_from_slice(&SECTION_MAGIC);
    out.extend_from_slice(&(count as u64).to_le_bytes());
    out.extend_from_slice(&(ids.len() as u64).to_le_bytes());
    out.extend_from_slice(&(bodies.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&table).to_le_bytes());
    let header_crc = crc32fast::hash(&out);
    out.extend_from_slice(&header_crc.to_le_bytes());
    out.extend_from_slice(&table);
    out.extend_from_slice(&bodies);
    Ok(out)
}

/// The parsed header: entry count, table length, bodies length.
fn parse_header(name: &str, offset: u64, header: &[u8]) -> Result<(usize, u64, u64), StoreError> {
    if header[..8] != SECTION_MAGIC {
        return Err(corrupt(name, offset, "bad graph section magic"));
    }
    if crc32fast::hash(&header[..36]) != u32_at(header, 36) {
        return Err(corrupt(name, offset, "graph section header checksum mismatch"));
    }
    let count = u64_at(header, 8);
    let ids_len = u64_at(header, 16);
    let bodies_len = u64_at(header, 24);
    let table_len = count
        .checked_mul((ENTRY_LEN + ORDER_LEN) as u64)
        .and_then(|len| len.checked_add(ids_len))
        .filter(|len| len.checked_add(bodies_len).is_some());
    match (usize::try_from(count), table_len) {
        (Ok(count), Some(table_len)) if count <= u32::MAX as usize => {
            Ok((count, table_len, bodies_len))
        }
        _ => Err(corrupt(name, offset, "graph section sizes out of range")),
    }
}

impl GraphSection {
    /// Opens the section at `offset` of the snapshot `file` (named `name`, `file_len` bytes):
    /// reads its header and table, checks their CRCs and that every entry points inside the
    /// section. Returns the section and its length. Reads no node body.
    pub fn open(
        file: &File,
        name: &str,
        offset: u64,
        file_len: u64,
    ) -> Result<(Self, u64), StoreError> {
        let header = read_at(file, name, offset, SECTION_HEADER_LEN)?;
        let (count, table_len, bodies_len) = parse_header(name, offset, &header)?;
        let table_offset = offset + SECTION_HEADER_LEN as u64;
        let end = table_offset
            .checked_add(table_len)
            .and_then(|end| end.checked_add(bodies_len))
            .filter(|&end| end <= file_len)
            .ok_or_else(|| corrupt(name, offset, "graph section runs past the end of the file"))?;
        let table_bytes = usize::try_from(table_len)
            .map_err(|_| corrupt(name, offset, "graph table too large"))?;
        let table = read_at(file, name, table_offset, table_bytes)?;
        if crc32fast::hash(&table) != u32_at(&header, 32) {
            return Err(corrupt(name, table_offset, "graph table checksum mismatch"));
        }
        let handle =
            file.try_clone().map_err(|error| StoreError::io(format!("dup {name}"), error))?;
        let section = Self {
            file_name: name.to_owned(),
            count,
            table: Bytes::from(table),
            table_offset,
            bodies_offset: table_offset + table_len,
            bodies_len,
            file: handle,
        };
        section.check_table()?;
        Ok((section, end - offset))
    }

    /// Checks every entry's id lies inside the ids region, the bodies follow one another in
    /// entry order and fill the bodies region, and the sorted order names entries: later
    /// lookups and reads cannot index out of bounds.
    fn check_table(&self) -> Result<(), StoreError> {
        let ids_len = (self.table.len() - self.count * (ENTRY_LEN + ORDER_LEN)) as u64;
        let mut body_end = 0u64;
        for index in 0..self.count {
            let entry = self.entry(index);
            let id_end = u64::from(entry.id_offset) + u64::from(entry.id_len);
            let parent_end = u64::from(entry.parent_offset) + u64::from(entry.parent_len);
            if id_end > ids_len || parent_end > ids_len || entry.body_offset != body_end {
                let at = self.table_offset + (index * ENTRY_LEN) as u64;
                return Err(corrupt(&self.file_name, at, "graph entry points outside the section"));
            }
            body_end += u64::from(entry.body_len);
        }
        if body_end != self.bodies_len {
            return Err(corrupt(
                &self.file_name,
                self.table_offset,
                "graph bodies length mismatch",
            ));
        }
        for rank in 0..self.count {
            if self.order(rank) >= self.count {
                let at = self.table_offset + (self.count * ENTRY_LEN + rank * ORDER_LEN) as u64;
                return Err(corrupt(&self.file_name, at, "graph order names no entry"));
            }
        }
        Ok(())
    }

    fn entry(&self, index: usize) -> Entry {
        let bytes = &self.table[index * ENTRY_LEN..(index + 1) * ENTRY_LEN];
        Entry {
            body_offset: u64_at(bytes, 0),
            body_len: u32_at(bytes, 8),
            body_crc: u32_at(bytes, 12),
            id_offset: u32_at(bytes, 16),
            id_len: u16_at(bytes, 20),
            flags: u16_at(bytes, 22),
            parent_offset: u32_at(bytes, 24),
            parent_len: u16_at(bytes, 28),
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

    /// `len` bytes of the bodies region from `start` (one positioned read from the file).
    fn read_bodies(&self, start: u64, len: u64) -> Result<Bytes, StoreError> {
        let len =
            usize::try_from(len).map_err(|_| StoreError::Backend("graph read too large".into()))?;
        read_at(&self.file, &self.file_name, self.bodies_offset + start, len).map(Bytes::from)
    }

    /// Checks and decodes the body of `entry`, found in `bytes` (which start at `start` of
    /// the bodies region).
    fn decode(
        &self,
        entry: &Entry,
        bytes: &[u8],
        start: u64,
    ) -> Result<SessionNodeRecord, StoreError> {
        let from = (entry.body_offset - start) as usize;
        let body = &bytes[from..from + entry.body_len as usize];
        let at = self.bodies_offset + entry.body_offset;
        if crc32fast::hash(body) != entry.body_crc {
            return Err(corrupt(&self.file_name, at, "node body checksum mismatch"));
        }
        let node: SessionNodeRecord = format::decode(&self.file_name, at, body)?;
        if node.node_id.as_bytes() != self.id(entry) {
            return Err(corrupt(&self.file_name, at, "node body names another id than its entry"));
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
        let start = entries.iter().map(|entry| entry.body_offset).min().unwrap_or(0);
        let end = entries.iter().map(|e| e.body_offset + u64::from(e.body_len)).max().unwrap_or(0);
        let wanted: u64 = entries.iter().map(|entry| u64::from(entry.body_len)).sum();
        if end - start <= wanted * READ_SPAN_FACTOR + READ_SPAN_SLACK {
            let bytes = self.read_bodies(start, end - start)?;
            entries.iter().map(|entry| self.decode(entry, &bytes, start)).collect()
        } else {
            entries
                .iter()
                .map(|entry| {
                    let bytes = self.read_bodies(entry.body_offset, u64::from(entry.body_len))?;
                    self.decode(entry, &bytes, entry.body_offset)
                })
                .collect()
        }
    }
}
