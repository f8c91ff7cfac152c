//! Configuration of a file store: sync policy, clock, limits, and the write-delay drill hook.

use std::sync::Arc;
use std::time::Duration;

use strata_core::{DurabilityTier, SharedClock, SystemClock};

/// When appended records are forced to stable storage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SyncPolicy {
    /// `fdatasync` the log (and `fsync` every directory entry created or renamed) before a
    /// write returns. Concurrent writers share one `fdatasync` (group commit). Tier `Durable`.
    #[default]
    Always,
    /// Leave flushing to the operating system: a write survives a process crash but not a
    /// power loss or kernel crash. Tier `Inline`, reported honestly.
    OsBuffered,
}

impl SyncPolicy {
    /// The durability tier a store with this policy reports.
    pub fn tier(self) -> DurabilityTier {
        match self {
            Self::Always => DurabilityTier::Durable,
            Self::OsBuffered => DurabilityTier::Inline,
        }
    }

    /// True when writes are fsynced before they are acknowledged.
    pub fn syncs(self) -> bool {
        self == Self::Always
    }
}

/// Default of [`FileStoreOptions::max_record_bytes`]: 64 MiB.
pub const DEFAULT_MAX_RECORD_BYTES: u64 = 64 << 20;
/// Default of [`FileStoreOptions::compact_min_log_bytes`]: 2 MiB.
pub const DEFAULT_COMPACT_MIN_LOG_BYTES: u64 = 2 << 20;

/// Options of [`FileStore::open`](crate::FileStore::open) and
/// [`FileStoreFactory::open`](crate::FileStoreFactory::open).
#[derive(Clone, Debug)]
pub struct FileStoreOptions {
    /// When writes reach stable storage. Default [`SyncPolicy::Always`].
    pub sync: SyncPolicy,
    /// The store clock (queue times, manifest stamps). Default [`SystemClock`].
    pub clock: SharedClock,
    /// Largest encoded write (one log record) accepted; a larger write is
    /// [`StoreError::InvalidInput`](strata_core::StoreError::InvalidInput) naming this limit.
    pub max_record_bytes: u64,
    /// A compaction starts (in the background) once the live log segment exceeds this size,
    /// which bounds the log an open replays to about this much plus what is written while one
    /// compaction runs, whatever the session's size. A session whose snapshot is smaller than
    /// twice this compacts sooner, once the live segment passes half the snapshot's size (but
    /// not below 512 KiB), so that its open replays little too.
    pub compact_min_log_bytes: u64,
    /// Test and drill hook: see [`FileStoreOptions::with_write_delay`]. Default `None`.
    pub write_delay: Option<Duration>,
}

impl Default for FileStoreOptions {
    fn default() -> Self {
        Self {
            sync: SyncPolicy::default(),
            clock: Arc::new(SystemClock),
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            compact_min_log_bytes: DEFAULT_COMPACT_MIN_LOG_BYTES,
            write_delay: None,
        }
    }
}

impl FileStoreOptions {
    /// Sets the sync policy.
    pub fn with_sync(mut self, sync: SyncPolicy) -> Self {
        self.sync = sync;
        self
    }

    /// Sets the store clock.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the largest accepted record.
    pub fn with_max_record_bytes(mut self, bytes: u64) -> Self {
        self.max_record_bytes = bytes;
        self
    }

    /// Sets the log size that starts a compaction.
    pub fn with_compact_min_log_bytes(mut self, bytes: u64) -> Self {
        self.compact_min_log_bytes = bytes;
        self
    }

    /// Test and drill hook: every write is held for `delay` on the store's I/O side before it
    /// is acknowledged. Exactly where: the log writer thread, after it has written the
    /// write's record to the log (`pwrite`) and before the `fdatasync` that makes it durable
    /// (before the acknowledgement with [`SyncPolicy::OsBuffered`]); the writes of one group
    /// commit share one delay. Callers await it like a slow disk: a timeout around the call
    /// fires, a dropped call stops waiting, and the write still applies (the ambiguous
    /// outcome); reads wait for the writes they observed. Never blocks an async worker.
    pub fn with_write_delay(mut self, delay: Duration) -> Self {
        self.write_delay = Some(delay);
        self
    }
}
