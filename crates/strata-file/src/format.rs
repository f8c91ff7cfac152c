//! The on-disk format: file headers, checksummed record frames, the postcard codec, and the
//! recovery scan that tells a torn tail from corruption (see the crate docs for the spec).

use std::fs::File;
use std::os::unix::fs::FileExt;

use serde::Serialize;
use serde::de::DeserializeOwned;
use strata_core::StoreError;

/// First eight bytes of every file this crate writes.
pub const MAGIC: [u8; 8] = *b"STRATAFS";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 3;
/// The oldest snapshot version this build reads (version 3 added the stamp section).
pub const OLDEST_SNAPSHOT_VERSION: u32 = 3;
/// Size of the file header: magic, format version, file kind.
pub const FILE_HEADER_LEN: usize = 16;
/// Size of a record frame header: payload length, payload CRC, header CRC.
pub const FRAME_HEADER_LEN: usize = 16;

/// What a file holds (the fourth field of the file header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A log segment: a sequence of mutation records.
    Log = 1,
    /// A snapshot: a graph section, a stamp section, then one record holding the rest of the
    /// state image.
    Snapshot = 2,
    /// A body file: node and stamp bodies the snapshot's sections point into.
    Bodies = 3,
}

impl FileKind {
    /// The name used in errors (`record_kind` of the schema-version error).
    pub fn name(self) -> &'static str {
        match self {
            Self::Log => "strata-file log",
            Self::Snapshot => "strata-file snapshot",
            Self::Bodies => "strata-file bodies",
        }
    }
}

/// The 16-byte header of a file of `kind`.
pub fn file_header(kind: FileKind) -> [u8; FILE_HEADER_LEN] {
    let mut header = [0u8; FILE_HEADER_LEN];
    header[..8].copy_from_slice(&MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[12..16].copy_from_slice(&(kind as u32).to_le_bytes());
    header
}

/// The corrupt-data error for `file` at byte `offset`.
pub fn corrupt(file: &str, offset: u64, detail: impl Into<String>) -> StoreError {
    StoreError::CorruptData { location: format!("{file}:{offset}"), detail: detail.into() }
}

/// Checks the header of `bytes` (the start of the file named `file`) is a header of `kind`
/// this build reads. A newer format version, or a snapshot older than
/// [`OLDEST_SNAPSHOT_VERSION`] (version 1 had no graph section, version 2 no stamp section),
/// is [`StoreError::UnsupportedRecordSchemaVersion`]; log segments of versions 1 to 3 are the
/// same.
pub fn check_file_header(file: &str, bytes: &[u8], kind: FileKind) -> Result<(), StoreError> {
    if bytes.len() < FILE_HEADER_LEN {
        return Err(corrupt(file, 0, format!("file header truncated ({} bytes)", bytes.len())));
    }
    if bytes[..8] != MAGIC {
        return Err(corrupt(file, 0, "bad magic: not a strata-file file"));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    let too_old = kind != FileKind::Log && (1..OLDEST_SNAPSHOT_VERSION).contains(&version);
    if version > FORMAT_VERSION || too_old {
        return Err(StoreError::UnsupportedRecordSchemaVersion {
            record_kind: kind.name().to_owned(),
            actual: version,
            expected: FORMAT_VERSION,
        });
    }
    if version == 0 {
        return Err(corrupt(file, 8, "format version 0 does not exist"));
    }
    let found = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
    if found != kind as u32 {
        return Err(corrupt(file, 12, format!("file kind {found}, expected {}", kind as u32)));
    }
    Ok(())
}

/// Encodes `value` with the record codec (postcard).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_stdvec(value).map_err(|error| StoreError::Backend(format!("encode: {error}")))
}

/// Decodes a record payload found in `file` at `offset`.
pub fn decode<T: DeserializeOwned>(
    file: &str,
    offset: u64,
    payload: &[u8],
) -> Result<T, StoreError> {
    postcard::from_bytes(payload).map_err(|error| {
        corrupt(file, offset, format!("checksummed record does not decode: {error}"))
    })
}

/// Appends one frame holding `payload` to `out`.
pub fn push_frame(out: &mut Vec<u8>, payload: &[u8]) {
    let mut header = [0u8; FRAME_HEADER_LEN];
    header[..8].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    header[8..12].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    let header_crc = crc32fast::hash(&header[..12]);
    header[12..16].copy_from_slice(&header_crc.to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(payload);
}

/// Why the bytes at some offset are not a valid frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Fewer bytes than a frame header remain.
    ShortHeader,
    /// The header checksum does not match.
    HeaderChecksum,
    /// The declared payload runs past the end of the file.
    PastEnd {
        /// Declared payload length.
        len: u64,
    },
    /// The payload checksum does not match.
    PayloadChecksum,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ShortHeader => f.write_str("record header truncated"),
            Self::HeaderChecksum => f.write_str("record header checksum mismatch"),
            Self::PastEnd { len } => write!(f, "record of {len} bytes runs past the end of file"),
            Self::PayloadChecksum => f.write_str("record payload checksum mismatch"),
        }
    }
}

