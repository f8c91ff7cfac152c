//! Fuzzes the record decoder: any bytes, read as a log segment or a snapshot, must give
//! records or a typed error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_core::{Mutation, SessionState};
use strata_file::format::{decode, file_header, read_snapshot_record, scan_log, FileKind};

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
    if let Ok(payload) = read_snapshot_record("fuzz", 0, data) {
        let _ = decode::<SessionState>("fuzz", 0, payload);
    }
});
