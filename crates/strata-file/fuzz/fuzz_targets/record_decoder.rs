//! Fuzzes the record decoder: any bytes, read as a log segment or a snapshot, must give
//! records or a typed error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_core::{Mutation, SessionState};
use strata_file::format::{
    FILE_HEADER_LEN, FileKind, decode, file_header, read_snapshot, scan_log,
};

fuzz_target!(|data: &[u8]| {
    // As given (exercises the header checks) and behind a valid log header (the frames).
    let mut framed = file_header(FileKind::Log).to_vec();
    framed.extend_from_slice(data);
    for bytes in [data, framed.as_slice()] {
        if let Ok(scan) = scan_log("fuzz", bytes) {
            assert!(scan.valid_end as usize <= bytes.len());
            for (offset, payload) in scan.records {
                let _ = decode::<Mutation>("fuzz", offset, payload);
            }
        }
    }
    let mut snapshot = file_header(FileKind::Snapshot).to_vec();
    snapshot.extend_from_slice(data);
    if let Ok(payload) = read_snapshot("fuzz", &snapshot) {
        let _ = decode::<SessionState>("fuzz", FILE_HEADER_LEN as u64, payload);
    }
});