/// Reads the frame starting at `offset` of `bytes`: its payload and the offset after it.
pub fn frame_at(bytes: &[u8], offset: usize) -> Result<(&[u8], usize), FrameError> {
    let rest = bytes.get(offset..).unwrap_or_default();
    if rest.len() < FRAME_HEADER_LEN {
        return Err(FrameError::ShortHeader);
    }
    let header = &rest[..FRAME_HEADER_LEN];
    let stored_header_crc = u32::from_le_bytes(header[12..16].try_into().expect("4 bytes"));
    if crc32fast::hash(&header[..12]) != stored_header_crc {
        return Err(FrameError::HeaderChecksum);
    }
    let len = u64::from_le_bytes(header[..8].try_into().expect("8 bytes"));
    let available = (rest.len() - FRAME_HEADER_LEN) as u64;
    if len > available {
        return Err(FrameError::PastEnd { len });
    }
    let payload = &rest[FRAME_HEADER_LEN..FRAME_HEADER_LEN + len as usize];
    let stored_payload_crc = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    if crc32fast::hash(payload) != stored_payload_crc {
        return Err(FrameError::PayloadChecksum);
    }
    Ok((payload, offset + FRAME_HEADER_LEN + len as usize))
}

/// The valid records of a log segment, and where its valid prefix ends.
#[derive(Debug, Default)]
pub struct Scan<'a> {
    /// `(offset, payload)` of each valid record, in order.
    pub records: Vec<(u64, &'a [u8])>,
    /// End of the last valid record; bytes after it are a torn tail or preallocated zeros.
    pub valid_end: u64,
    /// True when every byte after `valid_end` is zero (preallocated, never written): nothing
    /// needs discarding.
    pub zero_tail: bool,
    /// Damage followed by a valid record (corruption, not a torn tail), in file order. Only
    /// [`scan_log_all`] fills it; [`scan_log`] fails at the first.
    pub damage: Vec<Damage>,
}

/// A stretch of a log segment that is not a valid frame, followed by a valid one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Where the invalid bytes start.
    pub offset: u64,
    /// Why the bytes there are not a frame.
    pub error: FrameError,
    /// Where the next valid frame starts.
    pub resumes_at: u64,
}

impl Damage {
    /// The corrupt-data error recovery reports for this damage in `file`.
    pub fn to_error(&self, file: &str) -> StoreError {
        corrupt(
            file,
            self.offset,
            format!("{}, followed by a valid record at offset {}", self.error, self.resumes_at),
        )
    }
}

/// Scans the log segment `bytes` (whole file, header included) named `file`.
///
/// The recovery rule: let `p` be the first offset that is not a valid frame. If any valid frame
/// (both checksums good, payload within the file) starts anywhere after `p`, the damage is in
/// the middle of the file and the scan fails with corrupt data at `file:p`. Otherwise the bytes
/// from `p` to the end are a torn tail (an interrupted, never acknowledged append) and are
/// reported through [`Scan::valid_end`] for the caller to discard. Preallocated zeros after the
/// last record are the common case of such a tail: no valid frame is all zeros (the header
/// checksum of zero bytes is not zero), so the search stops at the last non-zero byte.
pub fn scan_log<'a>(file: &str, bytes: &'a [u8]) -> Result<Scan<'a>, StoreError> {
    let scan = scan_log_all(file, bytes)?;
    match scan.damage.first() {
        Some(damage) => Err(damage.to_error(file)),
        None => Ok(scan),
    }
}

