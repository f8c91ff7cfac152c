//! [`AttachmentStore`]: the async trait every attachment store implements (memory, local file,
//! object storage, the session-scoped wrapper).

use async_trait::async_trait;
use strata_core::DurabilityTier;

use crate::error::AttachmentError;
use crate::id::AttachmentId;
use crate::types::{Attachment, AttachmentInfo, AttachmentMeta, AttachmentReference, Content};

/// Content-addressed attachment bytes with their metadata, plus what the orphan sweeper needs:
/// a trash (a two-step delete it can undo) and references (which manifest rows refer to a
/// content).
///
/// Every method is safe to call concurrently, from several handles and (for the file and
/// object stores) several processes. A future does its work when polled; a dropped `put` may
/// still complete (the bytes are then stored, and unreferenced bytes are what the sweeper
/// collects).
///
/// **Trash.** [`delete`](Self::delete) moves an attachment to the trash: `contains` stops
/// reporting it and a new `put` of the same bytes stores them again, but `get` still reads it
/// from the trash until [`purge`](Self::purge) removes it for good or
/// [`restore`](Self::restore) puts it back. The sweeper deletes, re-checks the references,
/// then purges or restores, so a put racing a sweep never loses its bytes (see the crate
/// docs), and a reader racing one never sees bytes go missing that the sweep then keeps.
#[async_trait]
pub trait AttachmentStore: std::fmt::Debug + Send + Sync {
    /// The tier of every acknowledged write (`Durable`: fsynced, survives power loss);
    /// constant for the store's lifetime.
    fn durability_tier(&self) -> DurabilityTier;

    /// The largest payload `put` accepts, in bytes.
    fn max_bytes(&self) -> u64;

    /// Where the bytes of `id` live (a `file://` path, an object path…), for manifest rows.
    fn uri(&self, id: &AttachmentId) -> String;

    /// Stores `content` under its id, unless the store already holds it: then the stored info
    /// is returned (the first put's metadata wins) and nothing is written. Concurrent puts of
    /// the same bytes all succeed and leave one copy. Oversize payloads fail with
    /// [`TooLarge`](AttachmentError::TooLarge), bad metadata with
    /// [`InvalidMetadata`](AttachmentError::InvalidMetadata); neither writes anything.
    async fn put(
        &self,
        content: Content,
        meta: AttachmentMeta,
    ) -> Result<AttachmentInfo, AttachmentError>;

    /// The attachment (also while in the trash), checked against its id;
    /// [`NotFound`](AttachmentError::NotFound) if absent, a `Corrupt*` error naming the file
    /// or object if damaged.
    async fn get(&self, id: &AttachmentId) -> Result<Attachment, AttachmentError>;

    /// True when the attachment is stored (not in the trash).
    async fn contains(&self, id: &AttachmentId) -> Result<bool, AttachmentError>;

    /// Moves the stored ones among `ids` to the trash (durably); returns those moved.
    async fn delete(&self, ids: &[AttachmentId]) -> Result<Vec<AttachmentId>, AttachmentError>;

    /// Moves the trashed ones among `ids` back (durably; if a put stored the bytes again
    /// meanwhile, that copy stays and the trashed one is dropped); returns those restored.
    async fn restore(&self, ids: &[AttachmentId]) -> Result<Vec<AttachmentId>, AttachmentError>;

    /// Removes the trashed ones among `ids` for good; returns those purged.
    async fn purge(&self, ids: &[AttachmentId]) -> Result<Vec<AttachmentId>, AttachmentError>;

    /// Every id in the trash (an interrupted sweep leaves some; the next sweep decides them).
    async fn trashed(&self) -> Result<Vec<AttachmentId>, AttachmentError>;

    /// Records `reference` durably (idempotent).
    async fn add_reference(&self, reference: &AttachmentReference) -> Result<(), AttachmentError>;

    /// Every reference to `id`, in no particular order.
    async fn references(
        &self,
        id: &AttachmentId,
    ) -> Result<Vec<AttachmentReference>, AttachmentError>;

    /// Removes `references` durably (missing ones are ignored).
    async fn remove_references(
        &self,
        references: &[AttachmentReference],
    ) -> Result<(), AttachmentError>;
}
