//! The snapshot's stamp section: every turn stamp stored for random access, so that opening a
//! store reads a small sorted index and no stamp, and only a retry of a stamped turn reads its
//! record from its body file (see the crate docs for the byte layout).
//!
//! [`StampSection`] is the `strata_core::state::StampBase` of the file backend. It holds the
//! section's table (28 bytes per stamp: key and body reference) in one buffer, checked once
//! against its CRC, and reads a stamp's body from its body file on demand with one positioned
//! read, checked against its own CRC.

use std::fs::File;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use strata_core::StoreError;
use strata_core::state::{StampBase, StampRecord, StoredStamps};

use crate::bodies::{BodyFiles, NewBodies, Rewrite, bodies_name};
pub use crate::format::SECTION_HEADER_LEN;
use crate::format::{self, corrupt, read_section, u32_at, u64_at};
use crate::graph::BodyRef;

/// First eight bytes of a stamp section.
pub const SECTION_MAGIC: [u8; 8] = *b"STRATAST";
/// Size of one entry of the table: key, then the body's file, offset, length and CRC.
pub const ENTRY_LEN: usize = 28;

/// One stamp body: its key fields and its record (postcard-encoded in a body file).
#[derive(Serialize, Deserialize)]
struct Body<'a> {
    session_id: std::borrow::Cow<'a, str>,
    turn_id: std::borrow::Cow<'a, str>,
    record: std::borrow::Cow<'a, StampRecord>,
}

/// The lookup key of a stamp: the first eight bytes (little-endian) of BLAKE3 over the
/// session id, a zero byte and the turn id. Equal keys of different stamps are told apart by
/// the ids in their bodies.
pub fn stamp_key(session_id: &str, turn_id: &str) -> u64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(session_id.as_bytes());
    hasher.update(&[0]);
    hasher.update(turn_id.as_bytes());
    u64::from_le_bytes(hasher.finalize().as_bytes()[..8].try_into().expect("8 bytes"))
}

/// One entry of the table, decoded.
#[derive(Clone, Copy, Debug)]
struct Entry {
    key: u64,
    body: BodyRef,
}

/// A stamp section opened from a snapshot file (see the module docs).
#[derive(Debug)]
pub struct StampSection {
    /// The snapshot file name, for error locations.
    file_name: String,
    count: usize,
    /// The entries, sorted by key.
    table: Vec<u8>,
    table_offset: u64,
    bodies: Arc<BodyFiles>,
    /// The generations of the body files the entries use, ascending.
    files: Vec<u32>,
}

/// Encodes `stamps` as a stamp section, writing the bodies it adds to `new`. Records of the
/// current base (a section this module made) keep their bodies where they are, unless
/// `rewrite` names their file (then they are copied into `new`, checked on the way); overlay
/// stamps are encoded.
pub fn encode(
    stamps: &StoredStamps<'_>,
    new: &mut NewBodies,
    rewrite: &Rewrite,
) -> Result<Vec<u8>, StoreError> {
    let base: Option<&StampSection> =
        format::own_base(stamps.base.map(|base| base.as_any()), "stamp")?;
    let mut entries: Vec<Entry> =
        Vec::with_capacity(base.map_or(0, |base| base.count) + stamps.overlay.len());
    if let Some(base) = base {
        for index in 0..base.count {
            let Entry { key, body } = base.entry(index);
            let body = if rewrite.copies(body.file) {
                BodyRef::write(new, &body.read(&base.bodies)?)?
            } else {
                body
            };
            entries.push(Entry { key, body });
        }
    }
    for &(session_id, turn_id, record) in &stamps.overlay {
        let body = format::encode(&Body {
            session_id: session_id.into(),
            turn_id: turn_id.into(),
            record: std::borrow::Cow::Borrowed(record),
        })?;
        entries
            .push(Entry { key: stamp_key(session_id, turn_id), body: BodyRef::write(new, &body)? });
    }
    entries.sort_by_key(|entry| entry.key);
    let mut table = Vec::with_capacity(entries.len() * ENTRY_LEN);
    for Entry { key, body } in &entries {
        table.extend_from_slice(&key.to_le_bytes());
        table.extend_from_slice(&body.file.to_le_bytes());
        table.extend_from_slice(&body.offset.to_le_bytes());
        table.extend_from_slice(&body.len.to_le_bytes());
        table.extend_from_slice(&body.crc.to_le_bytes());
    }
    Ok(format::section_bytes(&SECTION_MAGIC, entries.len() as u64, 0, &table))
}