/// [`scan_log`] that goes on past damage: every stretch of damage followed by a valid record
/// is listed in [`Scan::damage`] and the walk resumes at that record, so a verifier sees
/// every damaged place and every valid record. Fails only when the file header is bad.
pub fn scan_log_all<'a>(file: &str, bytes: &'a [u8]) -> Result<Scan<'a>, StoreError> {
    check_file_header(file, bytes, FileKind::Log)?;
    let mut scan = Scan { valid_end: FILE_HEADER_LEN as u64, zero_tail: true, ..Scan::default() };
    let mut offset = FILE_HEADER_LEN;
    while offset < bytes.len() {
        match frame_at(bytes, offset) {
            Ok((payload, next)) => {
                scan.records.push((offset as u64, payload));
                offset = next;
                scan.valid_end = next as u64;
            }
            Err(error) => {
                let Some(last_nonzero) = last_nonzero(&bytes[offset..]) else {
                    break;
                };
                let search = offset + 1..=offset + last_nonzero;
                match search.into_iter().find(|&q| frame_at(bytes, q).is_ok()) {
                    Some(later) => {
                        let (at, resumes_at) = (offset as u64, later as u64);
                        scan.damage.push(Damage { offset: at, error, resumes_at });
                        offset = later;
                    }
                    None => {
                        scan.zero_tail = false;
                        break;
                    }
                }
            }
        }
    }
    Ok(scan)
}

/// The position of the last non-zero byte of `bytes`. A segment's tail is mostly
/// preallocated zeros (up to the compaction threshold and a margin), so this runs over whole
/// 16-byte words before it looks at bytes.
fn last_nonzero(bytes: &[u8]) -> Option<usize> {
    let mut words = bytes.chunks_exact(16);
    let rest = words.remainder();
    if let Some(at) = rest.iter().rposition(|&b| b != 0) {
        return Some(bytes.len() - rest.len() + at);
    }
    let word =
        words.rposition(|word| u128::from_ne_bytes(word.try_into().expect("16 bytes")) != 0)?;
    let at = word * 16;
    Some(at + bytes[at..at + 16].iter().rposition(|&b| b != 0).expect("a non-zero byte"))
}

/// Reads `len` bytes at `offset` of `file` (named `name`); a file ending first is corrupt
/// data at `offset`.
pub fn read_at(file: &File, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, StoreError> {
    let mut buffer = vec![0u8; len];
    file.read_exact_at(&mut buffer, offset).map_err(|error| {
        if error.kind() == std::io::ErrorKind::UnexpectedEof {
            corrupt(name, offset, format!("{len} bytes expected, the file ends first"))
        } else {
            StoreError::io(format!("read {name} at {offset}"), error)
        }
    })?;
    Ok(buffer)
}

/// `base` (the graph or stamp base under a state's overlay) as the section type `T` this crate
/// made; a base of another backend is a `Backend` error naming `what`.
pub(crate) fn own_base<'a, T: 'static>(
    base: Option<&'a dyn std::any::Any>,
    what: &str,
) -> Result<Option<&'a T>, StoreError> {
    base.map(|base| {
        base.downcast_ref::<T>().ok_or_else(|| {
            StoreError::Backend(format!("the {what} base was not made by strata-file"))
        })
    })
    .transpose()
}

/// The little-endian `u16` at `at` of `bytes`.
pub(crate) fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

/// The little-endian `u32` at `at` of `bytes`.
pub(crate) fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// The little-endian `u64` at `at` of `bytes`.
pub(crate) fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Size of the header of a snapshot's sections (graph and stamps): magic (8 bytes), entry
/// count `u64`, a length `u64` the section defines (the graph's ids region; zero for stamps),
/// eight zero bytes, CRC-32 of the table `u32`, CRC-32 of the preceding 36 bytes `u32`.
pub const SECTION_HEADER_LEN: usize = 40;

