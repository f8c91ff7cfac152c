//! Strata's durable file backend: the crash-safe embedded default. One directory per session,
//! no server, no setup.
//!
//! ```no_run
//! # async fn demo() -> Result<(), strata_core::StoreError> {
//! use strata_core::{SessionStoreFactory, SessionStoreRequest};
//! use strata_file::{FileStoreFactory, FileStoreOptions};
//!
//! let factory = FileStoreFactory::open("./sessions", FileStoreOptions::default())?;
//! let store = factory.create_store(SessionStoreRequest::new("session-1")).await?;
//! # Ok(()) }
//! ```
//!
//! # What it is
//!
//! A [`FileStore`] keeps the session's state as a [`strata_core::SessionState`] (the single
//! implementation of the contract's semantics) and makes it durable with a write-ahead log of
//! the state model's resolved [`Mutation`](strata_core::Mutation)s plus periodic snapshots.
//! Everything but the graph and the turn stamps is held in memory. The stamps are the last
//! snapshot's **stamp section** (a sorted index in memory, records read on demand by a retry)
//! under an in-memory overlay of the stamps recorded since. The graph is the last snapshot's **graph
//! section** (a [`graph::GraphSection`], the state model's `GraphBase`: its id index in memory,
//! node bodies left in the file and read on demand) under an in-memory overlay of the changes
//! logged since. A write is: plan under the image lock (every check of the contract runs here;
//! a failed check writes nothing) → encode the mutation as one checksummed record → queue it
//! for the log writer → apply it to the image → release the lock → await the log writer's
//! acknowledgement that the record is durable → reply. Reads are served from the image
//! (`load_node` is an index lookup plus, for a snapshot node, one positioned read of its
//! body; an `ActivePath` read follows parent ids: O(path), never O(graph)), and return only
//! once every write they observed is acknowledged.
//!
//! # Calls, threads and cancellation
//!
//! Every call does its work when its future is polled, never when the call creates it, and
//! no call blocks an async worker on the disk, so timeouts, cancellation and concurrency
//! limits can act on it and a current-thread runtime keeps running other tasks:
//!
//! - Planning and applying (CPU work on the in-memory image, under a short lock) run in the
//!   caller's task when it is first polled.
//! - File writes and `fdatasync`s run on the store's **log writer**, one thread per open
//!   store, which the caller's future awaits (see "Durability").
//! - Reads of node bodies from the snapshot's body files run in the caller's task when the
//!   page cache holds them (`preadv2` with `RWF_NOWAIT`, which never waits for the disk: see
//!   [`bodies::from_page_cache`]) and on tokio's blocking pool (`spawn_blocking`) when a body
//!   must come from the disk; every factory operation (open, create, delete, list) runs on the
//!   blocking pool too. Outside a tokio runtime they run inline. [`FileStore::open`] and [`FileStore::compact`] are plain
//!   blocking functions for tools and tests: call them off the async workers.
//!
//! Cancellation (dropping a call's future), per method class:
//!
//! - **Reads** (`load_session`, `load_node`, `load_session_meta`, `list_*`): a dropped read
//!   has no effect at all; a read already handed to the blocking pool finishes there and its
//!   answer is discarded.
//! - **Writes** (`commit_runtime_state`, `save_session_meta`, `tombstone_nodes`, the queue
//!   and manifest writes, `vacuum`, `gc_unreachable`): dropped before its first poll, a write
//!   did nothing. Once polled, it is planned, applied and queued in that first poll, so a
//!   dropped write **may still apply**: the log writer makes it durable as if its caller had
//!   waited. This is the contract's ambiguous outcome (the same as a lost reply): the caller
//!   cannot tell whether it applied. The store stays consistent either way (a write applies
//!   whole or not at all, and reads never return a write before it is durable), and keyed
//!   writes stay safe to retry: a stamped commit's retry is answered from its stamp, a keyed
//!   enqueue's retry returns the batch it made; idempotent writes may simply be repeated.
//!   Unkeyed writes (an unstamped commit, an unkeyed enqueue, claims, renew, cancel) must not
//!   be blindly retried after a drop or a timeout. A dropped `vacuum` or `gc_unreachable`
//!   may also leave its compaction to finish in the background.
//! - Dropping the last handle of a store waits for the log writer to finish what is queued
//!   (normally nothing) and releases the lock.
//!
//! [`FileStoreOptions::with_write_delay`] holds every write on the log writer, between its
//! `pwrite` and its `fdatasync`, for drills and tests of timeouts and cancellation.
//!
//! # On-disk layout
//!
//! ```text
//! <root>/                 FileStoreFactory root
//!   <session id>/         one store (what FileStore::open takes)
//!     LOCK                held with an exclusive lock by the owning process; never read
//!     snapshot            file header + graph section + stamp section + one frame:
//!                         postcard((first_log_gen: u64, SessionState without graph, stamps))
//!     bodies.<G>          file header + node and stamp bodies the snapshot's tables point
//!                         into (written by the compaction of generation G, never changed)
//!     log.<N>             file header + frames: postcard(Mutation) each, then zeros
//!     *.tmp               an interrupted atomic write (never part of the store); removed at open
//! ```
//!
//! # Record format (version 3)
//!
//! All integers little-endian.
//!
//! - **File header** (16 bytes): magic `STRATAFS`, format version `u32` (= 3), file kind `u32`
//!   (1 = log segment, 2 = snapshot, 3 = body file).
//! - **Frame**: payload length `u64`, CRC-32 (IEEE, `crc32fast`) of the payload `u32`, CRC-32
//!   of the preceding 12 header bytes `u32`, then the payload. The header has its own checksum
//!   so that a damaged length can never send the reader off to a wrong offset unnoticed.
//! - **Payloads** are [postcard](https://docs.rs/postcard) encodings of
//!   `strata_core::state::Mutation` (log) and `(first_log_gen, SessionState)` (the snapshot's
//!   closing record; `SessionState`'s serde form leaves the graph and the turn stamps out).
//! - **Body reference** (in the tables below, 20 bytes): body file generation `u32`, offset in
//!   that file `u64`, length `u32`, CRC-32 of the body `u32`.
//! - **Graph section** (a snapshot, right after its file header), built for random access:
//!   - header (40 bytes): magic `STRATAGR`, entry count `u64`, ids length `u64`, eight zero
//!     bytes, CRC-32 of the table `u32`, CRC-32 of the preceding 36 header bytes `u32`;
//!   - the **table**: the entries (36 bytes each, one per stored node, live or tombstoned, in
//!     insertion order: the body reference, id offset in the ids region `u32`, id length
//!     `u16`, flags `u16` (bit 0 = tombstoned, bit 1 = has a parent), parent id offset in the
//!     ids region `u32`, parent id length `u16`, two zero bytes), then the **order** (entry
//!     numbers `u32`, sorted by node id bytes: lookups are a binary search), then the **ids**
//!     region (every node's id, then the parent ids that name no node of the section; a
//!     parent id naming one points at that node's id). A body is postcard(`SessionNodeRecord`).
//!
//!   An active path is walked over the table alone (ids, parent ids, flags: no body read),
//!   then its nodes are read in one batch: one positioned read covering their bodies when they
//!   lie close together in one file (a chain appended in order does), else one read per body.
//!
//!   Checksums, chosen so that open costs O(table), not O(data): open reads the header and
//!   the table (about 40 bytes plus the id per node: 5 MB for 100k nodes against 75 MB of
//!   bodies), checks both CRCs and that every entry's ids lie in the table and its body in a
//!   body file, and reads no body. A body is checked against its entry's CRC when a read
//!   returns it; damage there is reported by that read as corrupt data at the body's place
//!   (`bodies.<generation>:<offset>`), never skipped. Nothing is `mmap`ed (no `unsafe`): the
//!   table is one buffer, bodies are read with `pread`.
//!
//! - **Stamp section** (a snapshot, right after the graph section): every turn stamp, built
//!   for lookup by (session id, turn id) without holding stamps in memory:
//!   - header (40 bytes): magic `STRATAST`, entry count `u64`, sixteen zero bytes, CRC-32 of
//!     the table `u32`, CRC-32 of the preceding 36 header bytes `u32`;
//!   - the **table**: one entry per stamp (28 bytes: key `u64`, then the body reference),
//!     sorted by key; the key is the first eight bytes, little-endian, of BLAKE3 over the
//!     session id, a zero byte and the turn id ([`stamps::stamp_key`]). A body is
//!     postcard((session id, turn id, `StampRecord`)).
//!
//!   Open reads the header and the table (checked by their CRCs, keys sorted, bodies inside
//!   body files) and no body: 28 bytes per stamp stay in memory, so open time and memory do
//!   not grow with the session's number of turns beyond that. A commit looks its stamp up in
//!   the in-memory overlay (stamps recorded since the snapshot), then by binary search in the
//!   table: a new turn (no entry with its key) reads nothing; a retry of an older turn reads
//!   its body with one positioned read (planned on the blocking pool), checks its CRC and its ids
//!   (equal keys are told apart by them). Damage in a body is reported by that retry as
//!   corrupt data at the body's place, never skipped.
//!
//! - **Body file** `bodies.<generation>`: the file header, then bodies back to back, written
//!   whole by the compaction that made the snapshot of that generation (temporary file,
//!   fsync, rename, directory fsync, all before the snapshot naming it is renamed into place)
//!   and never changed. A size-triggered compaction writes only the bodies added since the
//!   previous snapshot (older entries keep naming older files), so its cost follows what was
//!   written, not the session's size; a full one (asked for: `vacuum`, `gc_unreachable`,
//!   [`FileStore::compact`]; or once the snapshot would use [`bodies::MAX_BODY_FILES`]
//!   files) copies every body into its one file. Files no snapshot uses any more (and
//!   leftovers of an interrupted compaction) are deleted after the rename, and at open.
//!
//! **Versioning.** The format version covers the framing *and* the serde shape of the state
//! model's types (postcard is not self-describing: adding a field to a core state type changes
//! the encoding and must bump [`format::FORMAT_VERSION`]). A file with a newer version fails
//! to open with [`StoreError::UnsupportedRecordSchemaVersion`](strata_core::StoreError) naming
//! the file kind (`strata-file log` / `snapshot` / `bodies`), the version found and the
//! version this build reads; nothing is modified. Versions 2 (the graph section) and 3 (the
//! stamp section and body files) changed only the snapshot: log segments of versions 1 and 2
//! are read as they are; a snapshot of version 1 or 2 is refused with that error (open it
//! with the build that wrote it and let it compact, or replay its history into a new store).
//!
//! # Durability and sync policies
//!
//! - [`SyncPolicy::Always`] (default, tier `Durable`): a write returns only after its record
//!   is `fdatasync`ed, and every file or directory entry created or renamed on its way (the
//!   session directory, a new log segment, a snapshot) is `fsync`ed together with its parent
//!   directory. **Group commit**: the log writer takes every record queued since its last
//!   pass, writes them in order, and makes them all durable with one `fdatasync`; each call
//!   still returns only after its own record is durable.
//! - [`SyncPolicy::OsBuffered`] (tier `Inline`, reported honestly): no fsyncs; a write returns
//!   once the log writer has written its record, so writes survive a process crash (they are
//!   in the kernel's page cache) but not a power loss.
//! - The log is **preallocated** with zeros and records are written over those zeros
//!   (`pwrite`), so a commit's `fdatasync` flushes data without a journal commit for a
//!   changed file size each time. This is why a commit is faster than a raw
//!   append + `fdatasync` loop. A store's first segment grows 1 MiB at a time; every later
//!   one is a **spare**: once the live segment is half way to the compaction threshold, a
//!   thread of its own creates the next segment, preallocated to the threshold plus 1 MiB
//!   (temp file, fsync, rename, fsync directory), so the rotation that starts the next
//!   compaction only opens it and the live segment never grows on the log writer's path
//!   (both used to stall the commits queued behind them for a few milliseconds).
//! - A failed log write or `fdatasync` makes the store refuse every later call (the image
//!   already holds the record, and after a failed `fdatasync` the kernel may have dropped the
//!   dirty pages, so the image can no longer be trusted); reopen it.
//!
//! # Recovery: torn tail versus corruption
//!
//! Open loads the snapshot (if any), then replays the log segments `log.<first_log_gen>`,
//! `log.<first_log_gen + 1>`, … in order. In a segment, let `p` be the first offset that is not
//! a valid frame (header incomplete, a checksum mismatch, or a length running past the end).
//!
//! - If every byte from `p` on is zero, it is unused preallocated space: nothing to do.
//! - Else, if a valid frame (both checksums good) starts anywhere after `p`, the damage is in
//!   the middle of acknowledged data: [`StoreError::CorruptData`](strata_core::StoreError)
//!   with `location = "<file>:<p>"`. Nothing is skipped, nothing is repaired.
//! - Else the bytes from `p` on are a **torn tail** (an append interrupted by a crash, never
//!   acknowledged) and are cut off before the store accepts writes again. Only the live
//!   segment (the last one holding records) may have one; a sealed segment with a torn tail
//!   is corruption. Empty segments after the live one are spares: the first is kept for the
//!   next rotation (after an `fsync` of the directory, since a crash may have left its rename
//!   unsynced), others are removed.
//!
//! A single damaged byte in the *last* record is indistinguishable from a torn append, so that
//! record is discarded (the store opens at the previous acknowledged state); anywhere else,
//! damage is reported. A snapshot is written whole and renamed into place, so any damage in it
//! is corruption. A checksummed record that does not decode is corruption too. Decoding never
//! panics (fuzzed, see below).
//!
//! # Bounded cost: snapshots and background compaction
//!
//! Once the live log segment exceeds [`FileStoreOptions::compact_min_log_bytes`] (2 MiB), the
//! log writer starts a compaction, which runs **off every caller's path**: no write waits for
//! a snapshot to be encoded or written, and replay at open is bounded by about that threshold
//! plus what was written while one compaction ran, whatever the session's size. Compaction,
//! crash-safe at every step:
//! 1. (log writer) every record written so far is already `fdatasync`ed (it syncs before it
//!    looks at the threshold): `log.N` is sealed;
//! 2. (log writer) switch to the spare `log.N+1` (created the same crash-safe way ahead of
//!    time; created here only when no spare is ready) and append there from now on; then
//!    start the compaction thread and go on serving writes;
//! 3. (compaction thread) rebuild the image of the sealed segments from the files, exactly as
//!    an open does (the snapshot, then `log.…` up to `log.N`; the live image is not touched
//!    and no lock is taken), write the bodies it adds to `bodies.N+1` (see "Body file"),
//!    encode it (new graph and stamp tables, older entries copied as they are; then the rest
//!    of the state) and write the snapshot (temp, fsync, rename, fsync directory) naming
//!    `N+1` as its first segment;
//! 4. (compaction thread) delete segments older than `N+1` and body files the new snapshot
//!    does not use, and reopen the image on the new snapshot (its tables only);
//! 5. (log writer) install: replay onto that image the records written to `log.N+1` since
//!    step 2 (most of them outside the image lock, the last few under it) and make it the
//!    live image. The in-memory overlay of the changes since the previous snapshot is dropped
//!    with the old image, so memory stays bounded too.
//!
//! A crash before the rename of step 3 leaves the old snapshot, which replays `log.N` and
//! `log.N+1`; after it, the new one, which replays `log.N+1` (stale segments are removed at
//! open). A failed compaction leaves the live image as it is (it is still right) and the
//! next write past the threshold tries again. One compaction runs at a time. `vacuum` and
//! `gc_unreachable` remove data from the image and then ask for a compaction and wait for
//! its snapshot, so the space of removed nodes and blobs is reclaimed on disk when they
//! return; [`FileStore::compact`] does the same on demand.
//!
//! # Limits and input safety
//!
//! - Session, node and attachment ids that a write persists are rejected with
//!   `InvalidInput` when empty, over [`ids::MAX_ID_BYTES`] (255), `.` or `..`, or when they
//!   hold `/`, `\` or NUL ([`ids::validate_id`]). Only the session id names a directory.
//! - One write (one encoded record) is at most [`FileStoreOptions::max_record_bytes`]
//!   (64 MiB by default); a larger one is `InvalidInput` with the limit in the message, and
//!   nothing is written.
//!
//! # Locking and sharing
//!
//! Opening a store takes an exclusive `flock` on its `LOCK` file (`File::try_lock`); a second
//! *process* gets [`StoreError::Locked`](strata_core::StoreError) at once. Within a process,
//! every open of one directory (by canonical path), from any [`FileStore::open`] call or any
//! [`FileStoreFactory`] (two factories on one root included), returns a handle over the same
//! shared engine, registered process-wide; the first opener's options apply. The lock is
//! released when the last handle is dropped. `delete_session` refuses (`Locked`) when another
//! process holds the session, and makes this process's remaining handles of it fail.
//! One caveat of `flock`: a child process forked while a store is open shares the lock's
//! open file description until its `exec`, so a store closed during that instant stays locked
//! for that instant (another opener may see a spurious `Locked` and can simply retry).
//!
//! # Inspecting a store
//!
//! [`inspect`] views a store directory read-only, also while another process holds it:
//! [`inspect::StoreView`] rebuilds the image with the same recovery an open runs (without
//! the lock, and without cutting a torn tail or removing anything), and [`inspect::verify`]
//! checks every record's checksum and every reference, naming each problem's file and offset
//! (`strata inspect` and `strata verify` are built on them).
//!
//! # Dependencies
//!
//! `strata-core` (contract and state model), `blake3` (the stamp section's lookup keys; also
//! what core hashes with), `postcard` (record codec: serde-based, so the
//! state model's types need nothing extra; compact varint encoding; and, what matters most for
//! an on-disk format, a wire format that postcard 1.x specifies and keeps stable. A
//! self-describing format such as JSON would be several times larger and slower to decode;
//! `bincode` is comparable in speed but its 1.x and 2.x lines differ in API and encoding),
//! `crc32fast` (hardware-accelerated CRC-32 for checksums), `serde`, `async-trait`, `tokio`
//! (the blocking pool for reads of uncached snapshot bodies and factory operations, and the `watch`
//! and `oneshot` channels the callers' futures await the log writer with).
//!
//! # Fuzzing
//!
//! The record decoder has a `cargo fuzz` target outside the workspace build
//! (`crates/strata-file/fuzz`, its own `[workspace]`): any bytes read as a log segment or a
//! snapshot must yield records or a typed error, never a panic. To run it (nightly only for
//! this):
//!
//! ```text
//! cargo install cargo-fuzz
//! cd crates/strata-file/fuzz
//! cargo +nightly fuzz run record_decoder -- -max_total_time=60
//! ```
//!
//! # Performance
//!
//! Measured with `cargo bench --bench file_backend` (from the workspace root; criterion; see
//! the bench's docs for the workloads) in one run on the development VM (2 vCPUs, ext4 on a
//! virtio disk, machine otherwise idle; commit figures still vary by ±30 % between runs with
//! the host's disk load), 256-byte node payloads, default options (`SyncPolicy::Always`):
//!
//! | measurement | result | goal |
//! |---|---|---|
//! | durable sequential commit (one node + head) | 154 µs (6.5k commits/s) | |
//! | raw `write` + `fdatasync` append loop, same record size | 163 µs (6.1k/s) | store ≥ 0.8× raw: **1.06×** |
//! | raw overwrite of a zero-filled, synced file + `fdatasync` | 105 µs (9.5k/s) | (limit without file growth: store at 0.68×) |
//! | SQLite, WAL, `synchronous=FULL`, same commit | 178 µs (5.6k/s) | store ≥ SQLite: **1.16× faster** |
//! | 8 sessions committing at once | 15.0k commits/s aggregate | **2.09×** one session (7.2k/s) |
//! | commit p50, 20k-node vs 1k-node session | 116 µs vs 116 µs | ≤ 1.2×: **1.00×** |
//! | reopen, 1k / 100k nodes | 0.05 ms / 0.45 ms | |
//! | `ActivePath` (1k nodes), 1k- / 100k-node session | 311 µs / 347 µs | O(path): **1.12×** |
//! | 20k nodes: `FullGraph` / `ActivePath` (1k) / `load_node` | 5.6 ms / 337 µs / 1.1 µs | ms / ms / µs: **met** |
//! | open + `ActivePath` (1k) of a 100k-node session | 0.93 ms | ≤ 10 ms: **met** |
//!
//! **Calls as futures** (the log writer thread; snapshot-body reads and factory calls on
//! the blocking pool). One run of `cargo bench --bench file_backend -- --baseline before`
//! (the baseline saved from the code that did its work in `serve` with `block_in_place`), on
//! a disk contended by other builds (raw `fdatasync` loops at 3–5 ms, so the before/after
//! change of commit times is noise; ratios within the run are what counts):
//!
//! | measurement | after | goal |
//! |---|---|---|
//! | durable sequential commit vs raw append + `fdatasync` | 3.6 ms vs 5.0 ms: **1.39×** | ≥ 0.8×: met |
//! | … vs raw preallocated overwrite + `fdatasync` | 3.6 ms vs 3.1 ms: 0.87× | (reported) |
//! | `load_node`, node in the snapshot file (20k nodes) | 23 µs (before: 1.6 µs) | single-digit µs: **not met** |
//! | `ActivePath` (1k) of a 20k / 100k-node session | 0.50 / 0.37 ms | unchanged within noise |
//! | reopen, 1k nodes | 0.17 ms (before: 0.05 ms) | (reported) |
//!
//! A read that needed a node body from the snapshot file paid the hand-off to tokio's
//! blocking pool (about 11 µs on an idle machine, twice that here) on top of the 1.6 µs
//! positioned read. Since then such a read first tries the page cache in the caller's task
//! (`preadv2` with `RWF_NOWAIT`) and goes to the blocking pool only when the disk must be
//! read: `cargo bench --bench file_backend -- session_20k` gives `load_node` 1.6 µs again
//! (see the final table below). Reopen pays for starting and joining the log writer thread.
//!
//! The store keeps up with the raw append loop because of the preallocated log (see
//! "Durability"): a plain append pays an ext4 journal commit for the new file size on every
//! `fdatasync`. Against a raw loop that also avoids file growth the store reaches about two
//! thirds of the disk's rate; the rest is encoding, checksumming and the group-commit
//! hand-off. In an earlier run with other builds on the machine the ratios were 1.36× (raw
//! append) and 1.49× (SQLite).
//!
//! Open time grows neither with the history (bounded replay) nor, much, with the graph: open
//! reads the snapshot's tables (about 50 bytes per node and 28 per stamp, checked by one CRC
//! each) and decodes no node and no stamp; version 1, which decoded the whole image, took 72
//! ms to reopen and 85 ms to open and read the path at 100k nodes in one back-to-back run.
//! The price is paid by reads of snapshot nodes, which are decoded (and checksum-verified)
//! from a body file each time instead of cloned from memory.
//!
//! **At scale (format 3).** The realistic workload of the bench (`realistic_*`: stamped
//! commits of four ~740-byte JSON nodes, a usage row and CAS; 100k-node sessions measured as
//! the commits left them), before (format 2) and after, are tabled in the README with their
//! commands. In short, measured on a VM shared with other builds (load average 10–12, so
//! absolute times are inflated and vary by run):
//!
//! - **Open as left** (100k nodes, + 1k-node path): 213 ms → 4–15 ms warm, 8–35 ms for the
//!   first open in a fresh process. What is left is the replay of the live log segment,
//!   bounded by [`FileStoreOptions::compact_min_log_bytes`] (2 MiB) plus what was written
//!   while one compaction ran; the snapshot's tables take about 2 ms. Warm: met in two runs
//!   of three (4.0, 5.0 ms; 14.7 ms on the most loaded one); first open in a fresh process:
//!   8.2, 22.2 and 34.6 ms against 20 ms.
//! - **Open right after `compact()`**: 55 ms → 2.0–3.3 ms warm (goal 5 ms: met); stamps are
//!   no longer decoded at open.
//! - **Open alone at 20k nodes as left**: 82 ms → 7.6–14 ms, against 0.6 ms for the SQLite
//!   peer: **not met**. Replaying up to 2 MiB of log dominates; meeting it needs a much
//!   smaller live segment (more frequent, so cheaper, compactions) or a replay that does not
//!   decode node payloads.
//! - **Memory after open** (100k nodes): 337 B/node as left, 169 compacted → 88–108 as left
//!   (the in-memory overlay of the live segment is most of the spread) and 82–87 compacted;
//!   the peak during open stays within 1.1× of it. Met but for one run's as-left 108.
//! - **Largest single commit** while growing to 100k: 2.37 s → 0.23–0.80 s; p99 10.5–14 ms.
//!   No commit waits for a snapshot any more (the compaction that crossed the threshold was
//!   the 2.37 s), but the goal (10 ms) is **not met** on this machine: instrumenting the log
//!   writer during such a run showed every stall inside the log's own `fdatasync` (20 ms to
//!   1.2 s on the shared disk, at times when no compaction ran as well as during them), while
//!   the background compactions took 20–50 ms each. The bench prints the largest raw
//!   `fdatasync` of its interleaved loop next to the store's: 0.72 s against 0.17 s for the
//!   store in the final run. The background writes are synced every MiB so that a log sync
//!   never waits behind a whole compaction's dirty data (on ext4 a sync may), and a full
//!   rewrite of every body (every 16th compaction, `vacuum`) is the largest such write;
//!   merging only the small body files (size-tiered) would bound it.
//! - **`commit_semantic_hash`**: 297 µs → 7.7–10.8 µs (BLAKE3 over length-prefixed fields;
//!   goal 10 µs: met, at the limit on the loaded machine).
//! - **Durable commit vs the raw loop overwriting a preallocated file + `fdatasync`**,
//!   interleaved in rounds so that drifting disk load hits both: 0.80×, 1.05×, 0.97× and
//!   1.98× in four runs (goal 0.8×: met).
//!
//! Known costs of the design: an open store holds one file descriptor per body file in use
//! (at most [`bodies::MAX_BODY_FILES`], plus the log, the lock and the snapshot), and a log
//! writer thread; a node read from a body file the page cache does not hold pays the
//! hand-off to the blocking pool.

pub mod bodies;
mod engine;
pub mod factory;
pub mod format;
pub mod graph;
pub mod ids;
pub mod inspect;
pub mod options;
pub mod stamps;
pub mod store;

// Directory durability helpers, public so that crates writing files the same way
// (`strata-attachments`) share them instead of copying them.
pub use engine::{ensure_dir, sync_dir};
pub use factory::FileStoreFactory;
pub use options::{FileStoreOptions, SyncPolicy};
pub use store::FileStore;