impl StampSection {
    /// Opens the section at `offset` of the snapshot `file` (named `name`, `file_len` bytes),
    /// its bodies in `bodies`: reads its header and table, checks their CRCs, that the keys
    /// are sorted and that every body lies inside a body file. Returns the section and its
    /// length. Reads no stamp.
    pub fn open(
        file: &File,
        name: &str,
        offset: u64,
        file_len: u64,
        bodies: Arc<BodyFiles>,
    ) -> Result<(Self, u64), StoreError> {
        let read = read_section(file, name, offset, file_len, (&SECTION_MAGIC, "stamp"), {
            |count, zero| count.checked_mul(ENTRY_LEN as u64).filter(|_| zero == 0)
        })?;
        let (count, table, table_offset) = (read.count, read.table, read.table_offset);
        let mut section = Self {
            file_name: name.to_owned(),
            count,
            table,
            table_offset,
            bodies,
            files: Vec::new(),
        };
        section.files = section.check_table()?;
        Ok((section, read.len))
    }

    /// The body file generations the entries point into, ascending.
    pub fn body_files(&self) -> &[u32] {
        &self.files
    }

    /// Reads every stamp's body, as a retry of its turn would (CRC, decoding), checks that
    /// the ids it holds give its entry's key, and hands each failure to `problem`. Returns how
    /// many bodies were checked. For verifiers: a store reads a stamp only for a retry.
    pub fn check_bodies(&self, problem: &mut dyn FnMut(StoreError)) -> u64 {
        for index in 0..self.count {
            let Entry { key, body } = self.entry(index);
            let checked = body.read(&self.bodies).and_then(|bytes| {
                let name = bodies_name(body.file);
                let stored: Body<'_> = format::decode(&name, body.offset, &bytes)?;
                if stamp_key(&stored.session_id, &stored.turn_id) == key {
                    Ok(())
                } else {
                    Err(body.corrupt("stamp body names another turn than its entry's key"))
                }
            });
            if let Err(error) = checked {
                problem(error);
            }
        }
        self.count as u64
    }

    /// Checks the keys are sorted and every body lies inside a body file: later reads cannot
    /// go out of bounds. Returns the generations of the body files used.
    fn check_table(&self) -> Result<Vec<u32>, StoreError> {
        let mut spans = self.bodies.spans();
        let mut previous_key = 0u64;
        for index in 0..self.count {
            let Entry { key, body } = self.entry(index);
            if key < previous_key || !spans.holds(body.file, body.offset, body.len) {
                let at = self.table_offset + (index * ENTRY_LEN) as u64;
                return Err(corrupt(&self.file_name, at, "stamp entry out of order or bounds"));
            }
            previous_key = key;
        }
        Ok(spans.used())
    }

    fn entry(&self, index: usize) -> Entry {
        let bytes = &self.table[index * ENTRY_LEN..(index + 1) * ENTRY_LEN];
        Entry {
            key: u64_at(bytes, 0),
            body: BodyRef {
                file: u32_at(bytes, 8),
                offset: u64_at(bytes, 12),
                len: u32_at(bytes, 20),
                crc: u32_at(bytes, 24),
            },
        }
    }

    /// The entries with `key`, as an index range.
    fn with_key(&self, key: u64) -> std::ops::Range<usize> {
        let first = partition_point(self.count, |index| self.entry(index).key < key);
        let end = partition_point(self.count, |index| self.entry(index).key <= key);
        first..end
    }
}

/// The first index in `0..count` for which `before` is false (`before` is true, then false).
fn partition_point(count: usize, before: impl Fn(usize) -> bool) -> usize {
    let (mut low, mut high) = (0, count);
    while low < high {
        let middle = low + (high - low) / 2;
        if before(middle) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    low
}

impl StampBase for StampSection {
    fn contains(&self, session_id: &str, turn_id: &str) -> bool {
        !self.with_key(stamp_key(session_id, turn_id)).is_empty()
    }

    fn find(&self, session_id: &str, turn_id: &str) -> Result<Option<StampRecord>, StoreError> {
        for index in self.with_key(stamp_key(session_id, turn_id)) {
            let body = self.entry(index).body;
            let bytes = body.read(&self.bodies)?;
            let stored: Body<'static> =
                format::decode(&bodies_name(body.file), body.offset, &bytes)?;
            if stored.session_id == session_id && stored.turn_id == turn_id {
                return Ok(Some(stored.record.into_owned()));
            }
        }
        Ok(None)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
