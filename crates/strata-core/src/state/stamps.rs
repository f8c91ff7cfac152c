//! Turn stamps (`docs/contract.md` §5, step 2): an optional immutable **base** (stamps a durable
//! backend keeps outside memory, read on demand through [`StampBase`]) under an in-memory
//! **overlay** of the stamps recorded since.
//!
//! Stamps grow with a session's age (one per final turn) and are read only when a stamped
//! commit is retried, so a durable backend keeps them in a random-access section of its
//! snapshot: its memory holds a small index, and a retry of an old turn reads one record. The
//! in-memory backend never has a base. A stamp is never removed or replaced, so a stamp lives
//! in exactly one place.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::StampRecord;
use crate::error::StoreError;

/// Immutable stamp storage under the overlay. Implemented by durable backends.
///
/// [`contains`](Self::contains) must be cheap (an index in memory): a planner asks it to
/// decide whether a commit needs a stored stamp at all, so only a retry of a stamped turn
/// reads storage. Reading a record may fail with the backend's error (`CorruptData` naming
/// the file and offset of a damaged record).
pub trait StampBase: Send + Sync + fmt::Debug {
    /// Whether a stamp of `(session_id, turn_id)` may be stored (false means surely not).
    fn contains(&self, session_id: &str, turn_id: &str) -> bool;
    /// The stamp of `(session_id, turn_id)`, read from storage.
    fn find(&self, session_id: &str, turn_id: &str) -> Result<Option<StampRecord>, StoreError>;
    /// The base as `Any`, so that the backend that made it can copy its records into a new
    /// base without decoding them.
    fn as_any(&self) -> &dyn Any;
}

/// Every stamp of a store, as a new base must hold it: the current base (whose records are
/// all kept) and the overlay's stamps.
#[derive(Debug)]
pub struct StoredStamps<'a> {
    /// The current base.
    pub base: Option<&'a dyn StampBase>,
    /// The overlay's stamps: (session id, turn id, record).
    pub overlay: Vec<(&'a str, &'a str, &'a StampRecord)>,
}

/// The stamps of a store (see the module docs).
#[derive(Clone, Debug, Default)]
pub(super) struct StampState {
    base: Option<Arc<dyn StampBase>>,
    /// Session → turn id → record.
    overlay: HashMap<String, HashMap<String, StampRecord>>,
}

/// Equal when both sit on the same base object (or none) with equal overlays.
impl PartialEq for StampState {
    fn eq(&self, other: &Self) -> bool {
        let same_base = match (&self.base, &other.base) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        same_base && self.overlay == other.overlay
    }
}

impl Eq for StampState {}

impl StampState {
    /// Whether looking up `(session_id, turn_id)` reads the base (its index says it may hold
    /// the stamp and the overlay does not).
    pub(super) fn lookup_reads_base(&self, session_id: &str, turn_id: &str) -> bool {
        !self.overlay.get(session_id).is_some_and(|turns| turns.contains_key(turn_id))
            && self.base.as_deref().is_some_and(|base| base.contains(session_id, turn_id))
    }

    /// The stamp of `(session_id, turn_id)`, from the overlay or the base.
    pub(super) fn get(
        &self,
        session_id: &str,
        turn_id: &str,
    ) -> Result<Option<StampRecord>, StoreError> {
        if let Some(record) = self.overlay.get(session_id).and_then(|turns| turns.get(turn_id)) {
            return Ok(Some(record.clone()));
        }
        match self.base.as_deref() {
            Some(base) if base.contains(session_id, turn_id) => base.find(session_id, turn_id),
            _ => Ok(None),
        }
    }

    /// Records a stamp in the overlay.
    pub(super) fn insert(&mut self, session_id: &str, turn_id: &str, record: StampRecord) {
        self.overlay.entry(session_id.to_owned()).or_default().insert(turn_id.to_owned(), record);
    }

    /// Every stamp: the base, then the overlay's.
    pub(super) fn stored(&self) -> StoredStamps<'_> {
        let overlay = self
            .overlay
            .iter()
            .flat_map(|(session, turns)| {
                turns.iter().map(move |(turn, record)| (session.as_str(), turn.as_str(), record))
            })
            .collect();
        StoredStamps { base: self.base.as_deref(), overlay }
    }

    /// Replaces every stamp by `base`, which holds exactly what [`Self::stored`] described.
    pub(super) fn rebase(&mut self, base: Arc<dyn StampBase>) {
        *self = Self { base: Some(base), overlay: HashMap::new() };
    }
}
