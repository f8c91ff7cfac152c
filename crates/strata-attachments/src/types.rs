//! The values attachment stores take and return: [`Content`] (bytes with their id),
//! [`AttachmentMeta`], [`AttachmentInfo`], [`Attachment`] and [`AttachmentReference`].

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::AttachmentError;
use crate::id::{AttachmentId, IntentId};

/// The longest media type accepted, in bytes.
pub const MAX_MEDIA_TYPE_BYTES: usize = 255;
/// The longest label accepted, in bytes.
pub const MAX_LABEL_BYTES: usize = 4096;
/// The payload limit of a store built with default options: 32 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 32 << 20;

/// Bytes with their content id, hashed once when made: a store's `put` and the scoped
/// wrapper's manifest intent use the same id without hashing twice, and no caller can pair
/// bytes with an id of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Content {
    id: AttachmentId,
    bytes: Bytes,
}

impl Content {
    /// Hashes `bytes` (BLAKE3).
    pub fn new(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self { id: AttachmentId::of(&bytes), bytes }
    }

    /// The content id.
    pub fn id(&self) -> &AttachmentId {
        &self.id
    }

    /// The bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// True for zero bytes (a valid attachment).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// What the caller says about an attachment: media type, optional pixel size, optional label.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentMeta {
    /// MIME type, e.g. `image/png` (non-empty, at most [`MAX_MEDIA_TYPE_BYTES`]).
    pub media_type: String,
    /// Width in pixels, for images.
    pub width: Option<u32>,
    /// Height in pixels, for images.
    pub height: Option<u32>,
    /// A human label (at most [`MAX_LABEL_BYTES`]).
    pub label: Option<String>,
}

impl AttachmentMeta {
    /// Metadata with only a media type.
    pub fn new(media_type: impl Into<String>) -> Self {
        Self { media_type: media_type.into(), width: None, height: None, label: None }
    }

    /// With a pixel size.
    pub fn with_size(mut self, width: u32, height: u32) -> Self {
        (self.width, self.height) = (Some(width), Some(height));
        self
    }

    /// With a label.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    fn validate(&self) -> Result<(), AttachmentError> {
        let problem = if self.media_type.is_empty() {
            "the media type is empty".to_owned()
        } else if self.media_type.len() > MAX_MEDIA_TYPE_BYTES {
            format!("the media type is over {MAX_MEDIA_TYPE_BYTES} bytes")
        } else if self.label.as_ref().is_some_and(|label| label.len() > MAX_LABEL_BYTES) {
            format!("the label is over {MAX_LABEL_BYTES} bytes")
        } else {
            return Ok(());
        };
        Err(AttachmentError::InvalidMetadata(problem))
    }
}

/// What a store holds about one attachment: its id, length and metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentInfo {
    /// The content id.
    pub id: AttachmentId,
    /// Length of the bytes.
    pub byte_len: u64,
    /// The metadata of the first put of these bytes.
    pub meta: AttachmentMeta,
}

/// An attachment read back: its info and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// Id, length, metadata.
    pub info: AttachmentInfo,
    /// The bytes (shared, cheap to clone).
    pub bytes: Bytes,
}

/// A record that one put of a session (its manifest row, [`IntentId`]) refers to some content.
///
/// The session-scoped wrapper adds it after the manifest intent and before the bytes; the
/// sweeper reads the references of a content to learn which rows still need it (the
/// contract's manifest lists only *uncommitted* rows, so a committed row is known by its
/// reference), and removes a reference only just before forgetting its row.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttachmentReference {
    /// The put's manifest row id (it names the content).
    pub intent_id: IntentId,
    /// The session whose manifest holds that row.
    pub session_id: String,
}

impl AttachmentReference {
    /// The content referred to.
    pub fn attachment_id(&self) -> &AttachmentId {
        self.intent_id.attachment_id()
    }
}

/// The checks every store's `put` makes before it writes anything: the payload limit and the
/// metadata. Returns the info the put stores.
pub fn check_put(
    content: &Content,
    meta: &AttachmentMeta,
    max_bytes: u64,
) -> Result<AttachmentInfo, AttachmentError> {
    if content.len() > max_bytes {
        return Err(AttachmentError::TooLarge { len: content.len(), limit: max_bytes });
    }
    meta.validate()?;
    Ok(AttachmentInfo { id: content.id().clone(), byte_len: content.len(), meta: meta.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_checks_refuse_oversize_payloads_and_bad_metadata() {
        let content = Content::new(vec![7u8; 10]);
        let meta = AttachmentMeta::new("image/png").with_size(2, 5).with_label("chart");
        let info = check_put(&content, &meta, 10).unwrap();
        assert_eq!((info.byte_len, &info.id), (10, content.id()));
        assert_eq!(
            check_put(&content, &meta, 9).unwrap_err(),
            AttachmentError::TooLarge { len: 10, limit: 9 }
        );
        for bad in [
            AttachmentMeta::new(""),
            AttachmentMeta::new("x".repeat(MAX_MEDIA_TYPE_BYTES + 1)),
            AttachmentMeta::new("text/plain").with_label("l".repeat(MAX_LABEL_BYTES + 1)),
        ] {
            let error = check_put(&content, &bad, 10).unwrap_err();
            assert!(matches!(error, AttachmentError::InvalidMetadata(_)), "{error}");
        }
    }
}
