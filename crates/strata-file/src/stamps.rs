//! The snapshot's stamp section: every turn stamp stored for random access, so that opening a
//! store reads a small sorted index and no stamp, and only a retry of a stamped turn reads its
//! record (see the crate docs for the byte layout).
//!
//! [`StampSection`] is the `strata_core::state::StampBase` of the file backend. It holds the
//! section's table (24 bytes per stamp: key, body offset, length, CRC) in one buffer, checked
//! once against its CRC, and reads a stamp's body from the snapshot file on demand with one
//! positioned read, checked against its own CRC.

use std::fs::File;

use serde::{Deserialize, Serialize};
use strata_core::state::{StampBase, StampRecord, StoredStamps};
use strata_core::{Bytes, StoreError};

use crate::format::{self, corrupt, read_at};

/// First eight bytes of a stamp section.
pub const SECTION_MAGIC: [u8; 8] = *b"STRATAST";
/// Size of the section header: magic, entry count, bodies length, eight zero bytes, table
/// CRC, header CRC.
pub const SECTION_HEADER_LEN: usize = 40;
/// Size of one entry of the table.
pub const ENTRY_LEN: usize = 24;

/// One stamp body: its key fields and its record (postcard-encoded in the bodies region).
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

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// One entry of the table, decoded.
#[derive(Clone, Copy, Debug)]
struct Entry {
    key: u64,
    body_offset: u64,
    body_len: u32,
    body_crc: u32,
}

/// A stamp section opened from a snapshot file (see the module docs).
#[derive(Debug)]
pub struct StampSection {
    /// The snapshot file name, for error locations.
    file_name: String,
    file: File,
    count: usize,
    /// The entries, sorted by key.
    table: Bytes,
    table_offset: u64,
    bodies_offset: u64,
    bodies_len: u64,
}

/// Encodes `stamps` as a stamp section. Records of the current base (a section this module
/// made) are copied as they are, body and checksum included; overlay stamps are encoded.
pub fn encode(stamps: &StoredStamps<'_>) -> Result<Vec<u8>, StoreError> {
    let foreign = || StoreError::Backend("the stamp base was not made by strata-file".into());
    let base = match stamps.base {
        Some(base) => Some(base.as_any().downcast_ref::<StampSection>().ok_or_else(foreign)?),
        None => None,
    };
    // (key, body, crc) of every stamp.
    let mut parts: Vec<(u64, Bytes, u32)> =
        Vec::with_capacity(base.map_or(0, |base| base.count) + stamps.overlay.len());
    if let Some(base) = base {
        let bodies = Bytes::from(read_at(&base.file, &base.file_name, base.bodies_offset, {
            usize::try_from(base.bodies_len)
                .map_err(|_| StoreError::Backend("stamp section too large".into()))?
        })?);
        for index in 0..base.count {
            let entry = base.entry(index);
            let start = entry.body_offset as usize;
            let body = bodies.slice(start..start + entry.body_len as usize);
            parts.push((entry.key, body, entry.body_crc));
        }
    }
    for &(session_id, turn_id, record) in &stamps.overlay {
        let body = format::encode(&Body {
            session_id: session_id.into(),
            turn_id: turn_id.into(),
            record: std::borrow::Cow::Borrowed(record),
        })?;
        let crc = crc32fast::hash(&body);
        parts.push((stamp_key(session_id, turn_id), Bytes::from(body), crc));
    }
    parts.sort_by_key(|(key, _, _)| *key);
    let too_large = || StoreError::InvalidInput("stamp too large for one snapshot".into());
    let mut table = Vec::with_capacity(parts.len() * ENTRY_LEN);
    let mut bodies_len = 0u64;
    for (key, body, crc) in &parts {
        table.extend_from_slice(&key.to_le_bytes());
        table.extend_from_slice(&bodies_len.to_le_bytes());
        table.extend_from_slice(&u32::try_from(body.len()).map_err(|_| too_large())?.to_le_bytes());
        table.extend_from_slice(&crc.to_le_bytes());
        bodies_len += body.len() as u64;
    }
    let mut out = Vec::with_capacity(SECTION_HEADER_LEN + table.len() + bodies_len as usize);
    out.extend_from_slice(&SECTION_MAGIC);
    out.extend_from_slice(&(parts.len() as u64).to_le_bytes());
    out.extend_from_slice(&bodies_len.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&crc32fast::hash(&table).to_le_bytes());
    let header_crc = crc32fast::hash(&out);
    out.extend_from_slice(&header_crc.to_le_bytes());
    out.extend_from_slice(&table);
    parts.iter().for_each(|(_, body, _)| out.extend_from_slice(body));
    Ok(out)
}