/// Lays out a section: its header (see [`SECTION_HEADER_LEN`]), then `table`.
pub(crate) fn section_bytes(magic: &[u8; 8], count: u64, length: u64, table: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SECTION_HEADER_LEN + table.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&crc32fast::hash(table).to_le_bytes());
    let header_crc = crc32fast::hash(&out);
    out.extend_from_slice(&header_crc.to_le_bytes());
    out.extend_from_slice(table);
    out
}

/// A section read back by [`read_section`].
pub(crate) struct SectionRead {
    /// Entry count.
    pub(crate) count: usize,
    /// The table, checked against its CRC.
    pub(crate) table: Vec<u8>,
    /// File offset of the table.
    pub(crate) table_offset: u64,
    /// Length of the whole section.
    pub(crate) len: u64,
}

/// Reads the section (`what`: "graph", "stamp") at `offset` of `file` (named `name`,
/// `file_len` bytes long): checks its magic, header CRC and sizes (`table_len` gives the
/// table's length from the count and the length field, `None` when out of range), that it
/// ends within the file, and its table's CRC.
pub(crate) fn read_section(
    file: &File,
    name: &str,
    offset: u64,
    file_len: u64,
    (magic, what): (&[u8; 8], &str),
    table_len: impl FnOnce(u64, u64) -> Option<u64>,
) -> Result<SectionRead, StoreError> {
    let header = read_at(file, name, offset, SECTION_HEADER_LEN)?;
    if header[..8] != magic[..] {
        return Err(corrupt(name, offset, format!("bad {what} section magic")));
    }
    if crc32fast::hash(&header[..36]) != u32_at(&header, 36) {
        return Err(corrupt(name, offset, format!("{what} section header checksum mismatch")));
    }
    let (count, length) = (u64_at(&header, 8), u64_at(&header, 16));
    let table_offset = offset + SECTION_HEADER_LEN as u64;
    let table_len = usize::try_from(count)
        .ok()
        .filter(|&count| count <= u32::MAX as usize)
        .and(table_len(count, length))
        .and_then(|table_len| usize::try_from(table_len).ok())
        .ok_or_else(|| corrupt(name, offset, format!("{what} section sizes out of range")))?;
    let end = table_offset
        .checked_add(table_len as u64)
        .filter(|&end| end <= file_len)
        .ok_or_else(|| corrupt(name, offset, format!("{what} section runs past the end")))?;
    let table = read_at(file, name, table_offset, table_len)?;
    if crc32fast::hash(&table) != u32_at(&header, 32) {
        return Err(corrupt(name, table_offset, format!("{what} table checksum mismatch")));
    }
    Ok(SectionRead { count: count as usize, table, table_offset, len: end - offset })
}