impl StampSection {
    /// Opens the section at `offset` of the snapshot `file` (named `name`, `file_len` bytes):
    /// reads its header and table, checks their CRCs, that the keys are sorted and that every
    /// entry points inside the section. Returns the section and its length. Reads no stamp.
    pub fn open(
        file: &File,
        name: &str,
        offset: u64,
        file_len: u64,
    ) -> Result<(Self, u64), StoreError> {
        let header = read_at(file, name, offset, SECTION_HEADER_LEN)?;
        if header[..8] != SECTION_MAGIC {
            return Err(corrupt(name, offset, "bad stamp section magic"));
        }
        if crc32fast::hash(&header[..36]) != u32_at(&header, 36) {
            return Err(corrupt(name, offset, "stamp section header checksum mismatch"));
        }
        let count = u64_at(&header, 8);
        let bodies_len = u64_at(&header, 16);
        let table_offset = offset + SECTION_HEADER_LEN as u64;
        let out_of_range = || corrupt(name, offset, "stamp section runs past the end of the file");
        let table_len = count.checked_mul(ENTRY_LEN as u64).ok_or_else(out_of_range)?;
        let end = table_offset
            .checked_add(table_len)
            .and_then(|end| end.checked_add(bodies_len))
            .filter(|&end| end <= file_len)
            .ok_or_else(out_of_range)?;
        let table = read_at(file, name, table_offset, table_len as usize)?;
        if crc32fast::hash(&table) != u32_at(&header, 32) {
            return Err(corrupt(name, table_offset, "stamp table checksum mismatch"));
        }
        let handle =
            file.try_clone().map_err(|error| StoreError::io(format!("dup {name}"), error))?;
        let section = Self {
            file_name: name.to_owned(),
            file: handle,
            count: count as usize,
            table: Bytes::from(table),
            table_offset,
            bodies_offset: table_offset + table_len,
            bodies_len,
        };
        section.check_table()?;
        Ok((section, end - offset))
    }

    /// Checks the keys are sorted and the bodies follow one another in entry order and fill
    /// the bodies region: later reads cannot go out of bounds.
    fn check_table(&self) -> Result<(), StoreError> {
        let mut body_end = 0u64;
        let mut previous_key = 0u64;
        for index in 0..self.count {
            let entry = self.entry(index);
            if entry.body_offset != body_end || entry.key < previous_key {
                let at = self.table_offset + (index * ENTRY_LEN) as u64;
                return Err(corrupt(&self.file_name, at, "stamp entry out of order or bounds"));
            }
            body_end += u64::from(entry.body_len);
            previous_key = entry.key;
        }
        if body_end != self.bodies_len {
            return Err(corrupt(
                &self.file_name,
                self.table_offset,
                "stamp bodies length mismatch",
            ));
        }
        Ok(())
    }

    fn entry(&self, index: usize) -> Entry {
        let bytes = &self.table[index * ENTRY_LEN..(index + 1) * ENTRY_LEN];
        Entry {
            key: u64_at(bytes, 0),
            body_offset: u64_at(bytes, 8),
            body_len: u32_at(bytes, 16),
            body_crc: u32_at(bytes, 20),
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
    fn len(&self) -> usize {
        self.count
    }

    fn contains(&self, session_id: &str, turn_id: &str) -> bool {
        !self.with_key(stamp_key(session_id, turn_id)).is_empty()
    }

    fn find(&self, session_id: &str, turn_id: &str) -> Result<Option<StampRecord>, StoreError> {
        for index in self.with_key(stamp_key(session_id, turn_id)) {
            let entry = self.entry(index);
            let at = self.bodies_offset + entry.body_offset;
            let body = read_at(&self.file, &self.file_name, at, entry.body_len as usize)?;
            if crc32fast::hash(&body) != entry.body_crc {
                return Err(corrupt(&self.file_name, at, "stamp body checksum mismatch"));
            }
            let stored: Body<'static> = format::decode(&self.file_name, at, &body)?;
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