/// Reads the record that closes a snapshot file: `bytes` are the file from `offset`, where
/// the record starts, to its end. A snapshot is written whole and renamed into place, so any
/// damage is corruption, never a torn tail.
pub fn read_snapshot_record<'a>(
    file: &str,
    offset: u64,
    bytes: &'a [u8],
) -> Result<&'a [u8], StoreError> {
    let (payload, end) =
        frame_at(bytes, 0).map_err(|error| corrupt(file, offset, error.to_string()))?;
    if end != bytes.len() {
        let at = offset + end as u64;
        return Err(corrupt(file, at, "trailing bytes after the snapshot record"));
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_nonzero_byte_is_found_in_words_and_in_the_remainder() {
        assert_eq!(last_nonzero(&[]), None);
        assert_eq!(last_nonzero(&[0; 100]), None);
        for len in [1, 15, 16, 17, 33, 100] {
            for at in 0..len {
                let mut bytes = vec![0u8; len];
                bytes[at] = 9;
                assert_eq!(last_nonzero(&bytes), Some(at), "len {len}, byte {at}");
                bytes[0] = 1;
                assert_eq!(last_nonzero(&bytes), Some(at), "len {len}, byte {at} and 0");
            }
        }
    }

    fn log_with(payloads: &[&[u8]]) -> (Vec<u8>, Vec<usize>) {
        let mut bytes = file_header(FileKind::Log).to_vec();
        let mut boundaries = vec![bytes.len()];
        for payload in payloads {
            push_frame(&mut bytes, payload);
            boundaries.push(bytes.len());
        }
        (bytes, boundaries)
    }

    #[test]
    fn frames_round_trip() {
        let (bytes, _) = log_with(&[b"one", b"", b"three"]);
        let scan = scan_log("log", &bytes).unwrap();
        let payloads: Vec<&[u8]> = scan.records.iter().map(|(_, p)| *p).collect();
        assert_eq!(payloads, vec![&b"one"[..], b"", b"three"]);
        assert_eq!(scan.valid_end, bytes.len() as u64);
    }

    #[test]
    fn every_truncation_is_a_torn_tail_keeping_a_prefix() {
        let (bytes, boundaries) = log_with(&[b"alpha", b"beta", b"gamma"]);
        for cut in FILE_HEADER_LEN..bytes.len() {
            let scan = scan_log("log", &bytes[..cut]).unwrap();
            let whole = boundaries.iter().filter(|&&b| b <= cut).count() - 1;
            assert_eq!(scan.records.len(), whole, "cut at {cut}");
            assert_eq!(scan.valid_end as usize, boundaries[whole]);
        }
    }

    #[test]
    fn a_flip_in_the_middle_is_corruption_naming_the_offset() {
        let (mut bytes, boundaries) = log_with(&[b"alpha", b"beta", b"gamma"]);
        bytes[boundaries[1] + 3] ^= 0x40;
        let error = scan_log("log.0", &bytes).unwrap_err();
        let detail = format!(
            "record header checksum mismatch, followed by a valid record at offset {}",
            boundaries[2]
        );
        assert_eq!(error, corrupt("log.0", boundaries[1] as u64, detail));
    }

    #[test]
    fn the_full_scan_lists_every_damaged_place_and_every_valid_record() {
        let (mut bytes, boundaries) = log_with(&[b"alpha", b"beta", b"gamma", b"delta", b"omega"]);
        bytes[boundaries[1] + 3] ^= 0x40;
        bytes[boundaries[3] + FRAME_HEADER_LEN] ^= 0x01;
        let scan = scan_log_all("log.0", &bytes).unwrap();
        let payloads: Vec<&[u8]> = scan.records.iter().map(|(_, payload)| *payload).collect();
        assert_eq!(payloads, [&b"alpha"[..], b"gamma", b"omega"]);
        let places: Vec<(u64, u64)> =
            scan.damage.iter().map(|damage| (damage.offset, damage.resumes_at)).collect();
        let at = |index: usize| boundaries[index] as u64;
        assert_eq!(places, [(at(1), at(2)), (at(3), at(4))]);
        assert_eq!(scan.damage[1].error, FrameError::PayloadChecksum);
        // Recovery stops at the first, with the same error the full scan describes.
        assert_eq!(scan_log("log.0", &bytes).unwrap_err(), scan.damage[0].to_error("log.0"));
        assert!(scan.zero_tail);
    }

    #[test]
    fn a_flip_in_the_last_record_is_a_torn_tail() {
        let (mut bytes, boundaries) = log_with(&[b"alpha", b"beta"]);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let scan = scan_log("log", &bytes).unwrap();
        assert_eq!(scan.records.len(), 1);
        assert_eq!(scan.valid_end as usize, boundaries[1]);
    }

    #[test]
    fn a_newer_format_version_is_the_schema_error() {
        let mut bytes = file_header(FileKind::Log).to_vec();
        bytes[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        assert!(matches!(
            scan_log("log", &bytes),
            Err(StoreError::UnsupportedRecordSchemaVersion { actual: 4, expected: 3, .. })
        ));
    }

    #[test]
    fn bad_magic_and_kind_are_corruption() {
        let mut bytes = file_header(FileKind::Snapshot).to_vec();
        assert!(matches!(scan_log("log", &bytes), Err(StoreError::CorruptData { .. })));
        bytes[0] = b'X';
        assert!(matches!(
            check_file_header("snap", &bytes, FileKind::Snapshot),
            Err(StoreError::CorruptData { .. })
        ));
        let mut record = Vec::new();
        push_frame(&mut record, b"state");
        assert_eq!(read_snapshot_record("snap", 9, &record).unwrap(), b"state");
        record.push(0);
        let error = read_snapshot_record("snap", 9, &record).unwrap_err();
        assert_eq!(error, corrupt("snap", 9 + 21, "trailing bytes after the snapshot record"));
    }
}
